//! Mapping between [`Event`] and the `events` table's columns.

use super::{db, StoreError};
use calltrail_parsers::{Event, Str};
use chrono::{DateTime, Utc};
use duckdb::Row;
use duckdb::{params, Connection};
use serde::de::DeserializeOwned;

/// Up to `$2` rows after `seq` `$1`, in `seq` order; `{table}` is `events`
/// or `state_events`. The `seq` bound of the page is found by sorting `seq`
/// alone; the rows are then a range scan. `ORDER BY seq LIMIT n` over all
/// columns sorted every row after `$1` in full: 4.3 s (and out of memory
/// under a 256 MB `memory_limit`) for the first page of 10 M events, where
/// this takes 0.56 s.
pub(super) const SELECT_AFTER: &str = "SELECT seq,
    event_id, source_kind, source, pbx, epoch_us(ts), kind, verb, call_id, linked_id, peer_call_id,
    queue, agent, agent_raw, caller, caller_raw, caller_name, callee, callee_raw, direction,
    disposition, wait_s, talk_s, ring_ms, duration_s, position, orig_position, epoch_us(answered_at),
    epoch_us(ended_at), info, data, channel, dst_channel
    FROM {table} WHERE seq > $1 AND seq <= (
        SELECT coalesce(max(seq), $1) FROM (SELECT seq FROM {table} WHERE seq > $1 ORDER BY seq LIMIT $2))
    ORDER BY seq";

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
        e.channel = col(31)?;
        e.dst_channel = col(32)?;
        Ok(e)
    };
    Ok((seq, build()))
}

/// Bulk-loads `events` into the connection's staging table with DuckDB's
/// appender (row-by-row INSERTs cost ~1 ms each), `ord` numbered from
/// `first` (the `seq`s they will get in `events`, or just their order).
/// Called before the batch's transaction; [`insert_staged_into`] or
/// [`insert_staged_new`] moves them.
pub(super) fn stage(
    conn: &Connection,
    events: &[Event],
    now: DateTime<Utc>,
    first: i64,
) -> Result<(), StoreError> {
    conn.execute_batch(&super::schema::events_stage_ddl())
        .map_err(db("preparing the event stage"))?;
    if events.is_empty() {
        return Ok(());
    }
    let refs: Vec<&Event> = events.iter().collect();
    let batch = super::arrow_stage::events_batch(&refs, now, first)
        .map_err(|e| StoreError::Malformed(format!("building the event batch: {e}")))?;
    let mut app = conn
        .appender_to_catalog_and_db("events_stage", "temp", "main")
        .map_err(db("opening the event stage"))?;
    app.append_record_batch(batch)
        .map_err(db("staging events"))?;
    app.flush().map_err(db("staging events"))?;
    Ok(())
}

/// Appends a record batch (see [`super::arrow_stage`], `seq` already given)
/// straight to `events`, inside the caller's transaction; returns its rows.
pub(super) fn append(
    conn: &Connection,
    batch: duckdb::arrow::array::RecordBatch,
) -> Result<usize, StoreError> {
    let n = batch.num_rows();
    if n == 0 {
        return Ok(0);
    }
    let mut app = conn
        .appender("events")
        .map_err(db("opening the events appender"))?;
    app.append_record_batch(batch)
        .map_err(db("appending events"))?;
    app.flush().map_err(db("appending events"))?;
    Ok(n)
}

/// Moves the staged events (their `ord` is their `seq`) into `events`,
/// skipping ids `source` already stored (snapshot sources: record + version
/// ids, low volume); returns how many were new.
pub(super) fn insert_staged_new(conn: &Connection, source: &str) -> Result<usize, StoreError> {
    let n = conn
        .execute(
            "INSERT INTO events
             SELECT * FROM temp.events_stage s
             WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.source = ? AND e.event_id = s.event_id)
             ORDER BY ord",
            params![source],
        )
        .map_err(db("inserting events"))?;
    conn.execute("DROP TABLE IF EXISTS temp.events_stage", [])
        .map_err(db("clearing the event stage"))?;
    Ok(n)
}

/// Moves the staged events into `state_events` (keeping their order; `seq`
/// from its sequence), but a change already recorded: the same `event_id`
/// at the same `ts` (a replayed or re-derived step), stored or staged
/// before; returns how many were new. The anti-join reads `state_events`
/// only within the staged events' span of `ts` (a constant range DuckDB
/// checks against each row group's min/max; changes are recorded in about
/// the order of their times), so its cost follows the step, not the table.
pub(super) fn insert_staged_into(conn: &Connection, table: &str) -> Result<usize, StoreError> {
    let cols = STAGE_EVENT_COLUMNS[1..].join(", ");
    let span: (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM temp.events_stage",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db("reading the staged events' span"))?;
    let (Some(lo), Some(hi)) = span else {
        return Ok(0);
    };
    let n = conn
        .execute(
            &format!(
                "INSERT INTO {table} ({cols})
                 SELECT {cols} FROM temp.events_stage x
                 WHERE NOT EXISTS (
                     SELECT 1 FROM {table} s
                     WHERE s.ts >= make_timestamp($1) AND s.ts <= make_timestamp($2)
                       AND s.event_id = x.event_id AND s.ts = x.ts)
                 QUALIFY row_number() OVER (PARTITION BY event_id, ts ORDER BY ord) = 1
                 ORDER BY ord"
            ),
            params![lo, hi],
        )
        .map_err(db("inserting events"))?;
    conn.execute("DROP TABLE IF EXISTS temp.events_stage", [])
        .map_err(db("clearing the event stage"))?;
    Ok(n)
}

/// Whether `state_events` has the staged columns in their order (`seq` in
/// place of `ord`), so that [`append_state_events`] can append to it.
pub(super) fn state_events_take_batches(conn: &Connection) -> Result<bool, StoreError> {
    let mut q = conn
        .prepare(
            "SELECT column_name FROM duckdb_columns()
             WHERE schema_name = 'main' AND table_name = 'state_events' ORDER BY column_index",
        )
        .map_err(db("reading the state_events columns"))?;
    let names: Vec<String> = q
        .query_map([], |r| r.get(0))
        .map_err(db("reading the state_events columns"))?
        .collect::<Result<_, _>>()
        .map_err(db("reading the state_events columns"))?;
    let want = std::iter::once("seq").chain(STAGE_EVENT_COLUMNS[1..].iter().copied());
    Ok(names.iter().map(String::as_str).eq(want))
}

/// Appends `events` straight to `state_events`, in their order, each with a
/// `seq` drawn from its sequence (a derivation from scratch,
/// `super::derive_fresh`: changes known to be new, the duplicates of older
/// ones taken out at its end); returns how many. Needs
/// [`state_events_take_batches`].
pub(super) fn append_state_events(
    conn: &Connection,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut seqs: Vec<i64> = {
        let mut q = conn
            .prepare("SELECT nextval('state_events_seq') FROM range(?)")
            .map_err(db("drawing state_events seqs"))?;
        let rows = q
            .query_map(params![events.len() as i64], |r| r.get(0))
            .map_err(db("drawing state_events seqs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db("drawing state_events seqs"))?
    };
    seqs.sort_unstable();
    let refs: Vec<&Event> = events.iter().collect();
    let batch = super::arrow_stage::events_batch(&refs, now, 0)
        .and_then(|b| {
            let mut cols = b.columns().to_vec();
            cols[0] = std::sync::Arc::new(duckdb::arrow::array::Int64Array::from(seqs));
            duckdb::arrow::array::RecordBatch::try_new(b.schema(), cols)
        })
        .map_err(|e| StoreError::Malformed(format!("building the state change batch: {e}")))?;
    let mut app = conn
        .appender("state_events")
        .map_err(db("opening the state_events appender"))?;
    app.append_record_batch(batch)
        .map_err(db("appending state changes"))?;
    app.flush().map_err(db("appending state changes"))?;
    Ok(events.len())
}

/// The staged event columns: `ord`, then the `events` columns in the order
/// of the staging table (the `events` table's columns but `seq`).
const STAGE_EVENT_COLUMNS: [&str; 34] = [
    "ord",
    "event_id",
    "source_kind",
    "source",
    "pbx",
    "ts",
    "kind",
    "verb",
    "call_id",
    "linked_id",
    "peer_call_id",
    "queue",
    "agent",
    "agent_raw",
    "caller",
    "caller_raw",
    "caller_name",
    "callee",
    "callee_raw",
    "direction",
    "disposition",
    "wait_s",
    "talk_s",
    "ring_ms",
    "duration_s",
    "position",
    "orig_position",
    "answered_at",
    "ended_at",
    "info",
    "data",
    "ingested_at",
    "channel",
    "dst_channel",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// More events than the appender's auto-flush (204,800), staged in the
    /// transaction that made the staging table (the first derivation step
    /// of a connection), are all moved: with the staging table made by
    /// `CREATE TABLE AS`, DuckDB read all 250,000 back as none.
    #[test]
    fn a_stage_bigger_than_an_appender_flush_keeps_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("s.duckdb")).unwrap();
        let n = 250_000;
        let now = Utc::now();
        let events: Vec<Event> = (0..n)
            .map(|i| {
                crate::state::derived::first_call(&format!("+7916{i:07}"), now.timestamp_micros())
            })
            .collect();
        let mut conn = store.lock();
        let tx = conn.transaction().unwrap();
        stage(&tx, &events, now, 0).unwrap();
        assert_eq!(insert_staged_into(&tx, "state_events").unwrap(), n);
        tx.commit().unwrap();
        let stored: i64 = conn
            .query_row(
                "SELECT count(DISTINCT event_id) FROM state_events",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, n as i64);
    }
}
