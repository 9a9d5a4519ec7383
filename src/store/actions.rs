//! The actions outbox's writes: new actions inserted under their
//! deterministic ids (a replay, a re-import or a rederive never adds a
//! second one), due now, at a calendar's next opening, or recorded as
//! skipped with the reason; and the hook by which rules act on what the
//! state deriver derives, inside its transaction.

use super::{db, ts, NewAction, StoreError};

/// Columns added to `actions` after 0.1: `result`, what the receiver
/// answered (an SMS gateway's message id, a call file's name, an AMI
/// ActionID); `priority`, run first among those due (a callback the caller
/// asked for).
pub const ACTIONS_DDL: &str = "ALTER TABLE actions ADD COLUMN IF NOT EXISTS result VARCHAR;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS priority INTEGER;";

/// The statuses of an action (docs/schema.md `actions`).
pub mod status {
    /// Due at `next_attempt_at`.
    pub const PENDING: &str = "pending";
    /// Being sent by a kind that must never be sent twice (SMS, AMI
    /// callbacks): claimed before the send, so a crash leaves it here and
    /// the next start reconciles it or marks it `in_doubt`.
    pub const SENDING: &str = "sending";
    /// May have been sent: waits for the receiver's evidence or an
    /// operator (`calltrail actions retry|cancel`), never resent blindly.
    pub const IN_DOUBT: &str = "in_doubt";
    pub const DONE: &str = "done";
    /// Gave up or refused for good (the dead letter): `last_error` says why.
    pub const FAILED: &str = "failed";
    pub const SKIPPED: &str = "skipped";
    /// Cancelled by an operator.
    pub const CANCELLED: &str = "cancelled";
}
use calltrail_parsers::Event;
use chrono::{DateTime, Utc};
use duckdb::{params, Connection};

/// Decides, inside the state deriver's transaction, which actions one
/// step's events cause: its input events and the state changes derived
/// from them.
pub trait StateActions: Send + Sync {
    fn actions(
        &self,
        conn: &Connection,
        input: &[Event],
        derived: &[Event],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewAction>, StoreError>;
}

/// Inserts `actions` (ignoring ids already there); returns how many were
/// new. An action with `skipped` is stored as `skipped` with that reason
/// and never runs.
pub fn insert(
    conn: &Connection,
    actions: &[NewAction],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if actions.is_empty() {
        return Ok(0);
    }
    let mut ins = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO actions (action_id, kind, event_id, created_at, status,
             attempts, next_attempt_at, done_at, last_error, payload, priority)
             VALUES (?, ?, ?, ?, ?, 0, ?, NULL, ?, ?, ?)",
        )
        .map_err(db("preparing the action insert"))?;
    let mut n = 0;
    for a in actions {
        let status = if a.skipped.is_some() {
            "skipped"
        } else {
            "pending"
        };
        n += ins
            .execute(params![
                a.action_id,
                a.kind,
                a.event_id,
                ts(now),
                status,
                ts(a.due_at.unwrap_or(now).max(now)),
                a.skipped,
                a.payload,
                a.priority
            ])
            .map_err(db("inserting an action"))?;
    }
    Ok(n)
}

impl super::Store {
    /// Claims a pending action before a send that must never happen twice
    /// (SMS, AMI callbacks): `pending` → `sending`, one attempt more,
    /// committed before the send. False when the row is no longer pending
    /// (an operator cancelled it meanwhile).
    pub fn claim_action(&self, action_id: &str) -> Result<bool, StoreError> {
        let r = self
            .lock()
            .execute(
                "UPDATE actions SET status = 'sending', attempts = attempts + 1
                 WHERE action_id = ? AND status = 'pending'",
                params![action_id],
            )
            .map(|n| n == 1)
            .map_err(db("claiming an action"));
        self.noted(super::ACTION_WORKER, r)
    }

    /// Records how a claimed send ended: `done` (with what the receiver
    /// answered), `failed`, `skipped` or `in_doubt` (with the reason).
    pub fn settle_action(
        &self,
        action_id: &str,
        status: &str,
        error: Option<&str>,
        result: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = self
            .lock()
            .execute(
                "UPDATE actions SET status = ?, done_at = ?, last_error = ?,
                    result = coalesce(?, result)
             WHERE action_id = ?",
                params![status, ts(Utc::now()), error, result, action_id],
            )
            .map(drop)
            .map_err(db("settling an action"));
        self.noted(super::ACTION_WORKER, r)
    }

    /// Puts a claimed action back to `pending` at `next`: nothing was sent
    /// (the gateway could not be reached), so sending again is safe.
    pub fn release_action(
        &self,
        action_id: &str,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let r = self
            .lock()
            .execute(
                "UPDATE actions SET status = 'pending', last_error = ?, next_attempt_at = ?
             WHERE action_id = ? AND status = 'sending'",
                params![error, ts(next), action_id],
            )
            .map(drop)
            .map_err(db("releasing an action"));
        self.noted(super::ACTION_WORKER, r)
    }

    /// The actions left `sending` by a daemon that stopped mid-send (a kill
    /// -9, a power cut): their outcome is unknown until reconciled.
    pub fn unsettled_actions(&self) -> Result<Vec<super::PendingAction>, StoreError> {
        let conn = self.lock();
        let mut q = conn
            .prepare(
                "SELECT action_id, kind, attempts, payload, coalesce(priority, 0) FROM actions
                 WHERE status = 'sending' ORDER BY created_at, action_id",
            )
            .map_err(db("preparing the unsettled actions scan"))?;
        let rows = q
            .query_map([], |r| {
                Ok(super::PendingAction {
                    action_id: r.get(0)?,
                    kind: r.get(1)?,
                    attempts: r.get::<_, i32>(2)?.max(0) as u32,
                    payload: r.get(3)?,
                    priority: r.get(4)?,
                })
            })
            .map_err(db("scanning unsettled actions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db("reading an unsettled action"))
    }
}
