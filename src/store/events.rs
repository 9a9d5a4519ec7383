//! Mapping between [`Event`] and the `events` table's columns.

use super::{ts, StoreError};
use calltrail_parsers::{Event, Str};
use chrono::{DateTime, Utc};
use duckdb::{params, Row, Statement};
use serde::de::DeserializeOwned;

pub(super) const INSERT: &str = "INSERT OR IGNORE INTO events (
    event_id, source_kind, source, pbx, ts, kind, verb, call_id, linked_id, peer_call_id,
    queue, agent, agent_raw, caller, caller_raw, caller_name, callee, callee_raw, direction,
    disposition, wait_s, talk_s, ring_ms, duration_s, position, orig_position, answered_at,
    ended_at, info, data, ingested_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

pub(super) const SELECT_AFTER: &str = "SELECT seq,
    event_id, source_kind, source, pbx, epoch_us(ts), kind, verb, call_id, linked_id, peer_call_id,
    queue, agent, agent_raw, caller, caller_raw, caller_name, callee, callee_raw, direction,
    disposition, wait_s, talk_s, ring_ms, duration_s, position, orig_position, epoch_us(answered_at),
    epoch_us(ended_at), info, data
    FROM events WHERE seq > ? ORDER BY seq LIMIT ?";

pub(super) fn insert(
    stmt: &mut Statement<'_>,
    e: &Event,
    now: DateTime<Utc>,
) -> duckdb::Result<usize> {
    let data = if e.data.is_empty() {
        None
    } else {
        serde_json::to_string(&e.data).ok()
    };
    stmt.execute(params![
        e.event_id,
        e.source_kind.as_str(),
        e.source.as_ref(),
        e.pbx.as_ref(),
        ts(e.ts),
        e.kind.as_str(),
        e.verb.as_ref(),
        e.call_id,
        e.linked_id,
        e.peer_call_id,
        e.queue.as_deref(),
        e.agent.as_deref(),
        e.agent_raw.as_deref(),
        e.caller,
        e.caller_raw,
        e.caller_name,
        e.callee,
        e.callee_raw,
        e.direction.map(|d| d.as_str()),
        e.disposition.map(|d| d.as_str()),
        e.wait_s,
        e.talk_s,
        e.ring_ms.map(|v| v as i64),
        e.duration_s,
        e.position,
        e.orig_position,
        e.answered_at.map(ts),
        e.ended_at.map(ts),
        e.info,
        data,
        ts(now),
    ])
}

/// Decodes a snake_case enum name the same way serde does for the JSON form.
fn enum_from<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| StoreError::Malformed(format!("unknown enum value {s:?}")))
}

fn micros(v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(|us| {
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| StoreError::Malformed(format!("timestamp {us} out of range")))
    })
    .transpose()
}

/// One row of [`SELECT_AFTER`] → (seq, event).
pub(super) fn read_row(r: &Row<'_>) -> duckdb::Result<(i64, Result<Event, StoreError>)> {
    let seq: i64 = r.get(0)?;
    let s = |i: usize| r.get::<_, Option<String>>(i);
    let req = |i: usize| r.get::<_, String>(i);
    let u32c = |i: usize| r.get::<_, Option<u32>>(i);
    let fields = (
        req(1)?,
        req(2)?,
        req(3)?,
        req(4)?,
        r.get::<_, i64>(5)?,
        req(6)?,
        req(7)?,
    );
    let (event_id, source_kind, source, pbx, ts_us, kind, verb) = fields;
    let build = || -> Result<Event, StoreError> {
        let mut e = Event::new(
            enum_from(&source_kind)?,
            Str::from(source.as_str()),
            Str::from(pbx.as_str()),
            micros(Some(ts_us))?.ok_or_else(|| StoreError::Malformed("ts".into()))?,
            enum_from(&kind)?,
            Str::from(verb.as_str()),
        );
        let col = |i: usize| s(i).map_err(|e| StoreError::Malformed(e.to_string()));
        e.event_id = event_id.clone();
        e.call_id = col(8)?;
        e.linked_id = col(9)?;
        e.peer_call_id = col(10)?;
        e.queue = col(11)?.map(Str::from);
        e.agent = col(12)?.map(Str::from);
        e.agent_raw = col(13)?.map(Str::from);
        e.caller = col(14)?;
        e.caller_raw = col(15)?;
        e.caller_name = col(16)?;
        e.callee = col(17)?;
        e.callee_raw = col(18)?;
        e.direction = col(19)?.map(|v| enum_from(&v)).transpose()?;
        e.disposition = col(20)?.map(|v| enum_from(&v)).transpose()?;
        let num = |i: usize| u32c(i).map_err(|e| StoreError::Malformed(e.to_string()));
        e.wait_s = num(21)?;
        e.talk_s = num(22)?;
        e.ring_ms = r
            .get::<_, Option<i64>>(23)
            .map_err(|e| StoreError::Malformed(e.to_string()))?
            .map(|v| v.max(0) as u64);
        e.duration_s = num(24)?;
        e.position = num(25)?;
        e.orig_position = num(26)?;
        let us = |i: usize| {
            r.get::<_, Option<i64>>(i)
                .map_err(|e| StoreError::Malformed(e.to_string()))
        };
        e.answered_at = micros(us(27)?)?;
        e.ended_at = micros(us(28)?)?;
        e.info = col(29)?;
        if let Some(d) = col(30)? {
            e.data = serde_json::from_str(&d)
                .map_err(|e| StoreError::Malformed(format!("data: {e}")))?;
        }
        Ok(e)
    };
    Ok((seq, build()))
}
