//! A real Kannel SMS gateway for one test, with a fake SMSC that records what
//! the gateway delivers.
//!
//! [`Kannel::start`] writes a `kannel.conf` into a temp dir (every port a
//! free one of 127.0.0.1) and starts, in this order:
//!
//! 1. `bearerbox` (core: admin port, smsbox port; one `smsc = fake` that
//!    listens for the fake SMSC client);
//! 2. `fakesmsc -m 0` (Kannel's test SMSC client: sends nothing, prints every
//!    message bearerbox delivers to it);
//! 3. `smsbox` with the `sendsms` HTTP service and one `sendsms-user`
//!    ([`Kannel::username`] / [`Kannel::password`], `max-messages = 10`,
//!    `concatenation = true`) and a `global-sender` ([`Kannel::global_sender`]).
//!
//! Each step waits until bearerbox's admin status shows it (the fake SMSC
//! `online`, the smsbox connected) and the `sendsms` port answers HTTP, so a
//! started gateway accepts `GET` [`Kannel::sendsms_url`] at once with
//! `202 0: Accepted for delivery` (replies: `INTEGRATIONS.md` §4.1).
//! Dropping the `Kannel` kills all three (`SIGKILL`, each child by its pid;
//! none of them forks).
//!
//! ## What the fake SMSC received
//!
//! fakesmsc logs every message on stderr (one file per fakesmsc run,
//! `fakesmsc-<n>.log`, all kept, so the record survives restarts) as
//!
//! ```text
//! 2026-12-04 03:21:50 [668] [0] DEBUG: Got message 1: <12345 +79161234567 text hello world>
//! 2026-12-04 03:21:50 [668] [0] DEBUG: Got message 2: <12345 +79161234567 ucs-2 %04%1F%04%40…>
//! 2026-12-04 03:21:50 [668] [0] DEBUG: Got message 3: <777 123 udh %05%00%03%02%02%01 data AAAA…>
//! ```
//!
//! i.e. `<sender> <receiver> <type> <payload>` where (Kannel 1.4.5
//! `gw/smsc/smsc_fake.c`, `sms_to_client`) the type is `text` (7-bit coding:
//! the text raw, as UTF-8), `data` (8-bit, URL-encoded bytes), `ucs-2`
//! (URL-encoded UTF-16BE) or `udh <url-encoded UDH> data <url-encoded
//! bytes>` for any message with a UDH — concatenated parts among them,
//! **whatever their coding**. The fields are split at spaces, so a `from`
//! with a space in it would be misread. [`Kannel::received`] turns that
//! into [`ReceivedSms`]es:
//!
//! * `ucs-2` is decoded from UTF-16BE (Cyrillic compares as a `String`);
//! * parts with a concatenation UDH (IEI 0 or 8) are joined, in sequence
//!   order, into one message at the position of its first part; its
//!   [`ReceivedSms::parts`] / [`ReceivedSms::total_parts`] tell how many
//!   arrived / were announced (an incomplete one has only the parts seen so
//!   far, with the gaps left out);
//! * as the line does not say the coding of a UDH message, the joined bytes
//!   are taken as 7-bit text when they are UTF-8 without control characters
//!   (other than `\t \r \n`), else as UCS-2 when of even length, else as
//!   8-bit data ([`SmsCoding`]). Cyrillic, Latin and mixed UCS-2 texts are
//!   always told apart right; a UCS-2 text made only of characters whose
//!   both bytes are printable ASCII (some CJK) would be misread as 7-bit;
//! * a 7-bit (`text`) message with line breaks reaches fakesmsc as several
//!   lines (Kannel writes it raw); a line that is not `<from> <to> <type> …`
//!   is taken as a continuation and joined with `\n` (`\r\n` becomes `\n`;
//!   a continuation line that itself looks like a message is misread, and
//!   for a moment the message may show only its first line). Tests that
//!   care about line breaks should send `coding=2`.
//!
//! ## Going down and coming back (chaos tests)
//!
//! [`Kannel::stop_smsbox`] / [`Kannel::start_smsbox`] take the HTTP side down
//! (connection refused) and back; [`Kannel::stop_fakesmsc`] /
//! [`Kannel::start_fakesmsc`] take the SMSC link down (sendsms answers
//! `202 3: Queued for later delivery` and bearerbox delivers once the link
//! is back); [`Kannel::stop_all`] / [`Kannel::restart`] take all three
//! down and back. Ports, logs and the record of received messages stay the
//! same. bearerbox has no store here: messages it had queued die with it.
//! Each of these waits until bearerbox's status shows the change.
//!
//! ## Tools
//!
//! Debian's `kannel` (bearerbox, smsbox) and `kannel-extras` (fakesmsc)
//! packages; `.ci/run` installs them. Each path can be overridden:
//!
//! | tool      | variable              | default                          |
//! |-----------|-----------------------|----------------------------------|
//! | bearerbox | `CALLTRAIL_BEARERBOX` | `/usr/sbin/bearerbox`            |
//! | smsbox    | `CALLTRAIL_SMSBOX`    | `/usr/sbin/smsbox`               |
//! | fakesmsc  | `CALLTRAIL_FAKESMSC`  | `/usr/lib/kannel/test/fakesmsc`  |
//!
//! A missing tool is a test failure with [`KANNEL_HINT`], never a skip.
//!
//! Logs (in [`Kannel::dir`], kept across restarts, appended to):
//! `bearerbox.log`, `smsbox.log` (level 1, `info`: start-up, connections,
//! a few lines per sendsms request), `access.log` (bearerbox: one line per
//! message sent, with its coding in `flags:mclass:coding:…`),
//! `bearerbox.out` / `smsbox.out` (console, warnings and worse: errors
//! before the log file is open) and the `fakesmsc-<n>.log` files.

// The integration tests each use a part of this API.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What to tell a developer whose machine lacks Kannel.
pub const KANNEL_HINT: &str =
    "install Kannel: `sudo apt-get install kannel kannel-extras` (Debian/Ubuntu)";

/// How long each box may take to come up (or go down).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Port sets tried by [`Kannel::start`]: a free port can be taken by someone
/// else between choosing it and a box's bind.
const START_ATTEMPTS: usize = 3;
/// The admin password (status page).
const ADMIN_PASSWORD: &str = "ct-admin";
const USERNAME: &str = "calltrail";
const PASSWORD: &str = "ct-secret";
const GLOBAL_SENDER: &str = "CallTrail";
/// Kannel's log level for the log files: 0 debug, 1 info, 2 warning, …
const LOG_LEVEL: u8 = 1;
/// Console (`-v`) level of bearerbox and smsbox: warnings and worse.
const CONSOLE_LEVEL: &str = "2";

/// How the fake SMSC got a message (see the module doc for how a message
/// with a UDH is classified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsCoding {
    /// 7-bit (`coding=0`, the default): the text as Kannel holds it (UTF-8).
    Text,
    /// 8-bit (`coding=1`): [`ReceivedSms::text`] is the bytes as lossy UTF-8.
    Binary,
    /// UCS-2 (`coding=2`), decoded from UTF-16BE.
    Ucs2,
}

/// One message as the fake SMSC received it; concatenated parts are joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    /// The sender (`from`, else the global sender).
    pub from: String,
    /// The receiver as Kannel passed it on (e.g. `+79161234567`).
    pub to: String,
    /// The text, decoded (joined over all parts received).
    pub text: String,
    pub coding: SmsCoding,
    /// Parts received (1 for a message that was not split).
    pub parts: usize,
    /// Parts announced by the concatenation UDH (1 when not split).
    pub total_parts: usize,
}

impl ReceivedSms {
    /// All announced parts arrived.
    pub fn is_complete(&self) -> bool {
        self.parts >= self.total_parts
    }
}

#[derive(Debug, Clone, Copy)]
struct Ports {
    admin: u16,
    smsbox: u16,
    smsc: u16,
    sendsms: u16,
}

impl Ports {
    /// Four distinct ports of 127.0.0.1 that were free a moment ago (all
    /// bound at once, then released).
    fn pick() -> Ports {
        let listeners: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind(("127.0.0.1", 0)).expect("cannot bind 127.0.0.1:0"))
            .collect();
        let port = |i: usize| {
            listeners[i]
                .local_addr()
                .expect("local_addr of a bound listener")
                .port()
        };
        Ports {
            admin: port(0),
            smsbox: port(1),
            smsc: port(2),
            sendsms: port(3),
        }
    }
}

#[derive(Clone)]
struct Bins {
    bearerbox: PathBuf,
    smsbox: PathBuf,
    fakesmsc: PathBuf,
}

impl Bins {
    fn find() -> Bins {
        Bins {
            bearerbox: tool(
                "CALLTRAIL_BEARERBOX",
                "/usr/sbin/bearerbox",
                "Kannel bearerbox",
            ),
            smsbox: tool("CALLTRAIL_SMSBOX", "/usr/sbin/smsbox", "Kannel smsbox"),
            fakesmsc: tool(
                "CALLTRAIL_FAKESMSC",
                "/usr/lib/kannel/test/fakesmsc",
                "Kannel fakesmsc (package kannel-extras)",
            ),
        }
    }
}

/// The tool's path from `$var`, else `default`; panics with [`KANNEL_HINT`]
/// if there is no such file.
fn tool(var: &str, default: &str, what: &str) -> PathBuf {
    let (path, origin) = match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), format!("from ${var}")),
        None => (
            PathBuf::from(default),
            format!("default; override with ${var}"),
        ),
    };
    assert!(
        path.is_file(),
        "{what} not found at {} ({origin}): {KANNEL_HINT}",
        path.display()
    );
    path
}

/// The running children.
#[derive(Default)]
struct Procs {
    bearerbox: Option<Child>,
    fakesmsc: Option<Child>,
    smsbox: Option<Child>,
}

/// A running Kannel (bearerbox + fakesmsc + smsbox) on 127.0.0.1; all killed
/// on drop. Its methods take `&self`, so a test can share it with a thread
/// that takes it down and up while another sends.
pub struct Kannel {
    bins: Bins,
    ports: Ports,
    procs: Mutex<Procs>,
    /// One log per fakesmsc run, oldest first (apart from `procs`, so that
    /// reading what arrived never waits for a box to start).
    fakesmsc_logs: Mutex<Vec<PathBuf>>,
    dir: tempfile::TempDir,
}

impl Kannel {
    /// Starts the three boxes on free ports and waits until `sendsms`
    /// accepts messages. Panics, with the boxes' logs, if it cannot (or with
    /// [`KANNEL_HINT`] if Kannel is not installed).
    pub fn start() -> Kannel {
        let bins = Bins::find();
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let kannel = Kannel {
                bins: bins.clone(),
                ports: Ports::pick(),
                procs: Mutex::new(Procs::default()),
                fakesmsc_logs: Mutex::new(Vec::new()),
                dir: tempfile::Builder::new()
                    .prefix("calltrail-kannel-")
                    .tempdir()
                    .expect("create a temp dir for Kannel"),
            };
            kannel.write_config();
            let started = kannel.try_start_all(&mut kannel.lock());
            match started {
                Ok(()) => return kannel,
                Err(why) => {
                    let _ = writeln!(
                        failures,
                        "--- attempt {attempt}, {:?}: {why}\n{}",
                        kannel.ports,
                        kannel.diagnostics()
                    );
                    // Dropping it kills whatever did start.
                }
            }
        }
        panic!("Kannel failed to start {START_ATTEMPTS} times:\n{failures}");
    }

    /// `http://127.0.0.1:PORT/cgi-bin/sendsms`.
    pub fn sendsms_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.ports.sendsms)
    }

    /// The smsbox's `sendsms` port on 127.0.0.1.
    pub fn sendsms_port(&self) -> u16 {
        self.ports.sendsms
    }

    /// The `sendsms-user`'s `username`.
    pub fn username(&self) -> &str {
        USERNAME
    }

    /// The `sendsms-user`'s `password`.
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// The `from` of messages sent without one (`global-sender`).
    pub fn global_sender(&self) -> &str {
        GLOBAL_SENDER
    }

    /// The temp dir with `kannel.conf` and the logs (deleted on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// bearerbox's admin status page (`status.txt`), or why it could not be
    /// read.
    pub fn status(&self) -> String {
        match self.admin_status() {
            Ok(text) => text,
            Err(e) => format!(
                "<no status from bearerbox's admin port {}: {e}>",
                self.ports.admin
            ),
        }
    }

    /// Every message the fake SMSC received so far, over all fakesmsc runs,
    /// in arrival order (a concatenated message where its first part
    /// arrived; see the module doc).
    pub fn received(&self) -> Vec<ReceivedSms> {
        let logs = self
            .fakesmsc_logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut lines = Vec::new();
        for log in logs {
            // A log not created yet or unreadable holds no messages.
            let bytes = std::fs::read(&log).unwrap_or_default();
            parse_fakesmsc_log(&String::from_utf8_lossy(&bytes), &mut lines);
        }
        assemble(lines)
    }

    /// Waits until at least `n` complete messages arrived and returns all
    /// received (as [`Kannel::received`]). Panics with what did arrive and
    /// the logs if they don't within `timeout`.
    pub fn wait_received(&self, n: usize, timeout: Duration) -> Vec<ReceivedSms> {
        let mut got = Vec::new();
        let complete = |got: &[ReceivedSms]| got.iter().filter(|m| m.is_complete()).count();
        if super::wait_until(timeout, || {
            got = self.received();
            complete(&got) >= n
        }) {
            return got;
        }
        panic!(
            "expected {n} complete SMS at the fake SMSC within {timeout:?}, got {}: {got:#?}\n{}",
            complete(&got),
            self.diagnostics()
        );
    }

    /// Kills smsbox (`sendsms` then refuses connections) and waits until
    /// bearerbox has noticed. No-op if it is not running.
    pub fn stop_smsbox(&self) {
        let mut procs = self.lock();
        if kill(&mut procs.smsbox) && procs.bearerbox.is_some() {
            self.await_status("bearerbox to drop the smsbox connection", |s| {
                !smsbox_connected(s)
            });
        }
    }

    /// Starts smsbox again (same port) and waits until `sendsms` works.
    /// Panics if it is running already, if bearerbox is not, or if it does
    /// not come up.
    pub fn start_smsbox(&self) {
        let mut procs = self.lock();
        assert!(procs.smsbox.is_none(), "start_smsbox: smsbox is running");
        assert!(
            procs.bearerbox.is_some(),
            "start_smsbox: bearerbox is not running (use restart())"
        );
        let started = self.start_smsbox_in(&mut procs);
        self.or_panic(started, "start smsbox");
    }

    /// Kills fakesmsc (the SMSC link goes down; sendsms answers
    /// `202 3: Queued for later delivery`) and waits until bearerbox has
    /// noticed. No-op if it is not running. What it received stays in
    /// [`Kannel::received`].
    pub fn stop_fakesmsc(&self) {
        let mut procs = self.lock();
        if kill(&mut procs.fakesmsc) && procs.bearerbox.is_some() {
            self.await_status("bearerbox to see the fake SMSC go", |s| !smsc_online(s));
        }
    }

    /// Starts a new fakesmsc (new log, same port) and waits until bearerbox
    /// has it online. Panics if it is running already, if bearerbox is not,
    /// or if it does not connect.
    pub fn start_fakesmsc(&self) {
        let mut procs = self.lock();
        assert!(
            procs.fakesmsc.is_none(),
            "start_fakesmsc: fakesmsc is running"
        );
        assert!(
            procs.bearerbox.is_some(),
            "start_fakesmsc: bearerbox is not running (use restart())"
        );
        let started = self.start_fakesmsc_in(&mut procs);
        self.or_panic(started, "start fakesmsc");
    }

    /// Kills smsbox, fakesmsc and bearerbox (whichever run). Messages
    /// bearerbox had queued are lost (no store); the record of received
    /// messages and the logs stay.
    pub fn stop_all(&self) {
        let mut procs = self.lock();
        stop_all_in(&mut procs);
    }

    /// [`Kannel::stop_all`], then starts all three again on the same ports
    /// and waits until `sendsms` works. Panics, with the logs, if they do not
    /// come up.
    pub fn restart(&self) {
        let mut procs = self.lock();
        stop_all_in(&mut procs);
        let started = self.try_start_all(&mut procs);
        self.or_panic(started, "restart Kannel");
    }

    /// The last lines of every log, and the admin status, for failure
    /// messages.
    pub fn diagnostics(&self) -> String {
        let mut out = format!("Kannel in {} ({:?})\n", self.dir().display(), self.ports);
        for (name, lines) in [
            ("bearerbox.log", 30),
            ("bearerbox.out", 10),
            ("smsbox.log", 30),
            ("smsbox.out", 10),
            ("access.log", 10),
        ] {
            let _ = writeln!(
                out,
                "--- {name}:\n{}",
                super::tail(&self.dir().join(name), lines)
            );
        }
        let last_fakesmsc = self
            .fakesmsc_logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned();
        if let Some(log) = last_fakesmsc {
            let _ = writeln!(
                out,
                "--- {}:\n{}",
                log.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                super::tail(&log, 15)
            );
        }
        let _ = write!(out, "--- admin status:\n{}", self.status());
        out
    }

    fn lock(&self) -> MutexGuard<'_, Procs> {
        self.procs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn or_panic(&self, result: Result<(), String>, what: &str) {
        if let Err(why) = result {
            panic!("could not {what}: {why}\n{}", self.diagnostics());
        }
    }

    fn write_config(&self) {
        let Ports {
            admin,
            smsbox,
            smsc,
            sendsms,
        } = self.ports;
        let dir = self.dir().display();
        let conf = format!(
            "# Written by tests/it/support/kannel.rs for one test.\n\
             group = core\n\
             admin-port = {admin}\n\
             admin-interface = 127.0.0.1\n\
             admin-password = {ADMIN_PASSWORD}\n\
             smsbox-port = {smsbox}\n\
             smsbox-interface = 127.0.0.1\n\
             box-allow-ip = \"127.0.0.1\"\n\
             dlr-storage = internal\n\
             log-file = \"{dir}/bearerbox.log\"\n\
             log-level = {LOG_LEVEL}\n\
             access-log = \"{dir}/access.log\"\n\
             \n\
             group = smsc\n\
             smsc = fake\n\
             smsc-id = FAKE\n\
             port = {smsc}\n\
             our-host = 127.0.0.1\n\
             connect-allow-ip = 127.0.0.1\n\
             \n\
             group = smsbox\n\
             bearerbox-host = 127.0.0.1\n\
             bearerbox-port = {smsbox}\n\
             sendsms-port = {sendsms}\n\
             sendsms-interface = 127.0.0.1\n\
             global-sender = {GLOBAL_SENDER}\n\
             log-file = \"{dir}/smsbox.log\"\n\
             log-level = {LOG_LEVEL}\n\
             \n\
             group = sendsms-user\n\
             username = {USERNAME}\n\
             password = {PASSWORD}\n\
             max-messages = 10\n\
             concatenation = true\n"
        );
        std::fs::write(self.conf(), conf).expect("write kannel.conf");
    }

    fn conf(&self) -> PathBuf {
        self.dir().join("kannel.conf")
    }

    /// Starts whichever of the three is not running, in order.
    fn try_start_all(&self, procs: &mut Procs) -> Result<(), String> {
        if procs.bearerbox.is_none() {
            self.start_bearerbox_in(procs)?;
        }
        if procs.fakesmsc.is_none() {
            self.start_fakesmsc_in(procs)?;
        }
        if procs.smsbox.is_none() {
            self.start_smsbox_in(procs)?;
        }
        Ok(())
    }

    fn start_bearerbox_in(&self, procs: &mut Procs) -> Result<(), String> {
        let mut cmd = Command::new(&self.bins.bearerbox);
        cmd.args(["-v", CONSOLE_LEVEL]).arg(self.conf());
        let child =
            procs
                .bearerbox
                .insert(self.spawn(cmd, &self.dir().join("bearerbox.out"), true)?);
        self.await_up("bearerbox", child, || {
            self.admin_status()
                .is_ok_and(|s| s.contains("Status: running"))
        })
    }

    fn start_fakesmsc_in(&self, procs: &mut Procs) -> Result<(), String> {
        let log = {
            let mut logs = self
                .fakesmsc_logs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let log = self.dir().join(format!("fakesmsc-{}.log", logs.len() + 1));
            logs.push(log.clone());
            log
        };
        let mut cmd = Command::new(&self.bins.fakesmsc);
        // -m 0: generate no messages, only print what bearerbox delivers
        // (the message argument is required all the same).
        cmd.args(["-H", "127.0.0.1", "-r", &self.ports.smsc.to_string()])
            .args(["-m", "0", "1 2 text nop"]);
        let child = procs.fakesmsc.insert(self.spawn(cmd, &log, false)?);
        self.await_up("fakesmsc", child, || {
            self.admin_status().is_ok_and(|s| smsc_online(&s))
        })
    }

    fn start_smsbox_in(&self, procs: &mut Procs) -> Result<(), String> {
        let mut cmd = Command::new(&self.bins.smsbox);
        cmd.args(["-v", CONSOLE_LEVEL]).arg(self.conf());
        let child = procs
            .smsbox
            .insert(self.spawn(cmd, &self.dir().join("smsbox.out"), true)?);
        self.await_up("smsbox", child, || {
            // smsbox opens its HTTP port before it connects to bearerbox:
            // wait for both.
            http_get(self.ports.sendsms, "/").is_ok()
                && self.admin_status().is_ok_and(|s| smsbox_connected(&s))
        })
    }

    /// Starts `cmd` with stdin closed and stdout and stderr into `out`.
    fn spawn(&self, mut cmd: Command, out: &Path, append: bool) -> Result<Child, String> {
        let file = File::options()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(out)
            .map_err(|e| format!("cannot open {}: {e}", out.display()))?;
        let err = file
            .try_clone()
            .map_err(|e| format!("cannot clone the handle of {}: {e}", out.display()))?;
        cmd.current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))
    }

    /// Waits until `ready` holds while `child` lives.
    fn await_up(
        &self,
        what: &str,
        child: &mut Child,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let mut exited = None;
        let done = super::wait_until(START_TIMEOUT, || {
            exited = child.try_wait().ok().flatten();
            exited.is_some() || ready()
        });
        match (done, exited) {
            (_, Some(status)) => Err(format!("{what} exited ({status})")),
            (true, None) => Ok(()),
            (false, None) => Err(format!("{what} was not ready within {START_TIMEOUT:?}")),
        }
    }

    /// Waits until bearerbox's status satisfies `cond`; panics if it does
    /// not within [`START_TIMEOUT`].
    fn await_status(&self, what: &str, cond: impl Fn(&str) -> bool) {
        let ok = super::wait_until(START_TIMEOUT, || {
            self.admin_status().is_ok_and(|s| cond(&s))
        });
        if !ok {
            panic!(
                "timed out after {START_TIMEOUT:?} waiting for {what}\n{}",
                self.diagnostics()
            );
        }
    }

    fn admin_status(&self) -> std::io::Result<String> {
        let (status, body) = http_get(
            self.ports.admin,
            &format!("/status.txt?password={ADMIN_PASSWORD}"),
        )?;
        if status == 200 {
            Ok(body)
        } else {
            Err(std::io::Error::other(format!(
                "status.txt answered {status}: {body}"
            )))
        }
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        stop_all_in(&mut self.lock());
    }
}

fn stop_all_in(procs: &mut Procs) {
    kill(&mut procs.smsbox);
    kill(&mut procs.fakesmsc);
    kill(&mut procs.bearerbox);
}

/// SIGKILLs and reaps the child, if any; whether there was one.
fn kill(child: &mut Option<Child>) -> bool {
    match child.take() {
        Some(mut c) => {
            let _ = c.kill();
            let _ = c.wait();
            true
        }
        None => false,
    }
}

/// The status page shows the fake SMSC connected (`(online 12s, …`).
fn smsc_online(status: &str) -> bool {
    status.contains("(online")
}

/// The status page lists a connected smsbox
/// (`smsbox:(none), IP 127.0.0.1 (0 queued), (on-line 0d 0h 0m 1s)`).
fn smsbox_connected(status: &str) -> bool {
    status
        .lines()
        .any(|l| l.trim_start().starts_with("smsbox:") && l.contains("on-line"))
}

/// A minimal HTTP/1.0 GET to 127.0.0.1:`port`: the status and the body
/// (lossy UTF-8). Short timeouts: it is for polling.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Error, ErrorKind};
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    // Kannel answers `Connection: Keep-Alive` even so: read the head, then
    // Content-Length bytes (or to EOF without one).
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "no complete HTTP head",
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, format!("not HTTP: {head:?}")))?;
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    let mut body = raw[head_end..].to_vec();
    match length {
        Some(len) => {
            while body.len() < len {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            body.truncate(len);
        }
        None => {
            stream.read_to_end(&mut body)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One message line of fakesmsc.
#[derive(Debug)]
struct Line {
    from: String,
    to: String,
    payload: Payload,
}

#[derive(Debug)]
enum Payload {
    /// `text`: 7-bit, the text raw.
    Text(String),
    /// `data`: 8-bit bytes.
    Data(Vec<u8>),
    /// `ucs-2`: UTF-16BE bytes.
    Ucs2(Vec<u8>),
    /// `udh … data …`: a UDH and the bytes after it (any coding).
    Udh { udh: Vec<u8>, data: Vec<u8> },
}

/// Appends the messages of one fakesmsc log (`… Got message N: <…>`).
/// A last line without its `\n` is being written: it is left for later.
fn parse_fakesmsc_log(log: &str, out: &mut Vec<Line>) {
    const MARK: &str = " Got message ";
    let written = &log[..log.rfind('\n').map_or(0, |i| i + 1)];
    for raw in written.lines() {
        let Some(at) = raw.find(MARK) else {
            continue;
        };
        let Some((number, body)) = raw[at + MARK.len()..].split_once(": <") else {
            continue;
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let body = body.strip_suffix('>').unwrap_or(body);
        match parse_body(body) {
            Some(line) => out.push(line),
            // A 7-bit text with a line break goes out as several lines.
            None => match out.last_mut() {
                Some(Line {
                    payload: Payload::Text(text),
                    ..
                }) => {
                    text.push('\n');
                    text.push_str(body);
                }
                _ => {
                    panic!("fakesmsc printed a message that is not `<from> <to> <type> …`: {raw:?}")
                }
            },
        }
    }
}

/// `<from> <to> <type> <payload>` (see the module doc), or `None`.
fn parse_body(body: &str) -> Option<Line> {
    let mut fields = body.splitn(4, ' ');
    let from = fields.next().filter(|f| !f.is_empty())?;
    let to = fields.next().filter(|f| !f.is_empty())?;
    let kind = fields.next()?;
    let rest = fields.next().unwrap_or("");
    let payload = match kind {
        "text" => Payload::Text(rest.to_owned()),
        "data" => Payload::Data(url_decode(rest)),
        "ucs-2" => Payload::Ucs2(url_decode(rest)),
        "udh" => {
            let (udh, data) = rest
                .split_once(" data ")
                .or_else(|| rest.strip_suffix(" data").map(|udh| (udh, "")))?;
            Payload::Udh {
                udh: url_decode(udh),
                data: url_decode(data),
            }
        }
        _ => return None,
    };
    Some(Line {
        from: from.to_owned(),
        to: to.to_owned(),
        payload,
    })
}

/// Kannel's `octstr_url_encode` undone: `%XX` → byte, `+` → space.
fn url_decode(s: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The concatenation element of a UDH: (reference, total, sequence).
fn concat_info(udh: &[u8]) -> Option<(u16, u8, u8)> {
    let (&udhl, rest) = udh.split_first()?;
    let mut ies = rest.get(..usize::from(udhl))?;
    while let [iei, len, tail @ ..] = ies {
        let data = tail.get(..usize::from(*len))?;
        match (iei, data) {
            (0x00, &[r, total, seq]) => return Some((u16::from(r), total, seq)),
            (0x08, &[r1, r2, total, seq]) => {
                return Some((u16::from_be_bytes([r1, r2]), total, seq))
            }
            _ => {}
        }
        ies = &tail[usize::from(*len)..];
    }
    None
}

fn utf16be(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| match c {
            [h, l] => u16::from_be_bytes([*h, *l]),
            _ => 0xFFFD,
        })
        .collect();
    String::from_utf16_lossy(&units)
}

/// The coding of a UDH message's bytes, and its text (module doc).
fn classify(bytes: &[u8]) -> (SmsCoding, String) {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n')) =>
        {
            (SmsCoding::Text, s.to_owned())
        }
        _ if bytes.len().is_multiple_of(2) => (SmsCoding::Ucs2, utf16be(bytes)),
        _ => (
            SmsCoding::Binary,
            String::from_utf8_lossy(bytes).into_owned(),
        ),
    }
}

/// A concatenated message being put together.
struct Group {
    from: String,
    to: String,
    reference: u16,
    total: u8,
    /// sequence number → bytes.
    parts: std::collections::BTreeMap<u8, Vec<u8>>,
}

enum Slot {
    Single(ReceivedSms),
    Parts(Group),
}

/// Lines → messages, joining concatenated parts (module doc).
fn assemble(lines: Vec<Line>) -> Vec<ReceivedSms> {
    let single = |from: String, to: String, (coding, text): (SmsCoding, String)| {
        Slot::Single(ReceivedSms {
            from,
            to,
            text,
            coding,
            parts: 1,
            total_parts: 1,
        })
    };
    let mut slots: Vec<Slot> = Vec::new();
    for Line { from, to, payload } in lines {
        let slot = match payload {
            Payload::Text(text) => single(from, to, (SmsCoding::Text, text)),
            Payload::Data(bytes) => single(
                from,
                to,
                (
                    SmsCoding::Binary,
                    String::from_utf8_lossy(&bytes).into_owned(),
                ),
            ),
            Payload::Ucs2(bytes) => single(from, to, (SmsCoding::Ucs2, utf16be(&bytes))),
            Payload::Udh { udh, data } => match concat_info(&udh) {
                None => single(from, to, classify(&data)),
                Some((reference, total, seq)) => {
                    // The oldest unfinished message with this key that
                    // lacks this part.
                    let open = slots.iter_mut().find_map(|s| match s {
                        Slot::Parts(g)
                            if g.from == from
                                && g.to == to
                                && g.reference == reference
                                && g.total == total
                                && g.parts.len() < usize::from(total)
                                && !g.parts.contains_key(&seq) =>
                        {
                            Some(g)
                        }
                        _ => None,
                    });
                    if let Some(group) = open {
                        group.parts.insert(seq, data);
                        continue;
                    }
                    Slot::Parts(Group {
                        from,
                        to,
                        reference,
                        total,
                        parts: [(seq, data)].into_iter().collect(),
                    })
                }
            },
        };
        slots.push(slot);
    }
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Single(sms) => sms,
            Slot::Parts(g) => {
                let bytes: Vec<u8> = g.parts.values().flatten().copied().collect();
                let (coding, text) = classify(&bytes);
                ReceivedSms {
                    from: g.from,
                    to: g.to,
                    text,
                    coding,
                    parts: g.parts.len(),
                    total_parts: usize::from(g.total),
                }
            }
        })
        .collect()
}

/// The fakesmsc log parser on canned lines (no Kannel needed).
mod parse_tests {
    use super::*;

    fn received(log: &str) -> Vec<ReceivedSms> {
        let mut lines = Vec::new();
        parse_fakesmsc_log(log, &mut lines);
        assemble(lines)
    }

    fn sms(from: &str, to: &str, text: &str, coding: SmsCoding) -> ReceivedSms {
        ReceivedSms {
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            coding,
            parts: 1,
            total_parts: 1,
        }
    }

    const PREFIX: &str = "2026-12-04 03:21:50 [668] [0] DEBUG: Got message";

    #[test]
    fn kannel_fakesmsc_lines_decode() {
        let log = format!(
            "2026-12-04 03:21:47 [668] [0] INFO: fakesmsc starting\n\
             {PREFIX} 1: <12345 +79161234567 text hello <world>>\n\
             {PREFIX} 2: <12345 2 ucs-2 %04%1F%04%40%048%042%045%04B%00+%00%2B>\n\
             {PREFIX} 3: <12345 3 text line1>\n\
             {PREFIX} 4: <line2 with some words>\n\
             {PREFIX} 5: <12345 4 data %01%FF>\n\
             {PREFIX} 6: <12345 5 ucs-2 %D8%3D%DE%00>\n\
             {PREFIX} 7: <12345 6 text still being wri"
        );
        assert_eq!(
            received(&log),
            [
                sms("12345", "+79161234567", "hello <world>", SmsCoding::Text),
                sms("12345", "2", "Привет +", SmsCoding::Ucs2),
                sms(
                    "12345",
                    "3",
                    "line1\nline2 with some words",
                    SmsCoding::Text
                ),
                sms("12345", "4", "\u{1}\u{FFFD}", SmsCoding::Binary),
                sms("12345", "5", "😀", SmsCoding::Ucs2),
            ]
        );
    }

    #[test]
    fn kannel_fakesmsc_parts_join() {
        let log = format!(
            // Parts out of order; a 16-bit reference; a non-concatenation
            // UDH (port addressing); the same 8-bit reference used again
            // once the first message is complete; a message that stays
            // incomplete.
            "{PREFIX} 1: <1 2 udh %05%00%03%07%02%02 data %04%40%048>\n\
             {PREFIX} 2: <1 2 udh %06%08%04%01%00%02%01 data AB>\n\
             {PREFIX} 3: <1 2 udh %05%00%03%07%02%01 data %04%1F>\n\
             {PREFIX} 4: <1 2 udh %06%08%04%01%00%02%02 data C+D>\n\
             {PREFIX} 5: <1 2 udh %06%05%04%0B%84%23%F0 data %01%02%03>\n\
             {PREFIX} 6: <1 2 udh %05%00%03%07%02%01 data caf%C3>\n\
             {PREFIX} 7: <1 2 udh %05%00%03%07%02%02 data %A9>\n\
             {PREFIX} 8: <1 2 udh %05%00%03%08%03%01 data one>\n\
             {PREFIX} 9: <1 2 udh %05%00%03%08%03%03 data three>\n"
        );
        let got = received(&log);
        let parts = |text: &str, coding, parts, total_parts| ReceivedSms {
            parts,
            total_parts,
            ..sms("1", "2", text, coding)
        };
        assert_eq!(
            got,
            [
                parts("При", SmsCoding::Ucs2, 2, 2),
                parts("ABC D", SmsCoding::Text, 2, 2),
                parts("\u{1}\u{2}\u{3}", SmsCoding::Binary, 1, 1),
                parts("café", SmsCoding::Text, 2, 2),
                parts("onethree", SmsCoding::Text, 2, 3),
            ]
        );
        assert!(!got[4].is_complete());
    }
}
