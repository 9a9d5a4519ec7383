//! Derived state on the real binary: the samples' queue_log and Master.csv
//! give the expected episodes and derived events, a second run derives
//! nothing new, and an import of the same files changes no state.

use crate::daemon::{calltrail, query_i64, query_json};
use std::path::{Path, PathBuf};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn setup(dir: &Path) -> PathBuf {
    for f in ["queue_log", "Master.csv"] {
        std::fs::copy(samples().join(f), dir.join(f)).expect("copy sample");
    }
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
path = "s.duckdb"
[email]
outbox = "outbox"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
[[sources]]
name = "cdr"
kind = "asterisk_cdr_csv"
path = "Master.csv"
pbx = "pbx1"
timezone = "Europe/Moscow"
"#,
    )
    .expect("config");
    cfg
}

fn run_once(cfg: &Path) {
    let out = calltrail(cfg, &["run", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn derived(cfg: &Path) -> Vec<String> {
    query_json(
        cfg,
        "SELECT kind || ' ' || coalesce(caller, queue, '') || ' ' || coalesce(info, '') AS d
         FROM state_events ORDER BY ts, event_id",
    )
    .iter()
    .map(|r| r["d"].as_str().unwrap_or("").trim().to_string())
    .collect()
}

#[test]
fn samples_derive_episodes_and_state_events_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = setup(tmp.path());
    run_once(&cfg);
    let eps = query_json(
        &cfg,
        "SELECT caller, status, callback_attempts, resolved_by FROM missed_calls ORDER BY caller",
    );
    let got: Vec<String> = eps
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["caller"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
                r["callback_attempts"],
                r["resolved_by"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            "+74991112233 open 0 -",
            "+79031112233 open 1 -",
            "+79031396745 called_back 1 1795156200.190",
            "+79161234567 open 0 -",
            "+79167654321 open 0 -",
        ]
    );
    // The queue call and its CDR row are one call.
    assert_eq!(
        query_i64(
            &cfg,
            "SELECT count(*) FROM calls WHERE call_id = '1795154520.101'"
        ),
        1
    );
    let d = derived(&cfg);
    for want in [
        "missed_opened +79031396745",
        "missed_closed +79031396745 called_back",
        "first_call +79161234567",
        "last_agent_changed +79031396745",
    ] {
        assert!(d.iter().any(|x| x == want), "{want:?} not in {d:#?}");
    }
    let n = d.len();
    let dumps = |cfg: &Path| {
        [
            "SELECT * EXCLUDE (updated_at) FROM calls ORDER BY ALL",
            "SELECT * FROM callers ORDER BY ALL",
            "SELECT * FROM last_agent ORDER BY ALL",
            "SELECT * FROM missed_calls ORDER BY ALL",
            "SELECT * FROM sla_intervals ORDER BY ALL",
            "SELECT * FROM agent_status ORDER BY ALL",
        ]
        .map(|q| query_json(cfg, q))
    };
    let before = dumps(&cfg);
    // Nothing new: a second run, then an import of the same files.
    run_once(&cfg);
    let out = calltrail(
        &cfg,
        &[
            "import",
            tmp.path().join("queue_log").to_str().unwrap_or(""),
            "--source",
            "q",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(derived(&cfg).len(), n, "no new derived events");
    assert_eq!(dumps(&cfg), before, "state unchanged");
}
