//! queue_log conformance: every real sample parsed with exact counts and
//! spot values (counted independently of this parser, with Python's `csv`
//! and `str.split('|')`), plus one line per version form of every verb of
//! FORMATS.md §a.4 and the pre-1.8 lines of §a.6.

use calltrail_parsers::queue_log::MAX_LINE_LEN;
use calltrail_parsers::queue_log_db::{QueueLogDbError, QueueLogDbLayout, QueueLogDbReader};
use calltrail_parsers::{
    AgentResolver, Charset, Direction, Event, EventKind, NumberConfig, NumberNormalizer,
    QueueLogError, QueueLogParser, SourceContext,
};
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use std::collections::BTreeMap;

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/samples/"
);

fn sample(rel: &str) -> Vec<u8> {
    let path = format!("{SAMPLES}{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn parser_in(tz: Tz) -> QueueLogParser {
    QueueLogParser::new(
        SourceContext {
            timezone: tz,
            ..SourceContext::new("q", "pbx1")
        },
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    )
}

fn parser() -> QueueLogParser {
    parser_in(Tz::UTC)
}

/// The result of reading a whole file line by line.
#[derive(Default)]
struct Run {
    lines: usize,
    skipped: usize,
    /// (1-based line number, event)
    events: Vec<(usize, Event)>,
    rejects: Vec<(usize, String)>,
}

impl Run {
    fn kinds(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for (_, e) in &self.events {
            *m.entry(e.kind.as_str()).or_default() += 1;
        }
        m
    }

    fn verbs(&self, kind: EventKind) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, e) in self.events.iter().filter(|(_, e)| e.kind == kind) {
            *m.entry(e.verb.to_string()).or_default() += 1;
        }
        m
    }

    fn at(&self, line: usize) -> &Event {
        &self
            .events
            .iter()
            .find(|(n, _)| *n == line)
            .unwrap_or_else(|| panic!("no event on line {line}"))
            .1
    }
}

/// Splits on `\n` as a tailer does (a final `\n` ends the last line).
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

fn run<E: std::fmt::Display>(
    bytes: &[u8],
    mut parse: impl FnMut(&[u8]) -> Result<Option<Event>, E>,
) -> Run {
    let mut r = Run::default();
    for (i, line) in lines(bytes).into_iter().enumerate() {
        r.lines += 1;
        match parse(line) {
            Ok(Some(e)) => r.events.push((i + 1, e)),
            Ok(None) => r.skipped += 1,
            Err(e) => r.rejects.push((i + 1, e.to_string())),
        }
    }
    r
}

fn run_flat(bytes: &[u8]) -> Run {
    let mut p = parser();
    run(bytes, |l| p.parse_line(l))
}

fn kinds(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

fn rfc(e: &Event) -> String {
    e.ts.to_rfc3339()
}

// ---------------------------------------------------------------------------
// samples/queue_log-asterisk2slack/queue_log (23 lines, Dec 2018, 1.8+ layout)

#[test]
fn asterisk2slack_counts() {
    let r = run_flat(&sample("queue_log-asterisk2slack/queue_log"));
    assert_eq!(r.lines, 23);
    assert_eq!(r.skipped, 2, "blank lines 19 and 23");
    assert_eq!(r.events.len(), 21);
    assert!(r.rejects.is_empty(), "{:?}", r.rejects);
    assert_eq!(
        r.kinds(),
        kinds(&[
            ("did", 1),
            ("enter_queue", 8),
            ("ring_no_answer", 3),
            ("answered", 3),
            ("completed_by_caller", 2),
            ("completed_by_agent", 4),
        ])
    );
    let blank: Vec<usize> = (1..=23)
        .filter(|n| !r.events.iter().any(|(l, _)| l == n))
        .collect();
    assert_eq!(blank, vec![19, 23]);
}

#[test]
fn asterisk2slack_first_last_and_did() {
    let r = run_flat(&sample("queue_log-asterisk2slack/queue_log"));
    let first = &r.events[0].1;
    assert_eq!(r.events[0].0, 1);
    assert_eq!(rfc(first), "2018-12-28T16:43:35+00:00");
    assert_eq!(first.kind, EventKind::Did);
    assert_eq!(first.verb.as_ref(), "DID");
    assert_eq!(first.call_id.as_deref(), Some("1546015415.757927"));
    assert_eq!(first.queue.as_deref(), Some("201"));
    assert_eq!(
        (first.agent.as_deref(), first.agent_raw.as_deref()),
        (None, None)
    );
    assert_eq!(first.callee_raw.as_deref(), Some("+15556667775"));
    assert_eq!(first.callee.as_deref(), Some("+15556667775"));
    assert_eq!(first.info.as_deref(), Some("+15556667775"));
    assert_eq!(first.direction, Some(Direction::Inbound));
    assert_eq!(first.data, vec!["+15556667775"]);

    let (line, last) = r.events.last().unwrap();
    assert_eq!(*line, 22);
    assert_eq!(rfc(last), "2018-12-28T19:10:04+00:00");
    assert_eq!(last.kind, EventKind::CompletedByAgent);
    assert_eq!(last.call_id.as_deref(), Some("1546023970.760296"));
    assert_eq!(last.queue.as_deref(), Some("201"));
    assert_eq!(last.agent.as_deref(), Some("Paty Marin"));
    assert_eq!(
        (last.wait_s, last.talk_s, last.orig_position),
        (Some(6), Some(228), Some(6))
    );
}

#[test]
fn asterisk2slack_call_fields() {
    let r = run_flat(&sample("queue_log-asterisk2slack/queue_log"));
    let eq = r.at(2);
    assert_eq!(eq.kind, EventKind::EnterQueue);
    assert_eq!(eq.caller_raw.as_deref(), Some("+13238679471"));
    assert_eq!(eq.caller.as_deref(), Some("+13238679471"));
    assert_eq!(
        (
            eq.orig_position,
            eq.info.as_deref(),
            eq.caller_name.as_deref()
        ),
        (Some(1), None, None)
    );
    assert_eq!(eq.data, vec!["", "+13238679471", "1"]);
    for n in 3..=5 {
        assert_eq!(r.at(n).kind, EventKind::RingNoAnswer);
        assert_eq!(r.at(n).ring_ms, Some(0), "RINGNOANSWER|0 on line {n}");
    }
    let c = r.at(6);
    assert_eq!(rfc(c), "2018-12-28T16:43:45+00:00");
    assert_eq!(
        (c.kind, c.wait_s, c.ring_ms),
        (EventKind::Answered, Some(10), Some(9000))
    );
    assert_eq!(c.peer_call_id.as_deref(), Some("1546015415.757936"));
    let d = r.at(7);
    assert_eq!(
        (d.kind, d.wait_s, d.talk_s, d.orig_position),
        (EventKind::CompletedByCaller, Some(10), Some(122), Some(1))
    );
    // the hand-edited origpositions of the COMPLETEAGENT block are read as written
    let orig: Vec<Option<u32>> = [18, 20, 21, 22]
        .iter()
        .map(|&n| r.at(n).orig_position)
        .collect();
    assert_eq!(orig, vec![Some(1), Some(4), Some(5), Some(6)]);
}

#[test]
fn asterisk2slack_member_names_with_spaces_are_agents() {
    let r = run_flat(&sample("queue_log-asterisk2slack/queue_log"));
    let mut agents: Vec<&str> = r
        .events
        .iter()
        .filter_map(|(_, e)| e.agent.as_deref())
        .collect();
    agents.sort();
    agents.dedup();
    assert_eq!(
        agents,
        vec![
            "John Rembold",
            "Paty Marin",
            "Sara Sangri",
            "Tania Lissete Flores Zavala",
            "Vanessa Flores"
        ]
    );
    for (_, e) in &r.events {
        assert_eq!(
            e.agent, e.agent_raw,
            "free-text member names resolve to themselves"
        );
    }
    assert_eq!(
        r.at(4).agent.as_deref(),
        Some("Tania Lissete Flores Zavala")
    );
}

#[test]
fn asterisk2slack_out_of_order_lines_keep_file_order() {
    let r = run_flat(&sample("queue_log-asterisk2slack/queue_log"));
    // line 7 (COMPLETECALLER, 16:45:47) is followed by ENTERQUEUE lines stamped 16:43:35
    assert_eq!(r.at(7).ts.timestamp(), 1546015547);
    assert_eq!(r.at(8).ts.timestamp(), 1546015415);
    // FORMATS.md §a.1: 1546024020 comes after 1546027677
    let (a, b, c) = (r.at(15), r.at(16), r.at(17));
    assert_eq!(
        (a.ts.timestamp(), a.kind, a.call_id.as_deref()),
        (1546027677, EventKind::Answered, Some("1546027663.761192"))
    );
    assert_eq!(
        (b.ts.timestamp(), b.kind, b.call_id.as_deref()),
        (1546023976, EventKind::Answered, Some("1546023970.760296"))
    );
    assert_eq!(rfc(c), "2018-12-28T19:07:00+00:00");
    assert_eq!(
        (c.kind, c.agent.as_deref(), c.call_id.as_deref()),
        (
            EventKind::CompletedByCaller,
            Some("Vanessa Flores"),
            Some("1546023604.760166")
        )
    );
    assert_eq!(
        (c.wait_s, c.talk_s, c.orig_position),
        (Some(10), Some(406), Some(1))
    );
    assert!(c.ts < a.ts && b.ts < a.ts);
    let backwards = r
        .events
        .windows(2)
        .filter(|w| w[1].1.ts < w[0].1.ts)
        .count();
    assert_eq!(backwards, 2, "lines 8 and 16 step back in time");
}

#[test]
fn asterisk2slack_duplicated_enterqueue_lines_are_all_kept() {
    let r = run_flat(&sample("queue_log-asterisk2slack/queue_log"));
    let dups: Vec<&Event> = r
        .events
        .iter()
        .filter(|(_, e)| {
            e.kind == EventKind::EnterQueue && e.call_id.as_deref() == Some("1546015415.757927")
        })
        .map(|(_, e)| e)
        .collect();
    assert_eq!(dups.len(), 7, "line 2 and its six copies on lines 8-13");
    assert!(dups.iter().all(|e| *e == dups[0]));
}

// ---------------------------------------------------------------------------
// samples/queue_log-asterisk-issue-759/queue_log.excerpt (8 lines, 2024)

#[test]
fn issue759_counts_and_ends() {
    let r = run_flat(&sample("queue_log-asterisk-issue-759/queue_log.excerpt"));
    assert_eq!(
        (r.lines, r.skipped, r.events.len(), r.rejects.len()),
        (8, 0, 8, 0)
    );
    assert_eq!(
        r.kinds(),
        kinds(&[
            ("did", 2),
            ("enter_queue", 2),
            ("answered", 2),
            ("transferred", 1),
            ("completed_by_agent", 1),
        ])
    );
    let first = r.at(1);
    assert_eq!(rfc(first), "2024-06-03T06:47:39+00:00");
    assert_eq!(
        (first.kind, first.call_id.as_deref(), first.queue.as_deref()),
        (EventKind::Did, Some("1717397243.239826"), Some("1501"))
    );
    assert_eq!(first.callee_raw.as_deref(), Some("4957877871"));
    assert_eq!(first.callee.as_deref(), Some("+74957877871"));
    let eq = r.at(2);
    assert_eq!(
        (
            eq.caller_raw.as_deref(),
            eq.caller.as_deref(),
            eq.orig_position
        ),
        (Some("9031396745"), Some("+79031396745"), Some(1))
    );
    let last = r.at(8);
    assert_eq!(rfc(last), "2024-06-03T06:52:50+00:00");
    assert_eq!(last.kind, EventKind::CompletedByAgent);
    assert_eq!(
        (last.agent.as_deref(), last.agent_raw.as_deref()),
        (Some("7051"), Some("PJSIP/7051"))
    );
    assert_eq!(
        (last.wait_s, last.talk_s, last.orig_position),
        (Some(7), Some(173), Some(1))
    );
}

#[test]
fn issue759_did_with_empty_data() {
    let r = run_flat(&sample("queue_log-asterisk-issue-759/queue_log.excerpt"));
    let did = r.at(4);
    assert_eq!(
        (did.kind, did.call_id.as_deref(), did.queue.as_deref()),
        (EventKind::Did, Some("1717397390.239830"), Some("1509"))
    );
    assert_eq!(
        (
            did.callee.as_deref(),
            did.callee_raw.as_deref(),
            did.info.as_deref()
        ),
        (None, None, None)
    );
    assert!(did.data.is_empty());
    // the consult call's ENTERQUEUE: the caller is the agent's extension
    let eq = r.at(5);
    assert_eq!(
        (eq.caller.as_deref(), eq.queue.as_deref()),
        (Some("7009"), Some("1509"))
    );
}

#[test]
fn issue759_attended_transfer_and_the_calls_after_it() {
    let r = run_flat(&sample("queue_log-asterisk-issue-759/queue_log.excerpt"));
    let t = r.at(6);
    assert_eq!(rfc(t), "2024-06-03T06:49:51+00:00");
    assert_eq!(
        (t.kind, t.verb.as_ref()),
        (EventKind::Transferred, "ATTENDEDTRANSFER")
    );
    assert_eq!(
        t.call_id.as_deref(),
        Some("1717397390.239830"),
        "the consult call's id"
    );
    assert_eq!(t.queue.as_deref(), Some("1501"), "the original queue");
    assert_eq!(
        (t.agent.as_deref(), t.agent_raw.as_deref()),
        (Some("7009"), Some("PJSIP/7009"))
    );
    assert_eq!(t.info.as_deref(), Some("APP|Queue"));
    assert_eq!(
        (t.wait_s, t.talk_s, t.orig_position),
        (Some(12), Some(120), Some(1))
    );
    assert_eq!(
        (t.position, t.ring_ms, t.peer_call_id.as_deref()),
        (None, None, None)
    );
    assert_eq!(t.data, vec!["APP", "Queue", "12", "120", "1"]);
    for n in [7, 8] {
        let e = r.at(n);
        assert_eq!(
            e.call_id.as_deref(),
            Some("1717397243.239826"),
            "line {n} carries the original callid"
        );
        assert_eq!(
            e.queue.as_deref(),
            Some("1509"),
            "line {n} is under the new queue"
        );
        assert_eq!(e.agent.as_deref(), Some("7051"));
    }
    let c = r.at(7);
    assert_eq!(
        (c.kind, c.wait_s, c.ring_ms),
        (EventKind::Answered, Some(7), Some(6000))
    );
    assert_eq!(c.peer_call_id.as_deref(), Some("1717397390.239831"));
    assert_eq!(r.at(3).peer_call_id.as_deref(), Some("1717397259.239827"));
}

// ---------------------------------------------------------------------------
// The flat samples rewritten as Asterisk realtime rows: same events.

/// Writes flat lines as a realtime CSV export: local time in `tz`, data split
/// into at most five columns (the fifth keeps the remainder), or one `data`.
fn to_realtime_csv(flat: &[u8], tz: Tz, adaptive: bool) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if adaptive {
        w.write_record([
            "id",
            "time",
            "callid",
            "queuename",
            "agent",
            "event",
            "data1",
            "data2",
            "data3",
            "data4",
            "data5",
        ])
        .unwrap();
    } else {
        w.write_record(["time", "callid", "queuename", "agent", "event", "data"])
            .unwrap();
    }
    for (i, line) in lines(flat).into_iter().enumerate() {
        let line = std::str::from_utf8(line).unwrap();
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.splitn(6, '|').collect();
        let ts = chrono::DateTime::from_timestamp(f[0].parse().unwrap(), 0).unwrap();
        let local = ts
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string();
        let data = f.get(5).copied().unwrap_or("");
        let mut row = vec![];
        if adaptive {
            row.push((i + 1).to_string());
        }
        row.extend([local, f[1].into(), f[2].into(), f[3].into(), f[4].into()]);
        if adaptive {
            let parts: Vec<&str> = data.splitn(5, '|').collect();
            for k in 0..5 {
                row.push(parts.get(k).copied().unwrap_or("").to_string());
            }
        } else {
            row.push(data.to_string());
        }
        w.write_record(&row).unwrap();
    }
    w.into_inner().unwrap()
}

#[test]
fn flat_samples_as_realtime_rows_give_the_same_events() {
    let tz: Tz = "Europe/Moscow".parse().unwrap();
    for rel in [
        "queue_log-asterisk2slack/queue_log",
        "queue_log-asterisk-issue-759/queue_log.excerpt",
    ] {
        let flat = sample(rel);
        let want: Vec<Event> = run_flat(&flat).events.into_iter().map(|(_, e)| e).collect();
        for adaptive in [true, false] {
            let csv = to_realtime_csv(&flat, tz, adaptive);
            let mut reader = QueueLogDbReader::new(parser_in(tz));
            let r = run(&csv, |l| reader.parse_line(l));
            assert!(r.rejects.is_empty(), "{rel}: {:?}", r.rejects);
            assert_eq!(reader.layout(), Some(QueueLogDbLayout::AsteriskRealtime));
            let got: Vec<Event> = r.events.into_iter().map(|(_, e)| e).collect();
            assert_eq!(got, want, "{rel} adaptive={adaptive}");
        }
    }
}

// ---------------------------------------------------------------------------
// samples/queue_log-dbexport-voipreports1/queue_log.csv (normalised export)

const VOIP: &str = "queue_log-dbexport-voipreports1/queue_log.csv";

fn run_voip(bytes: &[u8], tz: Tz) -> Run {
    let mut reader = QueueLogDbReader::new(parser_in(tz));
    let r = run(bytes, |l| reader.parse_line(l));
    assert_eq!(reader.layout(), Some(QueueLogDbLayout::Normalised));
    r
}

#[test]
fn voipreports_counts() {
    let r = run_voip(&sample(VOIP), Tz::UTC);
    assert_eq!((r.lines, r.skipped, r.events.len()), (1001, 1, 1000));
    assert!(r.rejects.is_empty(), "{:?}", r.rejects);
    assert_eq!(
        r.kinds(),
        kinds(&[
            ("ring_no_answer", 360),
            ("other", 257),
            ("enter_queue", 108),
            ("answered", 93),
            ("completed_by_agent", 51),
            ("completed_by_caller", 38),
            ("member_added", 26),
            ("agent_login", 14),
            ("abandoned", 12),
            ("config_reload", 11),
            ("member_removed", 10),
            ("agent_logoff", 10),
            ("queue_start", 7),
            ("transferred", 2),
            ("timeout", 1),
        ])
    );
    let other: BTreeMap<String, usize> = [
        ("OUTDIAL", 128),
        ("OUTANSWER", 77),
        ("OUTCANCEL", 24),
        ("OUTCHANUNAVAIL", 18),
        ("OUTCONGESTION", 9),
        ("OUTTRANSFER", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(r.verbs(EventKind::Other), other);
    assert_eq!(
        r.verbs(EventKind::AgentLogin).get("AGENTCALLBACKLOGIN"),
        Some(&14)
    );
    assert_eq!(
        r.verbs(EventKind::AgentLogoff).get("AGENTCALLBACKLOGOFF"),
        Some(&10)
    );
    let ev = || r.events.iter().map(|(_, e)| e);
    assert_eq!(
        ev().filter(|e| e.call_id.is_none()).count(),
        30,
        "18 NONE + 12 MANAGER"
    );
    assert_eq!(ev().filter(|e| e.queue.is_none()).count(), 299);
    assert_eq!(ev().filter(|e| e.agent.is_none()).count(), 139);
    let mut agents: Vec<&str> = ev().filter_map(|e| e.agent.as_deref()).collect();
    agents.sort();
    agents.dedup();
    assert_eq!(
        agents,
        vec!["1109", "1126", "1127", "1128", "1141", "1144"],
        "Agent/N and Local/N@callback-agent are one agent"
    );
}

#[test]
fn voipreports_numbers_sum_to_the_columns() {
    let r = run_voip(&sample(VOIP), Tz::UTC);
    let of = |k: EventKind| r.events.iter().map(|(_, e)| e).filter(move |e| e.kind == k);
    let sum =
        |it: &mut dyn Iterator<Item = Option<u64>>| it.map(|v| v.expect("value")).sum::<u64>();
    assert_eq!(
        sum(&mut of(EventKind::Answered).map(|e| e.wait_s.map(u64::from))),
        3599
    );
    assert_eq!(
        sum(&mut of(EventKind::Answered).map(|e| e.ring_ms)),
        387_000
    );
    assert_eq!(
        of(EventKind::Answered)
            .filter(|e| e.peer_call_id.is_some())
            .count(),
        93
    );
    let completed = || of(EventKind::CompletedByAgent).chain(of(EventKind::CompletedByCaller));
    assert_eq!(
        sum(&mut completed().map(|e| e.talk_s.map(u64::from))),
        23845
    );
    assert_eq!(sum(&mut completed().map(|e| e.wait_s.map(u64::from))), 3561);
    assert_eq!(
        sum(&mut of(EventKind::RingNoAnswer).map(|e| e.ring_ms)),
        3_434_000
    );
    assert_eq!(
        sum(&mut of(EventKind::Abandoned).map(|e| e.wait_s.map(u64::from))),
        1141
    );
    assert_eq!(
        sum(&mut of(EventKind::AgentLogoff).map(|e| e.duration_s.map(u64::from))),
        306_907
    );
    let with_caller = r
        .events
        .iter()
        .filter(|(_, e)| e.caller_raw.is_some())
        .count();
    assert_eq!(with_caller, 572, "param1 of every call row that has one");
    let rna_pos: Vec<(Option<u32>, Option<u32>)> = of(EventKind::RingNoAnswer)
        .map(|e| (e.orig_position, e.position))
        .collect();
    assert_eq!(
        rna_pos.iter().filter(|p| **p == (Some(1), Some(1))).count(),
        306
    );
    assert_eq!(
        rna_pos.iter().filter(|p| **p == (Some(2), Some(1))).count(),
        35
    );
    assert_eq!(
        rna_pos.iter().filter(|p| **p == (Some(2), Some(2))).count(),
        19
    );
}

#[test]
fn voipreports_rows() {
    let r = run_voip(&sample(VOIP), Tz::UTC);
    let first = r.at(2);
    assert_eq!(rfc(first), "2018-11-29T21:34:49+00:00");
    assert_eq!(
        (
            first.kind,
            first.call_id.as_deref(),
            first.queue.as_deref(),
            first.agent.as_deref()
        ),
        (EventKind::QueueStart, None, None, None)
    );
    assert!(first.data.is_empty());
    let (line, last) = r.events.last().unwrap();
    assert_eq!(*line, 1001);
    assert_eq!(rfc(last), "2018-12-04T17:00:51+00:00");
    assert_eq!(
        (
            last.kind,
            last.call_id.as_deref(),
            last.queue.as_deref(),
            last.agent.as_deref()
        ),
        (
            EventKind::EnterQueue,
            Some("1543942842.2438"),
            Some("IT"),
            None
        )
    );
    assert_eq!(
        (
            last.caller_raw.as_deref(),
            last.orig_position,
            last.position
        ),
        (Some("16786664403"), Some(2), None)
    );
    assert_eq!(
        last.caller.as_deref(),
        Some("16786664403"),
        "not a valid RU number: kept as digits"
    );
    assert_eq!(last.data, vec!["", "16786664403", "2"]);

    // uid N is on line N + 1
    let login = r.at(7);
    assert_eq!(
        (login.kind, login.verb.as_ref()),
        (EventKind::AgentLogin, "AGENTCALLBACKLOGIN")
    );
    assert_eq!(
        (login.agent.as_deref(), login.agent_raw.as_deref()),
        (Some("1127"), Some("Agent/1127"))
    );
    assert_eq!(
        (
            login.info.as_deref(),
            login.queue.as_deref(),
            login.call_id.as_deref()
        ),
        (Some("hint:1127@default"), None, Some("1543598985.25"))
    );
    let add = r.at(6);
    assert_eq!(
        (add.kind, add.agent.as_deref(), add.agent_raw.as_deref()),
        (
            EventKind::MemberAdded,
            Some("1127"),
            Some("Local/1127@callback-agent")
        )
    );

    let conn = r.at(20);
    assert_eq!(rfc(conn), "2018-11-30T18:32:33+00:00");
    assert_eq!(
        (
            conn.kind,
            conn.wait_s,
            conn.ring_ms,
            conn.peer_call_id.as_deref()
        ),
        (
            EventKind::Answered,
            Some(76),
            Some(6000),
            Some("1543602746.232")
        )
    );
    assert_eq!(
        (conn.caller_raw.as_deref(), conn.orig_position),
        (None, None)
    );
    let done = r.at(21);
    assert_eq!(
        (done.kind, done.wait_s, done.talk_s, done.orig_position),
        (EventKind::CompletedByCaller, Some(76), Some(847), Some(1))
    );
    assert_eq!(done.caller_raw.as_deref(), Some("17038225596"));
    assert_eq!(done.data, vec!["76", "847", "1"]);

    let att = r.at(178);
    assert_eq!(
        (
            att.verb.as_ref(),
            att.info.as_deref(),
            att.wait_s,
            att.talk_s,
            att.orig_position
        ),
        ("ATTENDEDTRANSFER", None, Some(6), Some(30), Some(1))
    );
    let blind = r.at(929);
    assert_eq!(
        (
            blind.verb.as_ref(),
            blind.info.as_deref(),
            blind.wait_s,
            blind.talk_s,
            blind.orig_position
        ),
        (
            "BLINDTRANSFER",
            Some("1142@transfer"),
            Some(6),
            Some(38),
            Some(1)
        )
    );
    assert_eq!(blind.data, vec!["1142", "transfer", "6", "38", "1"]);

    let out = r.at(13);
    assert_eq!(
        (out.kind, out.verb.as_ref(), out.agent.as_deref()),
        (EventKind::Other, "OUTANSWER", Some("1127"))
    );
    assert_eq!(
        out.data,
        vec!["3318", "COMPLETEAGENT", "", "0", "0", "2", "398"]
    );
    assert_eq!(
        (out.caller_raw.as_deref(), out.talk_s),
        (None, None),
        "custom verbs are not interpreted"
    );

    let timeout = r
        .events
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.kind == EventKind::Timeout)
        .unwrap();
    assert_eq!(
        (timeout.position, timeout.orig_position, timeout.wait_s),
        (Some(1), Some(2), Some(300))
    );
}

/// The export's `time` column is `date_time` in UTC−05:00 (America/New_York,
/// EST in Nov–Dec), rounded to the second: on 504 of the 1 000 rows it is 1 s
/// later than `date_time` (Asterisk's DB time has microseconds; the epoch
/// column was truncated).
#[test]
fn voipreports_ts_from_date_time_matches_local_time_column() {
    let bytes = sample(VOIP);
    let ny: Tz = "America/New_York".parse().unwrap();
    let r = run_voip(&bytes, Tz::UTC);
    let mut rdr = csv::Reader::from_reader(&bytes[..]);
    let mut late = 0;
    for (rec, (_, e)) in rdr.records().map(Result::unwrap).zip(&r.events) {
        assert_eq!(
            e.ts.timestamp(),
            rec[1].parse::<i64>().unwrap(),
            "ts is date_time"
        );
        let local = NaiveDateTime::parse_from_str(&rec[13], "%Y-%m-%d %H:%M:%S").unwrap();
        let local = ny.from_local_datetime(&local).single().unwrap();
        let diff = local.timestamp() - e.ts.timestamp();
        assert!(
            diff == 0 || diff == 1,
            "uid {}: time {} vs ts {}",
            &rec[0],
            &rec[13],
            e.ts
        );
        late += usize::from(diff == 1);
    }
    assert_eq!(late, 504);

    // Without date_time the reader uses `time` in the source's zone.
    let mut rdr = csv::Reader::from_reader(&bytes[..]);
    let mut w = csv::Writer::from_writer(Vec::new());
    let keep = |r: &csv::StringRecord| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, s)| s.to_string())
            .collect()
    };
    w.write_record(keep(rdr.headers().unwrap())).unwrap();
    for rec in rdr.records() {
        w.write_record(keep(&rec.unwrap())).unwrap();
    }
    let no_epoch = run_voip(&w.into_inner().unwrap(), ny);
    assert_eq!(no_epoch.events.len(), 1000);
    let mut late = 0;
    for ((_, a), (_, b)) in r.events.iter().zip(&no_epoch.events) {
        let diff = b.ts.timestamp() - a.ts.timestamp();
        assert!(diff == 0 || diff == 1);
        late += usize::from(diff == 1);
        assert_eq!((a.kind, &a.call_id, &a.data), (b.kind, &b.call_id, &b.data));
    }
    assert_eq!(late, 504);
    assert_eq!(rfc(&no_epoch.events[0].1), "2018-11-29T21:34:49+00:00");
}

// ---------------------------------------------------------------------------
// Every version form of every verb (FORMATS.md §a.4), §a.6, and edge cases.

/// Expected fields of one line; anything not set must be absent.
#[derive(Clone, Copy)]
struct Case {
    line: &'static [u8],
    ts: i64,
    kind: EventKind,
    verb: &'static str,
    call_id: Option<&'static str>,
    queue: Option<&'static str>,
    agent: Option<&'static str>,
    agent_raw: Option<&'static str>,
    caller_raw: Option<&'static str>,
    caller: Option<&'static str>,
    caller_name: Option<&'static str>,
    callee: Option<&'static str>,
    peer: Option<&'static str>,
    direction: Option<Direction>,
    wait: Option<u32>,
    talk: Option<u32>,
    ring_ms: Option<u64>,
    duration: Option<u32>,
    position: Option<u32>,
    orig: Option<u32>,
    info: Option<&'static str>,
    ndata: usize,
}

const B: Case = Case {
    line: b"",
    ts: 1546015415,
    kind: EventKind::Other,
    verb: "",
    call_id: Some("1546015415.757927"),
    queue: Some("201"),
    agent: None,
    agent_raw: None,
    caller_raw: None,
    caller: None,
    caller_name: None,
    callee: None,
    peer: None,
    direction: None,
    wait: None,
    talk: None,
    ring_ms: None,
    duration: None,
    position: None,
    orig: None,
    info: None,
    ndata: 0,
};

/// Callid, queue and agent all NONE.
const N: Case = Case {
    call_id: None,
    queue: None,
    ..B
};

const INBOUND: Option<Direction> = Some(Direction::Inbound);

fn check(c: &Case) {
    let shown = String::from_utf8_lossy(c.line);
    let e = parser()
        .parse_line(c.line)
        .unwrap_or_else(|err| panic!("{shown}: {err}"))
        .unwrap_or_else(|| panic!("{shown}: no event"));
    let got = (
        e.ts.timestamp(),
        e.kind,
        e.verb.as_ref(),
        e.call_id.as_deref(),
        e.queue.as_deref(),
        e.agent.as_deref(),
        e.agent_raw.as_deref(),
    );
    let want = (
        c.ts,
        c.kind,
        c.verb,
        c.call_id,
        c.queue,
        c.agent,
        c.agent_raw,
    );
    assert_eq!(got, want, "envelope of {shown}");
    let got = (
        e.caller_raw.as_deref(),
        e.caller.as_deref(),
        e.caller_name.as_deref(),
        e.callee.as_deref(),
        e.peer_call_id.as_deref(),
        e.direction,
        e.info.as_deref(),
    );
    let want = (
        c.caller_raw,
        c.caller,
        c.caller_name,
        c.callee,
        c.peer,
        c.direction,
        c.info,
    );
    assert_eq!(got, want, "text fields of {shown}");
    let got = (
        e.wait_s,
        e.talk_s,
        e.ring_ms,
        e.duration_s,
        e.position,
        e.orig_position,
        e.data.len(),
    );
    let want = (
        c.wait, c.talk, c.ring_ms, c.duration, c.position, c.orig, c.ndata,
    );
    assert_eq!(got, want, "numbers of {shown}");
    assert_eq!(e.source_kind.as_str(), "asterisk_queue_log");
    assert!(e.event_id.is_empty());
}

#[test]
fn every_verb_in_every_version_form() {
    use EventKind as K;
    let paty = Some("Paty Marin");
    let cases = [
        // QUEUESTART / CONFIGRELOAD: all NONE, always a trailing '|'
        Case { line: b"1596191926|NONE|NONE|NONE|QUEUESTART|", ts: 1596191926, kind: K::QueueStart, verb: "QUEUESTART", ..N },
        Case { line: b"1596191926|NONE|NONE|NONE|CONFIGRELOAD|", ts: 1596191926, kind: K::ConfigReload, verb: "CONFIGRELOAD", ..N },
        // DID (FreePBX), with and without a value
        Case { line: b"1546015415|1546015415.757927|201|NONE|DID|+15556667775", kind: K::Did, verb: "DID", callee: Some("+15556667775"), info: Some("+15556667775"), direction: INBOUND, ndata: 1, ..B },
        Case { line: b"1546015415|1546015415.757927|201|NONE|DID|", kind: K::Did, verb: "DID", direction: INBOUND, ..B },
        // ENTERQUEUE 1.4-1.6: url|cid (§a.6, epoch replaced by 0 in the source)
        Case { line: b"0|1266833905.2|9000|NONE|ENTERQUEUE||01773597776", ts: 0, kind: K::EnterQueue, verb: "ENTERQUEUE", call_id: Some("1266833905.2"), queue: Some("9000"), caller_raw: Some("01773597776"), caller: Some("01773597776"), direction: INBOUND, ndata: 2, ..B },
        // 1.8+: url|cid|origpos
        Case { line: b"1546015415|1546015415.757927|201|NONE|ENTERQUEUE||+13238679471|1", kind: K::EnterQueue, verb: "ENTERQUEUE", caller_raw: Some("+13238679471"), caller: Some("+13238679471"), orig: Some(1), direction: INBOUND, ndata: 3, ..B },
        // with a URL, and CID restricted (log-restricted-caller-id=no)
        Case { line: b"1546015415|1546015415.757927|201|NONE|ENTERQUEUE|http://crm/c?id=7||3", kind: K::EnterQueue, verb: "ENTERQUEUE", info: Some("http://crm/c?id=7"), orig: Some(3), direction: INBOUND, ndata: 3, ..B },
        // 20.14+: url|cid|origpos|name
        Case { line: b"1546015415|1546015415.757927|201|NONE|ENTERQUEUE||89161234567|2|Ivan Petrov", kind: K::EnterQueue, verb: "ENTERQUEUE", caller_raw: Some("89161234567"), caller: Some("+79161234567"), caller_name: Some("Ivan Petrov"), orig: Some(2), direction: INBOUND, ndata: 4, ..B },
        // pre-2025 name with an unescaped '|', and the 2025+ '_' replacement
        Case { line: b"1546015415|1546015415.757927|201|NONE|ENTERQUEUE||89161234567|2|Ivan | Petrov", kind: K::EnterQueue, verb: "ENTERQUEUE", caller_raw: Some("89161234567"), caller: Some("+79161234567"), caller_name: Some("Ivan | Petrov"), orig: Some(2), direction: INBOUND, ndata: 5, ..B },
        Case { line: b"1546015415|1546015415.757927|201|NONE|ENTERQUEUE||89161234567|2|Ivan _ Petrov", kind: K::EnterQueue, verb: "ENTERQUEUE", caller_raw: Some("89161234567"), caller: Some("+79161234567"), caller_name: Some("Ivan _ Petrov"), orig: Some(2), direction: INBOUND, ndata: 4, ..B },
        // RINGNOANSWER (ms; 0 on the busy path), RINGCANCELED (15+)
        Case { line: b"1546015415|1546015415.757927|201|John Rembold|RINGNOANSWER|0", kind: K::RingNoAnswer, verb: "RINGNOANSWER", agent: Some("John Rembold"), agent_raw: Some("John Rembold"), ring_ms: Some(0), ndata: 1, ..B },
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/201|RINGNOANSWER|15000", kind: K::RingNoAnswer, verb: "RINGNOANSWER", agent: Some("201"), agent_raw: Some("PJSIP/201"), ring_ms: Some(15000), ndata: 1, ..B },
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/201|RINGCANCELED|4321", kind: K::RingCanceled, verb: "RINGCANCELED", agent: Some("201"), agent_raw: Some("PJSIP/201"), ring_ms: Some(4321), ndata: 1, ..B },
        // CONNECT 1.4: holdtime|member_uniqueid (§a.6); 1.6+: |ringtime
        Case { line: b"1266833933|1266833925.10|9000|Local/2004@from-internal/n|CONNECT|2|1266833933.27", ts: 1266833933, kind: K::Answered, verb: "CONNECT", call_id: Some("1266833925.10"), queue: Some("9000"), agent: Some("2004"), agent_raw: Some("Local/2004@from-internal/n"), wait: Some(2), peer: Some("1266833933.27"), ndata: 2, ..B },
        Case { line: b"1546015425|1546015415.757927|201|Paty Marin|CONNECT|10|1546015415.757936|9", ts: 1546015425, kind: K::Answered, verb: "CONNECT", agent: paty, agent_raw: paty, wait: Some(10), peer: Some("1546015415.757936"), ring_ms: Some(9000), ndata: 3, ..B },
        // COMPLETECALLER / COMPLETEAGENT 1.4: hold|call; 1.6+: |origpos
        Case { line: b"1546015547|1546015415.757927|201|SIP/8007|COMPLETECALLER|10|122", ts: 1546015547, kind: K::CompletedByCaller, verb: "COMPLETECALLER", agent: Some("8007"), agent_raw: Some("SIP/8007"), wait: Some(10), talk: Some(122), ndata: 2, ..B },
        Case { line: b"1546015547|1546015415.757927|201|Paty Marin|COMPLETECALLER|10|122|1", ts: 1546015547, kind: K::CompletedByCaller, verb: "COMPLETECALLER", agent: paty, agent_raw: paty, wait: Some(10), talk: Some(122), orig: Some(1), ndata: 3, ..B },
        Case { line: b"1546015547|1546015415.757927|201|SIP/8007|COMPLETEAGENT|10|122", ts: 1546015547, kind: K::CompletedByAgent, verb: "COMPLETEAGENT", agent: Some("8007"), agent_raw: Some("SIP/8007"), wait: Some(10), talk: Some(122), ndata: 2, ..B },
        Case { line: b"1546015547|1546015415.757927|201|Paty Marin|COMPLETEAGENT|10|122|4", ts: 1546015547, kind: K::CompletedByAgent, verb: "COMPLETEAGENT", agent: paty, agent_raw: paty, wait: Some(10), talk: Some(122), orig: Some(4), ndata: 3, ..B },
        // TRANSFER 1.4: exten|context|hold|call; 1.6.1-11: |origpos
        Case { line: b"1546015415|1546015415.757927|201|SIP/8007|TRANSFER|2004|from-internal|5|60", kind: K::Transferred, verb: "TRANSFER", agent: Some("8007"), agent_raw: Some("SIP/8007"), info: Some("2004@from-internal"), wait: Some(5), talk: Some(60), ndata: 4, ..B },
        Case { line: b"1546015415|1546015415.757927|201|SIP/8007|TRANSFER|2004|from-internal|5|60|2", kind: K::Transferred, verb: "TRANSFER", agent: Some("8007"), agent_raw: Some("SIP/8007"), info: Some("2004@from-internal"), wait: Some(5), talk: Some(60), orig: Some(2), ndata: 5, ..B },
        // BLINDTRANSFER 12+
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/7009|BLINDTRANSFER|1142|transfer|6|38|1", kind: K::Transferred, verb: "BLINDTRANSFER", agent: Some("7009"), agent_raw: Some("PJSIP/7009"), info: Some("1142@transfer"), wait: Some(6), talk: Some(38), orig: Some(1), ndata: 5, ..B },
        // ATTENDEDTRANSFER 12+: BRIDGE, APP (ISS-759), LINK (6 fields)
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/7009|ATTENDEDTRANSFER|BRIDGE|3b7d8e4e-5f7c-4a0e-9a5e-0c1f2d3e4f50|4|90|1", kind: K::Transferred, verb: "ATTENDEDTRANSFER", agent: Some("7009"), agent_raw: Some("PJSIP/7009"), info: Some("BRIDGE|3b7d8e4e-5f7c-4a0e-9a5e-0c1f2d3e4f50"), wait: Some(4), talk: Some(90), orig: Some(1), ndata: 5, ..B },
        Case { line: b"1717397391|1717397390.239830|1501|PJSIP/7009|ATTENDEDTRANSFER|APP|Queue|12|120|1", ts: 1717397391, kind: K::Transferred, verb: "ATTENDEDTRANSFER", call_id: Some("1717397390.239830"), queue: Some("1501"), agent: Some("7009"), agent_raw: Some("PJSIP/7009"), info: Some("APP|Queue"), wait: Some(12), talk: Some(120), orig: Some(1), ndata: 5, ..B },
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/7009|ATTENDEDTRANSFER|LINK|PJSIP/7009-0000001a|PJSIP/7051-0000001b|5|60|2", kind: K::Transferred, verb: "ATTENDEDTRANSFER", agent: Some("7009"), agent_raw: Some("PJSIP/7009"), info: Some("LINK|PJSIP/7009-0000001a|PJSIP/7051-0000001b"), wait: Some(5), talk: Some(60), orig: Some(2), ndata: 6, ..B },
        // ABANDON, EXITEMPTY: position|origpos|waittime
        Case { line: b"1546015415|1546015415.757927|201|NONE|ABANDON|1|2|45", kind: K::Abandoned, verb: "ABANDON", position: Some(1), orig: Some(2), wait: Some(45), ndata: 3, ..B },
        Case { line: b"1546015415|1546015415.757927|201|NONE|EXITEMPTY|1|1|0", kind: K::ExitEmpty, verb: "EXITEMPTY", position: Some(1), orig: Some(1), wait: Some(0), ndata: 3, ..B },
        // EXITWITHTIMEOUT 1.4: position; 1.6+: position|origpos|waittime
        Case { line: b"1546015415|1546015415.757927|201|NONE|EXITWITHTIMEOUT|2", kind: K::Timeout, verb: "EXITWITHTIMEOUT", position: Some(2), ndata: 1, ..B },
        Case { line: b"1546015415|1546015415.757927|201|NONE|EXITWITHTIMEOUT|1|2|300", kind: K::Timeout, verb: "EXITWITHTIMEOUT", position: Some(1), orig: Some(2), wait: Some(300), ndata: 3, ..B },
        // EXITWITHKEY <=11: key|position; 12+: key|position|origpos|waittime
        Case { line: b"1546015415|1546015415.757927|201|NONE|EXITWITHKEY|5|1", kind: K::ExitWithKey, verb: "EXITWITHKEY", info: Some("5"), position: Some(1), ndata: 2, ..B },
        Case { line: b"1546015415|1546015415.757927|201|NONE|EXITWITHKEY|#|1|3|12", kind: K::ExitWithKey, verb: "EXITWITHKEY", info: Some("#"), position: Some(1), orig: Some(3), wait: Some(12), ndata: 4, ..B },
        // WITHDRAW (16.25+): position|origpos|waittime|info
        Case { line: b"1546015415|1546015415.757927|201|NONE|WITHDRAW|1|2|30|moved to callback", kind: K::Withdrawn, verb: "WITHDRAW", position: Some(1), orig: Some(2), wait: Some(30), info: Some("moved to callback"), ndata: 4, ..B },
        // AGENTDUMP, SYSCOMPAT: no data
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/201|AGENTDUMP|", kind: K::AgentDump, verb: "AGENTDUMP", agent: Some("201"), agent_raw: Some("PJSIP/201"), ..B },
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/201|SYSCOMPAT|", kind: K::SysCompat, verb: "SYSCOMPAT", agent: Some("201"), agent_raw: Some("PJSIP/201"), ..B },
        // ADDMEMBER: PAUSED or empty; MANAGER / REALTIME / CLI / app uniqueid
        Case { line: b"1546015415|MANAGER|201|PJSIP/201|ADDMEMBER|PAUSED", kind: K::MemberAdded, verb: "ADDMEMBER", call_id: None, agent: Some("201"), agent_raw: Some("PJSIP/201"), info: Some("PAUSED"), ndata: 1, ..B },
        Case { line: b"1546015415|REALTIME|201|Local/201@from-queue/n|ADDMEMBER|", kind: K::MemberAdded, verb: "ADDMEMBER", call_id: None, agent: Some("201"), agent_raw: Some("Local/201@from-queue/n"), ..B },
        Case { line: b"1546015415|1546015400.12|201|PJSIP/201|ADDMEMBER|", kind: K::MemberAdded, verb: "ADDMEMBER", call_id: Some("1546015400.12"), agent: Some("201"), agent_raw: Some("PJSIP/201"), ..B },
        Case { line: b"1546015415|CLI|201|PJSIP/201|REMOVEMEMBER|", kind: K::MemberRemoved, verb: "REMOVEMEMBER", call_id: None, agent: Some("201"), agent_raw: Some("PJSIP/201"), ..B },
        // PAUSE/UNPAUSE: 1.4 empty reason, 1.6+ reason; callid NONE
        Case { line: b"1546015415|NONE|201|PJSIP/201|PAUSE|", kind: K::Paused, verb: "PAUSE", call_id: None, agent: Some("201"), agent_raw: Some("PJSIP/201"), ..B },
        Case { line: b"1546015415|NONE|201|PJSIP/201|PAUSE|Lunch break", kind: K::Paused, verb: "PAUSE", call_id: None, agent: Some("201"), agent_raw: Some("PJSIP/201"), info: Some("Lunch break"), ndata: 1, ..B },
        Case { line: b"1546015415|NONE|201|PJSIP/201|UNPAUSE|Auto-Unpause", kind: K::Unpaused, verb: "UNPAUSE", call_id: None, agent: Some("201"), agent_raw: Some("PJSIP/201"), info: Some("Auto-Unpause"), ndata: 1, ..B },
        // PAUSEALL / UNPAUSEALL: queue NONE
        Case { line: b"1546015415|NONE|NONE|PJSIP/201|PAUSEALL|Meeting", kind: K::PausedAll, verb: "PAUSEALL", agent: Some("201"), agent_raw: Some("PJSIP/201"), info: Some("Meeting"), ndata: 1, ..N },
        Case { line: b"1546015415|NONE|NONE|PJSIP/201|UNPAUSEALL|", kind: K::UnpausedAll, verb: "UNPAUSEALL", agent: Some("201"), agent_raw: Some("PJSIP/201"), ..N },
        // PENALTY (1.6+), RINGINUSE (11+): agent = interface
        Case { line: b"1546015415|NONE|201|SIP/201|PENALTY|5", kind: K::Penalty, verb: "PENALTY", call_id: None, agent: Some("201"), agent_raw: Some("SIP/201"), info: Some("5"), ndata: 1, ..B },
        Case { line: b"1546015415|NONE|201|PJSIP/201|RINGINUSE|0", kind: K::RingInUse, verb: "RINGINUSE", call_id: None, agent: Some("201"), agent_raw: Some("PJSIP/201"), info: Some("0"), ndata: 1, ..B },
        // AGENTLOGIN/LOGOFF: <=11 agent Agent/N, 12+ agent N; queue NONE
        Case { line: b"1546015415|1546015410.3|NONE|Agent/1001|AGENTLOGIN|SIP/1001-00000003", kind: K::AgentLogin, verb: "AGENTLOGIN", call_id: Some("1546015410.3"), queue: None, agent: Some("1001"), agent_raw: Some("Agent/1001"), info: Some("SIP/1001-00000003"), ndata: 1, ..B },
        Case { line: b"1546015415|1546015410.3|NONE|1001|AGENTLOGIN|PJSIP/1001-0000000a", kind: K::AgentLogin, verb: "AGENTLOGIN", call_id: Some("1546015410.3"), queue: None, agent: Some("1001"), agent_raw: Some("1001"), info: Some("PJSIP/1001-0000000a"), ndata: 1, ..B },
        Case { line: b"1546015415|1546015410.3|NONE|Agent/1001|AGENTLOGOFF|SIP/1001-00000003|3600", kind: K::AgentLogoff, verb: "AGENTLOGOFF", call_id: Some("1546015410.3"), queue: None, agent: Some("1001"), agent_raw: Some("Agent/1001"), info: Some("SIP/1001-00000003"), duration: Some(3600), ndata: 2, ..B },
        Case { line: b"1546015415|1546015410.3|NONE|1001|AGENTLOGOFF|PJSIP/1001-0000000a|61", kind: K::AgentLogoff, verb: "AGENTLOGOFF", call_id: Some("1546015410.3"), queue: None, agent: Some("1001"), agent_raw: Some("1001"), info: Some("PJSIP/1001-0000000a"), duration: Some(61), ndata: 2, ..B },
        // AGENTCALLBACKLOGIN/LOGOFF (<=1.4, Wazo)
        Case { line: b"1546015415|1546015410.3|NONE|Agent/1001|AGENTCALLBACKLOGIN|1001@default", kind: K::AgentLogin, verb: "AGENTCALLBACKLOGIN", call_id: Some("1546015410.3"), queue: None, agent: Some("1001"), agent_raw: Some("Agent/1001"), info: Some("1001@default"), ndata: 1, ..B },
        Case { line: b"1546015415|1546015410.3|NONE|Agent/1001|AGENTCALLBACKLOGOFF|1001@default|3600|CommandLogoff", kind: K::AgentLogoff, verb: "AGENTCALLBACKLOGOFF", call_id: Some("1546015410.3"), queue: None, agent: Some("1001"), agent_raw: Some("Agent/1001"), info: Some("1001@default"), duration: Some(3600), ndata: 3, ..B },
        // OUTCALL (15+): status|talktime|params
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/201|OUTCALL|ANSWER|45|x=1", kind: K::OutCall, verb: "OUTCALL", agent: Some("201"), agent_raw: Some("PJSIP/201"), info: Some("ANSWER"), talk: Some(45), ndata: 3, ..B },
        // Non-Asterisk verbs (Wazo, QueueMetrics, custom): kept as `other`
        Case { line: b"1546015415|1546015415.757927|201|NONE|FULL|", kind: K::Other, verb: "FULL", ..B },
        Case { line: b"1546015415|1546015415.757927|201|NONE|JOINEMPTY|", kind: K::Other, verb: "JOINEMPTY", ..B },
        Case { line: b"1546015415|1546015415.757927|201|NONE|CLOSED|", kind: K::Other, verb: "CLOSED", ..B },
        Case { line: b"1546015415|1546015415.757927|201|PJSIP/201|CALLERONHOLD|x|y", kind: K::Other, verb: "CALLERONHOLD", agent: Some("201"), agent_raw: Some("PJSIP/201"), ndata: 2, ..B },
        // AMI QueueLog without Interface: empty agent
        Case { line: b"1546015415|NONE|201||INFO|hello|world", kind: K::Other, verb: "INFO", call_id: None, ndata: 2, ..B },
        // systemname-prefixed uniqueid, lower-case verb
        Case { line: b"1546015425|pbx1-1546015415.757927|201|PJSIP/201|connect|3|pbx1-1546015415.757936|2", ts: 1546015425, kind: K::Answered, verb: "CONNECT", call_id: Some("pbx1-1546015415.757927"), agent: Some("201"), agent_raw: Some("PJSIP/201"), wait: Some(3), peer: Some("pbx1-1546015415.757936"), ring_ms: Some(2000), ndata: 3, ..B },
        // trailing '|' (QueueLog app, ISS-859)
        Case { line: b"1546015547|1546015415.757927|201|Paty Marin|COMPLETECALLER|10|122|1|", ts: 1546015547, kind: K::CompletedByCaller, verb: "COMPLETECALLER", agent: paty, agent_raw: paty, wait: Some(10), talk: Some(122), orig: Some(1), ndata: 4, ..B },
        // CRLF
        Case { line: b"1546015415|1546015415.757927|201|NONE|ABANDON|1|2|45\r\n", kind: K::Abandoned, verb: "ABANDON", position: Some(1), orig: Some(2), wait: Some(45), ndata: 3, ..B },
        // blanks around '|' (§a.6, hand-edited data)
        Case { line: b"1266834360 | 1266834354.91 | 9000 | NONE | ENTERQUEUE || anonymous", ts: 1266834360, kind: K::EnterQueue, verb: "ENTERQUEUE", call_id: Some("1266834354.91"), queue: Some("9000"), caller_raw: Some("anonymous"), direction: INBOUND, ndata: 2, ..B },
        Case { line: b"1266833933 | 1266833925.10 | 9000 | Local/2004@from-internal/n | CONNECT | 2 | 1266833933.27 ", ts: 1266833933, kind: K::Answered, verb: "CONNECT", call_id: Some("1266833925.10"), queue: Some("9000"), agent: Some("2004"), agent_raw: Some("Local/2004@from-internal/n"), wait: Some(2), peer: Some("1266833933.27"), ndata: 2, ..B },
        // a DB-style local time (UTC source zone here)
        Case { line: b"2012-07-04 07:33:21.165823|1341401601.24|q1|NONE|ENTERQUEUE||1000|1", ts: 1341387201, kind: K::EnterQueue, verb: "ENTERQUEUE", call_id: Some("1341401601.24"), queue: Some("q1"), caller_raw: Some("1000"), caller: Some("1000"), orig: Some(1), direction: INBOUND, ndata: 3, ..B },
    ];
    for c in &cases {
        check(c);
    }
    assert_eq!(cases.len(), 63);
}

#[test]
fn non_utf8_caller_name_is_decoded_with_the_fallback_charset() {
    let mut line = b"1546015415|1546015415.757927|201|NONE|ENTERQUEUE||89161234567|1|".to_vec();
    line.extend_from_slice(&[
        0xC8, 0xE2, 0xE0, 0xED, 0x20, 0xCF, 0xE5, 0xF2, 0xF0, 0xEE, 0xE2,
    ]); // cp1251
    let e = parser().parse_line(&line).unwrap().unwrap();
    assert_eq!(e.caller_name.as_deref(), Some("Иван Петров"));
    assert_eq!(e.caller.as_deref(), Some("+79161234567"));
    // a member name in cp1251 is the agent
    let mut line = b"1546015425|1546015415.757927|201|".to_vec();
    line.extend_from_slice(&[0xC8, 0xE2, 0xE0, 0xED]);
    line.extend_from_slice(b"|CONNECT|10|1546015415.757936|9");
    let e = parser().parse_line(&line).unwrap().unwrap();
    assert_eq!(e.agent.as_deref(), Some("Иван"));
    // cp866 when configured
    let mut p = QueueLogParser::new(
        SourceContext {
            fallback_charset: Charset::Cp866,
            ..SourceContext::new("q", "pbx1")
        },
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    );
    let mut line = b"1|c|q|NONE|ENTERQUEUE||201|1|".to_vec();
    line.extend_from_slice(&[0x88, 0xA2, 0xA0, 0xAD]);
    assert_eq!(
        p.parse_line(&line).unwrap().unwrap().caller_name.as_deref(),
        Some("Иван")
    );
    // UTF-8 passes through
    let e = parser()
        .parse_line("1|c|q|NONE|ENTERQUEUE||201|1|Иван Петров".as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(e.caller_name.as_deref(), Some("Иван Петров"));
}

#[test]
fn eight_kib_data_and_long_lines() {
    let name = "N".repeat(8 * 1024);
    let line = format!("1546015415|1546015415.757927|201|NONE|ENTERQUEUE||89161234567|1|{name}");
    let e = parser().parse_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(e.caller_name.as_deref(), Some(name.as_str()));
    assert_eq!(e.orig_position, Some(1));
    let info = "x|".repeat(4 * 1024);
    let line = format!("1546015415|NONE|201||CUSTOM|{info}");
    let e = parser().parse_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(e.data.len(), 4 * 1024 + 1);
    let line = format!("1|c|q|a|CUSTOM|{}", "y".repeat(MAX_LINE_LEN));
    assert!(matches!(
        parser().parse_line(line.as_bytes()),
        Err(QueueLogError::TooLong { .. })
    ));
}

#[test]
fn blank_and_rejected_lines() {
    let mut p = parser();
    for blank in [&b""[..], b"\n", b"\r\n", b"   \t  \r\n"] {
        assert_eq!(p.parse_line(blank).unwrap(), None);
    }
    let cases: [(&[u8], QueueLogError); 6] = [
        (b"garbage", QueueLogError::TooFewFields { found: 1 }),
        (
            b"1546015415|1546015415.757927|201|NONE",
            QueueLogError::TooFewFields { found: 4 },
        ),
        (
            b"15460x5415|c|201|NONE|ABANDON|1|1|1",
            QueueLogError::BadTime {
                found: "15460x5415".into(),
            },
        ),
        (
            b"|c|201|NONE|ABANDON|1|1|1",
            QueueLogError::BadTime { found: "".into() },
        ),
        (b"1546015415|c|201|NONE||1", QueueLogError::EmptyEvent),
        (
            b"1546015415|c|201|NONE|ENTER QUEUE|1",
            QueueLogError::BadEvent {
                found: "ENTER QUEUE".into(),
            },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(
            p.parse_line(line).unwrap_err(),
            want,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    let ny: Tz = "America/New_York".parse().unwrap();
    let err = parser_in(ny)
        .parse_line(b"2024-03-10 02:30:00|c|q|NONE|ABANDON|1|1|1")
        .unwrap_err();
    assert!(
        matches!(err, QueueLogError::NonexistentLocalTime { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("America/New_York"));
}

#[test]
fn db_reader_rejects_say_why() {
    let mut r = QueueLogDbReader::new(parser());
    let err = r.parse_line(b"when,who,what").unwrap_err();
    assert_eq!(
        err,
        QueueLogDbError::UnknownLayout {
            found: vec!["when".into(), "who".into(), "what".into()]
        }
    );
    let err = r
        .parse_line(b"uid,date_time,callid,queue_name,event,param1,param2,param3\n")
        .unwrap_err();
    assert_eq!(
        err,
        QueueLogDbError::MissingColumns {
            layout: QueueLogDbLayout::Normalised,
            missing: vec!["type", "entpos", "expos", "htime", "ttime"],
            found: [
                "uid",
                "date_time",
                "callid",
                "queue_name",
                "event",
                "param1",
                "param2",
                "param3"
            ]
            .map(String::from)
            .to_vec(),
        }
    );
    assert!(
        err.to_string().contains("lacks [\"type\", \"entpos\""),
        "{err}"
    );
    // a header with quotes, blanks, BOM and capitals is fine
    assert_eq!(
        r.parse_line(b"\xEF\xBB\xBF\"Time\" , \"CALLID\",QueueName,Agent,Event,Data\r\n")
            .unwrap(),
        None
    );
    assert_eq!(r.layout(), Some(QueueLogDbLayout::AsteriskRealtime));
    let e = r
        .parse_line(b"1546015415,c,201,NONE,ABANDON,\"1|2|45\"\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.position, e.orig_position, e.wait_s),
        (Some(1), Some(2), Some(45))
    );
}
