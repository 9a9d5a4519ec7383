//! `import` killed with SIGKILL at moments spread over its run, then run
//! again until it finishes: every line ends up stored exactly once (events
//! and rejects), whatever transaction the kills interrupted.

use crate::daemon::{bin, query_json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("calltrail.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
path = "store.duckdb"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "logs/queue_log"
pbx = "pbx1"
"#,
    )
    .expect("write config");
    cfg
}

/// (events, distinct event ids, rejects, distinct reject positions). An
/// import killed before its new store was renamed into place (a store is
/// created whole, as `<store>.creating`) left no store: nothing stored.
fn counts(cfg: &Path) -> (i64, i64, i64, i64) {
    let dir = cfg.parent().expect("the config's directory");
    if !dir.join("store.duckdb").exists() {
        assert!(
            !dir.join("store.duckdb.wal").exists(),
            "a WAL without its store"
        );
        return (0, 0, 0, 0);
    }
    let r = query_json(
        cfg,
        "SELECT (SELECT count(*) FROM events) AS e,
                (SELECT count(DISTINCT event_id) FROM events) AS ids,
                (SELECT count(*) FROM rejects) AS r,
                (SELECT count(DISTINCT byte_offset) FROM rejects) AS ro",
    );
    let g = |k: &str| r[0][k].as_i64().unwrap_or(-1);
    (g("e"), g("ids"), g("r"), g("ro"))
}

#[test]
fn an_import_killed_at_any_point_and_run_again_stores_every_line_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    // Three import transactions (245,760 lines each at most), a reject in
    // each.
    let n: u32 = 600_000;
    let mut text = String::with_capacity(n as usize * 48);
    for i in 1..=n {
        if i % 200_000 == 7 {
            text.push_str("not a queue_log line\n");
        }
        text.push_str(&format!(
            "{}|c{i}|sales|NONE|ENTERQUEUE||8916{i:07}|1\n",
            1_717_397_259 + i
        ));
    }
    let file = tmp.path().join("queue_log.1");
    std::fs::write(&file, &text).expect("write the file");
    let (events, rejects) = (i64::from(n), 3);

    // Kill after a delay that grows until an import gets to finish; the
    // store is checked after every kill.
    let mut delay = Duration::from_millis(300);
    let mut partial = 0;
    let mut kills = 0;
    loop {
        let mut child = Command::new(bin())
            .args([
                "--config",
                &cfg.display().to_string(),
                "import",
                "--no-state",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn import");
        let started = Instant::now();
        let finished = loop {
            if child.try_wait().expect("wait").is_some() {
                break true;
            }
            if started.elapsed() >= delay {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let (e, ids, r, ro) = counts(&cfg);
        assert_eq!(e, ids, "an event stored twice (after {kills} kills)");
        assert_eq!(r, ro, "a reject stored twice (after {kills} kills)");
        assert!(e <= events && r <= rejects);
        if finished {
            assert_eq!((e, r), (events, rejects), "after {kills} kills");
            break;
        }
        kills += 1;
        if e > 0 && e < events {
            partial += 1;
        }
        assert!(kills < 40, "the import never got to finish");
        delay = delay.mul_f64(1.4);
    }
    assert!(
        partial > 0,
        "no kill landed between the import's first and last commit ({kills} kills)"
    );
    eprintln!("import killed {kills} times, {partial} of them between its first and last commit");
    // And once more: nothing to add.
    let out =
        crate::daemon::calltrail(&cfg, &["import", "--no-state", &file.display().to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("0 new events, {events} duplicates skipped")),
        "{stdout}"
    );
    assert_eq!(counts(&cfg), (events, events, rejects, rejects));
}
