//! `calls_by_agent`: per agent, the queue stints they answered (by entry
//! time) and the rings they let go unanswered (`ring_no_answer` events, by
//! the time they rang): offered = answered + rang unanswered.

use super::table::{col, read, Col, Kind, Report};
use super::{name_of, Ctx, BOUNDS};
use crate::store::StoreError;
use duckdb::Connection;

const COLS: [Col; 10] = [
    col("agent", Kind::Pbx),
    col("agent_name", Kind::Pbx),
    col("offered", Kind::Int),
    col("answered", Kind::Int),
    col("ring_no_answer", Kind::Int),
    col("answer_rate", Kind::Ratio),
    col("asa_s", Kind::AvgSecs),
    col("talk_s", Kind::Secs),
    col("avg_talk_s", Kind::AvgSecs),
    col("transferred", Kind::Int),
];

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let sql = format!(
        "WITH {BOUNDS},
         ans AS (
           SELECT c.agent, count(*)::BIGINT AS answered, avg(c.wait_s) AS asa_s,
                  sum(coalesce(c.talk_s, 0))::BIGINT AS talk_s,
                  avg(c.talk_s) FILTER (WHERE c.outcome <> 'open' AND c.talk_s IS NOT NULL) AS avg_talk_s,
                  count(*) FILTER (WHERE c.outcome = 'transferred')::BIGINT AS transferred
           FROM calls c JOIN b ON b.pbx = c.pbx AND c.entered_at >= b.r0 AND c.entered_at < b.r1
           WHERE c.queue IS NOT NULL AND c.answered_at IS NOT NULL AND c.agent IS NOT NULL
             AND (?1::VARCHAR IS NULL OR c.queue = ?1::VARCHAR)
             AND (?2::VARCHAR IS NULL OR c.agent = ?2::VARCHAR)
           GROUP BY c.agent),
         rna AS (
           SELECT e.agent, count(*)::BIGINT AS rna
           FROM events e JOIN b ON b.pbx = e.pbx AND e.ts >= b.r0 AND e.ts < b.r1
           WHERE e.kind = 'ring_no_answer' AND e.agent IS NOT NULL
             AND (?1::VARCHAR IS NULL OR e.queue = ?1::VARCHAR)
             AND (?2::VARCHAR IS NULL OR e.agent = ?2::VARCHAR)
           GROUP BY e.agent),
         j AS (
           SELECT coalesce(ans.agent, rna.agent) AS agent,
                  coalesce(ans.answered, 0) AS answered, coalesce(rna.rna, 0) AS rna,
                  ans.asa_s, coalesce(ans.talk_s, 0) AS talk_s, ans.avg_talk_s,
                  coalesce(ans.transferred, 0) AS transferred
           FROM ans FULL OUTER JOIN rna ON rna.agent = ans.agent)
         SELECT agent, {name}, answered + rna, answered, rna,
                answered::DOUBLE / nullif(answered + rna, 0), asa_s, talk_s, avg_talk_s,
                transferred
         FROM j ORDER BY agent",
        name = name_of("j.agent"),
    );
    let t = read(
        conn,
        &sql,
        &[&ctx.p.queue, &ctx.p.agent],
        &COLS,
        ctx.tz,
        "rows",
    )?;
    let sum = |k: &str| -> i64 { t.rows.iter().filter_map(|r| t.get(r, k).as_i64()).sum() };
    let (answered, rna) = (sum("answered"), sum("ring_no_answer"));
    let summary = vec![
        ("offered", Kind::Int, (answered + rna).into()),
        ("answered", Kind::Int, answered.into()),
        ("ring_no_answer", Kind::Int, rna.into()),
        (
            "answer_rate",
            Kind::Ratio,
            super::table::ratio(answered, answered + rna),
        ),
        ("talk_s", Kind::Secs, sum("talk_s").into()),
    ];
    Ok(Report {
        name: "calls_by_agent",
        summary,
        tables: vec![t],
        extra: Vec::new(),
    })
}
