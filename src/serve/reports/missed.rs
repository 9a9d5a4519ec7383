//! `missed`: every missed-call episode (`missed_calls`) opened in the
//! range — in the zone of the PBX of the call that opened it — with its
//! status, the call and agent that resolved it, and the time to callback;
//! the summary counts the episodes never called back.

use super::table::{col, ratio, read, Col, Kind, Report};
use super::{name_of, Ctx, BOUNDS};
use crate::store::StoreError;
use duckdb::Connection;
use serde_json::Value;

const COLS: [Col; 13] = [
    col("caller", Kind::Pbx),
    col("caller_name", Kind::Pbx),
    col("queue", Kind::Pbx),
    col("opened_at", Kind::Time),
    col("last_missed_at", Kind::Time),
    col("missed_count", Kind::Int),
    col("callback_attempts", Kind::Int),
    col("status", Kind::Text),
    col("resolved_at", Kind::Time),
    col("resolved_by", Kind::Pbx),
    col("resolved_by_agent", Kind::Pbx),
    col("agent_name", Kind::Pbx),
    col("time_to_callback_s", Kind::Secs),
];

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let sql = format!(
        "WITH {BOUNDS},
         near AS (
           SELECT m.* EXCLUDE (party_key) FROM missed_calls m
           WHERE m.opened_at >= (SELECT min(r0) FROM b) - INTERVAL 2 DAY
             AND m.opened_at < (SELECT max(r1) FROM b) + INTERVAL 2 DAY
             AND (?1::VARCHAR IS NULL OR m.queue = ?1::VARCHAR)),
         opener AS (
           SELECT call_id, min(pbx) AS pbx FROM calls
           WHERE call_id IN (SELECT opened_by FROM near) GROUP BY call_id),
         resolver AS (
           SELECT call_id, arg_min(agent, stint) FILTER (WHERE answered_at IS NOT NULL) AS agent
           FROM calls WHERE call_id IN (SELECT resolved_by FROM near) GROUP BY call_id),
         ep AS (
           SELECT n.*, r.agent AS resolved_by_agent
           FROM near n
           LEFT JOIN opener o ON o.call_id = n.opened_by
           CROSS JOIN (SELECT min(pbx) AS pbx FROM b) f
           JOIN b ON b.pbx = coalesce(o.pbx, f.pbx)
             AND n.opened_at >= b.r0 AND n.opened_at < b.r1
           LEFT JOIN resolver r ON r.call_id = n.resolved_by)
         SELECT caller, {cname}, queue, epoch_us(opened_at), epoch_us(last_missed_at),
                missed_count::BIGINT, callback_attempts::BIGINT, status, epoch_us(resolved_at),
                resolved_by, resolved_by_agent, {aname},
                CASE WHEN status = 'called_back'
                     THEN (epoch(resolved_at) - epoch(opened_at))::BIGINT END
         FROM ep
         WHERE ?2::VARCHAR IS NULL OR resolved_by_agent = ?2::VARCHAR
         ORDER BY opened_at, caller",
        cname = name_of("ep.caller"),
        aname = name_of("ep.resolved_by_agent"),
    );
    let t = read(
        conn,
        &sql,
        &[&ctx.p.queue, &ctx.p.agent],
        &COLS,
        ctx.tz,
        "rows",
    )?;
    let count = |s: &str| -> i64 {
        t.rows
            .iter()
            .filter(|r| t.get(r, "status") == &Value::from(s))
            .count() as i64
    };
    let episodes = t.rows.len() as i64;
    let called_back = count("called_back");
    let waits: Vec<i64> = t
        .rows
        .iter()
        .filter_map(|r| t.get(r, "time_to_callback_s").as_i64())
        .collect();
    let avg = if waits.is_empty() {
        Value::Null
    } else {
        Value::from(waits.iter().sum::<i64>() as f64 / waits.len() as f64)
    };
    let missed: i64 = t
        .rows
        .iter()
        .filter_map(|r| t.get(r, "missed_count").as_i64())
        .sum();
    let summary = vec![
        ("episodes", Kind::Int, episodes.into()),
        ("missed_count", Kind::Int, missed.into()),
        ("open", Kind::Int, count("open").into()),
        ("called_back", Kind::Int, called_back.into()),
        ("returned", Kind::Int, count("returned").into()),
        ("expired", Kind::Int, count("expired").into()),
        (
            "not_called_back",
            Kind::Int,
            (episodes - called_back).into(),
        ),
        (
            "not_called_back_share",
            Kind::Ratio,
            ratio(episodes - called_back, episodes),
        ),
        ("avg_time_to_callback_s", Kind::AvgSecs, avg),
    ];
    Ok(Report {
        name: "missed",
        summary,
        tables: vec![t],
        extra: Vec::new(),
    })
}
