//! Applying a batch to the derived tables: which keys it touched, reading
//! their stored events and calls, and writing the recomputed rows, all on
//! the batch's transaction.

use super::calls::{build, CallRow, Ev};
use super::party::{caller_row, calls_of, episodes, last_agent};
use super::sla::{self, Breach, IntervalCounts, Wait};
use super::{agents, StateConfig};
use calltrail_parsers::{Event, EventKind};
use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use duckdb::{params, Connection};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The keys a batch touched.
#[derive(Debug, Default, Clone)]
pub struct Touched {
    pub calls: BTreeSet<(String, String)>,
    pub agents: BTreeSet<String>,
    facts: Vec<Fact>,
}

#[derive(Debug, Clone)]
struct Fact {
    agent: String,
    scope: String,
    fact: &'static str,
    value: &'static str,
    reason: Option<String>,
    ts: i64,
    event_id: String,
}

impl Touched {
    /// The keys `events` touch (whether or not they were new: a replayed
    /// batch recomputes the same keys, which is how a crash between an
    /// import's batches heals).
    pub fn from_events(events: &[Event]) -> Touched {
        let mut t = Touched::default();
        for e in events {
            if let Some(c) = &e.call_id {
                t.calls.insert((e.pbx.to_string(), c.clone()));
            }
            let Some(agent) = e.agent.as_deref() else {
                continue;
            };
            if let Some((scope, fact, value, reason)) = agents::fact_of(e) {
                t.agents.insert(agent.to_string());
                let mut push = |scope: String, fact, value, reason| {
                    t.facts.push(Fact {
                        agent: agent.to_string(),
                        scope,
                        fact,
                        value,
                        reason,
                        ts: e.ts.timestamp_micros(),
                        event_id: e.event_id.clone(),
                    })
                };
                if e.kind == EventKind::MemberAdded && e.info.as_deref() == Some("PAUSED") {
                    push(scope.clone(), "pause", "paused", None);
                }
                push(scope, fact, value, reason);
            }
        }
        t
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.agents.is_empty()
    }
}

fn ts(us: i64) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, us)
}

fn opt_ts(us: Option<i64>) -> Value {
    us.map_or(Value::Null, ts)
}

const TEMP: &str = "
CREATE TEMP TABLE IF NOT EXISTS _aff_calls (pbx VARCHAR, call_id VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS _aff_party (caller VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS _aff_int (queue VARCHAR, interval_start TIMESTAMP);
CREATE TEMP TABLE IF NOT EXISTS _aff_agents (agent VARCHAR);
DELETE FROM _aff_calls; DELETE FROM _aff_party; DELETE FROM _aff_int; DELETE FROM _aff_agents;";

/// Recomputes everything `touched` can affect. Runs on the batch's
/// transaction (`conn` is the transaction's connection).
pub fn refresh(
    conn: &Connection,
    touched: &Touched,
    cfg: &StateConfig,
    now: DateTime<Utc>,
) -> duckdb::Result<()> {
    if touched.is_empty() {
        return Ok(());
    }
    let now = now.timestamp_micros();
    let step = cfg.interval_minutes.max(1) as i64 * 60_000_000;
    conn.execute_batch(TEMP)?;
    {
        let mut ins = conn.prepare_cached("INSERT INTO _aff_calls VALUES (?, ?)")?;
        for (pbx, call) in &touched.calls {
            ins.execute(params![pbx, call])?;
        }
    }
    let mut parties: BTreeSet<String> = BTreeSet::new();
    let mut intervals: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut agents_touched: BTreeSet<String> = touched.agents.clone();
    // What the old rows were about (their state must be recomputed too).
    {
        let mut q = conn.prepare_cached(
            "SELECT c.party, c.queue, epoch_us(c.entered_at), c.agent
             FROM calls c JOIN _aff_calls a ON c.pbx = a.pbx AND c.call_id = a.call_id",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(p) = r.get::<_, Option<String>>(0)? {
                parties.insert(p);
            }
            if let (Some(q), Some(t)) =
                (r.get::<_, Option<String>>(1)?, r.get::<_, Option<i64>>(2)?)
            {
                intervals.insert((q, t.div_euclid(step) * step));
            }
            if let Some(a) = r.get::<_, Option<String>>(3)? {
                agents_touched.insert(a);
            }
        }
    }
    // Rebuild the calls.
    let mut by_call: HashMap<(String, String), Vec<Ev>> = HashMap::new();
    {
        let mut q = conn.prepare_cached(
            "SELECT e.pbx, e.call_id, e.event_id, epoch_us(e.ts), e.kind, e.queue, e.agent,
                    e.caller, e.caller_raw, e.callee, e.direction, e.disposition, e.wait_s,
                    e.talk_s, epoch_us(e.answered_at), epoch_us(e.ended_at)
             FROM events e JOIN _aff_calls a ON e.pbx = a.pbx AND e.call_id = a.call_id",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let ev = Ev {
                pbx: r.get(0)?,
                call_id: r.get(1)?,
                event_id: r.get(2)?,
                ts: r.get(3)?,
                kind: r.get(4)?,
                queue: r.get(5)?,
                agent: r.get(6)?,
                caller: r.get(7)?,
                caller_raw: r.get(8)?,
                callee: r.get(9)?,
                direction: r.get(10)?,
                disposition: r.get(11)?,
                wait_s: r.get(12)?,
                talk_s: r.get(13)?,
                answered_at: r.get(14)?,
                ended_at: r.get(15)?,
            };
            by_call
                .entry((ev.pbx.clone(), ev.call_id.clone()))
                .or_default()
                .push(ev);
        }
    }
    conn.execute(
        "DELETE FROM calls USING _aff_calls a WHERE calls.pbx = a.pbx AND calls.call_id = a.call_id",
        [],
    )?;
    {
        let mut ins = conn.prepare_cached(
            "INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?;
        for evs in by_call.values_mut() {
            for r in build(evs, cfg) {
                if let Some(p) = &r.party {
                    parties.insert(p.clone());
                }
                if let (Some(q), Some(t)) = (&r.queue, r.entered_at) {
                    if r.outcome != "open" {
                        intervals.insert((q.clone(), t.div_euclid(step) * step));
                    }
                }
                if let Some(a) = &r.agent {
                    agents_touched.insert(a.clone());
                }
                insert_call(&mut ins, &r, now)?;
            }
        }
    }
    refresh_parties(conn, &parties, cfg, now)?;
    refresh_sla(conn, &intervals, cfg, now)?;
    refresh_agents(conn, touched, &agents_touched)?;
    Ok(())
}

fn insert_call(
    ins: &mut duckdb::CachedStatement<'_>,
    r: &CallRow,
    now: i64,
) -> duckdb::Result<usize> {
    ins.execute(params![
        r.pbx,
        r.call_id,
        r.stint,
        r.direction,
        r.queue,
        r.caller,
        r.caller_raw,
        r.callee,
        r.party,
        opt_ts(r.entered_at),
        opt_ts(r.answered_at),
        opt_ts(r.ended_at),
        r.outcome,
        r.agent,
        r.wait_s,
        r.talk_s,
        r.missed,
        ts(now),
    ])
}

fn refresh_parties(
    conn: &Connection,
    parties: &BTreeSet<String>,
    cfg: &StateConfig,
    now: i64,
) -> duckdb::Result<()> {
    if parties.is_empty() {
        return Ok(());
    }
    {
        let mut ins = conn.prepare_cached("INSERT INTO _aff_party VALUES (?)")?;
        for p in parties {
            ins.execute(params![p])?;
        }
    }
    let mut by_party: BTreeMap<String, Vec<CallRow>> = BTreeMap::new();
    {
        let mut q = conn.prepare_cached(
            "SELECT c.party, c.pbx, c.call_id, c.stint, c.direction, c.queue,
                    epoch_us(c.entered_at), epoch_us(c.answered_at), c.agent, c.missed
             FROM calls c JOIN _aff_party p ON c.party = p.caller",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let party: String = r.get(0)?;
            by_party.entry(party).or_default().push(CallRow {
                pbx: r.get(1)?,
                call_id: r.get(2)?,
                stint: r.get(3)?,
                direction: r.get(4)?,
                queue: r.get(5)?,
                entered_at: r.get(6)?,
                answered_at: r.get(7)?,
                agent: r.get(8)?,
                missed: r.get(9)?,
                ..CallRow::default()
            });
        }
    }
    for table in ["callers", "last_agent", "missed_calls"] {
        conn.execute(
            &format!("DELETE FROM {table} USING _aff_party p WHERE {table}.caller = p.caller"),
            [],
        )?;
    }
    let mut ins_caller = conn.prepare_cached("INSERT INTO callers VALUES (?, ?, ?, ?, ?, ?)")?;
    let mut ins_last = conn.prepare_cached("INSERT INTO last_agent VALUES (?, ?, ?, ?)")?;
    let mut ins_missed =
        conn.prepare_cached("INSERT INTO missed_calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")?;
    for (party, rows) in &by_party {
        let calls = calls_of(rows);
        if let Some(c) = caller_row(&calls) {
            ins_caller.execute(params![
                party,
                ts(c.first_seen_at),
                opt_ts(c.first_answered_at),
                c.calls,
                c.answered_calls,
                ts(c.last_seen_at)
            ])?;
        }
        if let Some((agent, at, call)) = last_agent(&calls) {
            ins_last.execute(params![party, agent, ts(at), call])?;
        }
        for ep in episodes(&calls, cfg, now) {
            ins_missed.execute(params![
                party,
                ep.queue,
                ts(ep.opened_at),
                ts(ep.last_missed_at),
                ep.missed_count,
                ep.callback_attempts,
                ep.status,
                opt_ts(ep.resolved_at),
                ep.resolved_by,
                ep.opened_by
            ])?;
        }
    }
    Ok(())
}

fn refresh_sla(
    conn: &Connection,
    intervals: &BTreeSet<(String, i64)>,
    cfg: &StateConfig,
    now: i64,
) -> duckdb::Result<()> {
    if intervals.is_empty() {
        return Ok(());
    }
    {
        let mut ins = conn.prepare_cached("INSERT INTO _aff_int VALUES (?, ?)")?;
        for (q, t) in intervals {
            ins.execute(params![q, ts(*t)])?;
        }
    }
    conn.execute(
        "DELETE FROM sla_intervals USING _aff_int a
         WHERE sla_intervals.queue = a.queue AND sla_intervals.interval_start = a.interval_start",
        [],
    )?;
    conn.execute(&sla::intervals_sql(cfg), [])?;
    // Breaches of each touched queue, from the earliest touched interval.
    let mut earliest: BTreeMap<&str, i64> = BTreeMap::new();
    for (q, t) in intervals {
        let e = earliest.entry(q.as_str()).or_insert(*t);
        *e = (*e).min(*t);
    }
    let window = cfg.breach.window_minutes as i64 * 60_000_000;
    for (queue, first) in earliest {
        let mut from = first;
        // A stored breach still going on at `from` is recomputed whole.
        let straddling: Option<i64> = conn.query_row(
            "SELECT epoch_us(min(started_at)) FROM sla_breaches
             WHERE queue = ? AND (ended_at IS NULL OR ended_at >= ?)",
            params![queue, ts(from)],
            |r| r.get(0),
        )?;
        if let Some(s) = straddling {
            from = from.min(s);
        }
        let ivs = load_intervals(conn, queue, from - window)?;
        let waits = load_waits(conn, queue, from - window, now)?;
        let mut breaches: Vec<Breach> = sla::service_level_breaches(&ivs, cfg, now);
        breaches.extend(sla::max_wait_breaches(&waits, cfg, now));
        breaches.extend(sla::waiting_breaches(&waits, cfg));
        conn.execute(
            "DELETE FROM sla_breaches WHERE queue = ? AND started_at >= ?",
            params![queue, ts(from)],
        )?;
        let mut ins =
            conn.prepare_cached("INSERT OR IGNORE INTO sla_breaches VALUES (?, ?, ?, ?, ?, ?)")?;
        for b in breaches.iter().filter(|b| b.started_at >= from) {
            ins.execute(params![
                queue,
                b.kind,
                ts(b.started_at),
                opt_ts(b.ended_at),
                b.value,
                b.threshold
            ])?;
        }
    }
    Ok(())
}

fn load_intervals(
    conn: &Connection,
    queue: &str,
    from: i64,
) -> duckdb::Result<Vec<IntervalCounts>> {
    let mut q = conn.prepare_cached(
        "SELECT epoch_us(interval_start), offered, answered, answered_within, abandoned,
                short_abandoned, abandoned_within
         FROM sla_intervals WHERE queue = ? AND interval_start >= ? ORDER BY interval_start",
    )?;
    let rows = q.query_map(params![queue, ts(from)], |r| {
        Ok(IntervalCounts {
            start: r.get(0)?,
            offered: r.get(1)?,
            answered: r.get(2)?,
            answered_within: r.get(3)?,
            abandoned: r.get(4)?,
            short_abandoned: r.get(5)?,
            abandoned_within: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Callers still waiting longer than this are taken as lost lines, not as
/// a queue in breach forever.
const STALE_WAIT_US: i64 = 6 * 3600 * 1_000_000;

fn load_waits(conn: &Connection, queue: &str, from: i64, now: i64) -> duckdb::Result<Vec<Wait>> {
    let mut q = conn.prepare_cached(
        "SELECT epoch_us(entered_at), epoch_us(coalesce(answered_at, ended_at))
         FROM calls WHERE queue = ? AND entered_at >= ? ORDER BY entered_at",
    )?;
    let rows = q.query_map(params![queue, ts(from)], |r| {
        Ok(Wait {
            entered: r.get(0)?,
            end: r.get(1)?,
        })
    })?;
    let mut out = Vec::new();
    for w in rows {
        let w = w?;
        if w.end.is_none() && now - w.entered > STALE_WAIT_US {
            continue;
        }
        out.push(w);
    }
    Ok(out)
}

fn refresh_agents(
    conn: &Connection,
    touched: &Touched,
    agents_touched: &BTreeSet<String>,
) -> duckdb::Result<()> {
    if agents_touched.is_empty() {
        return Ok(());
    }
    {
        let mut up = conn.prepare_cached(agents::UPSERT_FACT)?;
        for f in &touched.facts {
            up.execute(params![
                f.agent,
                f.scope,
                f.fact,
                f.value,
                f.reason,
                ts(f.ts),
                f.event_id
            ])?;
        }
        let mut ins = conn.prepare_cached("INSERT INTO _aff_agents VALUES (?)")?;
        for a in agents_touched {
            ins.execute(params![a])?;
        }
    }
    conn.execute(
        "DELETE FROM agent_status USING _aff_agents a WHERE agent_status.agent = a.agent",
        [],
    )?;
    conn.execute(agents::STATUS_SQL, [])?;
    Ok(())
}

/// The periodic part: open episodes whose time ran out become `expired`.
pub fn sweep(conn: &Connection, cfg: &StateConfig, now: DateTime<Utc>) -> duckdb::Result<usize> {
    conn.execute(
        &format!(
            "UPDATE missed_calls SET status = 'expired',
                 resolved_at = last_missed_at + INTERVAL {h} HOUR
             WHERE status = 'open' AND last_missed_at + INTERVAL {h} HOUR < ?",
            h = cfg.missed_expiry_hours
        ),
        params![ts(now.timestamp_micros())],
    )
}
