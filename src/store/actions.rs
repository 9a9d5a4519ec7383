//! The actions outbox's writes: new actions inserted under their
//! deterministic ids (a replay, a re-import or a rederive never adds a
//! second one), due now, at a calendar's next opening, or recorded as
//! skipped with the reason; and the hook by which rules act on what the
//! state deriver derives, inside its transaction.

use super::{db, ts, NewAction, StoreError};
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
        .prepare_cached("INSERT OR IGNORE INTO actions VALUES (?, ?, ?, ?, ?, 0, ?, NULL, ?, ?)")
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
                a.payload
            ])
            .map_err(db("inserting an action"))?;
    }
    Ok(n)
}
