//! Shared by the fuzz targets: parser contexts and the event check.
#![allow(dead_code)]

use calltrail_parsers::{
    AgentResolver, Charset, Event, NumberConfig, NumberNormalizer, SourceContext,
};

/// Two source set-ups per input: UTC with the cp1251 fallback and the
/// default number rules, and a DST zone (gaps and folds) with cp866, a short
/// extension length and last-digits keys, so both branches of the time,
/// charset and number code are reached.
pub fn variants() -> [(SourceContext, NumberConfig); 2] {
    let utc = SourceContext::new("fuzz", "pbx");
    let dst = SourceContext {
        timezone: chrono_tz::America::New_York,
        fallback_charset: Charset::Cp866,
        ..SourceContext::new("fuzz-ny", "pbx2")
    };
    let short = NumberConfig {
        default_region: "US".into(),
        max_internal_len: 4,
        match_last_digits: Some(7),
    };
    [(utc, NumberConfig::default()), (dst, short)]
}

pub fn numbers(cfg: NumberConfig) -> NumberNormalizer {
    NumberNormalizer::new(cfg).expect("fixed regions are valid")
}

/// A resolver with aliases on raw and resolved ids.
pub fn agents() -> AgentResolver {
    AgentResolver::new([
        ("PJSIP/201".to_string(), "alice".to_string()),
        ("202".to_string(), "bob".to_string()),
    ])
}

/// Physical lines, `\n` dropped (a `\r` stays for the parser to strip).
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
}

/// Every event must serialize to JSON and read back unchanged (it is what
/// Kafka consumers get), and its accessors must not panic.
pub fn check_event(ev: &Event) {
    let json = serde_json::to_string(ev).expect("event serializes");
    let back: Event = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("event JSON does not read back: {e}: {json}"));
    assert_eq!(&back, ev, "event JSON round trip changed it: {json}");
    let _ = ev.partition_key();
    let _ = ev.kind.as_str();
    let _ = ev.kind.is_missed();
    let _ = ev.source_kind.as_str();
    if let Some(d) = ev.direction {
        let _ = d.as_str();
    }
    if let Some(d) = ev.disposition {
        let _ = d.as_str();
    }
}
