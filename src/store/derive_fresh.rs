//! Deriving the state from scratch (`state::fresh`) for
//! [`Store::derive_all_in_steps`] when nothing is derived yet (`import`
//! into a fresh store, `rederive`): in three transactions, the derived
//! tables emptied, then the calls, then everything made of the calls with
//! the state checkpoint. A [`FRESH_SINK`] row in `sink_checkpoints` marks
//! the derived tables partial until the last commits: a derivation killed
//! in between starts over (`derive_all`) or is thrown away by the live
//! deriver, which then derives every event step by step
//! ([`Store::abandon_fresh`]).

use super::{db, events, Store, StoreError, STATE_SINK};
use crate::state::fresh::{self, FreshError};
use calltrail_parsers::Event;
use chrono::Utc;
use duckdb::{params, Connection};

/// The `sink_checkpoints` row of a derivation from scratch under way (its
/// `seq`: the last event it derives).
pub(super) const FRESH_SINK: &str = "state_fresh";

/// Every derived table (not `state_events`, whose ids a new derivation
/// reproduces and which consumers have read).
pub(super) const DERIVED_TABLES: [&str; 9] = [
    "calls",
    "call_attempts",
    "callers",
    "last_agent",
    "missed_calls",
    "sla_intervals",
    "sla_breaches",
    "agent_status",
    "agent_facts",
];

/// Empties the derived tables and forgets the state checkpoint and a
/// derivation from scratch under way, in the caller's transaction.
pub(super) fn clear_derived(conn: &Connection) -> Result<(), StoreError> {
    for t in DERIVED_TABLES {
        conn.execute(&format!("DELETE FROM {t}"), [])
            .map_err(db("clearing a derived table"))?;
    }
    conn.execute(
        "DELETE FROM sink_checkpoints WHERE sink IN (?, ?)",
        params![STATE_SINK, FRESH_SINK],
    )
    .map_err(db("rewinding the state checkpoint"))?;
    Ok(())
}

fn fresh_error(e: FreshError<StoreError>) -> StoreError {
    match e {
        FreshError::Db(e) => db("deriving the state from scratch")(e),
        FreshError::Record(e) => e,
    }
}

impl Store {
    /// Whether [`Store::derive_all_in_steps`] derives from scratch: no
    /// state derived yet (or a derivation from scratch was interrupted),
    /// no observer or rules to tell step by step (the daemon's), and a
    /// `state_events` its changes can be appended to as batches.
    pub(super) fn fresh_derivation_due(&self) -> Result<bool, StoreError> {
        if self.observer.get().is_some() || self.state_actions.get().is_some() {
            return Ok(false);
        }
        if !events::state_events_take_batches(&self.lock())? {
            return Ok(false);
        }
        let (state, fresh): (i64, i64) = self
            .lock()
            .query_row(
                "SELECT coalesce(max(seq) FILTER (WHERE sink = ?), 0),
                        count(*) FILTER (WHERE sink = ?)
                 FROM sink_checkpoints",
                params![STATE_SINK, FRESH_SINK],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db("reading the state checkpoint"))?;
        Ok(state == 0 || fresh > 0)
    }

    /// In the live deriver's transaction: when a derivation from scratch
    /// was interrupted, its partial rows are thrown away and the state
    /// rewound to the first event. Returns whether it was.
    pub(super) fn abandon_fresh(conn: &Connection) -> Result<bool, StoreError> {
        let marked: i64 = conn
            .query_row(
                "SELECT count(*) FROM sink_checkpoints WHERE sink = ?",
                params![FRESH_SINK],
                |r| r.get(0),
            )
            .map_err(db("reading the state checkpoint"))?;
        if marked == 0 {
            return Ok(false);
        }
        tracing::warn!(
            "a derivation of the state from scratch was interrupted: its rows are dropped and \
             the state derived again from the first event"
        );
        clear_derived(conn)?;
        Ok(true)
    }

    /// Derives the state of every stored event from scratch (see the
    /// module), holding up to `window` events of calls not complete yet in
    /// memory (`state::fresh::derive_calls`); calls `progress` with the
    /// events read so far. Returns the state changes recorded.
    pub(super) fn derive_fresh(
        &self,
        window: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<usize, StoreError> {
        let now = self.clock.now().timestamp_micros();
        let stored_at = Utc::now();
        let _serial = self.state_guard();
        let reader = self.db.connect()?;
        let reader = reader.lock().unwrap_or_else(|p| p.into_inner());
        let reader = reader.get();
        let mut conn = self.lock();
        let started = std::time::Instant::now();
        let upto: i64 = {
            let tx = conn.transaction().map_err(db("starting a transaction"))?;
            let upto: i64 = tx
                .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
                .map_err(db("reading the last event"))?;
            clear_derived(&tx)?;
            tx.execute(
                "INSERT OR REPLACE INTO sink_checkpoints VALUES (?, ?, ?)",
                params![FRESH_SINK, upto, super::ts(stored_at)],
            )
            .map_err(db("marking the derivation from scratch"))?;
            tx.commit().map_err(db("committing the emptied state"))?;
            upto
        };
        let calls = {
            let tx = conn.transaction().map_err(db("starting a transaction"))?;
            let n = fresh::derive_calls(reader, &tx, &self.state, now, upto, window, progress)
                .map_err(db("deriving the calls"))?;
            tx.commit().map_err(db("committing the calls"))?;
            n
        };
        let calls_done = started.elapsed();
        crate::config::budget::trim_heap();
        let mut recorded = 0usize;
        let mut recording = std::time::Duration::ZERO;
        let tx = conn.transaction().map_err(db("starting a transaction"))?;
        // The changes are new ones, appended as they come; those an earlier
        // derivation recorded already (`rederive`) are taken out at the end.
        let recorded_before: i64 = tx
            .query_row("SELECT coalesce(max(seq), 0) FROM state_events", [], |r| {
                r.get(0)
            })
            .map_err(db("reading the last state change"))?;
        let mut record = |c: &Connection, evs: Vec<Event>| -> Result<(), StoreError> {
            let t = std::time::Instant::now();
            recorded += events::append_state_events(c, &evs, stored_at)?;
            recording += t.elapsed();
            Ok(())
        };
        let parties = fresh::derive_parties(reader, &tx, &self.state, now, &mut record)
            .map_err(fresh_error)?;
        let parties_done = started.elapsed();
        fresh::derive_sla(&tx, &self.state, now, &mut record).map_err(fresh_error)?;
        let sla_done = started.elapsed();
        fresh::derive_agents(reader, &tx, upto).map_err(db("deriving the agents"))?;
        if recorded_before > 0 {
            let dropped = tx
                .execute(
                    "DELETE FROM state_events n
                     WHERE n.seq > $1 AND EXISTS (
                         SELECT 1 FROM state_events o
                         WHERE o.seq <= $1 AND o.event_id = n.event_id AND o.ts = n.ts)",
                    params![recorded_before],
                )
                .map_err(db("dropping the state changes recorded before"))?;
            recorded = recorded.saturating_sub(dropped);
        }
        tx.execute(
            "INSERT OR REPLACE INTO sink_checkpoints VALUES (?, ?, ?)",
            params![STATE_SINK, upto, super::ts(stored_at)],
        )
        .map_err(db("writing the state checkpoint"))?;
        tx.execute(
            "DELETE FROM sink_checkpoints WHERE sink = ?",
            params![FRESH_SINK],
        )
        .map_err(db("unmarking the derivation from scratch"))?;
        tx.commit().map_err(db("committing the derived state"))?;
        tracing::debug!(
            calls,
            parties,
            recorded,
            calls_ms = calls_done.as_millis() as u64,
            parties_ms = (parties_done - calls_done).as_millis() as u64,
            sla_ms = (sla_done - parties_done).as_millis() as u64,
            agents_ms = (started.elapsed() - sla_done).as_millis() as u64,
            recording_ms = recording.as_millis() as u64,
            "state derived from scratch"
        );
        Ok(recorded)
    }
}
