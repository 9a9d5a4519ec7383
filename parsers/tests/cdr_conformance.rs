//! CDR parser conformance against the real sample files in
//! `shared/reference/samples` (provenance in `samples/SOURCES.md`).
//!
//! Expected counts and values were taken independently with Python's `csv`
//! module; expected UTC times were checked against the uniqueid's epoch
//! (which is the channel creation time, so equal to `start` on first legs).

use calltrail_parsers::cdr::{record_complete, CdrLayout, CdrParser};
use calltrail_parsers::{
    AgentResolver, Charset, Direction, Disposition, Event, EventKind, NumberConfig,
    NumberNormalizer, SourceContext, SourceKind,
};

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/samples/"
);

/// Reads a sample the way the ingest layer does: physical lines, joined
/// while [`record_complete`] says a quoted field is still open.
fn records(rel: &str) -> Vec<Vec<u8>> {
    let path = format!("{SAMPLES}{rel}");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        buf.extend_from_slice(line);
        if record_complete(&buf) {
            out.push(std::mem::take(&mut buf));
        }
    }
    assert!(buf.is_empty(), "{rel}: unterminated last record");
    out
}

struct Parsed {
    events: Vec<Event>,
    skipped: usize,
    layout: CdrLayout,
}

fn parse_all(rel: &str, layout: CdrLayout, tz: &str, region: &str) -> Parsed {
    parse_all_with(rel, layout, tz, region, 6)
}

fn parse_all_with(rel: &str, layout: CdrLayout, tz: &str, region: &str, max_ext: usize) -> Parsed {
    let ctx = SourceContext {
        timezone: tz.parse().unwrap(),
        fallback_charset: Charset::Cp1251,
        ..SourceContext::new("cdr", "pbx")
    };
    let numbers = NumberNormalizer::new(NumberConfig {
        default_region: region.into(),
        ..NumberConfig::default()
    })
    .unwrap();
    let mut p = CdrParser::new(
        ctx,
        SourceKind::AsteriskCdrCsv,
        layout,
        numbers,
        AgentResolver::default(),
    )
    .with_max_extension_len(max_ext);
    let mut events = Vec::new();
    let mut skipped = 0;
    for (i, rec) in records(rel).iter().enumerate() {
        match p.parse_line(rec) {
            Ok(Some(e)) => events.push(e),
            Ok(None) => skipped += 1,
            Err(e) => panic!("{rel} record {}: {e}", i + 1),
        }
    }
    Parsed {
        events,
        skipped,
        layout: p.layout().clone(),
    }
}

fn utc(e: &Event) -> String {
    e.ts.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[test]
fn mineevburyat_cdr_csv_21_columns() {
    // usegmtime=yes: the start dates equal the uniqueid epochs in UTC.
    let p = parse_all(
        "cdr-csv-mineevburyat/Master.csv",
        CdrLayout::Auto,
        "UTC",
        "RU",
    );
    assert_eq!(p.layout, CdrLayout::CdrCsv);
    assert_eq!((p.events.len(), p.skipped), (84, 0));
    let ev = &p.events;
    assert!(ev.iter().all(|e| e.kind == EventKind::CallRecord
        && e.verb.as_ref() == "CDR"
        && e.data.len() == 21));

    let first = &ev[0];
    assert_eq!(first.call_id.as_deref(), Some("1706368044.0"));
    assert_eq!(first.linked_id.as_deref(), Some("1706368044.0"));
    assert_eq!(utc(first), "2024-01-27T15:07:24Z");
    assert_eq!(first.ts.timestamp(), 1706368044);
    assert_eq!(first.caller_raw.as_deref(), Some("89245555937"));
    assert_eq!(first.caller.as_deref(), Some("+79245555937"));
    assert_eq!(first.caller_name.as_deref(), Some("89245555937"));
    assert_eq!(first.callee.as_deref(), Some("211474"));
    assert_eq!(
        (first.disposition, first.talk_s, first.duration_s),
        (Some(Disposition::Answered), Some(27), Some(27))
    );
    assert_eq!(first.direction, Some(Direction::Inbound));
    assert_eq!(first.info.as_deref(), Some("Hangup()"));

    let last = &ev[83];
    assert_eq!(
        last.call_id.as_deref(),
        Some("mainserverdss-1706445411.103")
    );
    assert_eq!(utc(last), "2024-01-28T12:36:51Z");
    assert_eq!(last.caller.as_deref(), Some("+79503999305"));
    assert_eq!(
        (last.disposition, last.talk_s),
        (Some(Disposition::Answered), Some(66))
    );
    assert_eq!(last.agent.as_deref(), Some("stadionpbx"));
    assert_eq!(last.agent_raw.as_deref(), Some("SIP/stadionpbx-0000003f"));
    assert_eq!(last.data[20], "83");

    // 0xA5 0xA5 inside the caller-ID name: cp1251 'Ґ' (U+0490), no replacement characters.
    assert_eq!(
        ev[40].caller_name.as_deref(),
        Some("8107924651\u{490}\u{490}b")
    );
    assert_eq!(ev[40].caller_name.as_deref(), Some("8107924651ҐҐb"));
    assert_eq!(ev[40].data[4], "\"8107924651ҐҐb\" <81079246516548>");
    // 810 is Russia's international prefix: 810 7 924 651 65 48.
    assert_eq!(ev[40].caller.as_deref(), Some("+79246516548"));
    assert_eq!(ev[68].caller_name.as_deref(), Some("8107995357ҐҐD"));
    assert_eq!(ev[78].caller_name.as_deref(), Some("8107924777ҐҐP"));
    assert_eq!(ev.iter().filter(|e| e.data[4].contains('Ґ')).count(), 8);
    assert!(ev
        .iter()
        .all(|e| e.data.iter().all(|f| !f.contains('\u{FFFD}'))));

    // Asterisk restarted with systemname set: uniqueids gain a prefix and
    // the sequence column restarts at 0.
    assert_eq!(ev[41].call_id.as_deref(), Some("1706415046.98"));
    assert_eq!(ev[41].data[20], "82");
    assert_eq!(
        ev[42].call_id.as_deref(),
        Some("mainserverdss-1706420300.0")
    );
    assert_eq!(
        ev[42].linked_id.as_deref(),
        Some("mainserverdss-1706420300.0")
    );
    assert_eq!(ev[42].data[20], "0");
    assert_eq!(ev[42].caller_name.as_deref(), Some("8107924352ҐҐX"));
    assert_eq!(
        ev.iter()
            .filter(|e| e
                .call_id
                .as_deref()
                .is_some_and(|c| c.starts_with("mainserverdss-")))
            .count(),
        42
    );

    // One call, several rows sharing a linkedid.
    assert_eq!(
        ev.iter()
            .filter(|e| e.linked_id.as_deref() == Some("1706372196.12"))
            .count(),
        7
    );
    // Unanswered calls: bare empty answer field.
    assert_eq!(ev.iter().filter(|e| e.answered_at.is_none()).count(), 45);
    let disp = |d| ev.iter().filter(|e| e.disposition == Some(d)).count();
    assert_eq!(
        (
            disp(Disposition::Answered),
            disp(Disposition::NoAnswer),
            disp(Disposition::Busy)
        ),
        (37, 46, 1)
    );
    // Every caller dials in from the PSTN (contexts stadion-pstn, TimeDelay),
    // but with the default 6-digit extensions one leg looks internal: the
    // 6-digit city number 214943 calling Local/ch1 (context TimeDelay).
    let not_inbound: Vec<_> = ev
        .iter()
        .filter(|e| e.direction != Some(Direction::Inbound))
        .map(|e| {
            (
                e.direction,
                e.caller_raw.as_deref(),
                e.callee_raw.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        not_inbound,
        [(Some(Direction::Internal), Some("214943"), Some("ch1"))]
    );
    // This PBX's extensions are 3 digits (301, 200, 158): configured so, all are inbound.
    let p4 = parse_all_with(
        "cdr-csv-mineevburyat/Master.csv",
        CdrLayout::CdrCsv,
        "UTC",
        "RU",
        4,
    );
    assert!(p4
        .events
        .iter()
        .all(|e| e.direction == Some(Direction::Inbound)));
}

#[test]
fn kelysaina_cdr_custom_default_mapping() {
    // Madagascar (UTC+3): start dates are local, uniqueids give the epoch.
    let p = parse_all(
        "cdr-custom-kelysaina/Master.csv",
        CdrLayout::Auto,
        "Indian/Antananarivo",
        "RU",
    );
    assert_eq!(p.layout, CdrLayout::CdrCustomDefault);
    assert_eq!((p.events.len(), p.skipped), (14, 0));
    let ev = &p.events;
    for e in ev {
        let uid = e.call_id.as_deref().unwrap();
        let epoch: i64 = uid.split('.').next().unwrap().parse().unwrap();
        assert_eq!(e.ts.timestamp(), epoch, "{uid}");
        assert_eq!(e.data.len(), 19);
        assert_eq!(e.caller_name, None, "clid is \"\" <clientN>");
        assert_eq!(e.direction, Some(Direction::Internal));
    }
    let first = &ev[0];
    assert_eq!(first.call_id.as_deref(), Some("1690325492.2"));
    assert_eq!(utc(first), "2023-07-25T22:51:32Z");
    assert_eq!(first.caller_raw.as_deref(), Some("client1"));
    // An endpoint name stays a name (it is not a number).
    assert_eq!(first.caller.as_deref(), Some("client1"));
    assert_eq!(first.callee.as_deref(), Some("6789"));
    assert_eq!(
        (first.disposition, first.talk_s, first.duration_s),
        (Some(Disposition::Answered), Some(13), Some(31))
    );
    assert_eq!(first.agent.as_deref(), Some("client1"));
    assert_eq!(first.linked_id, None);
    assert_eq!(first.data[18], "2");

    let last = &ev[13];
    assert_eq!(last.call_id.as_deref(), Some("1690352700.3"));
    assert_eq!(utc(last), "2023-07-26T06:25:00Z");
    assert_eq!(last.caller_raw.as_deref(), Some("client2"));
    assert_eq!(
        (last.disposition, last.talk_s),
        (Some(Disposition::Answered), Some(2))
    );

    let no_answer: Vec<&Event> = ev
        .iter()
        .filter(|e| e.disposition == Some(Disposition::NoAnswer))
        .collect();
    assert_eq!(no_answer.len(), 3);
    assert!(no_answer
        .iter()
        .all(|e| e.answered_at.is_none() && e.talk_s == Some(0)));
}

#[test]
fn grandstream_header_row_export() {
    // Uzbekistan (UTC+5), CRLF, minimal quoting, UTF-8 Cyrillic.
    let p = parse_all(
        "cdr-grandstream-call24/Master.head1000.csv",
        CdrLayout::Auto,
        "Asia/Tashkent",
        "UZ",
    );
    assert_eq!(p.layout, CdrLayout::HeaderRow);
    assert_eq!((p.events.len(), p.skipped), (999, 1));
    let ev = &p.events;
    assert!(ev
        .iter()
        .all(|e| e.data.len() == 26 && !e.data[25].ends_with('\r')));

    let first = &ev[0];
    assert_eq!(first.call_id.as_deref(), Some("1783044474.621781"));
    assert_eq!(
        first.linked_id.as_deref(),
        Some("1783044474489217-902569596")
    );
    assert_eq!(utc(first), "2026-07-03T02:07:54Z");
    assert_eq!(first.ts.timestamp(), 1783044474);
    assert_eq!(first.caller_raw.as_deref(), Some("902569596"));
    assert_eq!(first.caller.as_deref(), Some("+998902569596"));
    assert_eq!(first.callee_raw.as_deref(), Some("788888484"));
    assert_eq!(
        (first.disposition, first.talk_s, first.duration_s),
        (Some(Disposition::NoAnswer), Some(0), Some(10))
    );
    assert_eq!(first.direction, Some(Direction::Inbound));
    assert_eq!(first.info.as_deref(), Some("ForkCDR(ae)"));

    let last = &ev[998];
    assert_eq!(last.call_id.as_deref(), Some("1783063741.624946"));
    assert_eq!(utc(last), "2026-07-03T07:29:01Z");
    assert_eq!(last.caller.as_deref(), Some("+998907664494"));
    assert_eq!(
        (last.disposition, last.talk_s),
        (Some(Disposition::Answered), Some(22))
    );

    // Cyrillic caller name, from the "Caller Name" column (and the clid).
    let cyr = &ev[97];
    assert_eq!(cyr.call_id.as_deref(), Some("1783052075.622053"));
    assert_eq!(cyr.caller_name.as_deref(), Some("Фахриддин Давлатзод"));
    assert_eq!(cyr.data[4], "\"Фахриддин Давлатзод\" <111>");
    assert_eq!(
        (cyr.caller_raw.as_deref(), cyr.callee_raw.as_deref()),
        (Some("111"), Some("118"))
    );
    assert_eq!(cyr.direction, Some(Direction::Internal));
    assert_eq!(cyr.agent.as_deref(), Some("111"));
    assert_eq!(
        ev.iter()
            .filter(|e| e.caller_name.as_deref() == Some("Фахриддин Давлатзод"))
            .count(),
        3
    );

    // Queue legs name their queue; a quoted lastdata keeps its commas.
    let queued = ev
        .iter()
        .filter(|e| e.queue.as_deref() == Some("6500"))
        .count();
    assert_eq!(queued, 133);
    let disp = |d| ev.iter().filter(|e| e.disposition == Some(d)).count();
    assert_eq!(
        [
            disp(Disposition::Answered),
            disp(Disposition::NoAnswer),
            disp(Disposition::Failed),
            disp(Disposition::Busy)
        ],
        [531, 443, 23, 2]
    );
    assert_eq!(ev.iter().filter(|e| e.answered_at.is_none()).count(), 10);
    assert_eq!(ev.iter().filter(|e| e.ended_at.is_none()).count(), 10);
    // Grandstream writes the direction in "Log Userfield"; it is honoured.
    let dir = |d: Direction| ev.iter().filter(|e| e.direction == Some(d)).count();
    assert_eq!(
        [
            dir(Direction::Inbound),
            dir(Direction::Outbound),
            dir(Direction::Internal)
        ],
        [628, 365, 6]
    );
}

#[test]
fn grandstream_direction_rule_without_the_vendor_hint() {
    // Same file with "Log Userfield" ignored: the number/context rule alone
    // must agree with the PBX's own direction on every row.
    let cols = [
        "accountcode",
        "src",
        "dst",
        "dcontext",
        "clid",
        "channel",
        "dstchannel",
        "lastapp",
        "lastdata",
        "start",
        "answer",
        "end",
        "duration",
        "billsec",
        "disposition",
        "amaflags",
        "uniqueid",
        "-",
        "-",
        "-",
        "-",
        "linkedid",
        "-",
        "-",
        "-",
        "-",
    ];
    let layout = CdrLayout::columns(cols).unwrap();
    let p = parse_all(
        "cdr-grandstream-call24/Master.head1000.csv",
        layout.clone(),
        "Asia/Tashkent",
        "UZ",
    );
    assert_eq!(p.layout, layout);
    assert_eq!(
        (p.events.len(), p.skipped),
        (999, 1),
        "the header row is skipped"
    );
    for e in &p.events {
        let want = match e.data[17].as_str() {
            "Inbound" => Direction::Inbound,
            "Outbound" => Direction::Outbound,
            "Internal" => Direction::Internal,
            other => panic!("unexpected Log Userfield {other:?}"),
        };
        assert_eq!(e.direction, Some(want), "{:?}", e.call_id);
    }
}

#[test]
fn explicit_layouts_match_auto() {
    let auto = parse_all(
        "cdr-csv-mineevburyat/Master.csv",
        CdrLayout::Auto,
        "UTC",
        "RU",
    );
    let fixed = parse_all(
        "cdr-csv-mineevburyat/Master.csv",
        CdrLayout::CdrCsv,
        "UTC",
        "RU",
    );
    assert_eq!(auto.events, fixed.events);
    let auto = parse_all(
        "cdr-custom-kelysaina/Master.csv",
        CdrLayout::Auto,
        "UTC",
        "RU",
    );
    let fixed = parse_all(
        "cdr-custom-kelysaina/Master.csv",
        CdrLayout::CdrCustomDefault,
        "UTC",
        "RU",
    );
    assert_eq!(auto.events, fixed.events);
    let auto = parse_all(
        "cdr-grandstream-call24/Master.head1000.csv",
        CdrLayout::Auto,
        "UTC",
        "UZ",
    );
    let fixed = parse_all(
        "cdr-grandstream-call24/Master.head1000.csv",
        CdrLayout::HeaderRow,
        "UTC",
        "UZ",
    );
    assert_eq!(auto.events, fixed.events);
}
