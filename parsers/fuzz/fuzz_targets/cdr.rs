//! CDR CSV: the input is a file, read with every `CdrLayout` (auto
//! detection, the fixed ones, a header row, a configured column list
//! without answer/end, and an invalid column list). Physical lines are
//! joined while `record_complete` says a quoted field is still open, as the
//! ingest layer does, and each record goes through `CdrParser::parse_line`.
#![no_main]

mod common;

use calltrail_parsers::cdr::{record_complete, CdrLayout, CdrParser, MAX_RECORD_LEN};
use calltrail_parsers::SourceKind;
use libfuzzer_sys::fuzz_target;

/// A FreePBX-table-like column list: no answer/end columns (derived from
/// duration and billsec), an ignored `-` and empty column.
const COLUMNS: [&str; 17] = [
    "calldate",
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "duration",
    "billsec",
    "disposition",
    "-",
    "accountcode",
    "uniqueid",
    "",
    "linkedid",
];

fn layouts() -> Vec<CdrLayout> {
    vec![
        CdrLayout::Auto,
        CdrLayout::CdrCsv,
        CdrLayout::CdrCustomDefault,
        CdrLayout::HeaderRow,
        CdrLayout::columns(COLUMNS).expect("valid column list"),
        // Not validated by `columns`: every record gets the error.
        CdrLayout::Columns(vec!["start".into(), "bogus".into(), "start".into()]),
    ]
}

fuzz_target!(|data: &[u8]| {
    let _ = record_complete(data);
    for (i, layout) in layouts().into_iter().enumerate() {
        let [utc, dst] = common::variants();
        let (ctx, cfg) = if i % 2 == 0 { utc } else { dst };
        let kind = if i % 2 == 0 {
            SourceKind::AsteriskCdrCsv
        } else {
            SourceKind::AsteriskCdrCustom
        };
        let mut p = CdrParser::new(ctx, kind, layout, common::numbers(cfg), common::agents());
        if i == 1 {
            p = p.with_max_extension_len(3);
        }
        let mut buf: Vec<u8> = Vec::new();
        let parse = |p: &mut CdrParser, rec: &[u8]| {
            if let Ok(Some(ev)) = p.parse_line(rec) {
                common::check_event(&ev);
            }
            let _ = p.layout().name();
            let _ = p.header();
        };
        for line in common::lines(data) {
            if !buf.is_empty() {
                buf.push(b'\n');
            }
            buf.extend_from_slice(line);
            if record_complete(&buf) || buf.len() > MAX_RECORD_LEN {
                parse(&mut p, &buf);
                buf.clear();
            }
        }
        if !buf.is_empty() {
            parse(&mut p, &buf);
        }
    }
});
