//! `calltrail-parsers`: pure bytes → records parsers for PBX logs, and the
//! normalized call event model every source is turned into.
//!
//! No I/O and no async here: callers hand in bytes (a line, a record) plus a
//! [`SourceContext`] and get back an [`Event`] or a typed error that says why
//! the input was rejected. Positions (line numbers, byte offsets) are the
//! caller's business; errors carry the reason, the caller adds where.

pub mod agent;
pub mod bars;
pub mod cdr;
pub mod dbf;
pub mod event;
pub mod event_ref;
pub mod hash;
pub mod intern;
pub mod oktell;
pub mod phone;
pub mod queue_log;
pub mod queue_log_db;
pub mod queue_log_verbs;
pub mod text;
pub mod time;

pub use agent::AgentResolver;
pub use event::{Direction, Disposition, Event, EventKind, SourceKind, Str};
pub use event_ref::{DataFields, EventRef};
pub use phone::{LineKind, NumberConfig, NumberNormalizer};
pub use queue_log::{QueueLogError, QueueLogParser};
pub use text::Charset;

use chrono_tz::Tz;

/// Everything a parser needs to know about the source it is reading.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// Configured source name (unique per calltrail instance).
    pub source: Str,
    /// PBX this source belongs to.
    pub pbx: Str,
    /// Time zone for timestamps written without one (CDR dates, DB exports).
    pub timezone: Tz,
    /// Charset used when a field is not valid UTF-8.
    pub fallback_charset: Charset,
}

impl SourceContext {
    /// A context with UTC and the cp1251 fallback, handy in tests.
    pub fn new(source: &str, pbx: &str) -> Self {
        SourceContext {
            source: Str::from(source),
            pbx: Str::from(pbx),
            timezone: Tz::UTC,
            fallback_charset: Charset::Cp1251,
        }
    }
}
