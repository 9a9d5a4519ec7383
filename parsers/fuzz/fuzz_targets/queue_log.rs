//! queue_log: the input is a file; each line goes through
//! `QueueLogParser::parse_line`, and through `parse_fields` split as a DB
//! export would hand it in. Then the whole input as one (multi-line) record.
#![no_main]

mod common;

use calltrail_parsers::QueueLogParser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (ctx, cfg) in common::variants() {
        let mut p = QueueLogParser::new(ctx, common::numbers(cfg), common::agents());
        for line in common::lines(data) {
            if let Ok(Some(ev)) = p.parse_line(line) {
                common::check_event(&ev);
            }
            if let Ok(text) = std::str::from_utf8(line) {
                let mut f = text.splitn(6, '|');
                let mut next = || f.next().unwrap_or("");
                let (t, c, q, a, e, d) = (next(), next(), next(), next(), next(), next());
                if let Ok(ev) = p.parse_fields(t, c, q, a, e, d) {
                    common::check_event(&ev);
                }
            }
        }
        if let Ok(Some(ev)) = p.parse_line(data) {
            common::check_event(&ev);
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = p.normalize_number(text);
        }
    }
});
