//! The operations of `calltrail actions`, the same whether the command runs
//! them on the store file or the daemon runs them for its admin API
//! (`serve/actions.rs`): a list's parameters checked and turned into a
//! [`Filter`], a retry or a cancel described in one line, and every
//! refusal worded once, so both paths print the same text.

use crate::query::{self, ResultSet};
use crate::store::action_admin::{self, ActionRow, AdminError, Filter, STATUSES};
use crate::store::StoreError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use duckdb::types::{TimeUnit, Value};

/// Rows `actions list` shows unless told otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The most rows one list returns.
pub const MAX_LIMIT: usize = 100_000;

/// What a list asks for, as typed (CLI flags or the API's query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Any of these statuses (none: every status).
    pub statuses: Vec<String>,
    pub kind: Option<String>,
    /// Created at or after: RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` (UTC), or
    /// an age such as `90m`, `12h`, `7d`.
    pub since: Option<String>,
    /// The action id starts with this.
    pub id: Option<String>,
    /// Only `pending` actions whose time has come.
    pub due: bool,
    /// `None`: [`DEFAULT_LIMIT`].
    pub limit: Option<usize>,
}

/// A change an operator makes to one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Retry,
    Cancel,
}

impl Change {
    /// The command's word: `retry` / `cancel`.
    pub fn verb(self) -> &'static str {
        match self {
            Change::Retry => "retry",
            Change::Cancel => "cancel",
        }
    }
}

/// Why an operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A list parameter that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// One action that could not be changed (unknown, refused, raced).
    #[error("cannot {verb} {id}: {why}")]
    Change {
        verb: &'static str,
        id: String,
        why: Box<AdminError>,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ListQuery {
    /// The query string of `GET /api/actions` for this list.
    pub fn to_query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for st in &self.statuses {
            s.append_pair("status", st);
        }
        if let Some(k) = &self.kind {
            s.append_pair("kind", k);
        }
        if let Some(t) = &self.since {
            s.append_pair("since", t);
        }
        if let Some(p) = &self.id {
            s.append_pair("id", p);
        }
        if self.due {
            s.append_pair("due", "true");
        }
        if let Some(n) = self.limit {
            s.append_pair("limit", &n.to_string());
        }
        s.finish()
    }

    /// Reads `GET /api/actions`'s query string (`status` repeated or
    /// comma-separated; `token` is the caller's, not a filter).
    pub fn from_query_string(q: &str) -> Result<ListQuery, OpError> {
        let mut l = ListQuery::default();
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            let v = v.trim().to_string();
            match k.as_ref() {
                "status" => l.statuses.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                ),
                "kind" if !v.is_empty() => l.kind = Some(v),
                "since" if !v.is_empty() => l.since = Some(v),
                "id" if !v.is_empty() => l.id = Some(v),
                "due" => {
                    l.due = match v.to_ascii_lowercase().as_str() {
                        "" | "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => {
                            return Err(OpError::Invalid(format!(
                                "due={v:?}: expected true or false"
                            )))
                        }
                    }
                }
                "limit" => {
                    l.limit = Some(v.parse().map_err(|_| {
                        OpError::Invalid(format!("limit={v:?}: expected a number of rows"))
                    })?)
                }
                "kind" | "since" | "id" | "token" => {}
                other => {
                    return Err(OpError::Invalid(format!(
                        "unknown parameter {other:?}: expected status, kind, since, id, due, limit"
                    )))
                }
            }
        }
        Ok(l)
    }

    /// The [`Filter`] this asks for, ages counted back from `now`.
    pub fn filter(&self, now: DateTime<Utc>) -> Result<Filter, OpError> {
        let mut statuses = Vec::new();
        for s in &self.statuses {
            let s = s.trim().to_ascii_lowercase();
            if !STATUSES.contains(&s.as_str()) {
                return Err(OpError::Invalid(format!(
                    "status {s:?}: expected one of {}",
                    STATUSES.join(", ")
                )));
            }
            if !statuses.contains(&s) {
                statuses.push(s);
            }
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(OpError::Invalid(format!(
                "limit {limit}: expected 1 to {MAX_LIMIT} rows"
            )));
        }
        let since = match &self.since {
            Some(t) => Some(since(t, now).ok_or_else(|| {
                OpError::Invalid(format!(
                    "since {t:?}: expected an instant (2026-11-20T09:00:00+03:00), a UTC day or time (2026-11-20, 2026-11-20 06:00), or an age (90m, 12h, 7d)"
                ))
            })?),
            None => None,
        };
        Ok(Filter {
            statuses,
            kind: self.kind.as_ref().map(|k| k.trim().to_ascii_lowercase()),
            since,
            id_prefix: self.id.clone(),
            due_at: self.due.then_some(now),
            limit,
        })
    }
}

/// `t` as an instant: RFC 3339; a UTC day or day and time; an age before
/// `now` (`30s`, `90m`, `12h`, `7d`, `2w`).
pub fn since(t: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let t = t.trim();
    if let Ok(i) = DateTime::parse_from_rfc3339(t) {
        return Some(i.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(i) = NaiveDateTime::parse_from_str(t, f) {
            return Some(i.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|i| i.and_utc());
    }
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    Some(now - chrono::Duration::seconds(n.checked_mul(secs)?))
}

/// The columns of `actions list` (JSON and CSV): every column of the table.
pub const LIST_COLUMNS: [&str; 11] = [
    "action_id",
    "kind",
    "event_id",
    "status",
    "attempts",
    "created_at",
    "next_attempt_at",
    "done_at",
    "last_error",
    "payload",
    "result",
];

fn time(t: Option<DateTime<Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        query::to_json(Value::Timestamp(
            TimeUnit::Microsecond,
            t.timestamp_micros(),
        ))
    })
}

fn text(s: &Option<String>) -> serde_json::Value {
    s.clone()
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

/// One row as [`LIST_COLUMNS`]; the payload as JSON (its text when it is
/// not JSON).
pub fn values(r: &ActionRow) -> Vec<serde_json::Value> {
    vec![
        r.action_id.clone().into(),
        r.kind.clone().into(),
        r.event_id.clone().into(),
        r.status.clone().into(),
        r.attempts.into(),
        time(Some(r.created_at)),
        time(Some(r.next_attempt_at)),
        time(r.done_at),
        text(&r.last_error),
        serde_json::from_str(&r.payload).unwrap_or_else(|_| r.payload.clone().into()),
        text(&r.result),
    ]
}

/// One row as a JSON object of [`LIST_COLUMNS`].
pub fn object(r: &ActionRow) -> serde_json::Value {
    serde_json::Value::Object(
        LIST_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .zip(values(r))
            .collect(),
    )
}

/// The rows `q` selects, newest first.
pub fn list(
    conn: &duckdb::Connection,
    q: &ListQuery,
    now: DateTime<Utc>,
) -> Result<ResultSet, OpError> {
    let rows = action_admin::list(conn, &q.filter(now)?)?;
    Ok(ResultSet {
        columns: LIST_COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows: rows.iter().map(values).collect(),
    })
}

/// Retries or cancels `id` at `now`; the line saying what changed and the
/// row as it is now.
pub fn change(
    conn: &duckdb::Connection,
    change: Change,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(String, ActionRow), OpError> {
    let done = match change {
        Change::Retry => action_admin::retry(conn, id, now),
        Change::Cancel => action_admin::cancel(conn, id, now),
    };
    let c = done.map_err(|why| match why {
        AdminError::Store(e) => OpError::Store(e),
        why => OpError::Change {
            verb: change.verb(),
            id: id.to_string(),
            why: Box::new(why),
        },
    })?;
    let line = match change {
        Change::Retry => format!(
            "retried {id} (was {}): pending, due now{}",
            c.before.status,
            if c.before.status == crate::store::actions::status::IN_DOUBT {
                "; it will be carried out again"
            } else {
                ""
            }
        ),
        Change::Cancel => format!("cancelled {id} (was {})", c.before.status),
    };
    Ok((line, c.after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn since_takes_instants_days_and_ages() {
        let now = at("2026-11-20T12:00:00Z");
        assert_eq!(
            since("2026-11-20T09:00:00+03:00", now),
            Some(at("2026-11-20T06:00:00Z"))
        );
        assert_eq!(since("2026-11-19", now), Some(at("2026-11-19T00:00:00Z")));
        assert_eq!(
            since("2026-11-19 08:30", now),
            Some(at("2026-11-19T08:30:00Z"))
        );
        assert_eq!(since("90m", now), Some(at("2026-11-20T10:30:00Z")));
        assert_eq!(since("2d", now), Some(at("2026-11-18T12:00:00Z")));
        assert_eq!(since("yesterday", now), None);
        assert_eq!(since("5y", now), None);
    }

    #[test]
    fn the_query_string_round_trips() {
        let q = ListQuery {
            statuses: vec!["failed".into(), "in_doubt".into()],
            kind: Some("sms".into()),
            since: Some("2026-11-20T09:00:00+03:00".into()),
            id: Some("rule:a b&c".into()),
            due: true,
            limit: Some(7),
        };
        let s = q.to_query_string();
        assert_eq!(ListQuery::from_query_string(&s).unwrap(), q);
        let q = ListQuery::from_query_string("status=failed,in_doubt&token=x").unwrap();
        assert_eq!(q.statuses, ["failed", "in_doubt"]);
        assert!(ListQuery::from_query_string("colour=red").is_err());
        assert!(ListQuery::from_query_string("limit=many").is_err());
    }

    #[test]
    fn filters_are_checked() {
        let now = at("2026-11-20T12:00:00Z");
        let bad = |q: ListQuery| q.filter(now).unwrap_err().to_string();
        assert!(bad(ListQuery {
            statuses: vec!["sent".into()],
            ..ListQuery::default()
        })
        .contains("expected one of pending, sending, in_doubt"));
        assert!(bad(ListQuery {
            limit: Some(0),
            ..ListQuery::default()
        })
        .contains("limit 0"));
        let f = ListQuery {
            statuses: vec!["FAILED".into(), "failed".into()],
            due: true,
            ..ListQuery::default()
        }
        .filter(now)
        .unwrap();
        assert_eq!(f.statuses, ["failed"]);
        assert_eq!(f.limit, DEFAULT_LIMIT);
        assert_eq!(f.due_at, Some(now));
    }
}
