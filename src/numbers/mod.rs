//! `calltrail numbers`: the directory of known numbers (`known_numbers`,
//! docs/schema.md) edited on the store file: add, set, remove, list, CSV
//! import (all rows checked, then one transaction) and export.
//!
//! Numbers are keyed the way events' callers are (`[numbers]`); a
//! `YYYY-MM-DD` is a day in the zone every configured source agrees on,
//! else in UTC. While another process (a running `calltrail run`) holds the
//! store, the command refuses with a message saying so.

mod csv_file;
mod fields;

pub use csv_file::{CsvError, Row, HEADER};
pub use fields::{Bound, Checker, FieldError, CLASSES};

use crate::cli::{invocation, shell_word, NumbersCommand};
use crate::clock::Clock;
use crate::config::Config;
use crate::query::{self, ResultSet};
use crate::store::directory::{self, Entry, Fields};
use crate::store::Store;
use anyhow::Context;
use calltrail_parsers::{NumberConfig, NumberNormalizer};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use duckdb::types::{TimeUnit, Value};
use std::io::Write;

/// Who makes a change from the command line: `cli:<USER>`, else `cli`.
pub fn actor() -> String {
    match std::env::var("USER") {
        Ok(u) if !u.trim().is_empty() => {
            format!("cli:{}", fields::text(u.trim()).unwrap_or_default())
        }
        _ => "cli".to_string(),
    }
}

/// The zone a `YYYY-MM-DD` is taken in: the one every configured source
/// agrees on, else UTC.
pub fn zone(cfg: &Config) -> Tz {
    crate::import::agreed_timezone(cfg, None)
        .and_then(|z| z.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// A [`Checker`] for `cfg`'s `[numbers]` and [`zone`].
pub fn checker(cfg: &Config) -> anyhow::Result<Checker> {
    let n = NumberNormalizer::new(NumberConfig {
        default_region: cfg.numbers.default_region.clone(),
        max_internal_len: cfg.numbers.max_internal_len,
        match_last_digits: cfg.numbers.match_last_digits,
    })
    .context("[numbers] default_region")?;
    Ok(Checker::new(n, zone(cfg)))
}

/// Opens (creating if needed) the store; a store held by another process
/// is refused with a message saying so.
fn open(cfg: &Config) -> anyhow::Result<Store> {
    let path = &cfg.store.path;
    match Store::open(path) {
        Ok(s) => Ok(s),
        Err(e) if e.to_string().contains("lock") => anyhow::bail!(
            "the store {} is held by another process (a running `calltrail run`?): stop it to change the directory of known numbers (DuckDB: {e})",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("opening the store {}", path.display())),
    }
}

/// Runs one `numbers` command; its output goes to `out`.
pub fn run(
    cfg: &Config,
    cmd: &NumbersCommand,
    clock: Clock,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut checker = checker(cfg)?;
    let store = open(cfg)?;
    let by = actor();
    let hint = |verb: &str, number: &str| {
        format!(
            "{} --config {} numbers {verb} {}",
            invocation(),
            shell_word(&cfg.file.to_string_lossy()),
            shell_word(number)
        )
    };
    directory::with_conn(&store, |conn| -> anyhow::Result<()> {
        match cmd {
            NumbersCommand::Add { number, fields } => {
                let key = checker.key(number)?;
                let mut f = Fields {
                    number_raw: fields::text(number.trim()).unwrap_or_default(),
                    ..Fields::default()
                };
                checker.apply(&mut f, fields)?;
                if !directory::insert(conn, &key, &f, &by, Utc::now())? {
                    anyhow::bail!(
                        "{number:?} ({key}) is already in the directory: change it with `{} …`",
                        hint("set", number)
                    );
                }
                writeln!(out, "added {key}")?;
            }
            NumbersCommand::Set { number, fields } => {
                let key = checker.key(number)?;
                let Some(e) = directory::get(conn, &key)? else {
                    anyhow::bail!(
                        "{number:?} ({key}) is not in the directory: add it with `{} …`",
                        hint("add", number)
                    );
                };
                let mut f = e.fields;
                checker.apply(&mut f, fields)?;
                directory::update(conn, &key, &f, &by, Utc::now())?;
                writeln!(out, "changed {key}")?;
            }
            NumbersCommand::Remove { number } => {
                let key = checker.key(number)?;
                if !directory::remove(conn, &key)? {
                    anyhow::bail!("{number:?} ({key}) is not in the directory");
                }
                writeln!(out, "removed {key}")?;
            }
            NumbersCommand::List { format } => {
                let rs = result_set(&directory::list(conn)?, clock.now());
                query::print(&rs, *format, out)?;
            }
            NumbersCommand::Import { path } => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let rows = csv_file::read(
                    &path.display().to_string(),
                    std::io::BufReader::new(file),
                    &mut checker,
                )?;
                let rows: Vec<(String, Fields)> =
                    rows.into_iter().map(|r| (r.number, r.fields)).collect();
                let s = directory::upsert_all(conn, &rows, &by, Utc::now())?;
                tracing::info!(file = %path.display(), added = s.added, updated = s.updated, "known numbers imported");
                writeln!(
                    out,
                    "imported {}: {} added, {} updated",
                    path.display(),
                    s.added,
                    s.updated
                )?;
            }
            NumbersCommand::Export => {
                csv_file::write(&directory::list(conn)?, &mut *out).context("writing the CSV")?;
            }
        }
        Ok(())
    })
}

/// The columns of `numbers list`: every column of the table, and
/// `valid_now` after the validity.
pub const LIST_COLUMNS: [&str; 16] = [
    "number",
    "number_raw",
    "name",
    "company",
    "class",
    "agent",
    "valid_from",
    "valid_until",
    "valid_now",
    "note",
    "hits",
    "last_hit_at",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
];

fn time(t: Option<DateTime<Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        query::to_json(Value::Timestamp(
            TimeUnit::Microsecond,
            t.timestamp_micros(),
        ))
    })
}

fn string(s: &Option<String>) -> serde_json::Value {
    s.clone()
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

/// `entries` as `numbers list` shows them, validity judged at `now`.
pub fn result_set(entries: &[Entry], now: DateTime<Utc>) -> ResultSet {
    let rows = entries
        .iter()
        .map(|e| {
            let f = &e.fields;
            vec![
                e.number.clone().into(),
                f.number_raw.clone().into(),
                string(&f.name),
                string(&f.company),
                string(&f.class),
                string(&f.agent),
                time(f.valid_from),
                time(f.valid_until),
                f.valid_at(now).into(),
                string(&f.note),
                e.hits.into(),
                time(e.last_hit_at),
                time(Some(e.created_at)),
                e.created_by.clone().into(),
                time(Some(e.updated_at)),
                e.updated_by.clone().into(),
            ]
        })
        .collect();
    ResultSet {
        columns: LIST_COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}
