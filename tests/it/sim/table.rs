//! Expected tables as rows of canonical text values, and how those values
//! are written: times as `YYYY-MM-DD HH:MM:SS` UTC, numbers as integers or
//! with 4 decimals, `NULL`. An expected value may list accepted values
//! (`a || b`), may carry a note (`a ## why`) and may be marked `~` (soft: where docs/schema.md leaves the
//! answer open; a mismatch is reported, not failed).

use super::truth::Ts;
use std::collections::BTreeMap;

pub type Row = BTreeMap<&'static str, String>;

pub const NULL: &str = "NULL";
/// Separates accepted alternatives in an expected value.
pub const OR: &str = " || ";
/// Starts a note after an expected value (shown in reports, not compared).
pub const NOTE: &str = " ## ";

/// One table the model predicts.
#[derive(Debug, Clone)]
pub struct Expected {
    pub name: &'static str,
    /// Columns that identify a row.
    pub key: &'static [&'static str],
    /// A query returning the compared columns under these names.
    pub sql: &'static str,
    pub rows: Vec<Row>,
    /// The whole table is a reading of an open contract: missing and
    /// unexpected rows are reported, not failed.
    pub soft: bool,
}

pub fn ts(t: Option<Ts>) -> String {
    match t {
        Some(t) => chrono::DateTime::from_timestamp(t, 0)
            .expect("valid time")
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => NULL.into(),
    }
}

pub fn int(v: Option<i64>) -> String {
    v.map_or(NULL.into(), |v| v.to_string())
}

pub fn text(v: Option<&str>) -> String {
    v.map_or(NULL.into(), str::to_string)
}

pub fn float(v: Option<f64>) -> String {
    v.map_or(NULL.into(), |v| format!("{v:.4}"))
}

pub fn soft(v: String) -> String {
    format!("~{v}")
}

/// Columns whose values are times (epoch seconds in the query output).
pub fn is_time_col(col: &str) -> bool {
    col.ends_with("_at") || col.ends_with("_since") || col == "interval_start"
}

/// Columns compared with 4 decimals.
pub fn is_float_col(col: &str) -> bool {
    matches!(
        col,
        "service_level" | "asa_s" | "aht_s" | "value" | "threshold"
    )
}

/// A query output cell in the canonical form.
pub fn canonical(col: &str, v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => NULL.into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) if is_time_col(col) => ts(n.as_f64().map(|f| f as i64)),
        J::Number(n) if is_float_col(col) => float(n.as_f64()),
        J::Number(n) => n.as_i64().map_or_else(|| n.to_string(), |i| i.to_string()),
        J::String(s) if col == "queues" => list(s),
        J::String(s) => s.clone(),
        J::Array(items) => {
            let mut v: Vec<String> = items.iter().map(|i| canonical("", i)).collect();
            v.sort();
            v.join(",")
        }
        other => other.to_string(),
    }
}

/// `[b, a]`, `["b","a"]` or `b,a` → `a,b`.
fn list(s: &str) -> String {
    let mut v: Vec<String> = s
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|p| p.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    v.sort();
    v.join(",")
}

/// Does `got` satisfy the expected value (ignoring the soft mark)?
pub fn accepts(expected: &str, got: &str) -> bool {
    let value = expected.split(NOTE).next().unwrap_or_default();
    value
        .trim_start_matches('~')
        .split(OR)
        .any(|alt| alt == got)
}
