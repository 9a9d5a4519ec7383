//! Oktell `[oktell].[dbo].[A_Stat_Connections_1x1]` rows exported as CSV
//! (SSMS "Save results as", sqlcmd `-s`, bcp `-c -t`) → call legs → events.
//!
//! One row is one *leg* of a call; the legs of a call share `IdChain`
//! (FORMATS.md §d, §g.19). Rows are inserted when a leg starts and updated
//! later (`TimeAnswer`, `TimeStop`): a leg with `TimeStop` NULL is still
//! active ("open"), parses to an [`OktellLeg`] but has no event yet, and the
//! re-reading source compares [`OktellLeg::fingerprint`]s to see a row change.
//!
//! Accepted input, line by line:
//! - the first non-blank line is the header: the columns
//!   `Id`, `IdChain`, `ConnectionType`, `TimeStart`, `TimeStop` are required,
//!   the others of [`Column::ALL`] optional, unknown ones kept; any order,
//!   any case, with or without `[]`; delimiter tab, `;`, `,` or `|`, detected
//!   from the header. A later line that is a header again (concatenated
//!   exports, a file read again) replaces it;
//! - RFC 4180 quoting (the `csv` crate); a quoted field may span lines (the
//!   parser keeps the line and returns `Ok(None)` until the quote closes, at
//!   most [`MAX_RECORD_LINES`] lines); a trailing delimiter is tolerated;
//! - `NULL` (any case) or an empty field is SQL NULL;
//! - datetimes `2024-03-01 10:15:00.123`, `2024-03-01T10:15:00.123`,
//!   `01.03.2024 10:15:00.123` (seconds and fraction optional), server-local
//!   in the source's zone; a local time skipped by DST is an error naming the
//!   column, one repeated by DST takes the earlier instant;
//! - GUIDs with or without braces, any case (normalized upper-case, no braces);
//! - UTF-8, or the source's fallback charset (cp1251) for a line that is not
//!   valid UTF-8; a UTF-8 BOM; CRLF;
//! - sqlcmd's dashed rule under the header, its `(N rows affected)` trailer
//!   and rows of only empty fields are skipped (`Ok(None)`).
//!
//! UTF-16 exports (bcp `-w`, sqlcmd `-u`) are rejected with a reason.

mod header;
mod leg;
mod record;
mod value;

pub use crate::hash::Fnv1a;
pub use header::Column;
pub use leg::{agent_column, connection_type_name, direction_of, OktellLeg, VERB};

use crate::agent::AgentResolver;
use crate::event::{Event, Str};
use crate::phone::NumberNormalizer;
use crate::text::decode_lenient;
use crate::time::local_to_utc;
use crate::SourceContext;
use chrono::{DateTime, Utc};
use header::Header;
use record::{ends_inside_quotes, split};
use std::borrow::Cow;
use value::{non_null, normalize_id, parse_datetime, parse_flag, parse_int};

/// Longest record accepted, in bytes (a row of this table is well under 2 KiB).
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Most lines one record may span through quoted line breaks.
pub const MAX_RECORD_LINES: usize = 16;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why an Oktell export line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OktellError {
    #[error(
        "no header yet: the first non-blank line must name the columns (Id, IdChain, \
         ConnectionType, TimeStart, TimeStop, …) separated by ';', ',', tab or '|'; found {found:?}"
    )]
    NoHeader { found: String },
    #[error("the header has no {name} column (required: Id, IdChain, ConnectionType, TimeStart, TimeStop)")]
    MissingColumn { name: &'static str },
    #[error("the header names the {name} column twice")]
    DuplicateColumn { name: &'static str },
    #[error("the export is UTF-16 (bcp -w, sqlcmd -u, SSMS 'Unicode'): export it as UTF-8 or ANSI instead")]
    Utf16,
    #[error("expected {expected} fields as in the header, found {found}")]
    WrongFieldCount { expected: usize, found: usize },
    #[error("{column} is NULL or empty, but every row needs it")]
    MissingValue { column: &'static str },
    #[error(
        "{column} value {found:?} is not a date-time (expected 'YYYY-MM-DD HH:MM:SS[.fff]', \
         'YYYY-MM-DDTHH:MM:SS[.fff]' or 'DD.MM.YYYY HH:MM:SS[.fff]')"
    )]
    BadDate { column: &'static str, found: String },
    #[error(
        "{column} local time {found:?} does not exist in time zone {tz} (skipped by a DST change)"
    )]
    NonexistentLocalTime {
        column: &'static str,
        found: String,
        tz: String,
    },
    #[error("{column} value {found:?} is not a whole number in the column's range")]
    BadNumber { column: &'static str, found: String },
    #[error("{column} value {found:?} is not a flag (expected 0, 1, true or false)")]
    BadFlag { column: &'static str, found: String },
    #[error("a quoted field is still open after {lines} lines: a '\"' without its closing quote")]
    UnterminatedQuote { lines: usize },
    #[error("the line holds more than one record (a bare line break inside it?)")]
    MultipleRecords,
    #[error("line is {len} bytes, longer than the {max}-byte limit")]
    TooLong { len: usize, max: usize },
}

/// A value shortened for an error message.
fn clip(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Parses one export, line by line. Holds the header, a record continued over
/// several lines, and the number/agent caches, so use one parser per file
/// (or call [`OktellParser::reset`] before reading a file again).
#[derive(Debug)]
pub struct OktellParser {
    ctx: SourceContext,
    numbers: NumberNormalizer,
    agents: AgentResolver,
    verb: Str,
    header: Option<Header>,
    /// Lines of a record whose quoted field is still open.
    pending: Vec<u8>,
    pending_lines: usize,
}

impl OktellParser {
    pub fn new(ctx: SourceContext, numbers: NumberNormalizer, agents: AgentResolver) -> Self {
        OktellParser {
            ctx,
            numbers,
            agents,
            verb: Str::from(VERB),
            header: None,
            pending: Vec::new(),
            pending_lines: 0,
        }
    }

    /// Forgets the header and any unfinished record (before reading a file
    /// from its start again).
    pub fn reset(&mut self) {
        self.header = None;
        self.clear_pending();
    }

    /// The column names as the header wrote them, once it has been read.
    pub fn columns(&self) -> Option<&[String]> {
        self.header.as_ref().map(|h| h.names.as_slice())
    }

    /// The detected delimiter, once the header has been read.
    pub fn delimiter(&self) -> Option<u8> {
        self.header.as_ref().map(|h| h.delimiter)
    }

    /// True while a record with an open quoted field waits for its next line.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Call at the end of the input: an unfinished quoted record is an error
    /// (and is dropped).
    pub fn finish(&mut self) -> Result<(), OktellError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let lines = self.pending_lines;
        self.clear_pending();
        Err(OktellError::UnterminatedQuote { lines })
    }

    fn clear_pending(&mut self) {
        self.pending.clear();
        self.pending_lines = 0;
    }

    /// The normalized event of a closed leg (see [`OktellLeg::to_event`]),
    /// with this parser's context, number normalizer and agent resolver.
    pub fn to_event(&mut self, leg: &OktellLeg) -> Option<Event> {
        leg.build_event(
            &self.ctx,
            &mut self.numbers,
            &mut self.agents,
            self.verb.clone(),
        )
    }

    /// Parses one line (with or without its `\n` / `\r\n`).
    ///
    /// `Ok(None)` for blank lines, the header (also when it appears again
    /// later: it then replaces the current one), sqlcmd's rule and row-count
    /// lines, rows of only empty fields, and a line that ends inside a quoted
    /// field (its record is returned with the line that closes the quote). Until a header has been
    /// read, every non-blank line is tried as one and rejected with
    /// [`OktellError::NoHeader`] or [`OktellError::MissingColumn`].
    pub fn parse_line(&mut self, raw: &[u8]) -> Result<Option<OktellLeg>, OktellError> {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = raw.strip_prefix(UTF8_BOM).unwrap_or(raw);
        let len = if self.pending.is_empty() {
            raw.len()
        } else {
            self.pending.len() + 1 + raw.len()
        };
        if len > MAX_LINE_LEN {
            self.clear_pending();
            return Err(OktellError::TooLong {
                len,
                max: MAX_LINE_LEN,
            });
        }
        if self.pending.is_empty() && raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let Some(delimiter) = self.delimiter() else {
            if raw.starts_with(b"\xFF\xFE") || raw.starts_with(b"\xFE\xFF") || raw.contains(&0) {
                return Err(OktellError::Utf16);
            }
            let text = decode_lenient(raw, self.ctx.fallback_charset);
            self.header = Some(Header::detect(&text)?);
            return Ok(None);
        };
        let record: Cow<'_, [u8]> = if self.pending.is_empty() {
            Cow::Borrowed(raw)
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.push(b'\n');
            buf.extend_from_slice(raw);
            Cow::Owned(buf)
        };
        let text = decode_lenient(&record, self.ctx.fallback_charset);
        if ends_inside_quotes(text.as_bytes(), delimiter) {
            self.pending_lines += 1;
            if self.pending_lines >= MAX_RECORD_LINES {
                let lines = self.pending_lines;
                self.clear_pending();
                return Err(OktellError::UnterminatedQuote { lines });
            }
            self.pending = record.into_owned();
            return Ok(None);
        }
        self.pending_lines = 0;
        self.record(&text)
    }

    /// One complete record (decoded).
    fn record(&mut self, text: &str) -> Result<Option<OktellLeg>, OktellError> {
        let Some(h) = &self.header else {
            return Ok(None);
        };
        let mut fields = split(text, h.delimiter)?;
        if is_skippable(&fields) {
            return Ok(None);
        }
        let expected = h.names.len();
        if fields.len() == expected + 1 && fields.last().is_some_and(String::is_empty) {
            fields.pop();
        }
        let names_a_column = fields
            .first()
            .is_some_and(|f| Column::from_header(f).is_some());
        if names_a_column || fields.len() != expected {
            // A header again: concatenated exports, or the file read once more.
            match Header::detect(text) {
                Ok(new) => {
                    self.header = Some(new);
                    return Ok(None);
                }
                Err(e) if names_a_column => return Err(e),
                Err(_) => {
                    return Err(OktellError::WrongFieldCount {
                        expected,
                        found: fields.len(),
                    })
                }
            }
        }
        build_leg(h, &self.ctx, fields).map(Some)
    }
}

/// sqlcmd's rule under the header (`--,-----,…`), its `(6 rows affected)` /
/// `(затронуто строк: 6)` trailer, and rows of only empty fields (Excel pads
/// a re-saved sheet with `;;;;`). A real row has at least five fields, one of
/// them a GUID or number.
fn is_skippable(fields: &[String]) -> bool {
    let all_empty = fields.iter().all(String::is_empty);
    let rule = !all_empty
        && fields
            .iter()
            .all(|f| f.bytes().all(|b| b == b'-' || b == b' '));
    let row_count = match fields {
        [only] => only.starts_with('(') && only.ends_with(')'),
        _ => false,
    };
    all_empty || rule || row_count
}

/// Reads the typed columns of one row.
fn build_leg(
    h: &Header,
    ctx: &SourceContext,
    fields: Vec<String>,
) -> Result<OktellLeg, OktellError> {
    let at = |c: Column| h.get(c).and_then(|i| fields.get(i)).map(String::as_str);
    let opt = |c: Column| at(c).and_then(non_null);
    let required = |c: Column| opt(c).ok_or(OktellError::MissingValue { column: c.name() });
    let text = |c: Column| opt(c).map(str::to_string);
    let time = |c: Column, s: &str| -> Result<DateTime<Utc>, OktellError> {
        let naive = parse_datetime(s).ok_or_else(|| OktellError::BadDate {
            column: c.name(),
            found: clip(s),
        })?;
        local_to_utc(naive, ctx.timezone).ok_or_else(|| OktellError::NonexistentLocalTime {
            column: c.name(),
            found: clip(s),
            tz: ctx.timezone.name().to_string(),
        })
    };
    let opt_time = |c: Column| opt(c).map(|s| time(c, s)).transpose();
    let int = |c: Column| {
        opt(c)
            .map(|s| {
                parse_int(s).ok_or_else(|| OktellError::BadNumber {
                    column: c.name(),
                    found: clip(s),
                })
            })
            .transpose()
    };

    let ct = required(Column::ConnectionType)?;
    let connection_type = ct.parse::<u8>().map_err(|_| OktellError::BadNumber {
        column: Column::ConnectionType.name(),
        found: clip(ct),
    })?;
    let is_recorded = opt(Column::IsRecorded)
        .map(|s| {
            parse_flag(s).ok_or_else(|| OktellError::BadFlag {
                column: Column::IsRecorded.name(),
                found: clip(s),
            })
        })
        .transpose()?;
    Ok(OktellLeg {
        id: normalize_id(required(Column::Id)?),
        chain: normalize_id(required(Column::IdChain)?),
        connection_type,
        start: time(Column::TimeStart, required(Column::TimeStart)?)?,
        answer: opt_time(Column::TimeAnswer)?,
        answer_known: h.get(Column::TimeAnswer).is_some(),
        stop: opt_time(Column::TimeStop)?,
        reason_start: int(Column::ReasonStart)?,
        reason_stop: int(Column::ReasonStop)?,
        stop_side: int(Column::StopSide)?,
        a_out_number: text(Column::AOutNumber),
        b_out_number: text(Column::BOutNumber),
        a_str: text(Column::AStr),
        b_str: text(Column::BStr),
        a_line_id: opt(Column::ALineId).map(normalize_id),
        b_line_id: opt(Column::BLineId).map(normalize_id),
        a_line_num: text(Column::ALineNum),
        b_line_num: text(Column::BLineNum),
        a_number_dialed: text(Column::ANumberDialed),
        is_recorded,
        fields,
    })
}

#[cfg(test)]
mod tests;
