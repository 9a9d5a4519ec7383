//! Tests of the AMI peer itself (`support::asterisk_ami`), driven by a raw
//! `std::net::TcpStream` client: before calltrail's AMI client is tested
//! against the peer, the peer must answer as the probed Asterisk did
//! (`shared/reference/asterisk-probes/report.txt` "==== AMI Originate",
//! line 371 on, and the raw events of `probe-events.jsonl`) and as
//! `main/manager.c` does (`shared/reference/INTEGRATIONS.md` §3.2, lines
//! 325-364): banner, Login, framing, duplicate headers, `Variable:`
//! splitting, Originate with every outcome, broadcast, permissions, stop and
//! restart on the same port, and the fault injection.

use crate::support::asterisk_ami::{
    Account, AmiOptions, AmiPeer, DropAfterOriginate, DropMode, Outcome, AMI_VERSION,
    DEFAULT_SECRET, DEFAULT_USERNAME,
};
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

type Msg = Vec<(String, String)>;

// ---------------------------------------------------------------------------
// A raw client

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the AMI peer");
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        Client {
            s,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Connects and checks the banner.
    fn open(port: u16) -> Client {
        let mut c = Client::connect(port);
        let banner = c
            .read_until(b"\r\n", Duration::from_secs(5))
            .expect("banner");
        assert_eq!(
            String::from_utf8_lossy(&banner),
            format!("Asterisk Call Manager/{AMI_VERSION}\r\n")
        );
        c
    }

    /// Connects, checks the banner and logs in as the default account.
    fn logged_in(port: u16) -> Client {
        let mut c = Client::open(port);
        c.login(DEFAULT_USERNAME, DEFAULT_SECRET, None);
        c
    }

    fn login(&mut self, user: &str, secret: &str, events: Option<&str>) {
        let mut h = vec![("Action", "Login"), ("Username", user), ("Secret", secret)];
        if let Some(e) = events {
            h.push(("Events", e));
        }
        h.push(("ActionID", "login"));
        self.action(&h);
        assert_eq!(
            String::from_utf8_lossy(&self.raw()),
            "Response: Success\r\nActionID: login\r\nMessage: Authentication accepted\r\n\r\n"
        );
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write to the AMI peer");
    }

    fn action(&mut self, headers: &[(&str, &str)]) {
        let mut b = String::new();
        for (k, v) in headers {
            b.push_str(&format!("{k}: {v}\r\n"));
        }
        b.push_str("\r\n");
        self.send(b.as_bytes());
    }

    /// Bytes up to and including `pat`; `None` on EOF or timeout.
    fn read_until(&mut self, pat: &[u8], timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = find(&self.buf, pat) {
                return Some(self.buf.drain(..i + pat.len()).collect());
            }
            if self.eof || Instant::now() >= deadline {
                return None;
            }
            self.fill();
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        match self.s.read(&mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => self.eof = true,
        }
    }

    /// The next whole message, raw.
    fn raw(&mut self) -> Vec<u8> {
        self.read_until(b"\r\n\r\n", Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no message; have {:?}", String::from_utf8_lossy(&self.buf)))
    }

    /// The next message that is not an event (events before it dropped).
    fn response(&mut self) -> String {
        loop {
            let raw = self.raw();
            if !raw.starts_with(b"Event:") {
                return String::from_utf8_lossy(&raw).into_owned();
            }
        }
    }

    fn msg(&mut self) -> Msg {
        parse(&self.raw())
    }

    fn try_msg(&mut self, timeout: Duration) -> Option<Msg> {
        self.read_until(b"\r\n\r\n", timeout).map(|b| parse(&b))
    }

    /// Reads (and drops) until EOF; whether it came within `timeout`.
    fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.eof && Instant::now() < deadline {
            self.fill();
        }
        self.eof
    }

    /// Events until one named `event` with `ActionID: id` (included).
    fn events_until(&mut self, event: &str, id: &str, timeout: Duration) -> Vec<Msg> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .try_msg(left)
                .unwrap_or_else(|| panic!("no {event} for {id}; got {out:#?}"));
            let done = get(&m, "Event") == Some(event) && get(&m, "ActionID") == Some(id);
            out.push(m);
            if done {
                return out;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse(raw: &[u8]) -> Msg {
    String::from_utf8_lossy(raw)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((k, v)) => (k.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn get<'a>(m: &'a Msg, key: &str) -> Option<&'a str> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn keys(m: &Msg) -> Vec<&str> {
    m.iter().map(|(k, _)| k.as_str()).collect()
}

fn originate(c: &mut Client, id: &str, headers: &[(&str, &str)]) {
    let mut h = vec![("Action", "Originate"), ("ActionID", id)];
    h.extend_from_slice(headers);
    c.action(&h);
}

fn queued(id: &str) -> String {
    format!("Response: Success\r\nActionID: {id}\r\nMessage: Originate successfully queued\r\n\r\n")
}

fn error(id: &str, message: &str) -> String {
    format!("Response: Error\r\nActionID: {id}\r\nMessage: {message}\r\n\r\n")
}

fn quick() -> AmiOptions {
    AmiOptions {
        call_duration_ms: 100,
        ..AmiOptions::default()
    }
}

// ---------------------------------------------------------------------------
// The probe's events

/// A JSON object with its keys in file order (serde_json's map sorts).
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = a.next_entry::<String, serde_json::Value>()? {
                    v.push(entry);
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// The probe's events with a `Timestamp` in `[from, to)` (seconds after
/// 1796321000), in wire order, without the classes the report leaves out.
fn probe_window(from: f64, to: f64) -> Vec<Msg> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/asterisk-probes/probe-events.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ordered(fields) = serde_json::from_str(line).expect("a JSON object per line");
        let m: Msg = fields
            .into_iter()
            .filter(|(k, _)| k != "_rx")
            .map(|(k, v)| (k, v.as_str().expect("string values").to_string()))
            .collect();
        let ts: f64 = get(&m, "Timestamp")
            .expect("Timestamp")
            .parse()
            .expect("number");
        let event = get(&m, "Event").expect("Event");
        if ts >= 1_796_321_000.0 + from
            && ts < 1_796_321_000.0 + to
            && !matches!(event, "VarSet" | "Newexten" | "DeviceStateChange")
        {
            out.push(m);
        }
    }
    out
}

/// Values that differ from run to run.
const VOLATILE: &[&str] = &[
    "Timestamp",
    "Uniqueid",
    "Linkedid",
    "DestUniqueid",
    "DestLinkedid",
    "LocalOneUniqueid",
    "LocalOneLinkedid",
    "LocalTwoUniqueid",
    "LocalTwoLinkedid",
    "UniqueID",
    "StartTime",
    "EndTime",
    "Duration",
    "BillableSeconds",
];

/// `Local/x@y-0000001a;1` → `Local/x@y-????????;1`.
fn normalize_seq(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-'
            && i + 10 <= b.len()
            && b[i + 1..i + 9].iter().all(|c| c.is_ascii_hexdigit())
            && b[i + 9] == b';'
        {
            out.push_str("-????????");
            i += 9;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn assert_like_probe(case: &str, got: &[Msg], want: &[Msg], skip: &[&str]) {
    let names = |ms: &[Msg]| -> Vec<String> {
        ms.iter()
            .map(|m| get(m, "Event").unwrap_or("?").to_string())
            .collect()
    };
    assert_eq!(names(got), names(want), "{case}: the event sequence");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            keys(g),
            keys(w),
            "{case}: headers of event {i} ({:?})",
            get(w, "Event")
        );
        for ((k, gv), (_, wv)) in g.iter().zip(w) {
            if k == "AnswerTime" {
                assert_eq!(gv.is_empty(), wv.is_empty(), "{case}: event {i} AnswerTime");
            } else if !VOLATILE.contains(&k.as_str()) && !skip.contains(&k.as_str()) {
                assert_eq!(
                    normalize_seq(gv),
                    normalize_seq(wv),
                    "{case}: event {i} ({:?}) header {k}",
                    get(w, "Event")
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn banner_login_ping_unknown_and_logoff_are_asterisks_bytes() {
    let peer = AmiPeer::start(
        AmiOptions::default().with_account(Account::new("sys", "pw").read("system,call")),
    );
    let mut c = Client::open(peer.port());
    c.send(
        b"Action: Login\r\nUsername: CALLTRAIL\r\nSecret: calltrail-secret\r\nActionID: l1\r\n\r\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        "Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n"
    );
    // `read = call` only: no FullyBooted; the next message answers the Ping.
    c.send(b"Action: Ping\r\nActionID: p1\r\n\r\n");
    let pong = c.msg();
    assert_eq!(keys(&pong), ["Response", "ActionID", "Ping", "Timestamp"]);
    assert_eq!(get(&pong, "Ping"), Some("Pong"));
    let ts = get(&pong, "Timestamp").unwrap();
    let (secs, usecs) = ts.split_once('.').expect("s.usec");
    assert!(secs.parse::<u64>().is_ok() && usecs.len() == 6, "{ts}");

    c.send(b"Action: Frobnicate\r\nActionID: u1\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        error(
            "u1",
            "Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands."
        )
    );
    c.send(b"\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        "Response: Error\r\nMessage: Missing action in request\r\n\r\n"
    );
    c.send(b"Action: Login\r\nUsername: nobody\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        "Response: Success\r\nMessage: Already authenticated\r\n\r\n"
    );
    c.send(b"Action: Events\r\nEventMask: off\r\nActionID: e1\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        "Response: Success\r\nActionID: e1\r\nEvents: Off\r\n\r\n"
    );
    c.send(b"Action: Logoff\r\nActionID: bye\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        "Response: Goodbye\r\nActionID: bye\r\nMessage: Thanks for all the fish.\r\n\r\n"
    );
    assert!(c.closed_within(Duration::from_secs(2)), "Logoff closes");

    // A `system` reader gets FullyBooted right after the accept.
    let mut s = Client::open(peer.port());
    s.login("sys", "pw", None);
    let booted = s.msg();
    assert_eq!(
        keys(&booted),
        ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    );
    assert_eq!(get(&booted, "Event"), Some("FullyBooted"));
    assert_eq!(get(&booted, "Privilege"), Some("system,all"));
    assert_eq!(get(&booted, "Status"), Some("Fully Booted"));
}

#[test]
fn failed_login_answers_after_a_second_then_closes() {
    let peer = AmiPeer::start(AmiOptions {
        auth_timeout: Duration::from_millis(400),
        ..AmiOptions::default()
    });
    let mut c = Client::open(peer.port());
    // Before login only Login/Logoff/Challenge run.
    c.send(b"Action: Ping\r\nActionID: early\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        error("early", "Permission denied")
    );
    c.send(b"Action: Originate\r\nChannel: Local/1@x\r\nApplication: Wait\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        "Response: Error\r\nMessage: Permission denied\r\n\r\n"
    );
    let started = Instant::now();
    c.send(b"Action: Login\r\nUsername: calltrail\r\nSecret: wrong\r\nActionID: bad\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        error("bad", "Authentication failed")
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "answered after {waited:?}"
    );
    assert!(
        c.closed_within(Duration::from_secs(2)),
        "closed after a failed login"
    );

    // Unknown user: the same.
    let mut u = Client::open(peer.port());
    u.send(b"Action: Login\r\nUsername: ghost\r\nSecret: calltrail-secret\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&u.raw()),
        "Response: Error\r\nMessage: Authentication failed\r\n\r\n"
    );
    assert!(u.closed_within(Duration::from_secs(2)));

    // authtimeout: a session that never logs in is closed.
    let mut idle = Client::open(peer.port());
    assert!(
        idle.closed_within(Duration::from_secs(3)),
        "authtimeout closes"
    );
    assert_eq!(peer.logged_in(), 0);
}

/// The Originate probes of report.txt, with the window of their events in
/// probe-events.jsonl (seconds after 1796321000).
struct ProbeCase {
    id: &'static str,
    headers: &'static [(&'static str, &'static str)],
    window: (f64, f64),
    /// Headers whose values depend on the probe's dialplan in a way the
    /// peer does not reproduce.
    skip: &'static [&'static str],
}

const PROBES: &[ProbeCase] = &[
    ProbeCase {
        id: "orig0",
        headers: &[
            ("Channel", "Local/ok@probe/n"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Timeout", "10000"),
        ],
        window: (101.0, 105.0),
        skip: &[],
    },
    ProbeCase {
        id: "orig1",
        headers: &[
            ("Channel", "Local/ok@probe/n"),
            ("Context", "probe"),
            ("Exten", "ok"),
            ("Priority", "1"),
            ("Timeout", "10000"),
        ],
        window: (105.0, 109.0),
        // `;1` ends at the probe dialplan's priority 3.
        skip: &["Priority"],
    },
    ProbeCase {
        id: "orig2",
        headers: &[
            ("Channel", "Local/busy@probe/n"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Timeout", "10000"),
        ],
        window: (109.0, 113.0),
        skip: &[],
    },
    ProbeCase {
        id: "orig3",
        headers: &[
            ("Channel", "Local/congested@probe/n"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Timeout", "10000"),
        ],
        window: (113.0, 117.0),
        skip: &[],
    },
    ProbeCase {
        id: "orig4",
        headers: &[
            ("Channel", "Local/noanswer@probe/n"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Timeout", "3000"),
        ],
        window: (117.0, 124.0),
        skip: &[],
    },
    ProbeCase {
        id: "orig5",
        headers: &[
            ("Channel", "Local/hangupnow@probe/n"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Timeout", "10000"),
        ],
        window: (124.0, 128.0),
        skip: &[],
    },
    ProbeCase {
        id: "orig6",
        headers: &[
            ("Channel", "Local/nosuch@probe/n"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Timeout", "10000"),
        ],
        window: (128.0, 132.0),
        skip: &[],
    },
    // orig7 (no such context) is the same outcome as orig6; Asterisk itself
    // ordered its Cdr and Hangup events differently that time.
    ProbeCase {
        id: "orig8",
        headers: &[
            ("Channel", "Bogus/123"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Timeout", "10000"),
        ],
        window: (136.0, 140.0),
        skip: &[],
    },
];

fn probe_outcome(channel: &str) -> Outcome {
    match channel {
        "Local/ok@probe/n" => Outcome::Answered,
        "Local/busy@probe/n" => Outcome::Busy,
        "Local/congested@probe/n" => Outcome::Congestion,
        "Local/noanswer@probe/n" => Outcome::NoAnswer { after_ms: 300 },
        "Local/hangupnow@probe/n" => Outcome::Rejected,
        _ => Outcome::Failure,
    }
}

#[test]
fn async_originate_answers_like_the_probed_asterisk_for_every_outcome() {
    // The probe's AMI user read everything; `call,cdr` is what these events
    // need (and, without `system`, no FullyBooted).
    let peer = AmiPeer::start(
        quick()
            .with_outcome(|o| probe_outcome(&o.channel))
            .with_account(Account::new("probe", "pw").read("call,cdr")),
    );
    let mut c = Client::open(peer.port());
    c.login("probe", "pw", None);
    for case in PROBES {
        let want = probe_window(case.window.0, case.window.1);
        assert!(!want.is_empty(), "{}: no probe events", case.id);
        let mut h = case.headers.to_vec();
        h.push(("Async", "true"));
        let sent = Instant::now();
        originate(&mut c, case.id, &h);
        assert_eq!(
            String::from_utf8_lossy(&c.raw()),
            queued(case.id),
            "{}",
            case.id
        );
        let mut got = Vec::new();
        while got.len() < want.len() {
            match c.try_msg(Duration::from_secs(5)) {
                Some(m) => got.push(m),
                None => panic!(
                    "{}: {} of {} events: {got:#?}",
                    case.id,
                    got.len(),
                    want.len()
                ),
            }
        }
        assert!(
            c.try_msg(Duration::from_millis(250)).is_none(),
            "{}: more events than the probe",
            case.id
        );
        assert_like_probe(case.id, &got, &want, case.skip);
        let response = got
            .iter()
            .find(|m| get(m, "Event") == Some("OriginateResponse"))
            .expect("an OriginateResponse");
        assert_eq!(get(response, "ActionID"), Some(case.id));
        if case.id == "orig4" {
            assert!(
                sent.elapsed() >= Duration::from_millis(300),
                "NoAnswer waits"
            );
        }
    }
    // Success: `Local/…-0000001a;1` and a Uniqueid `<epoch>.52`, as the
    // probe's first Originate.
    let first = peer
        .events()
        .into_iter()
        .find(|e| e.iter().any(|(k, v)| k == "ActionID" && v == "orig0"))
        .expect("orig0's OriginateResponse");
    assert_eq!(get(&first, "Channel"), Some("Local/ok@probe-0000001a;1"));
    assert!(
        get(&first, "Uniqueid").unwrap().ends_with(".52"),
        "{first:?}"
    );
    assert_eq!(peer.originates().len(), PROBES.len());
}

#[test]
fn caller_id_events_are_those_of_the_call_file_probe() {
    // The call-file probe `probe-busy.call` (CallerID "Callback" <201>): its
    // first attempt at 1796321097.
    let want = probe_window(97.0, 97.5);
    let peer = AmiPeer::start(quick().with_outcome(|_| Outcome::Busy));
    let mut c = Client::logged_in(peer.port());
    originate(
        &mut c,
        "cid",
        &[
            ("Channel", "Local/busy@probe/n"),
            ("CallerID", "\"Callback\" <201>"),
            ("Application", "Wait"),
            ("Data", "2"),
            ("Async", "yes"),
        ],
    );
    assert_eq!(c.response(), queued("cid"));
    let got = c.events_until("OriginateResponse", "cid", Duration::from_secs(5));
    // Up to DialBegin the call file and the Originate run the same code.
    assert_like_probe("callerid", &got[..8], &want[..8], &[]);
    let response = got.last().unwrap();
    assert_eq!(get(response, "CallerIDNum"), Some("201"));
    assert_eq!(get(response, "CallerIDName"), Some("Callback"));
    assert_eq!(get(response, "Reason"), Some("5"));
    let o = &peer.originates()[0];
    assert_eq!(o.cid_num.as_deref(), Some("201"));
    assert_eq!(o.cid_name.as_deref(), Some("Callback"));
}

#[test]
fn sync_originate_answers_after_the_outcome_without_an_event() {
    let peer = AmiPeer::start(quick().with_outcome(|o| match o.action_id.as_str() {
        "s-busy" => Outcome::Busy,
        "s-late" => Outcome::NoAnswer { after_ms: 400 },
        _ => Outcome::Answered,
    }));
    let mut c = Client::logged_in(peer.port());
    let app = [
        ("Channel", "Local/100@callback/n"),
        ("Application", "Wait"),
        ("Data", "1"),
    ];

    originate(&mut c, "s-busy", &app);
    // The response first (the session was busy), the call's events after it.
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        error("s-busy", "Originate failed")
    );
    let first_event = c.msg();
    assert_eq!(get(&first_event, "Event"), Some("Newchannel"));

    let started = Instant::now();
    originate(&mut c, "s-late", &app);
    assert_eq!(c.response(), error("s-late", "Originate failed"));
    assert!(started.elapsed() >= Duration::from_millis(400));

    originate(
        &mut c,
        "s-ok",
        &[
            ("Channel", "Local/100@callback"),
            ("Context", "cb"),
            ("Exten", "s"),
            ("Priority", "1"),
        ],
    );
    assert_eq!(c.response(), queued("s-ok"));

    originate(
        &mut c,
        "s-noprio",
        &[("Channel", "Local/100@callback"), ("Exten", "s")],
    );
    assert_eq!(
        c.response(),
        error(
            "s-noprio",
            "Originate with 'Exten' requires 'Context' and 'Priority'"
        )
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        peer.events().iter().all(|e| e[0].1 != "OriginateResponse"),
        "no OriginateResponse without Async"
    );
}

#[test]
fn framing_bare_newlines_duplicates_case_and_nul() {
    let peer = AmiPeer::start(quick());
    let mut c = Client::open(peer.port());
    // `\n` alone ends lines.
    c.send(b"Action: Login\nUsername: calltrail\nSecret: calltrail-secret\nActionID: n1\n\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        "Response: Success\r\nActionID: n1\r\nMessage: Authentication accepted\r\n\r\n"
    );
    // The first of duplicate headers wins; names are case-insensitive; an
    // empty Action is skipped (only Action).
    c.send(b"Action:\r\naction: ping\r\nACTIONID: first\r\nActionID: second\r\n\r\n");
    let m = c.msg();
    assert_eq!(get(&m, "ActionID"), Some("first"));
    assert_eq!(get(&m, "Ping"), Some("Pong"));
    // An empty first ActionID wins too: no ActionID in the response.
    c.send(b"Action: Ping\r\nActionID:\r\nActionID: late\r\n\r\n");
    assert_eq!(keys(&c.msg()), ["Response", "Ping", "Timestamp"]);
    // No space before the colon; blanks after it are skipped; a lone `\r`
    // stays in the value; a NUL ends the line.
    c.send(b"Action: Ping\r\nActionID : no\r\n\r\n");
    assert_eq!(keys(&c.msg()), ["Response", "Ping", "Timestamp"]);
    c.send(b"Action: Ping\r\nActionID: \t a\rb\r\n\r\n");
    assert!(c
        .raw()
        .starts_with(b"Response: Success\r\nActionID: a\rb\r\n"));
    c.send(b"Action: Ping\r\nActionID: ab\0cd\r\n\r\n");
    assert_eq!(get(&c.msg(), "ActionID"), Some("ab"));

    // Duplicate Channel: the first is dialled; the record keeps both.
    originate(
        &mut c,
        "dup",
        &[
            ("Channel", "Local/first@cb"),
            ("Channel", "Local/second@cb"),
            ("Application", "Wait"),
            ("Async", "1"),
        ],
    );
    assert_eq!(c.response(), queued("dup"));
    let events = c.events_until("OriginateResponse", "dup", Duration::from_secs(5));
    assert_eq!(
        get(events.last().unwrap(), "Channel"),
        Some("Local/first@cb-0000001a;1")
    );
    let o = peer.originates().pop().unwrap();
    assert_eq!(o.channel, "Local/first@cb");
    assert_eq!(
        o.raw.iter().filter(|(k, _)| k == "Channel").count(),
        2,
        "{:?}",
        o.raw
    );
}

#[test]
fn overlong_lines_and_too_many_headers() {
    let peer = AmiPeer::start(quick());
    let mut c = Client::logged_in(peer.port());
    // 1023 bytes + `\n` is whole; 1022 + `\r\n` too.
    let line = |len: usize| {
        let mut l = b"X-Pad: ".to_vec();
        l.resize(len, b'a');
        l
    };
    let mut msg = b"Action: Ping\r\nActionID: fits\r\n".to_vec();
    msg.extend(line(1023));
    msg.extend(b"\n");
    msg.extend(line(1022));
    msg.extend(b"\r\n\r\n");
    c.send(&msg);
    assert_eq!(get(&c.msg(), "Ping"), Some("Pong"));
    // One byte more: "line too long", the message is not run.
    for (len, end) in [(1024usize, &b"\n"[..]), (1023, b"\r\n"), (5000, b"\r\n")] {
        let mut msg = b"Action: Ping\r\nActionID: long\r\n".to_vec();
        msg.extend(line(len));
        msg.extend(end);
        msg.extend(b"\r\n");
        c.send(&msg);
        assert_eq!(
            String::from_utf8_lossy(&c.raw()),
            error("long", "Failed to parse message: line too long"),
            "{len}"
        );
        if len == 1023 {
            // The `\r` was the buffer's last byte and is all that was kept:
            // with the `\n` it makes an empty line, which ended the message;
            // the final `\r\n` is then a message of its own.
            assert_eq!(
                String::from_utf8_lossy(&c.raw()),
                "Response: Error\r\nMessage: Missing action in request\r\n\r\n"
            );
        }
    }
    // The session goes on.
    c.send(b"Action: Ping\r\nActionID: after\r\n\r\n");
    assert_eq!(get(&c.msg(), "ActionID"), Some("after"));
    // 129 lines: not run.
    let mut msg = b"Action: Ping\r\nActionID: many\r\n".to_vec();
    for i in 0..127 {
        msg.extend(format!("X-{i}: v\r\n").as_bytes());
    }
    msg.extend(b"\r\n");
    c.send(&msg);
    assert_eq!(
        String::from_utf8_lossy(&c.raw()),
        error("many", "Too many lines in message or allocation failure")
    );
    // 128 lines run.
    let mut msg = b"Action: Ping\r\nActionID: ok128\r\n".to_vec();
    for i in 0..126 {
        msg.extend(format!("X-{i}: v\r\n").as_bytes());
    }
    msg.extend(b"\r\n");
    c.send(&msg);
    assert_eq!(get(&c.msg(), "Ping"), Some("Pong"));
}

#[test]
fn variables_and_caller_ids_are_split_like_asterisk() {
    let peer = AmiPeer::start(quick());
    let mut c = Client::logged_in(peer.port());
    c.send(
        b"Action: Originate\r\nActionID: v1\r\nChannel: Local/cb@calltrail-callback/n\r\n\
          Context: calltrail-callback-connect\r\nExten: s\r\nPriority: 1\r\n\
          CallerID: \"Ivan, Petrov\" <+7 (916) 123-45-67>\r\n\
          Variable: A=1,B=2\r\nvariable: C=\"x,y\"\r\nVariable: D=a\\,b,E\r\n\
          Variable: =nameless,F=(1,2),G=\r\nVariable:H=h=h\r\nAsync: true\r\n\r\n",
    );
    assert_eq!(c.response(), queued("v1"));
    let events = c.events_until("OriginateResponse", "v1", Duration::from_secs(5));
    let response = events.last().unwrap();
    assert_eq!(get(response, "CallerIDNum"), Some("+79161234567"));
    assert_eq!(get(response, "CallerIDName"), Some("Ivan, Petrov"));
    assert_eq!(get(response, "Context"), Some("calltrail-callback-connect"));
    let o = peer.originates().pop().unwrap();
    let vars: Vec<(&str, &str)> = o
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("A", "1"),
            ("B", "2"),
            ("C", "x,y"),
            ("D", "a,b"),
            ("F", "(1,2)"),
            ("G", ""),
            ("H", "h=h")
        ]
    );
    assert_eq!(o.caller_id, "\"Ivan, Petrov\" <+7 (916) 123-45-67>");
    assert!(o.async_);
    assert_eq!((o.priority, o.timeout_ms), (1, 30000));

    // A bare number, and a name without a number.
    originate(
        &mut c,
        "v2",
        &[
            ("Channel", "Local/a@b"),
            ("Application", "Wait"),
            ("CallerID", "+7 916 123-45-67"),
            ("Async", "on"),
        ],
    );
    assert_eq!(c.response(), queued("v2"));
    originate(
        &mut c,
        "v3",
        &[
            ("Channel", "Local/a@b"),
            ("Application", "Wait"),
            ("CallerID", " Front Desk "),
            ("Async", "on"),
        ],
    );
    assert_eq!(c.response(), queued("v3"));
    let all = peer.originates();
    assert_eq!(all[1].cid_num.as_deref(), Some("+79161234567"));
    assert_eq!(all[1].cid_name, None);
    assert_eq!(all[2].cid_num, None);
    assert_eq!(all[2].cid_name.as_deref(), Some("Front Desk"));
}

#[test]
fn events_go_to_every_session_that_reads_their_class() {
    let peer = AmiPeer::start(
        quick()
            .with_outcome(|_| Outcome::Busy)
            .with_account(Account::new("cdr", "pw").read("cdr"))
            .with_account(Account::new("sys", "pw").read("system")),
    );
    let mut a = Client::logged_in(peer.port());
    let mut b = Client::logged_in(peer.port());
    let mut cdr = Client::open(peer.port());
    cdr.login("cdr", "pw", None);
    let mut off = Client::open(peer.port());
    off.login(DEFAULT_USERNAME, DEFAULT_SECRET, Some("off"));
    let mut sys = Client::open(peer.port());
    sys.login("sys", "pw", None);
    assert_eq!(get(&sys.msg(), "Event"), Some("FullyBooted"));
    assert!(peer.wait_logged_in(5, Duration::from_secs(2)));

    originate(
        &mut a,
        "bc1",
        &[
            ("Channel", "Local/200@agents/n"),
            ("Application", "Wait"),
            ("Data", "1"),
            ("Async", "true"),
        ],
    );
    assert_eq!(a.response(), queued("bc1"));
    let mine = a.events_until("OriginateResponse", "bc1", Duration::from_secs(5));
    let theirs = b.events_until("OriginateResponse", "bc1", Duration::from_secs(5));
    assert_eq!(
        mine.iter().map(|m| get(m, "Event")).collect::<Vec<_>>(),
        theirs.iter().map(|m| get(m, "Event")).collect::<Vec<_>>()
    );
    // `read = cdr`: the Cdr events only.
    let mut cdrs = Vec::new();
    while let Some(m) = cdr.try_msg(Duration::from_millis(400)) {
        cdrs.push(m);
    }
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    assert!(cdrs
        .iter()
        .all(|m| get(m, "Event") == Some("Cdr") && get(m, "Privilege") == Some("cdr,all")));
    // `read = call` but `Events: off`, and `read = system`: nothing.
    assert!(off.try_msg(Duration::from_millis(200)).is_none());
    assert!(sys.try_msg(Duration::from_millis(200)).is_none());
}

#[test]
fn permissions_and_originate_checks() {
    let peer = AmiPeer::start(AmiOptions {
        dialplan: Some(vec![("calltrail-callback".into(), "s".into())]),
        ..quick()
            .with_account(Account::new("reader", "pw").write(""))
            .with_account(Account::new("admin", "pw").write("originate,system"))
    });
    let mut r = Client::open(peer.port());
    r.login("reader", "pw", None);
    originate(
        &mut r,
        "p0",
        &[("Channel", "Local/1@x"), ("Application", "Wait")],
    );
    assert_eq!(
        String::from_utf8_lossy(&r.raw()),
        error("p0", "Permission denied")
    );

    let mut c = Client::logged_in(peer.port());
    let checks: &[(&[(&str, &str)], &str)] = &[
        (&[("Application", "Wait")], "Channel not specified"),
        (
            &[("Channel", "Local/1@x"), ("Priority", "first")],
            "Invalid priority",
        ),
        (
            &[("Channel", "Local/1@x"), ("Timeout", "soon")],
            "Invalid timeout",
        ),
        (
            &[("Channel", "nochannel"), ("Application", "Wait")],
            "Invalid channel",
        ),
        (
            &[
                ("Channel", "Local/1@x"),
                ("Application", "System"),
                ("Data", "true"),
            ],
            "Originate Access Forbidden: app or data blacklisted",
        ),
        (
            &[
                ("Channel", "Local/1@x"),
                ("Application", "Set"),
                ("Data", "X=${SHELL(id)}"),
            ],
            "Originate Access Forbidden: app or data blacklisted",
        ),
        (
            &[
                ("Channel", "Local/1@x"),
                ("Application", "Queue"),
                ("Data", "q,,,,,agi://x"),
            ],
            "Originate Access Forbidden: app or data blacklisted",
        ),
        (
            &[
                ("Channel", "Local/1@x"),
                ("Context", "calltrail-callback"),
                ("Exten", "t"),
                ("Priority", "1"),
            ],
            "Extension does not exist.",
        ),
    ];
    for (i, (headers, message)) in checks.iter().enumerate() {
        let id = format!("c{i}");
        originate(&mut c, &id, headers);
        assert_eq!(
            String::from_utf8_lossy(&c.raw()),
            error(&id, message),
            "{headers:?}"
        );
    }
    // `Queue` without an AGI argument, and an existing extension, are fine.
    originate(
        &mut c,
        "q",
        &[
            ("Channel", "Local/1@x"),
            ("Application", "Queue"),
            ("Data", "sales"),
            ("Async", "1"),
        ],
    );
    assert_eq!(c.response(), queued("q"));
    originate(
        &mut c,
        "ext",
        &[
            ("Channel", "Local/1@x"),
            ("Context", "calltrail-callback"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Async", "1"),
        ],
    );
    assert_eq!(c.response(), queued("ext"));
    // `write = system` may.
    let mut admin = Client::open(peer.port());
    admin.login("admin", "pw", None);
    originate(
        &mut admin,
        "sys",
        &[
            ("Channel", "Local/1@x"),
            ("Application", "System"),
            ("Data", "true"),
            ("Async", "1"),
        ],
    );
    assert_eq!(admin.response(), queued("sys"));
}

#[test]
fn stop_and_restart_on_the_same_port_keep_the_record() {
    let peer = AmiPeer::start(quick().with_outcome(|_| Outcome::NoAnswer { after_ms: 600 }));
    let port = peer.port();
    let mut c = Client::logged_in(port);
    originate(
        &mut c,
        "inflight",
        &[
            ("Channel", "Local/1@x"),
            ("Application", "Wait"),
            ("Async", "true"),
        ],
    );
    assert_eq!(c.response(), queued("inflight"));
    peer.stop();
    assert!(
        c.closed_within(Duration::from_secs(2)),
        "stop closes sessions"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "stop closes the listener"
    );
    peer.stop(); // idempotent

    peer.restart();
    assert_eq!(peer.port(), port);
    let mut again = Client::logged_in(port);
    // The call in flight died with the old "Asterisk": no report, ever.
    assert!(again.try_msg(Duration::from_millis(900)).is_none());
    assert!(peer.events().iter().all(|e| e[0].1 != "OriginateResponse"));
    let logins = peer
        .actions()
        .iter()
        .filter(|a| a.iter().any(|(k, v)| k == "Action" && v == "Login"))
        .count();
    assert_eq!(logins, 2, "the record survives the restart");
    assert_eq!(peer.originates().len(), 1);
    originate(
        &mut again,
        "after",
        &[
            ("Channel", "Local/1@x"),
            ("Application", "Wait"),
            ("Async", "true"),
        ],
    );
    assert_eq!(again.response(), queued("after"));
}

#[test]
fn dropped_connections_around_an_originate() {
    for mode in [
        DropMode::BeforeReplyNotPlaced,
        DropMode::BeforeReplyPlaced,
        DropMode::AfterReply,
    ] {
        let drop = DropAfterOriginate::new(1, mode);
        let peer = AmiPeer::start(AmiOptions {
            drop_after_originate: Some(drop.clone()),
            ..quick().with_outcome(|_| Outcome::Congestion)
        });
        let mut watcher = Client::logged_in(peer.port());
        let mut c = Client::logged_in(peer.port());
        originate(
            &mut c,
            "d1",
            &[
                ("Channel", "Local/1@x"),
                ("Application", "Wait"),
                ("Async", "true"),
            ],
        );
        assert!(c.closed_within(Duration::from_secs(2)), "{mode:?}: closed");
        let replied = find(&c.buf, b"Originate successfully queued").is_some();
        assert_eq!(
            replied,
            mode == DropMode::AfterReply,
            "{mode:?}: {:?}",
            String::from_utf8_lossy(&c.buf)
        );
        if mode == DropMode::BeforeReplyNotPlaced {
            assert!(
                watcher.try_msg(Duration::from_millis(400)).is_none(),
                "{mode:?}: no call"
            );
        } else {
            let events = watcher.events_until("OriginateResponse", "d1", Duration::from_secs(5));
            assert_eq!(get(events.last().unwrap(), "Reason"), Some("8"));
        }
        assert_eq!(peer.originates().len(), 1);
        assert_eq!(drop.remaining.load(std::sync::atomic::Ordering::SeqCst), 0);
        // The next one goes through.
        let mut c = Client::logged_in(peer.port());
        originate(
            &mut c,
            "d2",
            &[
                ("Channel", "Local/1@x"),
                ("Application", "Wait"),
                ("Async", "true"),
            ],
        );
        assert_eq!(c.response(), queued("d2"), "{mode:?}");
    }
}

#[test]
fn other_technologies_and_silent_calls() {
    let peer = AmiPeer::start(quick().with_outcome(|o| match o.action_id.as_str() {
        "silent" => Outcome::Silent,
        "hangup" => Outcome::Hangup,
        _ => Outcome::Answered,
    }));
    let mut c = Client::logged_in(peer.port());
    originate(
        &mut c,
        "pjsip",
        &[
            ("Channel", "PJSIP/201"),
            ("Context", "cb"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Account", "acc"),
            ("Async", "true"),
        ],
    );
    assert_eq!(c.response(), queued("pjsip"));
    let events = c.events_until("OriginateResponse", "pjsip", Duration::from_secs(5));
    let response = events.last().unwrap();
    assert_eq!(get(response, "Response"), Some("Success"));
    assert_eq!(get(response, "Channel"), Some("PJSIP/201-0000001a"));
    assert_eq!(
        keys(response),
        [
            "Event",
            "Privilege",
            "Timestamp",
            "ActionID",
            "Response",
            "Channel",
            "Context",
            "Exten",
            "Reason",
            "Uniqueid",
            "CallerIDNum",
            "CallerIDName"
        ]
    );

    originate(
        &mut c,
        "hangup",
        &[
            ("Channel", "Local/2@x"),
            ("Application", "Wait"),
            ("Async", "true"),
        ],
    );
    assert_eq!(c.response(), queued("hangup"));
    let events = c.events_until("OriginateResponse", "hangup", Duration::from_secs(5));
    assert_eq!(get(events.last().unwrap(), "Reason"), Some("1"));

    originate(
        &mut c,
        "silent",
        &[
            ("Channel", "Local/3@x"),
            ("Application", "Wait"),
            ("Async", "true"),
        ],
    );
    assert_eq!(c.response(), queued("silent"));
    let mut seen = Vec::new();
    while let Some(m) = c.try_msg(Duration::from_millis(500)) {
        seen.push(get(&m, "Event").unwrap_or("?").to_string());
    }
    assert!(seen.contains(&"DialBegin".to_string()), "{seen:?}");
    assert!(!seen.contains(&"OriginateResponse".to_string()), "{seen:?}");
}
