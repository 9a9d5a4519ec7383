//! The `callbacks` table (docs/schema.md): one row per callback attempt a
//! rule made (a call file is one attempt, Asterisk's own retries inside it;
//! AMI: the first Originate and each retry), with how it was placed (the
//! call file's name, the ActionID) and what came of it. Written by the
//! action worker.

use super::{db, ts, StoreError};
use chrono::{DateTime, Utc};
use duckdb::{params, Connection};

/// The table's columns, one row per attempt (key: action id and attempt
/// number).
const COLUMNS: &str = "
    action_id   VARCHAR NOT NULL,
    attempt     INTEGER NOT NULL,
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
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (action_id, attempt)";

/// Creates the table.
pub fn ddl() -> String {
    format!("CREATE TABLE IF NOT EXISTS callbacks ({COLUMNS});")
}

/// Whether `callbacks` has the layout before attempts had rows of their own
/// (keyed by `action_id` alone), which [`migrate_per_action`] rewrites.
pub const IS_PER_ACTION: &str = "SELECT count(*) FROM duckdb_constraints()
    WHERE table_name = 'callbacks' AND constraint_type = 'PRIMARY KEY'
      AND len(constraint_column_names) = 1";

/// Rewrites a per-action `callbacks` table: each row becomes the row of its
/// latest attempt (`attempts`, else 1).
pub fn migrate_per_action() -> String {
    format!(
        "ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS attempts INTEGER;
         ALTER TABLE callbacks RENAME TO callbacks_per_action;
         CREATE TABLE callbacks ({COLUMNS});
         INSERT INTO callbacks
             SELECT action_id, greatest(coalesce(attempts, 1), 1), caller, episode_opened_at,
                    queue, agent, method, placed_as, status, attempts, reason, created_at,
                    updated_at
             FROM callbacks_per_action;
         DROP TABLE callbacks_per_action;"
    )
}

/// One callback attempt.
#[derive(Debug, Clone)]
pub struct CallbackRow<'a> {
    pub action_id: &'a str,
    /// 1 for the first placement; AMI retries count up.
    pub attempt: u32,
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

/// Records `row` (replacing the row of the same attempt: its latest
/// state).
pub fn record(
    conn: &Connection,
    row: &CallbackRow<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO callbacks (action_id, attempt, caller, episode_opened_at, queue, agent, method,
             placed_as, status, reason, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (action_id, attempt) DO UPDATE SET placed_as = excluded.placed_as,
             status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at",
        params![
            row.action_id,
            row.attempt,
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

/// What came of attempt `attempt` of a callback: `completed` (the first
/// leg answered), `expired` (it and every earlier one failed, no retry
/// left), `failed`, `cancelled`, `unknown`…; `tries`: the tries Asterisk
/// made of a call file (from `outgoing_done/`).
pub fn finish(
    conn: &Connection,
    action_id: &str,
    attempt: u32,
    status: &str,
    tries: Option<u32>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE callbacks SET status = ?, attempts = coalesce(?, attempts),
                reason = coalesce(?, reason), updated_at = ?
         WHERE action_id = ? AND attempt = ?",
        params![status, tries, reason, ts(now), action_id, attempt],
    )
    .map_err(db("recording a callback's outcome"))?;
    Ok(())
}

/// The latest attempt recorded for a callback (0: none).
pub fn latest_attempt(conn: &Connection, action_id: &str) -> Result<u32, StoreError> {
    let n: i64 = conn
        .query_row(
            "SELECT coalesce(max(attempt), 0) FROM callbacks WHERE action_id = ?",
            params![action_id],
            |r| r.get(0),
        )
        .map_err(db("reading a callback's attempts"))?;
    Ok(n.max(0) as u32)
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
    /// `failed` (the last attempt failed) or `placing` (an attempt was
    /// being placed).
    pub status: String,
    /// The latest attempt's number.
    pub attempt: u32,
    pub updated_at: DateTime<Utc>,
}

/// The AMI callbacks whose action is done and whose latest attempt failed
/// or was being placed (`placing`): what a start resumes or settles.
pub fn ami_between_attempts(conn: &Connection) -> Result<Vec<AmiPause>, StoreError> {
    let mut q = conn
        .prepare_cached(
            "SELECT c.action_id, a.payload, c.status, c.attempt, epoch_us(c.updated_at)
             FROM callbacks c JOIN actions a USING (action_id)
             WHERE c.method = 'ami' AND a.status = 'done'
             QUALIFY row_number() OVER (PARTITION BY c.action_id ORDER BY c.attempt DESC) = 1
                 AND c.status IN ('failed', 'placing')
             ORDER BY c.updated_at",
        )
        .map_err(db("preparing the AMI retries scan"))?;
    let rows = q
        .query_map([], |r| {
            Ok(AmiPause {
                action_id: r.get(0)?,
                payload: r.get(1)?,
                status: r.get(2)?,
                attempt: r.get::<_, i32>(3)?.max(0) as u32,
                updated_at: DateTime::from_timestamp_micros(r.get(4)?).unwrap_or_default(),
            })
        })
        .map_err(db("reading the AMI retries"))?;
    rows.collect::<Result<_, _>>()
        .map_err(db("reading an AMI retry"))
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError};

    #[test]
    fn a_per_action_table_gets_one_row_per_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.duckdb");
        {
            // The layout before attempts had rows (and before `attempts`).
            let c = duckdb::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE callbacks (
                    action_id VARCHAR PRIMARY KEY, caller VARCHAR NOT NULL,
                    episode_opened_at TIMESTAMP NOT NULL, queue VARCHAR, agent VARCHAR,
                    method VARCHAR NOT NULL, placed_as VARCHAR, status VARCHAR NOT NULL,
                    reason VARCHAR, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL);
                 INSERT INTO callbacks VALUES ('a', '+79161234567', '2026-11-01 10:00:00',
                    'support', NULL, 'call_file', 'ct-a.call', 'completed', NULL,
                    '2026-11-01 10:01:00', '2026-11-01 10:02:00');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let got: (String, i32, String) = store
            .with_conn(|c| {
                Ok::<_, StoreError>(
                    c.query_row(
                        "SELECT action_id, attempt, status FROM callbacks",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap(),
                )
            })
            .unwrap();
        assert_eq!(got, ("a".to_string(), 1, "completed".to_string()));
        // A second attempt of the same callback is a row of its own.
        store
            .with_conn(|c| {
                c.execute(
                    "INSERT INTO callbacks SELECT action_id, 2, caller, episode_opened_at, queue,
                        agent, method, placed_as, 'queued', attempts, reason, created_at,
                        updated_at FROM callbacks",
                    [],
                )
                .unwrap();
                Ok::<_, StoreError>(())
            })
            .unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let n: i64 = store
            .with_conn(|c| {
                Ok::<_, StoreError>(
                    c.query_row("SELECT count(*) FROM callbacks", [], |r| r.get(0))
                        .unwrap(),
                )
            })
            .unwrap();
        assert_eq!(n, 2);
    }
}
