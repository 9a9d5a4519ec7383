//! The rules of `calltrail query`, applied the same way whether the statement
//! runs in the `query` process (the store opened read-only) or in the daemon
//! (sent over its HTTP API), so that both give the same answer:
//!
//! 1. exactly one statement, counted by DuckDB's own parser ([`parse`]);
//! 2. it must start with a reading keyword: `SELECT`, `WITH`, `VALUES`,
//!    `FROM`, `TABLE`, `DESCRIBE`/`DESC`, `SHOW`, `SUMMARIZE`, or `EXPLAIN
//!    [ANALYZE]` followed by one of those;
//! 3. it runs inside `BEGIN TRANSACTION READ ONLY` … `ROLLBACK`, so a write
//!    hidden in a reading statement (`WITH d AS (DELETE … RETURNING *) …`,
//!    `nextval`) fails in DuckDB itself;
//! 4. DuckDB's file and network access is off (`enable_external_access =
//!    false`): no `read_csv('/etc/…')` as the daemon's user;
//! 5. at most `max_rows` rows are collected, and the statement is interrupted
//!    after `timeout`.

pub mod parse;

use crate::query::{to_json, ResultSet};
use duckdb::types::Value;
use duckdb::Connection;
use parse::Parsed;
use std::path::Path;
use std::time::Duration;

/// The statements `query` accepts (first keyword).
pub const READING: &[&str] = &[
    "SELECT",
    "WITH",
    "VALUES",
    "FROM",
    "TABLE",
    "DESCRIBE",
    "DESC",
    "SHOW",
    "SUMMARIZE",
    "EXPLAIN",
];

const ACCEPTED: &str = "SELECT, WITH, VALUES, FROM, TABLE, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN";

/// Bounds on one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// More rows than this is an error (the result is never truncated).
    pub max_rows: usize,
    /// The statement is interrupted after this long.
    pub timeout: Duration,
}

/// Why a statement gave no result. The message is what the user sees, from
/// `query` or from the daemon alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Not one reading statement.
    #[error("{0}")]
    Refused(String),
    /// DuckDB's own message (syntax, unknown table, a write in a read-only
    /// transaction, …).
    #[error("{0}")]
    Sql(String),
    #[error("the result has more than {0} rows (the [query] max_rows limit): add a LIMIT, aggregate, or raise max_rows")]
    TooManyRows(usize),
    #[error(
        "the statement ran longer than {0} s (the [query] timeout_s limit) and was interrupted"
    )]
    Timeout(u64),
}

impl QueryError {
    /// A short machine-readable name (the HTTP API's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            QueryError::Refused(_) => "refused",
            QueryError::Sql(_) => "sql",
            QueryError::TooManyRows(_) => "too_many_rows",
            QueryError::Timeout(_) => "timeout",
        }
    }
}

fn sql_err(e: duckdb::Error) -> QueryError {
    QueryError::Sql(e.to_string())
}

/// Skips whitespace, comments and opening parentheses, then returns the next
/// word upper-cased and the text after it.
fn next_word(mut s: &str) -> (String, &str) {
    loop {
        let t = s.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(rest) = t.strip_prefix("--") {
            s = rest.find('\n').map_or("", |i| &rest[i..]);
        } else if let Some(rest) = t.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |i| &rest[i + 2..]);
        } else {
            s = t;
            break;
        }
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (s[..end].to_ascii_uppercase(), &s[end..])
}

/// Accepts exactly one reading statement.
pub fn check(sql: &str) -> Result<(), QueryError> {
    match parse::count_statements(sql) {
        Parsed::Error(e) => return Err(QueryError::Sql(e)),
        Parsed::Statements(0) => {
            return Err(QueryError::Refused(format!(
                "no statement given: expected one of {ACCEPTED}"
            )))
        }
        Parsed::Statements(1) => {}
        Parsed::Statements(n) => {
            return Err(QueryError::Refused(format!(
                "`query` runs exactly one statement; this text holds {n} (separated by `;`)"
            )))
        }
    }
    let (mut word, mut rest) = next_word(sql);
    if word == "EXPLAIN" {
        (word, rest) = next_word(rest);
        if word == "ANALYZE" || word == "ANALYSE" {
            (word, _) = next_word(rest);
        }
        if word == "EXPLAIN" {
            word.clear();
        }
    }
    if READING.contains(&word.as_str()) {
        Ok(())
    } else {
        let what = if word.is_empty() { "this" } else { &word };
        Err(QueryError::Refused(format!(
            "`query` is read-only: {what} statements are refused (accepted: {ACCEPTED})"
        )))
    }
}

/// Opens the store file read-only, without file or network access, for
/// [`execute`].
pub fn open_local(path: &Path) -> Result<Connection, duckdb::Error> {
    let cfg = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)?
        .enable_external_access(false)?;
    Connection::open_with_flags(path, cfg)
}

/// Turns off DuckDB's file and network access for every connection of the
/// database `conn` belongs to (it cannot be turned on again while the
/// database is open). The daemon does this before it answers queries; the
/// store's own files are not affected.
pub fn lock_down(conn: &Connection) -> Result<(), duckdb::Error> {
    conn.execute_batch("SET enable_external_access = false")
}

/// Checks `sql` with [`check`] and runs it in a read-only transaction that is
/// rolled back.
pub fn execute(conn: &Connection, sql: &str, limits: Limits) -> Result<ResultSet, QueryError> {
    check(sql)?;
    conn.execute_batch("BEGIN TRANSACTION READ ONLY")
        .map_err(sql_err)?;
    let handle = conn.interrupt_handle();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let timeout = limits.timeout;
    let watchdog = std::thread::Builder::new()
        .name("query-watchdog".into())
        .spawn(move || {
            let fired = matches!(
                wait.recv_timeout(timeout),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            );
            if fired {
                handle.interrupt();
            }
            fired
        });
    let out = collect(conn, sql, limits.max_rows);
    drop(done);
    let fired = match watchdog {
        Ok(w) => w.join().unwrap_or(false),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the query watchdog; ran without a time limit");
            false
        }
    };
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::warn!(error = %e, "ending a read-only query transaction");
    }
    match out {
        Err(QueryError::Sql(_)) if fired => Err(QueryError::Timeout(timeout.as_secs())),
        // DuckDB words this differently for a read-only file ("attached in
        // read-only mode") and a read-only transaction ("transaction is
        // launched in read-only mode"): one message, whichever way it ran.
        Err(QueryError::Sql(m)) if m.contains("read-only mode") => Err(QueryError::Refused(
            "`query` is read-only: this statement tries to write to the store, and DuckDB refused it"
                .into(),
        )),
        other => other,
    }
}

fn collect(conn: &Connection, sql: &str, max_rows: usize) -> Result<ResultSet, QueryError> {
    let mut stmt = conn.prepare(sql).map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    // A column of DuckDB's NULL type (`SELECT NULL AS x`) is an Arrow null
    // array, which duckdb-rs cannot read (it panics): every value is NULL.
    let null_typed: Vec<bool> = (0..columns.len())
        .map(|i| {
            rows.as_ref()
                .is_some_and(|s| s.column_type(i) == duckdb::arrow::datatypes::DataType::Null)
        })
        .collect();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        if out.len() == max_rows {
            return Err(QueryError::TooManyRows(max_rows));
        }
        let mut vals = Vec::with_capacity(columns.len());
        for (i, null) in null_typed.iter().enumerate() {
            vals.push(if *null {
                serde_json::Value::Null
            } else {
                to_json(row.get::<_, Value>(i).map_err(sql_err)?)
            });
        }
        out.push(vals);
    }
    Ok(ResultSet { columns, rows: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_rows: 3,
        timeout: Duration::from_secs(30),
    };

    #[test]
    fn reading_statements_pass_the_check() {
        for sql in [
            "SELECT 1",
            "  select 1 ;",
            "-- note\n/* x */ (SELECT 1) UNION (SELECT 2)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1)",
            "FROM events",
            "DESCRIBE events",
            "SHOW TABLES",
            "SUMMARIZE events",
            "EXPLAIN SELECT 1",
            "explain analyze select 1",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn writes_and_several_statements_are_refused() {
        for sql in [
            "DELETE FROM events",
            "CREATE TABLE x(a int)",
            "INSERT INTO events VALUES (1)",
            "COPY events TO '/tmp/x'",
            "ATTACH 'x.db' AS x",
            "SET threads = 1",
            "PRAGMA version",
            "CALL checkpoint()",
            "EXPLAIN DELETE FROM events",
            "EXPLAIN ANALYZE DELETE FROM events",
            "SELECT 1; SELECT 2",
            "ROLLBACK; DELETE FROM events; SELECT 1",
            ";",
        ] {
            assert!(
                matches!(check(sql), Err(QueryError::Refused(_))),
                "{sql}: {:?}",
                check(sql)
            );
        }
        assert!(matches!(check("SELEC 1"), Err(QueryError::Sql(_))));
    }

    #[test]
    fn runs_read_only_with_limits() {
        let conn = Connection::open_in_memory().expect("duckdb");
        conn.execute_batch("CREATE TABLE t(a INT); INSERT INTO t VALUES (1), (2), (3), (4);")
            .expect("setup");
        lock_down(&conn).expect("lock down");
        let rs = execute(
            &conn,
            "SELECT a, NULL AS n FROM t ORDER BY a LIMIT 3",
            LIMITS,
        )
        .expect("select");
        assert_eq!(rs.columns, ["a", "n"]);
        assert_eq!(rs.rows.len(), 3);
        assert_eq!(rs.rows[0], [serde_json::json!(1), serde_json::Value::Null]);
        assert_eq!(
            execute(&conn, "SELECT a FROM t", LIMITS).err(),
            Some(QueryError::TooManyRows(3))
        );
        let hidden = execute(
            &conn,
            "WITH d AS (DELETE FROM t RETURNING a) SELECT count(*) FROM d",
            LIMITS,
        );
        assert!(
            matches!(&hidden, Err(QueryError::Refused(m)) if m.contains("tries to write")),
            "{:?}",
            hidden.err()
        );
        let file = execute(&conn, "SELECT * FROM read_text('/etc/hostname')", LIMITS);
        assert!(matches!(file, Err(QueryError::Sql(_))), "{:?}", file.err());
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 4, "the data is intact and the connection usable");
        let slow = execute(
            &conn,
            "SELECT count(*) FROM range(100000000000) a",
            Limits {
                max_rows: 10,
                timeout: Duration::from_millis(300),
            },
        );
        assert_eq!(slow.err(), Some(QueryError::Timeout(0)));
    }
}
