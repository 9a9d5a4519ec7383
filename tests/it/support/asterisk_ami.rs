//! An independent model of Asterisk's Manager Interface (AMI) as a client that
//! places callbacks with `Action: Originate` sees it: a TCP server on
//! 127.0.0.1 that answers byte for byte as `main/manager.c` does, and plays
//! the events of a call whose outcome a test scripts. It shares no code with
//! calltrail (plain `std`, plus `chrono` for the CDR times).
//!
//! Sources, and how each behaviour is tagged below:
//!
//! * **[doc]** `shared/reference/INTEGRATIONS.md` §3.2 (lines 325-364: banner,
//!   framing, Login, `Events:`, Originate headers, `Async`, OriginateResponse,
//!   Reason codes, permissions) and §3.4 (lines 388-390: `,` splits
//!   `Variable:`, `"`/`(`/`\` in the splitter). Its `:N` are lines of
//!   `main/manager.c` of Asterisk master.
//! * **[probe]** the live Asterisk (banner `Asterisk Call Manager/13.0.0`) of
//!   `shared/reference/asterisk-probes/report.txt` ("==== AMI Originate",
//!   line 371 on: the responses, and the event sequence of each outcome) and
//!   `probe-events.jsonl` (every event with every header in wire order; the
//!   Originate probes are `orig0`…`orig8`, 1796321101-1796321136; the call
//!   file probes at 1796321094-1796321097 show the caller-id events).
//! * **[source]** the C as stored for asterisk/asterisk: `main/manager.c`
//!   (a master revision: `get_input`, `do_message`, `process_message`,
//!   `__astman_get_header`, `man_do_variable_value`, `astman_send_response_full`,
//!   `authenticate`, `action_login`/`_logoff`/`_ping`/`_events`/`_challenge`,
//!   `action_originate`, `fast_originate`, `is_originate_app_permitted`,
//!   `strings_to_mask`/`get_perm`/`ast_instring`, `authority_to_str`,
//!   `__manager_event_sessions_va`, `process_events`), `main/app.c`
//!   (`__ast_app_separate_args`), `main/callerid.c` (`ast_callerid_parse`,
//!   `ast_shrink_phone_number`, `ast_isphonenumber`) and
//!   `include/asterisk/manager.h` (`EVENT_FLAG_*`, `AST_MAX_MANHEADERS`),
//!   `include/asterisk/channel.h` (`AST_CHANNEL_NAME` 80,
//!   `AST_MAX_PUBLIC_UNIQUEID` 149), `main/core_local.c` (`local_alloc`).
//! * **[inference]** what neither says; each such place says so.
//!
//! What is modelled:
//!
//! 1. **Framing** [source `get_input`/`do_message`, doc]: on connect the
//!    banner `Asterisk Call Manager/13.0.0\r\n` [probe]. Input goes through a
//!    1024-byte buffer (`inbuf[1025]`, `maxlen = 1024`); a line ends at `\n`,
//!    a `\r` right before it is dropped, a lone `\r` stays. The line is a C
//!    string: a NUL ends it (a line starting with NUL is therefore empty). An
//!    empty line ends the message. When the buffer is full without a `\n`,
//!    Asterisk keeps only its last byte and marks the message "line too
//!    long": the rest of that line arrives as a line of its own, and at the
//!    message's end the answer is `Response: Error` / `Message: Failed to
//!    parse message: line too long` (with the message's `ActionID`) and the
//!    message is not run. So a line of at most 1023 bytes plus `\n` (1022
//!    plus `\r\n`) is whole. More than 128 lines (`AST_MAX_MANHEADERS`) →
//!    `Too many lines in message or allocation failure`, not run (and, as in
//!    the C, that path does not reset a pending "line too long").
//! 2. **Headers** [source `__astman_get_header`]: a lookup matches a line
//!    whose bytes before a `:` equal the name ASCII-case-insensitively; the
//!    value is what follows with leading bytes `< 33` skipped; the **first**
//!    match wins, even when empty — except `Action`, where empty values are
//!    skipped. [`AmiPeer::actions`] records each message as `(key, value)`
//!    pairs split the same way (a line without `:` → `(line, "")`), lossy
//!    UTF-8; the wire bytes are echoed exactly.
//! 3. **Variable** [source `astman_get_variables`/`man_do_variable_value`,
//!    `__ast_app_separate_args`]: every `Variable:` line (prefix
//!    `Variable:`, any case) counts. Its value is split on `,` outside `(…)`,
//!    `[…]` and `"…"`; `"` are removed, `\x` becomes `x` (never a
//!    separator); at most 64 items, the 64th keeping the rest unsplit. Each
//!    item splits at its first `=`; an item without `=` or with an empty name
//!    is dropped. [`Originate::variables`] lists them in wire order (Asterisk
//!    builds the list reversed and hands it over as is, so on a duplicate name
//!    the channel ends up with the **first** value [inference from
//!    `ast_set_variables`]).
//! 4. **Sessions** [source `process_message`]: empty `Action` → `Missing
//!    action in request`; before login every action but `Login`, `Logoff`,
//!    `Challenge` → `Permission denied`; an action whose write class the
//!    account lacks (`Originate` needs `write=originate`) → `Permission
//!    denied`; an unknown action → `Invalid/unknown command: <Action>. Use
//!    Action: ListCommands to show available commands.` (`buf[512]`). Known
//!    here: `Login`, `Logoff` (`Response: Goodbye` / `Message: Thanks for all
//!    the fish.`, then close), `Ping` (`Ping: Pong`, `Timestamp: s.usec`),
//!    `Events` (`Events: On|Off`, `Invalid event mask`), `Challenge` (the
//!    challenge only: MD5 login is not modelled and fails), `Originate`. Any
//!    other real Asterisk action is answered as unknown [model limit].
//! 5. **Login** [source `authenticate`/`action_login`, doc]: user names match
//!    case-insensitively, secrets exactly. Success → `Response: Success`,
//!    `ActionID`, `Message: Authentication accepted`, then — only when the
//!    account reads `system` and the event mask allows it — `Event:
//!    FullyBooted` (`Privilege`, `Uptime`, `LastReload`, `Status`). Failure →
//!    **sleep 1 s**, then `Response: Error` / `Message: Authentication
//!    failed`, then close. `Login` once logged in → `Message: Already
//!    authenticated`. `Events:` in the Login sets the event mask
//!    (`strings_to_mask`: digits → that number; `off`/`no`/… → 0;
//!    `on`/`yes`/… → all bits, i.e. -1, which — as in the C — is "no change";
//!    else a comma list of class names). A session never logged in is closed
//!    after `auth_timeout` (Asterisk's `authtimeout`, default 30 s).
//! 6. **Events** [source `__manager_event_sessions_va`, `process_events`;
//!    probe]: `Event`, `Privilege` (`call,all`, `cdr,all`), `Timestamp`
//!    (`timestampevents=yes` as on the probe; [`AmiOptions::timestamp_events`]),
//!    then the body. Each event goes to every logged-in session with
//!    `readperm & class == class` and `mask & class == class`. A session
//!    busy with an action gets the events raised meanwhile right after its
//!    response (the C delivers them from the session thread after the
//!    action), so the `Originate successfully queued` always comes before the
//!    call's events on the originating session. A write that does not
//!    finish within 100 ms (`writetimeout`) ends the session, as in the C.
//! 7. **Originate** [source `action_originate`, doc]: in the C's order:
//!    `ChannelId`/`OtherChannelId` over 149 bytes → `Uniqueid length exceeds
//!    maximum of 149\n`; no `Channel` → `Channel not specified`; a `Priority`
//!    that is not a number → `Invalid priority` (labels are not modelled); a
//!    bad `Timeout` → `Invalid timeout` (default 30000 ms; both read like
//!    `sscanf("%30d")`); the channel (cut to 255 bytes) without `/` →
//!    `Invalid channel`; `CallerID` (cut to 255) through `ast_callerid_parse`
//!    and `ast_shrink_phone_number`; an `Application`/`Data` on the system
//!    list without `write=system` → `Originate Access Forbidden: app or data
//!    blacklisted`; a non-zero priority whose context/extension is not in
//!    [`AmiOptions::dialplan`] → `Extension does not exist.`. Then `Async`
//!    (`ast_true`) → `Response: Success` / `Message: Originate successfully
//!    queued` at once and the call in a thread; without it the response waits
//!    for the outcome: `Originate successfully queued` when answered, else
//!    `Response: Error` / `Message: Originate failed`, and no
//!    OriginateResponse event; no application and priority 0 → `Originate
//!    with 'Exten' requires 'Context' and 'Priority'`.
//! 8. **The call** [probe, except where marked]: [`AmiOptions::outcome`]
//!    picks an [`Outcome`] from the request. For a `Local/exten@context[/opts]`
//!    channel the events are those of the probe transcript of that outcome,
//!    in its order, with its header sets (VarSet, Newexten and
//!    DeviceStateChange left out, as in the report): Newchannel `;1` (Down)
//!    and `;2` (Ring), — with a caller id — NewCallerid/NewConnectedLine on
//!    `;1` then `;2` (call-file probe), LocalBridge, DialBegin, Newstate,
//!    Dial(State|End), HangupRequest, SoftHangupRequest, Hangup, Cdr and the
//!    OriginateResponse: `Local/…-0000001a;1` and its Uniqueid on success,
//!    the requested channel (cut to 79 bytes, `requested_channel[80]`) and
//!    `<unknown>` (or `ChannelId`) on failure; `CallerIDNum`/`CallerIDName`
//!    from the request or `<unknown>`; `Context`/`Exten` instead of
//!    `Application`/`Data` for a dialplan target. Answered calls hang up
//!    after [`AmiOptions::call_duration_ms`]. What depends on the probe's
//!    dialplan is the probe's: the `;2` half's applications in the CDRs
//!    (`Wait 1`, `Busy 2`, `Congestion 2`, `Wait 60`, `Hangup 21`) and its
//!    priority 2 late in the call. Names: `Local/<exten>@<context>-%08x;1|2`
//!    with one sequence number per pair (first `0x1a`, as the probe's first
//!    Originate) and Uniqueids `<epoch>.<n>` (first 52, as the probe's).
//!    Options are after the first `/`, the context after the first `@`
//!    (none → `default`) [source `main/core_local.c` `local_alloc`]; option
//!    `n` → `LocalOptimization: No`, else `Yes` [inference]. A `ChannelId`
//!    names `;1`, `OtherChannelId` (else `ChannelId;2`) `;2` [inference from
//!    `AST_MAX_UNIQUEID`'s note in `channel.h`]. `Account` becomes `;1`'s
//!    AccountCode after its Newchannel [inference]. Any other technology
//!    [inference]: one channel `<Tech>/<resource>-%08x` (resource = data up to
//!    its first `/`) in context `default`, exten `s`, with the same kinds of
//!    events; [`Outcome::Failure`] on it is the probe's `Bogus/123`: the
//!    OriginateResponse alone.
//!
//! Not modelled: MD5 login, `allowmultiplelogin=no`, ACLs, `eventfilter`,
//! per-user `setvar`, `Codecs`/`EarlyMedia`/`PreDialGoSub`, priority labels,
//! any action other than the six above, HTTP manager, TLS.
//!
//! Fault injection (not Asterisk behaviour): [`AmiOptions::drop_after_originate`]
//! closes the connection right after reading an Originate, before or after
//! the reply; [`Outcome::Silent`] never reports; [`AmiPeer::stop`] /
//! [`AmiPeer::restart`] take the whole "Asterisk" down and back up on the
//! same port (calls in flight vanish, the record stays).

// The integration tests each use a part of this API.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `AMI_VERSION` of the probed Asterisk (report.txt line 2).
pub const AMI_VERSION: &str = "13.0.0";
/// The account [`AmiOptions::default`] configures.
pub const DEFAULT_USERNAME: &str = "calltrail";
/// Its secret.
pub const DEFAULT_SECRET: &str = "calltrail-secret";

/// `sizeof(inbuf) - 1` (`inbuf[1025]`).
const MAXLEN: usize = 1024;
/// `AST_MAX_MANHEADERS`.
const MAX_HEADERS: usize = 128;
/// `AST_APP_ARG(vars)[64]` of `man_do_variable_value`.
const VARIABLE_ITEMS: usize = 64;
/// `tmp[256]` / `tmp2[256]` of `action_originate`.
const ORIGINATE_TMP: usize = 256;
/// `requested_channel[AST_CHANNEL_NAME]` of `fast_originate`.
const AST_CHANNEL_NAME: usize = 80;
/// `AST_MAX_PUBLIC_UNIQUEID`.
const AST_MAX_PUBLIC_UNIQUEID: usize = 149;
/// `char buf[512]` of the unknown-action answer.
const UNKNOWN_ACTION_BUF: usize = 512;
/// `int to = 30000`.
const DEFAULT_TIMEOUT_MS: i32 = 30000;
/// The probe's first Originate: `Local/ok@probe-0000001a;1`, Uniqueid `….52`.
const FIRST_CHANNEL_SEQ: u32 = 0x1a;
const FIRST_UNIQUEID_SEQ: u64 = 52;
/// `authtimeout` default.
const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// `writetimeout` default (`newsession->writetimeout = 100`): a write that
/// cannot finish within it sets `write_error` and the session ends.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// Event classes and permissions (`include/asterisk/manager.h`).
pub mod perm {
    pub const SYSTEM: i32 = 1 << 0;
    pub const CALL: i32 = 1 << 1;
    pub const LOG: i32 = 1 << 2;
    pub const VERBOSE: i32 = 1 << 3;
    pub const COMMAND: i32 = 1 << 4;
    pub const AGENT: i32 = 1 << 5;
    pub const USER: i32 = 1 << 6;
    pub const CONFIG: i32 = 1 << 7;
    pub const DTMF: i32 = 1 << 8;
    pub const REPORTING: i32 = 1 << 9;
    pub const CDR: i32 = 1 << 10;
    pub const DIALPLAN: i32 = 1 << 11;
    pub const ORIGINATE: i32 = 1 << 12;
    pub const AGI: i32 = 1 << 13;
    pub const CC: i32 = 1 << 15;
    pub const AOC: i32 = 1 << 16;
    pub const TEST: i32 = 1 << 17;
    pub const SECURITY: i32 = 1 << 18;
    pub const MESSAGE: i32 = 1 << 30;
    pub const ALL: i32 = -1;
}

/// `perms[]` of manager.c, in its order (`all` is -1, `none` 0).
const PERMS: &[(i32, &str)] = &[
    (perm::SYSTEM, "system"),
    (perm::CALL, "call"),
    (perm::LOG, "log"),
    (perm::VERBOSE, "verbose"),
    (perm::COMMAND, "command"),
    (perm::AGENT, "agent"),
    (perm::USER, "user"),
    (perm::CONFIG, "config"),
    (perm::DTMF, "dtmf"),
    (perm::REPORTING, "reporting"),
    (perm::CDR, "cdr"),
    (perm::DIALPLAN, "dialplan"),
    (perm::ORIGINATE, "originate"),
    (perm::AGI, "agi"),
    (perm::CC, "cc"),
    (perm::AOC, "aoc"),
    (perm::TEST, "test"),
    (perm::SECURITY, "security"),
    (perm::MESSAGE, "message"),
    (perm::ALL, "all"),
    (0, "none"),
];

// ---------------------------------------------------------------------------
// Public types

/// A `manager.conf` account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub username: String,
    pub secret: String,
    /// `read =` (class names, comma-separated, read with `get_perm`).
    pub read: String,
    /// `write =`.
    pub write: String,
}

impl Account {
    /// The minimal account of INTEGRATIONS §3.2: `read = call`, `write =
    /// originate`.
    pub fn new(username: &str, secret: &str) -> Account {
        Account {
            username: username.to_string(),
            secret: secret.to_string(),
            read: "call".to_string(),
            write: "originate".to_string(),
        }
    }

    pub fn read(mut self, read: &str) -> Account {
        self.read = read.to_string();
        self
    }

    pub fn write(mut self, write: &str) -> Account {
        self.write = write.to_string();
        self
    }
}

/// What happens to an originated call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered: Reason 4, `Response: Success` (probes `orig0`, `orig1`).
    Answered,
    /// USER_BUSY: Reason 5 (probe `orig2`).
    Busy,
    /// Congestion: Reason 8 (probe `orig3`).
    Congestion,
    /// Rings, nobody answers: Reason 3 after `after_ms` (probe `orig4`, where
    /// the request's `Timeout` elapsed).
    NoAnswer { after_ms: u64 },
    /// The channel cannot be reached (no such extension, unknown
    /// technology): Reason 0 (probes `orig6`, `orig8`).
    Failure,
    /// Rejected before answer (the dialplan hung up with cause 21): Reason 0
    /// (probe `orig5`).
    Rejected,
    /// `AST_DIAL_RESULT_HANGUP`: Reason 1. **[inference]**: no probe; the
    /// events are those of [`Outcome::Rejected`] with cause 16.
    Hangup,
    /// Fault injection: the call starts (Newchannel … DialBegin) and is never
    /// reported — no OriginateResponse, no sync response — until the peer
    /// stops.
    Silent,
}

impl Outcome {
    /// The OriginateResponse `Reason` (INTEGRATIONS §3.2 table).
    pub fn reason(self) -> Option<u8> {
        match self {
            Outcome::Answered => Some(4),
            Outcome::Busy => Some(5),
            Outcome::Congestion => Some(8),
            Outcome::NoAnswer { .. } => Some(3),
            Outcome::Failure | Outcome::Rejected => Some(0),
            Outcome::Hangup => Some(1),
            Outcome::Silent => None,
        }
    }
}

/// How [`AmiOptions::drop_after_originate`] breaks the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropMode {
    /// Close without replying; no call is placed (Asterisk died first).
    BeforeReplyNotPlaced,
    /// Close without replying; the call is placed and its events go to the
    /// other sessions (the reply was lost).
    BeforeReplyPlaced,
    /// Reply, then close; the call goes on.
    AfterReply,
}

/// Closes the connection after the next `remaining` Originates (each one
/// decrements the counter; a test may refill it).
#[derive(Debug, Clone)]
pub struct DropAfterOriginate {
    pub remaining: Arc<AtomicUsize>,
    pub mode: DropMode,
}

impl DropAfterOriginate {
    pub fn new(times: usize, mode: DropMode) -> DropAfterOriginate {
        DropAfterOriginate {
            remaining: Arc::new(AtomicUsize::new(times)),
            mode,
        }
    }
}

/// The scripted outcome of an Originate.
pub type OutcomeFn = Box<dyn Fn(&Originate) -> Outcome + Send + Sync>;

/// How the peer behaves.
pub struct AmiOptions {
    /// Port on 127.0.0.1; `None` → a free one.
    pub port: Option<u16>,
    pub accounts: Vec<Account>,
    /// Called once per Originate that gets as far as placing a call.
    pub outcome: OutcomeFn,
    pub drop_after_originate: Option<DropAfterOriginate>,
    /// How long an answered call lasts before it hangs up (the probe's
    /// `Wait(1)`: 1000).
    pub call_duration_ms: u64,
    /// `timestampevents` (on for the probe).
    pub timestamp_events: bool,
    /// The dialplan's `(context, exten)` pairs that exist, checked for an
    /// Originate with a non-zero `Priority`; `None` → every extension exists.
    pub dialplan: Option<Vec<(String, String)>>,
    /// `authtimeout`.
    pub auth_timeout: Duration,
}

impl Default for AmiOptions {
    /// One account ([`DEFAULT_USERNAME`]/[`DEFAULT_SECRET`], `read = call`,
    /// `write = originate`), every call answered, 1 s calls.
    fn default() -> AmiOptions {
        AmiOptions {
            port: None,
            accounts: vec![Account::new(DEFAULT_USERNAME, DEFAULT_SECRET)],
            outcome: Box::new(|_| Outcome::Answered),
            drop_after_originate: None,
            call_duration_ms: 1000,
            timestamp_events: true,
            dialplan: None,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
        }
    }
}

impl AmiOptions {
    pub fn with_outcome(
        mut self,
        outcome: impl Fn(&Originate) -> Outcome + Send + Sync + 'static,
    ) -> AmiOptions {
        self.outcome = Box::new(outcome);
        self
    }

    pub fn with_account(mut self, account: Account) -> AmiOptions {
        self.accounts.push(account);
        self
    }
}

/// One Originate action as the peer read it (values lossy UTF-8; absent
/// headers are empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// First `ActionID` (empty: none).
    pub action_id: String,
    pub channel: String,
    pub context: String,
    pub exten: String,
    /// `Priority` as `sscanf("%30d")` reads it; 0 when absent or unreadable.
    pub priority: i32,
    pub application: String,
    pub data: String,
    /// `Timeout` in ms; 30000 when absent or unreadable.
    pub timeout_ms: i32,
    /// The `CallerID` header as sent.
    pub caller_id: String,
    /// The number Asterisk makes of it (`ast_callerid_parse` + shrink).
    pub cid_num: Option<String>,
    /// The name.
    pub cid_name: Option<String>,
    /// Every `Variable:` item, split as Asterisk does, in wire order.
    pub variables: Vec<(String, String)>,
    pub account: String,
    /// `Async` is `ast_true`.
    pub async_: bool,
    /// The AMI user that sent it.
    pub username: String,
    /// Every header of the action, in order.
    pub raw: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------
// The peer

/// The AMI server. Stopped on drop.
pub struct AmiPeer {
    shared: Arc<Shared>,
    port: u16,
    ctl: Mutex<Control>,
}

struct Control {
    running: bool,
    accept: Option<JoinHandle<()>>,
}

impl AmiPeer {
    /// Binds 127.0.0.1 (the given port or a free one) and serves.
    pub fn start(opts: AmiOptions) -> AmiPeer {
        let listener = bind(opts.port.unwrap_or(0));
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            cfg: Config {
                accounts: opts.accounts,
                outcome: opts.outcome,
                drop_after_originate: opts.drop_after_originate,
                call_duration: Duration::from_millis(opts.call_duration_ms),
                timestamp_events: opts.timestamp_events,
                dialplan: opts.dialplan,
                auth_timeout: opts.auth_timeout,
            },
            generation: AtomicU64::new(1),
            boot: Mutex::new(Instant::now()),
            sessions: Mutex::new(Vec::new()),
            channel_seq: AtomicU32::new(FIRST_CHANNEL_SEQ),
            uniqueid_seq: AtomicU64::new(FIRST_UNIQUEID_SEQ),
            actions: Mutex::new(Vec::new()),
            originates: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
        });
        let accept = spawn_accept(shared.clone(), listener, 1);
        AmiPeer {
            shared,
            port,
            ctl: Mutex::new(Control {
                running: true,
                accept: Some(accept),
            }),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes the listener and every session; calls in flight stop without
    /// another event. Idempotent.
    pub fn stop(&self) {
        let mut ctl = lock(&self.ctl);
        if !ctl.running {
            return;
        }
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(accept) = ctl.accept.take() {
            let _ = accept.join();
        }
        let sessions = std::mem::take(&mut *lock(&self.shared.sessions));
        for session in sessions {
            session.close();
        }
        ctl.running = false;
    }

    /// Stops (if running) and serves again on the same port; the record
    /// ([`AmiPeer::actions`], [`AmiPeer::originates`], [`AmiPeer::events`])
    /// is kept, `Uptime` starts over.
    pub fn restart(&self) {
        self.stop();
        let mut ctl = lock(&self.ctl);
        let listener = bind(self.port);
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *lock(&self.shared.boot) = Instant::now();
        ctl.accept = Some(spawn_accept(self.shared.clone(), listener, generation));
        ctl.running = true;
    }

    /// Every message run (after framing), as `(key, value)` lines.
    pub fn actions(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.shared.actions).clone()
    }

    /// Every Originate that reached `action_originate` (logged in, with
    /// `write=originate`), valid or not, dropped or not.
    pub fn originates(&self) -> Vec<Originate> {
        lock(&self.shared.originates).clone()
    }

    /// Every event raised, with `Event`, `Privilege` and `Timestamp`.
    pub fn events(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.shared.events).clone()
    }

    /// Sessions currently logged in.
    pub fn logged_in(&self) -> usize {
        lock(&self.shared.sessions)
            .iter()
            .filter(|s| s.authenticated())
            .count()
    }

    /// Waits until `n` sessions are logged in.
    pub fn wait_logged_in(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.logged_in() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for AmiPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(port: u16) -> TcpListener {
    // A restart right after a stop: the old listener is closed, but allow
    // the kernel a moment (std sets SO_REUSEADDR on Unix).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(_) if port != 0 && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("AMI peer cannot bind 127.0.0.1:{port}: {e}"),
        }
    }
}

fn spawn_accept(shared: Arc<Shared>, listener: TcpListener, generation: u64) -> JoinHandle<()> {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    thread::spawn(move || {
        while shared.generation.load(Ordering::SeqCst) == generation {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let shared = shared.clone();
                    thread::spawn(move || serve(shared, generation, stream));
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Shared state

struct Config {
    accounts: Vec<Account>,
    outcome: OutcomeFn,
    drop_after_originate: Option<DropAfterOriginate>,
    call_duration: Duration,
    timestamp_events: bool,
    dialplan: Option<Vec<(String, String)>>,
    auth_timeout: Duration,
}

struct Shared {
    cfg: Config,
    /// Bumped by stop/restart: sessions, accept loops and calls of an older
    /// generation are dead.
    generation: AtomicU64,
    boot: Mutex<Instant>,
    sessions: Mutex<Vec<Arc<Session>>>,
    channel_seq: AtomicU32,
    uniqueid_seq: AtomicU64,
    actions: Mutex<Vec<Vec<(String, String)>>>,
    originates: Mutex<Vec<Originate>>,
    events: Mutex<Vec<Vec<(String, String)>>>,
}

impl Shared {
    fn alive(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }

    /// `manager_event`: builds the event and hands it to every session.
    fn emit(&self, generation: u64, event: &str, category: i32, headers: Vec<(String, Vec<u8>)>) {
        let mut events = lock(&self.events);
        if !self.alive(generation) {
            return;
        }
        let privilege = authority_to_str(category);
        let mut wire = format!("Event: {event}\r\nPrivilege: {privilege}\r\n").into_bytes();
        let mut record = vec![
            ("Event".to_string(), event.to_string()),
            ("Privilege".to_string(), privilege),
        ];
        if self.cfg.timestamp_events {
            let ts = timestamp_now();
            wire.extend_from_slice(format!("Timestamp: {ts}\r\n").as_bytes());
            record.push(("Timestamp".to_string(), ts));
        }
        for (k, v) in headers {
            wire.extend_from_slice(k.as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(&v);
            wire.extend_from_slice(b"\r\n");
            record.push((k, lossy(&v)));
        }
        wire.extend_from_slice(b"\r\n");
        events.push(record);
        let sessions = lock(&self.sessions).clone();
        for s in sessions {
            s.deliver(category, &wire);
        }
    }

    fn take_drop(&self) -> Option<DropMode> {
        let d = self.cfg.drop_after_originate.as_ref()?;
        d.remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| d.mode)
    }

    fn extension_exists(&self, context: &[u8], exten: &[u8]) -> bool {
        match &self.cfg.dialplan {
            None => true,
            Some(list) => list
                .iter()
                .any(|(c, e)| c.as_bytes() == context && e.as_bytes() == exten),
        }
    }

    /// `ast_channel_alloc`'s `<time>.<n>` for `n` channels created now.
    fn uniqueids(&self, n: u64) -> Vec<Vec<u8>> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let first = self.uniqueid_seq.fetch_add(n, Ordering::SeqCst);
        (0..n)
            .map(|i| format!("{secs}.{}", first + i).into_bytes())
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Sessions

struct Session {
    /// For shutting the socket down from outside.
    control: TcpStream,
    out: Mutex<Out>,
}

struct Out {
    stream: TcpStream,
    authenticated: bool,
    username: String,
    readperm: i32,
    writeperm: i32,
    /// `send_events`, -1 until set.
    send_events: i32,
    /// Running an action: events wait in `pending`.
    busy: bool,
    pending: Vec<u8>,
}

impl Session {
    /// `send_string`: a failed or timed-out write ends the session.
    fn write(&self, bytes: &[u8]) {
        let mut o = lock(&self.out);
        self.write_locked(&mut o, bytes);
    }

    fn write_locked(&self, o: &mut Out, bytes: &[u8]) {
        if o.stream.write_all(bytes).is_err() {
            self.close();
        }
    }

    fn deliver(&self, category: i32, bytes: &[u8]) {
        let mut o = lock(&self.out);
        if !o.authenticated
            || (o.readperm & category) != category
            || (o.send_events & category) != category
        {
            return;
        }
        if o.busy {
            o.pending.extend_from_slice(bytes);
        } else {
            self.write_locked(&mut o, bytes);
        }
    }

    fn begin_action(&self) {
        lock(&self.out).busy = true;
    }

    fn end_action(&self) {
        let mut o = lock(&self.out);
        o.busy = false;
        let pending = std::mem::take(&mut o.pending);
        if !pending.is_empty() {
            self.write_locked(&mut o, &pending);
        }
    }

    fn close(&self) {
        let _ = self.control.shutdown(Shutdown::Both);
    }

    fn authenticated(&self) -> bool {
        lock(&self.out).authenticated
    }
}

fn serve(shared: Arc<Shared>, generation: u64, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (Ok(write_half), Ok(control)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let _ = write_half.set_write_timeout(Some(WRITE_TIMEOUT));
    let session = Arc::new(Session {
        control,
        out: Mutex::new(Out {
            stream: write_half,
            authenticated: false,
            username: String::new(),
            readperm: 0,
            writeperm: 0,
            send_events: -1,
            busy: false,
            pending: Vec::new(),
        }),
    });
    {
        let mut sessions = lock(&shared.sessions);
        if !shared.alive(generation) {
            session.close();
            return;
        }
        sessions.push(session.clone());
    }
    session.write(format!("Asterisk Call Manager/{AMI_VERSION}\r\n").as_bytes());
    let mut conn = Conn {
        shared: shared.clone(),
        generation,
        session: session.clone(),
        reader: stream,
        inbuf: vec![0; MAXLEN],
        inlen: 0,
        line_too_long: false,
        auth_start: Instant::now(),
    };
    while conn.do_message() {}
    session.close();
    lock(&shared.sessions).retain(|s| !Arc::ptr_eq(s, &session));
}

/// A message: its lines as read (NUL-truncated, no line end).
#[derive(Debug, Default, Clone)]
struct Message {
    lines: Vec<Vec<u8>>,
}

impl Message {
    /// `__astman_get_header`.
    fn header_mode(&self, name: &str, skip_empty: bool) -> &[u8] {
        let k = name.as_bytes();
        for h in &self.lines {
            if h.len() > k.len() && h[..k.len()].eq_ignore_ascii_case(k) && h[k.len()] == b':' {
                let v = skip_blanks(&h[k.len() + 1..]);
                if skip_empty && v.is_empty() {
                    continue;
                }
                return v;
            }
        }
        b""
    }

    /// `astman_get_header`: first match.
    fn get(&self, name: &str) -> &[u8] {
        self.header_mode(name, false)
    }

    fn pairs(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .map(|l| match l.iter().position(|&b| b == b':') {
                Some(i) => (lossy(&l[..i]), lossy(skip_blanks(&l[i + 1..]))),
                None => (lossy(l), String::new()),
            })
            .collect()
    }

    /// `astman_get_variables`, in wire order.
    fn variables(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        const HDR: &[u8] = b"Variable:";
        let mut out = Vec::new();
        for l in &self.lines {
            if l.len() < HDR.len() || !l[..HDR.len()].eq_ignore_ascii_case(HDR) {
                continue;
            }
            let value = skip_blanks(&l[HDR.len()..]);
            for item in separate_args(value, b',', VARIABLE_ITEMS) {
                let Some(eq) = item.iter().position(|&b| b == b'=') else {
                    continue;
                };
                if eq == 0 {
                    continue;
                }
                out.push((item[..eq].to_vec(), item[eq + 1..].to_vec()));
            }
        }
        out
    }
}

/// The state of one session thread.
struct Conn {
    shared: Arc<Shared>,
    generation: u64,
    session: Arc<Session>,
    reader: TcpStream,
    inbuf: Vec<u8>,
    inlen: usize,
    /// `s->parsing == MESSAGE_LINE_TOO_LONG`.
    line_too_long: bool,
    auth_start: Instant,
}

impl Conn {
    /// A whole line from the buffer, if there is one (`get_input`'s scan).
    fn take_line(&mut self) -> Option<Vec<u8>> {
        for x in 0..self.inlen {
            let cr = if self.inbuf[x] == b'\r' && x + 1 < self.inlen && self.inbuf[x + 1] == b'\n' {
                2
            } else if self.inbuf[x] == b'\n' {
                1
            } else {
                continue;
            };
            let mut line = self.inbuf[..x].to_vec();
            if let Some(nul) = line.iter().position(|&b| b == 0) {
                line.truncate(nul);
            }
            self.inbuf.copy_within(x + cr..self.inlen, 0);
            self.inlen -= x + cr;
            return Some(line);
        }
        None
    }

    /// `get_input` looped until a line (or the end of the session).
    fn get_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(line) = self.take_line() {
                return Some(line);
            }
            if self.inlen >= MAXLEN {
                // "Discarding message … Line too long": keep the last byte.
                self.inbuf[0] = self.inbuf[self.inlen - 1];
                self.inlen = 1;
                self.line_too_long = true;
            }
            if !self.shared.alive(self.generation) {
                return None;
            }
            if self.session.authenticated() {
                let _ = self.reader.set_read_timeout(None);
            } else {
                let elapsed = self.auth_start.elapsed();
                if elapsed >= self.shared.cfg.auth_timeout {
                    return None;
                }
                let left = self.shared.cfg.auth_timeout - elapsed;
                let _ = self
                    .reader
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            }
            match self.reader.read(&mut self.inbuf[self.inlen..MAXLEN]) {
                Ok(0) => return None,
                Ok(n) => self.inlen += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// `do_message`; false ends the session.
    fn do_message(&mut self) -> bool {
        let mut m = Message::default();
        let mut hdr_loss = false;
        loop {
            let Some(line) = self.get_line() else {
                return false;
            };
            if line.is_empty() {
                if hdr_loss {
                    self.send(&response(
                        &m,
                        "Error",
                        Some(b"Too many lines in message or allocation failure"),
                    ));
                    return true;
                }
                if self.line_too_long {
                    self.send(&response(
                        &m,
                        "Error",
                        Some(b"Failed to parse message: line too long"),
                    ));
                    self.line_too_long = false;
                    return true;
                }
                return self.process_message(&m);
            } else if m.lines.len() < MAX_HEADERS {
                m.lines.push(line);
            } else {
                hdr_loss = true;
            }
        }
    }

    fn send(&self, bytes: &[u8]) {
        self.session.write(bytes);
    }

    /// `process_message`; false ends the session.
    fn process_message(&mut self, m: &Message) -> bool {
        lock(&self.shared.actions).push(m.pairs());
        let action = m.header_mode("Action", true).to_vec();
        if action.is_empty() {
            self.send(&response(m, "Error", Some(b"Missing action in request")));
            return true;
        }
        let name = String::from_utf8_lossy(&action).to_ascii_lowercase();
        let authenticated = self.session.authenticated();
        if !authenticated && name != "login" && name != "logoff" && name != "challenge" {
            self.send(&response(m, "Error", Some(b"Permission denied")));
            return true;
        }
        self.session.begin_action();
        let keep = match name.as_str() {
            "login" => self.action_login(m),
            "logoff" => {
                self.send(&response(m, "Goodbye", Some(b"Thanks for all the fish.")));
                false
            }
            "ping" => {
                let mut b = b"Response: Success\r\n".to_vec();
                push_action_id(&mut b, m);
                b.extend_from_slice(
                    format!("Ping: Pong\r\nTimestamp: {}\r\n\r\n", timestamp_now()).as_bytes(),
                );
                self.send(&b);
                true
            }
            "events" => {
                self.action_events(m);
                true
            }
            "challenge" => {
                self.action_challenge(m);
                true
            }
            "originate" => {
                if lock(&self.session.out).writeperm & perm::ORIGINATE != 0 {
                    self.action_originate(m)
                } else {
                    self.send(&response(m, "Error", Some(b"Permission denied")));
                    true
                }
            }
            _ => {
                let mut msg = b"Invalid/unknown command: ".to_vec();
                msg.extend_from_slice(&action);
                msg.extend_from_slice(b". Use Action: ListCommands to show available commands.");
                msg.truncate(UNKNOWN_ACTION_BUF - 1);
                self.send(&response(m, "Error", Some(&msg)));
                true
            }
        };
        self.session.end_action();
        keep
    }

    fn action_login(&mut self, m: &Message) -> bool {
        if self.session.authenticated() {
            self.send(&response(m, "Success", Some(b"Already authenticated")));
            return true;
        }
        let username = m.get("Username");
        let account = if username.is_empty() || m.get("AuthType").eq_ignore_ascii_case(b"MD5") {
            None
        } else {
            self.shared
                .cfg
                .accounts
                .iter()
                .find(|a| a.username.as_bytes().eq_ignore_ascii_case(username))
                .filter(|a| a.secret.as_bytes() == m.get("Secret"))
        };
        let Some(account) = account else {
            thread::sleep(Duration::from_secs(1));
            self.send(&response(m, "Error", Some(b"Authentication failed")));
            return false;
        };
        let (readperm, send_events) = {
            let mut o = lock(&self.session.out);
            o.username = lossy(username);
            o.readperm = get_perm(account.read.as_bytes());
            o.writeperm = get_perm(account.write.as_bytes());
            if let Some(mask) = strings_to_mask(m.get("Events")).filter(|&v| v >= 0) {
                o.send_events = mask;
            }
            o.authenticated = true;
            (o.readperm, o.send_events)
        };
        self.send(&response(m, "Success", Some(b"Authentication accepted")));
        if send_events & perm::SYSTEM != 0 && readperm & perm::SYSTEM != 0 {
            let up = lock(&self.shared.boot).elapsed().as_secs();
            self.send(
                format!(
                    "Event: FullyBooted\r\nPrivilege: {}\r\nUptime: {up}\r\nLastReload: {up}\r\nStatus: Fully Booted\r\n\r\n",
                    authority_to_str(perm::SYSTEM)
                )
                .as_bytes(),
            );
        }
        true
    }

    fn action_events(&mut self, m: &Message) {
        let mask = strings_to_mask(m.get("EventMask"));
        let res = mask.unwrap_or(-1);
        if res >= 0 {
            lock(&self.session.out).send_events = res;
        }
        if res < 0 {
            self.send(&response(m, "Error", Some(b"Invalid event mask")));
            return;
        }
        let mut b = b"Response: Success\r\n".to_vec();
        push_action_id(&mut b, m);
        b.extend_from_slice(if res > 0 {
            b"Events: On\r\n\r\n"
        } else {
            b"Events: Off\r\n\r\n"
        });
        self.send(&b);
    }

    fn action_challenge(&mut self, m: &Message) {
        if !m.get("AuthType").eq_ignore_ascii_case(b"MD5") {
            self.send(&response(m, "Error", Some(b"Must specify AuthType")));
            return;
        }
        let challenge = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let mut b = b"Response: Success\r\n".to_vec();
        push_action_id(&mut b, m);
        b.extend_from_slice(format!("Challenge: {challenge}\r\n\r\n").as_bytes());
        self.send(&b);
    }

    /// `action_originate` (+ the fault injection); false ends the session.
    fn action_originate(&mut self, m: &Message) -> bool {
        let drop = self.shared.take_drop();
        let req = OriginateRequest::read(m);
        let (username, writeperm) = {
            let o = lock(&self.session.out);
            (o.username.clone(), o.writeperm)
        };
        let record = req.record(m, username);
        lock(&self.shared.originates).push(record.clone());

        if drop == Some(DropMode::BeforeReplyNotPlaced) {
            self.session.close();
            return false;
        }
        let result = self.originate(&req, &record, writeperm, drop);
        if !self.shared.alive(self.generation) {
            return false;
        }
        let reply = match &result {
            Ok(()) => response(m, "Success", Some(b"Originate successfully queued")),
            Err(msg) => response(m, "Error", Some(msg)),
        };
        match drop {
            None => {
                self.send(&reply);
                true
            }
            Some(DropMode::AfterReply) => {
                self.send(&reply);
                self.session.close();
                false
            }
            Some(_) => {
                self.session.close();
                false
            }
        }
    }

    /// The checks of `action_originate` in its order, then the call: `Ok` is
    /// `Originate successfully queued`, `Err` the error message.
    fn originate(
        &self,
        r: &OriginateRequest<'_>,
        record: &Originate,
        writeperm: i32,
        drop: Option<DropMode>,
    ) -> Result<(), Vec<u8>> {
        if r.channel_id.len() > AST_MAX_PUBLIC_UNIQUEID
            || r.other_channel_id.len() > AST_MAX_PUBLIC_UNIQUEID
        {
            return Err(
                format!("Uniqueid length exceeds maximum of {AST_MAX_PUBLIC_UNIQUEID}\n")
                    .into_bytes(),
            );
        }
        if r.name.is_empty() {
            return Err(b"Channel not specified".to_vec());
        }
        let Some(pi) = r.priority else {
            return Err(b"Invalid priority".to_vec());
        };
        if r.timeout.is_none() {
            return Err(b"Invalid timeout".to_vec());
        }
        let tmp = &r.name[..r.name.len().min(ORIGINATE_TMP - 1)];
        let Some(slash) = tmp.iter().position(|&b| b == b'/') else {
            return Err(b"Invalid channel".to_vec());
        };
        if !r.app.is_empty() && !is_originate_app_permitted(r.app, r.appdata, writeperm) {
            return Err(b"Originate Access Forbidden: app or data blacklisted".to_vec());
        }
        if pi != 0 && !self.shared.extension_exists(r.context, r.exten) {
            return Err(b"Extension does not exist.".to_vec());
        }
        if !r.is_async && r.app.is_empty() && pi == 0 {
            return Err(b"Originate with 'Exten' requires 'Context' and 'Priority'".to_vec());
        }
        let outcome = (self.shared.cfg.outcome)(record);
        let mut requested = tmp.to_vec();
        requested.truncate(AST_CHANNEL_NAME - 1);
        let mut plan = CallPlan {
            outcome,
            tech: tmp[..slash].to_vec(),
            data: tmp[slash + 1..].to_vec(),
            requested,
            app: r.app.to_vec(),
            appdata: r.appdata.to_vec(),
            context: r.context.to_vec(),
            exten: r.exten.to_vec(),
            priority: pi,
            cid_num: r.cid_num.clone(),
            cid_name: r.cid_name.clone(),
            account: r.account.to_vec(),
            action_id: r.action_id.to_vec(),
            channel_id: r.channel_id.to_vec(),
            other_channel_id: r.other_channel_id.to_vec(),
            sync: None,
        };
        let shared = self.shared.clone();
        let generation = self.generation;
        if r.is_async || drop == Some(DropMode::BeforeReplyPlaced) {
            thread::spawn(move || run_call(shared, generation, plan));
            return Ok(());
        }
        // Synchronous: the response waits for the dial's result.
        let (tx, rx) = mpsc::channel();
        plan.sync = Some(tx);
        thread::spawn(move || run_call(shared, generation, plan));
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(b"Originate failed".to_vec()),
                Err(RecvTimeoutError::Timeout) if self.shared.alive(self.generation) => {}
                // Stopped: the caller notices and ends the session.
                Err(_) => return Err(Vec::new()),
            }
        }
    }
}

/// The headers `action_originate` reads.
struct OriginateRequest<'a> {
    name: &'a [u8],
    exten: &'a [u8],
    context: &'a [u8],
    callerid: &'a [u8],
    account: &'a [u8],
    app: &'a [u8],
    appdata: &'a [u8],
    is_async: bool,
    action_id: &'a [u8],
    channel_id: &'a [u8],
    other_channel_id: &'a [u8],
    /// `None`: not a number.
    priority: Option<i32>,
    timeout: Option<i32>,
    cid_name: Option<Vec<u8>>,
    cid_num: Option<Vec<u8>>,
}

impl<'a> OriginateRequest<'a> {
    fn read(m: &'a Message) -> OriginateRequest<'a> {
        let priority = m.get("Priority");
        let timeout = m.get("Timeout");
        let callerid = m.get("CallerID");
        let (cid_name, cid_num) = originate_callerid(callerid);
        OriginateRequest {
            name: m.get("Channel"),
            exten: m.get("Exten"),
            context: m.get("Context"),
            callerid,
            account: m.get("Account"),
            app: m.get("Application"),
            appdata: m.get("Data"),
            is_async: ast_true(m.get("Async")),
            action_id: m.get("ActionID"),
            channel_id: m.get("ChannelId"),
            other_channel_id: m.get("OtherChannelId"),
            priority: if priority.is_empty() {
                Some(0)
            } else {
                scan_int(priority)
            },
            timeout: if timeout.is_empty() {
                Some(DEFAULT_TIMEOUT_MS)
            } else {
                scan_int(timeout)
            },
            cid_name,
            cid_num,
        }
    }

    fn record(&self, m: &Message, username: String) -> Originate {
        Originate {
            action_id: lossy(self.action_id),
            channel: lossy(self.name),
            context: lossy(self.context),
            exten: lossy(self.exten),
            priority: self.priority.unwrap_or(0),
            application: lossy(self.app),
            data: lossy(self.appdata),
            timeout_ms: self.timeout.unwrap_or(DEFAULT_TIMEOUT_MS),
            caller_id: lossy(self.callerid),
            cid_num: self.cid_num.as_deref().map(lossy),
            cid_name: self.cid_name.as_deref().map(lossy),
            variables: m
                .variables()
                .iter()
                .map(|(k, v)| (lossy(k), lossy(v)))
                .collect(),
            account: lossy(self.account),
            async_: self.is_async,
            username,
            raw: m.pairs(),
        }
    }
}

/// `astman_send_response_full`.
fn response(m: &Message, resp: &str, msg: Option<&[u8]>) -> Vec<u8> {
    let mut b = format!("Response: {resp}\r\n").into_bytes();
    push_action_id(&mut b, m);
    if let Some(msg) = msg {
        b.extend_from_slice(b"Message: ");
        b.extend_from_slice(msg);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"\r\n");
    b
}

fn push_action_id(b: &mut Vec<u8>, m: &Message) {
    let id = m.get("ActionID");
    if !id.is_empty() {
        b.extend_from_slice(b"ActionID: ");
        b.extend_from_slice(id);
        b.extend_from_slice(b"\r\n");
    }
}

// ---------------------------------------------------------------------------
// Calls

struct CallPlan {
    outcome: Outcome,
    tech: Vec<u8>,
    data: Vec<u8>,
    /// `requested_channel` of `fast_originate`.
    requested: Vec<u8>,
    app: Vec<u8>,
    appdata: Vec<u8>,
    context: Vec<u8>,
    exten: Vec<u8>,
    priority: i32,
    cid_num: Option<Vec<u8>>,
    cid_name: Option<Vec<u8>>,
    account: Vec<u8>,
    action_id: Vec<u8>,
    channel_id: Vec<u8>,
    other_channel_id: Vec<u8>,
    /// A synchronous Originate: told the result instead of an
    /// OriginateResponse.
    sync: Option<mpsc::Sender<bool>>,
}

/// A channel as the events show it.
#[derive(Debug, Clone)]
struct Leg {
    name: Vec<u8>,
    state: u8,
    cid_num: Option<Vec<u8>>,
    cid_name: Option<Vec<u8>>,
    conn_num: Option<Vec<u8>>,
    conn_name: Option<Vec<u8>>,
    account: Vec<u8>,
    context: Vec<u8>,
    exten: Vec<u8>,
    priority: i32,
    uniqueid: Vec<u8>,
    linkedid: Vec<u8>,
}

const UNKNOWN: &[u8] = b"<unknown>";
const APP_DIAL: &[u8] = b"AppDial2";
const OUTGOING_LINE: &[u8] = b"(Outgoing Line)";

fn state_desc(state: u8) -> &'static str {
    match state {
        0 => "Down",
        1 => "Rsrvd",
        2 => "OffHook",
        3 => "Dialing",
        4 => "Ring",
        5 => "Ringing",
        6 => "Up",
        7 => "Busy",
        _ => "Unknown",
    }
}

/// `ast_cause2str` for the causes the transcripts show.
fn cause_text(cause: u8) -> &'static str {
    match cause {
        16 => "Normal Clearing",
        17 => "User busy",
        19 => "User alerting, no answer",
        21 => "Call Rejected",
        34 => "Circuit/channel congestion",
        _ => "Unknown",
    }
}

fn leg_headers(prefix: &str, l: &Leg) -> Vec<(String, Vec<u8>)> {
    let or_unknown = |v: &Option<Vec<u8>>| v.clone().unwrap_or_else(|| UNKNOWN.to_vec());
    vec![
        (format!("{prefix}Channel"), l.name.clone()),
        (
            format!("{prefix}ChannelState"),
            l.state.to_string().into_bytes(),
        ),
        (
            format!("{prefix}ChannelStateDesc"),
            state_desc(l.state).into(),
        ),
        (format!("{prefix}CallerIDNum"), or_unknown(&l.cid_num)),
        (format!("{prefix}CallerIDName"), or_unknown(&l.cid_name)),
        (format!("{prefix}ConnectedLineNum"), or_unknown(&l.conn_num)),
        (
            format!("{prefix}ConnectedLineName"),
            or_unknown(&l.conn_name),
        ),
        (format!("{prefix}Language"), b"en".to_vec()),
        (format!("{prefix}AccountCode"), l.account.clone()),
        (format!("{prefix}Context"), l.context.clone()),
        (format!("{prefix}Exten"), l.exten.clone()),
        (
            format!("{prefix}Priority"),
            l.priority.to_string().into_bytes(),
        ),
        (format!("{prefix}Uniqueid"), l.uniqueid.clone()),
        (format!("{prefix}Linkedid"), l.linkedid.clone()),
    ]
}

struct Call {
    shared: Arc<Shared>,
    generation: u64,
    plan: CallPlan,
    start: SystemTime,
    answered: Option<SystemTime>,
}

fn run_call(shared: Arc<Shared>, generation: u64, plan: CallPlan) {
    let local = plan.tech.eq_ignore_ascii_case(b"Local");
    let mut call = Call {
        shared,
        generation,
        plan,
        start: SystemTime::now(),
        answered: None,
    };
    if local {
        call.run_local();
    } else {
        call.run_other();
    }
}

impl Call {
    fn emit(&self, event: &str, category: i32, headers: Vec<(String, Vec<u8>)>) {
        self.shared.emit(self.generation, event, category, headers);
    }

    /// Sleeps; false when the peer stopped meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if !self.shared.alive(self.generation) {
                return false;
            }
            thread::sleep(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(20)),
            );
        }
        self.shared.alive(self.generation)
    }

    fn app_target(&self) -> bool {
        !self.plan.app.is_empty()
    }

    fn chan_event(&self, event: &str, l: &Leg, extra: Vec<(String, Vec<u8>)>) {
        let mut h = leg_headers("", l);
        h.extend(extra);
        self.emit(event, perm::CALL, h);
    }

    fn newchannel(&self, l: &Leg) {
        self.chan_event("Newchannel", l, vec![]);
    }

    fn newstate(&self, l: &mut Leg, state: u8) {
        l.state = state;
        self.chan_event("Newstate", l, vec![]);
    }

    fn hangup_request(&self, l: &Leg, cause: u8) {
        self.chan_event(
            "HangupRequest",
            l,
            vec![("Cause".into(), cause.to_string().into_bytes())],
        );
    }

    fn soft_hangup_request(&self, l: &Leg, cause: u8) {
        self.chan_event(
            "SoftHangupRequest",
            l,
            vec![("Cause".into(), cause.to_string().into_bytes())],
        );
    }

    fn hangup(&self, l: &Leg, cause: u8) {
        self.chan_event(
            "Hangup",
            l,
            vec![
                ("Cause".into(), cause.to_string().into_bytes()),
                ("Cause-txt".into(), cause_text(cause).into()),
            ],
        );
    }

    fn dial_begin(&self, dest: &Leg) {
        let mut h = leg_headers("Dest", dest);
        h.push(("DialString".into(), self.plan.data.clone()));
        self.emit("DialBegin", perm::CALL, h);
    }

    fn dial_end(&self, dest: &Leg, status: &str) {
        let mut h = leg_headers("Dest", dest);
        h.push(("DialStatus".into(), status.into()));
        self.emit("DialEnd", perm::CALL, h);
    }

    fn dial_state(&self, dest: &Leg, status: &str) {
        let mut h = leg_headers("Dest", dest);
        h.push(("DialStatus".into(), status.into()));
        self.emit("DialState", perm::CALL, h);
    }

    /// NewCallerid and NewConnectedLine on each leg, as the call-file probe
    /// shows them (only when the request had a caller id).
    fn caller_id_events(&self, legs: &mut [&mut Leg]) {
        if self.plan.cid_num.is_none() && self.plan.cid_name.is_none() {
            return;
        }
        for (i, l) in legs.iter_mut().enumerate() {
            l.cid_num = self.plan.cid_num.clone();
            l.cid_name = self.plan.cid_name.clone();
            if i > 0 {
                l.conn_num = self.plan.cid_num.clone();
                l.conn_name = self.plan.cid_name.clone();
            }
            self.chan_event(
                "NewCallerid",
                l,
                vec![(
                    "CID-CallingPres".into(),
                    b"0 (Presentation Allowed, Not Screened)".to_vec(),
                )],
            );
            l.conn_num = self.plan.cid_num.clone();
            l.conn_name = self.plan.cid_name.clone();
            self.chan_event("NewConnectedLine", l, vec![]);
        }
    }

    fn cdr(&self, l: &Leg, last_app: &[u8], last_data: &[u8], disposition: &str) {
        let end = SystemTime::now();
        let (answer_time, billsec) = match self.answered {
            Some(a) => (cdr_time(a).into_bytes(), rounded_secs(a, end)),
            None => (Vec::new(), 0),
        };
        let num = l.cid_num.clone().unwrap_or_default();
        let mut callerid = b"\"".to_vec();
        callerid.extend_from_slice(l.cid_name.as_deref().unwrap_or_default());
        callerid.extend_from_slice(b"\" <");
        callerid.extend_from_slice(&num);
        callerid.push(b'>');
        self.emit(
            "Cdr",
            perm::CDR,
            vec![
                ("AccountCode".into(), l.account.clone()),
                ("Source".into(), num),
                ("Destination".into(), l.exten.clone()),
                ("DestinationContext".into(), l.context.clone()),
                ("CallerID".into(), callerid),
                ("Channel".into(), l.name.clone()),
                ("DestinationChannel".into(), Vec::new()),
                ("LastApplication".into(), last_app.to_vec()),
                ("LastData".into(), last_data.to_vec()),
                ("StartTime".into(), cdr_time(self.start).into_bytes()),
                ("AnswerTime".into(), answer_time),
                ("EndTime".into(), cdr_time(end).into_bytes()),
                (
                    "Duration".into(),
                    rounded_secs(self.start, end).to_string().into_bytes(),
                ),
                ("BillableSeconds".into(), billsec.to_string().into_bytes()),
                ("Disposition".into(), disposition.into()),
                ("AMAFlags".into(), b"DOCUMENTATION".to_vec()),
                ("UniqueID".into(), l.uniqueid.clone()),
                ("UserField".into(), Vec::new()),
            ],
        );
    }

    /// `fast_originate`'s OriginateResponse — or, for a synchronous
    /// Originate, the result the waiting session replies with.
    fn originate_response(&self, dialed: Option<&Leg>, reason: u8) {
        if let Some(tx) = &self.plan.sync {
            let _ = tx.send(dialed.is_some());
            return;
        }
        let mut h: Vec<(String, Vec<u8>)> = Vec::new();
        if !self.plan.action_id.is_empty() {
            h.push(("ActionID".into(), self.plan.action_id.clone()));
        }
        h.push((
            "Response".into(),
            if dialed.is_some() {
                b"Success".to_vec()
            } else {
                b"Failure".to_vec()
            },
        ));
        h.push((
            "Channel".into(),
            dialed.map_or_else(|| self.plan.requested.clone(), |l| l.name.clone()),
        ));
        if self.app_target() {
            h.push(("Application".into(), self.plan.app.clone()));
            h.push(("Data".into(), self.plan.appdata.clone()));
        } else {
            h.push(("Context".into(), self.plan.context.clone()));
            h.push(("Exten".into(), self.plan.exten.clone()));
        }
        h.push(("Reason".into(), reason.to_string().into_bytes()));
        let uniqueid = match dialed {
            Some(l) => l.uniqueid.clone(),
            None if !self.plan.channel_id.is_empty() => self.plan.channel_id.clone(),
            None => UNKNOWN.to_vec(),
        };
        h.push(("Uniqueid".into(), uniqueid));
        h.push((
            "CallerIDNum".into(),
            self.plan
                .cid_num
                .clone()
                .unwrap_or_else(|| UNKNOWN.to_vec()),
        ));
        h.push((
            "CallerIDName".into(),
            self.plan
                .cid_name
                .clone()
                .unwrap_or_else(|| UNKNOWN.to_vec()),
        ));
        self.emit("OriginateResponse", perm::CALL, h);
    }

    /// Never reports; holds on until the peer stops.
    fn hang_forever(&self) {
        while self.sleep(Duration::from_secs(3600)) {}
    }

    /// A `Local/exten@context[/opts]` channel: the probe transcripts.
    fn run_local(&mut self) {
        let data = self.plan.data.clone();
        // `local_alloc` (main/core_local.c): options after the first `/`,
        // then the context after the first `@`, `default` when empty.
        let (dest, opts) = match data.iter().position(|&b| b == b'/') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (&data[..], &b""[..]),
        };
        let (exten, context) = match dest.iter().position(|&b| b == b'@') {
            Some(i) => (&dest[..i], &dest[i + 1..]),
            None => (dest, &b""[..]),
        };
        let context: &[u8] = if context.is_empty() {
            b"default"
        } else {
            context
        };
        let optimization: &[u8] = if opts.contains(&b'n') { b"No" } else { b"Yes" };
        let seq = self.shared.channel_seq.fetch_add(1, Ordering::SeqCst);
        let mut base = b"Local/".to_vec();
        base.extend_from_slice(exten);
        base.push(b'@');
        base.extend_from_slice(context);
        base.extend_from_slice(format!("-{seq:08x}").as_bytes());
        let (u1, u2) = if self.plan.channel_id.is_empty() {
            let mut ids = self.shared.uniqueids(2);
            let u2 = ids.pop().unwrap_or_default();
            (ids.pop().unwrap_or_default(), u2)
        } else if self.plan.other_channel_id.is_empty() {
            let mut u2 = self.plan.channel_id.clone();
            u2.extend_from_slice(b";2");
            (self.plan.channel_id.clone(), u2)
        } else {
            (
                self.plan.channel_id.clone(),
                self.plan.other_channel_id.clone(),
            )
        };
        let leg = |suffix: &[u8], state: u8, uniqueid: Vec<u8>| {
            let mut name = base.clone();
            name.extend_from_slice(suffix);
            Leg {
                name,
                state,
                cid_num: None,
                cid_name: None,
                conn_num: None,
                conn_name: None,
                account: Vec::new(),
                context: context.to_vec(),
                exten: exten.to_vec(),
                priority: 1,
                uniqueid,
                linkedid: u1.clone(),
            }
        };
        let mut one = leg(b";1", 0, u1.clone());
        let mut two = leg(b";2", 4, u2);

        self.newchannel(&one);
        self.newchannel(&two);
        one.account = self.plan.account.clone();
        self.caller_id_events(&mut [&mut one, &mut two]);

        if self.plan.outcome == Outcome::Failure {
            // orig6 (no such extension): no LocalBridge, no Dial.
            self.hangup(&two, 0);
            self.cdr(&two, b"", b"", "FAILED");
            self.hangup(&one, 0);
            self.originate_response(None, 0);
            self.cdr(&one, APP_DIAL, OUTGOING_LINE, "FAILED");
            return;
        }

        let mut h = leg_headers("LocalOne", &one);
        h.extend(leg_headers("LocalTwo", &two));
        h.push(("Context".into(), context.to_vec()));
        h.push(("Exten".into(), exten.to_vec()));
        h.push(("LocalOptimization".into(), optimization.to_vec()));
        self.emit("LocalBridge", perm::CALL, h);

        match self.plan.outcome {
            Outcome::Answered if self.app_target() => {
                // orig0
                self.newstate(&mut two, 6);
                self.dial_begin(&one);
                self.newstate(&mut one, 6);
                self.answered = Some(SystemTime::now());
                self.dial_end(&one, "ANSWER");
                self.originate_response(Some(&one), 4);
                if !self.sleep(self.shared.cfg.call_duration) {
                    return;
                }
                self.cdr(&one, &self.plan.app, &self.plan.appdata, "ANSWERED");
                two.priority = 2;
                self.hangup_request(&two, 0);
                self.hangup(&one, 0);
                self.soft_hangup_request(&two, 16);
                self.hangup(&two, 0);
                self.cdr(&two, b"Wait", b"1", "ANSWERED");
            }
            Outcome::Answered => {
                // orig1: a dialplan target.
                self.dial_begin(&one);
                self.originate_response(Some(&one), 4);
                self.newstate(&mut one, 6);
                self.answered = Some(SystemTime::now());
                self.dial_end(&one, "ANSWER");
                self.newstate(&mut two, 6);
                if !self.sleep(self.shared.cfg.call_duration) {
                    return;
                }
                // `;1` now runs the target (its priority at the end depends on
                // that dialplan; the probe's `ok` hung up at 3) [inference].
                one.context = self.plan.context.clone();
                one.exten = self.plan.exten.clone();
                one.priority = self.plan.priority;
                two.priority = 2;
                self.soft_hangup_request(&one, 16);
                self.hangup_request(&two, 16);
                self.hangup(&one, 16);
                self.cdr(&one, b"Hangup", b"", "ANSWERED");
                self.soft_hangup_request(&two, 16);
                self.hangup(&two, 16);
                self.cdr(&two, b"Wait", b"1", "ANSWERED");
            }
            Outcome::Busy => {
                // orig2
                self.dial_begin(&one);
                self.newstate(&mut two, 7);
                self.dial_end(&one, "BUSY");
                self.hangup_request(&two, 0);
                self.soft_hangup_request(&two, 16);
                self.hangup(&one, 0);
                self.originate_response(None, 5);
                self.cdr(&two, b"Busy", b"2", "BUSY");
                self.hangup(&two, 17);
                self.cdr(&one, APP_DIAL, OUTGOING_LINE, "BUSY");
            }
            Outcome::Congestion => {
                // orig3
                self.newstate(&mut two, 7);
                self.dial_begin(&one);
                self.dial_end(&one, "CONGESTION");
                self.hangup_request(&two, 0);
                self.cdr(&one, APP_DIAL, OUTGOING_LINE, "CONGESTION");
                self.soft_hangup_request(&two, 16);
                self.hangup(&two, 34);
                self.cdr(&two, b"Congestion", b"2", "CONGESTION");
                self.hangup(&one, 0);
                self.originate_response(None, 8);
            }
            Outcome::NoAnswer { after_ms } => {
                // orig4
                self.dial_begin(&one);
                self.newstate(&mut one, 5);
                self.dial_state(&one, "RINGING");
                if !self.sleep(Duration::from_millis(after_ms)) {
                    return;
                }
                two.priority = 2;
                self.hangup_request(&two, 19);
                self.soft_hangup_request(&two, 16);
                self.originate_response(None, 3);
                self.cdr(&one, APP_DIAL, OUTGOING_LINE, "NO ANSWER");
                self.cdr(&two, b"Wait", b"60", "NO ANSWER");
                self.hangup(&one, 19);
                self.hangup(&two, 19);
            }
            Outcome::Rejected | Outcome::Hangup => {
                // orig5 (Hangup: the same with cause 16, Reason 1 [inference])
                let (cause, reason) = if self.plan.outcome == Outcome::Rejected {
                    (21, 0)
                } else {
                    (16, 1)
                };
                self.dial_begin(&one);
                self.soft_hangup_request(&two, 16);
                self.hangup_request(&one, cause);
                self.cdr(&two, b"Hangup", cause.to_string().as_bytes(), "NO ANSWER");
                self.hangup(&two, cause);
                self.dial_end(&one, "NOANSWER");
                self.hangup(&one, cause);
                self.cdr(&one, APP_DIAL, OUTGOING_LINE, "NO ANSWER");
                self.originate_response(None, reason);
            }
            Outcome::Silent => {
                self.dial_begin(&one);
                self.hang_forever();
            }
            Outcome::Failure => unreachable!("handled above"),
        }
    }

    /// Any other technology: one channel **[inference]**, except Failure
    /// (probe `orig8`, `Bogus/123`: the OriginateResponse alone).
    fn run_other(&mut self) {
        if self.plan.outcome == Outcome::Failure {
            self.originate_response(None, 0);
            return;
        }
        let seq = self.shared.channel_seq.fetch_add(1, Ordering::SeqCst);
        let resource_end = self
            .plan
            .data
            .iter()
            .position(|&b| b == b'/')
            .unwrap_or(self.plan.data.len());
        let mut name = self.plan.tech.clone();
        name.push(b'/');
        name.extend_from_slice(&self.plan.data[..resource_end]);
        name.extend_from_slice(format!("-{seq:08x}").as_bytes());
        let uniqueid = if self.plan.channel_id.is_empty() {
            self.shared.uniqueids(1).pop().unwrap_or_default()
        } else {
            self.plan.channel_id.clone()
        };
        let mut chan = Leg {
            name,
            state: 0,
            cid_num: None,
            cid_name: None,
            conn_num: None,
            conn_name: None,
            account: Vec::new(),
            context: b"default".to_vec(),
            exten: b"s".to_vec(),
            priority: 1,
            uniqueid: uniqueid.clone(),
            linkedid: uniqueid,
        };
        self.newchannel(&chan);
        chan.account = self.plan.account.clone();
        self.caller_id_events(&mut [&mut chan]);
        self.dial_begin(&chan);
        match self.plan.outcome {
            Outcome::Answered => {
                self.newstate(&mut chan, 6);
                self.answered = Some(SystemTime::now());
                self.dial_end(&chan, "ANSWER");
                self.originate_response(Some(&chan), 4);
                if !self.sleep(self.shared.cfg.call_duration) {
                    return;
                }
                let (app, data) = if self.app_target() {
                    (self.plan.app.clone(), self.plan.appdata.clone())
                } else {
                    (b"Hangup".to_vec(), Vec::new())
                };
                self.hangup(&chan, 16);
                self.cdr(&chan, &app, &data, "ANSWERED");
            }
            Outcome::Busy => {
                self.dial_end(&chan, "BUSY");
                self.hangup(&chan, 17);
                self.originate_response(None, 5);
                self.cdr(&chan, APP_DIAL, OUTGOING_LINE, "BUSY");
            }
            Outcome::Congestion => {
                self.dial_end(&chan, "CONGESTION");
                self.hangup(&chan, 34);
                self.originate_response(None, 8);
                self.cdr(&chan, APP_DIAL, OUTGOING_LINE, "CONGESTION");
            }
            Outcome::NoAnswer { after_ms } => {
                self.newstate(&mut chan, 5);
                self.dial_state(&chan, "RINGING");
                if !self.sleep(Duration::from_millis(after_ms)) {
                    return;
                }
                self.dial_end(&chan, "NOANSWER");
                self.hangup(&chan, 19);
                self.originate_response(None, 3);
                self.cdr(&chan, APP_DIAL, OUTGOING_LINE, "NO ANSWER");
            }
            Outcome::Rejected | Outcome::Hangup => {
                let (cause, reason) = if self.plan.outcome == Outcome::Rejected {
                    (21, 0)
                } else {
                    (16, 1)
                };
                self.dial_end(&chan, "NOANSWER");
                self.hangup(&chan, cause);
                self.originate_response(None, reason);
                self.cdr(&chan, APP_DIAL, OUTGOING_LINE, "NO ANSWER");
            }
            Outcome::Silent => self.hang_forever(),
            Outcome::Failure => unreachable!("handled above"),
        }
    }
}

// ---------------------------------------------------------------------------
// Asterisk's little parsers

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ast_skip_blanks`: leading bytes `< 33`.
fn skip_blanks(v: &[u8]) -> &[u8] {
    let i = v.iter().position(|&b| b >= 33).unwrap_or(v.len());
    &v[i..]
}

/// `ast_trim_blanks`: trailing bytes `< 33`.
fn trim_blanks(v: &[u8]) -> &[u8] {
    let end = v.iter().rposition(|&b| b >= 33).map_or(0, |i| i + 1);
    &v[..end]
}

/// `ast_true`.
fn ast_true(v: &[u8]) -> bool {
    [&b"yes"[..], b"true", b"y", b"t", b"1", b"on"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

/// `ast_false`.
fn ast_false(v: &[u8]) -> bool {
    [&b"no"[..], b"false", b"n", b"f", b"0", b"off"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

/// `sscanf(v, "%30d", &n) == 1` (glibc: leading white space, a sign, digits;
/// out of range saturates to `long`, then narrows to `int` [inference]).
fn scan_int(v: &[u8]) -> Option<i32> {
    let start = v
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let field = &v[start..v.len().min(start + 30)];
    let (neg, digits) = match field.first() {
        Some(b'-') => (true, &field[1..]),
        Some(b'+') => (false, &field[1..]),
        _ => (false, field),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut value: i64 = 0;
    for &d in &digits[..n] {
        value = value.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    Some((if neg { value.saturating_neg() } else { value }) as i32)
}

/// `__ast_app_separate_args(buf, delim, remove_chars = 1, array, arraylen)`,
/// on a C string.
fn separate_args(input: &[u8], delim: u8, arraylen: usize) -> Vec<Vec<u8>> {
    let mut b = input.to_vec();
    if let Some(nul) = b.iter().position(|&c| c == 0) {
        b.truncate(nul);
    }
    // Two terminators: a removed byte shifts the first one left, the C's
    // memmove leaves the old one in place.
    b.extend_from_slice(&[0, 0]);
    let mut starts = Vec::new();
    let mut scan = 0usize;
    let mut wasdelim: Option<usize> = None;
    let (mut paren, mut quote, mut bracket) = (0u32, false, 0u32);
    while b[scan] != 0 && starts.len() < arraylen.saturating_sub(1) {
        starts.push(scan);
        while b[scan] != 0 {
            match b[scan] {
                b'(' => paren += 1,
                b')' => paren = paren.saturating_sub(1),
                b'[' => bracket += 1,
                b']' => bracket = bracket.saturating_sub(1),
                b'"' if delim != b'"' => {
                    quote = !quote;
                    b.remove(scan);
                    continue;
                }
                b'\\' => {
                    // Removed; the next byte is taken literally (skipped).
                    b.remove(scan);
                }
                c if c == delim && paren == 0 && !quote && bracket == 0 => {
                    wasdelim = Some(scan);
                    b[scan] = 0;
                    scan += 1;
                    break;
                }
                _ => {}
            }
            scan += 1;
        }
    }
    if b[scan] != 0 || (scan > 0 && wasdelim == Some(scan - 1)) {
        starts.push(scan);
    }
    starts
        .into_iter()
        .map(|s| {
            let end = s + b[s..].iter().position(|&c| c == 0).unwrap_or(0);
            b[s..end].to_vec()
        })
        .collect()
}

/// `ast_shrink_phone_number`.
fn shrink_phone_number(n: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(n.len());
    let mut bracketed = 0i32;
    for (x, &c) in n.iter().enumerate() {
        match c {
            b'[' => {
                bracketed += 1;
                out.push(c);
            }
            b']' => {
                bracketed -= 1;
                out.push(c);
            }
            b'-' => {
                if bracketed != 0 {
                    out.push(c);
                }
            }
            b'.' => {
                if x + 1 == n.len() {
                    out.push(c);
                }
            }
            b'(' | b' ' | b')' => {}
            _ => out.push(c),
        }
    }
    out
}

/// `ast_isphonenumber`.
fn is_phone_number(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|b| b"0123456789*#+".contains(b))
}

/// `ast_callerid_parse` → (name, location).
fn callerid_parse(instr: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let quoted = |s: &[u8]| -> Option<Vec<u8>> {
        let ns = s.iter().position(|&b| b == b'"')?;
        let ne = s[ns + 1..].iter().position(|&b| b == b'"')? + ns + 1;
        Some(s[ns + 1..ne].to_vec())
    };
    if let Some(ls) = instr.iter().rposition(|&b| b == b'<') {
        if let Some(le) = instr[ls..].iter().rposition(|&b| b == b'>').map(|i| i + ls) {
            let location = instr[ls + 1..le].to_vec();
            let head = &instr[..ls];
            let name = if let Some(n) = quoted(head) {
                Some(n)
            } else if let Some(ns) = head.iter().position(|&b| b == b'"') {
                if instr[le + 1..].contains(&b'"') {
                    Some(trim_blanks(&head[ns + 1..]).to_vec())
                } else {
                    None
                }
            } else {
                Some(trim_blanks(skip_blanks(head)).to_vec())
            };
            return (name, Some(location));
        }
    }
    let tmp = shrink_phone_number(&instr[..instr.len().min(255)]);
    if is_phone_number(&tmp) {
        return (None, Some(tmp));
    }
    let name = quoted(instr).unwrap_or_else(|| trim_blanks(skip_blanks(instr)).to_vec());
    (Some(name), None)
}

/// `action_originate`'s caller id: `tmp2[256]`, parse, empty name → none,
/// number shrunk, empty → none. Returns (name, number).
fn originate_callerid(callerid: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let tmp2 = &callerid[..callerid.len().min(ORIGINATE_TMP - 1)];
    let (n, l) = callerid_parse(tmp2);
    let n = n.filter(|n| !n.is_empty());
    let l = l.map(|l| shrink_phone_number(&l)).filter(|l| !l.is_empty());
    (n, l)
}

/// `is_originate_app_permitted`.
fn is_originate_app_permitted(app: &[u8], data: &[u8], permission: i32) -> bool {
    let contains_ci = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    for search in [
        &b"agi"[..],
        b"dbdeltree",
        b"exec",
        b"externalivr",
        b"mixmonitor",
        b"originate",
        b"reload",
        b"system",
    ] {
        if contains_ci(app, search) {
            return permission & perm::SYSTEM != 0;
        }
    }
    if contains_ci(app, b"queue") && !data.is_empty() {
        let args = separate_args(data, b',', 9);
        if args.get(5).is_some_and(|agi| !agi.is_empty()) {
            return permission & (perm::AGI | perm::SYSTEM) != 0;
        }
    }
    for search in [
        &b"CURL"[..],
        b"DB",
        b"EVAL",
        b"FILE",
        b"ODBC",
        b"REALTIME",
        b"SHELL",
    ] {
        if !data.is_empty() && data.windows(search.len()).any(|w| w == search) {
            return permission & perm::SYSTEM != 0;
        }
    }
    true
}

/// `ast_instring(bigstr, smallstr, ',')`, quirks included: an item matches
/// when `strncmp(item, small, len(item)) == 0` (so `cal` matches `call`, and
/// an empty item matches everything).
fn ast_instring(big: &[u8], small: &[u8]) -> bool {
    let mut val = big;
    loop {
        match val.iter().position(|&b| b == b',') {
            Some(i) => {
                if small.len() >= i && small[..i] == val[..i] {
                    return true;
                }
                val = &val[i + 1..];
                if val.is_empty() {
                    return false;
                }
            }
            None => return val == small,
        }
    }
}

/// `get_perm`.
fn get_perm(s: &[u8]) -> i32 {
    PERMS
        .iter()
        .filter(|(_, label)| ast_instring(s, label.as_bytes()))
        .fold(0, |acc, (num, _)| acc | num)
}

/// `strings_to_mask`; `None` is the C's -1 for an empty string.
fn strings_to_mask(s: &[u8]) -> Option<i32> {
    if s.is_empty() {
        return None;
    }
    if s.iter().all(|b| b.is_ascii_digit()) {
        // atoi
        let mut v: i64 = 0;
        for &d in s.iter().take(18) {
            v = v * 10 + i64::from(d - b'0');
        }
        return Some(v as i32);
    }
    if ast_false(s) {
        return Some(0);
    }
    if ast_true(s) {
        return Some(PERMS.iter().fold(0, |acc, (num, _)| acc | num));
    }
    Some(get_perm(s))
}

/// `authority_to_str`.
fn authority_to_str(authority: i32) -> String {
    let labels: Vec<&str> = PERMS[..PERMS.len() - 1]
        .iter()
        .filter(|(num, _)| authority & num != 0)
        .map(|(_, label)| *label)
        .collect();
    if labels.is_empty() {
        "<none>".to_string()
    } else {
        labels.join(",")
    }
}

/// `%ld.%06lu` of now.
fn timestamp_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", now.as_secs(), now.subsec_micros())
}

/// CDR times, `%Y-%m-%d %H:%M:%S` in UTC (the probe host's zone).
fn cdr_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Whole seconds from `a` to `b`, rounded [inference].
fn rounded_secs(a: SystemTime, b: SystemTime) -> u64 {
    let ms = b.duration_since(a).unwrap_or_default().as_millis();
    ((ms + 500) / 1000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separate_args_like_asterisk() {
        let v = |s: &str| {
            separate_args(s.as_bytes(), b',', 64)
                .into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(v("A=1,B=2"), ["A=1", "B=2"]);
        assert_eq!(v("A=\"x,y\",B=(1,2)"), ["A=x,y", "B=(1,2)"]);
        assert_eq!(v("A=a\\,b"), ["A=a,b"]);
        assert_eq!(v("A=1,"), ["A=1", ""]);
        assert_eq!(v(",A=1"), ["", "A=1"]);
        assert_eq!(v(""), Vec::<String>::new());
        assert_eq!(v("x\\"), ["x"]);
    }
}
