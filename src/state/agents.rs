//! Agent status from the latest membership, login and pause facts (each
//! kept as "latest by event time" in `agent_facts`, so arrival order does
//! not matter) and from the agent's calls.

use calltrail_parsers::{Event, EventKind};

/// One fact an event (its kind, queue and info) states about an agent:
/// `(scope, fact, value, reason)`.
pub fn fact_of(
    kind: EventKind,
    queue: Option<&str>,
    info: Option<&str>,
) -> Option<(String, &'static str, &'static str, Option<String>)> {
    let q = || queue.unwrap_or("").to_string();
    let info = || info.map(str::to_string);
    Some(match kind {
        EventKind::MemberAdded => (q(), "member", "added", None),
        EventKind::MemberRemoved => (q(), "member", "removed", None),
        EventKind::AgentLogin => (String::new(), "login", "in", None),
        EventKind::AgentLogoff => (String::new(), "login", "out", None),
        EventKind::Paused => (q(), "pause", "paused", info()),
        EventKind::Unpaused => (q(), "pause", "unpaused", None),
        EventKind::PausedAll => ("*".into(), "pause", "paused", info()),
        EventKind::UnpausedAll => ("*".into(), "pause", "unpaused", None),
        _ => return None,
    })
}

/// The `events.kind` names [`fact_of`] finds facts in.
pub const FACT_KINDS: &str = "'member_added', 'member_removed', 'agent_login', 'agent_logoff',
    'paused', 'unpaused', 'paused_all', 'unpaused_all'";

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

/// The touched agents' calls, in `_agent_calls (agent, on_call_since,
/// on_call_id, last_ended)`, read without scanning all of `calls`:
/// - the calls open now: few, found by `ended_at IS NULL` (an open call
///   has no end, `calls::build`; DuckDB skips every row group whose
///   `ended_at` has no NULL, where `outcome` alone decoded every row:
///   15 ms a pass at 2.1 M calls) and `outcome`;
/// - the latest end of an answered call, among the calls that ended at or
///   after `{bound}` (the earliest `last_call_ended_at` of the touched
///   agents, [`AGENT_ENDS_BOUND`], as a literal: DuckDB skips the row
///   groups before it). That is exact for every agent with such a call
///   (any call left out ended before it); [`AGENT_ENDS_ALL`] reads the
///   others' whole.
pub const AGENT_CALLS: &str = "CREATE OR REPLACE TEMP TABLE _agent_calls AS
    WITH open AS (
        SELECT agent, max(answered_at) AS on_call_since,
               arg_max(call_id, answered_at) AS on_call_id
        FROM calls
        WHERE ended_at IS NULL AND outcome = 'open' AND answered_at IS NOT NULL
          AND agent IN (SELECT agent FROM _aff_agents)
        GROUP BY agent),
    ends AS (
        SELECT agent, max(ended_at) AS last_ended
        FROM calls
        WHERE ended_at >= {bound} AND answered_at IS NOT NULL
          AND agent IN (SELECT agent FROM _aff_agents)
        GROUP BY agent)
    SELECT agent, o.on_call_since, o.on_call_id, e.last_ended
    FROM open o FULL JOIN ends e USING (agent)";

/// The earliest `last_call_ended_at` of the touched agents, µs (`NULL`
/// when none has one: [`AGENT_CALLS`] then reads every end).
pub const AGENT_ENDS_BOUND: &str = "SELECT epoch_us(min(s.last_call_ended_at))
    FROM agent_status s JOIN _aff_agents a USING (agent)";

/// The ends of the touched agents [`AGENT_CALLS`] found none for (no
/// answered call ended since the bound): read from every call.
pub const AGENT_ENDS_ALL: &str = "INSERT INTO _agent_calls
    SELECT agent, NULL, NULL, max(ended_at)
    FROM calls
    WHERE answered_at IS NOT NULL
      AND agent IN (SELECT agent FROM _aff_agents
                    WHERE agent NOT IN (SELECT agent FROM _agent_calls WHERE last_ended IS NOT NULL))
    GROUP BY agent";

/// Recomputes `agent_status` for the agents in the temp table `_aff_agents`
/// (their calls in `_agent_calls`, [`AGENT_CALLS`]).
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
        SELECT agent, max(on_call_since) AS on_call_since, max(on_call_id) AS on_call_id,
               max(last_ended) AS last_ended
        FROM _agent_calls GROUP BY agent),
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

/// An agent's presence as `agent_status` has it (the dialplan lookup's
/// copy in memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentPresence {
    pub queues: Vec<String>,
    pub logged_in: bool,
    pub paused: bool,
    pub pause_reason: Option<String>,
    pub on_call_since: Option<i64>,
    /// Whether any line ever said the agent is a member of a queue or
    /// logged in or out (static members never are: their presence is
    /// known only while they are on a call).
    pub known: bool,
}

/// The `agent_status` rows of `agents` (every row when `None`); an agent
/// in `agents` without a row comes back with `None` (forgotten).
pub fn read_presence(
    conn: &duckdb::Connection,
    agents: Option<&[String]>,
) -> duckdb::Result<Vec<(String, Option<AgentPresence>)>> {
    let mut q = conn.prepare_cached(
        "SELECT s.agent, s.queues::VARCHAR[], s.logged_in, s.paused, s.pause_reason,
                epoch_us(s.on_call_since),
                EXISTS (SELECT 1 FROM agent_facts f
                        WHERE f.agent = s.agent AND f.fact IN ('member', 'login'))
         FROM agent_status s",
    )?;
    let mut rows = q.query([])?;
    let mut out: std::collections::HashMap<String, Option<AgentPresence>> = agents
        .unwrap_or(&[])
        .iter()
        .map(|a| (a.clone(), None))
        .collect();
    while let Some(r) = rows.next()? {
        let agent: String = r.get(0)?;
        if agents.is_some() && !out.contains_key(&agent) {
            continue;
        }
        let queues = match r.get::<_, duckdb::types::Value>(1)? {
            duckdb::types::Value::List(l) => l
                .into_iter()
                .filter_map(|v| match v {
                    duckdb::types::Value::Text(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        out.insert(
            agent,
            Some(AgentPresence {
                queues,
                logged_in: r.get(2)?,
                paused: r.get(3)?,
                pause_reason: r.get(4)?,
                on_call_since: r.get(5)?,
                known: r.get(6)?,
            }),
        );
    }
    Ok(out.into_iter().collect())
}

/// The dialable interface an event shows for its agent, and whether it is
/// a device (`PJSIP/201`, preferred) rather than a Local channel: a queue
/// member's interface (`agent_raw`), or a CDR channel with Asterisk's
/// `-0000001a` suffix removed (the agent's side: `dstchannel` of an
/// inbound row, `channel` of an outbound one).
pub fn interface_of(e: &Event) -> Option<(String, bool)> {
    e.agent.as_ref()?;
    let from_cdr = matches!(
        e.source_kind,
        calltrail_parsers::SourceKind::AsteriskCdrCsv
            | calltrail_parsers::SourceKind::AsteriskCdrCustom
    );
    let raw = if from_cdr {
        let ch = match e.direction {
            Some(calltrail_parsers::Direction::Outbound) => e.channel.as_deref(),
            _ => e.dst_channel.as_deref(),
        }?;
        strip_channel_suffix(ch)
    } else {
        e.agent_raw.as_deref()?
    };
    interface(raw)
}

/// `raw` as an interface, if it names one (`TECH/resource`).
fn interface(raw: &str) -> Option<(String, bool)> {
    let (tech, rest) = raw.split_once('/')?;
    if rest.is_empty() || rest.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let device = match tech.to_ascii_uppercase().as_str() {
        "PJSIP" | "SIP" | "IAX2" | "DAHDI" => true,
        "LOCAL" => false,
        _ => return None,
    };
    Some((raw.to_string(), device))
}

/// `PJSIP/201-0000001a` → `PJSIP/201`; `Local/201@from-queue-00000012;1`
/// → `Local/201@from-queue`.
fn strip_channel_suffix(ch: &str) -> &str {
    let ch = ch.split(';').next().unwrap_or(ch);
    match ch.rsplit_once('-') {
        Some((head, tail)) if tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => ch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces() {
        assert_eq!(strip_channel_suffix("PJSIP/201-0000001a"), "PJSIP/201");
        assert_eq!(
            strip_channel_suffix("Local/201@from-queue-00000012;1"),
            "Local/201@from-queue"
        );
        assert_eq!(strip_channel_suffix("PJSIP/trunk-a"), "PJSIP/trunk-a");
        assert_eq!(interface("PJSIP/201"), Some(("PJSIP/201".into(), true)));
        assert_eq!(
            interface("Local/201@from-queue/n"),
            Some(("Local/201@from-queue/n".into(), false))
        );
        assert_eq!(interface("Ivan Petrov"), None);
        assert_eq!(interface("Agent/201"), None);
    }
}
