//! Email for supervisors through a real SMTP server (aiosmtpd): a storm of
//! lost callers becomes one digest per queue per `digest_minutes` (and a
//! loss after a digest went out waits for the next one); an SLA breach mails
//! its figures and threshold when it starts and when it ends.

use crate::daemon::{append, query_json, Daemon};
use crate::rules::daemon_config;
use crate::support::smtp::SmtpServer;
use crate::support::wait_until;
use std::time::Duration;

fn lost(id: &str, caller: &str, queue: &str, at: i64, wait: i64) -> String {
    format!(
        "{at}|{id}|{queue}|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|{queue}|NONE|ABANDON|1|1|{wait}\n",
        at + wait
    )
}

#[test]
fn lost_calls_come_as_one_digest_per_queue_and_breaches_with_their_figures() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[state.breach]
max_wait_s = 60

[[rules]]
name = "lost"
when = "missed_opened"
action = "email"
to = ["sup@pbx.example"]
digest_minutes = 1
subject = "Lost callers in {{{{ queue }}}}"

[[rules]]
name = "sla"
when = "sla_breach_started"
action = "email"
to = ["sup@pbx.example"]

[[rules]]
name = "sla-over"
when = "sla_breach_ended"
action = "email"
to = ["sup@pbx.example"]

[email.smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
timeout_s = 10
"#,
            port = smtp.port()
        ),
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    daemon.wait_http();
    let t = chrono::Utc::now().timestamp() - 900;
    let mut log = String::new();
    for i in 0..6 {
        log += &lost(
            &format!("s{i}"),
            &format!("8916111000{i}"),
            "support",
            t + i * 5,
            20,
        );
    }
    log += &lost("x1", "89161110101", "sales", t, 20);
    log += &lost("x2", "89161110102", "sales", t + 10, 150);
    append(&dir.path().join("queue_log"), log.as_bytes());
    let subjects = || -> Vec<String> {
        let mut v: Vec<String> = smtp
            .messages()
            .iter()
            .map(|m| m.header("Subject").unwrap_or_default())
            .collect();
        v.sort();
        v
    };
    // Two breach mails (the 150 s wait in sales started and ended a
    // max_wait breach) and, within the minute, two digests.
    assert!(
        wait_until(Duration::from_secs(100), || subjects().len() >= 4),
        "{:?}\n{:?}\n{}",
        subjects(),
        query_json(
            &cfg,
            "SELECT action_id, status, next_attempt_at, last_error FROM actions"
        ),
        daemon.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let s = subjects();
    assert_eq!(s.len(), 4, "{s:?}");
    assert!(
        s.contains(&"Lost callers in support (6 in 1 min)".to_string()),
        "{s:?}"
    );
    assert!(
        s.contains(&"Lost callers in sales (2 in 1 min)".to_string()),
        "{s:?}"
    );
    let started = s
        .iter()
        .find(|x| x.contains("SLA breach started"))
        .unwrap_or_else(|| panic!("{s:?}"));
    assert!(
        started.contains("queue sales max_wait 150 s (threshold 60 s)"),
        "{started}"
    );
    assert!(s.iter().any(|x| x.contains("SLA breach over")), "{s:?}");
    let digest = smtp
        .messages()
        .into_iter()
        .find(|m| m.header("Subject").is_some_and(|x| x.contains("support")))
        .expect("support digest");
    let body = digest.body().to_string();
    assert!(body.starts_with("6 in queue support between"), "{body}");
    for i in 0..6 {
        assert!(body.contains(&format!("+7916111000{i}")), "{body}");
    }
    // A loss after the digest went out: the next window's digest.
    append(
        &dir.path().join("queue_log"),
        lost(
            "s9",
            "89161110009",
            "support",
            chrono::Utc::now().timestamp() - 60,
            20,
        )
        .as_bytes(),
    );
    assert!(
        wait_until(Duration::from_secs(100), || subjects().len() == 5),
        "{:?}\n{}",
        subjects(),
        daemon.log()
    );
    assert!(subjects().contains(&"Lost callers in support (1 in 1 min)".to_string()));
    drop(daemon);
}
