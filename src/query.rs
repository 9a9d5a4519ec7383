//! `calltrail query`: one read-only SQL statement against the store (the file
//! itself, or the running daemon's HTTP API while it holds the file), printed
//! as a table, CSV or a JSON array of objects.

use crate::config::Config;
use crate::readonly;
use crate::serve::client::{self, ClientError};
use anyhow::Context;
use duckdb::types::{TimeUnit, Value};
use std::io::Write;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Column names and rows of a result, as JSON values.
#[derive(Debug)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Runs `sql` with the rules of [`crate::readonly`]: on the store file
/// itself when it can be opened, else (the file is locked by another
/// process, such as a running `calltrail run`) through the daemon's HTTP API
/// at `[http] listen`. Both ways give the same result and the same errors.
pub fn run(cfg: &Config, sql: &str) -> anyhow::Result<ResultSet> {
    let path = &cfg.store.path;
    if !path.exists() {
        anyhow::bail!(
            "no store at {}: run `calltrail run` or `calltrail import` first (store.path in the config)",
            path.display()
        );
    }
    let limits = cfg.query.limits();
    let locked = match readonly::open_local(path) {
        Ok(conn) => return Ok(readonly::execute(&conn, sql, limits)?),
        Err(e) if e.to_string().contains("lock") => e.to_string(),
        Err(e) => anyhow::bail!("cannot open the store {}: {e}", path.display()),
    };
    let held = format!(
        "the store {} is held by another process (DuckDB: {locked})",
        path.display()
    );
    if !cfg.http.enabled {
        anyhow::bail!(
            "{held}, and [http] enabled = false in {}, so there is no daemon to ask. Stop the process holding the store, or enable [http] in the daemon's config",
            cfg.file.display()
        );
    }
    let addr = cfg
        .http
        .addr()
        .with_context(|| format!("[http] listen = {:?}", cfg.http.listen))?;
    let timeout = limits.timeout + std::time::Duration::from_secs(30);
    tracing::debug!(%addr, "store locked; asking the daemon");
    match client::query(addr, path, sql, timeout) {
        Ok(rs) => Ok(rs),
        Err(ClientError::Query(msg)) => Err(anyhow::anyhow!(msg)),
        Err(e) => anyhow::bail!(
            "cannot read the store: {held}; and asking a running daemon failed: {e}.\nIf `calltrail run` holds the store, check its log and that [http] listen ({}) in {} matches its config; `calltrail run --once` and `calltrail import` answer no queries: wait for them to finish",
            cfg.http.listen,
            cfg.file.display()
        ),
    }
}

fn micros(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1_000,
    }
}

/// DuckDB value → JSON (timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC).
pub fn to_json(v: Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(b),
        Value::TinyInt(i) => J::from(i),
        Value::SmallInt(i) => J::from(i),
        Value::Int(i) => J::from(i),
        Value::BigInt(i) => J::from(i),
        Value::HugeInt(i) => J::String(i.to_string()),
        Value::UTinyInt(i) => J::from(i),
        Value::USmallInt(i) => J::from(i),
        Value::UInt(i) => J::from(i),
        Value::UBigInt(i) => J::from(i),
        Value::Float(f) => serde_json::Number::from_f64(f64::from(f)).map_or(J::Null, J::Number),
        Value::Double(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        Value::Text(s) => J::String(s),
        Value::Blob(b) => J::String(String::from_utf8_lossy(&b).into_owned()),
        Value::Timestamp(unit, v) => {
            let us = micros(unit, v);
            match chrono::DateTime::from_timestamp_micros(us) {
                Some(t) if us % 1_000_000 == 0 => {
                    J::String(t.format("%Y-%m-%d %H:%M:%S").to_string())
                }
                Some(t) => J::String(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
                None => J::from(us),
            }
        }
        Value::Date32(d) => match chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(d))))
        {
            Some(date) => J::String(date.to_string()),
            None => J::from(d),
        },
        Value::List(items) | Value::Array(items) => {
            J::Array(items.into_iter().map(to_json).collect())
        }
        other => J::String(format!("{other:?}")),
    }
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes a result in `format`.
pub fn print(rs: &ResultSet, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let arr: Vec<serde_json::Value> = rs
                .rows
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        rs.columns.iter().cloned().zip(r.iter().cloned()).collect(),
                    )
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &arr)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(&rs.columns)?;
            for r in &rs.rows {
                w.write_record(r.iter().map(cell))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut t = comfy_table::Table::new();
            t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            t.set_header(&rs.columns);
            for r in &rs.rows {
                t.add_row(r.iter().map(cell));
            }
            writeln!(out, "{t}")?;
            writeln!(
                out,
                "({} row{})",
                rs.rows.len(),
                if rs.rows.len() == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(())
}
