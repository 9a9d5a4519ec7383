//! Callbacks through AMI `Originate` against an endpoint that answers like
//! Asterisk (support::asterisk_ami): one Originate per missed caller, with
//! the caller's number only as digits in its variables; a busy caller is
//! tried again after `retry_time_s` and recorded as expired after
//! `max_retries`; a connection lost after the Originate was written leaves
//! the callback `in_doubt` — not placed again by a restart — until the CDR
//! row carrying its accountcode settles it.

use crate::daemon::{append, query_json, Daemon};
use crate::rules::daemon_config;
use crate::support::asterisk_ami::{
    AmiOptions, AmiPeer, DropAfterOriginate, DropMode, Outcome, DEFAULT_SECRET, DEFAULT_USERNAME,
};
use crate::support::wait_until;
use std::time::Duration;

fn lost(id: &str, caller: &str, at: i64) -> String {
    format!(
        "{at}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|NONE|ABANDON|1|1|30\n",
        at + 30
    )
}

/// A daemon's config calling missed callers back through the AMI peer on
/// `port`: `sources` added before, `callbacks` settings added to
/// `[callbacks]`.
fn ami_config(
    dir: &std::path::Path,
    port: u16,
    sources: &str,
    callbacks: &str,
) -> std::path::PathBuf {
    daemon_config(
        dir,
        &format!(
            r#"{sources}
[callbacks]
method = "ami"
wait_time_s = 5
{callbacks}
[callbacks.ami]
port = {port}
username = "{DEFAULT_USERNAME}"
secret = {{ env = "CT_TEST_AMI_SECRET" }}

[[rules]]
name = "cb"
when = "missed_opened"
action = "callback"
"#
        ),
    )
}

fn var<'a>(o: &'a crate::support::asterisk_ami::Originate, k: &str) -> Option<&'a str> {
    o.variables
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
}

#[test]
fn callbacks_through_ami_are_placed_once_and_settled() {
    // B (…0002) is busy; everyone else answers. The first Originate of C
    // (…0003) loses its connection before Asterisk's reply.
    let dropper = DropAfterOriginate::new(0, DropMode::BeforeReplyPlaced);
    let remaining = dropper.remaining.clone();
    let mut opts = AmiOptions::default().with_outcome(|o| {
        if var(o, "CT_NUMBER") == Some("+79161110002") {
            Outcome::Busy
        } else {
            Outcome::Answered
        }
    });
    opts.drop_after_originate = Some(dropper);
    let peer = AmiPeer::start(opts);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Master.csv"), "").expect("cdr");
    let cfg = ami_config(
        dir.path(),
        peer.port(),
        r#"
[[sources]]
name = "cdr"
kind = "asterisk_cdr_csv"
path = "Master.csv"
pbx = "pbx1"
timezone = "UTC"
poll_interval_ms = 50
"#,
        "max_retries = 1\nretry_time_s = 1",
    );
    let env = [("CT_TEST_AMI_SECRET", DEFAULT_SECRET)];
    let daemon = Daemon::start_env(&cfg, &dir.path().join("d.log"), &env);
    daemon.wait_http();
    let t = chrono::Utc::now().timestamp() - 600;
    append(
        &dir.path().join("queue_log"),
        (lost("a1", "89161110001", t)
            + &lost("b1", "89161110002", t)
            + &lost("g1", "79161110007;Application: System", t))
            .as_bytes(),
    );
    let rows = |sql: &str| query_json(&cfg, sql);
    assert!(
        wait_until(Duration::from_secs(30), || {
            rows("SELECT status FROM callbacks WHERE caller = '+79161110002' ORDER BY attempt DESC LIMIT 1")
                .first()
                .is_some_and(|r| r["status"] == "expired")
                && rows("SELECT status FROM callbacks WHERE status = 'completed'").len() == 2
        }),
        "{:?}\n{:?}\n{}",
        rows("SELECT * FROM callbacks"),
        rows("SELECT action_id, status, last_error FROM actions"),
        daemon.log()
    );
    let origs = peer.originates();
    let of = |n: &str| -> Vec<_> {
        origs
            .iter()
            .filter(|o| var(o, "CT_NUMBER") == Some(n))
            .collect()
    };
    assert_eq!(of("+79161110001").len(), 1, "{origs:?}");
    assert_eq!(of("+79161110002").len(), 2, "busy: tried twice: {origs:?}");
    let g = of("79161110007");
    assert_eq!(g.len(), 1, "{origs:?}");
    for o in &origs {
        assert!(o.async_, "{o:?}");
        assert_eq!(
            (o.context.as_str(), o.exten.as_str()),
            ("calltrail-callback", "s")
        );
        assert_eq!(o.channel, "Local/support@calltrail-queues/n");
        assert!(
            o.account.starts_with("ct") && o.account.len() == 18,
            "{o:?}"
        );
        // Nothing of the hostile caller id beyond its digits.
        for (k, v) in &o.raw {
            assert!(
                !v.contains("Application") && !v.contains("System"),
                "{k}: {v}"
            );
        }
    }
    // One row per attempt: the first failed, the retry too, and then no
    // retry was left.
    let b = rows(
        "SELECT attempt, status, placed_as FROM callbacks WHERE caller = '+79161110002' ORDER BY attempt",
    );
    let got: Vec<_> = b
        .iter()
        .map(|r| (r["attempt"].as_i64(), r["status"].as_str()))
        .collect();
    assert_eq!(
        got,
        [(Some(1), Some("failed")), (Some(2), Some("expired"))],
        "{b:?}"
    );
    assert!(
        b.iter().enumerate().all(|(i, r)| r["placed_as"]
            .as_str()
            .is_some_and(|a| a.ends_with(&format!("-{}", i + 1)))),
        "{b:?}"
    );

    // C: the connection drops after the Originate is written.
    remaining.store(1, std::sync::atomic::Ordering::SeqCst);
    append(
        &dir.path().join("queue_log"),
        lost("c1", "89161110003", t + 100).as_bytes(),
    );
    let c_status = || {
        rows("SELECT a.status, c.placed_as FROM actions a JOIN callbacks c USING (action_id) WHERE c.caller = '+79161110003'")
    };
    assert!(
        wait_until(Duration::from_secs(30), || c_status()
            .first()
            .is_some_and(|r| r["status"] == "in_doubt")),
        "{:?}\n{}",
        c_status(),
        daemon.log()
    );
    let c_count = || {
        peer.originates()
            .iter()
            .filter(|o| var(o, "CT_NUMBER") == Some("+79161110003"))
            .count()
    };
    assert_eq!(c_count(), 1);
    // A restart does not place it again.
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    let daemon = Daemon::start_env(&cfg, &dir.path().join("d2.log"), &env);
    daemon.wait_http();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(c_count(), 1);
    // The call was made: its CDR row carries the accountcode.
    let acct = peer
        .originates()
        .iter()
        .find(|o| var(o, "CT_NUMBER") == Some("+79161110003"))
        .map(|o| o.account.clone())
        .expect("C's originate");
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    append(
        &dir.path().join("Master.csv"),
        format!(
            "\"{acct}\",\"\",\"s\",\"calltrail-callback\",\"\",\"Local/support@calltrail-queues-00000001;1\",\"\",\"Queue\",\"support\",\"{now}\",\"{now}\",\"{now}\",10,9,\"ANSWERED\",\"DOCUMENTATION\",\"1796340000.77\",\"\"\n"
        )
        .as_bytes(),
    );
    assert!(
        wait_until(Duration::from_secs(30), || c_status()
            .first()
            .is_some_and(|r| r["status"] == "done")),
        "{:?}\n{}",
        c_status(),
        daemon.log()
    );
    assert_eq!(c_count(), 1);
    drop(daemon);
}

#[test]
fn ami_retries_survive_a_restart_and_an_attempt_cut_short_is_never_repeated() {
    // Both callers are always busy: B's retries go on after a SIGKILL;
    // D's row is left `placing` (a stop while its retry was being
    // placed) and is never placed again.
    let peer = AmiPeer::start(AmiOptions::default().with_outcome(|_| Outcome::Busy));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ami_config(
        dir.path(),
        peer.port(),
        "",
        "max_retries = 2\nretry_time_s = 4\nper_minute = 0",
    );
    let env = [("CT_TEST_AMI_SECRET", DEFAULT_SECRET)];
    let daemon = Daemon::start_env(&cfg, &dir.path().join("d.log"), &env);
    daemon.wait_http();
    let t = chrono::Utc::now().timestamp() - 600;
    append(
        &dir.path().join("queue_log"),
        (lost("b1", "89161110042", t) + &lost("d1", "89161110044", t)).as_bytes(),
    );
    let count = |n: &str| {
        peer.originates()
            .iter()
            .filter(|o| var(o, "CT_NUMBER") == Some(n))
            .count()
    };
    let rows = |sql: &str| query_json(&cfg, sql);
    assert!(
        wait_until(Duration::from_secs(30), || rows(
            "SELECT count(*) AS n FROM callbacks WHERE status = 'failed' AND attempt = 1"
        )[0]["n"]
            == 2),
        "{:?}\n{}",
        rows("SELECT * FROM callbacks"),
        daemon.log()
    );
    // SIGKILL between attempts.
    drop(daemon);
    assert_eq!((count("+79161110042"), count("+79161110044")), (1, 1));
    {
        let store =
            calltrail::store::Store::open(&dir.path().join("s.duckdb")).expect("open the store");
        store
            .with_conn(|c| {
                // What a claimed retry leaves: its row, `placing`.
                c.execute(
                    "INSERT INTO callbacks
                     SELECT action_id, 2, caller, episode_opened_at, queue, agent, method,
                            replace(placed_as, '-1', '-2'), 'placing', NULL, NULL, now(), now()
                     FROM callbacks WHERE caller = '+79161110044'",
                    [],
                )
                .map_err(|e| calltrail::store::StoreError::Db {
                    what: "test",
                    source: e,
                })
            })
            .expect("update");
    }
    let daemon = Daemon::start_env(&cfg, &dir.path().join("d2.log"), &env);
    daemon.wait_http();
    assert!(
        wait_until(Duration::from_secs(40), || {
            rows(
            "SELECT status FROM callbacks WHERE caller = '+79161110042' ORDER BY attempt DESC LIMIT 1"
        )
        .first()
        .is_some_and(|r| r["status"] == "expired")
        }),
        "{:?}\n{}",
        rows("SELECT * FROM callbacks"),
        daemon.log()
    );
    // B: the first attempt and max_retries more, the later ones by the
    // second daemon, each with its attempt number.
    let b: Vec<String> = peer
        .originates()
        .iter()
        .filter(|o| var(o, "CT_NUMBER") == Some("+79161110042"))
        .map(|o| o.action_id.clone())
        .collect();
    assert_eq!(b.len(), 3, "{b:?}");
    for (i, id) in b.iter().enumerate() {
        assert!(id.ends_with(&format!("-{}", i + 1)), "{b:?}");
    }
    let rows_b = rows(
        "SELECT attempt, status FROM callbacks WHERE caller = '+79161110042' ORDER BY attempt",
    );
    let statuses: Vec<_> = rows_b.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(
        statuses,
        [Some("failed"), Some("failed"), Some("expired")],
        "{rows_b:?}"
    );
    // D: never placed again; recorded unknown with the reason.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(count("+79161110044"), 1);
    let d = rows(
        "SELECT status, reason FROM callbacks WHERE caller = '+79161110044' ORDER BY attempt DESC",
    );
    assert_eq!(d[0]["status"], "unknown", "{d:?}");
    assert!(
        d[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not placed again")),
        "{d:?}"
    );
    drop(daemon);
}
