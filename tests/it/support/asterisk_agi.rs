//! An independent model of Asterisk's side of a FastAGI session: the client
//! half of `res_agi` (Asterisk connects, writes the AGI environment, then
//! executes the commands the server writes, one reply per command). Tests
//! drive calltrail's FastAGI server with it byte for byte as a real Asterisk
//! does. It shares no code with calltrail: plain `std` only.
//!
//! Written from `shared/reference/INTEGRATIONS.md` §2 (its line numbers are
//! into `res/res_agi.c` of Asterisk master, cited as `:N` below), the live
//! transcript in `shared/reference/asterisk-probes/report.txt` ("==== FastAGI",
//! GIT-master), and the C of `res/res_agi.c` as stored for asterisk/asterisk
//! (revision 8c40b67, Asterisk 11 era: functions `parse_args`, `find_command`,
//! `agi_handle_command`, `run_agi`, the `commands[]` table and the handlers;
//! where that revision and the doc differ, the doc, i.e. master, wins: the
//! exact-arity check of SET VARIABLE and the wording of the 511 reply).
//!
//! What is modelled, in order:
//!
//! 1. Connect with a 2000 ms timeout (`MAX_AGI_CONNECT`, `:1531`,
//!    `:2149-2160`); failure → `AGISTATUS=FAILURE`, nothing sent.
//! 2. The environment, one write per line (one `ast_agi_send` each):
//!    `agi_network: yes`, `agi_network_script: <script>` (left out when the
//!    script is empty, `launch_netscript`), then `setup_env` (`:2449-2493`)
//!    in the live transcript's order and spelling, `agi_arg_N` for the
//!    `AGI()` arguments (`:2488-2489`) and an empty line. `agi_callerid` and
//!    `agi_calleridname` are `unknown` when unset or empty (`S_COR`). Values
//!    [`AgiCall`] does not set are the live transcript's; `agi_uniqueid`,
//!    `agi_threadid` and the channel's sequence number differ per call.
//! 3. The loop (`run_agi`): a command is read like `fgets` into
//!    `buf[AGI_BUF_LEN = 2048]` — up to `\n` or 2047 bytes (a longer line is
//!    cut there and its rest is read as the next command). The buffer is a C
//!    string: a NUL byte ends the command, and because the read loop looks for
//!    `\n` at `strlen(buf)`, a line holding a NUL is merged with the following
//!    one(s) from the NUL on (what the C does). EOF (or a read error) with
//!    nothing read ends the session (`SUCCESS`, `:4397-4405`); EOF after a
//!    partial line runs that line first; a buffer starting with NUL also ends
//!    it (`!buf[0]`); a line starting with `failure` (any case,
//!    `strncasecmp`) ends it with `FAILURE` (`:4408-4411`). Otherwise the
//!    trailing `\n` is dropped (a `\r` stays in the last argument) and the
//!    command handled.
//! 4. `agi_handle_command`: [`parse_args`], then `find_command` (the first
//!    words must equal a command's words, ASCII case-insensitively; further
//!    words are its arguments): unknown → `510 Invalid or unknown command`
//!    (`:4217-4226`), known but not dead-ok on a dead channel → `511 Command
//!    Not Permitted on a dead channel or intercept routine` (`:4228`,
//!    `:4276-4283`), else the handler. Wrong arity → the one-line `520
//!    Invalid command syntax.  Proper usage not available.` (`:4231-4245`).
//! 5. Handlers: `SET VARIABLE name value` (exactly 4 argv, `:3373-3380`;
//!    stored as is, no `${}` evaluation; `200 result=1`), `GET VARIABLE name`
//!    (3 argv; `200 result=1 (<value>)` — at most 1023 bytes, `tempstr[1024]`
//!    — or `200 result=0`; `:3384-3405`; a name ending in `)` is a function:
//!    `CALLERID(num)`/`CALLERID(name)` answer from the call, other functions
//!    only what was SET on them), `VERBOSE msg [level]` (≥ 2 argv,
//!    `200 result=1`), `NOOP` (`200 result=0`), `ANSWER` (`200 result=0`),
//!    `HANGUP [channel]` (`200 result=1` and the channel hangs up; another
//!    channel's name → `200 result=-1`). Any other real command on a live
//!    channel makes the model panic: it does not implement it, and a test
//!    should fail loudly rather than get an invented answer.
//! 6. Hangup: when the channel hangs up (`hangup_after_env`,
//!    `hangup_between`, or the server's `HANGUP`), Asterisk writes an
//!    unsolicited `HANGUP\n` (`:4328-4337`, `AGISIGHUP` left at its default),
//!    the channel is dead from then on (only the commands flagged dead-ok in
//!    `commands[]` run) and `AGISTATUS` becomes `HANGUP` unless a `failure`
//!    line follows. With `AGIEXITONHANGUP=yes` ([`AgiCall::exit_on_hangup`])
//!    the AGI ends right there (`:4313-4314`, `:4338-4340`). A channel hangs
//!    up once: a second trigger does nothing.
//! 7. End: Asterisk writes `HANGUP\n` once more when the AGI ends
//!    (`:4444-4456`) — after *every* session, whether or not the channel hung
//!    up — then closes the socket. A server that closed its socket never
//!    sees it (the write is attempted; [`AgiOutcome::transcript`] has it only
//!    if the kernel accepted it); one that only shut down its write side
//!    reads it, then EOF.
//!
//! Model-only: a real Asterisk waits for the server forever (`ms = -1`,
//! `:4342`); here each read is bounded by the caller's timeout and the
//! session then ends with status `TIMEOUT` (no final `HANGUP`).
//! `close_after_env` half-closes the socket after the environment, which a
//! real Asterisk never does; the model goes on reading and answering (the
//! answers then fail to send, and are left out of the transcript).
//!
//! Not modelled: `AGISIGHUP=no`, `hagi://`, commands other than those
//! above, the multi-line `520-…` usage reply (a build with XML
//! documentation sends `520-Invalid command syntax.  Proper usage
//! follows:`, the usage text, `520 End of proper usage.` instead of the one
//! line), global variables and builtins such as `${EXTEN}` in GET VARIABLE.

// The integration tests each use a part of this API.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `MAX_ARGS` (`:1516`): `parse_args` keeps at most `MAX_ARGS - 1` words.
const MAX_ARGS: usize = 128;
/// `AGI_BUF_LEN`: the command buffer of `run_agi`.
const AGI_BUF_LEN: usize = 2048;
/// `MAX_AGI_CONNECT` (`:1531`), per address.
const MAX_AGI_CONNECT: Duration = Duration::from_millis(2000);
/// `tempstr[1024]` of `handle_getvariable`.
const GET_VARIABLE_BUF: usize = 1024;

const REPLY_510: &str = "510 Invalid or unknown command";
const REPLY_511: &str = "511 Command Not Permitted on a dead channel or intercept routine";
const REPLY_520: &str = "520 Invalid command syntax.  Proper usage not available.";

/// The live transcript's values for what [`AgiCall`] does not set.
const CHANNEL_PREFIX: &str = "Local/agi@probe-";
const CHANNEL_TYPE: &str = "Local";
const LANGUAGE: &str = "en";
const VERSION: &str = "GIT-master-f0c1c1a7b7";
const CONTEXT: &str = "probe";
const EXTENSION: &str = "agi";
const PRIORITY: &str = "3";
const THREAD_ID_BASE: u64 = 140_354_025_232_064;

/// `res_agi`'s `commands[]` (plus `gosub`, registered by app_stack): the
/// command words and whether the command runs on a dead channel.
const COMMANDS: &[(&[&str], bool)] = &[
    (&["answer"], false),
    (&["asyncagi", "break"], true),
    (&["channel", "status"], false),
    (&["database", "del"], true),
    (&["database", "deltree"], true),
    (&["database", "get"], true),
    (&["database", "put"], true),
    (&["exec"], true),
    (&["get", "data"], false),
    (&["get", "full", "variable"], true),
    (&["get", "option"], false),
    (&["get", "variable"], true),
    (&["hangup"], false),
    (&["noop"], true),
    (&["receive", "char"], false),
    (&["receive", "text"], false),
    (&["record", "file"], false),
    (&["say", "alpha"], false),
    (&["say", "digits"], false),
    (&["say", "number"], false),
    (&["say", "phonetic"], false),
    (&["say", "date"], false),
    (&["say", "time"], false),
    (&["say", "datetime"], false),
    (&["send", "image"], false),
    (&["send", "text"], false),
    (&["set", "autohangup"], false),
    (&["set", "callerid"], false),
    (&["set", "context"], false),
    (&["set", "extension"], false),
    (&["set", "music"], false),
    (&["set", "priority"], false),
    (&["set", "variable"], true),
    (&["stream", "file"], false),
    (&["control", "stream", "file"], false),
    (&["tdd", "mode"], false),
    (&["verbose"], true),
    (&["wait", "for", "digit"], false),
    (&["speech", "create"], false),
    (&["speech", "set"], false),
    (&["speech", "destroy"], true),
    (&["speech", "load", "grammar"], false),
    (&["speech", "unload", "grammar"], true),
    (&["speech", "activate", "grammar"], false),
    (&["speech", "deactivate", "grammar"], false),
    (&["speech", "recognize"], false),
    (&["gosub"], false),
];

/// Makes `agi_uniqueid`, `agi_threadid` and the channel name differ per call.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// One call's parameters: what the dialplan's `AGI(agi://…/<script>,<args>)`
/// and the channel give Asterisk, and when the channel hangs up.
#[derive(Debug, Clone)]
pub struct AgiCall {
    /// Everything after the host part's `/`, as written in the dialplan (not
    /// URL-decoded), e.g. `lookup` or `lookup?number=%2B7916…`; becomes
    /// `agi_network_script` and the end of `agi_request`.
    pub script: String,
    /// `agi_callerid`; `None` or empty → `unknown`.
    pub callerid: Option<String>,
    /// `agi_calleridname`; `None` or empty → `unknown`.
    pub calleridname: Option<String>,
    /// Raw bytes for `agi_calleridname` (e.g. a cp1251 name), used instead of
    /// `calleridname` when set (empty → `unknown`).
    pub calleridname_raw: Option<Vec<u8>>,
    /// `agi_arg_1` … `agi_arg_N`.
    pub args: Vec<String>,
    /// The channel hangs up right after the environment: `HANGUP\n` follows
    /// the empty line and only dead-ok commands run.
    pub hangup_after_env: bool,
    /// The channel hangs up while the server's Nth command (0-based) is on
    /// its way: `HANGUP\n` is written after that command is read and before
    /// its reply, and the command runs on the dead channel.
    pub hangup_between: Option<usize>,
    /// Model-only: shut down the write side right after the environment
    /// (after the `HANGUP\n` of `hangup_after_env`).
    pub close_after_env: bool,
    /// `AGIEXITONHANGUP=yes`: the AGI ends as soon as the channel hangs up
    /// (the command being handled then gets no reply).
    pub exit_on_hangup: bool,
}

impl AgiCall {
    /// A call to `script` with no caller ID, no arguments and no hangup.
    pub fn new(script: &str) -> Self {
        AgiCall {
            script: script.to_string(),
            callerid: None,
            calleridname: None,
            calleridname_raw: None,
            args: Vec::new(),
            hangup_after_env: false,
            hangup_between: None,
            close_after_env: false,
            exit_on_hangup: false,
        }
    }
}

/// What happened in one session.
#[derive(Debug, Clone, Default)]
pub struct AgiOutcome {
    /// `AGISTATUS`: `SUCCESS` (the server closed the socket), `FAILURE` (a
    /// `failure` line, or the connection failed), `HANGUP` (the channel hung
    /// up during the AGI), or the model's own `TIMEOUT` (no full line within
    /// the read timeout, where a real Asterisk would wait forever).
    pub status: String,
    /// Every variable SET, in order, name and value as Asterisk stores them
    /// (after [`parse_args`], no `${}` evaluation), lossy UTF-8.
    pub variables: Vec<(String, String)>,
    /// The commands as Asterisk executes them: each line without its `\n`,
    /// as a C string (cut at a NUL). `failure` lines are not commands.
    pub commands: Vec<Vec<u8>>,
    /// The reply to each command, without `\n` (lossy UTF-8). With
    /// `exit_on_hangup`, the command during which the channel hung up has
    /// none, so this can be one shorter than `commands`.
    pub replies: Vec<String>,
    /// Every byte sent and received, in order: `'<'` written by the model
    /// (Asterisk), `'>'` read from the server (one entry per command read).
    pub transcript: Vec<(char, Vec<u8>)>,
}

impl AgiOutcome {
    /// The last value SET for `name` (exactly as the server wrote the name).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All bytes written by the model (`'<'`), concatenated.
    pub fn sent(&self) -> Vec<u8> {
        self.side('<')
    }

    /// All bytes read from the server (`'>'`), concatenated.
    pub fn received(&self) -> Vec<u8> {
        self.side('>')
    }

    fn side(&self, dir: char) -> Vec<u8> {
        self.transcript
            .iter()
            .filter(|(d, _)| *d == dir)
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }
}

/// Runs one FastAGI session against the server at `addr` as Asterisk does
/// (see the module documentation). `timeout` bounds each read from the
/// server (model-only safety).
pub fn run_agi(addr: SocketAddr, call: &AgiCall, timeout: Duration) -> AgiOutcome {
    let stream = match TcpStream::connect_timeout(&addr, MAX_AGI_CONNECT) {
        Ok(stream) => stream,
        Err(_) => {
            return AgiOutcome {
                status: "FAILURE".to_string(),
                ..AgiOutcome::default()
            }
        }
    };
    // `set_read_timeout` refuses a zero duration.
    stream
        .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .expect("set the AGI socket's read timeout");
    let mut session = Session::new(addr, call, &stream);
    let status = session.run();
    let mut outcome = session.out;
    outcome.status = status.to_string();
    outcome
    // `stream` is closed here, as `fclose(readf)` closes Asterisk's socket.
}

/// Asterisk's `parse_args` (`:4124-4185`): splits one command line into argv
/// exactly as `res_agi.c` does, on bytes.
///
/// * Space and tab outside quotes end a word; runs of them make no empty
///   words.
/// * `"` toggles quoting and is dropped; an opening quote right after
///   whitespace (or at the start) starts a word, so `""` there is an empty
///   word. A quote inside a word just toggles: `ab"c d"e` is `abc de`. An
///   unterminated quote runs to the end of the line.
/// * `\` is dropped and makes the next byte literal: `\"` is `"`, `\\` is
///   `\`, `\ ` is a space inside the word, `\n` is `n`; a trailing `\`
///   vanishes.
/// * At most `MAX_ARGS - 1` = 127 words: the C stops starting words at
///   `x >= MAX_ARGS - 1` ("Too many arguments, truncating") and drops what
///   follows. (Its quote branch has no such check and would write past
///   `argv[]`, which is undefined; the model drops those words too.)
/// * The line is a C string: a NUL byte ends it.
pub fn parse_args(line: &[u8]) -> Vec<Vec<u8>> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut argv: Vec<Vec<u8>> = Vec::new();
    // The word being written; `None` when bytes would go to no argv entry.
    let mut cur: Option<usize> = None;
    let mut quoted = false;
    let mut escaped = false;
    let mut whitespace = true;
    for &ch in line {
        let literal = match ch {
            b'"' if !escaped => {
                quoted = !quoted;
                if quoted && whitespace {
                    // "If we're starting a quote, coming off white space
                    // start a new word, too".
                    cur = if argv.len() < MAX_ARGS - 1 {
                        argv.push(Vec::new());
                        Some(argv.len() - 1)
                    } else {
                        None
                    };
                    whitespace = false;
                }
                false
            }
            b' ' | b'\t' if !quoted && !escaped => {
                whitespace = true;
                cur = None;
                false
            }
            b'\\' if !escaped => {
                escaped = true;
                false
            }
            _ => true,
        };
        if !literal {
            continue;
        }
        if whitespace {
            if argv.len() >= MAX_ARGS - 1 {
                // The C `break`s out of the switch: the byte is dropped and
                // `escaped` is not reset.
                continue;
            }
            argv.push(Vec::new());
            cur = Some(argv.len() - 1);
            whitespace = false;
        }
        if let Some(i) = cur {
            argv[i].push(ch);
        }
        escaped = false;
    }
    argv
}

/// `strlen` of a buffer holding a C string.
fn cstrlen(buf: &[u8]) -> usize {
    buf.iter().position(|&b| b == 0).unwrap_or(buf.len())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first entry of [`COMMANDS`] whose words start `argv`.
fn find_command(argv: &[Vec<u8>]) -> Option<(&'static [&'static str], bool)> {
    COMMANDS.iter().copied().find(|(words, _)| {
        argv.len() >= words.len()
            && words
                .iter()
                .zip(argv)
                .all(|(w, a)| w.as_bytes().eq_ignore_ascii_case(a))
    })
}

/// What one `fgets` call ended with.
enum Fgets {
    /// Stopped after `\n` or when the buffer was full.
    Read,
    /// Hit EOF (or a read error, which ends the session the same way).
    Eof,
    /// Model-only: nothing within the read timeout.
    Timeout,
}

/// What one pass of `run_agi`'s read loop produced.
enum Incoming {
    /// A command buffer (C string, still with its `\n` if it had one).
    Line(Vec<u8>),
    /// The server is done (EOF, or an empty buffer).
    End,
    Timeout,
}

struct Session<'a> {
    addr: SocketAddr,
    call: &'a AgiCall,
    stream: &'a TcpStream,
    reader: BufReader<&'a TcpStream>,
    out: AgiOutcome,
    /// The channel's variables: name (leading `_`/`__` stripped, as
    /// `ast_var_name` reads them) and value.
    vars: Vec<(Vec<u8>, Vec<u8>)>,
    channel: String,
    uniqueid: String,
    thread_id: u64,
    /// The channel hung up: only dead-ok commands run.
    dead: bool,
    /// `returnstatus` became `AGI_RESULT_HANGUP`.
    hung_up: bool,
    /// A `failure` line arrived.
    failed: bool,
    /// `feof(readf)`: sticky.
    eof: bool,
}

impl<'a> Session<'a> {
    fn new(addr: SocketAddr, call: &'a AgiCall, stream: &'a TcpStream) -> Self {
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Session {
            addr,
            call,
            stream,
            reader: BufReader::new(stream),
            out: AgiOutcome::default(),
            vars: Vec::new(),
            channel: format!("{CHANNEL_PREFIX}{:08x};2", n + 0x15),
            uniqueid: format!("{secs}.{n}"),
            thread_id: THREAD_ID_BASE + n,
            dead: false,
            hung_up: false,
            failed: false,
            eof: false,
        }
    }

    /// Writes `bytes` in one write, as `ast_agi_send` does; a failed write
    /// is ignored (as Asterisk does) and left out of the transcript.
    fn send(&mut self, bytes: &[u8]) {
        let mut w = self.stream;
        if w.write_all(bytes).is_ok() {
            self.out.transcript.push(('<', bytes.to_vec()));
        }
    }

    fn env_line(&mut self, key: &str, value: &[u8]) {
        let mut line = Vec::with_capacity(key.len() + value.len() + 3);
        line.extend_from_slice(key.as_bytes());
        line.extend_from_slice(b": ");
        line.extend_from_slice(value);
        line.push(b'\n');
        self.send(&line);
    }

    fn send_env(&mut self) {
        let call = self.call;
        self.env_line("agi_network", b"yes");
        if !call.script.is_empty() {
            self.env_line("agi_network_script", call.script.as_bytes());
        }
        let request = if call.script.is_empty() {
            format!("agi://{}", self.addr)
        } else {
            format!("agi://{}/{}", self.addr, call.script)
        };
        self.env_line("agi_request", request.as_bytes());
        let channel = self.channel.clone();
        self.env_line("agi_channel", channel.as_bytes());
        self.env_line("agi_language", LANGUAGE.as_bytes());
        self.env_line("agi_type", CHANNEL_TYPE.as_bytes());
        let uniqueid = self.uniqueid.clone();
        self.env_line("agi_uniqueid", uniqueid.as_bytes());
        self.env_line("agi_version", VERSION.as_bytes());
        let callerid: &[u8] = match call.callerid.as_deref() {
            Some(num) if !num.is_empty() => num.as_bytes(),
            _ => b"unknown",
        };
        self.env_line("agi_callerid", callerid);
        let name: &[u8] = match (&call.calleridname_raw, call.calleridname.as_deref()) {
            (Some(raw), _) => raw,
            (None, Some(name)) => name.as_bytes(),
            (None, None) => b"",
        };
        let name: &[u8] = if name.is_empty() { b"unknown" } else { name };
        self.env_line("agi_calleridname", name);
        self.env_line("agi_callingpres", b"0");
        self.env_line("agi_callingani2", b"0");
        self.env_line("agi_callington", b"0");
        self.env_line("agi_callingtns", b"0");
        self.env_line("agi_dnid", b"unknown");
        self.env_line("agi_rdnis", b"unknown");
        self.env_line("agi_context", CONTEXT.as_bytes());
        self.env_line("agi_extension", EXTENSION.as_bytes());
        self.env_line("agi_priority", PRIORITY.as_bytes());
        self.env_line("agi_enhanced", b"0.0");
        self.env_line("agi_accountcode", b"");
        let thread_id = self.thread_id.to_string();
        self.env_line("agi_threadid", thread_id.as_bytes());
        for (i, arg) in call.args.iter().enumerate() {
            self.env_line(&format!("agi_arg_{}", i + 1), arg.as_bytes());
        }
        self.send(b"\n");
    }

    /// The session after the connect; returns `AGISTATUS`.
    fn run(&mut self) -> &'static str {
        self.send_env();
        if self.call.hangup_after_env && self.channel_hangs_up() {
            return self.finish();
        }
        if self.call.close_after_env {
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        loop {
            let line = match self.read_command() {
                Incoming::Line(line) => line,
                Incoming::End => break,
                Incoming::Timeout => return "TIMEOUT",
            };
            if line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"failure") {
                self.failed = true;
                break;
            }
            let mut command = line;
            if command.last() == Some(&b'\n') {
                command.pop();
            }
            let index = self.out.commands.len();
            self.out.commands.push(command.clone());
            if self.call.hangup_between == Some(index) && self.channel_hangs_up() {
                break;
            }
            let (reply, hangs_up) = self.handle(&command);
            let mut wire = reply.clone();
            wire.push(b'\n');
            self.send(&wire);
            self.out.replies.push(lossy(&reply));
            if hangs_up && self.channel_hangs_up() {
                break;
            }
        }
        self.finish()
    }

    /// The channel hangs up (once): `HANGUP\n`, dead mode, `AGISTATUS`
    /// `HANGUP`. Returns whether the AGI ends now (`AGIEXITONHANGUP`).
    fn channel_hangs_up(&mut self) -> bool {
        if self.dead {
            return false;
        }
        self.dead = true;
        self.hung_up = true;
        self.send(b"HANGUP\n");
        self.call.exit_on_hangup
    }

    /// The end of `run_agi`: `HANGUP\n` once more, then `AGISTATUS`.
    fn finish(&mut self) -> &'static str {
        self.send(b"HANGUP\n");
        if self.failed {
            "FAILURE"
        } else if self.hung_up {
            "HANGUP"
        } else {
            "SUCCESS"
        }
    }

    /// `fgets(buf + at, len, readf)`: at most `len - 1` bytes, through `\n`.
    fn fgets(&mut self, buf: &mut Vec<u8>, at: usize, len: usize, raw: &mut Vec<u8>) -> Fgets {
        buf.truncate(at);
        let mut room = len - 1;
        while room > 0 {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Fgets::Timeout;
                }
                Err(_) => {
                    self.eof = true;
                    return Fgets::Eof;
                }
            };
            if chunk.is_empty() {
                self.eof = true;
                return Fgets::Eof;
            }
            let take = &chunk[..chunk.len().min(room)];
            let (n, newline) = match take.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (take.len(), false),
            };
            buf.extend_from_slice(&take[..n]);
            raw.extend_from_slice(&take[..n]);
            self.reader.consume(n);
            room -= n;
            if newline {
                break;
            }
        }
        Fgets::Read
    }

    /// One pass of `run_agi`'s read loop (fast AGI).
    fn read_command(&mut self) -> Incoming {
        if self.eof {
            return Incoming::End;
        }
        let mut buf = Vec::new();
        let mut raw = Vec::new();
        let mut len = AGI_BUF_LEN;
        let mut timed_out = false;
        while len > 1 {
            let at = cstrlen(&buf);
            match self.fgets(&mut buf, at, len, &mut raw) {
                Fgets::Read => {}
                Fgets::Eof => break,
                Fgets::Timeout => {
                    timed_out = true;
                    break;
                }
            }
            let buflen = cstrlen(&buf);
            if buflen > 0 && buf[buflen - 1] == b'\n' {
                break;
            }
            len = AGI_BUF_LEN - buflen;
        }
        if !raw.is_empty() {
            self.out.transcript.push(('>', raw));
        }
        if timed_out {
            return Incoming::Timeout;
        }
        buf.truncate(cstrlen(&buf));
        if buf.is_empty() {
            // "Program terminated".
            return Incoming::End;
        }
        Incoming::Line(buf)
    }

    /// `agi_handle_command`: the reply (without `\n`) and whether the
    /// command hangs the channel up.
    fn handle(&mut self, command: &[u8]) -> (Vec<u8>, bool) {
        let argv = parse_args(command);
        let Some((words, dead_ok)) = find_command(&argv) else {
            return (REPLY_510.into(), false);
        };
        if self.dead && !dead_ok {
            return (REPLY_511.into(), false);
        }
        let usage = || (REPLY_520.as_bytes().to_vec(), false);
        match words {
            ["set", "variable"] => {
                if argv.len() != 4 {
                    return usage();
                }
                self.set_var(&argv[2], &argv[3]);
                (b"200 result=1".to_vec(), false)
            }
            ["get", "variable"] => {
                if argv.len() != 3 {
                    return usage();
                }
                match self.get_var(&argv[2]) {
                    Some(mut value) => {
                        value.truncate(GET_VARIABLE_BUF - 1);
                        let mut reply = b"200 result=1 (".to_vec();
                        reply.extend_from_slice(&value);
                        reply.push(b')');
                        (reply, false)
                    }
                    None => (b"200 result=0".to_vec(), false),
                }
            }
            ["verbose"] => {
                if argv.len() < 2 {
                    return usage();
                }
                (b"200 result=1".to_vec(), false)
            }
            ["noop"] => (b"200 result=0".to_vec(), false),
            ["answer"] => (b"200 result=0".to_vec(), false),
            ["hangup"] => match argv.len() {
                1 => (b"200 result=1".to_vec(), true),
                2 if argv[1].eq_ignore_ascii_case(self.channel.as_bytes())
                    || argv[1] == self.uniqueid.as_bytes() =>
                {
                    (b"200 result=1".to_vec(), true)
                }
                2 => (b"200 result=-1".to_vec(), false),
                _ => usage(),
            },
            _ => panic!(
                "asterisk_agi model: the server sent `{}`, a real res_agi command the model \
                 does not implement",
                lossy(command)
            ),
        }
    }

    /// `pbx_builtin_setvar_helper`: a name ending in `)` is a function
    /// write (kept under its full name); otherwise leading `_`/`__` are
    /// stripped for comparison and the old value is replaced.
    fn set_var(&mut self, name: &[u8], value: &[u8]) {
        let key = if name.ends_with(b")") {
            name
        } else {
            let tail = name.strip_prefix(b"_").unwrap_or(name);
            tail.strip_prefix(b"_").unwrap_or(tail)
        };
        self.vars.retain(|(k, _)| k.as_slice() != key);
        self.vars.push((key.to_vec(), value.to_vec()));
        self.out.variables.push((lossy(name), lossy(value)));
    }

    /// `handle_getvariable`'s lookup: `ast_func_read` for a name ending in
    /// `)`, else the channel variable.
    fn get_var(&self, name: &[u8]) -> Option<Vec<u8>> {
        let set = self
            .vars
            .iter()
            .find(|(k, _)| k.as_slice() == name)
            .map(|(_, v)| v.clone());
        if set.is_some() || !name.ends_with(b")") {
            return set;
        }
        let field = |s: &Option<String>| s.as_deref().unwrap_or("").as_bytes().to_vec();
        if name.eq_ignore_ascii_case(b"CALLERID(num)") {
            Some(field(&self.call.callerid))
        } else if name.eq_ignore_ascii_case(b"CALLERID(name)") {
            Some(match &self.call.calleridname_raw {
                Some(raw) => raw.clone(),
                None => field(&self.call.calleridname),
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;

    fn words(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn parse_args_splits_on_spaces_and_tabs() {
        assert_eq!(
            parse_args(b"  SET\tVARIABLE  X \t 1  "),
            words(&["SET", "VARIABLE", "X", "1"])
        );
        assert_eq!(parse_args(b""), Vec::<Vec<u8>>::new());
        assert_eq!(parse_args(b" \t "), Vec::<Vec<u8>>::new());
        // `\r` is no separator: it stays in the last word.
        assert_eq!(parse_args(b"NOOP\r"), words(&["NOOP\r"]));
    }

    #[test]
    fn parse_args_quoted_value_with_spaces() {
        assert_eq!(
            parse_args(b"SET VARIABLE CUSTOMER_NAME \"Ivan Petrov\""),
            words(&["SET", "VARIABLE", "CUSTOMER_NAME", "Ivan Petrov"])
        );
        // A tab inside quotes is kept too.
        assert_eq!(parse_args(b"\"a\tb\""), words(&["a\tb"]));
        // A quote inside a word toggles quoting without starting a word.
        assert_eq!(parse_args(b"ab\"c d\"e f"), words(&["abc de", "f"]));
        assert_eq!(parse_args(b"\"a\"\"b\""), words(&["ab"]));
    }

    #[test]
    fn parse_args_escapes() {
        assert_eq!(
            parse_args(br#"SET VARIABLE N "Ivan \"P\" Petrov""#),
            words(&["SET", "VARIABLE", "N", "Ivan \"P\" Petrov"])
        );
        assert_eq!(parse_args(br#""a\\b""#), words(&["a\\b"]));
        // Any other escaped byte is itself; the backslash goes.
        assert_eq!(parse_args(br"C:\path \n"), words(&["C:path", "n"]));
        // An escaped space or quote outside quotes is literal.
        assert_eq!(parse_args(br"a\ b c"), words(&["a b", "c"]));
        assert_eq!(parse_args(br"x \ y"), words(&["x", " y"]));
        assert_eq!(parse_args(br#"\"q\""#), words(&["\"q\""]));
        // A trailing backslash vanishes.
        assert_eq!(parse_args(br"a b\"), words(&["a", "b"]));
    }

    #[test]
    fn parse_args_unterminated_quote_runs_to_the_end() {
        assert_eq!(
            parse_args(b"SET VARIABLE X \"abc def\tghi"),
            words(&["SET", "VARIABLE", "X", "abc def\tghi"])
        );
    }

    #[test]
    fn parse_args_empty_quoted_values() {
        assert_eq!(
            parse_args(b"SET VARIABLE X \"\""),
            words(&["SET", "VARIABLE", "X", ""])
        );
        assert_eq!(parse_args(b"\"\" \"\""), words(&["", ""]));
        // Not after whitespace, `""` adds nothing.
        assert_eq!(parse_args(b"a\"\"b"), words(&["ab"]));
    }

    #[test]
    fn parse_args_keeps_127_words() {
        let line: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let argv = parse_args(line.join(" ").as_bytes());
        assert_eq!(argv.len(), MAX_ARGS - 1);
        assert_eq!(argv[126], b"w126".to_vec());
        let exact: Vec<String> = (0..127).map(|i| format!("w{i}")).collect();
        assert_eq!(parse_args(exact.join(" ").as_bytes()).len(), 127);
        // Words past the limit are dropped whether quoted or not.
        let quoted = format!("{} \"x y\" z", exact.join(" "));
        assert_eq!(parse_args(quoted.as_bytes()).len(), 127);
    }

    #[test]
    fn parse_args_keeps_bytes_and_stops_at_nul() {
        let cp1251 = b"SET VARIABLE N \"\xc8\xe2\xe0\xed \\\"\xcf\\\"\"";
        assert_eq!(parse_args(cp1251)[3], b"\xc8\xe2\xe0\xed \"\xcf\"".to_vec());
        assert_eq!(parse_args(b"a b\0c d"), words(&["a", "b"]));
    }

    #[test]
    fn find_command_is_case_insensitive_and_needs_all_words() {
        assert_eq!(
            find_command(&words(&["set", "Variable", "X", "1"])).map(|c| c.0),
            Some(&["set", "variable"][..])
        );
        assert!(find_command(&words(&["SET"])).is_none());
        assert!(find_command(&words(&["SETVARIABLE"])).is_none());
        assert!(find_command(&[]).is_none());
        assert_eq!(
            find_command(&words(&["GET", "FULL", "VARIABLE", "x"])).map(|c| c.0),
            Some(&["get", "full", "variable"][..])
        );
    }

    /// A FastAGI server: reads the environment, then for each command
    /// writes it and reads lines up to a `2xx`/`5xx` reply, then closes.
    fn serve(commands: Vec<Vec<u8>>) -> (SocketAddr, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&stream);
            let mut seen = Vec::new();
            loop {
                let mut line = Vec::new();
                reader.read_until(b'\n', &mut line).unwrap();
                seen.extend_from_slice(&line);
                if line == b"\n" || line.is_empty() {
                    break;
                }
            }
            for command in commands {
                (&stream).write_all(&command).unwrap();
                loop {
                    let mut line = Vec::new();
                    if reader.read_until(b'\n', &mut line).unwrap() == 0 {
                        return seen;
                    }
                    seen.extend_from_slice(&line);
                    if line.first().is_some_and(|b| *b == b'2' || *b == b'5') {
                        break;
                    }
                }
            }
            seen
        });
        (addr, handle)
    }

    #[test]
    fn session_replays_the_live_transcript() {
        let (addr, server) = serve(vec![
            b"SET VARIABLE CUSTOMER_NAME \"Ivan Petrov\"\n".to_vec(),
            b"SET VARIABLE CUSTOMER_ACTION VIP\n".to_vec(),
            b"GET VARIABLE CALLERID(num)\n".to_vec(),
            b"VERBOSE \"agi says hello\" 1\n".to_vec(),
            b"NOOP\n".to_vec(),
        ]);
        let mut call = AgiCall::new("lookup?number=+79161234567");
        call.callerid = Some("+79161234567".into());
        call.args = vec!["first arg".into(), "second".into()];
        let out = run_agi(addr, &call, Duration::from_secs(5));
        let seen = server.join().unwrap();
        assert_eq!(out.status, "SUCCESS");
        assert_eq!(out.var("CUSTOMER_NAME"), Some("Ivan Petrov"));
        assert_eq!(out.var("CUSTOMER_ACTION"), Some("VIP"));
        assert_eq!(
            out.replies,
            [
                "200 result=1",
                "200 result=1",
                "200 result=1 (+79161234567)",
                "200 result=1",
                "200 result=0"
            ]
        );
        let text = String::from_utf8(seen).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .take_while(|l| !l.is_empty())
            .map(|l| l.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "agi_network",
                "agi_network_script",
                "agi_request",
                "agi_channel",
                "agi_language",
                "agi_type",
                "agi_uniqueid",
                "agi_version",
                "agi_callerid",
                "agi_calleridname",
                "agi_callingpres",
                "agi_callingani2",
                "agi_callington",
                "agi_callingtns",
                "agi_dnid",
                "agi_rdnis",
                "agi_context",
                "agi_extension",
                "agi_priority",
                "agi_enhanced",
                "agi_accountcode",
                "agi_threadid",
                "agi_arg_1",
                "agi_arg_2"
            ]
        );
        assert!(text.starts_with(&format!(
            "agi_network: yes\nagi_network_script: lookup?number=+79161234567\n\
             agi_request: agi://{addr}/lookup?number=+79161234567\n"
        )));
        assert!(text.contains("\nagi_calleridname: unknown\n"));
        assert!(text.contains("\nagi_accountcode: \nagi_threadid: "));
        assert!(text.contains("\nagi_arg_1: first arg\nagi_arg_2: second\n\n"));
        assert_eq!(out.transcript.first().unwrap().1, b"agi_network: yes\n");
        // The server closed first; Asterisk still writes its final `HANGUP`.
        assert_eq!(out.transcript.last().unwrap(), &('<', b"HANGUP\n".to_vec()));
    }

    #[test]
    fn session_hangup_between_makes_the_channel_dead() {
        let (addr, server) = serve(vec![
            b"SET VARIABLE A 1\n".to_vec(),
            b"SET VARIABLE B 2\n".to_vec(),
            b"STREAM FILE x \"\"\n".to_vec(),
            b"BOGUS\n".to_vec(),
        ]);
        let mut call = AgiCall::new("");
        call.hangup_between = Some(1);
        let out = run_agi(addr, &call, Duration::from_secs(5));
        let seen = String::from_utf8(server.join().unwrap()).unwrap();
        assert_eq!(out.status, "HANGUP");
        assert_eq!(out.var("B"), Some("2"));
        assert_eq!(
            out.replies,
            ["200 result=1", "200 result=1", REPLY_511, REPLY_510]
        );
        assert!(!seen.contains("agi_network_script"));
        assert!(seen.contains(&format!("agi_request: agi://{addr}\n")));
        assert!(seen.contains("200 result=1\nHANGUP\n200 result=1\n"));
    }

    #[test]
    fn session_failure_line_and_long_lines() {
        let long = format!("SET VARIABLE L {}\n", "x".repeat(3000));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut env = Vec::new();
            while !env.ends_with(b"\n\n") {
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).unwrap();
                env.push(byte[0]);
            }
            stream.write_all(long.as_bytes()).unwrap();
            // Nothing after the `failure` line: unread bytes would make the
            // model's close a reset.
            stream.write_all(b"FAILURE: no\n").unwrap();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
            rest
        });
        let out = run_agi(addr, &AgiCall::new("x"), Duration::from_secs(5));
        let rest = String::from_utf8(server.join().unwrap()).unwrap();
        assert_eq!(out.status, "FAILURE");
        // 2047 bytes make the first command, the rest of the line the next.
        assert_eq!(out.commands.len(), 2);
        assert_eq!(out.commands[0].len(), AGI_BUF_LEN - 1);
        assert_eq!(out.var("L").map(str::len), Some(AGI_BUF_LEN - 1 - 15));
        assert_eq!(out.replies, ["200 result=1", REPLY_510]);
        assert_eq!(rest, format!("200 result=1\n{REPLY_510}\nHANGUP\n"));
    }
}
