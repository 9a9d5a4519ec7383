//! `calls_by_hour`: queue stints by the local hour of day they entered
//! (0–23, every hour listed; over a DST change the hour that did not exist
//! has nothing, the one that happened twice has both).

use super::call_counts::{select, COLS, FILTER};
use super::calls_by_queue::{counts, summary};
use super::table::{col, read, Col, Kind, Report};
use super::{Ctx, BOUNDS};
use crate::store::StoreError;
use duckdb::Connection;
use serde_json::Value;

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let sql = format!(
        "WITH {BOUNDS}
         SELECT h.hour::BIGINT, {sel}
         FROM calls c JOIN b ON b.pbx = c.pbx AND c.entered_at >= b.r0 AND c.entered_at < b.r1
         ASOF JOIN _rep_hours h ON h.pbx = c.pbx AND c.entered_at >= h.h_start
         WHERE {FILTER}
         GROUP BY h.hour ORDER BY h.hour",
        sel = select(ctx.short_abandon_s),
    );
    let cols: Vec<Col> = std::iter::once(col("hour", Kind::Int))
        .chain(COLS)
        .collect();
    let got = read(
        conn,
        &sql,
        &[&ctx.p.queue, &ctx.p.agent],
        &cols,
        ctx.tz,
        "rows",
    )?;
    let mut t = got.clone();
    t.rows.clear();
    for hour in 0..24i64 {
        match got.rows.iter().find(|r| r[0] == hour) {
            Some(r) => t.rows.push(r.clone()),
            None => {
                let mut r = vec![Value::from(hour)];
                for c in COLS {
                    r.push(match c.kind {
                        Kind::Int => Value::from(0),
                        _ => Value::Null,
                    });
                }
                t.rows.push(r);
            }
        }
    }
    let total = counts(conn, ctx, None)?;
    Ok(Report {
        name: "calls_by_hour",
        summary: summary(&total),
        tables: vec![t],
        extra: Vec::new(),
    })
}
