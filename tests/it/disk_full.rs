//! A full disk under the store: the store lives on a tmpfs the test mounts
//! (its queue_log on the normal disk), and a filler file takes the room
//! while lines keep coming. The daemon stays up, ingest stops where the
//! last stored batch left it, `/readyz` says "store not writable: No space
//! left on device", `/metrics` counts the failed writes, and the log says
//! so in one error (at most one a minute), not one per retry; DuckDB invalidates the database when a
//! checkpoint fails, and it is reopened. Once the filler is deleted, ingest
//! resumes from its checkpoint by itself: every line appended (before, while and
//! after the disk was full) is stored exactly once, nothing is rejected,
//! the derived state equals a rebuild from the events, every event and
//! state change is on Kafka once (the publisher kept its position), each
//! webhook of a rule was POSTed once (the action worker paused, not
//! re-sent), and `/readyz` is ready again. A second outage (the disk full to its last
//! MiBs: commits fail and roll back) is ended by remounting the tmpfs
//! bigger.
//!
//! Mounting needs root. Without it the test fails, unless
//! `CALLTRAIL_SKIP_MOUNT_TESTS=1` is set (then it says loudly that it was
//! skipped).

use crate::chaos::state_differs_from_rederived_at;
use crate::daemon::{append, query_i64, query_json, Daemon};
use crate::rules::{receiver, Hooks};
use crate::support::broker::Broker;
use crate::support::{http_agent, tools, wait_until};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted by the test, unmounted when dropped (even when the test
/// fails: drop it after the daemon that has files open on it).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `160m`) at `dir`; `None`
    /// when mounting is not permitted and the caller may skip.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    dir: dir.to_path_buf(),
                })
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        if std::env::var("CALLTRAIL_SKIP_MOUNT_TESTS").as_deref() == Ok("1") {
            eprintln!(
                "\n\n*** SKIPPED: the full-disk test could not mount a tmpfs at {} ({why}); \
                 CALLTRAIL_SKIP_MOUNT_TESTS=1 lets it pass untested ***\n",
                dir.display()
            );
            return None;
        }
        panic!(
            "cannot mount a tmpfs at {} ({why}): the full-disk test needs root (mount -t tmpfs); \
             run it as root, or set CALLTRAIL_SKIP_MOUNT_TESTS=1 to skip it",
            dir.display()
        );
    }

    /// Makes it `size` big without unmounting.
    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("mount -o remount");
        assert!(st.success(), "remounting {} failed", self.dir.display());
    }

    /// Takes all its room but `leave` bytes with the file `path`. What the
    /// daemon writes meanwhile may take some of it: the filler then stops
    /// at the full disk and gives `leave` back.
    fn fill(&self, path: &Path, leave: u64) {
        use std::io::Write;
        let target = self.free().saturating_sub(leave);
        let mut f = std::fs::File::create(path).expect("filler");
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0u64;
        while written < target {
            let n = chunk.len().min((target - written) as usize);
            match f.write_all(&chunk[..n]) {
                Ok(()) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                    let len = f.metadata().expect("filler").len();
                    f.set_len(len.saturating_sub(leave)).expect("filler");
                    return;
                }
                Err(e) => panic!("writing the filler: {e}"),
            }
        }
    }

    /// Frees `bytes` of the room the filler `path` takes.
    fn give_back(&self, path: &Path, bytes: u64) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("filler");
        let len = f.metadata().expect("filler").len();
        f.set_len(len.saturating_sub(bytes)).expect("filler");
    }

    /// Bytes free on it.
    fn free(&self) -> u64 {
        let v = nix::sys::statvfs::statvfs(&self.dir).expect("statvfs");
        // Their C types differ between platforms.
        #[allow(clippy::unnecessary_cast)]
        let free = v.blocks_available() as u64 * v.fragment_size() as u64;
        free
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for _ in 0..50 {
            let ok = Command::new("umount")
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Still busy: detach it (it goes when the last file closes).
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

const TOPIC: &str = "calltrail.events";

/// Calls per round of appends (three lines each).
const CALLS: usize = 2_000;

/// The lines of calls `from..from + n`, three each: entered, answered,
/// completed in the queue `support`; one in 400 is a caller lost in the
/// queue `vip` (reached, entered, abandoned), whom a rule POSTs.
fn calls(from: usize, n: usize) -> String {
    let t = chrono::Utc::now().timestamp() - 3_600;
    let mut s = String::new();
    for i in from..from + n {
        let call = format!("{}.{i}", 1_700_000_000 + i);
        let agent = 200 + i % 50;
        let t = t + (i / 100) as i64;
        if vip(i) {
            s.push_str(&format!(
                "{t}|{call}|vip|NONE|DID|4957877871\n\
                 {t}|{call}|vip|NONE|ENTERQUEUE||7916{i:07}|1\n\
                 {}|{call}|vip|NONE|ABANDON|1|1|60\n",
                t + 60
            ));
        } else {
            s.push_str(&format!(
                "{t}|{call}|support|NONE|ENTERQUEUE||7916{i:07}|1\n\
                 {t}|{call}|support|PJSIP/{agent}|CONNECT|5|{call}.2|3\n\
                 {}|{call}|support|PJSIP/{agent}|COMPLETECALLER|5|30|1\n",
                t + 35
            ));
        }
    }
    s
}

/// Whether call `i` is a lost vip caller.
fn vip(i: usize) -> bool {
    i.is_multiple_of(400)
}

fn readyz(port: u16) -> (u16, String) {
    match http_agent(Duration::from_secs(10))
        .get(&format!("http://127.0.0.1:{port}/readyz"))
        .call()
    {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

/// The value of an unlabelled series of `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let mut r = http_agent(Duration::from_secs(10))
        .get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()?;
    let text = r.body_mut().read_to_string().ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The offset of every line of `path` (what the event ids must name).
fn line_offsets(path: &Path) -> BTreeSet<u64> {
    let bytes = std::fs::read(path).expect("read queue_log");
    let mut out = BTreeSet::new();
    let mut at = 0u64;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        out.insert(at);
        at += line.len() as u64;
    }
    out
}

/// Stored events per offset of the source's file (more than one: doubled).
fn stored_offsets(cfg: &Path) -> BTreeMap<u64, i64> {
    query_json(
        cfg,
        "SELECT CAST(split_part(event_id, ':', 3) AS BIGINT) AS o, count(*) AS n \
         FROM events WHERE source = 'q' GROUP BY ALL",
    )
    .iter()
    .map(|r| {
        (
            r["o"].as_u64().expect("offset"),
            r["n"].as_i64().expect("count"),
        )
    })
    .collect()
}

/// When the daemon's log says, as an error, that the store cannot be
/// written (the start of a failure or a reminder; not the debug echoes).
fn not_writable_errors(log: &str) -> Vec<chrono::DateTime<chrono::FixedOffset>> {
    log.lines()
        .filter(|l| l.contains(" ERROR ") && l.contains("not writable"))
        .filter_map(|l| chrono::DateTime::parse_from_rfc3339(l.split(' ').next()?).ok())
        .collect()
}

/// The log tells of the failures without a flood: at most one error line
/// a minute (a nearly full disk lets small writes through between the
/// failures: those end and start a failure again).
fn assert_no_flood(log: &str) {
    let at = not_writable_errors(log);
    for w in at.windows(2) {
        assert!(
            w[1] - w[0] >= chrono::Duration::seconds(59),
            "two errors about the store less than a minute apart ({} and {}):\n{}",
            w[0],
            w[1],
            tail(log)
        );
    }
}

/// Appends rounds of `per_round` calls until `/readyz` says the store
/// cannot be written and `calltrail_store_writable` says 0 (not always at
/// the same look: a nearly full disk takes some writes between failures);
/// returns `/readyz`'s reason.
fn fill_until_not_writable(
    d: &Daemon,
    log: &Path,
    port: u16,
    next: &mut usize,
    per_round: usize,
    fs: &Tmpfs,
) -> String {
    let started = Instant::now();
    let (mut why, mut gauge) = (None, false);
    loop {
        append(log, calls(*next, per_round).as_bytes());
        *next += per_round;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            let (code, text) = readyz(port);
            if code == 503 && text.contains("store not writable") {
                why = Some(text);
            }
            gauge |= metric(port, "calltrail_store_writable") == Some(0.0);
            if let (Some(why), true) = (&why, gauge) {
                return why.clone();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the store never became unwritable ({} calls written, {} bytes free); /readyz: {:?}, the gauge said 0: {gauge}\n{}",
            *next,
            fs.free(),
            readyz(port),
            tail(&d.log())
        );
    }
}

/// The daemon's log without its debug lines, last 60.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains(" DEBUG ")).collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Checks what an outage left: the daemon up and unready with the reason,
/// the failed writes counted, the log not flooded.
fn assert_stopped_cleanly(d: &mut Daemon, port: u16, why: &str) {
    assert!(
        why.contains("store not writable: No space left on device") && why.contains("held up: "),
        "{why}"
    );
    assert!(d.running(), "the daemon exited:\n{}", tail(&d.log()));
    assert!(
        metric(port, "calltrail_store_write_errors_total").is_some_and(|n| n >= 1.0),
        "no failed write counted"
    );
    // Retried for a while: alive, and no error per retry.
    std::thread::sleep(Duration::from_secs(5));
    assert!(d.running(), "the daemon exited:\n{}", tail(&d.log()));
    let log = d.log();
    assert!(!not_writable_errors(&log).is_empty(), "{}", tail(&log));
    assert_no_flood(&log);
}

#[test]
fn a_full_disk_stops_ingest_cleanly_and_it_resumes_losing_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = Tmpfs::mount(&dir.path().join("store"), "160m") else {
        return;
    };
    let store = fs.dir.join("store.duckdb");
    let port = tools::free_port();
    let (hook, hooks): (String, Hooks) = receiver();
    let broker = Broker::start();
    broker.create_topic(TOPIC, 1);
    let brokers = broker.bootstrap();
    let cfg = dir.path().join("c.toml");
    let configured = store.display().to_string();
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "{configured}"
[numbers]
default_region = "RU"
[email]
outbox = "outbox"
from = "calltrail@pbx.example"
[http]
listen = "127.0.0.1:{port}"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "UTC"
poll_interval_ms = 50
[kafka]
brokers = "{brokers}"
topic = "{TOPIC}"
[[rules]]
name = "vip"
when = "missed_opened"
queues = ["vip"]
action = "webhook"
url = "{hook}"
"#
        ),
    )
    .expect("config");
    let log = dir.path().join("queue_log");
    std::fs::write(&log, "").expect("queue_log");
    let mut d = Daemon::start(&cfg, &dir.path().join("d.log"));
    d.wait_http();
    let mut next = 0usize;

    // Before: stored, ready.
    append(&log, calls(next, CALLS).as_bytes());
    next += CALLS;
    let lines = |n: usize| (n * 3) as i64;
    assert!(
        wait_until(Duration::from_secs(60), || query_i64(
            &cfg,
            "SELECT count(*) FROM events"
        ) == lines(next)),
        "the first lines were not stored"
    );
    assert!(
        wait_until(Duration::from_secs(30), || readyz(port).0 == 200),
        "not ready before the disk filled: {:?}",
        readyz(port)
    );

    // The disk fills while lines keep coming. The room left takes DuckDB's
    // WAL over its checkpoint threshold (16 MiB), not the checkpoint that
    // follows (the first: it writes all the data into the store's file):
    // DuckDB invalidates the database, which is reopened (again whenever
    // that happens while the disk is full).
    assert!(
        wait_until(Duration::from_secs(60), || metric(
            port,
            "calltrail_deriver_lag_events"
        ) == Some(0.0)),
        "the state was not derived before the disk filled"
    );
    let wal = std::fs::metadata(fs.dir.join("store.duckdb.wal")).map_or(0, |m| m.len());
    let leave = (16u64 << 20).saturating_sub(wal) + (5 << 20);
    eprintln!("WAL {wal} bytes; leaving {leave} bytes free");
    let filler = fs.dir.join("filler");
    fs.fill(&filler, leave);
    // Rounds of 1,000 calls: each transaction's WAL record fits in the room
    // left over the threshold.
    let why = fill_until_not_writable(&d, &log, port, &mut next, CALLS / 2, &fs);
    assert_stopped_cleanly(&mut d, port, &why);
    let started = Instant::now();
    while metric(port, "calltrail_store_reopens_total").unwrap_or(0.0) < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "DuckDB never invalidated the store ({} calls written, {} bytes free)\n{}",
            next,
            fs.free(),
            tail(&d.log())
        );
        // The WAL stopped short of the threshold (a transaction bigger than
        // the room left): a little room back takes it over, still far from
        // what the checkpoint needs.
        fs.give_back(&filler, 1 << 20);
        // Lines appended while it cannot be written are not lost either.
        append(&log, calls(next, CALLS / 2).as_bytes());
        next += CALLS / 2;
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(d.running(), "the daemon exited:\n{}", tail(&d.log()));
    append(&log, calls(next, CALLS).as_bytes());
    next += CALLS;
    std::thread::sleep(Duration::from_secs(1));

    // Room again: it resumes by itself, from where it stopped.
    let freed = Instant::now();
    std::fs::remove_file(&filler).expect("delete the filler");
    assert!(
        wait_until(Duration::from_secs(120), || readyz(port).0 == 200),
        "not ready again after the room came back: {:?}\n{}",
        readyz(port),
        tail(&d.log())
    );
    eprintln!("ready again {:?} after the filler went", freed.elapsed());
    assert!(
        wait_until(Duration::from_secs(60), || query_i64(
            &cfg,
            "SELECT count(*) FROM events"
        ) == lines(next)),
        "not every line was stored after the room came back: {} of {}\n{}",
        query_i64(&cfg, "SELECT count(*) FROM events"),
        lines(next),
        tail(&d.log())
    );
    eprintln!("{} lines stored after the first outage", lines(next));
    assert!(
        d.log().contains("store writable again"),
        "{}",
        tail(&d.log())
    );

    // A second outage, the disk full to the last MiBs (the WAL cannot
    // grow: commits fail and roll back), ended by a bigger filesystem.
    fs.fill(&filler, 4 << 20);
    let why = fill_until_not_writable(&d, &log, port, &mut next, CALLS, &fs);
    assert_stopped_cleanly(&mut d, port, &why);
    fs.resize("400m");
    assert!(
        wait_until(Duration::from_secs(120), || readyz(port).0 == 200),
        "not ready again after the remount: {:?}\n{}",
        readyz(port),
        tail(&d.log())
    );
    append(&log, calls(next, CALLS).as_bytes());
    next += CALLS;
    let settled = wait_until(Duration::from_secs(120), || {
        query_i64(&cfg, "SELECT count(*) FROM events") == lines(next)
            && metric(port, "calltrail_deriver_lag_events") == Some(0.0)
    });
    assert!(
        settled,
        "not every line was stored (and derived) after the remount: {} of {} stored, deriver {:?} behind\n{}",
        query_i64(&cfg, "SELECT count(*) FROM events"),
        lines(next),
        metric(port, "calltrail_deriver_lag_events"),
        tail(&d.log())
    );

    // Every line exactly once, at its own offset; nothing rejected.
    let want = line_offsets(&log);
    assert_eq!(want.len() as i64, lines(next));
    let got = stored_offsets(&cfg);
    let doubled: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    let have: BTreeSet<u64> = got.keys().copied().collect();
    let lost: Vec<_> = want.difference(&have).take(10).collect();
    assert!(lost.is_empty(), "lines lost, at offsets {lost:?}…");
    assert_eq!(have, want);
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM rejects"), 0);
    // Each lost vip caller POSTed once (the receiver answers its first
    // request 503: that one is retried with the same key).
    let callers = (0..next).filter(|i| vip(*i)).count();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let h = hooks.lock().expect("hooks");
            h.iter().map(|(k, _)| k).collect::<BTreeSet<_>>().len() == callers
        }),
        "not every lost vip caller was POSTed: {:?}",
        hooks.lock().expect("hooks")
    );
    std::thread::sleep(Duration::from_secs(1));
    {
        let h = hooks.lock().expect("hooks");
        assert_eq!(h.len(), callers + 1, "a webhook was POSTed twice: {h:?}");
    }
    assert_eq!(
        query_i64(&cfg, "SELECT count(*) FROM actions WHERE status <> 'done'"),
        0
    );
    assert!(
        d.log().contains("store writable again"),
        "{}",
        tail(&d.log())
    );

    // Every event and state change on Kafka, once: the publisher kept its
    // position through the outages (its checkpoint writes were retried).
    let lags = [
        "calltrail_sink_lag_events{sink=\"kafka\"}",
        "calltrail_sink_lag_events{sink=\"kafka-state\"}",
    ];
    assert!(
        wait_until(Duration::from_secs(60), || lags.iter().all(|l| metric(
            port, l
        ) == Some(
            0.0
        ))),
        "Kafka did not catch up: {:?}",
        lags.map(|l| metric(port, l))
    );
    let changes = query_i64(&cfg, "SELECT count(*) FROM state_events") as usize;
    let on_kafka = broker.consume_settled(
        TOPIC,
        want.len() + changes,
        Duration::from_secs(90),
        Duration::from_secs(2),
    );
    let ids: Vec<&str> = on_kafka
        .iter()
        .map(|m| {
            m.headers
                .iter()
                .find(|(k, _)| k == "event_id")
                .map_or("<no event_id>", |(_, v)| v.as_str())
        })
        .collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "messages published twice");
    let from_lines: BTreeSet<u64> = ids
        .iter()
        .filter(|id| id.starts_with("q:"))
        .filter_map(|id| id.rsplit(':').next()?.parse().ok())
        .collect();
    assert_eq!(from_lines, want, "the events on Kafka are not the lines");
    assert_eq!(ids.len(), want.len() + changes);

    assert_no_flood(&d.log());

    let st = d.terminate(Duration::from_secs(60));
    assert!(st.success(), "the daemon's exit: {st:?}");
    let diffs = state_differs_from_rederived_at(&cfg, &configured, &store, &[]);
    assert!(
        diffs.is_empty(),
        "the derived state differs from a rebuild: {diffs:#?}"
    );
}
