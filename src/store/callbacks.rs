//! The `callbacks` table (docs/schema.md): one row per callback attempt a
//! rule made, with how it was placed (the call file's name) and what came
//! of it. Written by the action worker.

use super::{db, ts, StoreError};
use chrono::{DateTime, Utc};
use duckdb::{params, Connection};

pub const CALLBACKS_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS callbacks (
    action_id   VARCHAR PRIMARY KEY,
    caller      VARCHAR NOT NULL,
    episode_opened_at TIMESTAMP NOT NULL,
    queue       VARCHAR,
    agent       VARCHAR,
    method      VARCHAR NOT NULL,
    placed_as   VARCHAR,
    status      VARCHAR NOT NULL,
    attempts    INTEGER,
    reason      VARCHAR,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS attempts INTEGER;
"#;

/// One callback attempt.
#[derive(Debug, Clone)]
pub struct CallbackRow<'a> {
    pub action_id: &'a str,
    pub caller: &'a str,
    pub episode_opened_at: DateTime<Utc>,
    pub queue: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub method: &'a str,
    /// The call file's name (or the AMI ActionID).
    pub placed_as: Option<&'a str>,
    /// `queued`, `skipped`, `failed`; AMI also `in_doubt` (docs/schema.md).
    pub status: &'a str,
    pub reason: Option<&'a str>,
}

/// Records `row` (replacing the row of the same action: its latest state).
pub fn record(
    conn: &Connection,
    row: &CallbackRow<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO callbacks (action_id, caller, episode_opened_at, queue, agent, method,
             placed_as, status, reason, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (action_id) DO UPDATE SET placed_as = excluded.placed_as,
             status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at",
        params![
            row.action_id,
            row.caller,
            ts(row.episode_opened_at),
            row.queue,
            row.agent,
            row.method,
            row.placed_as,
            row.status,
            row.reason,
            ts(now),
            ts(now)
        ],
    )
    .map_err(db("recording a callback"))?;
    Ok(())
}

/// The callbacks placed and not finished: `(action_id, file name)`.
pub fn queued(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut q = conn
        .prepare_cached(
            "SELECT action_id, placed_as FROM callbacks
             WHERE status = 'queued' AND placed_as IS NOT NULL AND method = 'call_file'
             ORDER BY created_at",
        )
        .map_err(db("preparing the queued callbacks scan"))?;
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db("reading queued callbacks"))?;
    rows.collect::<Result<_, _>>()
        .map_err(db("reading a queued callback"))
}

/// What Asterisk made of a placed callback: `completed` (the first leg
/// answered), `expired` (every attempt failed), `failed` (Asterisk refused
/// the file), `cancelled` (the file vanished without being archived).
pub fn finish(
    conn: &Connection,
    action_id: &str,
    status: &str,
    attempts: Option<u32>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE callbacks SET status = ?, attempts = ?, reason = coalesce(?, reason), updated_at = ?
         WHERE action_id = ?",
        params![status, attempts, reason, ts(now), action_id],
    )
    .map_err(db("recording a callback's outcome"))?;
    Ok(())
}

/// Whether the missed-call episode `(caller, opened_at)` is still open.
pub fn episode_open(
    conn: &Connection,
    caller: &str,
    opened_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM missed_calls WHERE caller = ? AND opened_at = ? AND status = 'open'",
            params![caller, ts(opened_at)],
            |r| r.get(0),
        )
        .map_err(db("reading a missed-call episode"))?;
    Ok(n > 0)
}

/// The AMI callbacks whose Originate may or may not have been queued.
pub fn in_doubt_ami(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut q = conn
        .prepare_cached(
            // Only AMI callbacks are claimed before they are placed (call
            // files are never twice by their name), so every in_doubt
            // callback action is an AMI one — also one a kill left
            // `sending` before its `callbacks` row was written.
            "SELECT action_id FROM actions
             WHERE kind = 'callback' AND status = 'in_doubt'
             ORDER BY created_at",
        )
        .map_err(db("preparing the in-doubt callbacks scan"))?;
    let rows = q
        .query_map([], |r| r.get(0))
        .map_err(db("reading in-doubt callbacks"))?;
    rows.collect::<Result<_, _>>()
        .map_err(db("reading an in-doubt callback"))
}

/// Whether a stored CDR row has `account` as one of its fields (`data`
/// is the JSON array of the row's fields; the
/// accountcode an AMI callback's Originate carried).
pub fn cdr_mentions(conn: &Connection, account: &str) -> Result<bool, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM events
             WHERE source_kind IN ('asterisk_cdr_csv', 'asterisk_cdr_custom')
               AND contains(data, ?)",
        )
        .and_then(|mut q| q.query_row(params![format!("\"{account}\"")], |r| r.get(0)))
        .map_err(db("looking for a callback's CDR"))?;
    Ok(n > 0)
}

/// An AMI callback between attempts (see [`ami_between_attempts`]).
#[derive(Debug, Clone)]
pub struct AmiPause {
    pub action_id: String,
    pub payload: String,
    /// `failed` (the last attempt failed) or `retrying` (an attempt was
    /// being placed).
    pub status: String,
    pub attempts: u32,
    pub updated_at: DateTime<Utc>,
}

/// The AMI callbacks whose action is done and whose last attempt failed,
/// or which were placing a retry: what a start resumes or settles.
pub fn ami_between_attempts(conn: &Connection) -> Result<Vec<AmiPause>, StoreError> {
    let mut q = conn
        .prepare_cached(
            "SELECT c.action_id, a.payload, c.status, coalesce(c.attempts, 1),
                    epoch_us(c.updated_at)
             FROM callbacks c JOIN actions a USING (action_id)
             WHERE c.method = 'ami' AND c.status IN ('failed', 'retrying')
               AND a.status = 'done'
             ORDER BY c.updated_at",
        )
        .map_err(db("preparing the AMI retries scan"))?;
    let rows = q
        .query_map([], |r| {
            Ok(AmiPause {
                action_id: r.get(0)?,
                payload: r.get(1)?,
                status: r.get(2)?,
                attempts: r.get::<_, i32>(3)?.max(0) as u32,
                updated_at: DateTime::from_timestamp_micros(r.get(4)?).unwrap_or_default(),
            })
        })
        .map_err(db("reading the AMI retries"))?;
    rows.collect::<Result<_, _>>()
        .map_err(db("reading an AMI retry"))
}
