//! `calltrail query`: one read-only SQL statement against the store, printed
//! as a table, CSV or a JSON array of objects.

use crate::store::Store;
use anyhow::Context;
use duckdb::types::{TimeUnit, Value};
use std::io::Write;
use std::path::Path;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Column names and rows of a result, as JSON values.
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Runs `sql` read-only on the store at `path`.
pub fn run_query(path: &Path, sql: &str) -> anyhow::Result<ResultSet> {
    if !path.exists() {
        anyhow::bail!(
            "no store at {}: run `calltrail run` or `calltrail import` first (store.path in the config)",
            path.display()
        );
    }
    let conn = Store::open_read_only(path).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("lock") {
            anyhow::anyhow!(
                "{msg}\nThe store is held by a running `calltrail run` (DuckDB lets one process open a database file for writing, and no one else may open it meanwhile)."
            )
        } else {
            anyhow::anyhow!(msg)
        }
    })?;
    let mut stmt = conn.prepare(sql).context("preparing the statement")?;
    let mut rows = stmt.query([]).context("running the statement")?;
    let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    let mut out = Vec::new();
    while let Some(row) = rows.next().context("reading a row")? {
        let mut vals = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            vals.push(to_json(row.get::<_, Value>(i).context("reading a value")?));
        }
        out.push(vals);
    }
    Ok(ResultSet { columns, rows: out })
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
