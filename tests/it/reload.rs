//! SIGHUP on a running daemon: a changed rule, a renamed rule, a new rule
//! and a changed calendar act on the lines that come after the reload,
//! nothing fires again for the lines before it; a change that needs a
//! restart is named and left as it runs; an invalid file is refused with
//! every problem named, and the last good rules go on acting; the reloads
//! are counted in /metrics.

use crate::daemon::{append, query_json, Daemon};
use crate::rules::daemon_config;
use crate::support::wait_until;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The first rules: every miss mailed (subject `v1`), and again to the
/// office while its calendar is open (always).
const V1: &str = r#"
[calendars.office]
timezone = "UTC"
hours = ["*"]

[[rules]]
name = "missed-mail"
when = "missed_opened"
action = "email"
to = ["sup@pbx.example"]
subject = "v1 missed {{ caller }}"

[[rules]]
name = "office"
when = "missed_opened"
calendar = "office"
outside_hours = "drop"
action = "email"
to = ["office@pbx.example"]
subject = "office missed {{ caller }}"
"#;

/// The rules after the reload: `missed-mail` with a new subject and a
/// minimum wait; `office` renamed `office2`, its calendar closed today and
/// tomorrow (so it drops); a new rule on answered calls.
fn v2() -> String {
    let d = chrono::Utc::now().date_naive();
    let day = |n: i64| {
        (d + chrono::Duration::days(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    format!(
        r#"
[calendars.office]
timezone = "UTC"
hours = ["*"]
holidays = ["{}", "{}"]

[[rules]]
name = "missed-mail"
when = "missed_opened"
min_wait_s = 10
action = "email"
to = ["sup@pbx.example"]
subject = "v2 missed {{{{ caller }}}}"

[[rules]]
name = "office2"
when = "missed_opened"
calendar = "office"
outside_hours = "drop"
action = "email"
to = ["office@pbx.example"]
subject = "office missed {{{{ caller }}}}"

[[rules]]
name = "answered-mail"
when = "call_answered"
action = "email"
to = ["crm@pbx.example"]
subject = "answered {{{{ caller }}}} by {{{{ agent }}}}"
"#,
        day(0),
        day(1)
    )
}

/// A call of `caller` (`id`) that waited `wait` seconds, lost or answered.
fn call(id: &str, caller: &str, wait: i64, answered: bool) -> String {
    let t = chrono::Utc::now().timestamp() - 60;
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
}

/// The subjects of the mails in the outbox, sorted.
fn subjects(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    text.lines()
                        .find_map(|l| l.strip_prefix("Subject: "))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn hup(daemon: &Daemon) {
    let ok = Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill -HUP failed");
}

/// `calltrail_config_reloads_total{result=…}` as /metrics says.
fn reloads(port: &str, result: &str) -> Option<f64> {
    let agent = crate::support::http_agent(Duration::from_secs(10));
    let text = agent
        .get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    let key = format!("calltrail_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn sighup_applies_a_changed_rule_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(dir.path(), V1);
    let queue_log = dir.path().join("queue_log");
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    daemon.wait_http();
    let text = std::fs::read_to_string(&cfg).expect("config");
    let port = text
        .split("[http]\nlisten = \"127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the test's [http] port")
        .to_string();
    assert_eq!(reloads(&port, "ok"), Some(0.0));
    assert_eq!(reloads(&port, "error"), Some(0.0));

    // Before: A's miss mailed by both rules.
    append(&queue_log, call("a1", "89161110001", 30, false).as_bytes());
    let first = vec![
        "office missed +79161110001".to_string(),
        "v1 missed +79161110001".to_string(),
    ];
    assert!(
        wait_until(Duration::from_secs(30), || subjects(dir.path()) == first),
        "{:?}\n{}",
        subjects(dir.path()),
        daemon.log()
    );
    let actions = |sql: &str| query_json(&cfg, sql);
    let ids = || {
        actions("SELECT action_id FROM actions ORDER BY ALL")
            .into_iter()
            .map(|r| r["action_id"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let before = ids();
    assert_eq!(before.len(), 2, "{before:?}");

    // The reload: the rules change, and a source's poll interval, which
    // needs a restart.
    let changed = text
        .replace(V1, &v2())
        .replace("poll_interval_ms = 50", "poll_interval_ms = 60");
    assert_ne!(changed, text);
    std::fs::write(&cfg, &changed).expect("config");
    hup(&daemon);
    assert!(
        wait_until(Duration::from_secs(10), || {
            daemon
            .log()
            .contains("config reloaded: rules: added answered-mail, office2; changed missed-mail; removed office; calendars: changed office")
        }),
        "{}",
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .contains("needs a restart: sources.q.poll_interval_ms"),
        "{}",
        daemon.log()
    );
    assert_eq!(reloads(&port, "ok"), Some(1.0));

    // After: B (waited 30 s) mailed under v2, C (8 s) not (min_wait_s),
    // D answered (the new rule); the office calendar is closed: dropped.
    append(
        &queue_log,
        (call("b1", "89161110002", 30, false)
            + &call("c1", "89161110003", 8, false)
            + &call("d1", "89161110004", 8, true))
            .as_bytes(),
    );
    let second = vec![
        "answered +79161110004 by 201".to_string(),
        "office missed +79161110001".to_string(),
        "v1 missed +79161110001".to_string(),
        "v2 missed +79161110002".to_string(),
    ];
    assert!(
        wait_until(Duration::from_secs(30), || subjects(dir.path()) == second),
        "{:?}\n{:?}\n{}",
        subjects(dir.path()),
        actions("SELECT action_id, status, last_error FROM actions ORDER BY ALL"),
        daemon.log()
    );
    let dropped = actions(
        "SELECT action_id, status, last_error FROM actions WHERE action_id LIKE 'rule:office2:%' ORDER BY ALL",
    );
    // B's and C's misses, outside the calendar's hours now; nothing for A.
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    for r in &dropped {
        assert_eq!(r["status"], "skipped", "{r:?}");
        let why = r["last_error"].as_str().unwrap_or("");
        assert!(why.contains("outside business hours"), "{r:?}");
    }
    // The actions of A are as they were: none again under the changed or
    // the renamed rule.
    let of_a =
        actions("SELECT action_id FROM actions WHERE payload LIKE '%+79161110001%' ORDER BY ALL");
    assert_eq!(of_a.len(), 2, "{of_a:?}");
    for r in &of_a {
        let id = r["action_id"].as_str().unwrap_or("");
        assert!(
            id.starts_with("rule:missed-mail:") || id.starts_with("rule:office:"),
            "{of_a:?}"
        );
    }
    let after = ids();
    assert!(before.iter().all(|id| after.contains(id)), "{after:?}");

    // An invalid file: refused with every problem named; v2 acts on.
    let invalid = changed
        .replace("v2 missed", "v3 missed")
        .replace("when = \"call_answered\"", "when = \"call_answerd\"")
        .replace("calendar = \"office\"", "calendar = \"offfice\"");
    std::fs::write(&cfg, &invalid).expect("config");
    hup(&daemon);
    assert!(
        wait_until(Duration::from_secs(10), || daemon
            .log()
            .contains("config reload refused")),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    let refusal = &log[log.find("config reload refused").expect("refusal")..];
    for problem in [
        "rules[2].when",
        "call_answerd",
        "rules[1].calendar",
        "offfice",
    ] {
        assert!(refusal.contains(problem), "{problem} not named:\n{log}");
    }
    assert_eq!(reloads(&port, "error"), Some(1.0));
    assert_eq!(reloads(&port, "ok"), Some(1.0));
    append(&queue_log, call("e1", "89161110005", 30, false).as_bytes());
    assert!(
        wait_until(Duration::from_secs(30), || subjects(dir.path())
            .contains(&"v2 missed +79161110005".to_string())),
        "{:?}\n{}",
        subjects(dir.path()),
        daemon.log()
    );
    assert!(
        !subjects(dir.path()).iter().any(|s| s.starts_with("v3")),
        "{:?}",
        subjects(dir.path())
    );
    assert_eq!(subjects(dir.path()).len(), 5, "{:?}", subjects(dir.path()));

    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success());
}
