//! `[store] memory_budget` (`src/config/budget.rs`) on the real binary: an
//! `import` under the smallest budget (128MB: DuckDB 64 MB on one thread,
//! batches of one row group, derivation steps of 20,000 events) stores and
//! derives exactly what the default budget does (steps of 44,800 events
//! there); check-config refuses a budget too small and a `memory_limit`
//! beyond the budget and says what to do; bulk work lowers its priority
//! (logged), and `--no-nice` keeps it.

use crate::daemon::{calltrail, query_json};
use std::path::{Path, PathBuf};

/// Calls of a history (about 2.7 lines each): two queues, ten agents, 5,000
/// callers; a third of the calls abandoned.
const CALLS: u32 = 30_000;

fn history(path: &Path) -> u64 {
    use std::fmt::Write;
    let start: u64 = 1_717_200_000;
    let mut text = String::new();
    let mut lines = 0;
    for i in 0..CALLS {
        let t = start + u64::from(i) * 7;
        let call = format!("{t}.{i}");
        let queue = ["sales", "support"][(i % 2) as usize];
        let caller = 79_031_000_000u64 + u64::from(i % 5_000);
        let agent = format!("PJSIP/20{}", i % 10);
        let _ = writeln!(text, "{t}|{call}|{queue}|NONE|ENTERQUEUE||{caller}|1");
        if i % 3 == 0 {
            let _ = writeln!(text, "{}|{call}|{queue}|NONE|ABANDON|1|1|5", t + 5);
            lines += 2;
        } else {
            let _ = writeln!(text, "{}|{call}|{queue}|{agent}|CONNECT|3|{call}1|2", t + 3);
            let _ = writeln!(
                text,
                "{}|{call}|{queue}|{agent}|COMPLETECALLER|3|60|1",
                t + 63
            );
            lines += 3;
        }
    }
    std::fs::write(path, text).expect("write history");
    lines
}

fn config(dir: &Path, store: &str) -> PathBuf {
    let cfg = dir.join("calltrail.toml");
    std::fs::write(
        &cfg,
        format!("[store]\npath = \"store.duckdb\"\n{store}\n[numbers]\ndefault_region = \"RU\"\n"),
    )
    .expect("write config");
    cfg
}

/// Every table an import writes, each as a row count and an
/// order-independent digest of its rows (wall-clock columns left out).
fn digests(cfg: &Path) -> Vec<serde_json::Value> {
    [
        "events EXCLUDE (seq, ingested_at)",
        "rejects EXCLUDE (rejected_at)",
        // The state changes keyed by caller and episode only: the others
        // are found by comparing a step's keys before and after it
        // (docs/schema.md), so a bulk derivation in smaller steps records
        // more of them (a last agent that changed twice; an old episode
        // seen expired at the end of a step that the next one's line
        // returns; a breach's figures as of each step).
        "state_events EXCLUDE (seq, ingested_at) WHERE kind IN ('first_call', 'missed_opened')",
        "calls EXCLUDE (updated_at)",
        "callers",
        "last_agent",
        "missed_calls",
        "sla_intervals",
        "sla_breaches",
        "agent_status",
    ]
    .iter()
    .map(|t| {
        let (table, rest) = t.split_once(' ').unwrap_or((t, ""));
        let (exclude, filter) = rest.split_once(" WHERE ").unwrap_or((rest, "true"));
        let sql = format!(
            "SELECT '{table}' AS t, count(*) AS n, sum(hash(r))::VARCHAR AS digest \
             FROM (SELECT * {exclude} FROM {table} WHERE {filter}) AS r"
        );
        query_json(cfg, &sql).remove(0)
    })
    .collect()
}

fn import(cfg: &Path, extra: &[&str], file: &Path) -> String {
    let mut args = vec![
        "--log",
        "debug",
        "import",
        "--pbx",
        "pbx1",
        "--timezone",
        "UTC",
    ];
    args.extend_from_slice(extra);
    let file = file.to_string_lossy();
    args.push(file.as_ref());
    let out = calltrail(cfg, &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "import failed:\n{err}");
    err
}

#[test]
fn the_smallest_budget_imports_and_derives_what_the_default_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("queue_log");
    let lines = history(&file);

    let tiny = dir.path().join("tiny");
    std::fs::create_dir_all(&tiny).expect("dir");
    let tiny_cfg = config(&tiny, "memory_budget = \"128MB\"");
    let log = import(&tiny_cfg, &[], &file);
    // DuckDB got its floor and one thread; the batches and steps their
    // smallest sizes.
    for needle in [
        "memory_limit: 64000000",
        "threads: 1,",
        "import_batch: 122880",
        "derive_step: 20000",
        "bulk work at a lower CPU and IO priority",
    ] {
        assert!(log.contains(needle), "{needle:?} not in:\n{log}");
    }

    let wide = dir.path().join("default");
    std::fs::create_dir_all(&wide).expect("dir");
    let wide_cfg = config(&wide, "");
    let log = import(&wide_cfg, &["--no-nice"], &file);
    assert!(log.contains("memory_limit: 204800000"), "{log}");
    assert!(log.contains("derive_step: 22400"), "{log}");
    assert!(
        !log.contains("lower CPU and IO priority"),
        "--no-nice keeps the priority:\n{log}"
    );

    let (a, b) = (digests(&tiny_cfg), digests(&wide_cfg));
    assert_eq!(a, b, "the same tables under either budget");
    assert_eq!(a[0]["n"], lines, "every line one event: {a:?}");
    assert_eq!(a[1]["n"], 0, "{a:?}");
    assert_eq!(a[3]["n"], u64::from(CALLS), "one stint per call: {a:?}");
    assert!(a.iter().skip(2).all(|t| t["n"].as_u64() > Some(0)), "{a:?}");
    assert_eq!(
        a[2]["n"], 15_000,
        "5,000 first calls, 10,000 episodes: {a:?}"
    );
    // The step-dependent ones: smaller steps record at least as many.
    let changes = |cfg: &Path| {
        crate::daemon::query_i64(
            cfg,
            "SELECT count(*) FROM state_events WHERE kind NOT IN ('first_call', 'missed_opened')",
        )
    };
    let (small_steps, big_steps) = (changes(&tiny_cfg), changes(&wide_cfg));
    assert!(
        big_steps > 0 && small_steps >= big_steps,
        "{small_steps} {big_steps}"
    );
}

#[test]
fn check_config_keeps_memory_limit_within_the_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "memory_budget = \"64MB\"");
    let out = calltrail(&cfg, &["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store.memory_budget: expected at least 128MB")
            && err.contains("found \"64MB\""),
        "{err}"
    );
    let cfg = config(dir.path(), "memory_limit = \"1GB\"");
    let out = calltrail(&cfg, &["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "store.memory_limit: expected at most store.memory_budget (\"512MB\", the default)"
        ) && err.contains("raise memory_budget too")
            && err.contains("found \"1GB\""),
        "{err}"
    );
    // `import` and `rederive` refuse it the same way.
    let out = calltrail(&cfg, &["rederive"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("store.memory_limit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = config(
        dir.path(),
        "memory_budget = \"2GB\"\nmemory_limit = \"1GB\"\nthreads = 1",
    );
    let out = calltrail(&cfg, &["check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // rederive applies it and lowers its priority.
    let out = calltrail(&cfg, &["--log", "debug", "rederive"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("memory_limit: 1000000000"), "{err}");
    assert!(err.contains("threads: 1,"), "{err}");
    assert!(
        err.contains("bulk work at a lower CPU and IO priority"),
        "{err}"
    );
}
