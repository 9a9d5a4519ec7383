//! `outbound`: outbound calls (`calls.direction = 'outbound'`) placed in
//! the range, per agent and number called (with the directory's name), and
//! per agent in all. Outbound calls have no queue: `queue` is not applied.

use super::table::{col, read, Col, Kind, Report, Table};
use super::{name_of, Ctx, BOUNDS};
use crate::store::StoreError;
use duckdb::Connection;

const COLS: [Col; 8] = [
    col("agent", Kind::Pbx),
    col("agent_name", Kind::Pbx),
    col("callee", Kind::Pbx),
    col("callee_name", Kind::Pbx),
    col("calls", Kind::Int),
    col("answered", Kind::Int),
    col("talk_s", Kind::Secs),
    col("last_at", Kind::Time),
];

const AGENT_COLS: [Col; 6] = [
    col("agent", Kind::Pbx),
    col("agent_name", Kind::Pbx),
    col("calls", Kind::Int),
    col("answered", Kind::Int),
    col("talk_s", Kind::Secs),
    col("numbers", Kind::Int),
];

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let sql = format!(
        "WITH {BOUNDS},
         o AS (
           SELECT c.agent, c.callee, count(*)::BIGINT AS calls,
                  count(*) FILTER (WHERE c.answered_at IS NOT NULL)::BIGINT AS answered,
                  sum(coalesce(c.talk_s, 0))::BIGINT AS talk_s, max(c.entered_at) AS last_at
           FROM calls c JOIN b ON b.pbx = c.pbx AND c.entered_at >= b.r0 AND c.entered_at < b.r1
           WHERE c.direction = 'outbound'
             AND (?1::VARCHAR IS NULL OR c.agent = ?1::VARCHAR)
           GROUP BY c.agent, c.callee)
         SELECT agent, {aname}, callee, {cname}, calls, answered, talk_s, epoch_us(last_at)
         FROM o ORDER BY agent NULLS LAST, calls DESC, callee",
        aname = name_of("o.agent"),
        cname = name_of("o.callee"),
    );
    let t = read(conn, &sql, &[&ctx.p.agent], &COLS, ctx.tz, "rows")?;
    // Per agent: the sums of its rows, and how many numbers it called.
    let mut per = Table::new("by_agent", &AGENT_COLS);
    for r in &t.rows {
        let agent = t.get(r, "agent").clone();
        let i = match per.rows.iter().position(|x| x[0] == agent) {
            Some(i) => i,
            None => {
                per.rows.push(vec![
                    agent,
                    t.get(r, "agent_name").clone(),
                    0.into(),
                    0.into(),
                    0.into(),
                    0.into(),
                ]);
                per.rows.len() - 1
            }
        };
        let row = &mut per.rows[i];
        for (k, at) in [("calls", 2), ("answered", 3), ("talk_s", 4)] {
            let add = t.get(r, k).as_i64().unwrap_or(0);
            row[at] = (row[at].as_i64().unwrap_or(0) + add).into();
        }
        row[5] = (row[5].as_i64().unwrap_or(0) + 1).into();
    }
    let sum = |k: &str| -> i64 { t.rows.iter().filter_map(|r| t.get(r, k).as_i64()).sum() };
    let summary = vec![
        ("calls", Kind::Int, sum("calls").into()),
        ("answered", Kind::Int, sum("answered").into()),
        ("talk_s", Kind::Secs, sum("talk_s").into()),
    ];
    Ok(Report {
        name: "outbound",
        summary,
        tables: vec![t, per],
        extra: Vec::new(),
    })
}
