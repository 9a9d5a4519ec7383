//! The wallboard page (`/wall`) in a real headless Chromium
//! (`tests/it/browser/wall.py`, Selenium and Debian's chromedriver) on a
//! running daemon with logins configured: the board's address leads to the
//! login page and the form back to the board; then one load of the page:
//! every figure shown against what the lines written say (worked out by
//! hand below), hostile queue and agent names shown as text, appended lines
//! moving the board without a reload (append → screen times over 60
//! changes, printed with the target p99 < 1 s as PASS/MISS — enforced only
//! with CALLTRAIL_WALL_P99_STRICT, as bench/wall_screen.sh runs it on a
//! quiet machine), a source gone and the daemon killed turning the page
//! stale within their thresholds and live again, English and Russian (by
//! the browser, by the config), the layout at 1920×1080 and 1280×720, and
//! two reports with their charts; screenshots kept in the artifacts
//! directory.

use crate::daemon::{append, Daemon};
use crate::rules::daemon_config;
use crate::support::tools;
use crate::support::wait_until;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";
/// anna's password ([[http.users]]).
const PASSWORD: &str = "wallboard-pass-7";
/// The source's `stale_after_s` and `[wall] page_stale_after_s`.
const SOURCE_STALE_S: u64 = 2;
const PAGE_STALE_S: u64 = 3;
/// Appended lines in the latency run (two timed changes each).
const EVENTS: usize = 30;

/// Where screenshots and the driver's transcript go: `$CALLTRAIL_ARTIFACTS`,
/// else `$CARGO_TARGET_DIR/artifacts`, else `target/artifacts`.
fn artifacts() -> PathBuf {
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = var("CALLTRAIL_ARTIFACTS").unwrap_or_else(|| {
        var("CARGO_TARGET_DIR")
            .unwrap_or_else(|| tools::repo_root().join("target"))
            .join("artifacts")
    });
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
}

/// Keeps the test inside one UTC day ("today" is the source's day).
fn away_from_midnight() {
    let now = chrono::Utc::now();
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let next = midnight + chrono::Duration::days(1);
    let wake = if now - midnight < chrono::Duration::minutes(10) {
        midnight + chrono::Duration::minutes(10)
    } else if next - now < chrono::Duration::minutes(10) {
        next + chrono::Duration::minutes(10)
    } else {
        return;
    };
    eprintln!("wall_browser: waiting until {wake} (the test must not cross midnight)");
    std::thread::sleep((wake - now).to_std().unwrap_or_default());
}

fn api_wall(port: u16, token: &str) -> Value {
    let agent = crate::support::http_agent(Duration::from_secs(10));
    agent
        .get(&format!("http://127.0.0.1:{port}/api/wall"))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null)
}

/// The tile of `queue` as the page showed it.
fn tile<'a>(board: &'a Value, queue: &str) -> &'a Value {
    board["tiles"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["queue"] == queue))
        .unwrap_or_else(|| panic!("no tile headed {queue:?} on the page: {board:#}"))
}

/// The agents panel's row of `agent`: its cells' text.
fn agent_row(board: &Value, agent: &str) -> Vec<String> {
    board["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["agent"] == agent))
        .unwrap_or_else(|| panic!("no agent {agent:?} on the page: {board:#}"))["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_string())
        .collect()
}

/// `m:ss` or `h:mm:ss` read back as seconds.
fn seconds(shown: &str) -> i64 {
    shown
        .split(':')
        .try_fold(0i64, |acc, p| p.parse::<i64>().map(|v| acc * 60 + v))
        .unwrap_or_else(|_| panic!("not a duration: {shown:?}"))
}

fn check_tile(board: &Value, queue: &str, want: &[(&str, &str)]) {
    let t = tile(board, queue);
    for (figure, shown) in want {
        assert_eq!(
            t["figures"][figure], *shown,
            "{queue:?} {figure} on the page: {t:#}"
        );
    }
}

/// The driver, started on the page; its JSON lines come through a channel.
struct Driver {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    transcript: std::fs::File,
}

impl Driver {
    fn start(url: &str, queue_log: &Path, artifacts: &Path, day: &str) -> Driver {
        let mut child = Command::new(tools::python())
            .arg(tools::repo_root().join("tests/it/browser/wall.py"))
            .arg("--url")
            .arg(url)
            .arg("--queue-log")
            .arg(queue_log)
            .arg("--artifacts")
            .arg(artifacts)
            .arg("--chromium")
            .arg(tools::chromium())
            .arg("--chromedriver")
            .arg(tools::chromedriver())
            .arg("--events")
            .arg(EVENTS.to_string())
            .args(["--user", "anna", "--password", PASSWORD, "--day", day])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the browser driver");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let transcript =
            std::fs::File::create(artifacts.join("wall_browser.jsonl")).expect("transcript");
        Driver {
            child,
            lines,
            stderr,
            transcript,
        }
    }

    /// The next line, or `None` once the driver closed its output.
    fn next(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                let _ = writeln!(self.transcript, "{line}");
                Some(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("the driver wrote {line:?}: {e}")),
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                panic!("the browser driver did not finish in time")
            }
        }
    }

    fn answer(&mut self, at_ms: u128) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "done {at_ms}").expect("answer the driver");
        stdin.flush().expect("flush");
    }

    fn finish(mut self) -> (bool, String) {
        let ok = self.child.wait().expect("wait for the driver").success();
        (ok, self.stderr.join().unwrap_or_default())
    }
}

#[test]
fn the_wallboard_in_a_browser_shows_the_lines_live_and_goes_stale() {
    away_from_midnight();
    let artifacts = artifacts();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = tools::free_port();
    // Logins: the page needs one, from loopback too.
    let users = crate::login::passwd(&["--name", "anna"], &format!("{PASSWORD}\n"));
    let tv = crate::login::passwd(&["--token", "--name", "tv"], "");
    let tv_token = crate::login::token_of(&tv);
    let cfg = daemon_config(
        dir.path(),
        &format!(
            "\n[wall]\npage_stale_after_s = {PAGE_STALE_S}\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n{users}{tv}"
        ),
    );
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace(
            "poll_interval_ms = 50\n",
            &format!("poll_interval_ms = 50\nstale_after_s = {SOURCE_STALE_S}\n"),
        ),
    )
    .expect("config");
    let mut daemon = Some(Daemon::start(&cfg, &dir.path().join("d.log")));
    daemon.as_ref().expect("daemon").wait_http();

    // support: three agents, 203 at lunch.
    //   a1 answered by 201 after 10 s, talked 50 s (within the 20 s SLA);
    //   a2 answered by 202 after 30 s, still talking (not in the SL yet);
    //   b1 abandoned after 40 s (a missed-call episode); s1 abandoned after
    //   2 s (a short abandon: no episode); w1 waiting for 60 s.
    // sales: 301; x1 answered after 5 s, 20 s talk.
    // HOSTILE (a queue and an agent of that name): h1 answered after 4 s,
    //   30 s talk.
    let t = chrono::Utc::now().timestamp() - 300;
    let w1 = chrono::Utc::now().timestamp() - 60;
    let lines = format!(
        "{t}|NONE|support|PJSIP/201|ADDMEMBER|\n\
         {t}|NONE|support|PJSIP/202|ADDMEMBER|\n\
         {t}|NONE|support|PJSIP/203|ADDMEMBER|\n\
         {t}|NONE|sales|PJSIP/301|ADDMEMBER|\n\
         {t}|NONE|{HOSTILE}|{HOSTILE}|ADDMEMBER|\n\
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
         {x1e}|x1|sales|PJSIP/301|COMPLETEAGENT|5|20|1\n\
         {h}|h1|{HOSTILE}|NONE|ENTERQUEUE||89161110007|1\n\
         {hc}|h1|{HOSTILE}|{HOSTILE}|CONNECT|4|h1.2|1\n\
         {he}|h1|{HOSTILE}|{HOSTILE}|COMPLETEAGENT|4|30|1\n",
        p = t + 1,
        a1c = t + 10,
        a1e = t + 60,
        a2c = t + 30,
        b1e = t + 40,
        s1e = t + 2,
        x1c = t + 5,
        x1e = t + 25,
        h = t + 100,
        hc = t + 104,
        he = t + 134,
    );
    let queue_log = dir.path().join("queue_log");
    append(&queue_log, lines.as_bytes());
    // The page is opened once the daemon has taken every line in.
    let mut w = Value::Null;
    assert!(
        wait_until(Duration::from_secs(20), || {
            w = api_wall(port, &tv_token);
            let offered = |q: &str| {
                w["queues"]
                    .as_array()
                    .and_then(|qs| qs.iter().find(|x| x["queue"] == q))
                    .map(|x| x["offered_today"].clone())
            };
            offered("support") == Some(5.into())
                && offered("sales") == Some(1.into())
                && offered(HOSTILE) == Some(1.into())
                && w["queues"][0]["queue"].is_string()
                && w["agents"].as_array().is_some_and(|a| a.len() == 5)
        }),
        "{w:#}\n{}",
        daemon.as_ref().expect("daemon").log()
    );

    let today = chrono::Utc::now().date_naive().to_string();
    let mut driver = Driver::start(
        &format!("http://127.0.0.1:{port}"),
        &queue_log,
        &artifacts,
        &today,
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut steps: BTreeMap<String, Value> = BTreeMap::new();
    let mut layouts = Vec::new();
    let mut restarted_at = None;
    while let Some(v) = driver.next(deadline) {
        match v["need"].as_str() {
            Some("kill") => {
                let at = epoch_ms();
                drop(daemon.take()); // SIGKILL
                driver.answer(at);
            }
            Some("start") => {
                // Back with `[wall] language = "ru"`.
                let text = std::fs::read_to_string(&cfg).expect("config");
                std::fs::write(
                    &cfg,
                    text.replace("\n[wall]\n", "\n[wall]\nlanguage = \"ru\"\n"),
                )
                .expect("config");
                let d = Daemon::start(&cfg, &dir.path().join("d2.log"));
                d.wait_http();
                daemon = Some(d);
                let at = epoch_ms();
                restarted_at = Some(at);
                driver.answer(at);
            }
            Some(other) => panic!("the driver needs {other:?}"),
            None => {
                let step = v["step"].as_str().expect("step").to_string();
                if step == "layout" {
                    layouts.push(v);
                } else {
                    steps.insert(step, v);
                }
            }
        }
    }
    let (ok, stderr) = driver.finish();
    // The daemons' logs beside the screenshots (the deriver's passes, for
    // the latency).
    for log in ["d.log", "d2.log"] {
        let _ = std::fs::copy(
            dir.path().join(log),
            artifacts.join(format!("wall_browser.{log}")),
        );
    }
    let log = daemon.as_ref().map(|d| d.log()).unwrap_or_default();
    assert!(
        ok && steps.contains_key("end"),
        "the browser driver failed:\n{stderr}\nsteps: {:?}\ndaemon log:\n{log}",
        steps.keys().collect::<Vec<_>>()
    );
    assert!(restarted_at.is_some());

    // 1. Every figure as shown.
    let board = &steps["board"]["board"];
    assert_eq!(board["title"], "Call center", "{board:#}");
    assert_eq!(board["state"], "live", "{board:#}");
    check_tile(
        board,
        "support",
        &[
            ("waiting", "1"),
            ("service_level_today", "50%"),
            ("service_level_hour", "50%"),
            ("agents_available", "1/3"),
            ("agents_on_call", "1"),
            ("agents_paused", "1"),
            ("offered_today", "5"),
            ("answered_today", "2"),
            ("abandoned_today", "2"),
            ("asa_s", "0:20"),
            ("missed_open", "1"),
            ("callbacks_pending", "0"),
        ],
    );
    let support = tile(board, "support");
    let longest = seconds(
        support["figures"]["longest_wait_s"]
            .as_str()
            .expect("longest"),
    );
    assert!((58..=120).contains(&longest), "{support:#}");
    assert_eq!(support["reasons"], "paused: lunch: 1", "{support:#}");
    // The thresholds' colours (defaults): SL 50 % is red (below 60 %), one
    // open episode amber, one caller waiting green.
    assert_eq!(support["colours"]["service_level_today"], "red");
    assert_eq!(support["colours"]["missed_open"], "amber");
    assert_eq!(support["colours"]["waiting"], "green");
    for (queue, asa) in [("sales", "0:05"), (HOSTILE, "0:04")] {
        check_tile(
            board,
            queue,
            &[
                ("waiting", "0"),
                ("longest_wait_s", "0:00"),
                ("service_level_today", "100%"),
                ("agents_available", "1/1"),
                ("agents_on_call", "0"),
                ("agents_paused", "0"),
                ("offered_today", "1"),
                ("answered_today", "1"),
                ("abandoned_today", "0"),
                ("asa_s", asa),
                ("missed_open", "0"),
                ("callbacks_pending", "0"),
            ],
        );
    }
    let row = |b: &Value, a: &str| {
        let r = agent_row(b, a);
        // Name, state, calls, talk ("since" moves with the clock).
        assert!(!r[2].is_empty(), "{a}: {r:?}");
        vec![r[0].clone(), r[1].clone(), r[3].clone(), r[4].clone()]
    };
    assert_eq!(row(board, "201"), ["201", "available", "1", "0:50"]);
    assert_eq!(row(board, "202"), ["202", "on a call", "1", "0:00"]);
    assert_eq!(row(board, "203"), ["203", "paused (lunch)", "0", "0:00"]);
    assert_eq!(row(board, "301"), ["301", "available", "1", "0:20"]);
    assert_eq!(row(board, HOSTILE), [HOSTILE, "available", "1", "0:30"]);
    assert!(
        board["footer"]
            .as_str()
            .is_some_and(|f| f.contains("service level formula: default")),
        "{board:#}"
    );

    // 4. The hostile names are text: shown verbatim (above), no element.
    assert_eq!(tile(board, HOSTILE)["data_queue"], HOSTILE);
    for s in ["board", "after_latency", "end"] {
        let b = &steps[s]["board"];
        assert_eq!(b["img_elements"], 0, "{s}: {b:#}");
        assert_eq!(b["alerts"], serde_json::json!([]), "{s}: {b:#}");
    }
    assert_eq!(steps["end"]["dialog_open"], false);

    // 2. Live, without a reload: every append seen (p99 judged below).
    let lat = &steps["latency"];
    let count = lat["count"].as_u64().expect("count");
    assert_eq!(count, 2 * EVENTS as u64, "{lat:#}");
    let (p50, p99, max) = (
        lat["p50_ms"].as_f64().expect("p50"),
        lat["p99_ms"].as_f64().expect("p99"),
        lat["max_ms"].as_f64().expect("max"),
    );
    eprintln!("wall_browser: append → screen over {count} changes: p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms");
    // The board after 30 more calls answered by 201 after 2 s, 5 s talk:
    // offered 35, answered 32; SL (1 + 30) / (33 ended - 1 short) = 96.875 %;
    // ASA (10 + 30 + 30 × 2) / 32 = 3.1 s; 201: 31 calls, 50 + 150 s.
    let after = &steps["after_latency"]["board"];
    check_tile(
        after,
        "support",
        &[
            ("waiting", "1"),
            ("offered_today", "35"),
            ("answered_today", "32"),
            ("abandoned_today", "2"),
            ("service_level_today", "97%"),
            ("asa_s", "0:03"),
            ("agents_on_call", "1"),
        ],
    );
    assert_eq!(row(after, "201"), ["201", "available", "31", "3:20"]);

    // 3. Stale: the source within its stale_after_s (and the next board,
    // which comes every second), the daemon within page_stale_after_s.
    let src = &steps["source_stale"];
    let ms = src["stale"]["ms"].as_f64().expect("ms");
    eprintln!(
        "wall_browser: source gone → page stale in {ms:.0} ms (stale_after_s = {SOURCE_STALE_S}); back → live in {} ms",
        src["fresh"]["ms"]
    );
    // Not before the threshold; after it, with the next board (the feed
    // computes one about every 1.2 s while a screen is open).
    assert!(
        ms >= SOURCE_STALE_S as f64 * 1000.0 - 100.0
            && ms <= SOURCE_STALE_S as f64 * 1000.0 + 1500.0,
        "{src:#}"
    );
    assert_eq!(src["stale"]["status"], "DATA IS STALE: q", "{src:#}");
    assert!(src["fresh"]["ms"].as_f64().expect("ms") < 2500.0, "{src:#}");
    let gone = &steps["daemon_stale"];
    let ms = gone["stale"]["ms"].as_f64().expect("ms");
    eprintln!("wall_browser: daemon killed → page stale in {ms:.0} ms (page_stale_after_s = {PAGE_STALE_S}); daemon back → live in {} ms", steps["daemon_back"]["ms"]);
    // No board for page_stale_after_s since the last one, which came before
    // the kill; the slack is the page's timer running late on a busy machine.
    assert!(ms <= PAGE_STALE_S as f64 * 1000.0 + 500.0, "{gone:#}");
    assert_eq!(
        gone["stale"]["status"], "DATA IS STALE: no connection to calltrail",
        "{gone:#}"
    );
    // The last figures stay on screen, dimmed.
    check_tile(&gone["board"], "support", &[("offered_today", "35")]);
    let back = &steps["daemon_back"];
    assert!(back["ms"].as_f64().expect("ms") < 3000.0, "{back:#}");
    check_tile(
        &back["board"],
        "support",
        &[("offered_today", "35"), ("answered_today", "32")],
    );

    // 5. Languages.
    let ru = &steps["language_auto"]["ru"];
    assert_eq!(
        (&ru["lang"], &ru["title"]),
        (&"ru".into(), &"Колл-центр".into()),
        "{ru:#}"
    );
    assert_eq!(tile(ru, "support")["labels"]["waiting"], "ждут", "{ru:#}");
    assert_eq!(ru["heads"][0], "Оператор", "{ru:#}");
    let en = &steps["language_auto"]["en"];
    assert_eq!(
        (&en["lang"], &en["title"]),
        (&"en".into(), &"Call center".into()),
        "{en:#}"
    );
    let by_config = &steps["language_config"]["en_browser"];
    assert_eq!(by_config["title"], "Колл-центр", "{by_config:#}");
    assert_eq!(
        tile(by_config, "support")["labels"]["answered_today"],
        "отвечено"
    );
    assert_eq!(by_config["status"]["text"], "в эфире", "{by_config:#}");
    // The open page stays as it was loaded (English).
    assert_eq!(steps["end"]["board"]["title"], "Call center");

    // 6. Two screens: nothing sideways out or clipped, big figures, no
    // scrolling on a TV.
    assert_eq!(layouts.len(), 2, "{layouts:#?}");
    for l in &layouts {
        let (w, lay) = (l["size"][0].as_u64().expect("w"), &l["layout"]);
        assert_eq!(lay["width"], l["size"][0], "{l:#}");
        assert!(
            lay["scroll_width"].as_u64() <= lay["width"].as_u64(),
            "{l:#}"
        );
        assert!(
            lay["scroll_height"].as_u64() <= lay["height"].as_u64(),
            "{l:#}"
        );
        assert_eq!(lay["outside"], serde_json::json!([]), "{l:#}");
        assert_eq!(lay["clipped"], serde_json::json!([]), "{l:#}");
        let (fig, label) = (
            lay["figure_px"].as_f64().expect("figure px"),
            lay["label_px"].as_f64().expect("label px"),
        );
        let (min_fig, min_label) = if w >= 1920 {
            (32.0, 16.0)
        } else {
            (24.0, 12.0)
        };
        assert!(fig >= min_fig && label >= min_label, "{l:#}");
        let png = std::fs::read(lay["screenshot"].as_str().expect("path")).expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        // The PNG's own width and height (IHDR).
        let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
        assert_eq!(
            (u64::from(dim(16)), u64::from(dim(20))),
            (
                l["size"][0].as_u64().expect("w"),
                l["size"][1].as_u64().expect("h")
            )
        );
    }

    // Login required: the board's address led to the login page, and the
    // form back to the board.
    let login = &steps["login"];
    assert!(
        login["sent_to"]
            .as_str()
            .is_some_and(|u| u.ends_with("/login?next=%2Fwall")),
        "{login:#}"
    );
    assert!(login["landed"]
        .as_str()
        .is_some_and(|u| u.ends_with("/wall")));
    // Two reports of the day, drawn with their charts (screenshots kept).
    for (name, r) in steps["reports"]["reports"].as_object().expect("reports") {
        assert!(r["charts"].as_u64() >= Some(1), "{name}: {r:#}");
        assert!(r["rows"].as_u64() >= Some(1), "{name}: {r:#}");
        assert_eq!(r["img_elements"], 0, "{name}: {r:#}");
    }
    assert_eq!(
        steps["reports"]["reports"].as_object().map(|o| o.len()),
        Some(2)
    );

    // One page, loaded once.
    let end = &steps["end"];
    assert_eq!(end["marker_kept"], true, "the page was reloaded: {end:#}");
    assert_eq!(end["navigations"], 1, "{end:#}");
    assert!(
        end["url"].as_str().is_some_and(|u| u.ends_with("/wall")),
        "{end:#}"
    );
    // The target (p99 < 1 s) is a benchmark's figure, judged on a quiet
    // machine (bench/wall_screen.sh sets CALLTRAIL_WALL_P99_STRICT); the
    // tests run beside each other and only print it (every change must
    // still arrive, above).
    let strict = std::env::var_os("CALLTRAIL_WALL_P99_STRICT").is_some();
    println!(
        "wall_browser: p99 {p99:.0} ms: {}",
        if p99 < 1000.0 { "PASS" } else { "MISS" }
    );
    assert!(
        !strict || p99 < 1000.0,
        "append → screen p99 {p99} ms (p50 {p50} ms; the daemons' logs, with the deriver's passes, are in {})",
        artifacts.display()
    );
    drop(daemon);
}
