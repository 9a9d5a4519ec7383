//! The directory as CSV: reading an import file (header row, columns by
//! name, every row checked before anything is applied) and writing the
//! export, in the same form, so that export → import round-trips exactly.

use super::fields::{self, Bound, Checker, FieldError};
use crate::store::directory::{Entry, Fields};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;
use std::io::{Read, Write};

/// The columns of an import and of the export, in the export's order.
pub const HEADER: [&str; 8] = [
    "number",
    "name",
    "company",
    "class",
    "agent",
    "valid_from",
    "valid_until",
    "note",
];

/// Why a file is refused: always its first problem, with the line.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{file}:{line}: {reason}")]
    Line {
        file: String,
        line: u64,
        reason: String,
    },
}

/// One checked row: the key, the fields, and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub number: String,
    pub fields: Fields,
}

/// Reads and checks every row of `input` (named `file` in errors). The
/// first bad row is the error; a number given twice is one.
pub fn read(file: &str, input: impl Read, checker: &mut Checker) -> Result<Vec<Row>, CsvError> {
    let fail = |line: u64, reason: String| CsvError::Line {
        file: file.to_string(),
        line,
        reason,
    };
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(input);
    let mut records = r.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(fail(line_of(&e).unwrap_or(1), csv_reason(&e))),
        None => {
            return Err(fail(
                1,
                format!("no header row (expected {})", HEADER.join(",")),
            ))
        }
    };
    let mut columns: HashMap<&'static str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase();
        let Some(&known) = HEADER.iter().find(|h| **h == name) else {
            return Err(fail(
                1,
                format!(
                    "unknown column {name:?} (the columns are {})",
                    HEADER.join(", ")
                ),
            ));
        };
        if columns.insert(known, i).is_some() {
            return Err(fail(1, format!("column {known:?} is given twice")));
        }
    }
    if !columns.contains_key("number") {
        return Err(fail(1, "no `number` column in the header row".into()));
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in records {
        let rec = rec.map_err(|e| fail(line_of(&e).unwrap_or(0), csv_reason(&e)))?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |col: &str| columns.get(col).and_then(|&i| rec.get(i)).unwrap_or("");
        let row = check(get, checker).map_err(|e| fail(line, e.to_string()))?;
        if let Some(first) = seen.insert(row.0.clone(), line) {
            return Err(fail(
                line,
                format!("number {:?} is already on line {first}", row.0),
            ));
        }
        rows.push(Row {
            line,
            number: row.0,
            fields: row.1,
        });
    }
    Ok(rows)
}

fn line_of(e: &csv::Error) -> Option<u64> {
    e.position().map(|p| p.line())
}

/// What is wrong with a record the CSV reader refused.
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header row has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
        _ => e.to_string(),
    }
}

fn check<'a>(
    get: impl Fn(&str) -> &'a str,
    checker: &mut Checker,
) -> Result<(String, Fields), FieldError> {
    let raw = get("number");
    let number = checker.key(raw)?;
    let f = Fields {
        number_raw: fields::text(raw.trim()).unwrap_or_default(),
        name: fields::text(get("name")),
        company: fields::text(get("company")),
        class: fields::class(get("class"))?,
        agent: fields::text(get("agent")),
        valid_from: checker.date("valid_from", get("valid_from"), Bound::From)?,
        valid_until: checker.date("valid_until", get("valid_until"), Bound::Until)?,
        note: fields::text(get("note")),
    };
    fields::check_order(&f)?;
    Ok((number, f))
}

fn instant(t: Option<DateTime<Utc>>) -> String {
    t.map_or(String::new(), |t| {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    })
}

/// Writes `entries` as CSV with [`HEADER`] (times as RFC 3339 instants).
pub fn write(entries: &[Entry], out: impl Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    for e in entries {
        let f = &e.fields;
        let opt = |s: &Option<String>| s.clone().unwrap_or_default();
        w.write_record([
            f.number_raw.clone(),
            opt(&f.name),
            opt(&f.company),
            opt(&f.class),
            opt(&f.agent),
            instant(f.valid_from),
            instant(f.valid_until),
            opt(&f.note),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltrail_parsers::{NumberConfig, NumberNormalizer};

    fn checker() -> Checker {
        let n = NumberNormalizer::new(NumberConfig {
            default_region: "RU".into(),
            ..NumberConfig::default()
        })
        .unwrap();
        Checker::new(n, chrono_tz::Tz::UTC)
    }

    fn read_str(s: &str) -> Result<Vec<Row>, CsvError> {
        read("f.csv", s.as_bytes(), &mut checker())
    }

    fn reason(s: &str) -> String {
        read_str(s).unwrap_err().to_string()
    }

    #[test]
    fn columns_go_by_name() {
        let rows = read_str("note,Number,class\nhi,8 916 000-00-01,VIP\n,201,\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, "+79160000001");
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].fields.number_raw, "8 916 000-00-01");
        assert_eq!(rows[0].fields.class.as_deref(), Some("vip"));
        assert_eq!(rows[0].fields.note.as_deref(), Some("hi"));
        assert_eq!(
            rows[1].fields,
            Fields {
                number_raw: "201".into(),
                ..Fields::default()
            }
        );
    }

    #[test]
    fn the_first_bad_row_is_named_by_its_line() {
        assert_eq!(
            reason("number,class\n201,vip\n202,gold\n203,nope\n"),
            "f.csv:3: class \"gold\": expected vip, blacklist, employee or empty"
        );
        // A quoted field spanning lines: the next record's line is its own.
        assert!(reason("number,note\n201,\"a\nb\"\n,x\n").starts_with("f.csv:4: number \"\""));
        assert!(reason("number,valid_from\n201,2026-02-30\n").starts_with("f.csv:2: valid_from"));
        assert!(
            reason("number,valid_from,valid_until\n201,2026-12-02,2026-12-01\n")
                .starts_with("f.csv:2: valid_from")
        );
        assert!(reason("number\n201\n+79160000001\n8 916 000 00 01\n")
            .starts_with("f.csv:4: number \"+79160000001\" is already on line 3"));
        assert_eq!(
            reason("number,name\n201\n"),
            "f.csv:2: 1 fields where the header row has 2"
        );
    }

    #[test]
    fn the_header_is_checked() {
        assert!(reason("").starts_with("f.csv:1: no header row"));
        assert!(reason("name\nAnn\n").starts_with("f.csv:1: no `number` column"));
        assert!(reason("number,hits\n201,3\n").starts_with("f.csv:1: unknown column \"hits\""));
        assert!(reason("number,name,Name\n").starts_with("f.csv:1: column \"name\" is given twice"));
    }

    #[test]
    fn export_reads_back_the_same() {
        let rows = read_str(
            "number,name,company,class,agent,valid_from,valid_until,note\n\
             \"+7 916 000-00-01\",\"Lee, Ann\",Acme,blacklist,201,2026-12-01,2026-12-31T10:00:00.5+03:00,\"say \"\"hi\"\"\"\n\
             202,,,,,,,\n",
        )
        .unwrap();
        let entries: Vec<Entry> = rows
            .iter()
            .map(|r| Entry {
                number: r.number.clone(),
                fields: r.fields.clone(),
                hits: 0,
                last_hit_at: None,
                created_at: DateTime::default(),
                created_by: "cli".into(),
                updated_at: DateTime::default(),
                updated_by: "cli".into(),
            })
            .collect();
        let mut out = Vec::new();
        write(&entries, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("2026-12-01T00:00:00Z,2026-12-31T07:00:00.500Z"),
            "{text}"
        );
        assert_eq!(read_str(&text).unwrap(), rows);
    }
}
