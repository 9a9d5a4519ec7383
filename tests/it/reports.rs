//! `GET /reports/<name>` on a running daemon fed the simulated call-center
//! day (tests/it/sim) live, with ~4 % of its lines held back and written
//! after everything else was stored and derived (late lines, stamped in the
//! day): every figure of every report, as JSON, against the same figures
//! computed from the simulation's ground truth (`reports/expect.rs`, no
//! SQL), and the CSV export cell for cell against the JSON. Then a day that
//! crosses Europe/Berlin's DST change (2026-03-29, 23 hours) in that zone,
//! and a small store with hostile queue, agent and directory names: escaped
//! in the page, never a formula in the CSV; bad parameters are a 400.

mod expect;

use crate::daemon::{append, calltrail, query_json, Daemon};
use crate::sim::expect_party::Expiry;
use crate::sim::render::{render, Line};
use crate::sim::rng::Rng;
use crate::sim::truth::{Day, Ts};
use crate::sim::{cast, day};
use crate::support::wait_until;
use expect::{Range, Row};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SEED: u64 = 0x5EED_2026_1120;

/// The reports' config: the queue_log source's zone decides the PBX's
/// calendar (its first source); the CDR is written in Moscow time.
fn config(dir: &Path, zone: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    let aliases: String = cast::ALIASES
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
        .collect();
    let cfg = dir.join("calltrail.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "store.duckdb"
[numbers]
default_region = "RU"
[agents.aliases]
{aliases}
[email]
outbox = "outbox"
[rules.missed_call_email]
enabled = false
[wall]
language = "en"

[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "logs/queue_log"
pbx = "pbx1"
timezone = "{zone}"
poll_interval_ms = 100

[[sources]]
name = "master"
kind = "asterisk_cdr_csv"
path = "logs/Master.csv"
pbx = "pbx1"
timezone = "Europe/Moscow"
poll_interval_ms = 100
"#
        ),
    )
    .expect("write config");
    cfg
}

fn http_port(cfg: &Path) -> u16 {
    let text = std::fs::read_to_string(cfg).expect("config");
    let at = text.find("[http]").expect("[http]");
    text[at..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("listen = "))
        .and_then(|l| l.trim_matches('"').rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// An answer: status, content type, content disposition, body.
struct Answer {
    status: u16,
    ctype: String,
    disposition: String,
    csp: String,
    body: String,
}

fn get(port: u16, path: &str) -> Answer {
    let agent = crate::support::http_agent(Duration::from_secs(60));
    let mut r = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (ctype, disposition, csp) = (
        h("content-type"),
        h("content-disposition"),
        h("content-security-policy"),
    );
    Answer {
        status: r.status().as_u16(),
        ctype,
        disposition,
        csp,
        body: r.body_mut().read_to_string().expect("body"),
    }
}

fn json_of(port: u16, path: &str) -> Value {
    let a = get(port, path);
    assert_eq!(a.status, 200, "GET {path}: {}", a.body);
    assert!(a.ctype.starts_with("application/json"), "{}", a.ctype);
    serde_json::from_str(&a.body).expect("JSON")
}

/// Everything the daemon read is stored and derived.
fn settled(cfg: &Path, lines: i64) -> bool {
    let rows = query_json(
        cfg,
        "SELECT (SELECT count(*) FROM events) AS n,
                coalesce((SELECT seq FROM sink_checkpoints WHERE sink = 'state'), -1)
                  >= (SELECT coalesce(max(seq), 0) FROM events) AS derived",
    );
    rows.first()
        .is_some_and(|r| r["n"].as_i64() == Some(lines) && r["derived"] == json!(true))
}

/// The simulated day fed to a running daemon: most lines, then (once they
/// are stored and derived) the late ones. Returns the daemon and its port.
struct Site {
    _dir: tempfile::TempDir,
    _daemon: Daemon,
    port: u16,
}

fn site(day: &Day, zone: &str, now: Ts, names: &[(&str, &str)]) -> Site {
    let files = render(day);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), zone);
    for (number, name) in names {
        let out = calltrail(&cfg, &["numbers", "add", number, "--name", name]);
        assert!(
            out.status.success(),
            "numbers add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut rng = Rng::new(SEED ^ 0x1A7E);
    let (mut late, mut on_time) = (Vec::new(), Vec::new());
    for (file, lines) in [
        ("logs/queue_log", &files.queue_log),
        ("logs/Master.csv", &files.master_csv),
    ] {
        let (mut l, mut o) = (String::new(), String::new());
        for Line { text, .. } in lines.iter() {
            if rng.chance(0.04) {
                l.push_str(&format!("{text}\n"));
            } else {
                o.push_str(&format!("{text}\n"));
            }
        }
        late.push((file, l));
        on_time.push((file, o));
    }
    for (file, text) in &on_time {
        append(&dir.path().join(file), text.as_bytes());
    }
    let now_s = chrono::DateTime::from_timestamp(now, 0)
        .expect("now")
        .to_rfc3339();
    let daemon = Daemon::start_env(
        &cfg,
        &dir.path().join("daemon.log"),
        &[("CALLTRAIL_NOW", now_s.as_str())],
    );
    daemon.wait_http();
    let count = |t: &[(&str, String)]| t.iter().map(|(_, s)| s.lines().count() as i64).sum::<i64>();
    let first = count(&on_time);
    assert!(
        wait_until(Duration::from_secs(120), || settled(&cfg, first)),
        "the daemon did not store and derive {first} lines:\n{}",
        daemon.log()
    );
    for (file, text) in &late {
        append(&dir.path().join(file), text.as_bytes());
    }
    let all = first + count(&late);
    println!("   {} lines, {} of them late", all, all - first);
    assert!(
        wait_until(Duration::from_secs(120), || settled(&cfg, all)),
        "the daemon did not store and derive the late lines:\n{}",
        daemon.log()
    );
    Site {
        port: http_port(&cfg),
        _dir: dir,
        _daemon: daemon,
    }
}

/// A filtered report: its path, the model, the column and value kept, the key.
type Narrowed = (
    &'static str,
    expect::Expected,
    &'static str,
    Value,
    &'static [&'static str],
);

const TIME_COLS: [&str; 7] = [
    "opened_at",
    "last_missed_at",
    "resolved_at",
    "first_seen_at",
    "first_answered_at",
    "last_at",
    "interval_start",
];

/// A JSON row with its times as epoch seconds.
fn epochs(v: &Value) -> BTreeMap<String, Value> {
    v.as_object()
        .expect("row object")
        .iter()
        .map(|(k, v)| {
            let v = match v.as_str() {
                Some(s) if TIME_COLS.contains(&k.as_str()) => {
                    json!(chrono::DateTime::parse_from_rfc3339(s)
                        .unwrap_or_else(|e| panic!("{k}={s}: {e}"))
                        .timestamp())
                }
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

/// Compares a report's rows and summary with the model's; differences go
/// to `failed`.
fn check(failed: &mut Vec<String>, what: &str, got: &Value, exp: &expect::Expected, key: &[&str]) {
    let rows: Vec<BTreeMap<String, Value>> = got["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no rows: {got}"))
        .iter()
        .map(epochs)
        .collect();
    let key_of = |r: &dyn Fn(&str) -> Value| -> String {
        key.iter()
            .map(|k| r(k).to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut by_key: BTreeMap<String, &BTreeMap<String, Value>> = BTreeMap::new();
    for r in &rows {
        by_key.insert(key_of(&|k| r.get(k).cloned().unwrap_or(Value::Null)), r);
    }
    let before = failed.len();
    for e in &exp.0 {
        let k = key_of(&|k| e.get(k).cloned().unwrap_or(Value::Null));
        let Some(g) = by_key.remove(&k) else {
            failed.push(format!("{what}: row {k} missing; expected {e:?}"));
            continue;
        };
        for (col, want) in e {
            let have = g.get(*col).unwrap_or(&Value::Null);
            if !same(want, have) {
                failed.push(format!("{what}: row {k}: {col} = {have}, expected {want}"));
            }
        }
    }
    for k in by_key.keys() {
        failed.push(format!("{what}: unexpected row {k}"));
    }
    for (col, want) in &exp.1 {
        let have = &got["summary"][col];
        if !same(want, have) {
            failed.push(format!("{what}: summary {col} = {have}, expected {want}"));
        }
    }
    println!(
        "   {what}: {} rows, {} summary figures, {} differences",
        rows.len(),
        exp.1.len(),
        failed.len() - before
    );
}

/// What a CSV cell must be for a JSON value (the formula guard on text).
fn csv_form(col: &str, v: &Value) -> String {
    let guard = |s: &str| match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    };
    match v {
        Value::Null => String::new(),
        Value::String(s) if col == "status" || TIME_COLS.contains(&col) => s.clone(),
        Value::String(s) => guard(s),
        Value::Array(items) => guard(
            &items
                .iter()
                .map(|i| {
                    format!(
                        "{}={}/{}",
                        i["reason"].as_str().unwrap_or(""),
                        i["pauses"],
                        i["paused_s"]
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => other.to_string(),
    }
}

/// The CSV export of `path` holds the JSON answer's rows, cell for cell.
fn check_csv(failed: &mut Vec<String>, port: u16, path: &str, json: &Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let a = get(port, &format!("{path}{sep}format=csv"));
    assert_eq!(a.status, 200, "{path} as CSV: {}", a.body);
    assert_eq!(a.ctype, "text/csv; charset=utf-8");
    assert!(
        a.disposition
            .starts_with("attachment; filename=\"calltrail-")
            && a.disposition.ends_with(".csv\""),
        "{}",
        a.disposition
    );
    let mut r = csv::Reader::from_reader(a.body.as_bytes());
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let cols: Vec<String> = json["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().expect("name").to_string())
        .collect();
    if header != cols {
        failed.push(format!(
            "{path}: CSV header {header:?}, JSON columns {cols:?}"
        ));
        return;
    }
    let rows = json["rows"].as_array().expect("rows");
    let records: Vec<csv::StringRecord> = r.records().map(|x| x.expect("record")).collect();
    if records.len() != rows.len() {
        failed.push(format!(
            "{path}: {} CSV rows, {} JSON rows",
            records.len(),
            rows.len()
        ));
    }
    for (rec, row) in records.iter().zip(rows) {
        for (i, col) in cols.iter().enumerate() {
            let want = csv_form(col, &row[col.as_str()]);
            let have = rec.get(i).unwrap_or("");
            let numeric_same = row[col.as_str()]
                .as_f64()
                .zip(have.parse::<f64>().ok())
                .is_some_and(|(x, y)| x == y);
            if want != have && !numeric_same {
                failed.push(format!("{path}: CSV {col} = {have:?}, JSON {want:?}"));
            }
        }
    }
}

/// Every report of `from..=to` against the model; returns the failures.
fn check_all(
    port: u16,
    day: &Day,
    range: &Range,
    dates: &str,
    names: &BTreeMap<&str, &str>,
) -> Vec<String> {
    let mut failed = Vec::new();
    let expiry = Expiry {
        after_s: 168 * 3600,
        now: range.now,
    };
    let cases: Vec<(String, expect::Expected, &[&str])> = vec![
        (
            "calls_by_queue".into(),
            expect::calls_by_queue(day, range),
            &["queue"][..],
        ),
        (
            "calls_by_agent".into(),
            expect::calls_by_agent(day, range),
            &["agent"][..],
        ),
        (
            "calls_by_hour".into(),
            expect::calls_by_hour(day, range),
            &["hour"][..],
        ),
        (
            "agent_activity".into(),
            expect::agent_activity(day, range),
            &["agent"][..],
        ),
        (
            "missed".into(),
            expect::missed(day, range, expiry, names),
            &["caller", "opened_at"][..],
        ),
        (
            "new_callers".into(),
            expect::new_callers(day, range, names),
            &["caller"][..],
        ),
        (
            "outbound".into(),
            expect::outbound(day, range, names),
            &["agent", "callee"][..],
        ),
        (
            "service_level".into(),
            expect::service_level(day, range, false, "default"),
            &["interval_start", "queue"][..],
        ),
        (
            "service_level&formula=asterisk_sl".into(),
            expect::service_level(day, range, false, "asterisk_sl"),
            &["interval_start", "queue"][..],
        ),
        (
            "service_level&formula=abandons_positive&interval=day".into(),
            expect::service_level(day, range, true, "abandons_positive"),
            &["interval_start", "queue"][..],
        ),
    ];
    for (name, exp, key) in cases {
        let (report, extra) = name.split_once('&').unwrap_or((name.as_str(), ""));
        let path = format!(
            "/reports/{report}?{dates}{}{extra}",
            if extra.is_empty() { "" } else { "&" }
        );
        let got = json_of(port, &format!("{path}&format=json"));
        check(
            &mut failed,
            &format!("{report}?{dates}{extra}"),
            &got,
            &exp,
            key,
        );
        check_csv(&mut failed, port, &path, &got);
        let page = get(port, &path);
        if page.status != 200 || !page.body.contains("<table") {
            failed.push(format!(
                "{path}: the page is {} without a table",
                page.status
            ));
        }
    }
    failed
}

fn at(s: &str) -> Ts {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .timestamp()
}

/// A few callers of the day get directory names (one hostile).
fn directory(day: &Day) -> Vec<(String, &'static str)> {
    let mut parties: Vec<&str> = day.calls.iter().filter_map(|c| c.party()).collect();
    parties.sort_unstable();
    parties.dedup();
    let picks = ["ООО Ромашка", "=HYPERLINK(\"http://x\")", "<b>VIP</b>"];
    parties
        .into_iter()
        .filter(|p| p.starts_with("+7"))
        .step_by(7)
        .zip(picks)
        .map(|(p, n)| (p.to_string(), n))
        .collect()
}

#[test]
fn every_report_matches_the_simulated_day_with_late_lines() {
    // 08:00 Moscow on 2026-11-20; "now" an hour after the day's end.
    let start = at("2026-11-20T05:00:00Z");
    let day = day::generate(SEED, start);
    let now = day.cutoff + 3600;
    let dir_names = directory(&day);
    let names: BTreeMap<&str, &str> = dir_names.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let pairs: Vec<(&str, &str)> = dir_names.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    println!(
        "simulated day: {} calls, {} missed",
        day.calls.len(),
        expect::missed_calls(&day)
    );
    let s = site(&day, "Europe/Moscow", now, &pairs);
    let tz: chrono_tz::Tz = "Europe/Moscow".parse().expect("zone");
    let range = Range {
        r0: at("2026-11-19T21:00:00Z"),
        r1: at("2026-11-20T21:00:00Z"),
        now,
        tz,
    };
    let mut failed = check_all(
        s.port,
        &day,
        &range,
        "from=2026-11-20&to=2026-11-20",
        &names,
    );
    // A wider range holds the same day; the day before holds nothing.
    let wide = Range {
        r0: at("2026-11-18T21:00:00Z"),
        ..range
    };
    failed.extend(check_all(
        s.port,
        &day,
        &wide,
        "from=2026-11-19&to=2026-11-20",
        &names,
    ));
    let before = json_of(
        s.port,
        "/reports/calls_by_queue?from=2026-11-19&to=2026-11-19&format=json",
    );
    assert_eq!(before["rows"], json!([]), "{before}");
    // Filters: one queue, one agent.
    let q = json_of(
        s.port,
        "/reports/calls_by_queue?from=2026-11-20&to=2026-11-20&queue=support&format=json",
    );
    let (all, _) = expect::calls_by_queue(&day, &range);
    let support: Vec<&Row> = all
        .iter()
        .filter(|r| r["queue"] == json!("support"))
        .collect();
    check(
        &mut failed,
        "calls_by_queue?queue=support",
        &q,
        &(support.into_iter().cloned().collect(), Row::new()),
        &["queue"],
    );
    let a = json_of(
        s.port,
        "/reports/calls_by_agent?from=2026-11-20&to=2026-11-20&agent=201&format=json",
    );
    let (all, _) = expect::calls_by_agent(&day, &range);
    let one: Vec<Row> = all
        .into_iter()
        .filter(|r| r["agent"] == json!("201"))
        .collect();
    assert_eq!(one.len(), 1);
    check(
        &mut failed,
        "calls_by_agent?agent=201",
        &a,
        &(one, Row::new()),
        &["agent"],
    );
    // More filters: the same rows as unfiltered, narrowed.
    let expiry = Expiry {
        after_s: 168 * 3600,
        now,
    };
    let narrowed: [Narrowed; 4] = [
        (
            "missed?queue=sales",
            expect::missed(&day, &range, expiry, &names),
            "queue",
            json!("sales"),
            &["caller", "opened_at"],
        ),
        (
            "new_callers?queue=billing",
            expect::new_callers(&day, &range, &names),
            "queue",
            json!("billing"),
            &["caller"],
        ),
        (
            "outbound?agent=202",
            expect::outbound(&day, &range, &names),
            "agent",
            json!("202"),
            &["agent", "callee"],
        ),
        (
            "agent_activity?agent=203",
            expect::agent_activity(&day, &range),
            "agent",
            json!("203"),
            &["agent"],
        ),
    ];
    for (what, (rows, _), col, value, key) in narrowed {
        let got = json_of(
            s.port,
            &format!("/reports/{what}&from=2026-11-20&to=2026-11-20&format=json"),
        );
        let rows: Vec<Row> = rows.into_iter().filter(|r| r[col] == value).collect();
        assert!(!rows.is_empty(), "{what}: the model has no rows");
        check(&mut failed, what, &got, &(rows, Row::new()), key);
    }
    // Directory names are shown next to the numbers.
    let missed = json_of(
        s.port,
        "/reports/missed?from=2026-11-20&to=2026-11-20&format=json",
    );
    println!("   missed summary: {}", missed["summary"]);
    assert!(
        missed["summary"]["called_back"].as_i64() > Some(0)
            && missed["summary"]["open"].as_i64() > Some(0)
            && missed["summary"]["returned"].as_i64() > Some(0),
        "the day has every kind of episode: {}",
        missed["summary"]
    );
    let named = [
        "calls_by_agent",
        "agent_activity",
        "missed",
        "new_callers",
        "outbound",
    ]
    .iter()
    .map(|r| {
        get(
            s.port,
            &format!("/reports/{r}?from=2026-11-20&to=2026-11-20"),
        )
        .body
    })
    .collect::<String>();
    assert!(
        named.contains("ООО Ромашка") || named.contains("&lt;b&gt;VIP&lt;&#x2f;b&gt;"),
        "no directory name on any page"
    );
    assert!(
        !named.contains("<b>VIP</b>"),
        "a directory name reached the page as markup"
    );
    assert!(
        failed.is_empty(),
        "reports differ from the model:\n  {}",
        failed.join("\n  ")
    );
}

#[test]
fn reports_take_the_pbx_calendar_day_across_dst() {
    // Europe/Berlin springs forward on 2026-03-29 at 02:00 (01:00 UTC): the
    // day has 23 hours. The simulated 12 hours run from 21:00 CET on the
    // 28th to 10:00 CEST on the 29th.
    let start = at("2026-03-28T20:00:00Z");
    let day = day::generate(SEED ^ 0xD57, start);
    let now = day.cutoff + 3600;
    let s = site(&day, "Europe/Berlin", now, &[]);
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
    let names = BTreeMap::new();
    let d29 = Range {
        r0: at("2026-03-28T23:00:00Z"),
        r1: at("2026-03-29T22:00:00Z"),
        now,
        tz,
    };
    let d28 = Range {
        r0: at("2026-03-27T23:00:00Z"),
        r1: at("2026-03-28T23:00:00Z"),
        now,
        tz,
    };
    let both = Range { r0: d28.r0, ..d29 };
    let mut failed = check_all(s.port, &day, &d29, "from=2026-03-29&to=2026-03-29", &names);
    failed.extend(check_all(
        s.port,
        &day,
        &d28,
        "from=2026-03-28&to=2026-03-28",
        &names,
    ));
    failed.extend(check_all(
        s.port,
        &day,
        &both,
        "from=2026-03-28&to=2026-03-29",
        &names,
    ));
    // The hour that did not exist has no calls; the days split at Berlin's midnight.
    let h = json_of(
        s.port,
        "/reports/calls_by_hour?from=2026-03-29&to=2026-03-29&format=json",
    );
    assert_eq!(h["rows"][2]["offered"], json!(0), "{}", h["rows"][2]);
    let q28 = json_of(
        s.port,
        "/reports/calls_by_queue?from=2026-03-28&to=2026-03-28&format=json",
    );
    let q29 = json_of(
        s.port,
        "/reports/calls_by_queue?from=2026-03-29&to=2026-03-29&format=json",
    );
    let stints: i64 = day.calls.iter().map(|c| c.stints.len() as i64).sum();
    let (a, b) = (
        q28["summary"]["offered"].as_i64().unwrap_or(0),
        q29["summary"]["offered"].as_i64().unwrap_or(0),
    );
    println!("   2026-03-28: {a} stints, 2026-03-29: {b}, the day: {stints}");
    assert!(a > 0 && b > 0 && a + b == stints, "{a} + {b} != {stints}");
    assert!(
        failed.is_empty(),
        "reports differ from the model:\n  {}",
        failed.join("\n  ")
    );
}

#[test]
fn report_pages_escape_pbx_values_and_refuse_bad_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = crate::rules::daemon_config(dir.path(), "");
    let hostile = "<img src=x onerror=alert(1)>";
    let out = calltrail(
        &cfg,
        &[
            "numbers",
            "add",
            "89161110001",
            "--name",
            "=HYPERLINK(\"http://x\",\"y\")",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = calltrail(
        &cfg,
        &[
            "numbers",
            "add",
            "89161110002",
            "--name",
            "<script>alert(2)</script>",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    daemon.wait_http();
    let port = http_port(&cfg);
    let t = at("2026-11-20T09:00:00Z");
    let lines = format!(
        "{t}|NONE|{hostile}|{hostile}|ADDMEMBER|\n\
         {t}|c1|{hostile}|NONE|ENTERQUEUE||89161110001|1\n\
         {a}|c1|{hostile}|{hostile}|CONNECT|5|c1.2|1\n\
         {b}|c1|{hostile}|{hostile}|COMPLETECALLER|5|60|1\n\
         {t}|c2|{hostile}|NONE|ENTERQUEUE||89161110002|1\n\
         {b}|c2|{hostile}|NONE|ABANDON|1|1|65\n",
        a = t + 5,
        b = t + 65
    );
    append(&dir.path().join("queue_log"), lines.as_bytes());
    let rows = |r: &str| -> Option<usize> {
        let a = get(
            port,
            &format!("/reports/{r}?from=2026-11-20&to=2026-11-20&format=json"),
        );
        assert_eq!(a.status, 200, "{r}: {}\n{}", a.body, daemon.log());
        serde_json::from_str::<Value>(&a.body).ok()?["rows"]
            .as_array()
            .map(Vec::len)
    };
    assert!(
        wait_until(Duration::from_secs(30), || rows("missed") == Some(1)
            && rows("agent_activity") == Some(1)),
        "the lines were not derived:\n{}",
        daemon.log()
    );
    let dates = "from=2026-11-20&to=2026-11-20";
    for report in [
        "calls_by_queue",
        "calls_by_agent",
        "agent_activity",
        "missed",
        "new_callers",
        "service_level",
    ] {
        let page = get(port, &format!("/reports/{report}?{dates}"));
        assert_eq!(page.status, 200, "{report}: {}", page.body);
        assert!(page.ctype.starts_with("text/html"), "{}", page.ctype);
        assert!(
            page.csp.contains("script-src 'self'") && !page.csp.contains("unsafe-inline"),
            "{}",
            page.csp
        );
        assert!(
            !page.body.contains("<img src=x"),
            "{report}: the hostile name is markup:\n{}",
            page.body
        );
        assert!(
            !page.body.contains("<script>alert"),
            "{report}: a directory name is markup"
        );
        assert!(
            !page.body.contains("<script>"),
            "{report}: an inline script"
        );
        assert!(
            page.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{report}: the hostile name is not shown as text:\n{}",
            page.body
        );
    }
    let missed = get(port, &format!("/reports/missed?{dates}"));
    assert!(
        missed
            .body
            .contains("&lt;script&gt;alert(2)&lt;&#x2f;script&gt;"),
        "{}",
        missed.body
    );
    // CSV: never a formula.
    let csv = get(port, &format!("/reports/new_callers?{dates}&format=csv")).body;
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(
        csv.contains("'+79161110001"),
        "numbers starting with + are guarded too: {csv}"
    );
    assert!(
        !csv.lines()
            .any(|l| l.split(',').any(|c| c.trim_matches('"').starts_with('='))),
        "{csv}"
    );
    // Bad parameters: a 400 that says why, in the format asked for.
    for (q, want) in [
        ("from=2026-02-30", "is not a date"),
        ("from=yesterday", "is not a date"),
        ("from=2026-11-20&to=2026-11-01", "before"),
        ("from=2020-01-01&to=2026-11-20", "366"),
        ("format=xlsx", "format"),
        ("formula=best", "formula"),
        ("interval=week", "interval"),
        ("queue=a%00b", "control"),
    ] {
        for (fmt, ctype) in [("", "text/html"), ("&format=json", "application/json")] {
            if q.starts_with("format=") && !fmt.is_empty() {
                continue;
            }
            let a = get(port, &format!("/reports/service_level?{q}{fmt}"));
            assert_eq!(a.status, 400, "{q}{fmt}: {}", a.body);
            assert!(a.ctype.starts_with(ctype), "{q}{fmt}: {}", a.ctype);
            assert!(a.body.contains(want), "{q}{fmt}: {}", a.body);
        }
    }
    let a = get(port, "/reports/nope?format=json");
    assert_eq!(a.status, 404, "{}", a.body);
    let a = get(port, "/reports/missed?from=2026-11-20&format=csv&to=x");
    assert_eq!(a.status, 400, "{}", a.body);
    // The index lists every report; the assets are the daemon's own.
    let index = get(port, "/reports");
    assert_eq!(index.status, 200);
    for r in [
        "calls_by_queue",
        "calls_by_agent",
        "calls_by_hour",
        "agent_activity",
        "missed",
        "new_callers",
        "outbound",
        "service_level",
    ] {
        assert!(
            index.body.contains(&format!("formaction=\"/reports/{r}\"")),
            "{r} not in the index:\n{}",
            index.body
        );
    }
    for (file, ctype) in [
        ("reports.js", "text/javascript"),
        ("reports.css", "text/css"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("uPlot.min.css", "text/css"),
    ] {
        let a = get(port, &format!("/reports/assets/{file}"));
        assert_eq!(a.status, 200, "{file}");
        assert!(a.ctype.starts_with(ctype), "{file}: {}", a.ctype);
    }
    assert_eq!(get(port, "/reports/assets/../Cargo.toml").status, 404);
}

/// The `.eml` files of the outbox.
fn mails(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A mail with its quoted-printable body decoded (soft breaks joined).
fn unquote(m: &str) -> String {
    let b = m.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'=', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_scheduled_report_is_mailed_once_per_period() {
    let start = at("2026-11-20T05:00:00Z");
    let day = day::generate(SEED, start);
    let files = render(&day);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "Europe/Moscow");
    append(
        &cfg,
        br#"
[[reports.schedule]]
name = "daily-sup"
every = "daily"
at = "07:00"
to = ["sup@example.com"]

[[reports.schedule]]
name = "billing-only"
every = "daily"
at = "07:00"
to = ["billing@example.com"]
queues = ["billing"]
"#,
    );
    let text = |lines: &[Line]| {
        lines
            .iter()
            .map(|l| format!("{}\n", l.text))
            .collect::<String>()
    };
    append(
        &dir.path().join("logs/queue_log"),
        text(&files.queue_log).as_bytes(),
    );
    append(
        &dir.path().join("logs/Master.csv"),
        text(&files.master_csv).as_bytes(),
    );
    let lines = (files.queue_log.len() + files.master_csv.len()) as i64;
    // 07:30 in Moscow the next morning: the 20th's reports are due.
    let now = [("CALLTRAIL_NOW", "2026-11-21T04:30:00Z")];
    let daemon = Daemon::start_env(&cfg, &dir.path().join("d.log"), &now);
    daemon.wait_http();
    assert!(
        wait_until(Duration::from_secs(120), || settled(&cfg, lines)),
        "not derived:\n{}",
        daemon.log()
    );
    assert!(
        wait_until(Duration::from_secs(120), || mails(dir.path()).len() == 2),
        "two report mails expected, found {}:\n{}",
        mails(dir.path()).len(),
        daemon.log()
    );
    let all: Vec<String> = mails(dir.path()).iter().map(|m| unquote(m)).collect();
    let sup = all
        .iter()
        .find(|m| m.contains("Subject: calltrail daily report daily-sup: 2026-11-20"))
        .expect("daily-sup mail");
    let billing = all
        .iter()
        .find(|m| m.contains("Subject: calltrail daily report billing-only: 2026-11-20"))
        .expect("billing-only mail");
    let tz: chrono_tz::Tz = "Europe/Moscow".parse().expect("zone");
    let range = Range {
        r0: at("2026-11-19T21:00:00Z"),
        r1: at("2026-11-20T21:00:00Z"),
        now: at("2026-11-21T04:30:00Z"),
        tz,
    };
    // Per queue: offered, answered, unanswered as the model has them.
    let (queues, _) = expect::calls_by_queue(&day, &range);
    for (mail, only) in [(sup, None), (billing, Some("billing"))] {
        for q in &queues {
            let name = q["queue"].as_str().expect("queue");
            let line = mail
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name));
            if only.is_some_and(|o| o != name) {
                assert!(line.is_none(), "{name} in a mail for {only:?}:\n{mail}");
                continue;
            }
            let line = line.unwrap_or_else(|| panic!("no line for {name}:\n{mail}"));
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                (f[1], f[2], f[3]),
                (
                    q["offered"].to_string().as_str(),
                    q["answered"].to_string().as_str(),
                    q["unanswered"].to_string().as_str()
                ),
                "{line}"
            );
        }
        // Every episode nobody called back is listed; none that was.
        let (episodes, _) = expect::missed(
            &day,
            &range,
            Expiry {
                after_s: 168 * 3600,
                now: range.now,
            },
            &BTreeMap::new(),
        );
        for e in &episodes {
            let caller = e["caller"].as_str().expect("caller");
            let opened =
                chrono::DateTime::from_timestamp(e["opened_at"].as_i64().expect("opened"), 0)
                    .expect("instant")
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string();
            let listed = mail.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 6
                    && format!("{} {}", f[0], f[1]) == opened
                    && f[2] == caller
                    && f[4] == e["queue"].as_str().unwrap_or("-")
                    && f[5].parse::<i64>().ok() == e["missed_count"].as_i64()
            });
            let want =
                e["status"] != json!("called_back") && only.is_none_or(|o| e["queue"] == json!(o));
            assert_eq!(
                listed, want,
                "{caller} ({}) listed: {listed}:\n{mail}",
                e["status"]
            );
        }
    }
    // A restart sends nothing again.
    daemon.terminate(Duration::from_secs(30));
    let daemon = Daemon::start_env(&cfg, &dir.path().join("d2.log"), &now);
    daemon.wait_http();
    std::thread::sleep(Duration::from_secs(45));
    assert!(daemon.log().contains("HTTP API listening"));
    assert_eq!(mails(dir.path()).len(), 2, "{}", daemon.log());
    let ids = query_json(
        &cfg,
        "SELECT action_id, status FROM actions WHERE action_id LIKE 'report:%' ORDER BY 1",
    );
    assert_eq!(
        ids,
        vec![
            json!({"action_id": "report:billing-only:2026-11-20", "status": "done"}),
            json!({"action_id": "report:daily-sup:2026-11-20", "status": "done"}),
        ]
    );
}
