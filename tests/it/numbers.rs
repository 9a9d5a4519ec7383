//! `calltrail numbers` on the real binary: add/set/list/remove on the store
//! file, an import with a bad row in the middle applies nothing, export →
//! import into a fresh store gives the same directory, a number that does
//! not normalize is refused, an entry past its `--until` is listed as not
//! valid; while `run` holds the store the commands go through its admin
//! API (with the token it wrote next to the store) with the same answers,
//! and the directory survives the daemon's run.

use crate::daemon::{calltrail, calltrail_env, query_json, Daemon};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A config of a store only (a fresh store is created by the command),
/// with the day zone of its one source: Europe/Moscow.
fn config(dir: &Path, store: &str) -> PathBuf {
    let cfg = dir.join(format!("{store}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "{store}.duckdb"
[numbers]
default_region = "RU"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "Europe/Moscow"
"#
        ),
    )
    .expect("config");
    cfg
}

/// Runs `calltrail numbers ARGS…` as user `tester`; `Ok(stdout)` or
/// `Err(stderr)`.
fn numbers(cfg: &Path, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["numbers"];
    all.extend_from_slice(args);
    let out = calltrail_env(cfg, &all, &[("USER", "tester")]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

fn ok(cfg: &Path, args: &[&str]) -> String {
    numbers(cfg, args).unwrap_or_else(|e| panic!("numbers {args:?}: {e}"))
}

fn err(cfg: &Path, args: &[&str]) -> String {
    match numbers(cfg, args) {
        Ok(out) => panic!("numbers {args:?} succeeded: {out}"),
        Err(e) => e,
    }
}

/// `numbers list --format json`, without the times of the change (which
/// differ between two stores).
fn list(cfg: &Path) -> Vec<serde_json::Value> {
    let out = ok(cfg, &["list", "--format", "json"]);
    let mut rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("JSON");
    for r in &mut rows {
        let o = r.as_object_mut().expect("object");
        assert!(o.remove("created_at").is_some_and(|v| v.is_string()));
        assert!(o.remove("updated_at").is_some_and(|v| v.is_string()));
    }
    rows
}

fn numbers_listed(cfg: &Path) -> Vec<String> {
    list(cfg)
        .iter()
        .map(|r| r["number"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn add_set_list_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "s");
    ok(
        &cfg,
        &[
            "add",
            "8 (916) 000-00-01",
            "--class",
            "vip",
            "--name",
            "Ann\u{7} Lee",
            "--company",
            "Acme",
            "--from",
            "2026-12-01",
            "--note",
            "key account",
        ],
    );
    let e = err(&cfg, &["add", "+7 916 000 00 01"]);
    assert!(
        e.contains("already in the directory") && e.contains("numbers set"),
        "{e}"
    );
    ok(
        &cfg,
        &[
            "set",
            "+79160000001",
            "--name",
            "",
            "--agent",
            "201",
            "--class",
            "EMPLOYEE",
        ],
    );
    let rows = list(&cfg);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["number"], "+79160000001");
    assert_eq!(r["number_raw"], "8 (916) 000-00-01");
    // Changed: name cleared, agent and class set; the rest kept.
    assert_eq!(r["name"], serde_json::Value::Null);
    assert_eq!(r["agent"], "201");
    assert_eq!(r["class"], "employee");
    assert_eq!(r["company"], "Acme");
    assert_eq!(r["note"], "key account");
    // A day in the zone the sources agree on (Moscow, UTC+3).
    assert_eq!(r["valid_from"], "2026-11-30 21:00:00");
    assert_eq!(r["valid_until"], serde_json::Value::Null);
    assert_eq!(r["hits"], 0);
    assert_eq!(r["created_by"], "cli:tester");
    assert_eq!(r["updated_by"], "cli:tester");
    // The table itself, as any reader sees it.
    let stored = query_json(&cfg, "SELECT name, class FROM known_numbers");
    assert_eq!(
        stored,
        [serde_json::json!({"name": null, "class": "employee"})]
    );
    // Control characters are stripped from what is stored.
    ok(
        &cfg,
        &["set", "8 916 000 00 01", "--name", "Ann\u{7} Lee\r\n"],
    );
    assert_eq!(list(&cfg)[0]["name"], "Ann Lee");
    let e = err(&cfg, &["set", "202", "--name", "Bob"]);
    assert!(
        e.contains("not in the directory") && e.contains("numbers add"),
        "{e}"
    );
    ok(&cfg, &["remove", "89160000001"]);
    assert!(list(&cfg).is_empty());
    let e = err(&cfg, &["remove", "89160000001"]);
    assert!(e.contains("not in the directory"), "{e}");
}

#[test]
fn an_import_with_a_bad_row_applies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "s");
    ok(&cfg, &["add", "201", "--name", "Reception"]);
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "number,name,class\n\
         202,Bob,vip\n\
         201,Front desk,\n\
         \"203\",\"Carol\nSmith\",employee\n\
         204,Dan,gold\n\
         205,Eve,blacklist\n",
    )
    .expect("csv");
    let e = err(&cfg, &["import", csv.to_str().expect("utf-8 path")]);
    // The row of 204 starts on line 6 (Carol's name spans lines 4-5).
    assert!(e.contains("bad.csv:6: class \"gold\""), "{e}");
    let rows = list(&cfg);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["number"], "201");
    assert_eq!(rows[0]["name"], "Reception");
}

#[test]
fn export_then_import_into_a_fresh_store_is_the_same_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "a");
    ok(
        &cfg,
        &["add", "201", "--name", "Old name", "--class", "vip"],
    );
    let csv = dir.path().join("dir.csv");
    std::fs::write(
        &csv,
        "Note,number,name,company,class,agent,valid_from,valid_until\n\
         \"says \"\"hi\"\", twice\",+7 916 000-00-01,\"Lee, Ann\",Acme,blacklist,,2026-12-01,2026-12-31\n\
         ,201,Reception,,,,,2027-01-01T09:30:00+03:00\n\
         ,8 495 123 45 67,,Globex,employee,agent7,2026-01-01T00:00:00.25Z,\n",
    )
    .expect("csv");
    let out = ok(&cfg, &["import", csv.to_str().expect("utf-8 path")]);
    assert!(out.contains("2 added, 1 updated"), "{out}");
    let before = list(&cfg);
    assert_eq!(before.len(), 3, "{before:?}");
    let reception = before.iter().find(|r| r["number"] == "201").expect("201");
    // Replaced fields; the creation kept.
    assert_eq!(reception["name"], "Reception");
    assert_eq!(reception["class"], serde_json::Value::Null);
    assert_eq!(reception["valid_until"], "2027-01-01 06:30:00");
    let exported = ok(&cfg, &["export"]);
    assert!(
        exported.starts_with("number,name,company,class,agent,valid_from,valid_until,note\n"),
        "{exported}"
    );
    let again = dir.path().join("exported.csv");
    std::fs::write(&again, &exported).expect("write");
    let fresh = config(dir.path(), "b");
    let out = ok(&fresh, &["import", again.to_str().expect("utf-8 path")]);
    assert!(out.contains("3 added, 0 updated"), "{out}");
    assert_eq!(list(&fresh), before);
    assert_eq!(ok(&fresh, &["export"]), exported);
}

#[test]
fn a_number_that_does_not_normalize_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "s");
    for bad in ["anonymous", "+-()"] {
        let e = err(&cfg, &["add", bad, "--name", "X"]);
        assert!(
            e.contains(&format!("number {bad:?} does not normalize")),
            "{e}"
        );
    }
    let csv = dir.path().join("n.csv");
    std::fs::write(&csv, "number\n201\nunknown\n").expect("csv");
    let e = err(&cfg, &["import", csv.to_str().expect("utf-8 path")]);
    assert!(
        e.contains("n.csv:3: number \"unknown\" does not normalize"),
        "{e}"
    );
    assert!(list(&cfg).is_empty());
}

#[test]
fn an_entry_past_its_until_is_not_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "s");
    ok(&cfg, &["add", "201", "--until", "2020-01-01"]);
    ok(&cfg, &["add", "202", "--from", "2020-01-01"]);
    ok(&cfg, &["add", "203"]);
    let valid: Vec<(String, bool)> = list(&cfg)
        .iter()
        .map(|r| {
            (
                r["number"].as_str().unwrap_or("").to_string(),
                r["valid_now"].as_bool().expect("valid_now is a boolean"),
            )
        })
        .collect();
    assert_eq!(
        valid,
        [
            ("201".to_string(), false),
            ("202".to_string(), true),
            ("203".to_string(), true)
        ]
    );
    // The same store read again by another process: the entries persist.
    assert_eq!(numbers_listed(&cfg), ["201", "202", "203"]);
    let out = calltrail(&cfg, &["numbers", "list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("(3 rows)"));
}

#[test]
fn while_run_holds_the_store_the_commands_go_through_its_admin_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "s");
    std::fs::write(dir.path().join("queue_log"), "").expect("queue_log");
    crate::daemon::append(&cfg, b"[email]\noutbox = \"outbox\"\n");
    ok(&cfg, &["add", "201", "--name", "Reception"]);
    let daemon = Daemon::start(&cfg, &dir.path().join("daemon.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log().contains("HTTP API listening") {
        assert!(
            Instant::now() < deadline,
            "daemon did not start: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The admin token the daemon wrote next to the store, private.
    let token = dir.path().join("s.duckdb.admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token)
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    assert_eq!(ok(&cfg, &["add", "202", "--name", "Bob"]), "added 202\n");
    assert_eq!(ok(&cfg, &["set", "202", "--class", "vip"]), "changed 202\n");
    let e = err(&cfg, &["add", "202"]);
    assert!(e.contains("already in the directory"), "{e}");
    let e = err(&cfg, &["remove", "299"]);
    assert!(e.contains("is not in the directory"), "{e}");
    // A bad row: nothing of the file applied, cited as FILE:LINE.
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "number,name,class\n203,Carol,vip\n204,Dan,boss\n").expect("csv");
    let e = err(&cfg, &["import", &csv.to_string_lossy()]);
    assert!(e.contains("bad.csv:3") && e.contains("boss"), "{e}");
    assert_eq!(numbers_listed(&cfg), ["201", "202"]);
    std::fs::write(&csv, "number,name,class\n203,Carol,vip\n").expect("csv");
    ok(&cfg, &["import", &csv.to_string_lossy()]);
    assert_eq!(list(&cfg)[1]["class"], "vip");
    assert!(ok(&cfg, &["export"]).contains("203,Carol"));
    assert_eq!(ok(&cfg, &["remove", "203"]), "removed 203\n");
    // Who did it: recorded as coming through the API for the CLI's user.
    assert_eq!(list(&cfg)[1]["updated_by"], "api:cli:tester");
    // A wrong token is refused.
    let out = calltrail_env(
        &cfg,
        &["numbers", "add", "205"],
        &[("CALLTRAIL_ADMIN_TOKEN", "0123456789abcdef-wrong")],
    );
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("admin token"), "{e}");
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_eq!(numbers_listed(&cfg), ["201", "202"]);
    assert_eq!(list(&cfg)[0]["name"], "Reception");
}
