//! Engine-level tests of the snapshot diff (no daemon): the cases the
//! integration tests in `tests/it/snapshot.rs` do not reach, and the
//! `[snapshot.<name>]` config checks.

use super::dbf::{DbfEngine, VERB_DELETED, VERB_UPDATE};
use super::{Delta, Engine};
use crate::config::{self, SnapshotOptions};
use crate::store::RowState;
use calltrail_parsers::{AgentResolver, NumberConfig, NumberNormalizer, SourceContext};
use chrono::{Duration, Utc};
use std::collections::HashMap;

const FIELDS: [(&str, usize); 5] = [
    ("CALLTYPE", 6),
    ("EXTENSION", 4),
    ("IDURATION", 4),
    ("DATE", 8),
    ("TIME", 8),
];

/// (deleted, [calltype, ext, duration, date, time]) → a dBase III table.
fn table(rows: &[(bool, [&str; 5])]) -> Vec<u8> {
    let rl = 1 + FIELDS.iter().map(|f| f.1).sum::<usize>();
    let hl = 32 + 32 * FIELDS.len() + 1;
    let mut b = vec![0u8; 32];
    b[0] = 0x03;
    b[4..8].copy_from_slice(&(rows.len() as u32).to_le_bytes());
    b[8..10].copy_from_slice(&(hl as u16).to_le_bytes());
    b[10..12].copy_from_slice(&(rl as u16).to_le_bytes());
    for (name, len) in FIELDS {
        let mut d = [0u8; 32];
        d[..name.len()].copy_from_slice(name.as_bytes());
        d[11] = if name == "IDURATION" {
            b'N'
        } else if name == "DATE" {
            b'D'
        } else {
            b'C'
        };
        d[16] = len as u8;
        b.extend_from_slice(&d);
    }
    b.push(0x0D);
    for (deleted, values) in rows {
        b.push(if *deleted { b'*' } else { b' ' });
        for ((_, len), v) in FIELDS.iter().zip(values) {
            let mut cell = v.as_bytes().to_vec();
            cell.resize(*len, b' ');
            b.extend(cell);
        }
    }
    b
}

/// The test table has no CALLERID or NUMBER field.
fn opts() -> SnapshotOptions {
    let mut o = SnapshotOptions::default();
    o.wintariff.callerid = String::new();
    o.wintariff.number = String::new();
    o
}

fn engine(opts: &SnapshotOptions) -> DbfEngine {
    DbfEngine::new(
        SourceContext::new("wt", "pbx"),
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::new(HashMap::new()),
        opts,
        Vec::new(),
    )
    .unwrap()
}

/// Applies and commits (as the follower does after a successful commit).
fn step(e: &mut DbfEngine, bytes: &[u8]) -> Delta {
    let d = e.apply(bytes, Utc::now()).unwrap();
    e.committed(&d);
    d
}

fn ids(d: &Delta) -> Vec<(String, String)> {
    d.events
        .iter()
        .map(|e| (e.event_id.clone(), e.verb.to_string()))
        .collect()
}

const A: [&str; 5] = ["IN", "201", "10", "20240127", "10:00:00"];
const B: [&str; 5] = ["OUT", "202", "20", "20240127", "10:05:00"];

#[test]
fn undeleted_row_is_emitted_again_as_an_update() {
    let mut e = engine(&opts());
    let d = step(&mut e, &table(&[(false, A)]));
    assert_eq!(d.events.len(), 1);
    let row_id = d.events[0].call_id.clone().unwrap();
    let d = step(&mut e, &table(&[(true, A)]));
    assert_eq!(
        ids(&d),
        vec![(format!("wt:rec:{row_id}:v2"), VERB_DELETED.to_string())]
    );
    assert_eq!(d.events[0].kind.as_str(), "other");
    // Same snapshot again: nothing.
    assert!(step(&mut e, &table(&[(true, A)])).is_empty());
    let d = step(&mut e, &table(&[(false, A)]));
    assert_eq!(
        ids(&d),
        vec![(format!("wt:rec:{row_id}:v3"), VERB_UPDATE.to_string())]
    );
}

#[test]
fn a_due_row_that_does_not_map_is_rejected_once_then_retried_when_it_changes() {
    let mut e = engine(&opts());
    let bad = ["IN", "201", "x1", "20240127", "10:00:00"];
    let bytes = table(&[(false, bad)]);
    let d = step(&mut e, &bytes);
    assert!(d.events.is_empty());
    assert_eq!(d.rejects.len(), 1);
    let r = &d.rejects[0];
    assert_eq!((r.line_no, r.byte_offset), (1, 32 + 32 * 5 + 1));
    assert!(r.reason.contains("IDURATION"), "{}", r.reason);
    // Unchanged: neither a second reject nor an event.
    assert!(step(&mut e, &bytes).is_empty());
    // Corrected in place: the row is emitted as v1.
    let d = step(&mut e, &table(&[(false, A)]));
    assert_eq!(d.events.len(), 1);
    assert!(d.events[0].event_id.ends_with(":v1"));
}

#[test]
fn same_key_rows_keep_their_order_when_the_table_is_packed() {
    let mut e = engine(&opts());
    let a1 = ["IN", "201", "10", "20240127", "10:00:00"];
    let a2 = ["IN", "201", "11", "20240127", "10:00:00"]; // same key, other row
    let gone = ["", "299", "0", "20240127", "09:00:00"];
    let d = step(&mut e, &table(&[(true, gone), (false, a1), (false, a2)]));
    assert_eq!(d.events.len(), 2);
    let first: Vec<_> = d.events.iter().map(|e| e.call_id.clone()).collect();
    // Packed: both move up one; nothing is emitted again.
    let d = step(&mut e, &table(&[(false, a1), (false, a2)]));
    assert!(d.events.is_empty(), "{:?}", ids(&d));
    assert_eq!(d.states.len(), 2, "both moved: {:?}", d.states);
    // The second one changes: the update belongs to the second identity.
    let a2b = ["IN", "201", "12", "20240127", "10:00:00"];
    let d = step(&mut e, &table(&[(false, a1), (false, a2b)]));
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].call_id, first[1]);
    assert_eq!(d.events[0].talk_s, Some(12));
}

#[test]
fn grace_counts_from_first_sight_and_survives_a_restart() {
    let opts = SnapshotOptions {
        grace_s: 60,
        ..opts()
    };
    let mut e = engine(&opts);
    let incomplete = ["", "201", "0", "20240127", "10:00:00"];
    let bytes = table(&[(false, incomplete), (false, B)]);
    let d = step(&mut e, &bytes);
    assert_eq!(d.events.len(), 1, "only the complete row");
    let pending: Vec<RowState> = d
        .states
        .iter()
        .filter(|s| s.emitted_hash.is_none())
        .cloned()
        .collect();
    assert_eq!(pending.len(), 1);
    let deadline = e.next_deadline().unwrap();
    assert_eq!(deadline, pending[0].first_seen_at + Duration::seconds(60));
    // A restarted engine with the stored states: not due before the deadline…
    let mut again = DbfEngine::new(
        SourceContext::new("wt", "pbx"),
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::new(HashMap::new()),
        &opts,
        d.states.clone(),
    )
    .unwrap();
    let early = again
        .apply(&bytes, deadline - Duration::seconds(1))
        .unwrap();
    assert!(early.events.is_empty());
    // …and due at it.
    let due = again.apply(&bytes, deadline).unwrap();
    assert_eq!(due.events.len(), 1);
    assert_eq!(due.events[0].direction, None);
}

#[test]
fn a_missing_key_field_is_a_configuration_error() {
    let opts = SnapshotOptions {
        key_fields: Some(vec!["NOPE".into()]),
        ..opts()
    };
    let mut e = engine(&opts);
    let err = e.apply(&table(&[(false, A)]), Utc::now()).unwrap_err();
    assert!(err.to_string().contains("NOPE"), "{err}");
}

#[test]
fn not_a_dbf_is_one_reject_per_content() {
    let mut e = engine(&opts());
    let d = step(&mut e, b"hello, not a table at all, really not one");
    assert_eq!(d.rejects.len(), 1);
    assert!(
        d.rejects[0].reason.contains("not a DBF"),
        "{}",
        d.rejects[0].reason
    );
    assert!(step(&mut e, b"hello, not a table at all, really not one").is_empty());
}

#[test]
fn snapshot_options_are_checked() {
    let text = r#"
[[sources]]
name = "wt"
kind = "wintariff_dbf"
path = "CALLS.DBF"
pbx = "p"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "p"
[snapshot.wt]
grace_s = 999999999
charset_from = "guess"
rescan_s = 0
[snapshot.q]
[snapshot.nobody]
"#;
    let err = config::parse(text, std::path::Path::new("/tmp/x.toml")).unwrap_err();
    let msg = err.to_string();
    for want in [
        "snapshot.wt.grace_s",
        "snapshot.wt.charset_from",
        "snapshot.wt.rescan_s",
        "snapshot.q: expected options for a wintariff_dbf or oktell_csv source",
        "snapshot.nobody",
    ] {
        assert!(msg.contains(want), "{want} missing from {msg}");
    }
    let ok = "[[sources]]\nname = \"ok\"\nkind = \"oktell_csv\"\npath = \"e.csv\"\npbx = \"p\"\n[snapshot.ok]\nrescan_s = 5\n";
    let cfg = config::parse(ok, std::path::Path::new("/tmp/x.toml")).unwrap();
    assert_eq!(cfg.snapshot["ok"].rescan_s, 5);
    assert_eq!(cfg.snapshot["ok"].grace_s, 300);
}

#[test]
fn blank_key_rows_are_not_matched_across_indexes() {
    let opts = SnapshotOptions {
        grace_s: 0,
        ..opts()
    };
    let mut e = engine(&opts);
    let blank = ["", "", "", "", ""];
    // A blank row (an allocated, not yet written record) is due at once
    // with grace 0 and rejected (no start time).
    let d = step(&mut e, &table(&[(false, A), (false, blank)]));
    assert_eq!((d.events.len(), d.rejects.len()), (1, 1));
    // It is filled in: a new identity at that index, emitted once.
    let d = step(&mut e, &table(&[(false, A), (false, B)]));
    assert_eq!(d.events.len(), 1);
    assert!(d.events[0].event_id.ends_with(":v1"), "{:?}", ids(&d));
    // Another blank record further down is not the old blank row: it is
    // new (and, being blank, rejected as such), not an update of anything.
    let d = step(&mut e, &table(&[(false, A), (false, B), (false, blank)]));
    assert!(d.events.is_empty(), "{:?}", ids(&d));
    assert_eq!(d.rejects.len(), 1);
    assert!(
        d.rejects[0].reject_id.contains(":rec:2:"),
        "{}",
        d.rejects[0].reject_id
    );
}
