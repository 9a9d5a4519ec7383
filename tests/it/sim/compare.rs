//! Compares an expected table with `calltrail query --format json` rows and
//! keeps a short, readable list of differences: failures (the contract is
//! clear) and soft differences (where docs/schema.md is open to reading).

use super::table::{accepts, canonical, Expected, Row};
use std::collections::BTreeMap;

/// The outcome of comparing one table.
#[derive(Debug, Default)]
pub struct TableDiff {
    pub name: &'static str,
    pub expected_rows: usize,
    pub got_rows: usize,
    pub failures: Vec<String>,
    pub soft: Vec<String>,
    pub fail_by_col: BTreeMap<String, usize>,
    pub soft_by_col: BTreeMap<String, usize>,
}

fn key_of(keys: &[&str], row: &BTreeMap<String, String>) -> String {
    keys.iter()
        .map(|k| row.get(*k).map_or("?", String::as_str))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn canonical_row(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), canonical(k, v)))
                .collect()
        })
        .unwrap_or_default()
}

fn expected_key(keys: &[&str], row: &Row) -> String {
    keys.iter()
        .map(|k| row.get(k).map_or("?", String::as_str))
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn compare(exp: &Expected, got: &[serde_json::Value]) -> TableDiff {
    let mut d = TableDiff {
        name: exp.name,
        expected_rows: exp.rows.len(),
        got_rows: got.len(),
        ..TableDiff::default()
    };
    let mut by_key: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for g in got {
        let row = canonical_row(g);
        by_key.insert(key_of(exp.key, &row), row);
    }
    for e in &exp.rows {
        let key = expected_key(exp.key, e);
        let Some(g) = by_key.remove(&key) else {
            let line = format!("{} [{key}]: row missing; expected {e:?}", exp.name);
            d.add(exp.soft, "(missing row)", line);
            continue;
        };
        for (col, want) in e {
            let have = g.get(*col).map_or("<no such column>", String::as_str);
            if accepts(want, have) {
                continue;
            }
            let line = format!("{} [{key}] {col}: expected {want}, got {have}", exp.name);
            d.add(want.starts_with('~'), col, line);
        }
    }
    for (key, row) in by_key {
        let line = format!("{} [{key}]: unexpected row {row:?}", exp.name);
        d.add(exp.soft, "(unexpected row)", line);
    }
    d
}

impl TableDiff {
    fn add(&mut self, soft: bool, col: &str, line: String) {
        let (lines, counts) = if soft {
            (&mut self.soft, &mut self.soft_by_col)
        } else {
            (&mut self.failures, &mut self.fail_by_col)
        };
        lines.push(line);
        *counts.entry(col.to_string()).or_default() += 1;
    }

    /// A few lines: counts, the first failures, soft differences by column.
    pub fn summary(&self, first: usize) -> String {
        let mut s = format!(
            "  {:<14} expected {:>4} rows, got {:>4}: {} failures {:?}, {} soft {:?}\n",
            self.name,
            self.expected_rows,
            self.got_rows,
            self.failures.len(),
            self.fail_by_col,
            self.soft.len(),
            self.soft_by_col
        );
        for f in self.failures.iter().take(first) {
            s += &format!("    FAIL {f}\n");
        }
        let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &self.soft {
            let col = f
                .split("] ")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .unwrap_or("");
            let n = shown.entry(col).or_default();
            if *n < 2 {
                s += &format!("    soft {f}\n");
            }
            *n += 1;
        }
        s
    }
}
