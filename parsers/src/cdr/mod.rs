//! Asterisk CDR CSV files → normalized call events: `cdr_csv`'s
//! `Master.csv`, `cdr_custom` files, and vendor exports with a header row
//! (Grandstream UCM). Reference: FORMATS.md §b and §g items 11–15.
//!
//! [`CdrParser::parse_line`] takes one record (a physical line, or several
//! joined while [`record_complete`] says a quoted field is still open: a
//! raw CR/LF in `lastdata`/`userfield` is not escaped by Asterisk). Blank
//! lines and header rows give `Ok(None)`; a record the layout cannot take
//! gives a [`CdrError`] saying why, and no input panics.
//!
//! # Quoting
//! The `csv` crate's rules (doubled quotes, bare and quoted empty fields,
//! commas and CR/LF inside quotes, CRLF line ends), applied by a small
//! splitter instead of a `csv::Reader` per line: building a reader costs
//! ~17 µs, the splitter ~0.2 µs per record. A unit test checks that both
//! agree on random input.
//!
//! # Layouts and detection
//! See [`CdrLayout`]. [`CdrLayout::Auto`] decides on the first non-blank
//! record and keeps that layout:
//! 1. no field is a date and at least 3 fields are known column names →
//!    header row ([`CdrLayout::HeaderRow`]; the record is skipped);
//! 2. 19 columns and a date in column 9 (cdr_custom's `start`; in cdr_csv
//!    that column is `lastdata`) → [`CdrLayout::CdrCustomDefault`];
//! 3. 16 to 21 columns and a date in column 10 (cdr_csv's `start`) →
//!    [`CdrLayout::CdrCsv`];
//! 4. otherwise [`CdrError::UndetectedLayout`], and the next record is tried.
//!
//! With cdr_csv each record's column count picks the optional columns: 16
//! none, 17 uniqueid *or* userfield (uniqueid when column 17 looks like
//! `[systemname-]<digits>.<digits>`), 18 uniqueid + userfield, 19
//! peeraccount + linkedid + sequence, 20 one of uniqueid/userfield + those
//! three, 21 all five. A header row met later in any layout is skipped (in
//! a header-row layout it replaces the column mapping).
//!
//! # Fields
//! `ts` = start, `answered_at` = answer, `ended_at` = end (`YYYY-MM-DD
//! HH:MM:SS[.f]` or epoch seconds, local to the source's zone — UTC for
//! `usegmtime=yes`; empty, `0000-00-00 …` or a raw `0`/`0.000000` (an
//! unset `${CDR(x,u)}`) = none; a time skipped by DST is an error). `duration_s`/`talk_s` = duration/billsec, fractions
//! rounded down. Without `answer`/`end` columns (FreePBX table exports)
//! end = start + duration and answer = end − billsec. `call_id` = uniqueid,
//! `linked_id` = linkedid (Grandstream: "Session"), `caller`/`callee` =
//! normalized src/dst (`*_raw` as written), `caller_name` = a caller-name
//! column if any, else the name in clid (`"Name" <num>`), `queue` = first
//! argument of `lastdata` when `lastapp` is `Queue`, `info` =
//! `lastapp(lastdata)`, `data` = every field decoded (UTF-8, else the
//! source's fallback charset), in file order.
//!
//! # Direction
//! First rule that applies:
//! 1. userfield is exactly `Inbound`, `Outbound` or `Internal` (any case;
//!    Grandstream writes these in "Log Userfield") → that;
//! 2. words of dcontext: `outbound`/`outrt`/`dialout` → Outbound;
//!    `pstn`/`trunk`/`did`/`incoming`/`inbound` (`from-trunk`, `from-pstn`,
//!    `ext-did-1`) → Inbound; `internal` with an external dst → Outbound;
//! 3. src/dst classes — *extension*: digits, `*`, `#`, at most
//!    [`DEFAULT_MAX_EXTENSION_LEN`] (6) long (see
//!    [`CdrParser::with_max_extension_len`]), or an endpoint name with
//!    letters (`client1`); *external*: any other number; *unknown*: empty or
//!    a sentinel (`anonymous`, `s`): extension → extension = Internal,
//!    extension → external = Outbound, external → any = Inbound, unknown →
//!    extension = Inbound, else none.
//!
//! `agent` is the PBX-side extension: from `dstchannel` for Inbound (the
//! answering or rung phone, `PJSIP/201-0000a1` → `201`), from `channel`
//! for Outbound and Internal (the caller); `agent_raw` is that channel.

mod direction;
mod error;
mod layout;
mod record;
mod split;

pub use direction::DEFAULT_MAX_EXTENSION_LEN;
pub use error::CdrError;
pub use layout::CdrLayout;
pub use split::record_complete;

use crate::agent::AgentResolver;
use crate::event::{Event, SourceKind};
use crate::phone::NumberNormalizer;
use crate::text::decode_lenient;
use crate::SourceContext;
use layout::{
    detect, looks_like_date, looks_like_header, looks_like_uniqueid, Detected, Mapping,
    CDR_CUSTOM_COUNT,
};
use record::Builder;
use split::{trim_terminators, Fields};

/// Longest record accepted. cdr_csv's own buffer is 1 KiB; vendor exports
/// and cdr_custom mappings can be longer, but not this long.
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// The column mapping in effect.
#[derive(Debug)]
enum Resolved {
    /// `Auto` before its first record, or `HeaderRow` before the header.
    Pending,
    /// cdr_csv: the mapping depends on each record's column count.
    CdrCsv,
    /// A fixed number of columns.
    Fixed { mapping: Mapping, count: usize },
    /// A `Columns` layout that failed validation: every record gets this error.
    Invalid(CdrError),
}

/// Parses the CDR records of one source. Keeps the detected layout and small
/// caches (normalized numbers, resolved agents, queue names), so one parser
/// should be reused for a whole file.
#[derive(Debug)]
pub struct CdrParser {
    layout: CdrLayout,
    resolved: Resolved,
    header: Option<Vec<String>>,
    fields: Fields,
    builder: Builder,
}

impl CdrParser {
    /// `kind` is the event's source kind ([`SourceKind::AsteriskCdrCsv`] or
    /// [`SourceKind::AsteriskCdrCustom`]). A [`CdrLayout::Columns`] that was
    /// not built with [`CdrLayout::columns`] is validated here; if invalid,
    /// every [`parse_line`](Self::parse_line) returns the validation error.
    pub fn new(
        ctx: SourceContext,
        kind: SourceKind,
        layout: CdrLayout,
        numbers: NumberNormalizer,
        agents: AgentResolver,
    ) -> Self {
        let resolved = match &layout {
            CdrLayout::Auto | CdrLayout::HeaderRow => Resolved::Pending,
            CdrLayout::CdrCsv => Resolved::CdrCsv,
            CdrLayout::CdrCustomDefault => Resolved::Fixed {
                mapping: Mapping::cdr_custom_default(),
                count: CDR_CUSTOM_COUNT,
            },
            CdrLayout::Columns(names) => {
                let names: Vec<String> = names
                    .iter()
                    .map(|n| n.trim().to_ascii_lowercase())
                    .collect();
                match Mapping::from_config(&names) {
                    Ok(mapping) => Resolved::Fixed {
                        mapping,
                        count: names.len(),
                    },
                    Err(e) => Resolved::Invalid(e),
                }
            }
        };
        CdrParser {
            layout,
            resolved,
            header: None,
            fields: Fields::default(),
            builder: Builder::new(ctx, kind, numbers, agents),
        }
    }

    /// Digit strings up to `len` long count as internal extensions when
    /// deriving the direction (default [`DEFAULT_MAX_EXTENSION_LEN`]). Pass
    /// the source's `NumberConfig::max_internal_len`, so that a site whose
    /// city numbers are 6 digits long can say extensions have at most 4.
    pub fn with_max_extension_len(mut self, len: usize) -> Self {
        self.builder.max_extension_len = len;
        self
    }

    /// The layout in effect: after [`CdrLayout::Auto`] has seen its first
    /// record, the detected one (`CdrCsv`, `CdrCustomDefault` or `HeaderRow`).
    pub fn layout(&self) -> &CdrLayout {
        &self.layout
    }

    /// The source this parser reads (name, PBX, time zone, charset).
    pub fn context(&self) -> &SourceContext {
        &self.builder.ctx
    }

    /// The column names of the header row in effect (`HeaderRow` layouts),
    /// decoded, for diagnostics.
    pub fn header(&self) -> Option<&[String]> {
        self.header.as_deref()
    }

    /// Parses one record: a physical line with or without its `\n`/`\r\n`
    /// (or several lines joined, see [`record_complete`]). Blank lines and
    /// header rows give `Ok(None)`. The event's `event_id` is left empty for
    /// the caller to set from the record's position.
    pub fn parse_line(&mut self, raw: &[u8]) -> Result<Option<Event>, CdrError> {
        if raw.len() > MAX_RECORD_LEN {
            return Err(CdrError::TooLong {
                len: raw.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let line = trim_terminators(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if let Resolved::Invalid(e) = &self.resolved {
            return Err(e.clone());
        }
        self.fields.split(line)?;
        if matches!(self.resolved, Resolved::Pending) && self.resolve_first()? {
            return Ok(None); // that record was the header
        }
        let n = self.fields.len();
        let mapping = match &self.resolved {
            Resolved::Fixed { mapping, count } if *count == n => Some(*mapping),
            // 17 and 20 columns: uniqueid or userfield, by column 17's shape.
            Resolved::CdrCsv => Mapping::cdr_csv(n, looks_like_uniqueid(self.fields.get(16))),
            _ => None,
        };
        let Some(mapping) = mapping else {
            if self.skip_header() {
                return Ok(None);
            }
            return Err(self.wrong_count(n));
        };
        match self.builder.build(&self.fields, &mapping) {
            Ok(ev) => Ok(Some(ev)),
            Err(
                e @ CdrError::BadDate {
                    column: "start", ..
                },
            ) => {
                if self.skip_header() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Settles a pending layout on the current record (`Auto` detection, or
    /// `HeaderRow` reading its header). True when the record was the header.
    fn resolve_first(&mut self) -> Result<bool, CdrError> {
        let detected = match self.layout {
            CdrLayout::HeaderRow => {
                if self.fields.iter().any(looks_like_date) {
                    return Err(CdrError::ExpectedHeader {
                        found: self.decoded_fields().join(",").chars().take(120).collect(),
                    });
                }
                Detected::HeaderRow
            }
            _ => detect(&self.fields)?,
        };
        match detected {
            Detected::HeaderRow => {
                self.adopt_header()?;
                self.layout = CdrLayout::HeaderRow;
                return Ok(true);
            }
            Detected::CdrCsv => {
                self.resolved = Resolved::CdrCsv;
                self.layout = CdrLayout::CdrCsv;
            }
            Detected::CdrCustomDefault => {
                self.resolved = Resolved::Fixed {
                    mapping: Mapping::cdr_custom_default(),
                    count: CDR_CUSTOM_COUNT,
                };
                self.layout = CdrLayout::CdrCustomDefault;
            }
        }
        Ok(false)
    }

    /// Takes the current record as the header row.
    fn adopt_header(&mut self) -> Result<(), CdrError> {
        let names = self.decoded_fields();
        let mapping = Mapping::from_header(names.iter().map(String::as_str))?;
        self.resolved = Resolved::Fixed {
            mapping,
            count: names.len(),
        };
        self.header = Some(names);
        Ok(())
    }

    /// For a record the layout rejected: true when it is a header row (to be
    /// skipped). In a header-row layout a new header replaces the old one
    /// (a rotated export with other columns).
    fn skip_header(&mut self) -> bool {
        if !looks_like_header(self.fields.iter()) {
            return false;
        }
        if self.layout == CdrLayout::HeaderRow {
            // Keeps the old mapping if the new header lacks a start column.
            let _ = self.adopt_header();
        }
        true
    }

    fn wrong_count(&self, found: usize) -> CdrError {
        let (layout, expected) = match &self.resolved {
            Resolved::CdrCsv => ("cdr_csv", "16 to 21".to_string()),
            Resolved::Fixed { count, .. } => (self.layout.name(), count.to_string()),
            _ => (self.layout.name(), "?".to_string()),
        };
        CdrError::WrongColumnCount {
            layout,
            expected,
            found,
        }
    }

    fn decoded_fields(&self) -> Vec<String> {
        let cs = self.builder.ctx.fallback_charset;
        self.fields
            .iter()
            .map(|f| decode_lenient(f, cs).trim().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests;
