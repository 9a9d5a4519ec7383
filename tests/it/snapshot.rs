//! Snapshot sources with the real binary: WinTariff DBF tables rewritten in
//! place and Oktell exports re-saved, read by `calltrail run` (`--once`
//! cycles and a live daemon, also killed with SIGKILL), checked in DuckDB.

use crate::daemon::{bin, calltrail, query_i64, query_json, Daemon};
use crate::support::wait_until;
use calltrail_parsers::hash::fnv1a64;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// ---------------------------------------------------------------- DBF writer

/// One WinTariff row (ASCII values, space-padded like dBase).
#[derive(Clone, Debug)]
struct Row {
    deleted: bool,
    calltype: String,
    callerid: String,
    ext: String,
    number: String,
    dur: String,
    date: String,
    time: String,
}

fn row(calltype: &str, callerid: &str, ext: &str, dur: u32, time: &str) -> Row {
    Row {
        deleted: false,
        calltype: calltype.into(),
        callerid: callerid.into(),
        ext: ext.into(),
        number: "84951234567".into(),
        dur: dur.to_string(),
        date: "20240127".into(),
        time: time.into(),
    }
}

const FIELDS: [(&str, u8, usize); 7] = [
    ("CALLTYPE", b'C', 10),
    ("CALLERID", b'C', 16),
    ("EXTENSION", b'C', 6),
    ("NUMBER", b'C', 20),
    ("IDURATION", b'N', 6),
    ("DATE", b'D', 8),
    ("TIME", b'C', 8),
];

fn record_len() -> usize {
    1 + FIELDS.iter().map(|f| f.2).sum::<usize>()
}

fn header_len() -> usize {
    32 + 32 * FIELDS.len() + 1
}

fn record_bytes(r: &Row) -> Vec<u8> {
    let mut b = vec![if r.deleted { b'*' } else { b' ' }];
    let values = [
        &r.calltype,
        &r.callerid,
        &r.ext,
        &r.number,
        &r.dur,
        &r.date,
        &r.time,
    ];
    for ((_, ty, len), v) in FIELDS.iter().zip(values) {
        let mut cell = v.as_bytes().to_vec();
        assert!(cell.len() <= *len);
        if *ty == b'N' {
            let mut p = vec![b' '; len - cell.len()];
            p.extend(cell);
            cell = p;
        }
        cell.resize(*len, b' ');
        b.extend(cell);
    }
    b
}

/// A dBase III table; `count` overrides the header's record count.
fn dbf(rows: &[Row], count: Option<u32>) -> Vec<u8> {
    let mut b = vec![0u8; 32];
    b[0] = 0x03;
    b[1..4].copy_from_slice(&[124, 1, 27]);
    let n = count.unwrap_or(rows.len() as u32);
    b[4..8].copy_from_slice(&n.to_le_bytes());
    b[8..10].copy_from_slice(&(header_len() as u16).to_le_bytes());
    b[10..12].copy_from_slice(&(record_len() as u16).to_le_bytes());
    b[29] = 0xC9;
    for (name, ty, len) in FIELDS {
        let mut d = [0u8; 32];
        d[..name.len()].copy_from_slice(name.as_bytes());
        d[11] = ty;
        d[16] = len as u8;
        b.extend_from_slice(&d);
    }
    b.push(0x0D);
    for r in rows {
        b.extend(record_bytes(r));
    }
    b.push(0x1A);
    b
}

// ---------------------------------------------------------------- helpers

fn write_config(dir: &Path, kind: &str, file: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("calltrail.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "store.duckdb"
[[sources]]
name = "src1"
kind = "{kind}"
path = "data/{file}"
pbx = "pbx1"
timezone = "Europe/Moscow"
poll_interval_ms = 100
[email]
outbox = "outbox"
{extra}
"#
        ),
    )
    .expect("write config");
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    cfg
}

fn wt_config(dir: &Path, grace_s: u64) -> PathBuf {
    write_config(
        dir,
        "wintariff_dbf",
        "calls.dbf",
        &format!("[snapshot.src1]\ngrace_s = {grace_s}\n"),
    )
}

fn run_once(cfg: &Path) -> String {
    let out = calltrail(cfg, &["run", "--once"]);
    assert!(
        out.status.success(),
        "run --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (event_id, verb, kind, talk_s) of every event, by event_id.
fn events(cfg: &Path) -> Vec<(String, String, String, Option<i64>)> {
    query_json(
        cfg,
        "SELECT event_id, verb, kind, talk_s FROM events ORDER BY event_id",
    )
    .into_iter()
    .map(|r| {
        (
            r["event_id"].as_str().unwrap_or_default().to_string(),
            r["verb"].as_str().unwrap_or_default().to_string(),
            r["kind"].as_str().unwrap_or_default().to_string(),
            r["talk_s"].as_i64(),
        )
    })
    .collect()
}

fn count(cfg: &Path) -> i64 {
    query_i64(cfg, "SELECT count(*) AS n FROM events")
}

/// The row id calltrail gives a record first seen at `index` (key = DATE,
/// TIME, EXTENSION raw bytes, each length-prefixed, FNV-1a 64).
fn row_id(index: usize, r: &Row) -> String {
    let rec = record_bytes(r);
    // Field offsets in the record (after the delete flag).
    let mut off = 1;
    let mut cells = Vec::new();
    for (name, _, len) in FIELDS {
        cells.push((name, &rec[off..off + len]));
        off += len;
    }
    let mut key = Vec::new();
    for want in ["DATE", "TIME", "EXTENSION"] {
        let (_, b) = cells.iter().find(|(n, _)| *n == want).unwrap();
        key.extend((b.len() as u32).to_le_bytes());
        key.extend(*b);
    }
    format!("{index}:{:016x}", fnv1a64(&key))
}

fn id(index: usize, r: &Row, v: u32) -> String {
    format!("src1:rec:{}:v{v}", row_id(index, r))
}

// ---------------------------------------------------------------- DBF tests

/// Rows appended, updated in place, deleted, packed, reused; header count
/// behind and beyond the file; a garbage record. Each row once per version.
#[test]
fn wintariff_versions_over_cycles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = wt_config(dir.path(), 3600);
    let path = dir.path().join("data/calls.dbf");

    // Cycle 1: A and C complete, B still without CALLTYPE (within grace).
    let a = row("IN", "89161234567", "201", 125, "19:23:16");
    let mut b = row("", "89261112233", "202", 0, "19:30:00");
    let c = row("OUT", "", "203", 10, "19:31:05");
    std::fs::write(&path, dbf(&[a.clone(), b.clone(), c.clone()], None)).unwrap();
    run_once(&cfg);
    assert_eq!(
        events(&cfg),
        vec![
            (
                id(0, &a, 1),
                "WINTARIFF".into(),
                "call_record".into(),
                Some(125)
            ),
            (
                id(2, &c, 1),
                "WINTARIFF".into(),
                "call_record".into(),
                Some(10)
            ),
        ]
    );
    // The same snapshot again: nothing new.
    run_once(&cfg);
    assert_eq!(count(&cfg), 2);

    // Cycle 2: B completed, A's duration corrected in place, D appended.
    b.calltype = "OUT".into();
    let mut a2 = a.clone();
    a2.dur = "130".into();
    let d = row("IN", "89031396745", "204", 40, "19:40:00");
    std::fs::write(
        &path,
        dbf(&[a2.clone(), b.clone(), c.clone(), d.clone()], None),
    )
    .unwrap();
    run_once(&cfg);
    run_once(&cfg);
    let ev = events(&cfg);
    assert_eq!(ev.len(), 5, "{ev:#?}");
    // v1 stays as it was (125); the correction is v2.
    assert!(ev.contains(&(
        id(0, &a, 1),
        "WINTARIFF".into(),
        "call_record".into(),
        Some(125)
    )));
    assert!(ev.contains(&(
        id(0, &a, 2),
        "WINTARIFF_UPDATE".into(),
        "call_record".into(),
        Some(130)
    )));
    assert!(ev.contains(&(
        id(1, &b, 1),
        "WINTARIFF".into(),
        "call_record".into(),
        Some(0)
    )));
    assert!(ev.contains(&(
        id(3, &d, 1),
        "WINTARIFF".into(),
        "call_record".into(),
        Some(40)
    )));
    let dir_b = query_json(
        &cfg,
        &format!(
            "SELECT direction, call_id, agent, ts FROM events WHERE event_id = '{}'",
            id(1, &b, 1)
        ),
    );
    assert_eq!(dir_b[0]["direction"], "outbound");
    assert_eq!(dir_b[0]["call_id"], Value::String(row_id(1, &b)));
    assert_eq!(dir_b[0]["agent"], "202");
    // 19:30 Moscow time is 16:30 UTC.
    assert!(
        dir_b[0]["ts"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-01-27") && t.contains("16:30:00")),
        "{dir_b:?}"
    );

    // Cycle 3: C deleted → a deletion marker; E appears and is deleted
    // before it was ever complete → nothing.
    let mut c_del = c.clone();
    c_del.deleted = true;
    let mut e = row("", "89160000000", "205", 0, "19:45:00");
    e.deleted = true;
    std::fs::write(
        &path,
        dbf(
            &[a2.clone(), b.clone(), c_del.clone(), d.clone(), e.clone()],
            None,
        ),
    )
    .unwrap();
    run_once(&cfg);
    run_once(&cfg);
    assert_eq!(count(&cfg), 6);
    let marker = query_json(
        &cfg,
        &format!(
            "SELECT kind, verb, call_id, talk_s FROM events WHERE event_id = '{}'",
            id(2, &c, 2)
        ),
    );
    assert_eq!(
        marker.len(),
        1,
        "deletion marker missing: {:#?}",
        events(&cfg)
    );
    assert_eq!(marker[0]["kind"], "other");
    assert_eq!(marker[0]["verb"], "WINTARIFF_DELETED");
    assert_eq!(marker[0]["call_id"], Value::String(row_id(2, &c)));

    // Cycle 4: F is on disk but the header still counts 5 → not read yet.
    let f = row("IN", "89035550000", "206", 7, "19:50:00");
    let rows5 = vec![a2.clone(), b.clone(), c_del.clone(), d.clone(), e.clone()];
    let mut rows6 = rows5.clone();
    rows6.push(f.clone());
    std::fs::write(&path, dbf(&rows6, Some(5))).unwrap();
    run_once(&cfg);
    assert_eq!(count(&cfg), 6);
    // The header now counts beyond the file (8 of 6): what is there is read.
    std::fs::write(&path, dbf(&rows6, Some(8))).unwrap();
    run_once(&cfg);
    assert_eq!(count(&cfg), 7);
    assert_eq!(
        query_i64(
            &cfg,
            &format!(
                "SELECT count(*) FROM events WHERE event_id = '{}'",
                id(5, &f, 1)
            )
        ),
        1
    );

    // Cycle 5: packed (deleted C and E removed: D and F move up) and a new
    // call G lands at index 4, where E used to be. The moved rows are the
    // same calls (matched by key): nothing re-emitted; G is a new row.
    let g = row("OUT", "", "207", 3, "20:00:00");
    let packed = vec![a2.clone(), b.clone(), d.clone(), f.clone(), g.clone()];
    std::fs::write(&path, dbf(&packed, None)).unwrap();
    run_once(&cfg);
    run_once(&cfg);
    assert_eq!(count(&cfg), 8, "{:#?}", events(&cfg));
    assert_eq!(
        query_i64(
            &cfg,
            &format!(
                "SELECT count(*) FROM events WHERE event_id = '{}'",
                id(4, &g, 1)
            )
        ),
        1,
        "{:#?}",
        events(&cfg)
    );

    // Cycle 6: a garbage record (delete flag 'X') → one reject with its
    // position; the other rows are unaffected; reading it again adds nothing.
    let mut bytes = dbf(&packed, None);
    let at = header_len() + 2 * record_len();
    bytes[at] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    run_once(&cfg);
    run_once(&cfg);
    assert_eq!(count(&cfg), 8);
    let rej = query_json(&cfg, "SELECT byte_offset, line_no, reason FROM rejects");
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert_eq!(rej[0]["byte_offset"].as_i64(), Some(at as i64));
    assert_eq!(rej[0]["line_no"].as_i64(), Some(3));
    assert!(
        rej[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("delete flag is 0x58")),
        "{rej:?}"
    );
}

/// A row without CALLTYPE is emitted after the grace time, and an update
/// follows when CALLTYPE is filled.
#[test]
fn wintariff_incomplete_row_after_grace_then_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = wt_config(dir.path(), 1);
    let path = dir.path().join("data/calls.dbf");
    let mut r = row("", "89161234567", "201", 15, "10:00:00");
    std::fs::write(&path, dbf(std::slice::from_ref(&r), None)).unwrap();
    run_once(&cfg);
    assert_eq!(count(&cfg), 0, "emitted before the grace time");
    // Due one second after it was first seen (the state survives restarts).
    assert!(
        wait_until(Duration::from_secs(30), || {
            run_once(&cfg);
            count(&cfg) == 1
        }),
        "never emitted after the grace time"
    );
    let v1 = query_json(&cfg, "SELECT event_id, direction, verb FROM events");
    assert_eq!(v1[0]["event_id"], Value::String(id(0, &r, 1)));
    assert_eq!(v1[0]["direction"], Value::Null);
    assert_eq!(v1[0]["verb"], "WINTARIFF");

    r.calltype = "IN".into();
    std::fs::write(&path, dbf(std::slice::from_ref(&r), None)).unwrap();
    run_once(&cfg);
    run_once(&cfg);
    let all = query_json(
        &cfg,
        "SELECT event_id, direction, verb FROM events ORDER BY event_id",
    );
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["event_id"], Value::String(id(0, &r, 2)));
    assert_eq!(all[1]["direction"], "inbound");
    assert_eq!(all[1]["verb"], "WINTARIFF_UPDATE");
}

/// The running daemon emits an incomplete row when its grace time passes,
/// with no change to the file to wake it.
#[test]
fn wintariff_daemon_emits_after_grace_without_a_file_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = wt_config(dir.path(), 4);
    let path = dir.path().join("data/calls.dbf");
    let r = row("", "89161234567", "201", 15, "10:00:00");
    let bytes = dbf(std::slice::from_ref(&r), None);
    std::fs::write(&path, &bytes).unwrap();
    let log = dir.path().join("daemon.log");
    let daemon = Daemon::start(&cfg, &log);
    assert!(
        wait_until(Duration::from_secs(30), || applied(&log, &bytes)),
        "{}",
        daemon.log()
    );
    let emitted = |l: &str| l.contains("snapshot applied") && l.contains("events=1");
    assert!(
        !daemon.log().lines().any(emitted),
        "emitted before the grace time:\n{}",
        daemon.log()
    );
    assert!(
        wait_until(Duration::from_secs(30), || daemon
            .log()
            .lines()
            .any(emitted)),
        "not emitted after the grace time:\n{}",
        daemon.log()
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_eq!(
        events(&cfg),
        vec![(
            id(0, &r, 1),
            "WINTARIFF".into(),
            "call_record".into(),
            Some(15)
        )]
    );
}

fn daemon_child(cfg: &Path, log: &Path) -> Child {
    Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(["--log", "calltrail=debug,info", "run"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start calltrail run")
}

fn applied(log: &Path, bytes: &[u8]) -> bool {
    let want = format!("snapshot={:016x}", fnv1a64(bytes));
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&want) && l.contains("snapshot applied"))
}

/// A live daemon follows the table as it changes, is killed with SIGKILL at
/// several points (also in the middle of committing a large snapshot), and
/// restarted: in the end every row has versions 1..N without gaps, no two
/// versions with the same content, and the last version is the final row.
#[test]
fn wintariff_daemon_survives_sigkill_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = wt_config(dir.path(), 3600);
    let path = dir.path().join("data/calls.dbf");
    let mk = |i: usize, dur: u32| {
        row(
            "IN",
            &format!("8916{i:07}"),
            &format!("{}", 100 + i % 800),
            dur,
            &format!("{:02}:{:02}:{:02}", i / 3600, (i / 60) % 60, i % 60),
        )
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut kills = 0;
    for step in 0..6u32 {
        // 3000 new rows; the durations of 500 earlier rows corrected in place.
        let base = rows.len();
        rows.extend((base..base + 3000).map(|i| mk(i, 1)));
        for r in rows.iter_mut().take(base).skip(base.saturating_sub(500)) {
            let d: u32 = r.dur.trim().parse().unwrap();
            r.dur = (d + 1).to_string();
        }
        let bytes = dbf(&rows, None);
        std::fs::write(&path, &bytes).unwrap();
        let log = dir.path().join(format!("daemon{step}.log"));
        let mut child = daemon_child(&cfg, &log);
        if step.is_multiple_of(2) {
            // Kill somewhere in the middle of reading, diffing, committing.
            assert!(
                wait_until(Duration::from_secs(60), || std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("following snapshot source")),
                "step {step}: never started"
            );
            std::thread::sleep(Duration::from_millis(20 * u64::from(step)));
        } else {
            // Kill right after the commit was logged.
            assert!(
                wait_until(Duration::from_secs(60), || applied(&log, &bytes)),
                "step {step}: snapshot never applied; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        kills += 1;
    }
    assert_eq!(kills, 6);
    // A last, clean run picks up whatever the killed ones left.
    let final_bytes = dbf(&rows, None);
    let log = dir.path().join("final.log");
    let daemon = Daemon::start(&cfg, &log);
    assert!(
        wait_until(Duration::from_secs(60), || applied(&log, &final_bytes)),
        "final snapshot never applied:\n{}",
        daemon.log()
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());

    let per_call = query_json(
        &cfg,
        "SELECT call_id, count(*) AS n, count(DISTINCT talk_s) AS distinct_talk,
                max(CAST(regexp_extract(event_id, ':v([0-9]+)$', 1) AS INTEGER)) AS max_v,
                arg_max(talk_s, CAST(regexp_extract(event_id, ':v([0-9]+)$', 1) AS INTEGER)) AS last_talk
         FROM events GROUP BY call_id ORDER BY call_id",
    );
    assert_eq!(per_call.len(), rows.len(), "every row emitted");
    let by_call: std::collections::HashMap<String, &Value> = per_call
        .iter()
        .map(|r| (r["call_id"].as_str().unwrap_or_default().to_string(), r))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let c = by_call
            .get(&row_id(i, r))
            .unwrap_or_else(|| panic!("row {i} missing"));
        let n = c["n"].as_i64().unwrap();
        assert_eq!(
            c["max_v"].as_i64(),
            Some(n),
            "row {i}: versions 1..{n} without gaps: {c}"
        );
        assert_eq!(
            c["distinct_talk"].as_i64(),
            Some(n),
            "row {i}: a content emitted twice: {c}"
        );
        assert_eq!(
            c["last_talk"].as_i64(),
            Some(i64::from(r.dur.trim().parse::<u32>().unwrap())),
            "row {i}: the last version is not the final content: {c}"
        );
    }
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM rejects"), 0);
}

/// `snapshot::import_file` (for `calltrail import`): a table is read once,
/// incomplete rows included (history has no grace); importing it again, or
/// `run` reading the same table, adds nothing.
#[test]
fn wintariff_import_file_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = wt_config(dir.path(), 3600);
    let cfg = calltrail::config::load(&cfg_path).expect("config");
    let src = cfg.sources[0].clone();
    let rows = [
        row("IN", "89161234567", "201", 125, "19:23:16"),
        row("", "89261112233", "202", 0, "19:30:00"),
        row("OUT", "", "203", 10, "19:31:05"),
    ];
    let archive = dir.path().join("archive.dbf");
    std::fs::write(&archive, dbf(&rows, None)).unwrap();
    {
        let store = calltrail::store::Store::open(&cfg.store.path).expect("store");
        let s = calltrail::snapshot::import_file(&cfg, &src, &store, &archive).expect("import");
        assert_eq!((s.lines, s.events, s.rejects), (3, 3, 0));
        let s = calltrail::snapshot::import_file(&cfg, &src, &store, &archive).expect("again");
        assert_eq!((s.lines, s.events), (3, 0));
    }
    std::fs::copy(&archive, dir.path().join("data/calls.dbf")).unwrap();
    run_once(&cfg_path);
    let ids: Vec<String> = events(&cfg_path).into_iter().map(|e| e.0).collect();
    assert_eq!(
        ids,
        vec![id(0, &rows[0], 1), id(1, &rows[1], 1), id(2, &rows[2], 1)]
    );
}

// ---------------------------------------------------------------- Oktell

const OK_HEADER: &str =
    "Id;IdChain;ConnectionType;TimeStart;TimeAnswer;TimeStop;AOutNumber;BOutNumber;ALineNum;BLineNum\n";

fn leg(id: u32, answer: &str, stop: &str) -> String {
    format!(
        "{id};{{6F9619FF-8B86-D011-B42D-00C04FC964{id:02}}};5;2024-03-01 10:15:00.000;{answer};{stop};89161234567;7101;Trunk1;7101\n"
    )
}

/// A live daemon re-reads the export: open legs are emitted once they
/// close, with the closed values; nothing twice; a garbage line is a reject.
#[test]
fn oktell_open_legs_close_across_rereads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "oktell_csv", "export.csv", "");
    let path = dir.path().join("data/export.csv");
    let log = dir.path().join("daemon.log");
    let daemon = Daemon::start(&cfg, &log);

    let write_and_wait = |text: &str| {
        std::fs::write(&path, text).unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || applied(&log, text.as_bytes())),
            "export not applied:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    // 1 closed, 2 and 3 open.
    let v1 = format!(
        "{OK_HEADER}{}{}{}",
        leg(1, "2024-03-01 10:15:05.000", "2024-03-01 10:17:05.500"),
        leg(2, "", ""),
        leg(3, "NULL", "NULL"),
    );
    write_and_wait(&v1);
    // 2 closes (answered), 3 still open, 4 new and closed unanswered, a garbage line.
    let v2 = format!(
        "{OK_HEADER}{}{}{}{}garbage;line\n",
        leg(1, "2024-03-01 10:15:05.000", "2024-03-01 10:17:05.500"),
        leg(2, "2024-03-01 10:15:10.000", "2024-03-01 10:16:10.250"),
        leg(3, "", ""),
        leg(4, "", "2024-03-01 10:15:30.000"),
    );
    write_and_wait(&v2);
    // Same content re-saved with CRLF: nothing new.
    write_and_wait(&v2.replace('\n', "\r\n"));
    // 3 closes; 1 and 2 no longer in the export (sliding window).
    let v3 = format!(
        "{OK_HEADER}{}",
        leg(3, "2024-03-01 10:15:20.000", "2024-03-01 10:20:20.000")
    );
    write_and_wait(&v3);
    assert!(daemon.terminate(Duration::from_secs(20)).success());

    let rows = query_json(
        &cfg,
        "SELECT event_id, call_id, verb, disposition, talk_s, duration_s, ended_at
         FROM events ORDER BY event_id",
    );
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["event_id"].as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "src1:leg:1:v1",
            "src1:leg:2:v1",
            "src1:leg:3:v1",
            "src1:leg:4:v1"
        ],
        "{rows:#?}"
    );
    let two = &rows[1];
    assert_eq!(two["verb"], "OKTELL");
    assert_eq!(two["disposition"], "answered");
    assert_eq!(two["talk_s"].as_i64(), Some(60));
    assert_eq!(two["duration_s"].as_i64(), Some(70));
    // 10:16:10.250 Moscow = 07:16:10.25 UTC.
    assert!(
        two["ended_at"]
            .as_str()
            .is_some_and(|t| t.contains("07:16:10.25")),
        "{two}"
    );
    assert_eq!(rows[2]["talk_s"].as_i64(), Some(300));
    assert_eq!(rows[3]["disposition"], "no_answer");
    assert_eq!(rows[3]["talk_s"], Value::Null);

    let rej = query_json(&cfg, "SELECT line_no, byte_offset, reason FROM rejects");
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert_eq!(rej[0]["line_no"].as_i64(), Some(6));
    let offset = v2.find("garbage").unwrap() as i64;
    assert_eq!(rej[0]["byte_offset"].as_i64(), Some(offset));
    assert!(
        rej[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("expected 10 fields")),
        "{rej:?}"
    );
    // The open leg 3 was remembered across re-reads, as version 0.
    assert_eq!(
        query_i64(
            &cfg,
            "SELECT count(*) FROM snapshot_rows WHERE source = 'src1' AND version = 1"
        ),
        4
    );
}
