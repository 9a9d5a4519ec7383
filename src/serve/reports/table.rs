//! A report as data: columns of a known kind, rows of JSON values, a
//! summary, and how one SQL statement's rows are read into a table (every
//! value converted by its column's kind; times into the display zone).

use crate::store::StoreError;
use chrono::DateTime;
use duckdb::{Connection, ToSql};
use serde_json::Value;

/// What a column holds: decides how it is read, shown and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text calltrail writes (statuses, dates).
    Text,
    /// Text from the PBX or the directory (names, numbers, reasons):
    /// attacker-controlled; CSV cells guarded against formulas.
    Pbx,
    Int,
    /// Whole seconds.
    Secs,
    /// An average of seconds.
    AvgSecs,
    /// 0..1, shown as a percentage.
    Ratio,
    /// An instant (read as epoch µs; written in the display zone).
    Time,
    Bool,
    /// A nested list (an agent's pause reasons).
    List,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub key: &'static str,
    pub kind: Kind,
}

pub const fn col(key: &'static str, kind: Kind) -> Col {
    Col { key, kind }
}

/// One table of a report.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its key in the JSON (`rows` for the main table).
    pub name: &'static str,
    pub cols: Vec<Col>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(name: &'static str, cols: &[Col]) -> Table {
        Table {
            name,
            cols: cols.to_vec(),
            rows: Vec::new(),
        }
    }

    /// The value of column `key` in row `r`.
    pub fn get<'a>(&self, r: &'a [Value], key: &str) -> &'a Value {
        self.cols
            .iter()
            .position(|c| c.key == key)
            .and_then(|i| r.get(i))
            .unwrap_or(&Value::Null)
    }

    /// The rows as JSON objects.
    pub fn json_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                Value::Object(
                    self.cols
                        .iter()
                        .zip(r)
                        .map(|(c, v)| (c.key.to_string(), v.clone()))
                        .collect(),
                )
            })
            .collect()
    }
}

/// A whole report.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: &'static str,
    /// Figures over the whole range, in order.
    pub summary: Vec<(&'static str, Kind, Value)>,
    /// The main table first (the CSV export), then others.
    pub tables: Vec<Table>,
    /// Extra fields of the JSON answer (`formula`, `interval`).
    pub extra: Vec<(&'static str, Value)>,
}

fn db(what: &'static str) -> impl Fn(duckdb::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// Runs `sql` (its columns in the order of `cols`) and reads the rows;
/// times are written in `tz`.
pub fn read(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    cols: &[Col],
    tz: chrono_tz::Tz,
    name: &'static str,
) -> Result<Table, StoreError> {
    let mut st = conn.prepare(sql).map_err(db("preparing a report"))?;
    let mut rows = st.query(params).map_err(db("running a report"))?;
    let mut t = Table::new(name, cols);
    while let Some(r) = rows.next().map_err(db("reading a report's row"))? {
        let mut row = Vec::with_capacity(cols.len());
        for (i, c) in cols.iter().enumerate() {
            let v = match c.kind {
                Kind::Text | Kind::Pbx => r
                    .get::<_, Option<String>>(i)
                    .map_err(db("a report's text"))?
                    .map_or(Value::Null, Value::String),
                Kind::Int | Kind::Secs => r
                    .get::<_, Option<i64>>(i)
                    .map_err(db("a report's number"))?
                    .map_or(Value::Null, Value::from),
                Kind::AvgSecs | Kind::Ratio => r
                    .get::<_, Option<f64>>(i)
                    .map_err(db("a report's figure"))?
                    .map_or(Value::Null, Value::from),
                Kind::Bool => r
                    .get::<_, Option<bool>>(i)
                    .map_err(db("a report's flag"))?
                    .map_or(Value::Null, Value::Bool),
                Kind::Time => time(
                    r.get::<_, Option<i64>>(i).map_err(db("a report's time"))?,
                    tz,
                ),
                Kind::List => match r
                    .get::<_, duckdb::types::Value>(i)
                    .map_err(db("a report's list"))?
                {
                    duckdb::types::Value::Null => Value::Array(Vec::new()),
                    v => json_of(v),
                },
            };
            row.push(v);
        }
        t.rows.push(row);
    }
    Ok(t)
}

/// A DuckDB list of structs (of text and numbers) as JSON.
fn json_of(v: duckdb::types::Value) -> Value {
    use duckdb::types::Value as D;
    match v {
        D::Null => Value::Null,
        D::Boolean(b) => Value::Bool(b),
        D::TinyInt(n) => n.into(),
        D::SmallInt(n) => n.into(),
        D::Int(n) => n.into(),
        D::BigInt(n) => n.into(),
        D::UTinyInt(n) => n.into(),
        D::USmallInt(n) => n.into(),
        D::UInt(n) => n.into(),
        D::UBigInt(n) => n.into(),
        D::Float(f) => f64::from(f).into(),
        D::Double(f) => f.into(),
        D::Text(s) => Value::String(s),
        D::List(items) | D::Array(items) => Value::Array(items.into_iter().map(json_of).collect()),
        D::Struct(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), json_of(v.clone())))
                .collect(),
        ),
        other => Value::String(format!("{other:?}")),
    }
}

/// Epoch µs as RFC 3339 in `tz`.
pub fn time(us: Option<i64>, tz: chrono_tz::Tz) -> Value {
    us.and_then(DateTime::from_timestamp_micros)
        .map(|t| {
            Value::String(
                t.with_timezone(&tz)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            )
        })
        .unwrap_or(Value::Null)
}

/// `a / b`, NULL when `b` is 0.
pub fn ratio(a: i64, b: i64) -> Value {
    if b > 0 {
        Value::from(a as f64 / b as f64)
    } else {
        Value::Null
    }
}
