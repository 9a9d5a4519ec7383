//! `import` with a config that has only `[store]`: history is imported
//! before any live source is configured, under the source name, PBX and
//! time zone the command line gives (or their defaults), and the live
//! sources configured afterwards under the same names store none of it
//! again.

use crate::daemon::{calltrail_env, query_i64, query_json};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A few hours after the samples' morning (2026-11-20): their unresolved
/// missed-call episodes are still `open`.
const NOW: &str = "2026-11-20T12:00:00Z";

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// A directory with copies of the samples' queue_log and Master.csv and a
/// config of `[store]` alone.
fn setup(dir: &Path) -> PathBuf {
    for f in ["queue_log", "Master.csv"] {
        std::fs::copy(samples().join(f), dir.join(f)).expect("copy sample");
    }
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, "[store]\npath = \"s.duckdb\"\n").expect("config");
    cfg
}

fn calltrail(cfg: &Path, args: &[&str]) -> Output {
    calltrail_env(cfg, args, &[("CALLTRAIL_NOW", NOW)])
}

fn ok(cfg: &Path, args: &[&str]) -> (String, String) {
    let out = calltrail(cfg, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

fn path(dir: &Path, f: &str) -> String {
    dir.join(f).to_string_lossy().into_owned()
}

fn strings(cfg: &Path, sql: &str, col: &str) -> Vec<String> {
    query_json(cfg, sql)
        .iter()
        .map(|r| match &r[col] {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        })
        .collect()
}

/// History first, under the names, PBX and zone the live sources will
/// have; then the live sources are configured and `run` finds every line
/// already stored.
#[test]
fn import_history_without_sources_then_configure_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let cfg = setup(dir);
    let (out, _) = ok(
        &cfg,
        &[
            "import",
            "--source",
            "pbx1-queue",
            "--pbx",
            "pbx1",
            &path(dir, "queue_log"),
        ],
    );
    assert!(
        out.contains("(pbx1-queue): 33 lines, 31 new events"),
        "{out}"
    );
    let (out, err) = ok(
        &cfg,
        &[
            "import",
            "--kind",
            "asterisk_cdr_csv",
            "--source",
            "pbx1-cdr",
            "--pbx",
            "pbx1",
            "--timezone",
            "Europe/Moscow",
            &path(dir, "Master.csv"),
        ],
    );
    assert!(out.contains("(pbx1-cdr): 5 lines, 5 new events"), "{out}");
    assert!(!err.contains("taken as UTC"), "{err}");

    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 36);
    assert_eq!(
        strings(
            &cfg,
            "SELECT source || ' ' || pbx || ' ' || n AS s FROM (SELECT source, pbx, count(*) AS n FROM events GROUP BY ALL) ORDER BY 1",
            "s"
        ),
        ["pbx1-cdr pbx1 5", "pbx1-queue pbx1 31"]
    );
    // Master.csv's local times were read in Moscow time.
    assert_eq!(
        strings(
            &cfg,
            "SELECT strftime(ts, '%H:%M') AS t FROM events
             WHERE source = 'pbx1-cdr' ORDER BY ts LIMIT 1",
            "t"
        ),
        ["06:02"]
    );
    // The queue call and its CDR row are one call; the state is derived.
    assert_eq!(
        query_i64(
            &cfg,
            "SELECT count(*) FROM calls WHERE call_id = '1795154520.101'"
        ),
        1
    );
    assert!(query_i64(&cfg, "SELECT count(*) FROM calls") > 5);
    assert_eq!(
        strings(
            &cfg,
            "SELECT caller || ' ' || status AS e FROM missed_calls ORDER BY caller",
            "e"
        ),
        [
            "+74991112233 open",
            "+79031112233 open",
            "+79031396745 called_back",
            "+79161234567 open",
            "+79167654321 open",
        ]
    );

    // Now the live sources, under the names the history was imported with:
    // the lines of the files are already stored.
    let live = r#"[store]
path = "s.duckdb"
[email]
outbox = "outbox"
[[sources]]
name = "pbx1-queue"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
[[sources]]
name = "pbx1-cdr"
kind = "asterisk_cdr_csv"
path = "Master.csv"
pbx = "pbx1"
timezone = "Europe/Moscow"
[http]
enabled = false
"#;
    std::fs::write(&cfg, live).expect("config");
    let (out, _) = ok(&cfg, &["run", "--once"]);
    assert!(
        out.contains("source pbx1-queue: 33 lines read, 0 new events, 31 already stored"),
        "{out}"
    );
    assert!(
        out.contains("source pbx1-cdr: 5 lines read, 0 new events, 5 already stored"),
        "{out}"
    );
    assert_eq!(query_i64(&cfg, "SELECT count(*) FROM events"), 36);
}

/// Without any flag, the files' names tell their kinds, and the source
/// names, the PBX and the time zone are the documented defaults (with a
/// warning about the zone).
#[test]
fn import_without_sources_or_flags_uses_the_defaults() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let cfg = setup(dir);
    let (out, err) = ok(
        &cfg,
        &["import", &path(dir, "Master.csv"), &path(dir, "queue_log")],
    );
    assert!(
        out.contains("(import-default-asterisk_queue_log): 33 lines, 31 new events"),
        "{out}"
    );
    assert!(
        out.contains("(import-default-asterisk_cdr_csv): 5 lines, 5 new events"),
        "{out}"
    );
    assert!(
        err.contains("timestamps written without a zone are taken as UTC"),
        "{err}"
    );
    assert_eq!(
        strings(&cfg, "SELECT DISTINCT pbx FROM events", "pbx"),
        ["default"]
    );
    assert_eq!(
        strings(
            &cfg,
            "SELECT strftime(ts, '%H:%M') AS t FROM events
             WHERE source = 'import-default-asterisk_cdr_csv' ORDER BY ts LIMIT 1",
            "t"
        ),
        ["09:02"]
    );
    // Both kinds under one PBX: the queue call and its CDR row are one call.
    assert_eq!(
        query_i64(
            &cfg,
            "SELECT count(*) FROM calls WHERE call_id = '1795154520.101'"
        ),
        1
    );
    // Again: nothing new.
    let (out, _) = ok(&cfg, &["import", &path(dir, "queue_log")]);
    assert!(out.contains("0 new events, 31 already stored"), "{out}");
    // `rederive` and `check-config` take the config too.
    ok(&cfg, &["rederive"]);
    let (out, err) = ok(&cfg, &["check-config"]);
    assert!(out.contains(": OK (0 sources,"), "{out}");
    assert!(err.contains("no [[sources]]"), "{err}");
}

/// What cannot be defaulted is refused, with what to give instead.
#[test]
fn import_refuses_what_it_cannot_tell() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let cfg = setup(dir);
    // A name that tells no kind.
    std::fs::copy(dir.join("queue_log"), dir.join("history.txt")).expect("copy");
    let out = calltrail(&cfg, &["import", &path(dir, "history.txt")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("give --kind KIND"), "{err}");
    ok(
        &cfg,
        &[
            "import",
            "--kind",
            "asterisk_queue_log",
            &path(dir, "history.txt"),
        ],
    );
    // A source name events cannot carry.
    let out = calltrail(
        &cfg,
        &["import", "--source", "a:b", &path(dir, "queue_log")],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use letters, digits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A new name next to a configured source of the same log: a typo.
    std::fs::write(
        &cfg,
        r#"[store]
path = "s.duckdb"
[[sources]]
name = "pbx1-queue"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
"#,
    )
    .expect("config");
    let out = calltrail(
        &cfg,
        &["import", "--source", "pbx1-queu", &path(dir, "queue_log")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--source \"pbx1-queu\": no such source") && err.contains("is \"pbx1-queue\""),
        "{err}"
    );
    // Another PBX is another source: allowed.
    let (out, _) = ok(
        &cfg,
        &[
            "import",
            "--source",
            "pbx2-queue",
            "--pbx",
            "pbx2",
            &path(dir, "queue_log"),
        ],
    );
    assert!(
        out.contains("(pbx2-queue): 33 lines, 31 new events"),
        "{out}"
    );
}
