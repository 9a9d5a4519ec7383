//! `GET /metrics` on a running daemon, read by Prometheus' own Python
//! client's OpenMetrics parser (strict: names, units, types, `# EOF`): the
//! source's lines, events and rejects are what the test wrote, the bytes
//! behind go to 0 once read, the lookup histogram counts the lookups made
//! over HTTP, the deriver catches up, the store has a size, an action
//! queued by a rule shows with its kind and status. `/readyz` says ready,
//! goes unready with the reason when the source's file goes away (and
//! `calltrail_source_stale` says 1), and ready again when it is back.
//! `--log-format json` logs one JSON object per line; `calltrail status`
//! prints the figures and exits 3 when no daemon runs.

use crate::daemon::{append, Daemon};
use crate::rules::daemon_config;
use crate::support::tools::python;
use crate::support::wait_until;
use std::process::Command;
use std::time::Duration;

/// The parser's reading of the text: `name{labels} -> value` per sample.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = sys.stdin.read()
out = {"families": {}, "samples": []}
for fam in text_string_to_metric_families(text):
    out["families"][fam.name] = {"type": fam.type, "unit": fam.unit}
    for s in fam.samples:
        out["samples"].append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

fn scrape(port: u16) -> (String, serde_json::Value) {
    let agent = crate::support::http_agent(Duration::from_secs(10));
    let mut r = agent
        .get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("GET /metrics");
    assert_eq!(r.status().as_u16(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.body_mut().read_to_string().expect("body");
    let mut child = Command::new(python())
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the text:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        text,
        serde_json::from_slice(&out.stdout).expect("parser JSON"),
    )
}

fn sample(m: &serde_json::Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    m["samples"].as_array()?.iter().find_map(|s| {
        let ok = s["name"] == name
            && labels
                .iter()
                .all(|(k, v)| s["labels"][*k].as_str() == Some(*v));
        ok.then(|| s["value"].as_f64()).flatten()
    })
}

#[test]
fn metrics_parse_and_say_what_the_daemon_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::tools::free_port();
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[http]
listen = "127.0.0.1:{port}"

[[rules]]
name = "hook"
when = "call_answered"
action = "webhook"
url = "http://127.0.0.1:9/never"
"#
        ),
    );
    let d = Daemon::start(&cfg, &dir.path().join("d.log"));
    d.wait_http();
    let t = chrono::Utc::now().timestamp() - 60;
    let mut lines = String::new();
    for (i, c) in ["1001", "1002", "1003"].iter().enumerate() {
        let t = t + i as i64;
        lines.push_str(&format!(
            "{t}|{c}.1|support|NONE|ENTERQUEUE||7916111000{i}|1\n\
             {t}|{c}.1|support|PJSIP/201|CONNECT|5|{c}.2|3\n\
             {t}|{c}.1|support|PJSIP/201|COMPLETECALLER|5|30|1\n"
        ));
    }
    lines.push_str("this is not a queue_log line\nnor|this\n");
    append(&dir.path().join("queue_log"), lines.as_bytes());
    let agent = crate::support::http_agent(Duration::from_secs(10));
    for n in ["79161110000", "79161110001", "+79161110002", "garbage"] {
        let _ = agent
            .get(&format!(
                "http://127.0.0.1:{port}/dialplan/lookup?number={n}"
            ))
            .call();
    }

    let mut last = None;
    let settled = wait_until(Duration::from_secs(20), || {
        let (text, m) = scrape(port);
        let done = sample(&m, "calltrail_source_lines_total", &[("source", "q")]) == Some(11.0)
            && sample(&m, "calltrail_source_lag_bytes", &[("source", "q")]) == Some(0.0)
            && sample(&m, "calltrail_deriver_lag_events", &[]) == Some(0.0);
        last = Some((text, m));
        done
    });
    let (text, m) = last.expect("a scrape");
    assert!(settled, "the figures did not settle:\n{text}");
    if std::env::var_os("CALLTRAIL_SHOW_METRICS").is_some() {
        eprintln!("{text}");
    }
    assert!(text.trim_end().ends_with("# EOF"));
    assert_eq!(
        sample(&m, "calltrail_source_events_total", &[("source", "q")]),
        Some(9.0),
        "{text}"
    );
    assert_eq!(
        sample(&m, "calltrail_source_rejects_total", &[("source", "q")]),
        Some(2.0),
        "{text}"
    );
    let age = sample(
        &m,
        "calltrail_source_last_line_age_seconds",
        &[("source", "q")],
    )
    .expect("age");
    assert!((0.0..30.0).contains(&age), "{age}");
    assert_eq!(
        sample(&m, "calltrail_source_stale", &[("source", "q")]),
        Some(0.0)
    );
    assert!(sample(&m, "calltrail_store_bytes", &[]).expect("store size") > 0.0);
    // Four lookups over HTTP, each observed once (the garbage one too: it
    // gets an answer).
    assert_eq!(
        sample(
            &m,
            "calltrail_lookup_duration_seconds_count",
            &[("via", "http")]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &m,
            "calltrail_lookup_duration_seconds_bucket",
            &[("via", "http"), ("le", "+Inf")]
        ),
        Some(4.0)
    );
    assert!(
        sample(
            &m,
            "calltrail_http_request_duration_seconds_count",
            &[("route", "/dialplan/lookup"), ("method", "GET")]
        ) == Some(4.0),
        "{text}"
    );
    // Three answered calls: three webhooks, whatever their status now.
    let hooks: f64 = m["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter(|s| s["name"] == "calltrail_actions" && s["labels"]["kind"] == "webhook")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert_eq!(hooks, 3.0, "{text}");
    assert_eq!(m["families"]["calltrail_source_lag_bytes"]["unit"], "bytes");
    assert_eq!(
        m["families"]["calltrail_lookup_duration_seconds"]["type"],
        "histogram"
    );
    assert_eq!(m["families"]["calltrail_source_lines"]["type"], "counter");

    // `calltrail status` shows the same at a glance.
    let st = crate::daemon::calltrail(&cfg, &["status"]);
    let text = String::from_utf8_lossy(&st.stdout).to_string();
    assert!(
        st.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(text.contains(": ready"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("q "))
        .unwrap_or_else(|| panic!("no row for q: {text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..4], &["11", "9", "2"], "{row}");
    // Three webhooks, whatever the status they have reached by now.
    let shown: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("actions: "))
        .unwrap_or_else(|| panic!("no actions line: {text}"))
        .split(", ")
        .filter(|a| a.starts_with("webhook "))
        .filter_map(|a| a.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(shown, 3.0, "{text}");
    d.terminate(Duration::from_secs(20));
    let gone = crate::daemon::calltrail(&cfg, &["status"]);
    assert_eq!(gone.status.code(), Some(3), "not running: exit code 3");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not running"));
}

fn readyz(port: u16) -> (u16, String) {
    let agent = crate::support::http_agent(Duration::from_secs(10));
    let mut r = agent
        .get(&format!("http://127.0.0.1:{port}/readyz"))
        .call()
        .expect("GET /readyz");
    (
        r.status().as_u16(),
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn readyz_goes_unready_when_a_source_stalls_and_ready_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::tools::free_port();
    let cfg = daemon_config(
        dir.path(),
        &format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace(
            "poll_interval_ms = 50\n",
            "poll_interval_ms = 50\nstale_after_s = 2\n",
        ),
    )
    .expect("config");
    let d = Daemon::start(&cfg, &dir.path().join("d.log"));
    d.wait_http();
    assert!(
        wait_until(Duration::from_secs(10), || readyz(port).0 == 200),
        "{:?}",
        readyz(port)
    );
    assert_eq!(readyz(port).1, "ready\n");
    let log = dir.path().join("queue_log");
    let away = dir.path().join("queue_log.away");
    std::fs::rename(&log, &away).expect("rename");
    let t = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || readyz(port).0 == 503),
        "still ready with the source gone"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let (_, why) = readyz(port);
    assert!(why.starts_with("not ready\n"), "{why}");
    assert!(
        why.contains("source \"q\"") && why.contains("stale_after_s 2"),
        "{why}"
    );
    let (_, m) = scrape(port);
    assert_eq!(
        sample(&m, "calltrail_source_stale", &[("source", "q")]),
        Some(1.0)
    );
    std::fs::rename(&away, &log).expect("rename back");
    assert!(
        wait_until(Duration::from_secs(10), || readyz(port).0 == 200),
        "not ready again: {:?}",
        readyz(port)
    );
    d.terminate(Duration::from_secs(20));
}

#[test]
fn logs_in_json_on_request_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(dir.path(), "");
    append(&dir.path().join("queue_log"), b"not a queue_log line\n");
    let out = crate::daemon::calltrail(&cfg, &["--log-format", "json", "run", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stderr).expect("utf-8 log");
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{line}"
        );
        n += 1;
    }
    assert!(n >= 2, "{text}");
    assert!(text.contains("calltrail starting"));
}
