//! `[[rules]]` on a running daemon: a missed-call episode mails once (not
//! for a blacklisted caller, not for a short abandon, only for the classes
//! asked), an answered call is POSTed to a webhook (retried after a 503,
//! the same Idempotency-Key), a rule outside its calendar waits for the
//! next opening or is recorded as skipped, a restart adds nothing; and
//! check-config names what is wrong in a rule.

use crate::daemon::{append, calltrail, query_json, Daemon};
use crate::support::wait_until;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver got: (idempotency key, body) of each request.
pub(crate) type Hooks = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver: answers 503 to the first request, 200 after.
pub(crate) fn receiver() -> (String, Hooks) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    let got: Hooks = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let (mut key, mut len) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("idempotency-key:") {
                    key = line["idempotency-key:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let first = {
                let mut g = g.lock().expect("lock");
                g.push((key, String::from_utf8_lossy(&body).into_owned()));
                g.len() == 1
            };
            let status = if first {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

/// Today and tomorrow (UTC) as of writing the config: both holidays, so
/// the next opening is the day after tomorrow even if midnight passes
/// while the test runs.
fn holidays() -> (String, String, String) {
    let d = chrono::Utc::now().date_naive();
    let f = |n: i64| {
        (d + chrono::Duration::days(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    (f(0), f(1), f(2))
}

/// A daemon's config in `dir` over an empty `queue_log` (UTC), with
/// `rest` (calendars, rules, callbacks) after the common sections.
pub(crate) fn daemon_config(dir: &Path, rest: &str) -> std::path::PathBuf {
    let cfg = dir.join("c.toml");
    std::fs::write(dir.join("queue_log"), "").expect("queue_log");
    std::fs::write(&cfg, format!("{COMMON}{rest}")).expect("config");
    cfg
}

const COMMON: &str = r#"
[store]
path = "s.duckdb"
[numbers]
default_region = "RU"
[email]
outbox = "outbox"
from = "calltrail@pbx.example"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "UTC"
poll_interval_ms = 50
"#;

fn config(dir: &Path, url: &str, days: &(String, String, String)) -> std::path::PathBuf {
    daemon_config(
        dir,
        &format!(
            r#"

[calendars.shut_today]
timezone = "UTC"
hours = ["*"]
holidays = ["{today}", "{tomorrow}"]

[[rules]]
name = "missed-mail"
when = "missed_opened"
min_wait_s = 10
action = "email"
to = ["sup@pbx.example"]
subject = "Missed {{{{ caller }}}} in {{{{ queue }}}}"
body = "{{{{ name }}}} waited {{{{ wait_s }}}} s at {{{{ at }}}}"

[[rules]]
name = "hook"
when = "call_answered"
action = "webhook"
url = "{url}"

[[rules]]
name = "night"
when = "missed_opened"
calendar = "shut_today"
action = "email"
to = ["night@pbx.example"]

[[rules]]
name = "night-drop"
when = "missed_opened"
calendar = "shut_today"
outside_hours = "drop"
action = "email"
to = ["night@pbx.example"]

[[rules]]
name = "vip-only"
when = "missed_opened"
classes = ["vip"]
action = "email"
to = ["vip@pbx.example"]
"#,
            today = days.0,
            tomorrow = days.1,
        ),
    )
}

fn lines(ago: i64) -> String {
    let t = chrono::Utc::now().timestamp() - ago;
    let call = |id: &str, caller: &str, wait: i64, answered: bool| {
        if answered {
            format!(
                "{t}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|PJSIP/201|CONNECT|{wait}|{id}.2|1\n{}|{id}|support|PJSIP/201|COMPLETECALLER|{wait}|20|1\n",
                t + wait,
                t + wait + 20
            )
        } else {
            format!(
                "{t}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|NONE|ABANDON|1|1|{wait}\n",
                t + wait
            )
        }
    };
    call("a1", "89161110001", 30, false)
        + &call("b1", "89161110002", 30, false)
        + &call("c1", "89161110003", 2, false)
        + &call("d1", "89161110004", 8, true)
}

fn outbox(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn rules_act_once_in_their_hours_and_never_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, hooks) = receiver();
    let days = holidays();
    let cfg = config(dir.path(), &url, &days);
    let check = calltrail(&cfg, &["check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // B is blacklisted.
    let out = calltrail(
        &cfg,
        &["numbers", "add", "89161110002", "--class", "blacklist"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    append(&dir.path().join("queue_log"), lines(120).as_bytes());
    assert!(
        wait_until(Duration::from_secs(30), || outbox(dir.path()).len() == 1),
        "{:?}\n{:?}\n{}",
        outbox(dir.path()),
        query_json(
            &cfg,
            "SELECT action_id, kind, status, last_error FROM actions"
        ),
        daemon.log()
    );
    let mail = &outbox(dir.path())[0];
    assert!(
        mail.contains("Subject: Missed +79161110001 in support"),
        "{mail}"
    );
    assert!(mail.contains("waited 30 s"), "{mail}");
    // The webhook: a 503, then the same request again, done.
    assert!(
        wait_until(Duration::from_secs(30), || hooks
            .lock()
            .expect("lock")
            .len()
            >= 2),
        "{}",
        daemon.log()
    );
    let rows = |sql: &str| query_json(&cfg, sql);
    assert!(wait_until(Duration::from_secs(10), || {
        rows("SELECT status FROM actions WHERE kind = 'webhook'")
            .first()
            .is_some_and(|r| r["status"] == "done")
    }));
    {
        let h = hooks.lock().expect("lock");
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h[0].0, h[1].0);
        assert!(h[0].0.starts_with("rule:hook:"), "{h:?}");
        let body: serde_json::Value = serde_json::from_str(&h[1].1).expect("JSON");
        assert_eq!(body["event"]["caller"], "+79161110004");
        assert_eq!(body["event"]["agent"], "201");
    }
    // Outside hours: waiting for the next opening (00:00 UTC the day after
    // tomorrow), or skipped with the reason.
    let opening = format!("{} 00:00:00", days.2);
    let r = rows("SELECT status, next_attempt_at FROM actions WHERE action_id LIKE 'rule:night:%'");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0]["status"].as_str(), r[0]["next_attempt_at"].as_str()),
        (Some("pending"), Some(opening.as_str())),
        "{r:?}"
    );
    let r = rows("SELECT status, last_error FROM actions WHERE action_id LIKE 'rule:night-drop:%'");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["status"], "skipped");
    let why = r[0]["last_error"].as_str().unwrap_or("");
    assert!(why.contains("outside business hours"), "{r:?}");
    // Nothing for the VIP-only rule (no VIP called).
    assert!(rows("SELECT * FROM actions WHERE action_id LIKE 'rule:vip-only%'").is_empty());
    let before = rows("SELECT action_id, status FROM actions ORDER BY ALL");
    // A restart, and the lines read again through a rederive: nothing new.
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success());
    let daemon = Daemon::start(&cfg, &dir.path().join("d2.log"));
    std::thread::sleep(Duration::from_secs(3));
    drop(daemon);
    let out = calltrail(&cfg, &["rederive"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d3.log"));
    std::thread::sleep(Duration::from_secs(3));
    let after = rows("SELECT action_id, status FROM actions ORDER BY ALL");
    assert_eq!(before, after);
    assert_eq!(outbox(dir.path()).len(), 1);
    assert_eq!(hooks.lock().expect("lock").len(), 2);
    drop(daemon);
}

#[test]
fn check_config_names_what_is_wrong_in_a_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
path = "s.duckdb"
[[rules]]
name = "a"
when = "missed_openned"
action = "email"
to = ["x@y.z"]
subject = "{{ callr }}"
[[rules]]
name = "a"
when = "missed_opened"
calendar = "office"
action = "sms"
[[rules]]
name = "w"
when = "call_ended"
action = "webhook"
url = "ftp://x"
[[rules]]
name = "e"
when = "employee_lookup"
action = "callback"
[[rules]]
name = "d"
when = "missed_opened"
action = "webhook"
url = "http://x/"
digest_minutes = 5
once_per_number = true
[callbacks]
owner = "no-such-user-here"
per_minute = 1000
default_queue = "a b"
"#,
    )
    .expect("config");
    let out = calltrail(&cfg, &["check-config"]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for want in [
        "rules[0].when",
        "\"missed_openned\"",
        "rules[0].subject",
        "unknown variable callr",
        "rules[1].name",
        "rules[1].calendar",
        "rules[1].text",
        "rules[2].url",
        "rules[3].context",
        "rules[4].digest_minutes",
        "rules[4].once_per_number",
        "callbacks.owner",
        "no user \"no-such-user-here\"",
        "callbacks.per_minute",
        "callbacks.default_queue",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

/// This process's effective uid (from /proc, as the daemon sees it).
fn effective_uid() -> u32 {
    proc_status_ids("Uid:")
}

fn proc_status_ids(key: &str) -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
        })
        .expect("/proc/self/status")
}

/// `uid:gid` of this process (effective).
fn own_ids() -> String {
    format!("{}:{}", proc_status_ids("Uid:"), proc_status_ids("Gid:"))
}

fn spool_files(dir: &Path, sub: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("spool").join(sub))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_missed_caller_is_called_back_once_through_the_spool() {
    use crate::support::asterisk_callfile::parse;
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["spool/outgoing", "spool/outgoing_done"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("spool");
    }
    // As root (CI), the call files are given to another owner, as
    // Asterisk's user; otherwise to our own.
    let root = effective_uid() == 0;
    let owner = if root {
        "4321:4322".to_string()
    } else {
        own_ids()
    };
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[callbacks]
spool = "spool"
owner = "{owner}"
[[rules]]
name = "cb"
when = "missed_opened"
action = "callback"
"#
        ),
    );
    let t = chrono::Utc::now().timestamp() - 600;
    let log = format!(
        // A: lost, nobody to stick to. E: talked to 202 before, then lost.
        // F: lost, then got through at once (closed before the callback).
        // G: a hostile caller id: the number in it is called back, nothing
        // else of it reaches the call file.
        "{t}|a1|support|NONE|ENTERQUEUE||89161110001|1\n{a}|a1|support|NONE|ABANDON|1|1|30\n\
         {t}|e0|support|NONE|ENTERQUEUE||89161110005|1\n{e1}|e0|support|PJSIP/202|CONNECT|5|e0.2|1\n{e2}|e0|support|PJSIP/202|COMPLETECALLER|5|30|1\n\
         {e3}|e1|support|NONE|ENTERQUEUE||89161110005|1\n{e4}|e1|support|NONE|ABANDON|1|1|40\n\
         {t}|f1|support|NONE|ENTERQUEUE||89161110006|1\n{a}|f1|support|NONE|ABANDON|1|1|30\n\
         {f2}|f2|support|NONE|ENTERQUEUE||89161110006|1\n{f3}|f2|support|PJSIP/201|CONNECT|2|f2.2|1\n\
         {t}|g1|support|NONE|ENTERQUEUE||79161110007;Application: System|1\n{a}|g1|support|NONE|ABANDON|1|1|30\n\
         {t}|NONE|support|PJSIP/203|ADDMEMBER|\n\
         {t}|h0|support|NONE|ENTERQUEUE||89161110008|1\n{e1}|h0|support|PJSIP/203|CONNECT|5|h0.2|1\n{e2}|h0|support|PJSIP/203|COMPLETECALLER|5|30|1\n\
         {h}|NONE|support|PJSIP/203|PAUSE|lunch\n\
         {e3}|h1|support|NONE|ENTERQUEUE||89161110008|1\n{e4}|h1|support|NONE|ABANDON|1|1|40\n",
        h = t + 50,
        a = t + 30,
        e1 = t + 5,
        e2 = t + 35,
        e3 = t + 100,
        e4 = t + 140,
        f2 = t + 60,
        f3 = t + 62,
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    append(&dir.path().join("queue_log"), log.as_bytes());
    assert!(
        wait_until(Duration::from_secs(30), || {
            spool_files(dir.path(), "outgoing").len() == 4
        }),
        "{:?}\n{:?}\n{}",
        spool_files(dir.path(), "outgoing"),
        query_json(&cfg, "SELECT action_id, status, last_error FROM actions"),
        daemon.log()
    );
    let calls: Vec<_> = spool_files(dir.path(), "outgoing")
        .iter()
        .map(|p| parse(&std::fs::read(p).expect("read")).expect("Asterisk reads it"))
        .collect();
    let by_number = |n: &str| {
        calls
            .iter()
            .find(|c| c.vars.iter().any(|(k, v)| k == "CT_NUMBER" && v == n))
            .unwrap_or_else(|| {
                panic!(
                    "no callback of {n}: {calls:?}\n{:?}\n{:?}\n{}",
                    spool_files(dir.path(), "outgoing"),
                    query_json(
                        &cfg,
                        "SELECT action_id, status, last_error, next_attempt_at FROM actions"
                    ),
                    daemon.log()
                )
            })
    };
    for p in spool_files(dir.path(), "outgoing") {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&p).expect("stat");
        assert_eq!(format!("{}:{}", m.uid(), m.gid()), owner, "{}", p.display());
    }
    let a = by_number("+79161110001");
    assert_eq!(
        (a.tech.as_str(), a.dest.as_str()),
        ("Local", "support@calltrail-queues/n")
    );
    assert_eq!(
        (a.context.as_str(), a.exten.as_str(), a.priority),
        ("calltrail-callback", "s", 1)
    );
    assert_eq!(a.cid_num, "+79161110001");
    assert!(a.archive);
    let e = by_number("+79161110005");
    assert_eq!((e.tech.as_str(), e.dest.as_str()), ("PJSIP", "202"));
    assert!(e.vars.iter().any(|(k, v)| k == "CT_AGENT" && v == "202"));
    // H's agent (203) is paused: the callback goes to the queue.
    let h = by_number("+79161110008");
    assert_eq!(
        (h.tech.as_str(), h.dest.as_str()),
        ("Local", "support@calltrail-queues/n"),
        "{h:?}"
    );
    assert!(h.vars.iter().all(|(k, _)| k != "CT_AGENT"), "{h:?}");
    let g = by_number("79161110007");
    assert_eq!(
        (g.app.as_str(), g.context.as_str()),
        ("", "calltrail-callback")
    );
    assert!(g.vars.iter().all(|(k, _)| k.starts_with("CT_")), "{g:?}");
    // F closed before its callback was due.
    let rows = query_json(
        &cfg,
        "SELECT caller, status, reason FROM callbacks ORDER BY caller",
    );
    let status_of = |c: &str| {
        rows.iter()
            .find(|r| r["caller"] == c)
            .map(|r| r["status"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(status_of("+79161110001").as_deref(), Some("queued"));
    assert_eq!(
        status_of("+79161110006").as_deref(),
        Some("skipped"),
        "{rows:?}"
    );
    // Asterisk archives one; then a crash after placing but before the
    // `done` mark (both actions back to pending) and a restart: nothing is
    // placed a second time.
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success());
    let first = spool_files(dir.path(), "outgoing")[0].clone();
    let done = dir
        .path()
        .join("spool/outgoing_done")
        .join(first.file_name().expect("name"));
    std::fs::rename(&first, &done).expect("archive");
    append(&done, b"Status: Completed\n");
    {
        let c = duckdb::Connection::open(dir.path().join("s.duckdb")).expect("open");
        let n = c
            .execute(
                "UPDATE actions SET status = 'pending' WHERE kind = 'callback' AND status = 'done'",
                [],
            )
            .expect("update");
        assert_eq!(n, 4);
    }
    let daemon = Daemon::start(&cfg, &dir.path().join("d2.log"));
    assert!(wait_until(Duration::from_secs(30), || daemon
        .log()
        .contains("HTTP API listening")));
    assert!(wait_until(Duration::from_secs(30), || {
        query_json(
            &cfg,
            "SELECT count(*) AS n FROM actions WHERE kind = 'callback' AND status = 'pending'",
        )[0]["n"]
            == 0
    }));
    assert_eq!(spool_files(dir.path(), "outgoing").len(), 3);
    // The archived one is read back as completed.
    let archived = done
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        wait_until(Duration::from_secs(20), || {
            query_json(
                &cfg,
                &format!("SELECT status, attempts FROM callbacks WHERE placed_as = '{archived}'"),
            )
            .first()
            .is_some_and(|r| r["status"] == "completed")
        }),
        "{:?}",
        query_json(&cfg, "SELECT * FROM callbacks")
    );
    assert_eq!(spool_files(dir.path(), "outgoing_done").len(), 1);
    assert!(spool_files(dir.path(), "tmp").is_empty());
    drop(daemon);
}

#[test]
fn first_call_fires_once_when_the_first_call_ever_was_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(
        dir.path(),
        r#"
[[rules]]
name = "welcome"
when = "first_call"
action = "email"
to = ["sales@pbx.example"]
subject = "New client {{ caller }} talked to {{ agent }}"
"#,
    );
    let t = chrono::Utc::now().timestamp() - 900;
    let answered = |id: &str, caller: &str, at: i64, end: bool| {
        let mut s = format!(
            "{at}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|PJSIP/201|CONNECT|2|{id}.2|1\n",
            at + 2
        );
        if end {
            s += &format!("{}|{id}|support|PJSIP/201|COMPLETECALLER|2|20|1\n", at + 22);
        }
        s
    };
    let lost = |id: &str, caller: &str, at: i64| {
        format!(
            "{at}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|NONE|ABANDON|1|1|30\n",
            at + 30
        )
    };
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    // H: answered first call, then another; I: lost first, answered second;
    // J: answered first call still going on.
    let log = answered("h1", "89161110008", t, true)
        + &answered("h2", "89161110008", t + 100, true)
        + &lost("i1", "89161110009", t)
        + &answered("i2", "89161110009", t + 100, true)
        + &answered("j1", "89161110010", t + 200, false);
    append(&dir.path().join("queue_log"), log.as_bytes());
    assert!(
        wait_until(Duration::from_secs(30), || outbox(dir.path()).len() == 1),
        "{:?}\n{}",
        outbox(dir.path()),
        daemon.log()
    );
    assert!(outbox(dir.path())[0].contains("Subject: New client +79161110008 talked to 201"));
    // J's call ends: now it fires, once.
    append(
        &dir.path().join("queue_log"),
        format!("{}|j1|support|PJSIP/201|COMPLETEAGENT|2|30|1\n", t + 232).as_bytes(),
    );
    assert!(wait_until(Duration::from_secs(30), || outbox(dir.path())
        .len()
        == 2));
    std::thread::sleep(Duration::from_secs(2));
    let mails = outbox(dir.path());
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().any(|m| m.contains("+79161110010")));
    assert!(!mails.iter().any(|m| m.contains("+79161110009")));
    let ids = query_json(&cfg, "SELECT action_id FROM actions ORDER BY 1");
    assert_eq!(
        ids.iter()
            .map(|r| r["action_id"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        [
            "rule:welcome:first_call:+79161110008",
            "rule:welcome:first_call:+79161110010"
        ]
    );
    drop(daemon);
}

#[test]
fn callbacks_are_paced_and_those_who_asked_go_first() {
    use crate::support::asterisk_callfile::parse;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(
        dir.path(),
        r#"
[callbacks]
spool = "spool"
per_minute = 2
[[rules]]
name = "cb"
when = "missed_opened"
action = "callback"
"#,
    );
    let t = chrono::Utc::now().timestamp() - 600;
    // Four lost callers in one batch, oldest first; the newest pressed the
    // queue's exit key to ask for a callback.
    let log = format!(
        "{t}|p1|support|NONE|ENTERQUEUE||89161110021|1\n{a}|p1|support|NONE|ABANDON|1|1|30\n\
         {b}|p2|support|NONE|ENTERQUEUE||89161110022|1\n{c}|p2|support|NONE|ABANDON|1|1|30\n\
         {d}|p3|support|NONE|ENTERQUEUE||89161110023|1\n{e}|p3|support|NONE|ABANDON|1|1|30\n\
         {f}|p4|support|NONE|ENTERQUEUE||89161110024|1\n{g}|p4|support|NONE|EXITWITHKEY|5|1|1|30\n",
        a = t + 30,
        b = t + 40,
        c = t + 70,
        d = t + 80,
        e = t + 110,
        f = t + 120,
        g = t + 150,
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    append(&dir.path().join("queue_log"), log.as_bytes());
    let numbers = || -> Vec<String> {
        let mut v: Vec<String> = spool_files(dir.path(), "outgoing")
            .iter()
            .filter_map(|p| parse(&std::fs::read(p).ok()?).ok())
            .filter_map(|c| {
                c.vars
                    .iter()
                    .find(|(k, _)| k == "CT_NUMBER")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        v.sort();
        v
    };
    let started = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || numbers().len() >= 2),
        "{:?}\n{:?}\n{}",
        numbers(),
        query_json(&cfg, "SELECT action_id, status, last_error FROM actions"),
        daemon.log()
    );
    // The one who asked, then the oldest; the other two wait for the next
    // minute.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(numbers(), ["+79161110021", "+79161110024"]);
    let pending = query_json(
        &cfg,
        "SELECT count(*) AS n FROM actions WHERE kind = 'callback' AND status = 'pending'",
    );
    assert_eq!(pending[0]["n"], 2, "{pending:?}");
    assert!(
        wait_until(Duration::from_secs(90), || numbers().len() == 4),
        "{:?}\n{}",
        numbers(),
        daemon.log()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(55),
        "the third callback came after {:?}",
        started.elapsed()
    );
    drop(daemon);
}
