//! Oktell: the input is an export file; lines go through
//! `OktellParser::parse_line` (the first non-blank one is the header), every
//! leg through `to_event` (parser and leg forms) and its accessors, then
//! `finish`.
#![no_main]

mod common;

use calltrail_parsers::oktell::{agent_column, connection_type_name, direction_of, OktellParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (ctx, cfg) in common::variants() {
        let mut p = OktellParser::new(ctx.clone(), common::numbers(cfg.clone()), common::agents());
        let mut numbers = common::numbers(cfg);
        let mut agents = common::agents();
        for line in common::lines(data) {
            let Ok(Some(leg)) = p.parse_line(line) else {
                continue;
            };
            let _ = (leg.is_open(), leg.direction(), leg.agent_line());
            let _ = (leg.talk_s(), leg.duration_s(), leg.fingerprint());
            let _ = direction_of(leg.connection_type);
            let _ = agent_column(leg.connection_type);
            let _ = connection_type_name(leg.connection_type);
            let ev = p.to_event(&leg);
            if let Some(ev) = &ev {
                common::check_event(ev);
            }
            let again = leg.to_event(&ctx, &mut numbers, &mut agents);
            assert_eq!(ev.is_some(), again.is_some(), "to_event forms disagree");
            let _ = (p.columns(), p.delimiter(), p.has_pending());
        }
        let _ = p.finish();
        assert!(!p.has_pending(), "finish left a pending record");
        p.reset();
    }
});
