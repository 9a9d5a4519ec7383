//! Agent status from the latest membership, login and pause facts (each
//! kept as "latest by event time" in `agent_facts`, so arrival order does
//! not matter) and from the agent's calls.

use calltrail_parsers::{Event, EventKind};

/// One fact an event states about an agent: `(scope, fact, value, reason)`.
pub fn fact_of(e: &Event) -> Option<(String, &'static str, &'static str, Option<String>)> {
    let q = || e.queue.as_deref().unwrap_or("").to_string();
    Some(match e.kind {
        EventKind::MemberAdded => (q(), "member", "added", None),
        EventKind::MemberRemoved => (q(), "member", "removed", None),
        EventKind::AgentLogin => (String::new(), "login", "in", None),
        EventKind::AgentLogoff => (String::new(), "login", "out", None),
        EventKind::Paused => (q(), "pause", "paused", e.info.clone()),
        EventKind::Unpaused => (q(), "pause", "unpaused", None),
        EventKind::PausedAll => ("*".into(), "pause", "paused", e.info.clone()),
        EventKind::UnpausedAll => ("*".into(), "pause", "unpaused", None),
        _ => return None,
    })
}

/// Upsert of the staged facts (`_facts`), keeping the latest per key by
/// `(ts, event_id)`.
pub const UPSERT_FACTS: &str = "INSERT INTO agent_facts
    SELECT agent, scope, fact, value, reason, ts, event_id FROM (
        SELECT *, row_number() OVER (PARTITION BY agent, scope, fact ORDER BY ts DESC, event_id DESC) AS rn
        FROM _facts)
    WHERE rn = 1
    ON CONFLICT (agent, scope, fact) DO UPDATE SET
        value = excluded.value, reason = excluded.reason, ts = excluded.ts, event_id = excluded.event_id
    WHERE excluded.ts > agent_facts.ts
       OR (excluded.ts = agent_facts.ts AND excluded.event_id > agent_facts.event_id)";

/// Recomputes `agent_status` for the agents in the temp table `_aff_agents`.
pub const STATUS_SQL: &str = "INSERT INTO agent_status
    WITH f AS (SELECT * FROM agent_facts WHERE agent IN (SELECT agent FROM _aff_agents)),
    members AS (
        SELECT agent, list_sort(list(scope)) AS queues FROM f
        WHERE fact = 'member' AND value = 'added' GROUP BY agent),
    logins AS (SELECT agent, value = 'in' AS logged FROM f WHERE fact = 'login'),
    pauses AS (
        SELECT agent, arg_max(value, (ts, event_id)) = 'paused' AS paused,
               arg_max(reason, (ts, event_id)) AS reason, max(ts) AS since
        FROM f WHERE fact = 'pause' GROUP BY agent),
    calls_of AS (
        SELECT agent,
               max(answered_at) FILTER (WHERE outcome = 'open') AS on_call_since,
               arg_max(call_id, answered_at) FILTER (WHERE outcome = 'open') AS on_call_id,
               max(ended_at) FILTER (WHERE answered_at IS NOT NULL) AS last_ended
        FROM calls WHERE agent IN (SELECT agent FROM _aff_agents) AND answered_at IS NOT NULL
        GROUP BY agent),
    touched AS (SELECT agent, max(ts) AS ts FROM f GROUP BY agent)
    SELECT a.agent,
           coalesce(m.queues, []::VARCHAR[]),
           coalesce(len(m.queues), 0) > 0 OR coalesce(l.logged, false),
           coalesce(p.paused, false),
           CASE WHEN p.paused THEN p.reason END,
           CASE WHEN p.paused THEN p.since END,
           c.on_call_since, c.on_call_id, c.last_ended,
           greatest(t.ts, c.on_call_since, c.last_ended, TIMESTAMP '1970-01-01')
    FROM _aff_agents a
    LEFT JOIN members m USING (agent)
    LEFT JOIN logins l USING (agent)
    LEFT JOIN pauses p USING (agent)
    LEFT JOIN calls_of c USING (agent)
    LEFT JOIN touched t USING (agent)
    WHERE m.agent IS NOT NULL OR l.agent IS NOT NULL OR p.agent IS NOT NULL OR c.agent IS NOT NULL";
