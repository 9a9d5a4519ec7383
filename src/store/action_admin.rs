//! What an operator does to the actions outbox (`calltrail actions`, the
//! daemon's `/api/actions`): list rows by status, kind, age and id, and
//! move one row by hand — `retry` (back to `pending`, due now) or `cancel`.
//!
//! Every change is ONE `UPDATE … WHERE action_id = ? AND status = ?` with
//! the status the decision was made on: when the action worker (or another
//! operator) changed the row in between, nothing is written and the caller
//! is told what the row became ([`AdminError::Raced`]). The allowed moves
//! (see [`status`]):
//!
//! | from | retry | cancel |
//! |---|---|---|
//! | `pending` | refused (already waiting) | yes |
//! | `sending` | refused (being sent now) | refused (being sent now) |
//! | `in_doubt` | yes (the operator says it was NOT sent) | yes |
//! | `failed` | yes | yes |
//! | `cancelled` | yes | refused (already) |
//! | `done` | refused | refused |
//! | `skipped` | refused | refused |

use super::actions::status;
use super::{db, ts, StoreError};
use chrono::{DateTime, Utc};
use duckdb::types::Value;
use duckdb::{Connection, OptionalExt};

/// Every status, in the order of an action's life (docs/actions.md).
pub const STATUSES: [&str; 7] = [
    status::PENDING,
    status::SENDING,
    status::IN_DOUBT,
    status::DONE,
    status::FAILED,
    status::SKIPPED,
    status::CANCELLED,
];

/// Which rows [`list`] returns. Empty / `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Any of these statuses.
    pub statuses: Vec<String>,
    pub kind: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// `action_id` starts with this.
    pub id_prefix: Option<String>,
    /// Only `pending` rows due at this instant (`next_attempt_at` ≤ it):
    /// what the worker would run now.
    pub due_at: Option<DateTime<Utc>>,
    /// At most this many rows (the newest).
    pub limit: usize,
}

/// One row of `actions`, every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    pub action_id: String,
    pub kind: String,
    pub event_id: String,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// JSON text: what to send.
    pub payload: String,
    /// What the receiver answered (a gateway's message id, a call file).
    pub result: Option<String>,
}

/// A change made: the row as it was and as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub before: ActionRow,
    pub after: ActionRow,
}

/// Why a change was not made (the message names no id: the caller says
/// which action it was about).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("there is no action with this id")]
    Unknown(String),
    /// The row's status does not allow the change; `reason` says why in
    /// the operator's terms.
    #[error("it {reason}")]
    Refused {
        id: String,
        status: String,
        reason: String,
    },
    /// The row changed between the read and the write (the worker ran it,
    /// another operator moved it): nothing written.
    #[error("it changed meanwhile (it was {expected}, it is now {found}): nothing was changed; look at it again")]
    Raced {
        id: String,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "action_id, kind, event_id, epoch_us(created_at), status, attempts,
    epoch_us(next_attempt_at), epoch_us(done_at), last_error, payload, result";

fn time(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.and_then(DateTime::from_timestamp_micros)
}

fn row(r: &duckdb::Row<'_>) -> duckdb::Result<ActionRow> {
    Ok(ActionRow {
        action_id: r.get(0)?,
        kind: r.get(1)?,
        event_id: r.get(2)?,
        created_at: time(r.get(3)?).unwrap_or_default(),
        status: r.get(4)?,
        attempts: r.get(5)?,
        next_attempt_at: time(r.get(6)?).unwrap_or_default(),
        done_at: time(r.get(7)?),
        last_error: r.get(8)?,
        payload: r.get(9)?,
        result: r.get(10)?,
    })
}

/// The row of `id`, if there is one.
pub fn get(conn: &Connection, id: &str) -> Result<Option<ActionRow>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM actions WHERE action_id = ?"),
        [id],
        row,
    )
    .optional()
    .map_err(db("reading an action"))
}

/// The rows `filter` selects, newest first (`created_at`, then id).
pub fn list(conn: &Connection, filter: &Filter) -> Result<Vec<ActionRow>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM actions WHERE true");
    let mut args: Vec<Value> = Vec::new();
    if !filter.statuses.is_empty() {
        sql.push_str(" AND status IN (");
        for (i, s) in filter.statuses.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(Value::Text(s.clone()));
        }
        sql.push(')');
    }
    if let Some(k) = &filter.kind {
        sql.push_str(" AND kind = ?");
        args.push(Value::Text(k.clone()));
    }
    if let Some(t) = filter.since {
        sql.push_str(" AND created_at >= ?");
        args.push(ts(t));
    }
    if let Some(p) = &filter.id_prefix {
        sql.push_str(" AND starts_with(action_id, ?)");
        args.push(Value::Text(p.clone()));
    }
    if let Some(t) = filter.due_at {
        sql.push_str(" AND status = 'pending' AND next_attempt_at <= ?");
        args.push(ts(t));
    }
    sql.push_str(" ORDER BY created_at DESC, action_id DESC LIMIT ?");
    args.push(Value::BigInt(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    let mut stmt = conn
        .prepare(&sql)
        .map_err(db("preparing the actions scan"))?;
    let rows = stmt
        .query_map(duckdb::params_from_iter(args), row)
        .map_err(db("reading the actions"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(db("reading an action"))
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "an unrecorded time".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn because(r: &ActionRow) -> String {
    match r.last_error.as_deref() {
        Some(e) if !e.trim().is_empty() => format!(" ({})", e.trim()),
        _ => String::new(),
    }
}

/// Why `retry` cannot move `r` (to be read after "it "), or `None` when
/// it can.
fn retry_refusal(r: &ActionRow) -> Option<String> {
    Some(match r.status.as_str() {
        status::FAILED | status::IN_DOUBT | status::CANCELLED => return None,
        status::DONE => format!(
            "was already carried out (done at {}); retrying would do it twice",
            when(r.done_at)
        ),
        status::SKIPPED => format!("was skipped{} and is never run", because(r)),
        status::PENDING => format!(
            "is already pending, due at {}: the worker runs it then",
            when(Some(r.next_attempt_at))
        ),
        status::SENDING => {
            "is being sent right now: wait for its outcome (done, failed or in_doubt)".to_string()
        }
        other => format!("has the unknown status {other:?}: left alone"),
    })
}

/// Why `cancel` cannot move `r` (to be read after "it "), or `None` when
/// it can.
fn cancel_refusal(r: &ActionRow) -> Option<String> {
    Some(match r.status.as_str() {
        status::PENDING | status::IN_DOUBT | status::FAILED => return None,
        status::DONE => format!("was already carried out (done at {})", when(r.done_at)),
        status::SKIPPED => format!(
            "was skipped{} and is never run: nothing to cancel",
            because(r)
        ),
        status::CANCELLED => format!("is already cancelled (at {})", when(r.done_at)),
        status::SENDING => "is being sent right now and cannot be stopped: wait for its outcome (if it ends in_doubt, cancel it then)"
            .to_string(),
        other => format!("has the unknown status {other:?}: left alone"),
    })
}

/// Moves `id` back to `pending`, due at `now`, from `failed`, `in_doubt`
/// (the operator decided it was NOT carried out) or `cancelled`.
/// `attempts` keeps counting; `done_at` is cleared; `last_error` records
/// what it was.
pub fn retry(conn: &Connection, id: &str, now: DateTime<Utc>) -> Result<Changed, AdminError> {
    let before = get(conn, id)?.ok_or_else(|| AdminError::Unknown(id.to_string()))?;
    if let Some(reason) = retry_refusal(&before) {
        return Err(AdminError::Refused {
            id: id.to_string(),
            status: before.status.clone(),
            reason,
        });
    }
    let note = match before.last_error.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => {
            format!("retried by an operator (was {}: {e})", before.status)
        }
        _ => format!("retried by an operator (was {})", before.status),
    };
    guarded(
        conn,
        before,
        "UPDATE actions SET status = ?, next_attempt_at = ?, done_at = NULL, last_error = ?
         WHERE action_id = ? AND status = ?",
        [
            Value::Text(status::PENDING.into()),
            ts(now),
            Value::Text(note),
        ],
    )
}

/// Marks `id` `cancelled` (done_at `now`) from `pending`, `in_doubt` or
/// `failed`: it is never run (again).
pub fn cancel(conn: &Connection, id: &str, now: DateTime<Utc>) -> Result<Changed, AdminError> {
    let before = get(conn, id)?.ok_or_else(|| AdminError::Unknown(id.to_string()))?;
    if let Some(reason) = cancel_refusal(&before) {
        return Err(AdminError::Refused {
            id: id.to_string(),
            status: before.status.clone(),
            reason,
        });
    }
    guarded(
        conn,
        before,
        "UPDATE actions SET status = ?, done_at = ?, last_error = ?
         WHERE action_id = ? AND status = ?",
        [
            Value::Text(status::CANCELLED.into()),
            ts(now),
            Value::Text("cancelled by an operator".into()),
        ],
    )
}

/// Runs `update` (its `SET` values `set`, then the id and the expected
/// status) and reads the row back; a row that is no longer in `before`'s
/// status is [`AdminError::Raced`].
fn guarded<const N: usize>(
    conn: &Connection,
    before: ActionRow,
    update: &str,
    set: [Value; N],
) -> Result<Changed, AdminError> {
    let id = before.action_id.clone();
    let mut args: Vec<Value> = set.into();
    args.push(Value::Text(id.clone()));
    args.push(Value::Text(before.status.clone()));
    let raced = |found: Option<ActionRow>| AdminError::Raced {
        id: id.clone(),
        expected: before.status.clone(),
        found: found.map_or_else(|| "gone".to_string(), |r| r.status),
    };
    let n = match conn.execute(update, duckdb::params_from_iter(args)) {
        Ok(n) => n,
        // DuckDB's optimistic concurrency: another connection wrote the
        // row after this statement began.
        Err(e) if e.to_string().to_ascii_lowercase().contains("conflict") => {
            return Err(raced(get(conn, &id)?));
        }
        Err(e) => return Err(db("changing an action")(e).into()),
    };
    let after = get(conn, &id)?;
    match after {
        Some(after) if n == 1 => Ok(Changed { before, after }),
        found => Err(raced(found)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn put(conn: &Connection, id: &str, kind: &str, st: &str, created: &str) {
        conn.execute(
            "INSERT INTO actions (action_id, kind, event_id, created_at, status, attempts,
                 next_attempt_at, done_at, last_error, payload)
             VALUES (?, ?, 'ev', ?, ?, 3, ?, NULL, 'boom', '{}')",
            duckdb::params![id, kind, ts(at(created)), st, ts(at(created))],
        )
        .unwrap();
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.duckdb")).unwrap();
        store.with_conn(|c| {
            put(c, "a", "email", status::PENDING, "2026-01-01T00:00:00Z");
            put(c, "b", "sms", status::IN_DOUBT, "2026-01-02T00:00:00Z");
            put(c, "c", "webhook", status::FAILED, "2026-01-03T00:00:00Z");
            put(c, "d", "email", status::DONE, "2026-01-04T00:00:00Z");
            put(c, "e", "callback", status::SKIPPED, "2026-01-05T00:00:00Z");
            put(c, "f", "sms", status::SENDING, "2026-01-06T00:00:00Z");
            put(c, "g", "email", status::CANCELLED, "2026-01-07T00:00:00Z");
        });
        (dir, store)
    }

    fn ids(rows: &[ActionRow]) -> Vec<&str> {
        rows.iter().map(|r| r.action_id.as_str()).collect()
    }

    #[test]
    fn lists_newest_first_by_filter() {
        let (_d, store) = store();
        store.with_conn(|c| {
            let all = list(
                c,
                &Filter {
                    limit: 50,
                    ..Filter::default()
                },
            )
            .unwrap();
            assert_eq!(ids(&all), ["g", "f", "e", "d", "c", "b", "a"]);
            let f = Filter {
                statuses: vec!["failed".into(), "in_doubt".into()],
                limit: 50,
                ..Filter::default()
            };
            assert_eq!(ids(&list(c, &f).unwrap()), ["c", "b"]);
            let f = Filter {
                kind: Some("sms".into()),
                since: Some(at("2026-01-03T00:00:00Z")),
                limit: 50,
                ..Filter::default()
            };
            assert_eq!(ids(&list(c, &f).unwrap()), ["f"]);
            let f = Filter {
                due_at: Some(at("2026-06-01T00:00:00Z")),
                limit: 50,
                ..Filter::default()
            };
            assert_eq!(ids(&list(c, &f).unwrap()), ["a"]);
            let f = Filter {
                id_prefix: Some("c".into()),
                limit: 1,
                ..Filter::default()
            };
            assert_eq!(ids(&list(c, &f).unwrap()), ["c"]);
            let f = Filter {
                limit: 2,
                ..Filter::default()
            };
            assert_eq!(ids(&list(c, &f).unwrap()), ["g", "f"]);
        });
    }

    #[test]
    fn retry_and_cancel_follow_the_table() {
        let (_d, store) = store();
        let now = at("2026-02-01T00:00:00Z");
        store.with_conn(|c| {
            for id in ["a", "d", "e", "f"] {
                assert!(
                    matches!(retry(c, id, now), Err(AdminError::Refused { .. })),
                    "{id}"
                );
            }
            for id in ["d", "e", "f", "g"] {
                assert!(
                    matches!(cancel(c, id, now), Err(AdminError::Refused { .. })),
                    "{id}"
                );
            }
            assert!(matches!(retry(c, "zz", now), Err(AdminError::Unknown(_))));
            let ch = retry(c, "b", now).unwrap();
            assert_eq!(ch.after.status, "pending");
            assert_eq!(ch.after.next_attempt_at, now);
            assert_eq!(ch.after.attempts, 3);
            assert_eq!(
                ch.after.last_error.as_deref(),
                Some("retried by an operator (was in_doubt: boom)")
            );
            let ch = cancel(c, "c", now).unwrap();
            assert_eq!(ch.after.status, "cancelled");
            assert_eq!(ch.after.done_at, Some(now));
            assert_eq!(
                ch.after.last_error.as_deref(),
                Some("cancelled by an operator")
            );
            let ch = retry(c, "c", now).unwrap();
            assert_eq!(ch.before.status, "cancelled");
            assert_eq!(ch.after.status, "pending");
            assert_eq!(ch.after.done_at, None);
            let ch = cancel(c, "a", now).unwrap();
            assert_eq!(ch.after.status, "cancelled");
        });
    }

    #[test]
    fn a_row_changed_meanwhile_is_reported_not_overwritten() {
        let (_d, store) = store();
        store.with_conn(|c| {
            let before = get(c, "c").unwrap().unwrap();
            // The worker (say) finished it after the decision was made.
            c.execute(
                "UPDATE actions SET status = 'done' WHERE action_id = 'c'",
                [],
            )
            .unwrap();
            let e = guarded(
                c,
                before,
                "UPDATE actions SET status = ? WHERE action_id = ? AND status = ?",
                [Value::Text("pending".into())],
            )
            .unwrap_err();
            assert!(
                matches!(&e, AdminError::Raced { expected, found, .. } if expected == "failed" && found == "done"),
                "{e}"
            );
            assert_eq!(get(c, "c").unwrap().unwrap().status, "done");
        });
    }
}
