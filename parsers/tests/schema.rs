//! The published JSON Schema (`docs/events.schema.json`) must be exactly the
//! one derived from the event types, and every key a real event serializes
//! to must be declared in it. Regenerate with `UPDATE_SCHEMA=1 cargo test -p calltrail-parsers --test schema`.

use calltrail_parsers::event::json_schema;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.schema.json");

#[test]
fn published_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&json_schema()).expect("schema") + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(PATH, &generated).expect("write schema");
    }
    let published = std::fs::read_to_string(PATH).expect("docs/events.schema.json exists");
    assert_eq!(
        published, generated,
        "docs/events.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p calltrail-parsers --test schema"
    );
}

#[test]
fn schema_lists_every_field_and_kind() {
    let schema = serde_json::to_value(json_schema()).expect("schema");
    let props = schema["properties"].as_object().expect("properties");
    for f in [
        "event_id",
        "source_kind",
        "source",
        "pbx",
        "ts",
        "kind",
        "verb",
        "call_id",
        "linked_id",
        "queue",
        "agent",
        "caller",
        "caller_raw",
        "callee",
        "direction",
        "disposition",
        "wait_s",
        "talk_s",
        "data",
    ] {
        assert!(props.contains_key(f), "missing {f}");
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        required,
        [
            "event_id",
            "source_kind",
            "source",
            "pbx",
            "ts",
            "kind",
            "verb"
        ]
    );
    let text = schema.to_string();
    for k in [
        "enter_queue",
        "abandoned",
        "exit_with_key",
        "call_record",
        "other",
        "asterisk_queue_log",
        "oktell_csv",
    ] {
        assert!(text.contains(&format!("\"{k}\"")), "missing {k}");
    }
}

#[test]
fn serialized_events_use_only_declared_keys() {
    use calltrail_parsers::{
        AgentResolver, NumberConfig, NumberNormalizer, QueueLogParser, SourceContext,
    };
    let schema = serde_json::to_value(json_schema()).expect("schema");
    let props = schema["properties"].as_object().expect("properties");
    let mut p = QueueLogParser::new(
        SourceContext::new("s", "p"),
        NumberNormalizer::new(NumberConfig::default()).expect("region"),
        AgentResolver::default(),
    );
    for line in [
        "1546015415|1546015415.757927|201|NONE|ENTERQUEUE||+13238679471|1|Name",
        "1546015425|1546015415.757927|201|PJSIP/1|CONNECT|10|1546015415.757936|9",
        "1|c|q|NONE|WHATEVER|a|b",
    ] {
        let ev = p
            .parse_line(line.as_bytes())
            .expect("parses")
            .expect("event");
        let v = serde_json::to_value(&ev).expect("json");
        for k in v.as_object().expect("object").keys() {
            assert!(props.contains_key(k), "{k} not in the schema");
        }
        let back: calltrail_parsers::Event = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, ev);
    }
}
