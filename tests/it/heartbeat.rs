//! Heartbeats on the Kafka topic (`src/heartbeat.rs`, docs/events.md
//! "Heartbeats"), read back from a real broker by the independent consumer:
//! one per source every `heartbeat_interval_s` (1 s here), a stalled
//! source's age growing while a busy one's stays small, the daemon's host
//! and version, nothing of them in the `events` table or in the call events
//! on the topic (count, ids, `seq`s as without them), and none at all with
//! the interval at 0.

use crate::daemon::{append, query_i64, query_json, Daemon};
use crate::support::broker::{Broker, ConsumedMessage};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TOPIC: &str = "calltrail.heartbeats";

fn write_config(dir: &Path, broker: &Broker, interval_s: u64) -> std::path::PathBuf {
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
name = "busy"
kind = "asterisk_queue_log"
path = "logs/busy/queue_log"
pbx = "pbx1"
timezone = "UTC"
poll_interval_ms = 100
[[sources]]
name = "quiet"
kind = "asterisk_queue_log"
path = "logs/quiet/queue_log"
pbx = "pbx2"
timezone = "UTC"
poll_interval_ms = 100
[kafka]
brokers = "{}"
topic = "{TOPIC}"
heartbeat_interval_s = {interval_s}
[email]
outbox = "outbox"
"#,
            broker.bootstrap()
        ),
    )
    .expect("write config");
    for s in ["busy", "quiet"] {
        std::fs::create_dir_all(dir.join("logs").join(s)).expect("logs dir");
    }
    cfg
}

/// A queue_log line of a call entering a queue now.
fn line(call: u32) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    format!("{now}|{now}.{call}|sales|NONE|ENTERQUEUE||8903139{call:04}|1\n")
}

fn json(m: &ConsumedMessage) -> serde_json::Value {
    serde_json::from_str(&m.value).unwrap_or_else(|e| panic!("not JSON ({e}): {m:?}"))
}

fn secs(v: &serde_json::Value) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .unwrap_or_else(|e| panic!("{v}: {e}"));
    t.timestamp_micros() as f64 / 1e6
}

fn header<'m>(m: &'m ConsumedMessage, name: &str) -> Option<&'m str> {
    m.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn heartbeats_per_source_tell_quiet_from_busy_and_leave_the_events_alone() {
    let broker = Broker::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), &broker, 1);
    let busy = dir.path().join("logs/busy/queue_log");
    let quiet = dir.path().join("logs/quiet/queue_log");
    append(&quiet, format!("{}{}", line(1), line(2)).as_bytes());
    append(&busy, line(3).as_bytes());
    let mut written = 3;

    let daemon = Daemon::start(&cfg, &dir.path().join("daemon.log"));
    // The busy source gets a line every 0.4 s for 6 s; the quiet one none.
    let began = Instant::now();
    let mut call = 10;
    while began.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(400));
        append(&busy, line(call).as_bytes());
        call += 1;
        written += 1;
    }
    let writing_ended = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    // Two more beats with nothing new: the publisher caught up.
    std::thread::sleep(Duration::from_millis(2_500));
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");

    // At least 6 beats per source in 8.5 s at 1 s (the first one interval
    // in); the consumer reads them all, keyed by source.
    let beats =
        broker.consume_heartbeats(TOPIC, 12, Duration::from_secs(30), Duration::from_secs(1));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    let mut by_source: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
        Default::default();
    let mut started = std::collections::BTreeSet::new();
    for m in &beats {
        let v = json(m);
        assert_eq!(v["kind"], "heartbeat", "{m:?}");
        assert_eq!(header(m, "kind"), Some("heartbeat"), "{m:?}");
        assert_eq!(
            header(m, "event_id"),
            None,
            "a heartbeat is no event: {m:?}"
        );
        let source = v["source"].as_str().expect("source").to_string();
        assert_eq!(m.key.as_deref(), Some(source.as_str()), "key = source");
        assert_eq!(v["host"], host.as_str());
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["interval_s"], 1);
        assert_eq!(v["source_kind"], "asterisk_queue_log");
        assert_eq!(v["pbx"], if source == "busy" { "pbx1" } else { "pbx2" });
        assert_eq!(v["stale"], false, "{v}");
        assert!(v.get("event_id").is_none() && v.get("seq").is_none(), "{v}");
        started.insert(v["started_at"].as_str().expect("started_at").to_string());
        by_source.entry(source).or_default().push(v);
    }
    assert_eq!(started.len(), 1, "one daemon: {started:?}");
    assert_eq!(
        by_source.keys().collect::<Vec<_>>(),
        ["busy", "quiet"],
        "{beats:?}"
    );
    for list in by_source.values_mut() {
        list.sort_by(|a, b| secs(&a["ts"]).total_cmp(&secs(&b["ts"])));
        assert!(list.len() >= 6, "{list:?}");
        // About one a second (a loaded machine may delay one).
        for w in list.windows(2) {
            let gap = secs(&w[1]["ts"]) - secs(&w[0]["ts"]);
            assert!(
                (0.5..3.0).contains(&gap),
                "{gap} s between {} and {}",
                w[0],
                w[1]
            );
        }
        // The age is the time since the last line stored.
        for v in list.iter() {
            if let Some(at) = v.get("last_line_at") {
                let age = secs(&v["ts"]) - secs(at);
                let said = v["last_line_age_s"].as_f64().expect("age");
                assert!((said - age).abs() < 0.01, "{v}");
            }
        }
        let last = list.last().expect("a beat");
        assert_eq!(
            last["unpublished_events"], 0,
            "caught up at the end: {last}"
        );
        assert_eq!(last["bytes_behind"], 0, "read to the end: {last}");
    }

    // The quiet source: its two lines once, then nothing: the same last
    // line, an age growing beat by beat.
    let q = &by_source["quiet"];
    for v in q {
        assert_eq!(v["lines"], 2, "{v}");
        assert_eq!(v["events"], 2, "{v}");
        assert_eq!(v["last_line_at"], q[0]["last_line_at"], "{v}");
    }
    for w in q.windows(2) {
        let (a, b) = (
            w[0]["last_line_age_s"].as_f64().expect("age"),
            w[1]["last_line_age_s"].as_f64().expect("age"),
        );
        assert!(b > a + 0.4, "growing: {a} then {b}");
    }
    assert!(
        q.last().expect("beat")["last_line_age_s"]
            .as_f64()
            .expect("age")
            > 5.0,
        "{q:?}"
    );
    // The busy source: young lines while written to, its count growing.
    let b = &by_source["busy"];
    let while_writing: Vec<&serde_json::Value> = b
        .iter()
        .filter(|v| secs(&v["ts"]) < writing_ended)
        .collect();
    assert!(while_writing.len() >= 4, "{b:?}");
    for v in &while_writing {
        let age = v["last_line_age_s"].as_f64().expect("age");
        assert!(age < 2.0, "a line every 0.4 s, yet {age} s: {v}");
    }
    let lines: Vec<u64> = b
        .iter()
        .map(|v| v["lines"].as_u64().expect("lines"))
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert!(lines[0] < *lines.last().expect("lines"), "{lines:?}");
    assert_eq!(
        *lines.last().expect("lines"),
        written - 2,
        "every busy line"
    );

    // The events: every line once, `seq` 1..n without a gap, no heartbeat
    // among them; on the topic exactly the events and the state changes.
    let n = query_i64(&cfg, "SELECT count(*) FROM events");
    assert_eq!(n, written as i64);
    let seqs = query_json(
        &cfg,
        "SELECT min(seq) AS lo, max(seq) AS hi, count(DISTINCT event_id) AS ids FROM events",
    );
    assert_eq!(seqs[0]["lo"], 1, "{seqs:?}");
    assert_eq!(seqs[0]["hi"], n, "{seqs:?}");
    assert_eq!(seqs[0]["ids"], n, "{seqs:?}");
    assert_eq!(
        query_i64(
            &cfg,
            "SELECT count(*) FROM events WHERE kind = 'heartbeat' OR verb ILIKE '%heartbeat%'"
        ),
        0
    );
    let derived = query_i64(&cfg, "SELECT count(*) FROM state_events");
    let total = (n + derived) as usize;
    let msgs = broker.consume_settled(
        TOPIC,
        total,
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    assert_eq!(
        msgs.len(),
        total,
        "events and state changes, no more: {msgs:?}"
    );
    let events: Vec<serde_json::Value> = msgs
        .iter()
        .map(json)
        .filter(|v| v["source_kind"] != "derived")
        .collect();
    assert_eq!(events.len(), written as usize);
    let mut ids: Vec<&str> = events
        .iter()
        .map(|v| v["event_id"].as_str().expect("event_id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), written as usize, "each event once");
    assert!(
        events.iter().all(|v| v["kind"] == "enter_queue"),
        "{events:?}"
    );

    // At 0: none (and the events still flow).
    let cfg = write_config(dir.path(), &broker, 0);
    let daemon = Daemon::start(&cfg, &dir.path().join("daemon2.log"));
    append(&quiet, line(99).as_bytes());
    std::thread::sleep(Duration::from_secs(3));
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    let again = broker.consume_heartbeats(
        TOPIC,
        beats.len(),
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    assert_eq!(again.len(), beats.len(), "no heartbeat at interval 0");
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), n + 1);
    let msgs = broker.consume_settled(
        TOPIC,
        total + 1,
        Duration::from_secs(30),
        Duration::from_secs(0),
    );
    assert!(msgs.len() > total, "the new line was published");
}
