//! The directory's operations, the same whether `calltrail numbers` runs
//! them on the store file or the daemon runs them for its admin API
//! (`serve/numbers.rs`): checked, applied in one statement or one
//! transaction, described in one line.

use super::csv_file;
use super::fields::{self, Checker, FieldError};
use crate::cli::EntryArgs;
use crate::query::ResultSet;
use crate::store::directory::{self, Fields};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use duckdb::Connection;
use serde::{Deserialize, Serialize};

/// One operation on the directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    Add {
        number: String,
        #[serde(flatten)]
        fields: EntryArgs,
    },
    Set {
        number: String,
        #[serde(flatten)]
        fields: EntryArgs,
    },
    Remove {
        number: String,
    },
    /// A whole CSV file (`name` is how errors cite it: `FILE:LINE`).
    Import {
        name: String,
        csv: String,
    },
    List,
    Export,
}

impl Op {
    /// Whether the operation changes the directory.
    pub fn writes(&self) -> bool {
        !matches!(self, Op::List | Op::Export)
    }
}

/// What an operation answers.
#[derive(Debug)]
pub enum Reply {
    /// One line saying what changed.
    Done(String),
    /// `list`: every entry, validity judged now.
    List(ResultSet),
    /// `export`: CSV text.
    Csv(String),
}

/// Why an operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{number:?} ({key}) is already in the directory: change it with `{hint} …`")]
    Exists {
        number: String,
        key: String,
        hint: String,
    },
    #[error("{number:?} ({key}) is not in the directory{hint}")]
    Missing {
        number: String,
        key: String,
        hint: String,
    },
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Csv(#[from] csv_file::CsvError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("writing the CSV: {0}")]
    Write(String),
}

/// How an error's hint names the command to type (`add` / `set`).
pub type Hint<'a> = &'a dyn Fn(&str, &str) -> String;

/// Runs `op` on `conn` as `by`, at `now`.
pub fn execute(
    conn: &Connection,
    checker: &mut Checker,
    op: &Op,
    by: &str,
    now: DateTime<Utc>,
    hint: Hint<'_>,
) -> Result<Reply, OpError> {
    Ok(match op {
        Op::Add { number, fields } => {
            let key = checker.key(number)?;
            let mut f = Fields {
                number_raw: fields::text(number.trim()).unwrap_or_default(),
                ..Fields::default()
            };
            checker.apply(&mut f, fields)?;
            if !directory::insert(conn, &key, &f, by, now)? {
                return Err(OpError::Exists {
                    number: number.clone(),
                    key,
                    hint: hint("set", number),
                });
            }
            Reply::Done(format!("added {key}"))
        }
        Op::Set { number, fields } => {
            let key = checker.key(number)?;
            let Some(e) = directory::get(conn, &key)? else {
                return Err(OpError::Missing {
                    number: number.clone(),
                    key,
                    hint: format!(": add it with `{} …`", hint("add", number)),
                });
            };
            let mut f = e.fields;
            checker.apply(&mut f, fields)?;
            directory::update(conn, &key, &f, by, now)?;
            Reply::Done(format!("changed {key}"))
        }
        Op::Remove { number } => {
            let key = checker.key(number)?;
            if !directory::remove(conn, &key)? {
                return Err(OpError::Missing {
                    number: number.clone(),
                    key,
                    hint: String::new(),
                });
            }
            Reply::Done(format!("removed {key}"))
        }
        Op::Import { name, csv } => {
            let rows = csv_file::read(name, csv.as_bytes(), checker)?;
            let rows: Vec<(String, Fields)> =
                rows.into_iter().map(|r| (r.number, r.fields)).collect();
            let s = directory::upsert_all(conn, &rows, by, now)?;
            tracing::info!(file = %name, added = s.added, updated = s.updated, by, "known numbers imported");
            Reply::Done(format!(
                "imported {name}: {} added, {} updated",
                s.added, s.updated
            ))
        }
        Op::List => Reply::List(super::result_set(&directory::list(conn)?, now)),
        Op::Export => {
            let mut out = Vec::new();
            csv_file::write(&directory::list(conn)?, &mut out)
                .map_err(|e| OpError::Write(e.to_string()))?;
            Reply::Csv(String::from_utf8_lossy(&out).into_owned())
        }
    })
}
