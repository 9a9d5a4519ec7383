//! Deriving the whole state at once, from no derived rows (`import` into a
//! fresh store, `rederive`): every event is read once, in call order, and
//! every derived row written once, where the live deriver's steps
//! (`refresh.rs`) re-read, step after step, every call of the parties a
//! step touches (a cost that grows with the store).
//!
//! The rows are those the steps make (the same pure functions of the
//! events: `calls.rs`, `attempts.rs`, `party.rs`, `sla.rs`, `agents.rs`);
//! the state changes recorded are those of one step holding every event:
//! each first call, each episode opened and closed, each party's last agent
//! and each breach as they end up (docs/schema.md).
//!
//! The phases, each a function the store runs in its transactions
//! (`store/derive_fresh.rs`): [`derive_calls`], then on the committed calls
//! [`derive_parties`], [`derive_sla`] and [`derive_agents`].

use super::calls::{build, CallRow, Ev};
use super::party_key::unpacked;
use super::refresh::{self, OldParties, PartyWriter, Touched};
use super::{agents, attempts, legs, StateConfig};
use calltrail_parsers::{Event, EventKind};
use duckdb::arrow::array::{Array, AsArray, RecordBatch};
use duckdb::arrow::datatypes::{DataType, Int32Type, Int64Type, UInt64Type};
use duckdb::{params, Connection};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// A phase's error: the database's, or the one recording its state changes
/// returned.
#[derive(Debug, thiserror::Error)]
pub enum FreshError<E> {
    #[error("{0}")]
    Db(#[from] duckdb::Error),
    #[error("recording state changes: {0}")]
    Record(E),
}

/// Records a lot of state changes on the connection it is given (the
/// writer's, in its transaction).
pub type Recorder<'a, E> = dyn FnMut(&Connection, Vec<Event>) -> Result<(), E> + 'a;

/// State changes are handed to the recorder in lots of about this many.
const RECORD_LOT: usize = 20_000;

/// Call ids built again at the end (`derive_calls`) are rebuilt this many
/// at a time, as the live deriver does (`refresh::rebuild_calls`).
const LINKED_LOT: usize = 10_000;

/// The events calls are built from ([`Ev`]), as stored (in about the order
/// they happened: a call's events close together).
const CALL_EVENTS: &str = "SELECT pbx, call_id, event_id, epoch_us(ts), kind, queue, agent,
        caller, caller_raw, callee, direction, disposition, wait_s, talk_s,
        epoch_us(answered_at), epoch_us(ended_at), source_kind, linked_id, channel,
        dst_channel, info
    FROM events WHERE call_id IS NOT NULL AND seq <= $1";

/// Builds and appends the `calls` and `call_attempts` of every event up to
/// `seq <= upto`, read once through `reader` (as stored, gathered by call
/// in memory, not sorted by DuckDB: a sort of 10 M events spilled to disk
/// and took three times as long) and written through `writer` (in the
/// caller's transaction). A call none of whose events came in the last
/// `window` events is taken as complete and built. One whose events come
/// again later (a call spread over more of the log, a file imported after
/// another), and one whose CDR rows may link it to others, is built at the
/// end from all its stored events, as the steps do
/// (`refresh::rebuild_calls`): the window bounds memory, not correctness.
/// Calls `progress` with the events read so far. Returns the calls written.
pub fn derive_calls(
    reader: &Connection,
    writer: &Connection,
    cfg: &StateConfig,
    now: i64,
    upto: i64,
    window: u64,
    progress: &mut dyn FnMut(u64),
) -> duckdb::Result<u64> {
    let window = window.max(1);
    let mut calls = super::columns::Columns::calls();
    let mut tries = writer.appender("call_attempts")?;
    // Every call finished, with whether it has CDR rows: those met more
    // than once, and those with CDR rows, are built again at the end. In
    // DuckDB (which spills), not in memory: one key a call.
    writer.execute_batch(
        "CREATE OR REPLACE TEMP TABLE _fresh_built (pbx VARCHAR, call_id VARCHAR, cdr BOOLEAN)",
    )?;
    let mut built = refresh::temp_appender(writer, "_fresh_built")?;
    let mut written = 0u64;
    let mut read = 0u64;
    let mut finish = |(pbx, id): CallKey, mut group: Vec<Ev>| -> duckdb::Result<()> {
        let cdr = group.iter().any(legs::is_asterisk_cdr);
        built.append_row(params![pbx, id, cdr])?;
        if cdr {
            return Ok(());
        }
        for r in build(&mut group, &id, cfg) {
            calls.push_call(&r, now);
            written += 1;
        }
        calls.append_if_full(writer)?;
        for a in attempts::build(&group, &id) {
            refresh::insert_attempt(&mut tries, &a)?;
        }
        Ok(())
    };
    // By call id alone (looked up without making a key per event); the
    // events of two PBXes' calls with one id are told apart when built.
    let mut open: HashMap<String, (Vec<Ev>, u64)> = HashMap::new();
    let mut order: VecDeque<(u64, String)> = VecDeque::new();
    let mut q = reader.prepare(CALL_EVENTS)?;
    for batch in q.stream_arrow(params![upto])? {
        let b = Cols(batch?);
        for i in 0..b.0.num_rows() {
            let ev = b.ev(i)?;
            let at = read + i as u64;
            match open.get_mut(ev.call_id.as_str()) {
                Some((evs, last)) => {
                    evs.push(ev);
                    *last = at;
                }
                None => {
                    order.push_back((at, ev.call_id.clone()));
                    open.insert(ev.call_id.clone(), (vec![ev], at));
                }
            }
            // The calls whose last event is a window behind.
            while let Some((first, _)) = order.front() {
                if first + window > at {
                    break;
                }
                let Some((_, id)) = order.pop_front() else {
                    break;
                };
                let last = open.get(&id).map_or(0, |(_, last)| *last);
                if last + window > at {
                    order.push_back((last, id));
                } else if let Some((evs, _)) = open.remove(&id) {
                    for (key, group) in by_pbx(id, evs) {
                        finish(key, group)?;
                    }
                }
            }
        }
        read += b.0.num_rows() as u64;
        progress(read);
    }
    for (id, (evs, _)) in open.drain() {
        for (key, group) in by_pbx(id, evs) {
            finish(key, group)?;
        }
    }
    calls.append(writer)?;
    tries.flush()?;
    built.flush()?;
    drop((tries, built));
    writer.execute_batch(
        "CREATE OR REPLACE TEMP TABLE _fresh_again AS
         SELECT row_number() OVER () AS n, pbx, call_id FROM _fresh_built
         GROUP BY pbx, call_id HAVING count(*) > 1 OR bool_or(cdr);
         DROP TABLE _fresh_built;",
    )?;
    let again: i64 = writer.query_row("SELECT count(*) FROM _fresh_again", [], |r| r.get(0))?;
    let lot = LINKED_LOT as i64;
    for from in (0..again).step_by(LINKED_LOT) {
        writer.execute_batch(refresh::TEMP)?;
        writer.execute(
            "INSERT INTO _aff_calls SELECT pbx, call_id FROM _fresh_again WHERE n > ? AND n <= ?",
            params![from, from + lot],
        )?;
        let (mut p, mut i, mut a) = Default::default();
        refresh::rebuild_calls(writer, cfg, now, &mut p, &mut i, &mut a)?;
    }
    writer.execute_batch("DROP TABLE _fresh_again")?;
    tracing::debug!(again, "calls built again from all their events");
    if again == 0 {
        return Ok(written);
    }
    let n: i64 = writer.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(written))
}

/// `(pbx, call_id)`.
type CallKey = (String, String);

/// The events of one call id, by PBX (nearly always one).
fn by_pbx(id: String, mut evs: Vec<Ev>) -> Vec<(CallKey, Vec<Ev>)> {
    let first = evs.first().map(|e| e.pbx.clone()).unwrap_or_default();
    if evs.iter().all(|e| e.pbx == first) {
        return vec![((first, id), evs)];
    }
    evs.sort_by(|a, b| a.pbx.cmp(&b.pbx));
    let mut out: Vec<(CallKey, Vec<Ev>)> = Vec::new();
    for e in evs {
        match out.last_mut() {
            Some(((pbx, _), group)) if *pbx == e.pbx => group.push(e),
            _ => out.push(((e.pbx.clone(), id.clone()), vec![e])),
        }
    }
    out
}

/// The columns of a party's calls after the party's key or name.
const PARTY_CALL_TAIL: &str = "c.pbx, c.call_id, c.stint, c.direction, c.queue,
    epoch_us(c.entered_at), epoch_us(c.answered_at), c.agent, c.missed,
    epoch_us(c.ended_at), c.outcome";

/// Writes every party's `callers`, `last_agent` and `missed_calls` rows
/// from the committed `calls` (read through `reader`, written through
/// `writer`); hands the state changes to `record` in lots. Returns the
/// parties written. The parties that are numbers are read by their key
/// (sorting integers, not reading the `party` column, see `party_key`),
/// the others by name.
pub fn derive_parties<E>(
    reader: &Connection,
    writer: &Connection,
    cfg: &StateConfig,
    now: i64,
    record: &mut Recorder<'_, E>,
) -> Result<u64, FreshError<E>> {
    let mut parties = PartyRun {
        writer: PartyWriter::columnar(writer),
        old: OldParties::default(),
        out: Vec::new(),
        party: None,
        rows: Vec::new(),
        written: 0,
    };
    let hashed = refresh::HASHED;
    let by_key = format!(
        "SELECT c.party_key, {PARTY_CALL_TAIL} FROM calls c
         WHERE c.party_key < {hashed}::UBIGINT ORDER BY c.party_key"
    );
    let by_name = format!(
        "SELECT c.party, {PARTY_CALL_TAIL} FROM calls c
         WHERE c.party_key >= {hashed}::UBIGINT ORDER BY c.party"
    );
    for (sql, keyed) in [(by_key, true), (by_name, false)] {
        let mut q = reader.prepare(&sql)?;
        for batch in q.stream_arrow([])? {
            let b = Cols(batch?);
            for i in 0..b.0.num_rows() {
                let party = if keyed {
                    match b.i64(0, i)?.and_then(|k| unpacked(k as u64)) {
                        Some(p) => p,
                        None => continue,
                    }
                } else {
                    b.req(0, i)?
                };
                parties.push(party, b.call_row(i)?, cfg, now)?;
            }
            if parties.out.len() >= RECORD_LOT {
                parties.writer.flush()?;
                record(writer, std::mem::take(&mut parties.out)).map_err(FreshError::Record)?;
            }
        }
        parties.finish(cfg, now)?;
    }
    parties.writer.flush()?;
    let PartyRun { out, written, .. } = parties;
    record(writer, out).map_err(FreshError::Record)?;
    Ok(written)
}

/// The party being read (its rows come together) and where its rows go.
struct PartyRun<'c> {
    writer: PartyWriter<'c>,
    old: OldParties,
    out: Vec<Event>,
    party: Option<String>,
    rows: Vec<CallRow>,
    written: u64,
}

impl PartyRun<'_> {
    fn push(
        &mut self,
        party: String,
        row: CallRow,
        cfg: &StateConfig,
        now: i64,
    ) -> duckdb::Result<()> {
        if self.party.as_deref() != Some(party.as_str()) {
            self.finish(cfg, now)?;
            self.party = Some(party);
        }
        self.rows.push(row);
        Ok(())
    }

    /// Writes the party read so far.
    fn finish(&mut self, cfg: &StateConfig, now: i64) -> duckdb::Result<()> {
        if let Some(done) = self.party.take() {
            self.writer
                .write(&done, &self.rows, cfg, now, &self.old, &mut self.out, None)?;
            self.written += 1;
            self.rows.clear();
        }
        Ok(())
    }
}

/// Writes every queue's `sla_intervals` and `sla_breaches` from the
/// committed `calls`, a queue at a time; hands the breaches to `record`.
pub fn derive_sla<E>(
    conn: &Connection,
    cfg: &StateConfig,
    now: i64,
    record: &mut Recorder<'_, E>,
) -> Result<(), FreshError<E>> {
    // The intervals a step holding every call would touch: those of its
    // calls that are not open (`refresh`), bucketed as `sla::intervals_sql`.
    let mut by_queue: BTreeMap<String, BTreeSet<(String, i64)>> = BTreeMap::new();
    {
        let mut q = conn.prepare(&format!(
            "SELECT DISTINCT queue,
                    epoch_us(time_bucket(INTERVAL '{} minutes', entered_at))
             FROM calls
             WHERE queue IS NOT NULL AND entered_at IS NOT NULL AND outcome <> 'open'",
            cfg.interval_minutes.max(1)
        ))?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let (queue, start): (String, i64) = (r.get(0)?, r.get(1)?);
            by_queue
                .entry(queue.clone())
                .or_default()
                .insert((queue, start));
        }
    }
    for intervals in by_queue.values() {
        let mut out = Vec::new();
        conn.execute_batch(refresh::TEMP)?;
        refresh::refresh_sla(conn, intervals, cfg, now, &mut out)?;
        record(conn, out).map_err(FreshError::Record)?;
    }
    Ok(())
}

/// The events that state agents' facts (`agents::fact_of`).
fn fact_events_sql() -> String {
    format!(
        "SELECT agent, kind, queue, info, epoch_us(ts), event_id FROM events
         WHERE agent IS NOT NULL AND seq <= $1 AND kind IN ({})",
        agents::FACT_KINDS
    )
}

/// Writes `agent_facts` from every event up to `upto` (read through
/// `reader`) and `agent_status` of every agent with a fact or a call.
pub fn derive_agents(reader: &Connection, writer: &Connection, upto: i64) -> duckdb::Result<()> {
    let mut touched = Touched::default();
    {
        let mut q = reader.prepare(&fact_events_sql())?;
        for batch in q.stream_arrow(params![upto])? {
            let b = Cols(batch?);
            for i in 0..b.0.num_rows() {
                let (Some(agent), Some(kind)) = (b.str(0, i)?, b.str(1, i)?) else {
                    continue;
                };
                let Ok(kind) = serde_json::from_value::<EventKind>(serde_json::Value::String(kind))
                else {
                    continue;
                };
                touched.add_facts(
                    &agent,
                    kind,
                    b.str(2, i)?.as_deref(),
                    b.str(3, i)?.as_deref(),
                    b.i64(4, i)?.unwrap_or(0),
                    &b.str(5, i)?.unwrap_or_default(),
                );
            }
        }
    }
    let mut all = touched.agents.clone();
    {
        let mut q = writer.prepare("SELECT DISTINCT agent FROM calls WHERE agent IS NOT NULL")?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            all.insert(r.get(0)?);
        }
    }
    writer.execute_batch(refresh::TEMP)?;
    refresh::refresh_agents(writer, &touched, &all)
}

/// A streamed batch's columns, read by position.
struct Cols(RecordBatch);

fn bad_type(i: usize, t: &DataType) -> duckdb::Error {
    duckdb::Error::InvalidColumnType(i, format!("{t:?}"), duckdb::types::Type::Null)
}

impl Cols {
    fn col(&self, i: usize) -> &dyn Array {
        self.0.column(i).as_ref()
    }

    fn str(&self, i: usize, row: usize) -> duckdb::Result<Option<String>> {
        let a = self.col(i);
        if a.is_null(row) {
            return Ok(None);
        }
        Ok(Some(match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(row).to_string(),
            DataType::LargeUtf8 => a.as_string::<i64>().value(row).to_string(),
            DataType::Utf8View => a.as_string_view().value(row).to_string(),
            t => return Err(bad_type(i, t)),
        }))
    }

    fn req(&self, i: usize, row: usize) -> duckdb::Result<String> {
        self.str(i, row)?.ok_or(duckdb::Error::InvalidColumnType(
            i,
            "NULL".into(),
            duckdb::types::Type::Text,
        ))
    }

    fn i64(&self, i: usize, row: usize) -> duckdb::Result<Option<i64>> {
        let a = self.col(i);
        if a.is_null(row) {
            return Ok(None);
        }
        match a.data_type() {
            DataType::Int64 => Ok(Some(a.as_primitive::<Int64Type>().value(row))),
            DataType::Int32 => Ok(Some(a.as_primitive::<Int32Type>().value(row).into())),
            DataType::UInt64 => Ok(i64::try_from(a.as_primitive::<UInt64Type>().value(row)).ok()),
            t => Err(bad_type(i, t)),
        }
    }

    fn i32(&self, i: usize, row: usize) -> duckdb::Result<Option<i32>> {
        Ok(self.i64(i, row)?.and_then(|v| i32::try_from(v).ok()))
    }

    fn bool(&self, i: usize, row: usize) -> duckdb::Result<bool> {
        let a = self.col(i);
        match a.data_type() {
            DataType::Boolean => Ok(!a.is_null(row) && a.as_boolean().value(row)),
            t => Err(bad_type(i, t)),
        }
    }

    /// A row of [`CALL_EVENTS`].
    fn ev(&self, r: usize) -> duckdb::Result<Ev> {
        Ok(Ev {
            pbx: self.req(0, r)?,
            call_id: self.req(1, r)?,
            event_id: self.req(2, r)?,
            ts: self.i64(3, r)?.unwrap_or(0),
            kind: self.req(4, r)?,
            queue: self.str(5, r)?,
            agent: self.str(6, r)?,
            caller: self.str(7, r)?,
            caller_raw: self.str(8, r)?,
            callee: self.str(9, r)?,
            direction: self.str(10, r)?,
            disposition: self.str(11, r)?,
            wait_s: self.i32(12, r)?,
            talk_s: self.i32(13, r)?,
            answered_at: self.i64(14, r)?,
            ended_at: self.i64(15, r)?,
            source_kind: self.req(16, r)?,
            linked_id: self.str(17, r)?,
            channel: self.str(18, r)?,
            dst_channel: self.str(19, r)?,
            info: self.str(20, r)?,
        })
    }

    /// The call row of a party's row ([`PARTY_CALL_TAIL`] after its
    /// first column).
    fn call_row(&self, r: usize) -> duckdb::Result<CallRow> {
        Ok(CallRow {
            pbx: self.req(1, r)?,
            call_id: self.req(2, r)?,
            stint: self.i32(3, r)?.unwrap_or(0),
            direction: self.str(4, r)?,
            queue: self.str(5, r)?,
            entered_at: self.i64(6, r)?,
            answered_at: self.i64(7, r)?,
            agent: self.str(8, r)?,
            missed: self.bool(9, r)?,
            ended_at: self.i64(10, r)?,
            outcome: self.req(11, r)?,
            ..CallRow::default()
        })
    }
}
