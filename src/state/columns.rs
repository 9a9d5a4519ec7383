//! Derived rows gathered in columns and appended to their table as one
//! Arrow batch, for the derivation from scratch (`fresh.rs`), which writes
//! millions: DuckDB's row appender takes the connection's lock for every
//! value (a quarter of a 10 M-event derivation went to that lock).
//! The columns follow the tables' order (`schema.rs`, `party_key` last);
//! the live deriver appends the same rows a row at a time
//! (`refresh::insert_call`), and the tests compare the two.

use super::calls::CallRow;
use super::party::CallerRow;
use super::party::Episode;
use duckdb::arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder, UInt64Builder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::Connection;
use std::sync::Arc;

/// Rows are appended in batches of this many.
pub const BATCH_ROWS: usize = 65_536;

/// One column being built.
enum Col {
    Str(StringBuilder),
    I32(Int32Builder),
    Ts(TimestampMicrosecondBuilder),
    U64(UInt64Builder),
    Bool(BooleanBuilder),
}

/// A column's type.
#[derive(Clone, Copy)]
enum T {
    Str,
    I32,
    Ts,
    U64,
    Bool,
}

/// The rows of one table, gathered column by column.
pub struct Columns {
    table: &'static str,
    cols: Vec<Col>,
    rows: usize,
}

impl Columns {
    fn new(table: &'static str, types: &[T]) -> Columns {
        Columns {
            table,
            cols: types.iter().map(|t| Self::builder(*t)).collect(),
            rows: 0,
        }
    }

    fn builder(t: T) -> Col {
        match t {
            T::Str => Col::Str(StringBuilder::new()),
            T::I32 => Col::I32(Int32Builder::new()),
            T::Ts => Col::Ts(TimestampMicrosecondBuilder::new()),
            T::U64 => Col::U64(UInt64Builder::new()),
            T::Bool => Col::Bool(BooleanBuilder::new()),
        }
    }

    /// `calls`' columns.
    pub fn calls() -> Columns {
        use T::*;
        Columns::new(
            "calls",
            &[
                Str, Str, I32, Str, Str, Str, Str, Str, Str, Ts, Ts, Ts, Str, Str, I32, I32, Bool,
                Ts, U64,
            ],
        )
    }

    /// `callers`' columns.
    pub fn callers() -> Columns {
        use T::*;
        Columns::new("callers", &[Str, Ts, Ts, I32, I32, Ts, U64])
    }

    /// `last_agent`'s columns.
    pub fn last_agent() -> Columns {
        use T::*;
        Columns::new("last_agent", &[Str, Str, Ts, Str, U64])
    }

    /// `missed_calls`' columns.
    pub fn missed_calls() -> Columns {
        use T::*;
        Columns::new(
            "missed_calls",
            &[Str, Str, Ts, Ts, I32, I32, Str, Ts, Str, Str, U64],
        )
    }

    fn s(&mut self, i: usize, v: Option<&str>) {
        if let Col::Str(b) = &mut self.cols[i] {
            b.append_option(v);
        }
    }

    fn i(&mut self, i: usize, v: Option<i32>) {
        if let Col::I32(b) = &mut self.cols[i] {
            b.append_option(v);
        }
    }

    fn t(&mut self, i: usize, v: Option<i64>) {
        if let Col::Ts(b) = &mut self.cols[i] {
            b.append_option(v);
        }
    }

    fn u(&mut self, i: usize, v: Option<u64>) {
        if let Col::U64(b) = &mut self.cols[i] {
            b.append_option(v);
        }
    }

    fn b(&mut self, i: usize, v: bool) {
        if let Col::Bool(b) = &mut self.cols[i] {
            b.append_value(v);
        }
    }

    /// One `calls` row, as `refresh::insert_call` writes it.
    pub fn push_call(&mut self, r: &CallRow, now: i64) {
        self.s(0, Some(&r.pbx));
        self.s(1, Some(&r.call_id));
        self.i(2, Some(r.stint));
        self.s(3, r.direction.as_deref());
        self.s(4, r.queue.as_deref());
        self.s(5, r.caller.as_deref());
        self.s(6, r.caller_raw.as_deref());
        self.s(7, r.callee.as_deref());
        self.s(8, r.party.as_deref());
        self.t(9, r.entered_at);
        self.t(10, r.answered_at);
        self.t(11, r.ended_at);
        self.s(12, Some(&r.outcome));
        self.s(13, r.agent.as_deref());
        self.i(14, r.wait_s);
        self.i(15, r.talk_s);
        self.b(16, r.missed);
        self.t(17, Some(now));
        self.u(18, super::party_key::party_key_of(r.party.as_deref()));
        self.rows += 1;
    }

    /// One `callers` row, as `refresh::PartyWriter` writes it.
    pub fn push_caller(&mut self, party: &str, c: &CallerRow, key: u64) {
        self.s(0, Some(party));
        self.t(1, Some(c.first_seen_at));
        self.t(2, c.first_answered_at);
        self.i(3, Some(c.calls));
        self.i(4, Some(c.answered_calls));
        self.t(5, Some(c.last_seen_at));
        self.u(6, Some(key));
        self.rows += 1;
    }

    /// One `last_agent` row.
    pub fn push_last_agent(&mut self, party: &str, agent: &str, at: i64, call: &str, key: u64) {
        self.s(0, Some(party));
        self.s(1, Some(agent));
        self.t(2, Some(at));
        self.s(3, Some(call));
        self.u(4, Some(key));
        self.rows += 1;
    }

    /// One `missed_calls` row.
    pub fn push_episode(&mut self, party: &str, ep: &Episode, key: u64) {
        self.s(0, Some(party));
        self.s(1, ep.queue.as_deref());
        self.t(2, Some(ep.opened_at));
        self.t(3, Some(ep.last_missed_at));
        self.i(4, Some(ep.missed_count));
        self.i(5, Some(ep.callback_attempts));
        self.s(6, Some(ep.status));
        self.t(7, ep.resolved_at);
        self.s(8, ep.resolved_by.as_deref());
        self.s(9, Some(&ep.opened_by));
        self.u(10, Some(key));
        self.rows += 1;
    }

    /// Appends the rows gathered when there are [`BATCH_ROWS`] of them.
    pub fn append_if_full(&mut self, conn: &Connection) -> duckdb::Result<()> {
        if self.rows >= BATCH_ROWS {
            self.append(conn)?;
        }
        Ok(())
    }

    /// Appends the rows gathered to the table (in the connection's
    /// transaction) and starts again.
    pub fn append(&mut self, conn: &Connection) -> duckdb::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut fields = Vec::with_capacity(self.cols.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len());
        for (i, c) in self.cols.iter_mut().enumerate() {
            let (dt, a): (DataType, ArrayRef) = match c {
                Col::Str(b) => (DataType::Utf8, Arc::new(b.finish())),
                Col::I32(b) => (DataType::Int32, Arc::new(b.finish())),
                Col::Ts(b) => (
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    Arc::new(b.finish()),
                ),
                Col::U64(b) => (DataType::UInt64, Arc::new(b.finish())),
                Col::Bool(b) => (DataType::Boolean, Arc::new(b.finish())),
            };
            fields.push(Field::new(format!("c{i}"), dt, true));
            arrays.push(a);
        }
        self.rows = 0;
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| {
            duckdb::Error::FromSqlConversionFailure(0, duckdb::types::Type::Null, Box::new(e))
        })?;
        let mut app = conn.appender(self.table)?;
        app.append_record_batch(batch)?;
        app.flush()
    }
}
