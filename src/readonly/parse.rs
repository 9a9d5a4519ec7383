//! How many statements a text holds, by DuckDB's own parser.
//!
//! `duckdb::Connection::prepare` *executes* every statement but the last of a
//! multi-statement text (`ROLLBACK; DELETE FROM events; SELECT 1` would run
//! the DELETE), and the crate does not expose DuckDB's statement splitter. So
//! the text is split here with the C API's `duckdb_extract_statements` on a
//! private in-memory database that holds no data: parsing only, nothing runs.

use duckdb::ffi;
use std::ffi::{CStr, CString};
use std::sync::{Mutex, OnceLock};

/// An in-memory database and a connection to it, used only to parse.
struct Parser {
    db: ffi::duckdb_database,
    con: ffi::duckdb_connection,
}

// SAFETY: DuckDB connections may be used from any thread, one at a time; the
// parser is only reached through the mutex below.
unsafe impl Send for Parser {}

impl Drop for Parser {
    fn drop(&mut self) {
        // SAFETY: both handles were opened by `Parser::open` and are closed once.
        unsafe {
            ffi::duckdb_disconnect(&mut self.con);
            ffi::duckdb_close(&mut self.db);
        }
    }
}

impl Parser {
    fn open() -> Option<Parser> {
        let mut db: ffi::duckdb_database = std::ptr::null_mut();
        let mut con: ffi::duckdb_connection = std::ptr::null_mut();
        // SAFETY: a null path opens an in-memory database; out-pointers are valid.
        unsafe {
            if ffi::duckdb_open(std::ptr::null(), &mut db) != ffi::DuckDBSuccess {
                return None;
            }
            if ffi::duckdb_connect(db, &mut con) != ffi::DuckDBSuccess {
                ffi::duckdb_close(&mut db);
                return None;
            }
        }
        Some(Parser { db, con })
    }

    fn count(&self, sql: &CStr) -> Result<usize, String> {
        let mut extracted: ffi::duckdb_extracted_statements = std::ptr::null_mut();
        // SAFETY: `con` is open, `sql` is NUL-terminated, and `extracted` is
        // destroyed below whatever the outcome.
        unsafe {
            let n = ffi::duckdb_extract_statements(self.con, sql.as_ptr(), &mut extracted);
            let out = if n == 0 {
                let err = ffi::duckdb_extract_statements_error(extracted);
                if err.is_null() {
                    Ok(0)
                } else {
                    Err(CStr::from_ptr(err).to_string_lossy().into_owned())
                }
            } else {
                Ok(n as usize)
            };
            ffi::duckdb_destroy_extracted(&mut extracted);
            out
        }
    }
}

/// What parsing a text found.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// This many statements (0 for a text of only comments or `;`).
    Statements(usize),
    /// DuckDB's parser error, as DuckDB words it.
    Error(String),
}

/// Counts the statements in `sql` (`SELECT 1;` is one, `SELECT 1; SELECT 2`
/// two, a `;` inside a string or comment does not split).
pub fn count_statements(sql: &str) -> Parsed {
    static PARSER: OnceLock<Option<Mutex<Parser>>> = OnceLock::new();
    let Ok(text) = CString::new(sql) else {
        return Parsed::Error("the statement contains a NUL character".into());
    };
    let Some(parser) = PARSER.get_or_init(|| Parser::open().map(Mutex::new)) else {
        return Parsed::Error("cannot start DuckDB's SQL parser".into());
    };
    let parser = parser.lock().unwrap_or_else(|p| p.into_inner());
    match parser.count(&text) {
        Ok(n) => Parsed::Statements(n),
        Err(e) => Parsed::Error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_duckdb() {
        assert_eq!(count_statements("SELECT 1"), Parsed::Statements(1));
        assert_eq!(count_statements("SELECT 1;"), Parsed::Statements(1));
        assert_eq!(count_statements("SELECT 1; -- done"), Parsed::Statements(1));
        assert_eq!(count_statements("SELECT ';' AS s"), Parsed::Statements(1));
        assert_eq!(count_statements("SELECT 1 /* ; */"), Parsed::Statements(1));
        assert_eq!(
            count_statements("SELECT 1; SELECT 2"),
            Parsed::Statements(2)
        );
        assert_eq!(
            count_statements("SELECT 1; DELETE FROM events"),
            Parsed::Statements(2)
        );
        assert_eq!(count_statements("-- nothing"), Parsed::Statements(0));
        assert_eq!(count_statements(""), Parsed::Statements(0));
        assert!(
            matches!(count_statements("SELEC 1"), Parsed::Error(e) if e.contains("syntax error"))
        );
        assert!(matches!(count_statements("a\0b"), Parsed::Error(_)));
    }
}
