//! `calltrail query` against a running daemon (its HTTP API) and against the
//! file after the daemon stopped: the same answers byte for byte, the same
//! refusals for writing statements, the data intact; the API itself
//! (`/healthz`, `/api/query`); startup errors for a port in use.

use crate::daemon::{append, calltrail, query_i64, Daemon};
use crate::support::{tools::free_port, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let cfg = dir.join("calltrail.toml");
    let agi = free_port();
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "store.duckdb"
[email]
outbox = "outbox"
[rules.missed_call_email]
enabled = false
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "logs/queue_log"
pbx = "pbx1"
poll_interval_ms = 100
[http]
listen = "127.0.0.1:{port}"
{extra}
[agi]
listen = "127.0.0.1:{agi}"
"#
        ),
    )
    .expect("write config");
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    cfg
}

/// A queue call: ENTERQUEUE, CONNECT, COMPLETEAGENT (3 events), call `c<i>`.
fn call(i: u32) -> String {
    let t = 1_717_397_259 + i * 10;
    format!(
        "{t}|c{i}|sales|NONE|ENTERQUEUE||8916{i:07}|1\n{}|c{i}|sales|PJSIP/70{i:02}|CONNECT|{}|c{i}.1|2\n{}|c{i}|sales|PJSIP/70{i:02}|COMPLETEAGENT|{}|{}|1\n",
        t + 3,
        i % 7,
        t + 9,
        i % 7,
        40 + i
    )
}

const QUERIES: &[&str] = &[
    "SELECT kind, count(*) AS n FROM events GROUP BY ALL ORDER BY kind",
    "SELECT event_id, ts, kind, queue, agent, caller, caller_raw, wait_s, talk_s, \
     wait_s / 7 AS ratio, [1, 2] AS list, NULL AS nothing, 'a,\"b\"' AS quoted FROM events ORDER BY seq",
    "DESCRIBE events",
    "SUMMARIZE SELECT wait_s, talk_s FROM events",
    "WITH x AS (SELECT agent FROM events WHERE agent IS NOT NULL) SELECT DISTINCT agent FROM x ORDER BY 1",
    "SELECT count(*) FROM events; -- a trailing comment",
];

const WRITES: &[&str] = &[
    "DELETE FROM events",
    "CREATE TABLE x(a int)",
    "INSERT INTO events (event_id) VALUES ('x')",
    "COPY events TO '/tmp/calltrail-query-live.csv'",
    "ATTACH '/tmp/calltrail-query-live.duckdb' AS other",
    "SET threads = 1",
    "SELECT 1; DELETE FROM events",
    "ROLLBACK; DELETE FROM events; SELECT 1",
    "WITH d AS (DELETE FROM events RETURNING *) SELECT count(*) FROM d",
    "EXPLAIN ANALYZE DELETE FROM events",
    "SELECT * FROM read_text('/etc/hostname')",
];

const BAD: &[&str] = &["SELEC 1", "SELECT nope FROM events"];

/// Every query in every format, and every refused statement: exit status,
/// stdout and stderr.
fn answers(cfg: &Path) -> Vec<(String, bool, String, String)> {
    let mut out = Vec::new();
    for q in QUERIES {
        for f in ["table", "csv", "json"] {
            let o = calltrail(cfg, &["query", "--format", f, q]);
            out.push(describe(&format!("{f}: {q}"), o));
        }
    }
    for q in WRITES.iter().chain(BAD) {
        let o = calltrail(cfg, &["query", q]);
        out.push(describe(q, o));
    }
    out
}

fn describe(what: &str, o: Output) -> (String, bool, String, String) {
    (
        what.to_string(),
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn check_refusals(answers: &[(String, bool, String, String)], when: &str) {
    for (what, ok, stdout, stderr) in answers {
        let is_query = QUERIES.iter().any(|q| what.ends_with(q));
        if is_query {
            assert!(*ok, "{when}: {what} failed: {stderr}");
            assert!(!stdout.is_empty(), "{when}: {what} printed nothing");
        } else {
            assert!(!ok, "{when}: {what} was accepted: {stdout}");
            assert!(stdout.is_empty(), "{when}: {what} printed {stdout}");
            assert!(stderr.starts_with("error: "), "{when}: {what}: {stderr}");
        }
    }
    let err = |q: &str| {
        answers
            .iter()
            .find(|a| a.0 == q)
            .map(|a| a.3.clone())
            .unwrap_or_default()
    };
    assert!(err("DELETE FROM events").contains("read-only"), "{when}");
    assert!(
        err("SELECT 1; DELETE FROM events").contains("exactly one statement"),
        "{when}"
    );
    assert!(
        err("WITH d AS (DELETE FROM events RETURNING *) SELECT count(*) FROM d")
            .contains("tries to write"),
        "{when}: DuckDB's read-only transaction refuses a write hidden in a CTE"
    );
    assert!(
        err("SELEC 1").contains("syntax error at or near \"SELEC\""),
        "{when}"
    );
    assert!(
        err("SELECT nope FROM events").contains("Binder Error"),
        "{when}"
    );
    assert!(err("SELECT nope FROM events").contains("nope"), "{when}");
    assert!(
        err("SELECT * FROM read_text('/etc/hostname')").contains("disabled by configuration"),
        "{when}: {}",
        err("SELECT * FROM read_text('/etc/hostname')")
    );
}

#[test]
fn query_is_the_same_with_the_daemon_running_and_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let log = dir.path().join("logs/queue_log");
    append(&log, (0..5).map(call).collect::<String>().as_bytes());
    let daemon = Daemon::start(&cfg, &dir.path().join("daemon.log"));

    // The daemon holds the store: every answer below comes over HTTP.
    assert!(
        wait_until(Duration::from_secs(30), || {
            let o = calltrail(
                &cfg,
                &[
                    "query",
                    "--format",
                    "json",
                    "SELECT count(*) AS n FROM events",
                ],
            );
            String::from_utf8_lossy(&o.stdout).contains("\"n\": 15")
        }),
        "the daemon did not answer 15 events; log:\n{}",
        daemon.log()
    );
    append(&log, (5..12).map(call).collect::<String>().as_bytes());
    assert!(
        wait_until(Duration::from_secs(30), || {
            let o = calltrail(
                &cfg,
                &[
                    "query",
                    "--format",
                    "csv",
                    "SELECT count(*) AS n FROM events",
                ],
            );
            o.stdout == b"n\n36\n"
        }),
        "appended lines did not show up through the daemon; log:\n{}",
        daemon.log()
    );
    let live = answers(&cfg);
    check_refusals(&live, "daemon running");

    // A config pointing at a port nobody serves: both failures explained.
    let elsewhere = dir.path().join("elsewhere.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    let other_port = free_port();
    std::fs::write(
        &elsewhere,
        text.replace(&format!(":{port}\""), &format!(":{other_port}\"")),
    )
    .expect("write");
    let o = calltrail(&elsewhere, &["query", "SELECT 1"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("held by another process"), "{stderr}");
    assert!(stderr.contains("lock"), "DuckDB's reason: {stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{other_port}")),
        "{stderr}"
    );
    assert!(stderr.contains("no answer from"), "{stderr}");

    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    // The port is released with the daemon.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the daemon left its port bound");

    // Now `query` opens the file itself: the very same bytes.
    let stopped = answers(&cfg);
    check_refusals(&stopped, "daemon stopped");
    assert_eq!(live.len(), stopped.len());
    for (a, b) in live.iter().zip(&stopped) {
        assert_eq!(a, b, "answers differ with and without the daemon");
    }
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 36);
    assert_eq!(
        query_i64(
            &cfg,
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'x'"
        ),
        0
    );
    assert!(!Path::new("/tmp/calltrail-query-live.csv").exists());
}

fn post(port: u16, content_type: &str, body: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut res = agent
        .post(format!("http://127.0.0.1:{port}/api/query"))
        .header("content-type", content_type)
        .send(body.as_bytes())
        .expect("POST /api/query");
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, json)
}

#[test]
fn the_http_api_answers_and_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = config(dir.path(), port, "[query]\nmax_rows = 5\n");
    append(&dir.path().join("logs/queue_log"), call(1).as_bytes());
    let daemon = Daemon::start(&cfg, &dir.path().join("daemon.log"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut health = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            health = agent
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .call()
                .ok()
                .and_then(|mut r| {
                    (r.status() == 200).then(|| r.body_mut().read_to_string().ok())?
                });
            health.is_some()
        }),
        "no /healthz; log:\n{}",
        daemon.log()
    );
    assert_eq!(
        health.as_deref(),
        Some(format!("ok calltrail {}\n", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert!(wait_until(Duration::from_secs(30), || {
        post(port, "text/plain", "SELECT count(*) AS n FROM events").1
            == serde_json::json!({"columns": ["n"], "rows": [[3]]})
    }));

    let (status, body) = post(
        port,
        "application/json",
        r#"{"sql": "SELECT kind, ts, wait_s FROM events ORDER BY seq LIMIT 1"}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"columns": ["kind", "ts", "wait_s"], "rows": [["enter_queue", "2024-06-03 06:47:49", null]]})
    );

    let (status, body) = post(port, "text/plain", "DELETE FROM events");
    assert_eq!(
        (status, body["kind"].as_str()),
        (403, Some("refused")),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap_or("").contains("read-only"),
        "{body}"
    );
    let (status, body) = post(port, "text/plain", "SELECT * FROM nowhere");
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("sql")),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap_or("").contains("nowhere"),
        "{body}"
    );
    let (status, body) = post(port, "text/plain", "SELECT * FROM range(6)");
    assert_eq!(
        (status, body["kind"].as_str()),
        (422, Some("too_many_rows")),
        "{body}"
    );
    let (status, body) = post(
        port,
        "application/json",
        r#"{"sql": "SELECT 1", "store": "/nowhere/other.duckdb"}"#,
    );
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("wrong_store")),
        "{body}"
    );
    let store = dir.path().join(".").join("store.duckdb");
    let (status, _) = post(
        port,
        "application/json",
        &serde_json::json!({"sql": "SELECT 1", "store": store}).to_string(),
    );
    assert_eq!(status, 200, "the same file, spelled differently");
    let (status, body) = post(port, "application/json", r#"{"query": "SELECT 1"}"#);
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    assert_eq!(
        post(port, "text/plain", "SELECT * FROM range(5)").0,
        200,
        "max_rows rows are fine"
    );

    // SIGTERM interrupts a statement still running (the limit is 60 s).
    let slow = Command::new(crate::daemon::bin())
        .arg("--config")
        .arg(&cfg)
        .args([
            "query",
            "SELECT count(*) FROM range(100000000000000) a, range(10) b",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a slow query");
    std::thread::sleep(Duration::from_millis(1500));
    let stopping = Instant::now();
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        stopping.elapsed()
    );
    let slow = slow.wait_with_output().expect("slow query");
    let stderr = String::from_utf8_lossy(&slow.stderr);
    assert!(!slow.status.success());
    assert!(stderr.contains("the daemon is stopping"), "{stderr}");

    // The same limit applies when `query` reads the file itself.
    let o = calltrail(&cfg, &["query", "SELECT * FROM range(6)"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("more than 5 rows"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 3);
}

#[test]
fn a_busy_port_stops_run_but_not_run_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let cfg = config(dir.path(), port, "");
    append(&dir.path().join("logs/queue_log"), call(1).as_bytes());

    let mut child = Command::new(crate::daemon::bin())
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start calltrail run");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("calltrail run kept running with its port in use");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("[http] listen"), "{stderr}");

    // A batch run serves no queries, so it needs no port.
    let o = calltrail(&cfg, &["run", "--once"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 3);
    drop(busy);
}

#[test]
fn check_config_explains_a_bad_listen_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 8479, "");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("listen = \"127.0.0.1:8479\"", "listen = \"localhost:8479\""),
    )
    .expect("write");
    let o = calltrail(&cfg, &["check-config"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("http.listen"), "{stderr}");
    assert!(stderr.contains("\"localhost:8479\""), "{stderr}");
    assert!(stderr.contains("IP address and port"), "{stderr}");
}
