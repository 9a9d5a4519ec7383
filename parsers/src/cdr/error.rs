//! Why a CDR record (or a column mapping) was rejected.
//!
//! Every variant says what was expected and what was found, so the ingest
//! layer can log it next to the file position without further context.

/// Why a CDR line or a configured column mapping was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdrError {
    #[error("record is {len} bytes, longer than the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error(
        "unterminated quoted field: a '\"' opened a field that never closes \
         (a record split over lines by a raw CR/LF needs its next line appended)"
    )]
    UnterminatedQuote,
    #[error("layout {layout} expects {expected} columns, found {found}")]
    WrongColumnCount {
        layout: &'static str,
        expected: String,
        found: usize,
    },
    #[error(
        "cannot detect the CDR layout from a record with {found} columns: expected a header row, \
         16 to 21 columns with the start date in column 10 (cdr_csv), or 19 columns with it in \
         column 9 (cdr_custom default mapping); configure the layout explicitly"
    )]
    UndetectedLayout { found: usize },
    #[error("expected a header row with column names first, found a record: {found:?}")]
    ExpectedHeader { found: String },
    #[error("{column} date {found:?} is not 'YYYY-MM-DD HH:MM:SS' (optionally '.ffffff') or epoch seconds")]
    BadDate { column: &'static str, found: String },
    #[error("{column} date {found:?} does not exist in time zone {tz} (skipped by a DST change)")]
    NonexistentLocalTime {
        column: &'static str,
        found: String,
        tz: String,
    },
    #[error(
        "unknown CDR column name {name:?}: expected one of accountcode, src, dst, dcontext, clid, \
         channel, dstchannel, lastapp, lastdata, start (or calldate), answer, end, duration, \
         billsec, disposition, amaflags, uniqueid, userfield, peeraccount, linkedid, sequence, \
         or \"-\" / \"\" for a column to ignore"
    )]
    UnknownColumn { name: String },
    #[error("CDR column {name:?} is mapped twice (columns {first} and {second})")]
    DuplicateColumn {
        name: String,
        first: usize,
        second: usize,
    },
    #[error("the column mapping has no start column (start or calldate): every record needs a start time; columns: {columns}")]
    MissingStartColumn { columns: String },
}
