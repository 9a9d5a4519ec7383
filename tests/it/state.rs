//! Derived state on the real binary: the samples' queue_log and Master.csv
//! give the expected episodes and derived events, a second run derives
//! nothing new, and an import of the same files changes no state. The
//! samples are of one morning (2026-11-20): these runs fix the derived
//! state's clock shortly after it (`CALLTRAIL_NOW`), so that what they
//! expect does not depend on the day the tests run.

use crate::daemon::{append, calltrail, calltrail_env, query_i64, query_json, Daemon};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// A few hours after the samples' last call (06:40 UTC): every episode
/// they leave unresolved is still `open` ([state] missed_expiry_hours 168).
const SAMPLES_NOW: &str = "2026-11-20T12:00:00Z";

/// Runs `calltrail ARGS…` with the derived state's clock fixed at `now`.
fn at(cfg: &Path, now: &str, args: &[&str]) -> std::process::Output {
    let out = calltrail_env(cfg, args, &[("CALLTRAIL_NOW", now)]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run_once(cfg: &Path) {
    at(cfg, SAMPLES_NOW, &["run", "--once"]);
}

/// `caller status` of every missed-call episode.
fn episodes(cfg: &Path) -> Vec<String> {
    query_json(
        cfg,
        "SELECT caller, status FROM missed_calls ORDER BY caller",
    )
    .iter()
    .map(|r| {
        format!(
            "{} {}",
            r["caller"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or("")
        )
    })
    .collect()
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
    at(
        &cfg,
        SAMPLES_NOW,
        &[
            "import",
            tmp.path().join("queue_log").to_str().unwrap_or(""),
            "--source",
            "q",
        ],
    );
    assert_eq!(derived(&cfg).len(), n, "no new derived events");
    assert_eq!(dumps(&cfg), before, "state unchanged");
}

/// The derived state's "now" is the clock `CALLTRAIL_NOW` fixes, not the
/// system's: the same stored events give `open` episodes an hour after the
/// last miss and `expired` ones eight days later (past the 168 h expiry),
/// whatever the day the test runs; a value that is no instant is refused.
#[test]
fn the_clock_decides_when_episodes_expire() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = setup(tmp.path());
    // The samples' last miss: 09:40 Moscow time (Master.csv).
    let out = at(&cfg, "2026-11-20T07:40:00Z", &["run", "--once"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("clock fixed at 2026-11-20T07:40:00+00:00"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let open = vec![
        "+74991112233 open",
        "+79031112233 open",
        "+79031396745 called_back",
        "+79161234567 open",
        "+79167654321 open",
    ];
    assert_eq!(episodes(&cfg), open);
    at(&cfg, "2026-11-28T07:40:00Z", &["rederive"]);
    assert_eq!(
        episodes(&cfg),
        vec![
            "+74991112233 expired",
            "+79031112233 expired",
            "+79031396745 called_back",
            "+79161234567 expired",
            "+79167654321 expired",
        ]
    );
    // Expired a week after each last miss, whatever the clock said then.
    assert_eq!(
        query_i64(
            &cfg,
            "SELECT count(*) FROM missed_calls WHERE status = 'expired'
               AND resolved_at = last_missed_at + INTERVAL 168 HOUR"
        ),
        4
    );
    // And back: the state is a function of the events and the clock.
    at(&cfg, "2026-11-20T07:40:00Z", &["rederive"]);
    assert_eq!(episodes(&cfg), open);
    let out = calltrail_env(&cfg, &["rederive"], &[("CALLTRAIL_NOW", "last tuesday")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CALLTRAIL_NOW=\"last tuesday\" is not an RFC 3339 instant"),
        "{err}"
    );
}

/// Polls `sql` (through the running daemon) until it returns `want` rows.
fn wait_rows(cfg: &Path, sql: &str, want: usize, daemon: &Daemon) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The daemon may not have created the store yet.
        let out = calltrail(cfg, &["query", "--format", "json", sql]);
        let rows: Vec<serde_json::Value> = if out.status.success() {
            serde_json::from_slice(&out.stdout).unwrap_or_default()
        } else {
            Vec::new()
        };
        if out.status.success() && rows.len() == want {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {} rows, want {want}; log:\n{}",
            rows.len(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_caller_waiting_too_long_is_a_breach_while_it_happens() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("c.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
path = "s.duckdb"
[email]
outbox = "outbox"
[rules.missed_call_email]
enabled = false
[state]
sweep_interval_s = 1
[state.breach]
max_wait_s = 2
gap_s = 0
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
poll_interval_ms = 100
"#,
    )
    .expect("config");
    let log = tmp.path().join("queue_log");
    let now = chrono::Utc::now().timestamp();
    append(
        &log,
        format!("{now}|w1|sales|NONE|ENTERQUEUE||89161234567|1\n").as_bytes(),
    );
    let daemon = Daemon::start(&cfg, &tmp.path().join("daemon.log"));
    // No new line arrives: the clock alone starts the breach.
    let open_breach = "SELECT kind, value FROM sla_breaches WHERE ended_at IS NULL";
    let rows = wait_rows(&cfg, open_breach, 1, &daemon);
    assert_eq!(rows[0]["kind"], "max_wait");
    let answered = chrono::Utc::now().timestamp();
    append(
        &log,
        format!(
            "{answered}|w1|sales|PJSIP/201|CONNECT|{}|w1.2|1\n",
            answered - now
        )
        .as_bytes(),
    );
    wait_rows(&cfg, open_breach, 0, &daemon);
    let ended = query_json(
        &cfg,
        "SELECT kind FROM state_events WHERE kind IN ('sla_breach_started', 'sla_breach_ended') ORDER BY seq",
    );
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}
