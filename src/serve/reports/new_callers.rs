//! `new_callers`: callers whose first inbound call (`callers.first_seen_at`)
//! came in the range — in the zone of that call's PBX — whether that first
//! call was answered, by whom, and whether they were answered by the end of
//! the range.

use super::table::{col, ratio, read, Col, Kind, Report};
use super::{name_of, Ctx, BOUNDS};
use crate::store::StoreError;
use duckdb::Connection;
use serde_json::Value;

const COLS: [Col; 9] = [
    col("caller", Kind::Pbx),
    col("caller_name", Kind::Pbx),
    col("first_seen_at", Kind::Time),
    col("queue", Kind::Pbx),
    col("first_call_answered", Kind::Bool),
    col("first_agent", Kind::Pbx),
    col("agent_name", Kind::Pbx),
    col("first_answered_at", Kind::Time),
    col("answered_by_range_end", Kind::Bool),
];

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let sql = format!(
        "WITH {BOUNDS},
         near AS (
           SELECT * EXCLUDE (party_key) FROM callers
           WHERE first_seen_at >= (SELECT min(r0) FROM b) - INTERVAL 2 DAY
             AND first_seen_at < (SELECT max(r1) FROM b) + INTERVAL 2 DAY),
         first_call AS (
           SELECT x.party AS caller,
                  arg_min(x.pbx, x.call_id) AS pbx, min(x.call_id) AS call_id
           FROM calls x JOIN near n ON x.party = n.caller AND x.entered_at = n.first_seen_at
           WHERE x.direction = 'inbound' AND x.stint = 1 AND x.outcome NOT IN ('ivr', 'leg')
           GROUP BY x.party),
         fc AS (
           SELECT f.caller, f.pbx,
                  bool_or(c.answered_at IS NOT NULL) AS answered,
                  arg_min(c.queue, c.stint) AS queue,
                  arg_min(c.agent, c.stint) FILTER (WHERE c.answered_at IS NOT NULL) AS agent
           FROM first_call f JOIN calls c ON c.pbx = f.pbx AND c.call_id = f.call_id
           GROUP BY f.caller, f.pbx),
         nc AS (
           SELECT n.caller, n.first_seen_at, n.first_answered_at, fc.queue, fc.answered, fc.agent, b.r1
           FROM near n JOIN fc ON fc.caller = n.caller
           JOIN b ON b.pbx = fc.pbx AND n.first_seen_at >= b.r0 AND n.first_seen_at < b.r1)
         SELECT caller, {cname}, epoch_us(first_seen_at), queue, answered, agent, {aname},
                epoch_us(first_answered_at), coalesce(first_answered_at < r1, false)
         FROM nc
         WHERE (?1::VARCHAR IS NULL OR queue = ?1::VARCHAR)
           AND (?2::VARCHAR IS NULL OR agent = ?2::VARCHAR)
         ORDER BY first_seen_at, caller",
        cname = name_of("nc.caller"),
        aname = name_of("nc.agent"),
    );
    let t = read(
        conn,
        &sql,
        &[&ctx.p.queue, &ctx.p.agent],
        &COLS,
        ctx.tz,
        "rows",
    )?;
    let yes = |k: &str| -> i64 {
        t.rows
            .iter()
            .filter(|r| t.get(r, k) == &Value::Bool(true))
            .count() as i64
    };
    let n = t.rows.len() as i64;
    let first = yes("first_call_answered");
    let summary = vec![
        ("new_callers_count", Kind::Int, n.into()),
        ("first_call_answered", Kind::Int, first.into()),
        ("first_call_answered_share", Kind::Ratio, ratio(first, n)),
        (
            "answered_by_range_end",
            Kind::Int,
            yes("answered_by_range_end").into(),
        ),
    ];
    Ok(Report {
        name: "new_callers",
        summary,
        tables: vec![t],
        extra: Vec::new(),
    })
}
