//! The zero-copy parse (`parse_line_ref` → `EventRef`) and the owned parse
//! (`parse_line` → `Event`) agree on every line: the generated benchmark
//! log, the real queue_log samples, edge-case lines and arbitrary bytes —
//! same events field by field, same rejects with the same reasons.

#[path = "../benches/support/gen.rs"]
mod gen;

use calltrail_parsers::{
    AgentResolver, Event, EventRef, NumberConfig, NumberNormalizer, QueueLogError, QueueLogParser,
    SourceContext,
};
use chrono_tz::Tz;
use proptest::prelude::*;

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/samples/"
);

fn parser() -> QueueLogParser {
    QueueLogParser::new(
        SourceContext {
            timezone: "Europe/Moscow".parse::<Tz>().unwrap(),
            ..SourceContext::new("q", "pbx1")
        },
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::new([("Paty Marin".to_string(), "301".to_string())]),
    )
}

/// Every field of the view against the owned event built independently.
fn same(view: &EventRef<'_>, owned: &Event) {
    assert_eq!(&view.to_event(), owned);
    assert_eq!(view.clone().into_event(), *owned);
    assert_eq!(view.data.to_vec(), owned.data);
    assert_eq!(view.data.len(), owned.data.len());
    assert_eq!(view.data.is_empty(), owned.data.is_empty());
    for (i, d) in owned.data.iter().enumerate() {
        assert_eq!(view.data.get(i), Some(d.as_str()));
    }
    assert_eq!(view.info.as_deref(), owned.info.as_deref());
    assert_eq!(view.caller.map(|s| &**s), owned.caller.as_deref());
    assert_eq!(view.call_id, owned.call_id.as_deref());
}

/// Parses `lines` with two parsers, one per path; returns (events, rejects).
fn agree<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> (usize, usize) {
    let (mut by_ref, mut by_owned) = (parser(), parser());
    let (mut events, mut rejects) = (0, 0);
    for line in lines {
        let owned: Result<Option<Event>, QueueLogError> = by_owned.parse_line(line);
        match (by_ref.parse_line_ref(line), owned) {
            (Ok(Some(view)), Ok(Some(ev))) => {
                same(&view, &ev);
                events += 1;
            }
            (Ok(None), Ok(None)) => {}
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "{:?}", String::from_utf8_lossy(line));
                rejects += 1;
            }
            (a, b) => panic!(
                "paths disagree on {:?}: ref {a:?}, owned {b:?}",
                String::from_utf8_lossy(line)
            ),
        }
    }
    (events, rejects)
}

#[test]
fn generated_log() {
    let mut data = Vec::new();
    gen::queue_log(&mut data, 30_000, gen::DEFAULT_SEED).unwrap();
    let (events, rejects) = agree(data.split(|&b| b == b'\n'));
    assert_eq!((events, rejects), (30_000, 0));
}

#[test]
fn real_samples() {
    for rel in [
        "queue_log-asterisk2slack/queue_log",
        "queue_log-asterisk-issue-759/queue_log.excerpt",
        // A DB export: mostly rejects as flat lines, which must agree too.
        "queue_log-dbexport-voipreports1/queue_log.csv",
    ] {
        let path = format!("{SAMPLES}{rel}");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let (events, rejects) = agree(bytes.split_inclusive(|&b| b == b'\n'));
        assert!(events + rejects > 0, "{rel}: nothing parsed");
    }
}

#[test]
fn edge_lines() {
    let many_bars = format!("1|c|q|NONE|ENTERQUEUE||89161234567|2|{}", "x|".repeat(40));
    let mut cp1251 = b"1|c|q|NONE|ENTERQUEUE||89161234567|1|".to_vec();
    cp1251.extend_from_slice(&[0xC8, 0xE2, 0xE0, 0xED, b'|', b'|']);
    let lines: Vec<&[u8]> = vec![
        b"",
        b"  \r\n",
        b"garbage",
        b"1|c|q|a",
        b"1|c|q|a|",
        b"1|c|q|a||x",
        b"abc|c|q|a|CONNECT|1",
        b"1|c|q|a|BAD VERB|1",
        b"1|c|q|NONE|AGENTDUMP",
        b"1596191926|NONE|NONE|NONE|QUEUESTART|\r\n",
        "\u{feff}1596191926|NONE|NONE|NONE|QUEUESTART|".as_bytes(),
        b"1266834360 | 1266834354.91 | 9000 | NONE | ENTERQUEUE || anonymous",
        b"2012-07-04 07:33:21.165823|1341401601.24|q1|NONE|ENTERQUEUE||1000|1",
        b"2024-03-31 02:30:00|c|q|NONE|ENTERQUEUE||1000|1",
        b"1|c|q|PJSIP/1|ATTENDEDTRANSFER|LINK|PJSIP/1-01|PJSIP/2-02|5|60|2|",
        b"1|c|q|PJSIP/1|ATTENDEDTRANSFER|||6|30|1",
        b"1|c|q|PJSIP/1|TRANSFER|100|from-internal|6|30|1",
        b"1|c|q|Paty Marin|CONNECT|10|1546015415.757936|9",
        b"1|c|q|NONE|DID|",
        b"1|c|q|NONE|did|+74951234567",
        b"1|c|q|NONE|WITHDRAW|1|2|3|some | info",
        b"1|c|q|PJSIP/7|pause|lunch|",
        many_bars.as_bytes(),
        &cp1251,
        &[0xFF, b'|', 0xFE, b'|', b'|', b'|', b'|'],
    ];
    let (events, rejects) = agree(lines.iter().copied());
    assert!(
        events >= 15 && rejects >= 5,
        "{events} events, {rejects} rejects"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..200)) {
        agree([line.as_slice()]);
    }

    #[test]
    fn bar_heavy_lines(fields in proptest::collection::vec("[ 0-9A-Za-zА-я._/|-]{0,12}", 0..40)) {
        let line = format!("1546015415|1.2|q|PJSIP/1|{}", fields.join("|"));
        agree([line.as_bytes()]);
    }
}
