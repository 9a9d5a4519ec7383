//! `agent_activity`: per agent, logged-in periods (member of a queue or
//! logged in with AGENTLOGIN, as `agent_status` says), pauses with their
//! reasons, answered calls and talk time, and occupancy = talk / (logged-in
//! − paused). Periods are walked from the stored events in SQL (window
//! functions over the agent's member, login and pause events, each state
//! the latest by event time like `agent_status`), clipped to the range and
//! to "now"; pauses count only while logged in.

use super::table::{col, ratio, read, Col, Kind, Report};
use super::{name_of, Ctx, BOUNDS};
use crate::store::StoreError;
use duckdb::Connection;

const COLS: [Col; 13] = [
    col("agent", Kind::Pbx),
    col("agent_name", Kind::Pbx),
    col("sessions", Kind::Int),
    col("logged_in_s", Kind::Secs),
    col("pauses", Kind::Int),
    col("paused_s", Kind::Secs),
    col("pause_reasons", Kind::List),
    col("calls", Kind::Int),
    col("calls_in", Kind::Int),
    col("calls_out", Kind::Int),
    col("talk_s", Kind::Secs),
    col("occupancy", Kind::Ratio),
    col("asa_s", Kind::AvgSecs),
];

const SQL: &str = "
WITH __BOUNDS__,
ev AS (
  SELECT e.pbx, e.agent, e.ts, e.event_id, e.kind, e.queue, e.info
  FROM events e JOIN b ON b.pbx = e.pbx
  WHERE e.ts < b.r1 AND e.agent IS NOT NULL
    AND e.kind IN ('member_added', 'member_removed', 'agent_login', 'agent_logoff',
                   'paused', 'unpaused', 'paused_all', 'unpaused_all')
    AND (?2::VARCHAR IS NULL OR e.agent = ?2::VARCHAR)),
mem AS (
  SELECT pbx, agent, ts, event_id,
    (kind = 'member_added')::INTEGER - coalesce(lag(kind = 'member_added')
      OVER (PARTITION BY pbx, agent, queue ORDER BY ts, event_id), false)::INTEGER AS dm,
    0 AS dl
  FROM ev WHERE kind IN ('member_added', 'member_removed')),
lg AS (
  SELECT pbx, agent, ts, event_id, 0 AS dm,
    (kind = 'agent_login')::INTEGER - coalesce(lag(kind = 'agent_login')
      OVER (PARTITION BY pbx, agent ORDER BY ts, event_id), false)::INTEGER AS dl
  FROM ev WHERE kind IN ('agent_login', 'agent_logoff')),
run AS (
  SELECT pbx, agent, ts, event_id, (sum(dm) OVER w > 0 OR sum(dl) OVER w > 0) AS on_
  FROM (SELECT * FROM mem UNION ALL SELECT * FROM lg)
  WINDOW w AS (PARTITION BY pbx, agent ORDER BY ts, event_id ROWS UNBOUNDED PRECEDING)),
edge AS (
  SELECT * FROM (
    SELECT *, lag(on_, 1, false) OVER (PARTITION BY pbx, agent ORDER BY ts, event_id) AS was
    FROM run)
  WHERE on_ <> was),
sess AS (
  SELECT * FROM (
    SELECT pbx, agent, on_, ts AS s0,
           lead(ts) OVER (PARTITION BY pbx, agent ORDER BY ts, event_id) AS s1
    FROM edge)
  WHERE on_),
sc AS (
  SELECT * FROM (
    SELECT s.pbx, s.agent, greatest(s.s0, b.r0) AS c0,
           least(coalesce(s.s1, ?3::TIMESTAMP), b.r1) AS c1
    FROM sess s JOIN b ON b.pbx = s.pbx)
  WHERE c1 > c0),
pe AS (
  SELECT pbx, agent, ts, event_id, kind <> 'unpaused' AND kind <> 'unpaused_all' AS p,
         CASE WHEN kind IN ('paused', 'paused_all') THEN info END AS reason
  FROM ev
  WHERE kind IN ('paused', 'unpaused', 'paused_all', 'unpaused_all')
     OR (kind = 'member_added' AND info = 'PAUSED')),
pedge AS (
  SELECT * FROM (
    SELECT *, lag(p, 1, false) OVER w AS wp, lag(reason) OVER w AS wr FROM pe
    WINDOW w AS (PARTITION BY pbx, agent ORDER BY ts, event_id))
  WHERE p <> wp OR (p AND reason IS DISTINCT FROM wr)),
pz AS (
  SELECT * FROM (
    SELECT pbx, agent, p, reason, ts AS p0,
           lead(ts) OVER (PARTITION BY pbx, agent ORDER BY ts, event_id) AS p1
    FROM pedge)
  WHERE p),
pc AS (
  SELECT z.pbx, z.agent, z.reason, z.p0,
         sum(epoch(least(coalesce(z.p1, ?3::TIMESTAMP), s.c1)) - epoch(greatest(z.p0, s.c0))) AS secs
  FROM pz z JOIN sc s ON s.pbx = z.pbx AND s.agent = z.agent
    AND z.p0 < s.c1 AND coalesce(z.p1, ?3::TIMESTAMP) > s.c0
  GROUP BY ALL),
pr AS (
  SELECT agent, reason, count(*)::BIGINT AS n, sum(secs)::BIGINT AS secs
  FROM pc WHERE secs > 0 GROUP BY ALL),
sa AS (
  SELECT agent, count(*)::BIGINT AS sessions, sum(epoch(c1) - epoch(c0))::BIGINT AS logged
  FROM sc GROUP BY agent),
pa AS (
  SELECT agent, sum(n)::BIGINT AS pauses, sum(secs)::BIGINT AS paused,
         list({'reason': reason, 'pauses': n, 'paused_s': secs}
              ORDER BY reason NULLS FIRST) AS reasons
  FROM pr GROUP BY agent),
ca AS (
  SELECT c.agent, count(*)::BIGINT AS calls,
         count(*) FILTER (WHERE c.direction <> 'outbound')::BIGINT AS calls_in,
         count(*) FILTER (WHERE c.direction = 'outbound')::BIGINT AS calls_out,
         sum(coalesce(c.talk_s, 0))::BIGINT AS talk,
         avg(c.wait_s) FILTER (WHERE c.queue IS NOT NULL) AS asa_s
  FROM calls c JOIN b ON b.pbx = c.pbx AND c.answered_at >= b.r0 AND c.answered_at < b.r1
  WHERE c.agent IS NOT NULL
    AND (?1::VARCHAR IS NULL OR c.queue = ?1::VARCHAR)
    AND (?2::VARCHAR IS NULL OR c.agent = ?2::VARCHAR)
  GROUP BY c.agent),
ag AS (SELECT agent FROM sa UNION SELECT agent FROM pa UNION SELECT agent FROM ca),
inq AS (
  SELECT agent FROM ev WHERE queue = ?1::VARCHAR
  UNION SELECT agent FROM ca)
SELECT ag.agent, __NAME__, coalesce(sa.sessions, 0), coalesce(sa.logged, 0),
       coalesce(pa.pauses, 0), coalesce(pa.paused, 0), pa.reasons,
       coalesce(ca.calls, 0), coalesce(ca.calls_in, 0), coalesce(ca.calls_out, 0),
       coalesce(ca.talk, 0),
       CASE WHEN coalesce(sa.logged, 0) - coalesce(pa.paused, 0) > 0
            THEN coalesce(ca.talk, 0)::DOUBLE / (sa.logged - coalesce(pa.paused, 0)) END,
       ca.asa_s
FROM ag
LEFT JOIN sa ON sa.agent = ag.agent
LEFT JOIN pa ON pa.agent = ag.agent
LEFT JOIN ca ON ca.agent = ag.agent
WHERE ?1::VARCHAR IS NULL OR ag.agent IN (SELECT agent FROM inq)
ORDER BY ag.agent";

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let sql = SQL
        .replace("__BOUNDS__", BOUNDS)
        .replace("__NAME__", &name_of("ag.agent"));
    let now = crate::store::ts(ctx.now);
    let t = read(
        conn,
        &sql,
        &[&ctx.p.queue, &ctx.p.agent, &now],
        &COLS,
        ctx.tz,
        "rows",
    )?;
    let sum = |k: &str| -> i64 { t.rows.iter().filter_map(|r| t.get(r, k).as_i64()).sum() };
    let (logged, paused, talk) = (sum("logged_in_s"), sum("paused_s"), sum("talk_s"));
    let summary = vec![
        ("sessions", Kind::Int, sum("sessions").into()),
        ("logged_in_s", Kind::Secs, logged.into()),
        ("pauses", Kind::Int, sum("pauses").into()),
        ("paused_s", Kind::Secs, paused.into()),
        ("calls", Kind::Int, sum("calls").into()),
        ("talk_s", Kind::Secs, talk.into()),
        ("occupancy", Kind::Ratio, ratio(talk, logged - paused)),
    ];
    Ok(Report {
        name: "agent_activity",
        summary,
        tables: vec![t],
        extra: Vec::new(),
    })
}
