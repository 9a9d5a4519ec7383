//! `calltrail numbers`: the directory of known numbers (`known_numbers`,
//! docs/schema.md) edited on the store file: add, set, remove, list, CSV
//! import (all rows checked, then one transaction) and export.
//!
//! Numbers are keyed the way events' callers are (`[numbers]`); a
//! `YYYY-MM-DD` is a day in the zone every configured source agrees on,
//! else in UTC. While a running `calltrail run` holds the store, the
//! command goes through the daemon's admin API ([`remote`]); either way the
//! same [`ops::execute`] does it.

mod csv_file;
mod fields;
mod ops;
mod remote;

pub use csv_file::{CsvError, Row, HEADER};
pub use fields::text as text_field;
pub use fields::{Bound, Checker, FieldError, CLASSES};
pub use ops::{execute, Op, OpError, Reply};

use crate::cli::{invocation, shell_word, NumbersCommand};
use crate::clock::Clock;
use crate::config::Config;
use crate::query::{self, ResultSet};
use crate::store::directory::{self, Entry};
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

/// Runs one `numbers` command; its output goes to `out`. On the store
/// file when it can be opened; while a daemon (`calltrail run`) holds it,
/// through the daemon's admin API with the admin token.
pub fn run(
    cfg: &Config,
    cmd: &NumbersCommand,
    clock: Clock,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let op = op_of(cmd)?;
    // A list judges validity by the state's clock; changes are stamped
    // with the real time.
    let now = if op.writes() { Utc::now() } else { clock.now() };
    let reply = match Store::open(&cfg.store.path) {
        Ok(store) => {
            let mut checker = checker(cfg)?;
            let hint = hinter(cfg);
            directory::with_conn(&store, |conn| {
                execute(conn, &mut checker, &op, &actor(), now, &hint)
            })?
        }
        Err(e) if e.to_string().contains("lock") => {
            tracing::debug!(store = %cfg.store.path.display(), "the store is held (a running `calltrail run`): through its admin API");
            remote::send(cfg, &op)?
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("opening the store {}", cfg.store.path.display()))
        }
    };
    print(reply, cmd, out)
}

/// The operation a command stands for (an import reads its file here).
fn op_of(cmd: &NumbersCommand) -> anyhow::Result<Op> {
    Ok(match cmd {
        NumbersCommand::Add { number, fields } => Op::Add {
            number: number.clone(),
            fields: fields.clone(),
        },
        NumbersCommand::Set { number, fields } => Op::Set {
            number: number.clone(),
            fields: fields.clone(),
        },
        NumbersCommand::Remove { number } => Op::Remove {
            number: number.clone(),
        },
        NumbersCommand::List { .. } => Op::List,
        NumbersCommand::Export => Op::Export,
        NumbersCommand::Import { path } => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Op::Import {
                name: path.display().to_string(),
                csv: String::from_utf8(bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: not UTF-8 text (byte {})",
                        path.display(),
                        e.utf8_error().valid_up_to()
                    )
                })?,
            }
        }
    })
}

/// The hints errors give: the command to type next.
pub fn hinter(cfg: &Config) -> impl Fn(&str, &str) -> String + '_ {
    move |verb: &str, number: &str| {
        format!(
            "{} --config {} numbers {verb} {}",
            invocation(),
            shell_word(&cfg.file.to_string_lossy()),
            shell_word(number)
        )
    }
}

fn print(reply: Reply, cmd: &NumbersCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match reply {
        Reply::Done(line) => writeln!(out, "{line}")?,
        Reply::List(rs) => {
            let format = match cmd {
                NumbersCommand::List { format } => *format,
                _ => crate::query::Format::Table,
            };
            query::print(&rs, format, out)?;
        }
        Reply::Csv(text) => out.write_all(text.as_bytes())?,
    }
    Ok(())
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
