//! The walking skeleton, end to end with real components: a live queue_log
//! appended to while `calltrail run` follows it → DuckDB → a real Kafka
//! broker read back by an independent client → a real SMTP server.

use crate::daemon::{append, calltrail, query_i64, query_json, Daemon};
use crate::support::broker::Broker;
use crate::support::smtp::{SmtpOptions, SmtpServer};
use std::path::Path;
use std::time::Duration;

const TOPIC: &str = "calltrail.events";

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("calltrail.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "store.duckdb"
[numbers]
default_region = "RU"
[[sources]]
name = "pbx1-queue"
kind = "asterisk_queue_log"
path = "logs/queue_log"
pbx = "pbx1"
timezone = "Europe/Moscow"
poll_interval_ms = 200
[email]
from = "calltrail@test.example"
outbox = "outbox"
[rules.missed_call_email]
to = ["boss@test.example"]
max_age_minutes = 0
{extra}
"#
        ),
    )
    .expect("write config");
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    cfg
}

fn kafka_and_smtp(broker: &Broker, smtp: &SmtpServer, tls: &str, auth: &str) -> String {
    let mut s = format!(
        "[kafka]\nbrokers = \"{}\"\ntopic = \"{TOPIC}\"\n[email.smtp]\nhost = \"{}\"\nport = {}\ntls = \"{tls}\"\ntimeout_s = 10\n{auth}",
        broker.bootstrap(),
        if tls == "none" { "127.0.0.1" } else { "localhost" },
        smtp.port()
    );
    if let Some(ca) = smtp.ca_cert_path() {
        s.push_str(&format!("ca_file = \"{}\"\n", ca.display()));
    }
    s
}

const CALL_ANSWERED: &str = "\
1717397259|1717397243.239826|sales|NONE|DID|4957877871
1717397259|1717397243.239826|sales|NONE|ENTERQUEUE||89031396745|1
1717397271|1717397243.239826|sales|PJSIP/7009|CONNECT|12|1717397259.239827|11
1717397390|1717397243.239826|sales|PJSIP/7009|COMPLETEAGENT|12|119|1
";
const CALL_ABANDONED: &str = "\
1717397400|1717397400.239900|sales|NONE|ENTERQUEUE||+7 916 123-45-67|1
1717397425|1717397400.239900|sales|NONE|ABANDON|1|1|25
";

#[test]
fn live_queue_log_flows_to_duckdb_kafka_and_smtp() {
    let broker = Broker::start();
    broker.create_topic(TOPIC, 3);
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), &kafka_and_smtp(&broker, &smtp, "none", ""));
    let log_path = dir.path().join("logs/queue_log");

    // The file does not exist yet when the daemon starts.
    let daemon = Daemon::start(&cfg, &dir.path().join("daemon.log"));
    std::thread::sleep(Duration::from_millis(500));
    append(&log_path, CALL_ANSWERED.as_bytes());
    // A partial line is held until its newline arrives.
    let (head, tail) = CALL_ABANDONED.split_at(30);
    append(&log_path, head.as_bytes());
    std::thread::sleep(Duration::from_millis(400));
    append(&log_path, tail.as_bytes());

    let mails = smtp.wait_for_messages(1, Duration::from_secs(30));
    let mail = &mails[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Missed call from +79161234567 in sales"),
        "{}",
        mail.raw
    );
    assert_eq!(mail.envelope_to, vec!["boss@test.example".to_string()]);
    assert_eq!(mail.envelope_from, "calltrail@test.example");
    assert!(
        mail.body().contains("after waiting 25 s"),
        "{}",
        mail.body()
    );

    // An independent client (kafka-python) reads what the daemon produced.
    // 6 events from the lines, 5 derived state changes: first call of each
    // caller, the answered caller's last agent, the abandon's missed-call
    // episode opening and (the lines are from 2024) expiring.
    let all = broker.consume(TOPIC, 11, Duration::from_secs(30));
    assert_eq!(all.len(), 11, "{all:?}");
    let parsed: Vec<serde_json::Value> = all
        .iter()
        .map(|m| serde_json::from_str(&m.value).expect("JSON payload"))
        .collect();
    let mut derived: Vec<String> = parsed
        .iter()
        .filter(|e| e["source_kind"] == "derived")
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap_or(""),
                e["caller"].as_str().unwrap_or("")
            )
        })
        .collect();
    derived.sort();
    assert_eq!(
        derived,
        vec![
            "first_call +79031396745",
            "first_call +79161234567",
            "last_agent_changed +79031396745",
            "missed_closed +79161234567",
            "missed_opened +79161234567",
        ]
    );
    let (msgs, events): (Vec<_>, Vec<_>) = all
        .iter()
        .zip(parsed)
        .filter(|(_, e)| e["source_kind"] != "derived")
        .unzip();
    assert_eq!(msgs.len(), 6, "{msgs:?}");
    for (m, e) in msgs.iter().zip(&events) {
        assert_eq!(m.key.as_deref(), e["call_id"].as_str(), "key = call id");
        assert!(m
            .headers
            .iter()
            .any(|(k, v)| k == "event_id" && Some(v.as_str()) == e["event_id"].as_str()));
    }
    let abandon = events
        .iter()
        .find(|e| e["kind"] == "abandoned")
        .expect("abandon event");
    assert_eq!(
        abandon["caller"],
        serde_json::Value::Null,
        "ABANDON carries no caller"
    );
    assert_eq!(abandon["wait_s"], 25);
    assert_eq!(abandon["queue"], "sales");
    assert_eq!(abandon["ts"], "2024-06-03T06:50:25Z");
    let enter = events
        .iter()
        .find(|e| e["call_id"] == "1717397400.239900" && e["kind"] == "enter_queue")
        .expect("enter");
    assert_eq!(enter["caller"], "+79161234567");
    assert_eq!(enter["caller_raw"], "+7 916 123-45-67");
    let connect = events
        .iter()
        .find(|e| e["kind"] == "answered")
        .expect("connect");
    assert_eq!(connect["agent"], "7009");
    assert_eq!(connect["agent_raw"], "PJSIP/7009");

    // SIGTERM stops it cleanly.
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");

    // DuckDB holds every event exactly once; query works once it stopped.
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 6);
    assert_eq!(
        query_i64(&cfg, "SELECT count(DISTINCT event_id) FROM events"),
        6
    );
    assert_eq!(
        query_i64(&cfg, "SELECT count(*) FROM actions WHERE status = 'done'"),
        1
    );

    // Restart: the checkpoint is honoured; nothing is read, stored, published
    // or mailed twice; new lines still flow.
    let daemon = Daemon::start(&cfg, &dir.path().join("daemon2.log"));
    append(
        &log_path,
        b"1717397500|1717397500.239950|sales|NONE|ENTERQUEUE||89031112233|1\n1717397560|1717397500.239950|sales|NONE|EXITWITHTIMEOUT|1|1|60\n",
    );
    let mails = smtp.wait_for_messages(2, Duration::from_secs(30));
    assert_eq!(
        mails[1].header("Subject").as_deref(),
        Some("Missed call from +79031112233 in sales")
    );
    // 2 more lines, 3 more state changes (first call, episode opened and,
    // the lines being old, expired).
    let msgs = broker.consume_settled(TOPIC, 16, Duration::from_secs(30), Duration::from_secs(2));
    assert_eq!(
        msgs.len(),
        16,
        "no duplicates on the topic after a restart: {msgs:?}"
    );
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success());
    assert_eq!(smtp.messages().len(), 2, "no email sent twice");
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 8);
}

#[test]
fn email_over_starttls_with_auth() {
    let smtp = SmtpServer::start_with(SmtpOptions::starttls().with_auth("calltrail", "s3cret"));
    let broker = Broker::start();
    broker.create_topic(TOPIC, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = "username = \"calltrail\"\npassword_env = \"CT_TEST_SMTP_PW\"\n";
    let cfg = write_config(
        dir.path(),
        &kafka_and_smtp(&broker, &smtp, "starttls", auth),
    );
    std::fs::write(dir.path().join("logs/queue_log"), CALL_ABANDONED).expect("log");
    let out = std::process::Command::new(crate::daemon::bin())
        .arg("--config")
        .arg(&cfg)
        .args(["run", "--once"])
        .env("CT_TEST_SMTP_PW", "s3cret")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mails = smtp.wait_for_messages(1, Duration::from_secs(20));
    assert!(mails[0].tls, "sent over TLS");
    assert_eq!(mails[0].auth_login.as_deref(), Some("calltrail"));

    // A wrong password is a permanent failure, reported and not retried forever.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let cfg2 = write_config(
        dir2.path(),
        &kafka_and_smtp(&broker, &smtp, "starttls", auth),
    );
    std::fs::write(dir2.path().join("logs/queue_log"), CALL_ABANDONED).expect("log");
    let out = std::process::Command::new(crate::daemon::bin())
        .arg("--config")
        .arg(&cfg2)
        .args(["run", "--once"])
        .env("CT_TEST_SMTP_PW", "wrong")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(smtp.messages().len(), 1);
    let rows = query_json(&cfg2, "SELECT status, last_error FROM actions");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert!(
        rows[0]["last_error"].as_str().unwrap_or("").contains("535"),
        "{rows:?}"
    );
}

#[test]
fn run_once_on_the_samples_writes_the_outbox_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    std::fs::copy(
        samples.join("calltrail.toml"),
        dir.path().join("calltrail.toml"),
    )
    .expect("copy config");
    std::fs::copy(samples.join("queue_log"), dir.path().join("queue_log")).expect("copy log");
    let cfg = dir.path().join("calltrail.toml");

    let out = calltrail(&cfg, &["run", "--once"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("33 lines read, 31 new events, 0 already stored, 1 rejected, 1 blank"),
        "{stdout}"
    );
    let outbox = dir.path().join("out/outbox");
    let count_eml = || {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    // 3 abandons, 1 timeout, 1 exit-empty, 1 exit-with-key
    assert_eq!(count_eml(), 6);
    let rejects = query_json(&cfg, "SELECT line_no, reason FROM rejects");
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["line_no"], 33);
    assert!(rejects[0]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("expected at least 5"));
    // The cp1251 caller name was decoded.
    let names = query_json(
        &cfg,
        "SELECT caller_name FROM events WHERE caller_name IS NOT NULL",
    );
    assert_eq!(names[0]["caller_name"], "Иван Петров");

    // A second run reads nothing new and sends nothing again.
    let out = calltrail(&cfg, &["run", "--once"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 lines read"));
    assert_eq!(count_eml(), 6);
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 31);

    // Import of the same file adds nothing either (same content ids).
    let out = calltrail(
        &cfg,
        &[
            "import",
            dir.path().join("queue_log").to_str().unwrap_or_default(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 new events, 31 already stored"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn check_config_explains_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
memory_limit = "lots"
threads = 0
[numbers]
default_region = "XX"
[[sources]]
name = "a"
kind = "asterisk_queue_log"
path = "q"
pbx = "p"
timezone = "Mars/Olympus"
charset = "ebcdic"
"#,
    )
    .expect("write");
    let out = calltrail(&cfg, &["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "store.memory_limit: expected a size such as \"1GB\"",
        "found \"lots\"",
        "store.threads: expected at least 1 thread",
        "numbers.default_region: expected an ISO 3166",
        "found \"XX\"",
        "sources[0] (\"a\").timezone: expected an IANA time zone",
        "found \"Mars/Olympus\"",
        "sources[0] (\"a\").charset: expected one of utf8, cp1251",
        "5 problem(s)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // Syntax and unknown keys: line and column.
    std::fs::write(&cfg, "[store]\npath = \"x\"\npaht = 1\n").expect("write");
    let out = calltrail(&cfg, &["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3, column 1"), "{err}");
    assert!(err.contains("unknown field `paht`"), "{err}");
    // The sample config is valid.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/calltrail.toml");
    let out = calltrail(&sample, &["check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A source whose log is not there (yet) is worth a warning, not an error:
/// `check-config` names the source and the path and still says OK, and
/// `run` says so in its log when it starts. A config without sources is
/// valid (for import, query, rederive), but `run` refuses it.
#[test]
fn check_config_and_run_warn_of_a_missing_source_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let missing = dir.path().join("logs/queue_log");
    let out = calltrail(&cfg, &["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "warning: source \"pbx1-queue\": path {} does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK (1 source,"));
    let out = calltrail(&cfg, &["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("WARN") && err.contains("the source's path does not exist"),
        "{err}"
    );
    assert!(err.contains("pbx1-queue"), "{err}");
    // Once the file is there, nothing to say.
    std::fs::write(&missing, "").expect("log");
    let out = calltrail(&cfg, &["check-config"]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "[store]\npath = \"bare.duckdb\"\n").expect("write");
    let out = calltrail(&bare, &["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: no [[sources]]"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK (0 sources,"));
    let out = calltrail(&bare, &["run", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no [[sources]]: `run` has nothing to follow"),
        "{err}"
    );
    assert!(!dir.path().join("bare.duckdb").exists(), "run made a store");
}

#[test]
fn query_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    std::fs::write(dir.path().join("logs/queue_log"), CALL_ANSWERED).expect("log");
    let out = calltrail(&cfg, &["run", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = query_json(
        &cfg,
        "SELECT kind, agent, ts FROM events WHERE kind = 'answered'",
    );
    assert_eq!(
        rows,
        vec![serde_json::json!({"kind": "answered", "agent": "7009", "ts": "2024-06-03 06:47:51"})]
    );
    let out = calltrail(
        &cfg,
        &[
            "query",
            "--format",
            "csv",
            "SELECT kind, wait_s FROM events WHERE wait_s IS NOT NULL ORDER BY seq",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kind,wait_s\nanswered,12\ncompleted_by_agent,12\n"
    );
    let out = calltrail(&cfg, &["query", "SELECT count(*) AS n FROM events"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("│ n ") || table.contains("| n "), "{table}");
    assert!(table.contains("(1 row)"), "{table}");
    // Read-only: writes are refused.
    let out = calltrail(&cfg, &["query", "DELETE FROM events"]);
    assert!(!out.status.success());
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 4);
}
