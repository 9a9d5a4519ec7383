//! Events as an Arrow record batch for DuckDB's columnar appender: one
//! `append_record_batch` instead of a row append with 32 bound values per
//! event. Filled from owned [`Event`]s or, on the bulk import path, straight
//! from the parser's zero-copy [`EventRef`]s (no owned event is built).

use calltrail_parsers::{Event, EventRef};
use chrono::{DateTime, Utc};
use duckdb::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::error::ArrowError;
use std::sync::Arc;

/// Column builders in the `events` table's order (`seq` is added by
/// [`EventColumns::finish`]).
pub struct EventColumns {
    n: i64,
    event_id: StringBuilder,
    source_kind: StringBuilder,
    source: StringBuilder,
    pbx: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    kind: StringBuilder,
    verb: StringBuilder,
    call_id: StringBuilder,
    linked_id: StringBuilder,
    peer_call_id: StringBuilder,
    queue: StringBuilder,
    agent: StringBuilder,
    agent_raw: StringBuilder,
    caller: StringBuilder,
    caller_raw: StringBuilder,
    caller_name: StringBuilder,
    callee: StringBuilder,
    callee_raw: StringBuilder,
    direction: StringBuilder,
    disposition: StringBuilder,
    wait_s: Int32Builder,
    talk_s: Int32Builder,
    ring_ms: Int64Builder,
    duration_s: Int32Builder,
    position: Int32Builder,
    orig_position: Int32Builder,
    answered_at: TimestampMicrosecondBuilder,
    ended_at: TimestampMicrosecondBuilder,
    info: StringBuilder,
    data: StringBuilder,
    channel: StringBuilder,
    dst_channel: StringBuilder,
    json: String,
}

fn i32_of(v: Option<u32>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

fn us(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_micros())
}

/// The JSON array of `fields` (the `data` column), or `None` when empty.
fn data_json<'s>(out: &mut String, fields: impl Iterator<Item = &'s str>) -> bool {
    out.clear();
    out.push('[');
    let mut any = false;
    for f in fields {
        if any {
            out.push(',');
        }
        any = true;
        // serde_json's string escaping, written into the shared buffer.
        let quoted = serde_json::to_string(f).unwrap_or_else(|_| "\"\"".into());
        out.push_str(&quoted);
    }
    out.push(']');
    any
}

impl EventColumns {
    pub fn with_capacity(n: usize) -> EventColumns {
        let s = || StringBuilder::with_capacity(n, n * 8);
        EventColumns {
            n: 0,
            event_id: StringBuilder::with_capacity(n, n * 40),
            source_kind: s(),
            source: s(),
            pbx: s(),
            ts: TimestampMicrosecondBuilder::with_capacity(n),
            kind: s(),
            verb: s(),
            call_id: s(),
            linked_id: s(),
            peer_call_id: s(),
            queue: s(),
            agent: s(),
            agent_raw: s(),
            caller: s(),
            caller_raw: s(),
            caller_name: s(),
            callee: s(),
            callee_raw: s(),
            direction: s(),
            disposition: s(),
            wait_s: Int32Builder::with_capacity(n),
            talk_s: Int32Builder::with_capacity(n),
            ring_ms: Int64Builder::with_capacity(n),
            duration_s: Int32Builder::with_capacity(n),
            position: Int32Builder::with_capacity(n),
            orig_position: Int32Builder::with_capacity(n),
            answered_at: TimestampMicrosecondBuilder::with_capacity(n),
            ended_at: TimestampMicrosecondBuilder::with_capacity(n),
            info: s(),
            data: StringBuilder::with_capacity(n, n * 16),
            channel: StringBuilder::with_capacity(n, 0),
            dst_channel: StringBuilder::with_capacity(n, 0),
            json: String::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.n as usize
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Appends an owned event.
    pub fn push(&mut self, e: &Event) {
        self.n += 1;
        self.event_id.append_value(&e.event_id);
        self.source_kind.append_value(e.source_kind.as_str());
        self.source.append_value(&e.source);
        self.pbx.append_value(&e.pbx);
        self.ts.append_value(e.ts.timestamp_micros());
        self.kind.append_value(e.kind.as_str());
        self.verb.append_value(&e.verb);
        self.call_id.append_option(e.call_id.as_deref());
        self.linked_id.append_option(e.linked_id.as_deref());
        self.peer_call_id.append_option(e.peer_call_id.as_deref());
        self.queue.append_option(e.queue.as_deref());
        self.agent.append_option(e.agent.as_deref());
        self.agent_raw.append_option(e.agent_raw.as_deref());
        self.caller.append_option(e.caller.as_deref());
        self.caller_raw.append_option(e.caller_raw.as_deref());
        self.caller_name.append_option(e.caller_name.as_deref());
        self.callee.append_option(e.callee.as_deref());
        self.callee_raw.append_option(e.callee_raw.as_deref());
        self.direction
            .append_option(e.direction.map(|d| d.as_str()));
        self.disposition
            .append_option(e.disposition.map(|d| d.as_str()));
        self.wait_s.append_option(i32_of(e.wait_s));
        self.talk_s.append_option(i32_of(e.talk_s));
        self.ring_ms
            .append_option(e.ring_ms.map(|v| i64::try_from(v).unwrap_or(i64::MAX)));
        self.duration_s.append_option(i32_of(e.duration_s));
        self.position.append_option(i32_of(e.position));
        self.orig_position.append_option(i32_of(e.orig_position));
        self.answered_at.append_option(us(e.answered_at));
        self.ended_at.append_option(us(e.ended_at));
        self.info.append_option(e.info.as_deref());
        if data_json(&mut self.json, e.data.iter().map(String::as_str)) {
            self.data.append_value(&self.json);
        } else {
            self.data.append_null();
        }
        self.channel.append_option(e.channel.as_deref());
        self.dst_channel.append_option(e.dst_channel.as_deref());
    }

    /// Appends a parser's zero-copy event under `event_id`.
    pub fn push_ref(&mut self, e: &EventRef<'_>, event_id: &str) {
        self.n += 1;
        self.event_id.append_value(event_id);
        self.source_kind.append_value(e.source_kind.as_str());
        self.source.append_value(&**e.source);
        self.pbx.append_value(&**e.pbx);
        self.ts.append_value(e.ts.timestamp_micros());
        self.kind.append_value(e.kind.as_str());
        self.verb.append_value(&**e.verb);
        self.call_id.append_option(e.call_id);
        self.linked_id.append_option(e.linked_id);
        self.peer_call_id.append_option(e.peer_call_id);
        self.queue.append_option(e.queue.map(|s| &**s));
        self.agent.append_option(e.agent.map(|s| &**s));
        self.agent_raw.append_option(e.agent_raw.map(|s| &**s));
        self.caller.append_option(e.caller.map(|s| &**s));
        self.caller_raw.append_option(e.caller_raw);
        self.caller_name.append_option(e.caller_name);
        self.callee.append_option(e.callee.map(|s| &**s));
        self.callee_raw.append_option(e.callee_raw);
        self.direction
            .append_option(e.direction.map(|d| d.as_str()));
        self.disposition
            .append_option(e.disposition.map(|d| d.as_str()));
        self.wait_s.append_option(i32_of(e.wait_s));
        self.talk_s.append_option(i32_of(e.talk_s));
        self.ring_ms
            .append_option(e.ring_ms.map(|v| i64::try_from(v).unwrap_or(i64::MAX)));
        self.duration_s.append_option(i32_of(e.duration_s));
        self.position.append_option(i32_of(e.position));
        self.orig_position.append_option(i32_of(e.orig_position));
        self.answered_at.append_option(us(e.answered_at));
        self.ended_at.append_option(us(e.ended_at));
        self.info.append_option(e.info.as_deref());
        if data_json(&mut self.json, e.data.iter()) {
            self.data.append_value(&self.json);
        } else {
            self.data.append_null();
        }
        // queue_log lines name no channels.
        self.channel.append_null();
        self.dst_channel.append_null();
    }

    /// The record batch in the `events` table's column order, `seq`
    /// numbered from `first_seq`, `ingested_at` = `now`.
    pub fn finish(mut self, now: DateTime<Utc>, first_seq: i64) -> Result<RecordBatch, ArrowError> {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let utf = DataType::Utf8;
        let mut ord = Int64Builder::with_capacity(self.n as usize);
        let mut ingested = TimestampMicrosecondBuilder::with_capacity(self.n as usize);
        for i in 0..self.n {
            ord.append_value(first_seq + i);
            ingested.append_value(now.timestamp_micros());
        }
        let s = |b: &mut StringBuilder| -> ArrayRef { Arc::new(b.finish()) };
        let cols: Vec<(&str, DataType, ArrayRef)> = vec![
            ("seq", DataType::Int64, Arc::new(ord.finish())),
            ("event_id", utf.clone(), s(&mut self.event_id)),
            ("source_kind", utf.clone(), s(&mut self.source_kind)),
            ("source", utf.clone(), s(&mut self.source)),
            ("pbx", utf.clone(), s(&mut self.pbx)),
            ("ts", ts.clone(), Arc::new(self.ts.finish())),
            ("kind", utf.clone(), s(&mut self.kind)),
            ("verb", utf.clone(), s(&mut self.verb)),
            ("call_id", utf.clone(), s(&mut self.call_id)),
            ("linked_id", utf.clone(), s(&mut self.linked_id)),
            ("peer_call_id", utf.clone(), s(&mut self.peer_call_id)),
            ("queue", utf.clone(), s(&mut self.queue)),
            ("agent", utf.clone(), s(&mut self.agent)),
            ("agent_raw", utf.clone(), s(&mut self.agent_raw)),
            ("caller", utf.clone(), s(&mut self.caller)),
            ("caller_raw", utf.clone(), s(&mut self.caller_raw)),
            ("caller_name", utf.clone(), s(&mut self.caller_name)),
            ("callee", utf.clone(), s(&mut self.callee)),
            ("callee_raw", utf.clone(), s(&mut self.callee_raw)),
            ("direction", utf.clone(), s(&mut self.direction)),
            ("disposition", utf.clone(), s(&mut self.disposition)),
            ("wait_s", DataType::Int32, Arc::new(self.wait_s.finish())),
            ("talk_s", DataType::Int32, Arc::new(self.talk_s.finish())),
            ("ring_ms", DataType::Int64, Arc::new(self.ring_ms.finish())),
            (
                "duration_s",
                DataType::Int32,
                Arc::new(self.duration_s.finish()),
            ),
            (
                "position",
                DataType::Int32,
                Arc::new(self.position.finish()),
            ),
            (
                "orig_position",
                DataType::Int32,
                Arc::new(self.orig_position.finish()),
            ),
            (
                "answered_at",
                ts.clone(),
                Arc::new(self.answered_at.finish()),
            ),
            ("ended_at", ts.clone(), Arc::new(self.ended_at.finish())),
            ("info", utf.clone(), s(&mut self.info)),
            ("data", utf.clone(), s(&mut self.data)),
            ("ingested_at", ts, Arc::new(ingested.finish())),
            ("channel", utf.clone(), s(&mut self.channel)),
            ("dst_channel", utf, s(&mut self.dst_channel)),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols
            .into_iter()
            .map(|(name, dt, a)| (Field::new(name, dt, true), a))
            .unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }
}

/// `rejects` of `source` as a record batch in the `rejects` table's order.
pub fn rejects_batch(
    source: &str,
    rejects: &[super::RejectRow],
    now: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    use duckdb::arrow::array::BinaryBuilder;
    let n = rejects.len();
    let (mut id, mut src, mut fp) = (
        StringBuilder::with_capacity(n, n * 40),
        StringBuilder::with_capacity(n, n * 8),
        StringBuilder::with_capacity(n, n * 16),
    );
    let (mut off, mut line) = (
        Int64Builder::with_capacity(n),
        Int64Builder::with_capacity(n),
    );
    let mut raw = BinaryBuilder::with_capacity(n, n * 64);
    let mut reason = StringBuilder::with_capacity(n, n * 32);
    let mut at = TimestampMicrosecondBuilder::with_capacity(n);
    for r in rejects {
        id.append_value(&r.reject_id);
        src.append_value(source);
        fp.append_value(&r.file_fp);
        off.append_value(i64::try_from(r.byte_offset).unwrap_or(i64::MAX));
        line.append_value(i64::try_from(r.line_no).unwrap_or(i64::MAX));
        raw.append_value(&r.raw);
        reason.append_value(&r.reason);
        at.append_value(now.timestamp_micros());
    }
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let cols: Vec<(&str, DataType, ArrayRef)> = vec![
        ("reject_id", DataType::Utf8, Arc::new(id.finish())),
        ("source", DataType::Utf8, Arc::new(src.finish())),
        ("file_fp", DataType::Utf8, Arc::new(fp.finish())),
        ("byte_offset", DataType::Int64, Arc::new(off.finish())),
        ("line_no", DataType::Int64, Arc::new(line.finish())),
        ("raw", DataType::Binary, Arc::new(raw.finish())),
        ("reason", DataType::Utf8, Arc::new(reason.finish())),
        ("rejected_at", ts, Arc::new(at.finish())),
    ];
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols
        .into_iter()
        .map(|(name, dt, a)| (Field::new(name, dt, true), a))
        .unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

/// The record batch of owned `events`, `seq` numbered from `first_seq`.
pub fn events_batch(
    events: &[&Event],
    now: DateTime<Utc>,
    first_seq: i64,
) -> Result<RecordBatch, ArrowError> {
    let mut c = EventColumns::with_capacity(events.len());
    for e in events {
        c.push(e);
    }
    c.finish(now, first_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_json_matches_serde() {
        let mut buf = String::new();
        let fields = ["a", "b\"c", "\u{1}", "кириллица"];
        assert!(data_json(&mut buf, fields.iter().copied()));
        assert_eq!(buf, serde_json::to_string(&fields).unwrap());
        assert!(!data_json(&mut buf, std::iter::empty()));
    }
}
