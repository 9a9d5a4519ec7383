//! The derived state of a live `run` equals a rebuild (`rederive`) of the
//! same events when the time-dependent tables (SLA breaches, missed-call
//! episodes expiring) are decided over history read in several steps, and
//! when only the clock moves on.
//!
//! One `sales` queue, a call every 5 minutes of event time from
//! 1795154400 (2026-11-20 06:00 UTC), a third of them abandoned after 7 s
//! (not a short abandon: the service level stays below 80 %, so the queue
//! is in one service-level breach for as long as the data lasts), one in
//! seven of the rest answered after 130 s (max-wait breaches), callers
//! drawn from a small pool (missed-call episodes opened, resolved by a
//! later answer, or expired under `missed_expiry_hours = 3`).

use crate::chaos::{queue_only_config, state_differs_from_rederived_env};
use crate::daemon::{append, calltrail_env, query_i64, Daemon};
use std::path::Path;
use std::time::Duration;

const T0: i64 = 1_795_154_400;
/// Event time between two calls.
const EVERY_S: i64 = 300;
const PER_DAY: i64 = 24 * 3600 / EVERY_S;

/// The queue_log lines of calls `from..to`.
fn calls(from: i64, to: i64) -> String {
    let mut s = String::new();
    for i in from..to {
        let t = T0 + EVERY_S * i;
        let id = format!("{t}.{i}");
        // A pool of 37 callers, drawn pseudo-randomly (irregular gaps: some
        // come back before their episode expires, some after).
        let caller = format!(
            "8903139{:04}",
            ((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) % 37
        );
        s += &format!("{t}|{id}|sales|NONE|ENTERQUEUE||{caller}|1\n");
        if i % 3 == 2 {
            s += &format!("{}|{id}|sales|NONE|ABANDON|1|1|7\n", t + 7);
            continue;
        }
        let wait = if i % 7 == 3 { 130 } else { 4 };
        let a = t + wait;
        s += &format!("{a}|{id}|sales|PJSIP/201|CONNECT|{wait}|{a}.1|2\n");
        s += &format!(
            "{}|{id}|sales|PJSIP/201|COMPLETECALLER|{wait}|60|1\n",
            a + 60
        );
    }
    s
}

fn instant(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .expect("an instant")
        .to_rfc3339()
}

fn setup(dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = queue_only_config(dir, extra);
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    std::fs::write(dir.join("logs/queue_log"), "").expect("queue_log");
    cfg
}

fn run_once(cfg: &Path, now: &str) {
    let out = calltrail_env(cfg, &["run", "--once"], &[("CALLTRAIL_NOW", now)]);
    assert!(
        out.status.success(),
        "run --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Four days of history arriving a day at a time (each `run --once` one
/// derivation step over it, the way a daemon catching up takes its steps):
/// the breach going on through all of it ends where a rebuild ends it.
#[test]
fn sla_live_history_in_steps_equals_a_rebuild() {
    let tmp = tempfile::Builder::new()
        .prefix("calltrail-sla-live-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path();
    let cfg = setup(dir, "[state]\nmissed_expiry_hours = 3\n");
    let log = dir.join("logs/queue_log");
    let days = 4;
    // Ten days after the data: every call is over by this clock.
    let now = instant(T0 + 14 * 86_400);
    for day in 0..days {
        append(&log, calls(day * PER_DAY, (day + 1) * PER_DAY).as_bytes());
        run_once(&cfg, &now);
    }
    let n = |sql: &str| query_i64(&cfg, sql);
    assert_eq!(
        n("SELECT count(*) FROM calls"),
        days * PER_DAY,
        "every call stored"
    );
    assert!(n("SELECT count(*) FROM sla_breaches WHERE kind = 'service_level'") >= 1);
    assert!(n("SELECT count(*) FROM sla_breaches WHERE kind = 'max_wait'") >= 1);
    assert!(n("SELECT count(*) FROM missed_calls WHERE status = 'expired'") >= 1);
    assert!(n("SELECT count(*) FROM missed_calls WHERE status <> 'expired'") >= 1);
    let diffs = state_differs_from_rederived_env(&cfg, &[("CALLTRAIL_NOW", &now)]);
    assert!(
        diffs.is_empty(),
        "live state differs from a rebuild: {diffs:#?}"
    );
}

/// Six hours of calls and a last caller who never leaves the queue (a lost
/// line): derived just after the data, the service-level and max-wait
/// breaches are going on; seven hours later only the clock has moved and
/// the daemon's sweep must leave what a rebuild at that hour computes (the
/// window emptied, the lost caller no longer counted as waiting, the
/// episodes expired).
#[test]
fn sla_live_breaches_follow_the_clock() {
    let tmp = tempfile::Builder::new()
        .prefix("calltrail-sla-clock-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path();
    let cfg = setup(
        dir,
        "[state]\nmissed_expiry_hours = 3\nsweep_interval_s = 1\n",
    );
    let log = dir.join("logs/queue_log");
    let n_calls = 6 * 3600 / EVERY_S;
    let end = T0 + EVERY_S * n_calls;
    let mut text = calls(0, n_calls);
    text += &format!("{end}|{end}.lost|sales|NONE|ENTERQUEUE||89031399999|1\n");
    append(&log, text.as_bytes());
    run_once(&cfg, &instant(end + 300));
    let n = |sql: &str| query_i64(&cfg, sql);
    assert_eq!(
        n("SELECT count(*) FROM sla_breaches WHERE ended_at IS NULL AND kind IN ('service_level', 'max_wait')"),
        2,
        "just after the data, both breaches are going on"
    );

    let later = instant(end + 7 * 3600);
    let daemon_log = dir.join("daemon.log");
    let daemon = Daemon::start_env(&cfg, &daemon_log, &[("CALLTRAIL_NOW", &later)]);
    assert!(
        crate::support::wait_until(Duration::from_secs(60), || daemon
            .log()
            .contains("time-dependent state settled")),
        "no sweep settled anything:\n{}",
        daemon.log()
    );
    // One more sweep, to be sure the first is not half seen.
    std::thread::sleep(Duration::from_millis(1500));
    let status = daemon.terminate(Duration::from_secs(60));
    assert!(status.success(), "exit status {status:?}");
    let diffs = state_differs_from_rederived_env(&cfg, &[("CALLTRAIL_NOW", &later)]);
    assert!(
        diffs.is_empty(),
        "the swept state differs from a rebuild at the same hour: {diffs:#?}"
    );
}
