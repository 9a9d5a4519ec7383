//! `calls_by_queue`: per queue, the stints that entered it in the range
//! and what became of them; the summary is the same over every queue.

use super::call_counts::{select, COLS, FILTER};
use super::table::{col, read, Col, Kind, Report, Table};
use super::{Ctx, BOUNDS};
use crate::store::StoreError;
use duckdb::Connection;

fn cols(key: Option<Col>) -> Vec<Col> {
    key.into_iter().chain(COLS).collect()
}

/// The counts per `group` (a column of `c`), or over everything.
pub fn counts(conn: &Connection, ctx: &Ctx, group: Option<&str>) -> Result<Table, StoreError> {
    let key = group.map(|g| format!("{g}, ")).unwrap_or_default();
    let tail = group
        .map(|g| format!("GROUP BY {g} ORDER BY {g}"))
        .unwrap_or_default();
    let sql = format!(
        "WITH {BOUNDS}
         SELECT {key}{sel}
         FROM calls c JOIN b ON b.pbx = c.pbx AND c.entered_at >= b.r0 AND c.entered_at < b.r1
         WHERE {FILTER}
         {tail}",
        sel = select(ctx.short_abandon_s),
    );
    let k = group.map(|_| col("queue", Kind::Pbx));
    read(
        conn,
        &sql,
        &[&ctx.p.queue, &ctx.p.agent],
        &cols(k),
        ctx.tz,
        "rows",
    )
}

/// The summary of a table of [`COLS`] over the whole range.
pub fn summary(t: &Table) -> Vec<(&'static str, Kind, serde_json::Value)> {
    match t.rows.first() {
        Some(r) => COLS
            .iter()
            .zip(r)
            .map(|(c, v)| (c.key, c.kind, v.clone()))
            .collect(),
        None => Vec::new(),
    }
}

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let rows = counts(conn, ctx, Some("c.queue"))?;
    let total = counts(conn, ctx, None)?;
    Ok(Report {
        name: "calls_by_queue",
        summary: summary(&total),
        tables: vec![rows],
        extra: Vec::new(),
    })
}
