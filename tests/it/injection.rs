//! Hostile caller ids and names through every action of a running daemon:
//! call files (read by the independent model of Asterisk's parser), AMI
//! Originates (read by the Asterisk-like endpoint), SMS files, emails and
//! webhook bodies. Nothing from a caller may add a key,
//! a header, a line or a variable; what cannot be used is refused with a
//! reason in `actions`.

use crate::daemon::{append, query_json, Daemon};
use crate::rules::{daemon_config, receiver};
use crate::support::asterisk_callfile::parse;
use crate::support::wait_until;
use std::path::Path;
use std::time::Duration;

/// Caller ids as an attacker would write them into the PBX.
const CALLERS: [&str; 10] = [
    "79161110001\nApplication: System",
    "79161110002\rChannel: Local/666@evil",
    "79161110003;Set: X=1",
    "79161110004|ABANDON|1|1|30",
    "79161110005,1",
    "79161110006&PJSIP/666",
    "\"79161110007\" <1>",
    "${SHELL(rm -rf /)}",
    "$[1+1]79161110009",
    "<script>alert(1)</script>",
];

fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The lost calls of every hostile caller id, as queue_log bytes.
fn hostile_log() -> Vec<u8> {
    let t = chrono::Utc::now().timestamp() - 600;
    let mut log = String::new();
    for (i, c) in CALLERS.iter().enumerate() {
        // A queue_log line ends at `\n`: what follows a newline in a caller
        // id is a line of its own (rejected, or read as what it says).
        log += &format!(
            "{t}|h{i}|support|NONE|ENTERQUEUE||{c}|1\n{}|h{i}|support|NONE|ABANDON|1|1|30\n",
            t + 30
        );
    }
    // A 10 KB caller id and invalid UTF-8.
    log += &format!(
        "{t}|big|support|NONE|ENTERQUEUE||7916{}|1\n{}|big|support|NONE|ABANDON|1|1|30\n",
        "9".repeat(10_000),
        t + 30
    );
    let mut bytes = log.into_bytes();
    bytes.extend_from_slice(format!("{t}|utf|support|NONE|ENTERQUEUE||7916\u{0}\u{1b}").as_bytes());
    bytes.extend_from_slice(b"\xff\xfe1110011|1\n");
    bytes.extend_from_slice(format!("{}|utf|support|NONE|ABANDON|1|1|30\n", t + 30).as_bytes());
    bytes
}

/// The same callers through AMI: Asterisk's reading of every Originate
/// (the model's `ast_callerid_parse`, variable splitting) finds only
/// calltrail's headers and variables, the numbers as digits.
#[test]
fn hostile_caller_ids_inject_nothing_into_ami_originate() {
    use crate::support::asterisk_ami::{AmiOptions, AmiPeer, DEFAULT_SECRET, DEFAULT_USERNAME};
    let peer = AmiPeer::start(AmiOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[callbacks]
method = "ami"
per_minute = 0
max_retries = 0
[callbacks.ami]
port = {}
username = "{DEFAULT_USERNAME}"
secret = {{ env = "CT_TEST_AMI_SECRET" }}
[[rules]]
name = "cb"
when = "missed_opened"
action = "callback"
"#,
            peer.port()
        ),
    );
    let daemon = Daemon::start_env(
        &cfg,
        &dir.path().join("d.log"),
        &[("CT_TEST_AMI_SECRET", DEFAULT_SECRET)],
    );
    daemon.wait_http();
    append(&dir.path().join("queue_log"), &hostile_log());
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_millis(300));
            peer.originates().len() >= 3
                && query_json(
                    &cfg,
                    "SELECT count(*) AS n FROM actions WHERE status IN ('pending', 'sending')",
                )[0]["n"]
                    == 0
        }),
        "{:?}\n{}",
        query_json(&cfg, "SELECT action_id, status, last_error FROM actions"),
        daemon.log()
    );
    let mut dialled = Vec::new();
    for o in peer.originates() {
        let keys: Vec<&str> = o.raw.iter().map(|(k, _)| k.as_str()).collect();
        for k in &keys {
            assert!(
                [
                    "Action", "ActionID", "Channel", "Context", "Exten", "Priority", "Timeout",
                    "CallerID", "Variable", "Account", "Async"
                ]
                .contains(k),
                "header {k} in {:?}",
                o.raw
            );
        }
        assert_eq!(o.context, "calltrail-callback", "{o:?}");
        assert_eq!(o.channel, "Local/support@calltrail-queues/n", "{o:?}");
        for (k, v) in &o.variables {
            assert!(k.starts_with("CT_"), "{k}={v}");
            for bad in ["${", "$[", "System", "evil", "<script>", "\r", "\n"] {
                assert!(!v.contains(bad), "{k}={v}");
            }
        }
        let n = o
            .variables
            .iter()
            .find(|(k, _)| k == "CT_NUMBER")
            .map(|(_, v)| v.clone())
            .expect("CT_NUMBER");
        assert_eq!(o.cid_num.as_deref(), Some(n.as_str()), "{o:?}");
        dialled.push(n);
    }
    dialled.sort();
    assert_eq!(dialled, ["+79161110001", "+79161110004", "+79161110005"]);
    for r in query_json(
        &cfg,
        "SELECT action_id, status, last_error FROM actions WHERE status <> 'done'",
    ) {
        assert!(
            r["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{r:?}"
        );
    }
    drop(daemon);
}

#[test]
fn hostile_caller_ids_inject_nothing_into_any_action() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, hooks) = receiver();
    let cfg = daemon_config(
        dir.path(),
        &(r#"
[callbacks]
per_minute = 0
spool = "spool"
[sms]
mobile_only = false
[[rules]]
name = "cb"
when = "missed_opened"
action = "callback"
[[rules]]
name = "text"
when = "missed_opened"
action = "sms"
text = "We missed {{ caller_raw }} ({{ name }})"
[[rules]]
name = "mail"
when = "missed_opened"
action = "email"
to = ["sup@pbx.example"]
subject = "Missed {{ caller_raw }} {{ name }}"
[[rules]]
name = "hook"
when = "missed_opened"
action = "webhook"
url = ""#
            .to_string()
            + &url
            + "\"\n"),
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    daemon.wait_http();
    append(&dir.path().join("queue_log"), &hostile_log());
    let settled = || {
        query_json(
            &cfg,
            "SELECT count(*) AS n FROM actions WHERE status IN ('pending', 'sending')",
        )[0]["n"]
            == 0
            && files(&dir.path().join("spool/outgoing"), "call").len() >= 3
            && files(&dir.path().join("sms"), "sms").len() >= 3
            && files(&dir.path().join("outbox"), "eml").len() >= 5
            && hooks.lock().expect("lock").len() >= 6
    };
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_millis(500));
            settled()
        }),
        "{:?}\n{}",
        query_json(&cfg, "SELECT action_id, status, last_error FROM actions"),
        daemon.log()
    );
    let (calls, texts, mails) = (
        files(&dir.path().join("spool/outgoing"), "call"),
        files(&dir.path().join("sms"), "sms"),
        files(&dir.path().join("outbox"), "eml"),
    );
    assert!(
        calls.len() == 3 && texts.len() >= 3 && mails.len() >= 5,
        "{calls:?}\n{texts:?}\n{mails:?}"
    );
    // Call files: Asterisk's own reading finds only calltrail's keys, a
    // Local channel of our context, the number as digits; only the callers
    // whose id was a number (a hostile tail of digits is never merged in).
    let mut dialled = Vec::new();
    for p in files(&dir.path().join("spool/outgoing"), "call") {
        let bytes = std::fs::read(&p).expect("read");
        let call = parse(&bytes).expect("Asterisk reads it");
        assert!(call.app.is_empty() && call.data.is_empty(), "{call:?}");
        assert_eq!(call.context, "calltrail-callback", "{call:?}");
        assert!(
            call.dest.starts_with("support@") || call.tech == "PJSIP",
            "{call:?}"
        );
        for (k, v) in &call.vars {
            assert!(k.starts_with("CT_"), "{k}={v}");
            if k == "CT_NUMBER" {
                let d = v.strip_prefix('+').unwrap_or(v);
                assert!(d.bytes().all(|b| b.is_ascii_digit()), "{k}={v}");
                // Never digits merged from around the hostile text.
                assert!(d.len() <= 15 && !d.contains("666"), "{k}={v}");
                dialled.push(v.clone());
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        for bad in ["System", "evil", "${", "$[", "<script>", "Set: X"] {
            assert!(!text.contains(bad), "{bad} in {text}");
        }
    }
    dialled.sort();
    assert_eq!(dialled, ["+79161110001", "+79161110004", "+79161110005"]);
    // SMS files: exactly the To/From/Id headers; the text may quote the
    // caller id, but never in a header.
    for p in files(&dir.path().join("sms"), "sms") {
        let s = std::fs::read_to_string(&p).expect("utf-8");
        let (head, _) = s
            .split_once("\n\n")
            .expect("headers, a blank line, the text");
        for l in head.lines() {
            assert!(
                l.starts_with("To: +") || l.starts_with("Id: ") || l.starts_with("From: "),
                "{l:?} in {s:?}"
            );
            assert!(!l.contains("Application") && !l.contains('\r'), "{s:?}");
        }
    }
    // Emails: the subject is one line; no header came from a caller id.
    for p in files(&dir.path().join("outbox"), "eml") {
        let s = std::fs::read_to_string(&p).expect("utf-8");
        let head = s.split("\r\n\r\n").next().unwrap_or("");
        for l in head.split("\r\n") {
            let name = l.split(':').next().unwrap_or("");
            assert!(
                l.starts_with(' ')
                    || l.starts_with('\t')
                    || [
                        "From",
                        "To",
                        "Subject",
                        "Message-ID",
                        "Date",
                        "MIME-Version",
                        "Content-Type",
                        "Content-Transfer-Encoding",
                        "X-Calltrail-Action",
                        "Auto-Submitted"
                    ]
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name)),
                "header {l:?} in {s}"
            );
        }
    }
    // Webhooks: one JSON object each, the caller's text a string value
    // under `event`, no key of its own.
    for (key, body) in hooks.lock().expect("lock").iter() {
        assert!(key.starts_with("rule:hook:"), "{key}");
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let o = v.as_object().expect("an object");
        let mut keys: Vec<_> = o.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["action_id", "event", "rule", "when"], "{body}");
        for (k, x) in o["event"].as_object().expect("event") {
            assert!(x.is_string(), "{k}: {x}");
            assert!(
                k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{k}"
            );
        }
    }
    // Whatever was not used says why.
    for r in query_json(
        &cfg,
        "SELECT action_id, status, last_error FROM actions WHERE status <> 'done'",
    ) {
        assert!(
            r["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{r:?}"
        );
    }
    drop(daemon);
}
