//! The tailer against real rotation on real files: logrotate-style rename
//! and copytruncate, Asterisk-style late writes to the old file, rotation
//! (and compression) while the daemon is down, CDR records split over
//! lines and header-row exports resumed mid-file, and `import` of rotated
//! sets. Every scenario ends with an exact check: each written line is in
//! DuckDB exactly once.

use crate::daemon::{append, calltrail, query_i64, query_json, Daemon};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn config(dir: &Path, sources: &str) -> PathBuf {
    let cfg = dir.join("calltrail.toml");
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
{sources}
"#
        ),
    )
    .expect("write config");
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    cfg
}

fn queue_source(extra: &str) -> String {
    format!(
        r#"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "logs/queue_log"
pbx = "pbx1"
poll_interval_ms = 100
{extra}
"#
    )
}

/// A queue_log line with a unique call id `c<i>`.
fn ql(i: u32) -> String {
    format!(
        "{}|c{i}|sales|NONE|ENTERQUEUE||8916{i:07}|1\n",
        1_717_397_259 + i
    )
}

fn lines(range: std::ops::RangeInclusive<u32>) -> String {
    range.map(ql).collect()
}

fn run_once(cfg: &Path) {
    let out = calltrail(cfg, &["run", "--once"]);
    assert!(
        out.status.success(),
        "run --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that the store holds exactly the calls `c1..=cN`, once each.
fn assert_exactly_once(cfg: &Path, n: u32) {
    let rows = query_json(
        cfg,
        "SELECT call_id, count(*) AS n FROM events GROUP BY call_id ORDER BY call_id",
    );
    let mut seen: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["call_id"].as_str().unwrap_or("?").to_string(),
                r["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    seen.sort_by_key(|(c, _)| c.trim_start_matches('c').parse::<u32>().unwrap_or(0));
    let want: Vec<(String, i64)> = (1..=n).map(|i| (format!("c{i}"), 1)).collect();
    assert_eq!(seen, want, "each line exactly once");
    let rejects = query_json(cfg, "SELECT * FROM rejects");
    assert!(rejects.is_empty(), "no rejects: {rejects:?}");
}

fn gzip(path: &Path) -> PathBuf {
    let data = std::fs::read(path).expect("read for gzip");
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create gz"),
        flate2::Compression::default(),
    );
    enc.write_all(&data).expect("gzip");
    enc.finish().expect("gzip finish");
    std::fs::remove_file(path).expect("remove uncompressed");
    gz
}

#[test]
fn restart_finishes_the_file_among_rotated_and_compressed_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path(), &queue_source(""));
    let log = tmp.path().join("logs/queue_log");
    let rotated = |n: u32| tmp.path().join(format!("logs/queue_log.{n}"));
    append(&log, lines(1..=3).as_bytes());
    run_once(&cfg);
    // While calltrail is down: more lines, then two logrotate cycles with
    // delaycompress (the file last read ends up as queue_log.2.gz).
    append(&log, lines(4..=5).as_bytes());
    std::fs::rename(&log, rotated(1)).expect("rotate 1");
    append(&log, lines(6..=7).as_bytes());
    std::thread::sleep(Duration::from_millis(20));
    std::fs::rename(rotated(1), rotated(2)).expect("shift");
    gzip(&rotated(2));
    std::fs::rename(&log, rotated(1)).expect("rotate 2");
    append(&log, lines(8..=9).as_bytes());
    run_once(&cfg);
    assert_exactly_once(&cfg, 9);
    // Nothing more to read, nothing read twice.
    append(&log, lines(10..=10).as_bytes());
    run_once(&cfg);
    assert_exactly_once(&cfg, 10);
}

#[test]
fn copytruncate_while_down_and_while_running() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path(), &queue_source(""));
    let log = tmp.path().join("logs/queue_log");
    let copy = tmp.path().join("logs/queue_log.1");
    let copytruncate = || {
        std::fs::copy(&log, &copy).expect("copy");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .expect("open")
            .set_len(0)
            .expect("truncate");
    };
    append(&log, lines(1..=3).as_bytes());
    run_once(&cfg);
    append(&log, lines(4..=6).as_bytes());
    copytruncate();
    append(&log, lines(7..=7).as_bytes());
    run_once(&cfg);
    assert_exactly_once(&cfg, 7);

    // Live: the daemon sees the truncation and finishes from the copy.
    let daemon = Daemon::start(&cfg, &tmp.path().join("daemon.log"));
    std::thread::sleep(Duration::from_millis(800));
    append(&log, lines(8..=9).as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    append(&log, lines(10..=12).as_bytes());
    copytruncate();
    append(&log, lines(13..=14).as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    let st = daemon.terminate(Duration::from_secs(20));
    assert!(st.success());
    run_once(&cfg);
    assert_exactly_once(&cfg, 14);
}

#[test]
fn late_writes_to_the_renamed_file_are_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path(), &queue_source("rotation_grace_s = 5"));
    let log = tmp.path().join("logs/queue_log");
    // Asterisk keeps its file open until `logger reload`.
    let mut asterisk = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("open");
    asterisk.write_all(lines(1..=2).as_bytes()).expect("write");
    let daemon = Daemon::start(&cfg, &tmp.path().join("daemon.log"));
    std::thread::sleep(Duration::from_millis(800));
    std::fs::rename(&log, tmp.path().join("logs/queue_log.1")).expect("rename");
    append(&log, lines(3..=3).as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    // Late line to the old file, half now and half later.
    let late = ql(4);
    asterisk.write_all(&late.as_bytes()[..10]).expect("write");
    std::thread::sleep(Duration::from_millis(300));
    asterisk.write_all(&late.as_bytes()[10..]).expect("write");
    drop(asterisk);
    append(&log, lines(5..=5).as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    let st = daemon.terminate(Duration::from_secs(20));
    assert!(st.success());
    run_once(&cfg);
    assert_exactly_once(&cfg, 5);
}

#[test]
fn delete_recreate_and_inode_reuse() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path(), &queue_source(""));
    let log = tmp.path().join("logs/queue_log");
    append(&log, lines(1..=2).as_bytes());
    run_once(&cfg);
    // Recreated under the same name (the inode may well be reused).
    std::fs::remove_file(&log).expect("rm");
    append(&log, lines(3..=5).as_bytes());
    run_once(&cfg);
    // Rewritten in place with longer content: the first line changed.
    std::fs::write(&log, lines(6..=9)).expect("rewrite");
    run_once(&cfg);
    assert_exactly_once(&cfg, 9);
}

/// The header of a Grandstream UCM CDR export (as in the reference sample).
const CDR_HEADER: &str = "Account Code,Caller Number,Callee Number,Context,CallerID Number,Source Channel,Dest. Channel,Last app.,Last date,Start Time,Answer Time,End Time,Call Time,Talk Time,Disposition,AMA Flags,Unique ID,Log Userfield,Dest Channel Extension,Caller Name,Answered by,Session,Premier Caller,Action Type,Source Trunk Name,Destination Trunk Name\n";

fn cdr_row(i: u32) -> String {
    format!(
        ",89161234{i:03},7009,from-trunk,\"\"\"Caller {i}\"\" <89161234{i:03}>\",PJSIP/trunk-{i:08x},PJSIP/7009-{i:08x},Dial,\"PJSIP/7009,30\",2026-11-20 10:{i:02}:00,2026-11-20 10:{i:02}:05,2026-11-20 10:{i:02}:45,45,40,ANSWERED,DOCUMENTATION,1763630000.{i},Inbound,7009,Caller {i},7009,1763630000{i}-89161234{i:03},89161234{i:03},DIAL,trunk1,\n"
    )
}

#[test]
fn cdr_sources_tail_multiline_records_and_resume_header_exports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        tmp.path(),
        r#"
[[sources]]
name = "master"
kind = "asterisk_cdr_csv"
path = "logs/Master.csv"
pbx = "pbx1"
timezone = "Europe/Moscow"

[[sources]]
name = "ucm"
kind = "asterisk_cdr_csv"
layout = "header_row"
path = "logs/cdr.csv"
pbx = "ucm1"
"#,
    );
    let master = tmp.path().join("logs/Master.csv");
    let ucm = tmp.path().join("logs/cdr.csv");
    // cdr_csv, 18 columns; the second record has a raw newline in lastdata.
    let r1 = "\"\",\"89161234567\",\"7009\",\"from-trunk\",\"\"\"Ivan\"\" <89161234567>\",\"PJSIP/trunk-00000001\",\"PJSIP/7009-00000002\",\"Dial\",\"PJSIP/7009,30\",\"2026-11-20 10:00:00\",\"2026-11-20 10:00:05\",\"2026-11-20 10:00:45\",45,40,\"ANSWERED\",\"DOCUMENTATION\",\"1763622000.1\",\"\"\n";
    let r2 = "\"\",\"89161234568\",\"7010\",\"from-trunk\",\"\",\"PJSIP/trunk-00000003\",\"\",\"AGI\",\"script.agi,line one\nline two\",\"2026-11-20 10:01:00\",\"\",\"2026-11-20 10:01:10\",10,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1763622060.2\",\"\"\n";
    append(&master, r1.as_bytes());
    // Half of r2 (up to inside the quoted newline) first.
    let cut = r2.find('\n').expect("newline") + 3;
    append(&master, &r2.as_bytes()[..cut]);
    append(&ucm, CDR_HEADER.as_bytes());
    append(&ucm, (1..=2).map(cdr_row).collect::<String>().as_bytes());
    run_once(&cfg);
    append(&master, &r2.as_bytes()[cut..]);
    // Resumed mid-file: the parser still needs the header row.
    append(&ucm, (3..=4).map(cdr_row).collect::<String>().as_bytes());
    run_once(&cfg);
    let rows = query_json(
        &cfg,
        "SELECT source, call_id, caller, callee, disposition, info, ts::VARCHAR AS ts FROM events ORDER BY source, call_id",
    );
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}|{}|{}",
                r["source"].as_str().unwrap_or(""),
                r["call_id"].as_str().unwrap_or(""),
                r["caller"].as_str().unwrap_or(""),
                r["callee"].as_str().unwrap_or(""),
                r["disposition"].as_str().unwrap_or(""),
                r["ts"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            "master|1763622000.1|+79161234567|7009|answered|2026-11-20 07:00:00",
            "master|1763622060.2|+79161234568|7010|no_answer|2026-11-20 07:01:00",
            "ucm|1763630000.1|+79161234001|7009|answered|2026-11-20 10:01:00",
            "ucm|1763630000.2|+79161234002|7009|answered|2026-11-20 10:02:00",
            "ucm|1763630000.3|+79161234003|7009|answered|2026-11-20 10:03:00",
            "ucm|1763630000.4|+79161234004|7009|answered|2026-11-20 10:04:00",
        ]
    );
    let info = &rows[1]["info"];
    assert_eq!(info.as_str(), Some("AGI(script.agi,line one\nline two)"));
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM rejects"), 0);
}

#[test]
fn import_reads_rotated_sets_oldest_first_and_adds_nothing_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path(), &queue_source(""));
    let dir = tmp.path().join("logs");
    let log = dir.join("queue_log");
    std::fs::write(dir.join("queue_log.2"), lines(1..=3)).expect("w");
    let gz = gzip(&dir.join("queue_log.2"));
    std::fs::write(dir.join("queue_log.1"), lines(4..=6) + "garbage line\n").expect("w");
    std::fs::write(&log, lines(7..=8)).expect("w");
    let args = |paths: &[&Path]| {
        let mut v: Vec<String> = vec!["import".into()];
        v.extend(paths.iter().map(|p| p.display().to_string()));
        v
    };
    // Given newest first on purpose.
    let a = args(&[&log, &dir.join("queue_log.1"), &gz]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = calltrail(&cfg, &a);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "imported 3 file(s): 9 lines, 8 new events, 0 duplicates skipped, 1 rejected"
        ),
        "{stdout}"
    );
    let order: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().split(' ').next())
        .filter(|p| p.contains("queue_log"))
        .collect();
    assert!(
        order[0].ends_with("queue_log.2.gz")
            && order[1].ends_with("queue_log.1")
            && order[2].ends_with("queue_log"),
        "oldest first: {order:?}"
    );
    let out = calltrail(&cfg, &a);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("9 lines, 0 new events, 8 duplicates skipped"),
        "{stdout}"
    );
    // The live file was imported: tailing it adds nothing either.
    run_once(&cfg);
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 8);
    let r = query_json(&cfg, "SELECT line_no, byte_offset, reason FROM rejects");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["line_no"].as_i64(), Some(4));
}

#[test]
fn import_and_tailing_store_identical_events() {
    // `import` stores queue_log lines through the parser's zero-copy path,
    // `run` through owned events: the rows must be the same.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/queue_log");
    let dump = "SELECT * EXCLUDE (seq, ingested_at) FROM events ORDER BY event_id";
    let mut dumps = Vec::new();
    for mode in ["run", "import"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = config(tmp.path(), &queue_source("timezone = \"Europe/Moscow\""));
        let log = tmp.path().join("logs/queue_log");
        std::fs::copy(&sample, &log).expect("copy sample");
        let out = if mode == "run" {
            calltrail(&cfg, &["run", "--once"])
        } else {
            calltrail(&cfg, &["import", log.to_str().unwrap_or("")])
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dumps.push(query_json(&cfg, dump));
    }
    assert_eq!(dumps[0].len(), 31);
    assert_eq!(dumps[0], dumps[1]);
}

#[test]
fn a_bulk_import_of_more_than_a_transaction_stores_what_tailing_stores() {
    // More lines than one import transaction (two of DuckDB's row groups,
    // inserted through DuckDB's Arrow scan on its threads), with a reject on
    // each side of the first transaction's end: the rows are exactly those
    // `run` stores line by line, with `seq`s 1..=N, and a re-import adds
    // nothing.
    let n: u32 = 250_000;
    let mut text = String::with_capacity(n as usize * 48);
    for i in 1..=n {
        if i == 1_000 || i == 245_700 {
            text.push_str("garbage line\n");
        }
        text.push_str(&ql(i));
    }
    let digest = "SELECT count(*) AS n, count(DISTINCT seq) AS seqs, min(seq) AS lo,
        max(seq) AS hi, sum(hash(event_id, source_kind, source, pbx, ts, kind, verb, call_id,
        linked_id, peer_call_id, queue, agent, agent_raw, caller, caller_raw, caller_name,
        callee, callee_raw, direction, disposition, wait_s, talk_s, ring_ms, duration_s,
        position, orig_position, answered_at, ended_at, info, data)::HUGEINT)::VARCHAR AS digest,
        (SELECT count(*) FROM rejects) AS rejects FROM events";
    let mut digests = Vec::new();
    for mode in ["run", "import"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = config(tmp.path(), &queue_source(""));
        let log = tmp.path().join("logs/queue_log");
        std::fs::write(&log, &text).expect("write the log");
        let args: &[&str] = if mode == "run" {
            &["run", "--once"]
        } else {
            &["import", "--no-state", log.to_str().unwrap_or("")]
        };
        let out = calltrail(&cfg, args);
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = query_json(&cfg, digest);
        assert_eq!(d[0]["n"].as_i64(), Some(i64::from(n)), "{mode}: {d:?}");
        assert_eq!(d[0]["seqs"].as_i64(), Some(i64::from(n)), "{mode}: {d:?}");
        assert_eq!(d[0]["rejects"].as_i64(), Some(2), "{mode}: {d:?}");
        if mode == "import" {
            assert_eq!(d[0]["lo"].as_i64(), Some(1), "{d:?}");
            assert_eq!(d[0]["hi"].as_i64(), Some(i64::from(n)), "{d:?}");
            let out = calltrail(&cfg, args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(&format!("0 new events, {n} duplicates skipped")),
                "{stdout}"
            );
            assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), i64::from(n));
        }
        digests.push(d[0]["digest"].clone());
    }
    assert_eq!(digests[0], digests[1]);
}

/// A queue source whose file holds `c1`, `c2`: (dir, config, log path).
fn two_lines_written() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path(), &queue_source(""));
    let log = tmp.path().join("logs/queue_log");
    append(&log, lines(1..=2).as_bytes());
    (tmp, cfg, log)
}

/// Puts `content` at `path` in one step (written elsewhere, renamed in), as
/// a rotation that the tailer never saw happen leaves it.
fn appear(path: &Path, content: &str) {
    let tmp = path.with_file_name("staging.tmp");
    std::fs::write(&tmp, content).expect("write staging file");
    std::fs::rename(&tmp, path).expect("rename into place");
}

#[test]
fn a_rotated_file_with_lines_never_read_is_found_while_running() {
    // A file copytruncated before the tailer read its first line leaves the
    // live file as it was (empty): only the copy tells.
    let (tmp, cfg, log) = two_lines_written();
    let daemon = Daemon::start(&cfg, &tmp.path().join("daemon.log"));
    std::thread::sleep(Duration::from_millis(800));
    appear(&tmp.path().join("logs/queue_log.1"), &lines(3..=4));
    append(&log, lines(5..=5).as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    let st = daemon.terminate(Duration::from_secs(20));
    assert!(st.success());
    // Read by the running daemon, not by a later start.
    assert_exactly_once(&cfg, 5);
    run_once(&cfg);
    assert_exactly_once(&cfg, 5);
}

#[test]
fn a_rotated_file_with_lines_never_read_is_found_after_a_restart() {
    // While calltrail is down, lines reach a rotated name without ever
    // being at the live path when it looked (here under a dated name while
    // the file last read is still live and unchanged).
    let (tmp, cfg, log) = two_lines_written();
    run_once(&cfg);
    appear(&tmp.path().join("logs/queue_log-20261122"), &lines(3..=4));
    append(&log, lines(5..=5).as_bytes());
    run_once(&cfg);
    assert_exactly_once(&cfg, 5);
    run_once(&cfg);
    assert_exactly_once(&cfg, 5);
}

#[test]
fn an_archive_being_written_is_not_read_as_text_and_is_read_once_done() {
    // logrotate-style compression of content never read: first the archive
    // under a temporary name (gzip bytes a text reader would reject), then
    // the finished `.gz`.
    let (tmp, cfg, log) = two_lines_written();
    let daemon = Daemon::start(&cfg, &tmp.path().join("daemon.log"));
    std::thread::sleep(Duration::from_millis(800));
    let plain = tmp.path().join("logs/staging-plain");
    std::fs::write(&plain, lines(3..=400)).expect("write");
    let gz = gzip(&plain);
    let head = std::fs::read(&gz).expect("read gz");
    assert!(
        head.contains(&b'\n'),
        "the archive must hold a newline byte for a text reader to take it for a line"
    );
    let partial = tmp.path().join("logs/queue_log.1.gz.tmp");
    std::fs::rename(&gz, &partial).expect("rename");
    std::thread::sleep(Duration::from_millis(800));
    std::fs::rename(&partial, tmp.path().join("logs/queue_log.1.gz")).expect("rename");
    append(&log, lines(401..=401).as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    let st = daemon.terminate(Duration::from_secs(20));
    assert!(st.success());
    assert_exactly_once(&cfg, 401);
}
