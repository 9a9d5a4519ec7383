//! Conformance with a real Asterisk: the files it wrote for a 10-minute call
//! center (`shared/reference/samples/asterisk-live-r1`: queue_log, cdr_csv's
//! Master.csv, cdr_custom's Master.csv with linkedid; FreePBX-style members
//! `Local/20x@from-queue/n`, so one agent-leg CDR row per member rung) give
//! the facts in its `truth.json`, which was built from Asterisk's own AMI
//! events, not from these files: calls, last agents, missed-call episodes,
//! callers and SLA — whichever file is read first, and tailed live.
//!
//! Per-caller counts (`callers.calls`, `answered_calls`) are derived from the
//! truth's calls. Three callers hung up in the IVR before reaching a queue
//! (Master.csv only, lastapp `Answer`): such calls are kept in `calls` with
//! outcome `ivr` but are no call of the caller's (docs/schema.md), which is
//! what the truth says too.

use crate::daemon::{append, calltrail_env, query_json, Daemon};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The derived state's clock: an hour after the run, so no episode expired.
pub const NOW: &str = "2026-12-03T19:20:00Z";

pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/samples/asterisk-live-r1")
}

/// cdr_custom's column list (`asterisk-config/cdr_custom.conf`): the three
/// epoch-float times at the end are not read.
const CUSTOM_COLUMNS: &str = r#"["accountcode", "src", "dst", "dcontext", "clid", "channel",
  "dstchannel", "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec",
  "disposition", "amaflags", "uniqueid", "userfield", "linkedid", "sequence", "-", "-", "-"]"#;

#[derive(Clone, Copy, PartialEq)]
pub enum Cdr {
    Csv,
    Custom,
}

/// A config over `dir/queue_log` and `dir/Master.csv` (copies of the
/// sample's files, or empty files to append to).
pub fn setup(dir: &Path, cdr: Cdr, copy: bool) -> PathBuf {
    let cdr_file = match cdr {
        Cdr::Csv => "Master.csv",
        Cdr::Custom => "Master-custom.csv",
    };
    for (from, to) in [("queue_log", "queue_log"), (cdr_file, "Master.csv")] {
        if copy {
            std::fs::copy(sample().join(from), dir.join(to)).expect("copy sample");
        } else {
            std::fs::write(dir.join(to), b"").expect("empty file");
        }
    }
    let cdr_source = match cdr {
        Cdr::Csv => "kind = \"asterisk_cdr_csv\"".to_string(),
        Cdr::Custom => format!("kind = \"asterisk_cdr_custom\"\ncolumns = {CUSTOM_COLUMNS}"),
    };
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "s.duckdb"
[numbers]
default_region = "RU"
[email]
outbox = "outbox"
[rules.missed_call_email]
enabled = false
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "UTC"
poll_interval_ms = 100
[[sources]]
name = "cdr"
{cdr_source}
path = "Master.csv"
pbx = "pbx1"
timezone = "UTC"
poll_interval_ms = 100
"#
        ),
    )
    .expect("config");
    cfg
}

/// `calltrail import --source SOURCE FILE` of a file beside the config.
fn import(cfg: &Path, source: &str, file: &str) {
    let path = cfg.with_file_name(file);
    run(
        cfg,
        &["import", "--source", source, &path.to_string_lossy()],
    );
}

fn run(cfg: &Path, args: &[&str]) {
    let out = calltrail_env(cfg, args, &[("CALLTRAIL_NOW", NOW)]);
    assert!(
        out.status.success(),
        "calltrail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A field of a row the truth expects.
#[derive(Debug, Clone, PartialEq)]
enum W {
    /// Text (numbers as text), compared exactly.
    T(String),
    /// Epoch seconds (or none). truth.json lists, per call, the times that
    /// fell within a few ms of a second boundary (`near_second_boundary`):
    /// Asterisk's queue_log and its AMI event may then name seconds one
    /// apart, and a time equal to one of those may be 1 s off.
    S(Option<i64>),
}

fn t(v: &Value) -> W {
    W::T(s(v))
}

fn secs(v: &Value) -> W {
    W::S(v.as_i64())
}

/// `key → fields` of each row of a query whose first column is the key,
/// in the query's column order (read as CSV: a JSON object has none). An
/// empty cell is NULL, a whole number a number.
fn rows(cfg: &Path, sql: &str) -> BTreeMap<String, Vec<Value>> {
    let out = calltrail_env(cfg, &["query", "--format", "csv", sql], &[]);
    assert!(
        out.status.success(),
        "query {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = csv::Reader::from_reader(out.stdout.as_slice());
    r.records()
        .map(|rec| {
            let rec = rec.expect("a CSV record");
            let mut vals = rec.iter().map(|c| match c.parse::<i64>() {
                _ if c.is_empty() => Value::Null,
                Ok(n) if !c.starts_with('+') => Value::from(n),
                _ => Value::from(c),
            });
            let key = s(&vals.next().unwrap_or_default());
            (key, vals.collect())
        })
        .collect()
}

struct Truth {
    t: Value,
    /// Seconds named by a time near a second boundary (see [`W::S`]).
    fuzzy: std::collections::BTreeSet<i64>,
}

impl Truth {
    fn load() -> Truth {
        let text = std::fs::read_to_string(sample().join("truth.json")).expect("truth.json");
        let t: Value = serde_json::from_str(&text).expect("truth.json is JSON");
        let mut fuzzy = std::collections::BTreeSet::new();
        for c in t["calls"].as_object().expect("calls").values() {
            for f in c["near_second_boundary"].as_array().into_iter().flatten() {
                if let Some(v) = f.as_str().and_then(|f| c[f].as_i64()) {
                    fuzzy.insert(v);
                }
            }
        }
        Truth { t, fuzzy }
    }

    fn field_ok(&self, w: &W, g: &Value) -> bool {
        match w {
            W::T(w) => *w == s(g),
            W::S(w) => match (*w, g.as_i64()) {
                (None, None) => true,
                (Some(a), Some(b)) => a == b || ((a - b).abs() == 1 && self.fuzzy.contains(&a)),
                _ => false,
            },
        }
    }

    /// Every difference between what the truth says and the store.
    fn same(
        &self,
        what: &str,
        want: &BTreeMap<String, Vec<W>>,
        got: &BTreeMap<String, Vec<Value>>,
    ) -> Vec<String> {
        let mut diffs = Vec::new();
        for (k, w) in want {
            match got.get(k) {
                None => diffs.push(format!("{what} {k}: missing (want {w:?})")),
                Some(g) => {
                    let ok =
                        w.len() == g.len() && w.iter().zip(g).all(|(w, g)| self.field_ok(w, g));
                    if !ok {
                        diffs.push(format!("{what} {k}: want {w:?}, got {g:?}"));
                    }
                }
            }
        }
        for (k, g) in got {
            if !want.contains_key(k) {
                diffs.push(format!("{what} {k}: not in the truth (got {g:?})"));
            }
        }
        diffs
    }
}

/// Episodes keyed by caller and their order (their opening time may be
/// one of the fuzzy seconds).
fn numbered<T>(rows: Vec<(String, i64, Vec<T>)>) -> BTreeMap<String, Vec<T>> {
    let mut rows = rows;
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut out = BTreeMap::new();
    let mut n = 0;
    let mut prev = String::new();
    for (caller, _, fields) in rows {
        n = if caller == prev { n + 1 } else { 1 };
        prev = caller.clone();
        out.insert(format!("{caller} #{n}"), fields);
    }
    out
}

/// Every difference between the store behind `cfg` and truth.json.
fn differences(cfg: &Path) -> Vec<String> {
    let truth = Truth::load();
    let tr = &truth.t;
    let mut diffs = Vec::new();

    // Calls: every queue call, and nothing else inbound but the IVR hang-ups.
    let calls = tr["calls"].as_object().expect("calls");
    let want: BTreeMap<String, Vec<W>> = calls
        .iter()
        .map(|(id, c)| {
            let agent = c["agent"].as_str().filter(|a| !a.is_empty());
            let ended = if c["connect_at"].is_null() {
                secs(&c["exit_at"])
            } else {
                W::S(None)
            };
            (
                id.clone(),
                vec![
                    t(&c["queue"]),
                    t(&c["caller"]),
                    secs(&c["entered_at"]),
                    secs(&c["connect_at"]),
                    ended,
                    t(&c["outcome"]),
                    W::T(agent.unwrap_or("-").to_string()),
                    t(&c["wait_s"]),
                    t(&c["talk_s"]),
                ],
            )
        })
        .collect();
    let got = rows(
        cfg,
        "SELECT call_id, queue, caller, epoch(entered_at)::BIGINT AS e,
                epoch(answered_at)::BIGINT AS a,
                CASE WHEN answered_at IS NULL THEN epoch(ended_at)::BIGINT END AS lost,
                outcome, agent, wait_s, coalesce(talk_s, 0) AS talk_s
         FROM calls WHERE direction = 'inbound' AND outcome <> 'ivr'",
    );
    diffs.extend(truth.same("call", &want, &got));
    let ivr = rows(
        cfg,
        "SELECT call_id, caller FROM calls WHERE outcome = 'ivr'",
    );
    if ivr.len() != 3 {
        diffs.push(format!("ivr calls: want the 3 IVR hang-ups, got {ivr:?}"));
    }

    // Outbound calls (agents calling customers back).
    let want: BTreeMap<String, Vec<W>> = tr["outbound"]
        .as_array()
        .expect("outbound")
        .iter()
        .map(|o| {
            let answered = o["disposition"] == "ANSWERED";
            (
                s(&o["uniqueid"]),
                vec![
                    t(&o["caller"]),
                    t(&o["agent"]),
                    W::T(if answered { "answered" } else { "unanswered" }.into()),
                    secs(&o["answer"]),
                ],
            )
        })
        .collect();
    let got = rows(
        cfg,
        "SELECT call_id, party, agent,
                CASE WHEN outcome = 'answered' THEN 'answered' ELSE 'unanswered' END,
                epoch(answered_at)::BIGINT FROM calls WHERE direction = 'outbound'",
    );
    diffs.extend(truth.same("outbound", &want, &got));

    // No agent leg is a call; each is an attempt of its call.
    let n_legs = count_agent_legs() as i64;
    let legs = rows(
        cfg,
        "SELECT 'legs', count(*), count(DISTINCT leg_call_id) FROM call_attempts
         WHERE leg_call_id IS NOT NULL",
    );
    let counts: Vec<i64> = legs.values().flatten().filter_map(Value::as_i64).collect();
    if counts != [n_legs, n_legs] {
        diffs.push(format!(
            "call_attempts with a leg: want {n_legs}, got {counts:?}"
        ));
    }
    let phantom = rows(
        cfg,
        "SELECT c.call_id, c.outcome FROM calls c
         JOIN call_attempts a ON c.pbx = a.pbx AND c.call_id = a.leg_call_id",
    );
    if !phantom.is_empty() {
        diffs.push(format!("agent legs stored as calls: {phantom:?}"));
    }

    // Last agent per caller.
    let want: BTreeMap<String, Vec<W>> = tr["last_agent"]
        .as_object()
        .expect("last_agent")
        .iter()
        .map(|(c, v)| (c.clone(), vec![t(&v["agent"]), secs(&v["at"])]))
        .collect();
    let got = rows(
        cfg,
        "SELECT caller, agent, epoch(last_talk_at)::BIGINT FROM last_agent",
    );
    diffs.extend(truth.same("last_agent", &want, &got));

    // Missed-call episodes, per caller in order.
    let want = numbered(
        tr["missed"]
            .as_array()
            .expect("missed")
            .iter()
            .map(|m| {
                (
                    s(&m["caller"]),
                    m["first_missed_at"].as_i64().unwrap_or(0),
                    vec![
                        secs(&m["first_missed_at"]),
                        t(&m["missed_count"]),
                        t(&m["status"]),
                        secs(&m["resolved_at"]),
                    ],
                )
            })
            .collect(),
    );
    let got_eps = query_json(
        cfg,
        "SELECT caller, epoch(opened_at)::BIGINT AS o, missed_count, status,
                epoch(resolved_at)::BIGINT AS r FROM missed_calls",
    );
    let got = numbered(
        got_eps
            .iter()
            .map(|r| {
                (
                    s(&r["caller"]),
                    r["o"].as_i64().unwrap_or(0),
                    vec![
                        r["o"].clone(),
                        r["missed_count"].clone(),
                        r["status"].clone(),
                        r["r"].clone(),
                    ],
                )
            })
            .collect(),
    );
    diffs.extend(truth.same("episode", &want, &got));

    // Callers: first seen/answered from the truth, counts from its calls.
    let mut counts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for c in calls.values() {
        let e = counts.entry(s(&c["caller"])).or_default();
        e.0 += 1;
        e.1 += i64::from(!c["connect_at"].is_null());
    }
    let want: BTreeMap<String, Vec<W>> = tr["callers"]
        .as_object()
        .expect("callers")
        .iter()
        .map(|(c, v)| {
            let (n, answered) = counts.get(c).copied().unwrap_or_default();
            (
                c.clone(),
                vec![
                    secs(&v["first_seen_at"]),
                    secs(&v["first_answered_at"]),
                    W::T(n.to_string()),
                    W::T(answered.to_string()),
                ],
            )
        })
        .collect();
    let got = rows(
        cfg,
        "SELECT caller, epoch(first_seen_at)::BIGINT, epoch(first_answered_at)::BIGINT,
                calls, answered_calls FROM callers",
    );
    diffs.extend(truth.same("caller", &want, &got));

    // Service level per queue and 15 minutes.
    let want: BTreeMap<String, Vec<W>> = tr["sla"]
        .as_array()
        .expect("sla")
        .iter()
        .map(|r| {
            (
                format!("{} {}", s(&r["queue"]), s(&r["interval_start"])),
                [
                    "offered",
                    "answered",
                    "answered_within",
                    "abandoned",
                    "short_abandoned",
                ]
                .map(|k| t(&r[k]))
                .to_vec(),
            )
        })
        .collect();
    let got = rows(
        cfg,
        "SELECT queue || ' ' || epoch(interval_start)::BIGINT, offered, answered,
                answered_within, abandoned, short_abandoned FROM sla_intervals",
    );
    diffs.extend(truth.same("sla", &want, &got));
    diffs
}

/// Agent-leg rows in Master.csv (context `from-queue`, a Local `;2` channel).
fn count_agent_legs() -> usize {
    let text = std::fs::read_to_string(sample().join("Master.csv")).expect("Master.csv");
    text.lines()
        .filter(|l| l.contains("\"from-queue\"") && l.contains(";2\""))
        .count()
}

fn assert_truth(cfg: &Path, how: &str) {
    let diffs = differences(cfg);
    assert!(
        diffs.is_empty(),
        "{how}: {} differences from truth.json:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn queue_log_first_then_cdr_csv() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = setup(tmp.path(), Cdr::Csv, true);
    import(&cfg, "q", "queue_log");
    import(&cfg, "cdr", "Master.csv");
    assert_truth(&cfg, "queue_log, then Master.csv");
}

#[test]
fn cdr_csv_first_then_queue_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = setup(tmp.path(), Cdr::Csv, true);
    import(&cfg, "cdr", "Master.csv");
    import(&cfg, "q", "queue_log");
    assert_truth(&cfg, "Master.csv, then queue_log");
}

/// cdr_custom with linkedid, read first.
#[test]
fn cdr_custom_with_linkedid_then_queue_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = setup(tmp.path(), Cdr::Custom, true);
    import(&cfg, "cdr", "Master.csv");
    import(&cfg, "q", "queue_log");
    assert_truth(&cfg, "Master.csv (cdr_custom), then queue_log");
}

/// Both files appended while the daemon follows them, a slice of each at a
/// time (so agent legs and their calls' rows, and CDRs and their queue_log
/// lines, arrive in different batches), then checked once it has settled.
#[test]
fn tailed_live() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = setup(tmp.path(), Cdr::Csv, false);
    let q = std::fs::read(sample().join("queue_log")).expect("queue_log");
    let c = std::fs::read(sample().join("Master.csv")).expect("Master.csv");
    let lines = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split_inclusive(|&x| x == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    let (ql, cl) = (lines(&q), lines(&c));
    // The daemon's clock is fixed like the imports'.
    let daemon = Daemon::start_env(
        &cfg,
        &tmp.path().join("daemon.log"),
        &[("CALLTRAIL_NOW", NOW)],
    );
    let slices = 12;
    for i in 0..slices {
        for (all, file) in [(&cl, "Master.csv"), (&ql, "queue_log")] {
            let per = all.len().div_ceil(slices);
            let part: Vec<u8> = all
                .iter()
                .skip(i * per)
                .take(per)
                .flatten()
                .copied()
                .collect();
            append(&tmp.path().join(file), &part);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let d = differences(&cfg);
        if d.is_empty() || Instant::now() > deadline {
            break d;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let log = daemon.log();
    assert!(
        settled.is_empty(),
        "tailed live: {} differences from truth.json:\n{}\nlog:\n{log}",
        settled.len(),
        settled.join("\n")
    );
}

/// FreePBX with phones behind the Local members: the member's leg row
/// (`Local/205@from-queue-…;2`, ringing `PJSIP/205-…`) is written when the
/// member stops ringing, minutes before the caller's row. Alone it is a
/// `leg`, which opens no episode and is no call of the caller's; once the
/// caller's row is read it is that call's attempt, and the call (nobody
/// answered, CDR only) is the missed one.
#[test]
fn a_member_leg_read_before_its_call_opens_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cdr = tmp.path().join("Master.csv");
    std::fs::write(&cdr, b"").expect("empty file");
    let cfg = tmp.path().join("c.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
path = "s.duckdb"
[numbers]
default_region = "RU"
[email]
outbox = "outbox"
[rules.missed_call_email]
enabled = false
[[sources]]
name = "cdr"
kind = "asterisk_cdr_csv"
path = "Master.csv"
pbx = "pbx1"
timezone = "UTC"
"#,
    )
    .expect("config");
    let leg = "\"\",\"89161234567\",\"205\",\"from-queue\",\"\"\"\" <89161234567>\",\"Local/205@from-queue-0000004a;2\",\"PJSIP/205-00000051\",\"Dial\",\"PJSIP/205,,HhtrM\",\"2026-12-03 18:05:47\",,\"2026-12-03 18:06:02\",15,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1796321147.3\",\"\"\n";
    let call = "\"\",\"89161234567\",\"4951112233\",\"from-pstn\",\"\"\"\" <89161234567>\",\"PJSIP/trunk-00000050\",\"Local/205@from-queue-0000004a;1\",\"Queue\",\"support,r,,,75\",\"2026-12-03 18:05:46\",\"2026-12-03 18:05:46\",\"2026-12-03 18:07:16\",90,90,\"NO ANSWER\",\"DOCUMENTATION\",\"1796321146.1\",\"\"\n";
    append(&cdr, leg.as_bytes());
    run(&cfg, &["run", "--once"]);
    let state = |cfg: &Path| {
        let one = |sql: &str| {
            rows(cfg, sql)
                .into_iter()
                .map(|(k, v)| format!("{k} {}", v.iter().map(s).collect::<Vec<_>>().join(" ")))
                .collect::<Vec<_>>()
        };
        (
            one("SELECT call_id, outcome, missed FROM calls"),
            one("SELECT caller, status FROM missed_calls"),
            one("SELECT caller, calls FROM callers"),
            one("SELECT call_id, agent, leg_call_id, outcome FROM call_attempts"),
        )
    };
    let (calls, episodes, callers, attempts) = state(&cfg);
    assert_eq!(calls, ["1796321147.3 leg false"]);
    assert!(
        episodes.is_empty() && callers.is_empty(),
        "{episodes:?} {callers:?}"
    );
    // What the leg's own row says: 205 rang, nobody answered.
    assert_eq!(attempts, ["1796321147.3 205 - no_answer"]);
    append(&cdr, call.as_bytes());
    run(&cfg, &["run", "--once"]);
    let (calls, episodes, callers, attempts) = state(&cfg);
    assert_eq!(calls, ["1796321146.1 abandoned true"]);
    assert_eq!(episodes, ["+79161234567 open"]);
    assert_eq!(callers, ["+79161234567 1"]);
    assert_eq!(attempts, ["1796321146.1 205 1796321147.3 no_answer"]);
}
