//! Applying a batch to the derived tables: which keys it touched, reading
//! their stored events and calls, and writing the recomputed rows, all on
//! the batch's transaction.

use super::attempts::{self, AttemptRow};
use super::calls::{build, CallRow, Ev};
use super::legs;
use super::party::{caller_row, calls_of, episodes, last_agent};
use super::party_key::{is_hashed, party_key, party_key_of, unpacked};
use super::sla::{self, Breach, IntervalCounts, Wait};
use super::{agents, derived, StateConfig};
use calltrail_parsers::{Event, EventKind};
use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use duckdb::{params, Connection};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
            if let Some(agent) = e.agent.as_deref() {
                t.add_facts(
                    agent,
                    e.kind,
                    e.queue.as_deref(),
                    e.info.as_deref(),
                    e.ts.timestamp_micros(),
                    &e.event_id,
                );
            }
        }
        t
    }

    /// Adds the facts an event of `agent` states (none for most kinds).
    pub(super) fn add_facts(
        &mut self,
        agent: &str,
        kind: EventKind,
        queue: Option<&str>,
        info: Option<&str>,
        ts: i64,
        event_id: &str,
    ) {
        let Some((scope, fact, value, reason)) = agents::fact_of(kind, queue, info) else {
            return;
        };
        self.agents.insert(agent.to_string());
        let mut push = |scope: String, fact, value, reason| {
            self.facts.push(Fact {
                agent: agent.to_string(),
                scope,
                fact,
                value,
                reason,
                ts,
                event_id: event_id.to_string(),
            })
        };
        if kind == EventKind::MemberAdded && info == Some("PAUSED") {
            push(scope.clone(), "pause", "paused", None);
        }
        push(scope, fact, value, reason);
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

/// The step's key tables, made anew each step: DuckDB keeps the memory of
/// rows deleted from a temp table (a `DELETE` of every row, then as many
/// appended, grows it by as much again), so emptying them step after step
/// grew the process by every key it ever derived (216 MB after 600,000
/// events of a bulk derivation); replacing the table frees it.
pub(super) const TEMP: &str = "
CREATE OR REPLACE TEMP TABLE _aff_calls (pbx VARCHAR, call_id VARCHAR);
CREATE OR REPLACE TEMP TABLE _aff_party (k UBIGINT);
CREATE OR REPLACE TEMP TABLE _aff_int (queue VARCHAR, interval_start TIMESTAMP);
CREATE OR REPLACE TEMP TABLE _aff_agents (agent VARCHAR);";

/// Recomputes everything `touched` can affect. Runs on the batch's
/// transaction (`conn` is the transaction's connection).
/// Recomputes the derived rows of every key `touched` names (and of the
/// calls, parties, intervals and agents those rows were or become about);
/// returns the state changes as events. With `changes`, also collects what
/// the lookup's memory must follow (`super::Changes`).
pub fn refresh(
    conn: &Connection,
    touched: &Touched,
    cfg: &StateConfig,
    now: DateTime<Utc>,
    mut changes: Option<&mut super::Changes>,
) -> duckdb::Result<Vec<Event>> {
    let mut out = Vec::new();
    if touched.is_empty() {
        return Ok(out);
    }
    let now = now.timestamp_micros();
    let t0 = std::time::Instant::now();
    conn.execute_batch(TEMP)?;
    {
        let mut ins = temp_appender(conn, "_aff_calls")?;
        for (pbx, call) in &touched.calls {
            ins.append_row(params![pbx, call])?;
        }
        ins.flush()?;
    }
    let mut parties: BTreeSet<String> = BTreeSet::new();
    let mut intervals: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut agents_touched: BTreeSet<String> = touched.agents.clone();
    rebuild_calls(
        conn,
        cfg,
        now,
        &mut parties,
        &mut intervals,
        &mut agents_touched,
    )?;
    let t1 = t0.elapsed();
    refresh_parties(conn, &parties, cfg, now, &mut out, changes.as_deref_mut())?;
    let t2 = t0.elapsed();
    refresh_sla(conn, &intervals, cfg, now, &mut out)?;
    let t3 = t0.elapsed();
    refresh_agents(conn, touched, &agents_touched)?;
    if let Some(ch) = changes {
        let agents: Vec<String> = agents_touched.into_iter().collect();
        ch.agents
            .extend(agents::read_presence(conn, Some(&agents))?);
    }
    tracing::debug!(
        calls = touched.calls.len(),
        parties = parties.len(),
        intervals = intervals.len(),
        calls_ms = t1.as_millis() as u64,
        parties_ms = (t2 - t1).as_millis() as u64,
        sla_ms = (t3 - t2).as_millis() as u64,
        agents_ms = (t0.elapsed() - t3).as_millis() as u64,
        "state refreshed"
    );
    Ok(out)
}

/// Rebuilds the `calls` and `call_attempts` rows of the call ids in
/// `_aff_calls` and of every call id that is one call with them (legs, see
/// `legs.rs`, added to `_aff_calls`); adds to `parties`, `intervals` and
/// `agents` what the old and the new rows are about.
pub(super) fn rebuild_calls(
    conn: &Connection,
    cfg: &StateConfig,
    now: i64,
    parties: &mut BTreeSet<String>,
    intervals: &mut BTreeSet<(String, i64)>,
    agents_touched: &mut BTreeSet<String>,
) -> duckdb::Result<()> {
    let step = cfg.interval_minutes.max(1) as i64 * 60_000_000;
    let by_call = load_call_groups(conn)?;
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
    // Rebuild the calls: each group's events under its call id.
    let call_of = legs::group(&by_call.values().flatten().collect::<Vec<_>>());
    let mut by_root: BTreeMap<(String, String), Vec<Ev>> = BTreeMap::new();
    for (key, evs) in by_call {
        let root = call_of.get(&key).cloned().unwrap_or(key);
        by_root.entry(root).or_default().extend(evs);
    }
    for table in ["calls", "call_attempts"] {
        conn.execute(
            &format!(
                "DELETE FROM {table} USING _aff_calls a
                 WHERE {table}.pbx = a.pbx AND {table}.call_id = a.call_id"
            ),
            [],
        )?;
    }
    {
        let mut ins = conn.appender("calls")?;
        let mut ins_attempts = conn.appender("call_attempts")?;
        for ((_, root), evs) in by_root.iter_mut() {
            for r in build(evs, root, cfg) {
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
            for a in attempts::build(evs, root) {
                insert_attempt(&mut ins_attempts, &a)?;
            }
        }
        ins.flush()?;
        ins_attempts.flush()?;
    }
    Ok(())
}

/// How many rounds [`load_call_groups`] follows links (a leg of a leg …).
const MAX_LINK_ROUNDS: usize = 8;

/// How far apart in time the CDR rows of one call may start.
const LINK_WINDOW_US: i64 = 12 * 3600 * 1_000_000;

const SELECT_CALL_EVENTS: &str = "SELECT e.pbx, e.call_id, e.event_id, epoch_us(e.ts), e.kind,
        e.queue, e.agent, e.caller, e.caller_raw, e.callee, e.direction, e.disposition, e.wait_s,
        e.talk_s, epoch_us(e.answered_at), epoch_us(e.ended_at), e.source_kind, e.linked_id,
        e.channel, e.dst_channel, e.info
     FROM events e JOIN {ids} a ON e.pbx = a.pbx AND e.call_id = a.call_id";

/// Call ids with a CDR row related to the keys in `_links` (by linkedid,
/// or as the other half of a Local channel), within a time window.
const SELECT_LINKED: &str = "
    SELECT e.pbx, e.call_id FROM events e JOIN _links l ON e.pbx = l.pbx AND e.linked_id = l.k
    WHERE l.kind = 'linked' AND e.ts BETWEEN $1 AND $2 AND e.call_id IS NOT NULL
      AND e.source_kind IN ('asterisk_cdr_csv', 'asterisk_cdr_custom')
    UNION
    SELECT e.pbx, e.call_id FROM events e JOIN _links l ON e.pbx = l.pbx AND e.channel = l.k
    WHERE l.kind = 'channel' AND e.ts BETWEEN $1 AND $2 AND e.call_id IS NOT NULL
      AND e.source_kind IN ('asterisk_cdr_csv', 'asterisk_cdr_custom')
    UNION
    SELECT e.pbx, e.call_id FROM events e JOIN _links l ON e.pbx = l.pbx AND e.dst_channel = l.k
    WHERE l.kind = 'dst' AND e.ts BETWEEN $1 AND $2 AND e.call_id IS NOT NULL
      AND e.source_kind IN ('asterisk_cdr_csv', 'asterisk_cdr_custom')";

/// Loads the stored events of the call ids in `_aff_calls`, then adds the
/// call ids their CDR rows link to (and theirs, up to
/// [`MAX_LINK_ROUNDS`]) to `_aff_calls` with their events.
fn load_call_groups(conn: &Connection) -> duckdb::Result<HashMap<(String, String), Vec<Ev>>> {
    conn.execute_batch(
        "CREATE OR REPLACE TEMP TABLE _aff_new (pbx VARCHAR, call_id VARCHAR);
         CREATE OR REPLACE TEMP TABLE _links (pbx VARCHAR, k VARCHAR, kind VARCHAR);",
    )?;
    let mut by_call: HashMap<(String, String), Vec<Ev>> = HashMap::new();
    let mut fresh = read_call_events(conn, "_aff_calls", &mut by_call)?;
    for _ in 0..MAX_LINK_ROUNDS {
        let mut keys: BTreeSet<(String, String, &str)> = BTreeSet::new();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        {
            // A Local channel has one `;1` and one `;2` half: a pair whose
            // other half is loaded already needs no look-up (in a bulk step,
            // most legs and their calls are read together). A linkedid may
            // have rows anywhere, so it is always looked up.
            let cdr = || {
                by_call
                    .values()
                    .flatten()
                    .filter(|e| legs::is_asterisk_cdr(e))
            };
            let channels: HashSet<(&str, &str)> = cdr()
                .filter_map(|e| Some((e.pbx.as_str(), e.channel.as_deref()?)))
                .collect();
            let dsts: HashSet<(&str, &str)> = cdr()
                .filter_map(|e| Some((e.pbx.as_str(), e.dst_channel.as_deref()?)))
                .collect();
            for e in fresh.iter().flat_map(|k| &by_call[k]) {
                if !legs::is_asterisk_cdr(e) {
                    continue;
                }
                let before = keys.len();
                if let Some(l) = e.linked_id.as_deref().filter(|l| !l.is_empty()) {
                    keys.insert((e.pbx.clone(), l.to_string(), "linked"));
                }
                if let Some((base, 1)) = e.dst_channel.as_deref().and_then(legs::local_half) {
                    let leg = format!("{base};2");
                    if !channels.contains(&(e.pbx.as_str(), leg.as_str())) {
                        keys.insert((e.pbx.clone(), leg, "channel"));
                    }
                }
                if let Some((base, 2)) = e.channel.as_deref().and_then(legs::local_half) {
                    let dialled = format!("{base};1");
                    if !dsts.contains(&(e.pbx.as_str(), dialled.as_str())) {
                        keys.insert((e.pbx.clone(), dialled, "dst"));
                    }
                }
                if keys.len() > before {
                    lo = lo.min(e.ts);
                    hi = hi.max(e.ts);
                }
            }
        }
        if keys.is_empty() {
            break;
        }
        conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE _aff_new (pbx VARCHAR, call_id VARCHAR);
             CREATE OR REPLACE TEMP TABLE _links (pbx VARCHAR, k VARCHAR, kind VARCHAR);",
        )?;
        {
            let mut ins = temp_appender(conn, "_links")?;
            for (pbx, k, kind) in &keys {
                ins.append_row(params![pbx, k, kind])?;
            }
            ins.flush()?;
        }
        let mut found: Vec<(String, String)> = Vec::new();
        {
            let mut q = conn.prepare_cached(SELECT_LINKED)?;
            let mut rows = q.query(params![ts(lo - LINK_WINDOW_US), ts(hi + LINK_WINDOW_US)])?;
            while let Some(r) = rows.next()? {
                let key: (String, String) = (r.get(0)?, r.get(1)?);
                if !by_call.contains_key(&key) {
                    found.push(key);
                }
            }
        }
        if found.is_empty() {
            break;
        }
        {
            let mut ins = temp_appender(conn, "_aff_new")?;
            let mut all = temp_appender(conn, "_aff_calls")?;
            for (pbx, call) in &found {
                ins.append_row(params![pbx, call])?;
                all.append_row(params![pbx, call])?;
            }
            ins.flush()?;
            all.flush()?;
        }
        fresh = read_call_events(conn, "_aff_new", &mut by_call)?;
    }
    Ok(by_call)
}

/// Reads the events of the call ids in temp table `ids` into `by_call`;
/// returns the call ids read.
fn read_call_events(
    conn: &Connection,
    ids: &str,
    by_call: &mut HashMap<(String, String), Vec<Ev>>,
) -> duckdb::Result<Vec<(String, String)>> {
    let mut read = BTreeSet::new();
    let mut q = conn.prepare_cached(&SELECT_CALL_EVENTS.replace("{ids}", ids))?;
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
            source_kind: r.get(16)?,
            linked_id: r.get(17)?,
            channel: r.get(18)?,
            dst_channel: r.get(19)?,
            info: r.get(20)?,
        };
        let key = (ev.pbx.clone(), ev.call_id.clone());
        read.insert(key.clone());
        by_call.entry(key).or_default().push(ev);
    }
    Ok(read.into_iter().collect())
}

pub(super) fn insert_attempt(ins: &mut duckdb::Appender<'_>, a: &AttemptRow) -> duckdb::Result<()> {
    ins.append_row(params![
        a.pbx,
        a.call_id,
        a.attempt,
        a.agent,
        a.channel,
        a.leg_call_id,
        a.queue,
        ts(a.rang_at),
        opt_ts(a.answered_at),
        opt_ts(a.ended_at),
        a.ring_s,
        a.talk_s,
        a.outcome,
    ])
}

pub(super) fn insert_call(
    ins: &mut duckdb::Appender<'_>,
    r: &CallRow,
    now: i64,
) -> duckdb::Result<()> {
    ins.append_row(params![
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
        party_key_of(r.party.as_deref()),
    ])
}

fn refresh_parties(
    conn: &Connection,
    parties: &BTreeSet<String>,
    cfg: &StateConfig,
    now: i64,
    out: &mut Vec<Event>,
    changes: Option<&mut super::Changes>,
) -> duckdb::Result<()> {
    if parties.is_empty() {
        return Ok(());
    }
    {
        // By key (see `party_key`): every party whose rows these keys find
        // is recomputed, those named and any that shares a key with one.
        let keys: BTreeSet<u64> = parties.iter().map(|p| party_key(p)).collect();
        let mut ins = temp_appender(conn, "_aff_party")?;
        for k in keys {
            ins.append_row(params![k])?;
        }
        ins.flush()?;
    }
    let t0 = std::time::Instant::now();
    let mut by_party: BTreeMap<String, Vec<CallRow>> = BTreeMap::new();
    {
        // Not by row id after a narrow scan (61 ms instead of 106 ms for
        // 20 parties at 10 M events): DuckDB 2.0 corrupted its heap reading
        // `rowid IN (subquery)` from a table this transaction had deleted
        // from and appended to (`free(): invalid next size`, found by
        // store::tests::live_steps_with_late_old_lines_equal_a_rederive).
        //
        // The party of a number is its key unpacked, so the scan does not
        // read `party`, the costliest column (at 10 M events, one thread,
        // 13 parties: 136 ms with it, 58 without); the parties that are no
        // number, if any, are read apart with their names.
        //
        // `ORDER BY`: without it DuckDB returns the rows in the table's
        // order, which it keeps at a cost (10 M events, 12 parties, two
        // threads, the blocks in memory: 25 ms without, 13 ms with; the
        // daemon's passes on that history: 60 ms, 48 ms).
        let mut q = conn.prepare_cached(&format!(
            "SELECT {PARTY_CALL_COLUMNS_BY_KEY} FROM calls c JOIN _aff_party p ON c.party_key = p.k
             WHERE p.k < {HASHED}::UBIGINT ORDER BY c.party_key"
        ))?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let key: u64 = r.get(0)?;
            let Some(party) = unpacked(key) else { continue };
            by_party.entry(party).or_default().push(call_row_at(r, 1)?);
        }
        if parties.iter().any(|p| is_hashed(party_key(p))) {
            let mut q = conn.prepare_cached(&format!(
                "SELECT {PARTY_CALL_COLUMNS} FROM calls c JOIN _aff_party p ON c.party_key = p.k
                 WHERE p.k >= {HASHED}::UBIGINT ORDER BY c.party_key"
            ))?;
            let mut rows = q.query([])?;
            while let Some(r) = rows.next()? {
                let (party, row) = party_call_row(r)?;
                by_party.entry(party).or_default().push(row);
            }
        }
    }
    let t_calls = t0.elapsed();
    // The state before (to publish what changed), read by the deletes that
    // take it away: one scan of each table instead of two.
    let mut known_callers: HashSet<String> = HashSet::new();
    let mut old_last: HashMap<String, (String, String)> = HashMap::new();
    let mut old_eps: HashMap<(String, i64), String> = HashMap::new();
    {
        let mut q = conn.prepare_cached(
            "DELETE FROM callers USING _aff_party p WHERE callers.party_key = p.k
             RETURNING callers.caller",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            known_callers.insert(r.get(0)?);
        }
        let mut q = conn.prepare_cached(
            "DELETE FROM last_agent USING _aff_party p WHERE last_agent.party_key = p.k
             RETURNING last_agent.caller, last_agent.agent, last_agent.call_id",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            old_last.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
        }
        let mut q = conn.prepare_cached(
            "DELETE FROM missed_calls USING _aff_party p WHERE missed_calls.party_key = p.k
             RETURNING missed_calls.caller, epoch_us(missed_calls.opened_at), missed_calls.status",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            old_eps.insert((r.get(0)?, r.get(1)?), r.get(2)?);
        }
    }
    let t_old = t0.elapsed();
    let old = OldParties {
        callers: known_callers,
        last: old_last,
        episodes: old_eps,
    };
    let mut writer = PartyWriter::new(conn)?;
    let mut changes = changes;
    for (party, rows) in &by_party {
        writer.write(party, rows, cfg, now, &old, out, changes.as_deref_mut())?;
    }
    writer.flush()?;
    tracing::trace!(
        parties = parties.len(),
        calls_ms = t_calls.as_millis() as u64,
        old_ms = (t_old - t_calls).as_millis() as u64,
        write_ms = (t0.elapsed() - t_old).as_millis() as u64,
        "parties refreshed"
    );
    if let Some(ch) = changes {
        // Parties with no call left: their facts are gone.
        for party in parties.iter().filter(|p| !by_party.contains_key(*p)) {
            ch.parties
                .push((party.clone(), super::party_facts::PartyFacts::default()));
        }
    }
    Ok(())
}

/// What parties' rows were before a step (to record what it changed).
#[derive(Debug, Default)]
pub(super) struct OldParties {
    /// Parties with a `callers` row.
    pub callers: HashSet<String>,
    /// `last_agent`: party → (agent, call id).
    pub last: HashMap<String, (String, String)>,
    /// `missed_calls`: (party, opened µs) → status.
    pub episodes: HashMap<(String, i64), String>,
}

/// Appends parties' `callers`, `last_agent` and `missed_calls` rows, made
/// from their calls, and records what changed against [`OldParties`]: a
/// row at a time (the live deriver's few) or gathered in columns
/// ([`PartyWriter::columnar`], a derivation from scratch's millions).
pub(super) struct PartyWriter<'c> {
    conn: &'c Connection,
    rows: Option<[duckdb::Appender<'c>; 3]>,
    columns: Option<[super::columns::Columns; 3]>,
    names: super::party_facts::AgentNames,
}

impl<'c> PartyWriter<'c> {
    pub(super) fn new(conn: &'c Connection) -> duckdb::Result<Self> {
        Ok(PartyWriter {
            conn,
            rows: Some([
                conn.appender("callers")?,
                conn.appender("last_agent")?,
                conn.appender("missed_calls")?,
            ]),
            columns: None,
            names: Default::default(),
        })
    }

    /// A writer that gathers the rows in columns, appended by
    /// [`PartyWriter::flush`] and whenever a table's reach a batch.
    pub(super) fn columnar(conn: &'c Connection) -> Self {
        use super::columns::Columns;
        PartyWriter {
            conn,
            rows: None,
            columns: Some([
                Columns::callers(),
                Columns::last_agent(),
                Columns::missed_calls(),
            ]),
            names: Default::default(),
        }
    }

    /// Writes the rows of `party` from its calls' `rows` (any order).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write(
        &mut self,
        party: &str,
        rows: &[CallRow],
        cfg: &StateConfig,
        now: i64,
        old: &OldParties,
        out: &mut Vec<Event>,
        changes: Option<&mut super::Changes>,
    ) -> duckdb::Result<()> {
        let key = party_key(party);
        let calls = calls_of(rows);
        let eps = episodes(&calls, cfg, now);
        if let Some(ch) = changes {
            let facts = super::party_facts::from_parts(rows, &calls, &eps, &mut self.names);
            ch.parties.push((party.to_string(), facts));
        }
        if let Some(c) = caller_row(&calls) {
            if !old.callers.contains(party) {
                out.push(derived::first_call(party, c.first_seen_at));
            }
            if let Some([callers, ..]) = &mut self.rows {
                callers.append_row(params![
                    party,
                    ts(c.first_seen_at),
                    opt_ts(c.first_answered_at),
                    c.calls,
                    c.answered_calls,
                    ts(c.last_seen_at),
                    key,
                ])?;
            }
            if let Some([callers, ..]) = &mut self.columns {
                callers.push_caller(party, &c, key);
            }
        }
        if let Some((agent, at, call)) = last_agent(&calls) {
            if old.last.get(party) != Some(&(agent.clone(), call.clone())) {
                out.push(derived::last_agent_changed(party, &agent, at, &call));
            }
            if let Some([_, last, _]) = &mut self.rows {
                last.append_row(params![party, agent, ts(at), call, key])?;
            }
            if let Some([_, last, _]) = &mut self.columns {
                last.push_last_agent(party, &agent, at, &call, key);
            }
        }
        for ep in eps {
            let before = old.episodes.get(&(party.to_string(), ep.opened_at));
            if before.is_none() {
                out.push(derived::missed_opened(
                    party,
                    ep.queue.as_deref(),
                    ep.opened_at,
                    &ep.opened_by,
                ));
            }
            if let (false, Some(at)) = (ep.status == "open", ep.resolved_at) {
                if before.is_none_or(|s| s == "open") {
                    out.push(derived::missed_closed(
                        party,
                        ep.queue.as_deref(),
                        ep.opened_at,
                        ep.status,
                        at,
                        ep.resolved_by.as_deref(),
                    ));
                }
            }
            if let Some([_, _, missed]) = &mut self.rows {
                missed.append_row(params![
                    party,
                    ep.queue,
                    ts(ep.opened_at),
                    ts(ep.last_missed_at),
                    ep.missed_count,
                    ep.callback_attempts,
                    ep.status,
                    opt_ts(ep.resolved_at),
                    ep.resolved_by,
                    ep.opened_by,
                    key,
                ])?;
            }
            if let Some([_, _, missed]) = &mut self.columns {
                missed.push_episode(party, &ep, key);
            }
        }
        if let Some(cols) = &mut self.columns {
            for c in cols {
                c.append_if_full(self.conn)?;
            }
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> duckdb::Result<()> {
        if let Some(rows) = &mut self.rows {
            for r in rows {
                r.flush()?;
            }
        }
        if let Some(cols) = &mut self.columns {
            for c in cols {
                c.append(self.conn)?;
            }
        }
        Ok(())
    }
}

/// The columns of `calls` (as `c`) per-party state is made of, read by
/// [`party_call_row`].
pub(crate) const PARTY_CALL_COLUMNS: &str = "c.party, c.pbx, c.call_id, c.stint, c.direction,
    c.queue, epoch_us(c.entered_at), epoch_us(c.answered_at), c.agent, c.missed,
    epoch_us(c.ended_at), c.outcome";

/// [`PARTY_CALL_COLUMNS`] with the party's key (`party_key`) in place of
/// its name.
const PARTY_CALL_COLUMNS_BY_KEY: &str = "c.party_key, c.pbx, c.call_id, c.stint, c.direction,
    c.queue, epoch_us(c.entered_at), epoch_us(c.answered_at), c.agent, c.missed,
    epoch_us(c.ended_at), c.outcome";

/// The first key that is a hash (`party_key`): keys below it are numbers.
pub(super) const HASHED: u64 = 1 << 63;

/// One row of [`PARTY_CALL_COLUMNS`]: its party and the call row.
pub(crate) fn party_call_row(r: &duckdb::Row<'_>) -> duckdb::Result<(String, CallRow)> {
    Ok((r.get(0)?, call_row_at(r, 1)?))
}

/// The call row of [`PARTY_CALL_COLUMNS`] after its first column.
fn call_row_at(r: &duckdb::Row<'_>, at: usize) -> duckdb::Result<CallRow> {
    Ok(CallRow {
        pbx: r.get(at)?,
        call_id: r.get(at + 1)?,
        stint: r.get(at + 2)?,
        direction: r.get(at + 3)?,
        queue: r.get(at + 4)?,
        entered_at: r.get(at + 5)?,
        answered_at: r.get(at + 6)?,
        agent: r.get(at + 7)?,
        missed: r.get(at + 8)?,
        ended_at: r.get(at + 9)?,
        outcome: r.get(at + 10)?,
        ..CallRow::default()
    })
}

/// An appender to one of this connection's TEMP tables.
pub(super) fn temp_appender<'c>(
    conn: &'c Connection,
    table: &str,
) -> duckdb::Result<duckdb::Appender<'c>> {
    conn.appender_to_catalog_and_db(table, "temp", "main")
}

pub(super) fn refresh_sla(
    conn: &Connection,
    intervals: &BTreeSet<(String, i64)>,
    cfg: &StateConfig,
    now: i64,
    out: &mut Vec<Event>,
) -> duckdb::Result<()> {
    if intervals.is_empty() {
        return Ok(());
    }
    {
        let mut ins = temp_appender(conn, "_aff_int")?;
        for (q, t) in intervals {
            ins.append_row(params![q, ts(*t)])?;
        }
        ins.flush()?;
    }
    // The touched intervals' span, a constant range DuckDB checks against
    // each row group's min/max: the scans skip the rows of other times
    // (the same rows as the joins alone).
    let (lo, hi) = intervals
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (_, t)| {
            (lo.min(*t), hi.max(*t))
        });
    conn.execute(
        "DELETE FROM sla_intervals USING _aff_int a
         WHERE sla_intervals.queue = a.queue AND sla_intervals.interval_start = a.interval_start
           AND sla_intervals.interval_start BETWEEN $1 AND $2",
        params![ts(lo), ts(hi)],
    )?;
    let step = cfg.interval_minutes.max(1) as i64 * 60_000_000;
    conn.execute(&sla::intervals_sql(cfg), params![ts(lo), ts(hi + step)])?;
    // Breaches of each touched queue, from the earliest touched interval.
    let mut earliest: BTreeMap<&str, i64> = BTreeMap::new();
    for (q, t) in intervals {
        let e = earliest.entry(q.as_str()).or_insert(*t);
        *e = (*e).min(*t);
    }
    let window = cfg.breach.window_minutes as i64 * 60_000_000;
    let gap = cfg.breach.gap_s as i64 * 1_000_000;
    // Every touched queue at once (a handful of statements per step, not a
    // handful per queue: 50 queues took 0.5 s a step). Each kind is
    // recomputed from `first`, or from the start of its stored breach still
    // going on there, which is recomputed whole (however long ago it
    // started: a breach that goes on is one breach, whatever steps its
    // events were derived in). A max-wait breach that ended less than
    // `gap_s` before `first` may be continued by it: it is recomputed too.
    conn.execute_batch(SLA_Q)?;
    {
        let mut ins = temp_appender(conn, "_sla_q")?;
        for (q, first) in &earliest {
            ins.append_row(params![q, ts(*first), ts(*first), ts(*first)])?;
        }
        ins.flush()?;
    }
    let mut from: BTreeMap<&str, (i64, i64)> =
        earliest.iter().map(|(q, f)| (*q, (*f, *f))).collect();
    {
        let mut q = conn.prepare_cached(
            "SELECT b.queue, b.kind, epoch_us(min(b.started_at)) FROM sla_breaches b
             JOIN _sla_q q ON b.queue = q.queue
             WHERE b.started_at < q.first
               AND (b.ended_at IS NULL OR b.ended_at >=
                    q.first - to_microseconds(CASE WHEN b.kind = $1 THEN $2 ELSE 0 END))
             GROUP BY ALL",
        )?;
        let mut rows = q.query(params![MAX_WAIT, gap])?;
        while let Some(r) = rows.next()? {
            let (queue, kind, start): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if let Some((sl, w)) = from.get_mut(queue.as_str()) {
                match kind.as_str() {
                    SERVICE_LEVEL => *sl = (*sl).min(start),
                    MAX_WAIT | WAITING => *w = (*w).min(start),
                    _ => {}
                }
            }
        }
    }
    // Again, with each queue's starts.
    conn.execute_batch(SLA_Q)?;
    {
        let mut ins = temp_appender(conn, "_sla_q")?;
        for (q, (sl, w)) in &from {
            ins.append_row(params![q, ts(earliest[q]), ts(*sl), ts(*w)])?;
        }
        ins.flush()?;
    }
    let min_sl = from.values().map(|f| f.0).min().unwrap_or(lo);
    let min_w = from.values().map(|f| f.1).min().unwrap_or(lo);
    let ivs = load_intervals(conn, min_sl - window, window)?;
    let waits = load_waits(conn, min_w - window, window)?;
    let mut before: HashMap<(String, String, i64), Option<i64>> = HashMap::new();
    {
        let mut q = conn.prepare_cached(
            "SELECT b.queue, b.kind, epoch_us(b.started_at), epoch_us(b.ended_at)
             FROM sla_breaches b JOIN _sla_q q ON b.queue = q.queue
             WHERE b.started_at >= CASE WHEN b.kind = $1 THEN q.from_sl ELSE q.from_w END
               AND b.started_at >= $2",
        )?;
        let mut rows = q.query(params![SERVICE_LEVEL, ts(min_sl.min(min_w))])?;
        while let Some(r) = rows.next()? {
            before.insert((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?);
        }
    }
    conn.execute(
        "DELETE FROM sla_breaches USING _sla_q q
         WHERE sla_breaches.queue = q.queue
           AND sla_breaches.started_at >=
               CASE WHEN sla_breaches.kind = ? THEN q.from_sl ELSE q.from_w END
           AND sla_breaches.started_at >= ?",
        params![SERVICE_LEVEL, ts(min_sl.min(min_w))],
    )?;
    let mut app = conn.appender("sla_breaches")?;
    for (queue, (from_sl, from_w)) in &from {
        let (queue, from_sl, from_w) = (*queue, *from_sl, *from_w);
        let empty = Vec::new();
        let ivs = ivs.get(queue).unwrap_or(&empty);
        let ivs: Vec<IntervalCounts> = ivs
            .iter()
            .filter(|i| i.start >= from_sl - window)
            .copied()
            .collect();
        let waits = waits
            .get(queue)
            .map(|w| kept_waits(w, from_w - window, now))
            .unwrap_or_default();
        let mut breaches: Vec<Breach> = sla::service_level_breaches(&ivs, cfg, now);
        breaches.retain(|b| b.started_at >= from_sl);
        let mut by_waits = sla::max_wait_breaches(&waits, cfg, now);
        by_waits.extend(sla::waiting_breaches(&waits, cfg));
        breaches.extend(by_waits.into_iter().filter(|b| b.started_at >= from_w));
        breaches.sort_by(|a, b| (a.kind, a.started_at).cmp(&(b.kind, b.started_at)));
        breaches.dedup_by(|a, b| a.kind == b.kind && a.started_at == b.started_at);
        for b in &breaches {
            let was = before.get(&(queue.to_string(), b.kind.to_string(), b.started_at));
            if was.is_none() {
                out.push(derived::breach(
                    queue,
                    b.kind,
                    b.started_at,
                    b.started_at,
                    b.value,
                    false,
                ));
            }
            if let Some(end) = b.ended_at {
                if was.is_none_or(|e| e.is_none()) {
                    out.push(derived::breach(
                        queue,
                        b.kind,
                        b.started_at,
                        end,
                        b.value,
                        true,
                    ));
                }
            }
        }
        // A breach still going on that the events no longer support (a late
        // line put the answer earlier) ends now: consumers saw it start.
        for ((q, kind, start), end) in &before {
            if q != queue {
                continue;
            }
            let gone = !breaches
                .iter()
                .any(|b| b.kind == kind.as_str() && b.started_at == *start);
            if end.is_none() && gone {
                out.push(derived::breach(queue, kind, *start, now, 0.0, true));
            }
        }
        for b in &breaches {
            app.append_row(params![
                queue,
                b.kind,
                ts(b.started_at),
                opt_ts(b.ended_at),
                b.value,
                b.threshold
            ])?;
        }
    }
    app.flush()?;
    Ok(())
}

/// The interval counts of every queue in `_sla_q` from its `from_sl`
/// less `window` on (`lo`: the least of those, a constant bound for the
/// scan), by queue, sorted by start.
fn load_intervals(
    conn: &Connection,
    lo: i64,
    window: i64,
) -> duckdb::Result<HashMap<String, Vec<IntervalCounts>>> {
    let mut q = conn.prepare_cached(
        "SELECT i.queue, epoch_us(i.interval_start), offered, answered, answered_within,
                abandoned, short_abandoned, abandoned_within
         FROM sla_intervals i JOIN _sla_q q ON i.queue = q.queue
         WHERE i.interval_start >= $1 AND i.interval_start >= q.from_sl - to_microseconds($2)
         ORDER BY i.queue, i.interval_start",
    )?;
    let mut rows = q.query(params![ts(lo), window])?;
    let mut out: HashMap<String, Vec<IntervalCounts>> = HashMap::new();
    while let Some(r) = rows.next()? {
        let queue: String = r.get(0)?;
        out.entry(queue).or_default().push(IntervalCounts {
            start: r.get(1)?,
            offered: r.get(2)?,
            answered: r.get(3)?,
            answered_within: r.get(4)?,
            abandoned: r.get(5)?,
            short_abandoned: r.get(6)?,
            abandoned_within: r.get(7)?,
        });
    }
    Ok(out)
}

/// The touched queues of a step and where each kind is recomputed from.
const SLA_Q: &str = "CREATE OR REPLACE TEMP TABLE _sla_q
    (queue VARCHAR, first TIMESTAMP, from_sl TIMESTAMP, from_w TIMESTAMP);";

const SERVICE_LEVEL: &str = "service_level";
const MAX_WAIT: &str = "max_wait";
const WAITING: &str = "waiting_calls";

/// A caller in queue longer than this (still waiting, or until answered or
/// gone) is taken as a lost line, not as a queue in breach for hours: left
/// out of the max-wait and waiting-callers breaches. Being a bound on every
/// wait counted, it also bounds how far before a step's earliest interval
/// its waits are read.
const STALE_WAIT_US: i64 = 6 * 3600 * 1_000_000;

/// The waits of every queue in `_sla_q` that may count at its `from_w`
/// less `window` or later (`lo`: the least of those), by queue, sorted by
/// entry; [`kept_waits`] keeps those that do.
fn load_waits(
    conn: &Connection,
    lo: i64,
    window: i64,
) -> duckdb::Result<HashMap<String, Vec<Wait>>> {
    let mut q = conn.prepare_cached(
        "SELECT c.queue, epoch_us(c.entered_at), epoch_us(coalesce(c.answered_at, c.ended_at))
         FROM calls c JOIN _sla_q q ON c.queue = q.queue
         WHERE c.entered_at >= $1
           AND c.entered_at >= q.from_w - to_microseconds($2) - to_microseconds($3)
         ORDER BY c.queue, c.entered_at",
    )?;
    let mut rows = q.query(params![ts(lo - STALE_WAIT_US), window, STALE_WAIT_US])?;
    let mut out: HashMap<String, Vec<Wait>> = HashMap::new();
    while let Some(r) = rows.next()? {
        let queue: String = r.get(0)?;
        out.entry(queue).or_default().push(Wait {
            entered: r.get(1)?,
            end: r.get(2)?,
        });
    }
    Ok(out)
}

/// The waits of one queue that count at `from` or later (a caller who
/// entered before and was still there counts too), by the clock `now`.
fn kept_waits(waits: &[Wait], from: i64, now: i64) -> Vec<Wait> {
    let mut out = Vec::new();
    for w in waits {
        let end = w.end.unwrap_or(now);
        if end - w.entered > STALE_WAIT_US || (w.entered < from && end < from) {
            continue;
        }
        out.push(*w);
    }
    out
}

pub(super) fn refresh_agents(
    conn: &Connection,
    touched: &Touched,
    agents_touched: &BTreeSet<String>,
) -> duckdb::Result<()> {
    if agents_touched.is_empty() {
        return Ok(());
    }
    {
        conn.execute_batch(
            // Declared, not `CREATE TABLE AS`: see events_stage_ddl (a
            // temp table made that way in the transaction that then appends
            // more than 204,800 rows reads back empty in DuckDB 1.2).
            // Replaced, not emptied: see TEMP.
            "CREATE OR REPLACE TEMP TABLE _facts (agent VARCHAR, scope VARCHAR,
                 fact VARCHAR, value VARCHAR, reason VARCHAR, ts TIMESTAMP, event_id VARCHAR);",
        )?;
        let mut app = temp_appender(conn, "_facts")?;
        for f in &touched.facts {
            app.append_row(params![
                f.agent,
                f.scope,
                f.fact,
                f.value,
                f.reason,
                ts(f.ts),
                f.event_id
            ])?;
        }
        app.flush()?;
        conn.execute(agents::UPSERT_FACTS, [])?;
        let mut ins = temp_appender(conn, "_aff_agents")?;
        for a in agents_touched {
            ins.append_row(params![a])?;
        }
        ins.flush()?;
    }
    let bound: Option<i64> = conn.query_row(agents::AGENT_ENDS_BOUND, [], |r| r.get(0))?;
    let bound = match bound {
        Some(us) => format!("make_timestamp({us})"),
        None => "TIMESTAMP '-infinity'".to_string(),
    };
    conn.execute_batch(&agents::AGENT_CALLS.replace("{bound}", &bound))?;
    conn.execute(agents::AGENT_ENDS_ALL, [])?;
    conn.execute(
        "DELETE FROM agent_status USING _aff_agents a WHERE agent_status.agent = a.agent",
        [],
    )?;
    conn.execute(agents::STATUS_SQL, [])?;
    conn.execute_batch("DROP TABLE IF EXISTS _agent_calls")?;
    Ok(())
}

/// The periodic part: open episodes whose time ran out become `expired`,
/// and the breaches of queues where the clock may have changed one since
/// the last sweep (`since`, none at the first) are judged again by `now`,
/// as a rebuild at `now` would judge them; returns the state changes (for
/// the caller to store in the same transaction).
pub fn sweep(
    conn: &Connection,
    cfg: &StateConfig,
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
) -> duckdb::Result<Vec<Event>> {
    let h = cfg.missed_expiry_hours;
    let now_v = ts(now.timestamp_micros());
    let mut out = Vec::new();
    {
        let mut q = conn.prepare(&format!(
            "SELECT caller, queue, epoch_us(opened_at), epoch_us(last_missed_at + INTERVAL {h} HOUR)
             FROM missed_calls WHERE status = 'open' AND last_missed_at + INTERVAL {h} HOUR < ?"
        ))?;
        let mut rows = q.query(params![now_v])?;
        while let Some(r) = rows.next()? {
            let (caller, queue, opened, at): (String, Option<String>, i64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            out.push(derived::missed_closed(
                &caller,
                queue.as_deref(),
                opened,
                "expired",
                at,
                None,
            ));
        }
    }
    // Breaches move with the clock, not only with new lines; so the
    // queues where the clock may change one are judged again by `now`.
    let step = cfg.interval_minutes.max(1) as i64 * 60_000_000;
    let window = cfg.breach.window_minutes as i64 * 60_000_000;
    let now_us = now.timestamp_micros();
    let mut queues: BTreeSet<(String, i64)> = BTreeSet::new();
    {
        // Callers waiting now (max wait, waiting callers), from the
        // interval the first of them entered in.
        let mut q = conn.prepare(
            "SELECT queue, epoch_us(min(entered_at)) FROM calls
             WHERE ended_at IS NULL AND outcome = 'open' AND answered_at IS NULL
               AND queue IS NOT NULL AND entered_at >= ?
             GROUP BY queue",
        )?;
        let mut rows = q.query(params![ts(now_us - STALE_WAIT_US)])?;
        while let Some(r) = rows.next()? {
            let entered: i64 = r.get(1)?;
            queues.insert((r.get(0)?, entered.div_euclid(step) * step));
        }
        // Breaches going on (ended by an emptied window, a waiting caller
        // become stale).
        let mut q = conn.prepare(
            "SELECT DISTINCT queue FROM sla_breaches WHERE ended_at IS NULL AND queue IS NOT NULL",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            queues.insert((r.get(0)?, now_us.div_euclid(step) * step));
        }
        // Service levels judged at interval boundaries the clock reached
        // since the last sweep (all of them at the first): from each
        // queue's latest interval, whose window had not passed then.
        let since = since.map(|t| t.timestamp_micros());
        let mut q = conn.prepare(
            "SELECT queue, epoch_us(max(interval_start)) FROM sla_intervals
             WHERE interval_start > ? GROUP BY queue",
        )?;
        let after = since.map_or(0, |t| t - step - window);
        let mut rows = q.query(params![ts(after)])?;
        while let Some(r) = rows.next()? {
            let latest: i64 = r.get(1)?;
            queues.insert((r.get(0)?, latest));
        }
    }
    if !queues.is_empty() {
        conn.execute_batch(TEMP)?;
        refresh_sla(conn, &queues, cfg, now_us, &mut out)?;
    }
    conn.execute(
        &format!(
            "UPDATE missed_calls SET status = 'expired',
                 resolved_at = last_missed_at + INTERVAL {h} HOUR
             WHERE status = 'open' AND last_missed_at + INTERVAL {h} HOUR < ?"
        ),
        params![now_v],
    )?;
    Ok(out)
}
