//! A throw-away SMTP server for one test that keeps what it receives.
//!
//! [`SmtpServer::start`] runs `tests/support/smtp_server.py` (aiosmtpd) on a
//! free port of 127.0.0.1; every accepted message lands in a Maildir of a temp
//! dir, with its SMTP envelope in a JSON file beside it (see the script's
//! doc). [`SmtpServer::start_with`] adds STARTTLS or implicit TLS and/or AUTH
//! (PLAIN/LOGIN). For TLS a throw-away CA and a server certificate for
//! `127.0.0.1` and `localhost` (subjectAltName, as rustls requires) are made
//! with the `openssl` CLI; point the product at [`SmtpServer::ca_cert_path`]
//! to make it trust the server. Dropping the server kills it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::tools;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 5;
/// smtp_server.py's exit code when its port is taken.
const EXIT_PORT_IN_USE: i32 = 3;

/// How the server does TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP, no TLS offered.
    None,
    /// STARTTLS offered and required before MAIL (and before AUTH).
    StartTls,
    /// TLS from the first byte (SMTPS, as on port 465).
    Implicit,
}

/// Options for [`SmtpServer::start_with`].
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    pub tls: SmtpTls,
    /// Require AUTH (PLAIN or LOGIN) with this user and password before MAIL.
    /// Wrong credentials get `535 5.7.8`. With TLS, AUTH is only offered once
    /// the session is encrypted; without TLS it is allowed in clear text.
    pub auth: Option<(String, String)>,
}

impl SmtpOptions {
    /// No TLS, no AUTH (what [`SmtpServer::start`] uses).
    pub fn plain() -> SmtpOptions {
        SmtpOptions {
            tls: SmtpTls::None,
            auth: None,
        }
    }

    /// STARTTLS required.
    pub fn starttls() -> SmtpOptions {
        SmtpOptions {
            tls: SmtpTls::StartTls,
            ..SmtpOptions::plain()
        }
    }

    /// Implicit TLS (SMTPS).
    pub fn implicit_tls() -> SmtpOptions {
        SmtpOptions {
            tls: SmtpTls::Implicit,
            ..SmtpOptions::plain()
        }
    }

    /// Also require AUTH with these credentials.
    pub fn with_auth(mut self, user: &str, password: &str) -> SmtpOptions {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }
}

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The DATA as sent (headers and body, CRLF line ends, dot-stuffing
    /// undone), decoded as UTF-8 with invalid bytes replaced.
    pub raw: String,
    /// MAIL FROM address (without `<>`; empty for the null sender).
    pub envelope_from: String,
    /// RCPT TO addresses, in order.
    pub envelope_to: Vec<String>,
    /// The user that authenticated on the session, if AUTH was used.
    pub auth_login: Option<String>,
    /// Whether the session was encrypted (STARTTLS done, or implicit TLS).
    pub tls: bool,
}

impl ReceivedMail {
    /// The first header called `name` (case-insensitive), unfolded and
    /// trimmed. Not MIME-decoded: an encoded word stays `=?UTF-8?…?=`.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut found: Option<String> = None;
        for line in self.head().lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.trim().eq_ignore_ascii_case(name) {
                    found = Some(v.trim().to_owned());
                }
            }
        }
        found
    }

    /// Everything after the blank line that ends the header (raw: not
    /// MIME- or transfer-decoded; line ends as sent).
    pub fn body(&self) -> &str {
        self.split().1
    }

    fn head(&self) -> &str {
        self.split().0
    }

    fn split(&self) -> (&str, &str) {
        for sep in ["\r\n\r\n", "\n\n"] {
            if let Some(i) = self.raw.find(sep) {
                return (&self.raw[..i], &self.raw[i + sep.len()..]);
            }
        }
        (&self.raw, "")
    }
}

/// A running test SMTP server on 127.0.0.1; killed on drop.
pub struct SmtpServer {
    child: Child,
    port: u16,
    options: SmtpOptions,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl SmtpServer {
    /// A plain SMTP server: no TLS, no AUTH.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(SmtpOptions::plain())
    }

    /// A server with the given TLS mode and AUTH requirement. Panics (with
    /// the server's log) if it does not come up.
    pub fn start_with(options: SmtpOptions) -> SmtpServer {
        let python = tools::python();
        let script = tools::support_script("smtp_server.py");
        let dir = tempfile::Builder::new()
            .prefix("calltrail-smtp-")
            .tempdir()
            .expect("tempdir");
        if options.tls != SmtpTls::None {
            make_certificates(dir.path());
        }
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = tools::free_port();
            let log = dir.path().join(format!("smtp-{attempt}.log"));
            let ready = dir.path().join(format!("smtp-{attempt}.out"));
            let mut child = command(&python, &script, &options, dir.path(), port)
                .stdin(Stdio::null())
                .stdout(File::create(&ready).expect("create server stdout"))
                .stderr(File::create(&log).expect("create server log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
            let marker = format!("READY {port}");
            let mut exit = None;
            let ready_seen = super::wait_until(START_TIMEOUT, || {
                exit = child.try_wait().expect("try_wait");
                exit.is_some()
                    || std::fs::read_to_string(&ready)
                        .map(|s| s.contains(&marker))
                        .unwrap_or(false)
            });
            if ready_seen && exit.is_none() {
                return SmtpServer {
                    child,
                    port,
                    options,
                    dir,
                    log,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let why = super::tail(&log, 30);
            match exit {
                None => {
                    panic!("smtp_server.py did not get ready within {START_TIMEOUT:?}; log:\n{why}")
                }
                Some(status) if status.code() != Some(EXIT_PORT_IN_USE) => {
                    panic!("smtp_server.py exited during start-up ({status}); log:\n{why}")
                }
                Some(_) => {}
            }
            failures.push_str(&format!("--- attempt {attempt}, port {port}:\n{why}\n"));
        }
        panic!("smtp_server.py failed to start {START_ATTEMPTS} times:\n{failures}");
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The options it was started with.
    pub fn options(&self) -> &SmtpOptions {
        &self.options
    }

    /// PEM file of the CA that signed the server certificate: what the
    /// product must trust. `None` without TLS.
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        (self.options.tls != SmtpTls::None).then(|| self.dir.path().join("ca.pem"))
    }

    /// The Maildir the messages land in (`new/` holds them).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    /// The server's session log (commands, AUTH results), last `lines` lines.
    pub fn log_tail(&self, lines: usize) -> String {
        super::tail(&self.log, lines)
    }

    /// All messages received so far, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let maildir = self.maildir();
        let Ok(entries) = std::fs::read_dir(maildir.join("envelopes")) else {
            return Vec::new();
        };
        let mut found: Vec<(u64, ReceivedMail)> = Vec::new();
        for entry in entries {
            let path = entry.expect("read envelopes dir").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // Written atomically after the message: complete when present.
            let Some(key) = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))
            else {
                continue;
            };
            let envelope: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("read envelope"))
                    .unwrap_or_else(|e| panic!("bad envelope {}: {e}", path.display()));
            let raw = std::fs::read(maildir.join("new").join(key))
                .unwrap_or_else(|e| panic!("message {key} of {}: {e}", path.display()));
            let text = |field: &str| envelope[field].as_str().map(str::to_owned);
            found.push((
                envelope["seq"].as_u64().expect("seq in envelope"),
                ReceivedMail {
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                    envelope_from: text("mail_from").unwrap_or_default(),
                    envelope_to: envelope["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|r| r.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    auth_login: text("auth_login"),
                    tls: envelope["tls"].as_bool().unwrap_or(false),
                },
            ));
        }
        found.sort_by_key(|(seq, _)| *seq);
        found.into_iter().map(|(_, mail)| mail).collect()
    }

    /// Waits until at least `n` messages arrived and returns all of them (in
    /// arrival order). Panics with the server log if they don't within
    /// `timeout`.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut mails = Vec::new();
        if super::wait_until(timeout, || {
            mails = self.messages();
            mails.len() >= n
        }) {
            return mails;
        }
        panic!(
            "expected {n} mail(s) on SMTP port {} within {timeout:?}, got {}: {mails:#?}\n\
             --- server log:\n{}",
            self.port,
            mails.len(),
            self.log_tail(40)
        );
    }
}

/// The server's command line for `options` on `port`, its Maildir in `dir`.
fn command(python: &Path, script: &Path, options: &SmtpOptions, dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--port", &port.to_string()])
        .arg("--maildir")
        .arg(dir.join("Maildir"));
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    match options.tls {
        SmtpTls::None => {}
        SmtpTls::StartTls => {
            cmd.arg("--starttls").arg(&cert).arg(&key);
        }
        SmtpTls::Implicit => {
            cmd.arg("--tls").arg(&cert).arg(&key);
        }
    }
    if let Some((user, password)) = &options.auth {
        cmd.args(["--auth", &format!("{user}:{password}")]);
    }
    cmd
}

impl SmtpServer {
    /// Kills the server (connections then are refused); what it received
    /// stays. Idempotent.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server if it runs and starts it again on the same port and
    /// Maildir (what it received stays; new messages are added). Panics
    /// with its log if it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        let log = self.dir.path().join(format!("smtp-restart-{n}.log"));
        let ready = self.dir.path().join(format!("smtp-restart-{n}.out"));
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let mut child = command(
                &tools::python(),
                &tools::support_script("smtp_server.py"),
                &self.options,
                self.dir.path(),
                self.port,
            )
            .stdin(Stdio::null())
            .stdout(File::create(&ready).expect("create server stdout"))
            .stderr(File::create(&log).expect("create server log"))
            .spawn()
            .expect("restart smtp_server.py");
            let marker = format!("READY {}", self.port);
            let mut exit = None;
            let up = super::wait_until(START_TIMEOUT, || {
                exit = child.try_wait().expect("try_wait");
                exit.is_some()
                    || std::fs::read_to_string(&ready)
                        .map(|s| s.contains(&marker))
                        .unwrap_or(false)
            });
            if up && exit.is_none() {
                self.child = child;
                self.log = log;
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            // The port may still be held by the old process for a moment.
            if std::time::Instant::now() > deadline {
                panic!(
                    "smtp_server.py did not come back on port {}; log:\n{}",
                    self.port,
                    super::tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes ca.pem/ca.key and server.pem/server.key (P-256, signed by the CA,
/// subjectAltName IP:127.0.0.1 and DNS:localhost) into `dir`.
fn make_certificates(dir: &Path) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    // One command per line; arguments are split on whitespace.
    let steps = [
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout ca.key -out ca.pem -days 3650 -subj /CN=calltrail-test-CA \
         -addext basicConstraints=critical,CA:TRUE \
         -addext keyUsage=critical,keyCertSign,cRLSign",
        "req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout server.key -out server.csr -subj /CN=localhost",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 3650 \
         -extfile server.ext -out server.pem",
    ];
    for step in steps {
        let mut cmd = Command::new("openssl");
        cmd.args(step.split_whitespace()).current_dir(dir);
        let out = tools::run(&mut cmd, Duration::from_secs(30));
        assert!(
            out.success(),
            "openssl {step} failed (is the openssl CLI installed? apt-get install openssl): {}",
            out.stderr
        );
    }
}
