//! `GET /api/wall` on a running daemon: every figure of a queue's tile and
//! of the agents panel against what the lines written say (worked out by
//! hand below, independently of the SQL), the figures moving as lines
//! arrive, a `?queues=` filter, and a source whose file went away turning
//! the board stale within its `stale_after_s`, and fresh again.

use crate::daemon::{append, Daemon};
use crate::rules::daemon_config;
use crate::support::wait_until;
use serde_json::Value;
use std::time::Duration;

fn http_port(cfg: &std::path::Path) -> u16 {
    let text = std::fs::read_to_string(cfg).expect("config");
    let at = text.find("[http]").expect("[http]");
    let listen = text[at..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("listen = "))
        .expect("listen");
    listen
        .trim_matches('"')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

fn wall(port: u16, query: &str) -> Value {
    let agent = crate::support::http_agent(Duration::from_secs(10));
    let mut r = agent
        .get(&format!("http://127.0.0.1:{port}/api/wall{query}"))
        .call()
        .expect("GET /api/wall");
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("JSON")
}

fn tile<'a>(w: &'a Value, queue: &str) -> &'a Value {
    w["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == queue))
        .unwrap_or_else(|| panic!("no tile for {queue}: {w:#}"))
}

fn agent<'a>(w: &'a Value, id: &str) -> &'a Value {
    w["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["agent"] == id))
        .unwrap_or_else(|| panic!("no agent {id}: {w:#}"))
}

#[test]
fn the_wall_shows_what_the_lines_say_and_goes_stale_when_the_source_does() {
    // "Today" is the UTC day of the source: keep every line inside it.
    let now = chrono::Utc::now();
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    if now - midnight < chrono::Duration::minutes(10) {
        std::thread::sleep(
            (midnight + chrono::Duration::minutes(10) - now)
                .to_std()
                .unwrap_or_default(),
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(dir.path(), "");
    // The common config's source, made quick to go stale.
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace(
            "poll_interval_ms = 50\n",
            "poll_interval_ms = 50\nstale_after_s = 2\n",
        ),
    )
    .expect("config");
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    daemon.wait_http();
    let port = http_port(&cfg);
    let t = chrono::Utc::now().timestamp() - 300;
    // Three agents in support; 203 goes to lunch.
    // a1: answered by 201 after 10 s, talked 50 s (within the 20 s SLA).
    // a2: answered by 202 after 30 s, still talking (not yet in the SL).
    // b1: abandoned after 40 s (a missed-call episode opens).
    // s1: abandoned after 2 s (a short abandon: no episode).
    // w1: entered 60 s ago, still waiting.
    // x1: another queue, answered.
    let w1 = chrono::Utc::now().timestamp() - 60;
    let lines = format!(
        "{t}|NONE|support|PJSIP/201|ADDMEMBER|\n\
         {t}|NONE|support|PJSIP/202|ADDMEMBER|\n\
         {t}|NONE|support|PJSIP/203|ADDMEMBER|\n\
         {p}|NONE|support|PJSIP/203|PAUSE|lunch\n\
         {t}|a1|support|NONE|ENTERQUEUE||89161110001|1\n\
         {a1c}|a1|support|PJSIP/201|CONNECT|10|a1.2|1\n\
         {a1e}|a1|support|PJSIP/201|COMPLETECALLER|10|50|1\n\
         {t}|a2|support|NONE|ENTERQUEUE||89161110002|1\n\
         {a2c}|a2|support|PJSIP/202|CONNECT|30|a2.2|1\n\
         {t}|b1|support|NONE|ENTERQUEUE||89161110003|1\n\
         {b1e}|b1|support|NONE|ABANDON|1|1|40\n\
         {t}|s1|support|NONE|ENTERQUEUE||89161110004|1\n\
         {s1e}|s1|support|NONE|ABANDON|1|1|2\n\
         {w1}|w1|support|NONE|ENTERQUEUE||89161110005|1\n\
         {t}|x1|sales|NONE|ENTERQUEUE||89161110006|1\n\
         {x1c}|x1|sales|PJSIP/301|CONNECT|5|x1.2|1\n\
         {x1e}|x1|sales|PJSIP/301|COMPLETEAGENT|5|20|1\n",
        p = t + 1,
        a1c = t + 10,
        a1e = t + 60,
        a2c = t + 30,
        b1e = t + 40,
        s1e = t + 2,
        x1c = t + 5,
        x1e = t + 25,
    );
    let queue_log = dir.path().join("queue_log");
    append(&queue_log, lines.as_bytes());
    let mut w = Value::Null;
    assert!(
        wait_until(Duration::from_secs(20), || {
            w = wall(port, "");
            w["queues"]
                .as_array()
                .and_then(|qs| qs.iter().find(|q| q["queue"] == "support"))
                .is_some_and(|q| q["offered_today"] == 5 && q["missed_open"] == 1)
        }),
        "{w:#}\n{}",
        daemon.log()
    );
    assert_eq!(w["stale"], false, "{w:#}");
    assert_eq!(w["service_level_formula"], "default");
    let s = tile(&w, "support");
    let want = [
        ("waiting", 1),
        ("offered_today", 5),
        ("answered_today", 2),
        ("abandoned_today", 2),
        ("agents_logged_in", 3),
        ("agents_available", 1),
        ("agents_on_call", 1),
        ("agents_paused", 1),
        ("missed_open", 1),
        ("callbacks_pending", 0),
    ];
    for (k, v) in want {
        assert_eq!(s[k], v, "{k}: {s:#}");
    }
    let longest = s["longest_wait_s"].as_i64().expect("longest");
    assert!((58..=90).contains(&longest), "{s:#}");
    assert_eq!(s["pause_reasons"]["lunch"], 1, "{s:#}");
    // Ended stints: a1 answered within 20 s, b1 abandoned, s1 a short
    // abandon: 1 / (3 - 1).
    assert_eq!(s["service_level_today"], 0.5, "{s:#}");
    assert_eq!(s["service_level_hour"], 0.5, "{s:#}");
    // Answered today: a1 after 10 s, a2 after 30 s.
    assert_eq!(s["asa_s"], 20.0, "{s:#}");
    let sales = tile(&w, "sales");
    assert_eq!(
        (
            &sales["offered_today"],
            &sales["answered_today"],
            &sales["service_level_today"]
        ),
        (&Value::from(1), &Value::from(1), &Value::from(1.0)),
        "{sales:#}"
    );
    let a201 = agent(&w, "201");
    assert_eq!(
        (&a201["state"], &a201["calls_today"], &a201["talk_s_today"]),
        (&Value::from("available"), &Value::from(1), &Value::from(50)),
        "{a201:#}"
    );
    let a202 = agent(&w, "202");
    assert_eq!(a202["state"], "on_call", "{a202:#}");
    assert_eq!(a202["calls_today"], 1, "{a202:#}");
    let a203 = agent(&w, "203");
    assert_eq!(
        (&a203["state"], &a203["pause_reason"]),
        (&Value::from("paused"), &Value::from("lunch")),
        "{a203:#}"
    );
    assert!(a203["since"].as_str().is_some(), "{a203:#}");

    // The filter: only sales, and only its agents.
    let only = wall(port, "?queues=sales");
    let names: Vec<_> = only["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["queue"].clone())
        .collect();
    assert_eq!(names, [Value::from("sales")]);
    assert!(
        only["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .all(|a| a["agent"] == "301"),
        "{only:#}"
    );

    // w1 is answered: waiting drops, answered grows.
    let now = chrono::Utc::now().timestamp();
    append(
        &queue_log,
        format!("{now}|w1|support|PJSIP/201|CONNECT|60|w1.2|1\n").as_bytes(),
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            w = wall(port, "");
            let s = tile(&w, "support");
            s["waiting"] == 0 && s["answered_today"] == 3 && s["agents_on_call"] == 2
        }),
        "{w:#}"
    );

    // The source's file goes away: stale within stale_after_s (2 s), and
    // fresh again once it is back.
    let gone = dir.path().join("queue_log.away");
    std::fs::rename(&queue_log, &gone).expect("rename");
    let started = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || {
            w = wall(port, "");
            w["stale"] == true
        }),
        "{w:#}"
    );
    let after = started.elapsed();
    // Stale 2 s after the reader last found the file, which is up to one
    // poll (50 ms) before the rename.
    assert!(
        after >= Duration::from_millis(1900),
        "stale after {after:?}"
    );
    assert!(after < Duration::from_secs(5), "stale only after {after:?}");
    assert_eq!(w["stale_sources"], serde_json::json!(["q"]), "{w:#}");
    std::fs::rename(&gone, &queue_log).expect("rename back");
    assert!(
        wait_until(Duration::from_secs(10), || wall(port, "")["stale"] == false),
        "{}",
        daemon.log()
    );
    drop(daemon);
}
