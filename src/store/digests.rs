//! The `digest_items` table (docs/schema.md): the matches an email rule with
//! `digest_minutes` gathers into one message per queue and window, and the
//! choice of the window's action.
//!
//! An item is inserted in the state deriver's transaction, beside the
//! window's action (`rule:<name>:digest:<queue>:<window start>`, created
//! once, due at the window's end). The worker claims the action before it
//! reads the items, so an item that arrives later goes to the next window:
//! every match is mailed in exactly one digest.

use super::{db, ts, StoreError};
use chrono::{DateTime, Utc};
use duckdb::{params, Connection, OptionalExt};

pub const DIGESTS_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS digest_items (
    rule      VARCHAR NOT NULL,
    event_id  VARCHAR NOT NULL,
    action_id VARCHAR NOT NULL,
    event_at  TIMESTAMP NOT NULL,
    line      VARCHAR NOT NULL,
    PRIMARY KEY (rule, event_id)
);
"#;

/// Whether `event_id` is already in one of `rule`'s digests.
pub fn has_item(conn: &Connection, rule: &str, event_id: &str) -> Result<bool, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM digest_items WHERE rule = ? AND event_id = ?")
        .and_then(|mut q| q.query_row(params![rule, event_id], |r| r.get(0)))
        .map_err(db("checking a digest item"))?;
    Ok(n > 0)
}

/// The status of an action, if it exists.
pub fn action_status(conn: &Connection, action_id: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT status FROM actions WHERE action_id = ?")
        .and_then(|mut q| q.query_row(params![action_id], |r| r.get(0)).optional())
        .map_err(db("reading an action's status"))
}

/// Adds a match to the digest `action_id`.
pub fn add_item(
    conn: &Connection,
    rule: &str,
    event_id: &str,
    action_id: &str,
    at: DateTime<Utc>,
    line: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR IGNORE INTO digest_items VALUES (?, ?, ?, ?, ?)")
        .and_then(|mut q| q.execute(params![rule, event_id, action_id, ts(at), line]))
        .map_err(db("adding a digest item"))?;
    Ok(())
}

/// The lines of the digest `action_id`, oldest first.
pub fn items(conn: &Connection, action_id: &str) -> Result<Vec<String>, StoreError> {
    let mut q = conn
        .prepare_cached(
            "SELECT line FROM digest_items WHERE action_id = ? ORDER BY event_at, event_id",
        )
        .map_err(db("preparing the digest scan"))?;
    let rows = q
        .query_map(params![action_id], |r| r.get(0))
        .map_err(db("reading a digest"))?;
    rows.collect::<Result<_, _>>()
        .map_err(db("reading a digest line"))
}

impl super::Store {
    /// The lines of the digest `action_id` (read after the action is
    /// claimed: later matches go to the next window).
    pub fn digest_items(&self, action_id: &str) -> Result<Vec<String>, StoreError> {
        items(&self.lock(), action_id)
    }
}
