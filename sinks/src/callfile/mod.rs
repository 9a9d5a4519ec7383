//! Asterisk call files: render one callback attempt as a `.call` file, drop it
//! atomically into Asterisk's spool (`<astspooldir>/outgoing`), read back what
//! Asterisk made of it, and cancel it.
//!
//! The module knows nothing about storage or policy: the caller decides who
//! is called back and when, and names the file deterministically per episode
//! and attempt, so [`write()`] refusing an existing name
//! ([`CallFileError::AlreadyThere`]) is its never-twice guard.
//!
//! # Safety of the rendered file
//!
//! Asterisk's `pbx_spool` reads a call file line by line (`key: value`, key
//! split at the first `:`, case-insensitive); a newline in a value starts a
//! new key (a second `Application:`/`Channel:` overrides the first), `;`
//! starts a comment unless written `\;`, `#` starts one at the start of a
//! line or after a blank, blanks around the value are trimmed and an
//! over-long line is skipped (or, in older releases, split into two lines).
//! `Application:` runs **any** application (`System` included) with no
//! permission check.
//!
//! So every line is built from constants plus validated fields, and a field
//! that does not validate is **rejected** with a [`CallFileError::Invalid`]
//! naming the field and the reason, never "cleaned":
//!
//! * no control character (CR, LF, TAB, NUL, DEL, C1, U+2028/U+2029)
//!   anywhere;
//! * no `;` anywhere: Asterisk would accept `\;`, but an escaping rule is one
//!   more thing to get wrong (its unescaping also skips the character after
//!   the `;`), and no legitimate field needs one;
//! * no leading or trailing blank, no value starting with `#`, no `#` after a
//!   space; no `${` or `$[` (substitutions: inert in a call file, but
//!   dangerous in a dialplan that passes the value on);
//! * numbers match `^\+?[0-9]{3,20}$`; contexts and extensions
//!   `^[A-Za-z0-9_.+-]{1,79}$`; variable names `^_{0,2}[A-Za-z][A-Za-z0-9_]*$`
//!   of at most 64 bytes (a name ending in `)` would be a *function write*);
//! * channels are `Tech/resource` from a short list of technologies with a
//!   strict alphabet (no `&`, `,`, `|`, blank, `$`: Dial/app separators and
//!   substitutions);
//! * the caller-id name is printable text (UTF-8 allowed) without `"`, `<`,
//!   `>`, `\`, `;`, at most [`MAX_CALLERID_NAME_BYTES`] bytes;
//! * every line is at most [`MAX_LINE_BYTES`] bytes.
//!
//! Only the `Context`/`Extension`/`Priority` form is supported, never
//! `Application`/`Data`: an application allow-list would be one more policy to
//! get right, and a dialplan context (which the PBX admin owns and can read)
//! does everything a callback needs.
//!
//! # The spool
//!
//! [`write()`] follows the atomic recipe of `pbx_spool`'s inotify code: the file
//! is written in `<spool>/tmp/` (a sibling of `outgoing/`, so on the same
//! filesystem), fsynced, given its mtime (a future mtime schedules the call)
//! and its owner, then `rename(2)`d into `outgoing/` (Asterisk acts on
//! `IN_MOVED_TO` at once) and the directory is fsynced. Nothing else is ever
//! created in `outgoing/`.
//!
//! [`outcome`] reads the progress lines Asterisk appends
//! (`StartRetry: <pid> <attempt> (<unix time>)`, ...) and, with
//! `Archive: yes`, the `Status:` line it appends after moving the file into
//! `outgoing_done/`.

mod render;
mod spool;
#[cfg(test)]
mod tests;

pub use spool::{
    cancel, outcome, write, CallFileOutcome, CallStatus, Progress, ProgressLine, ProgressTag,
};

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// Longest line written, in bytes, without its `\n`.
///
/// Asterisk master reads call files with a 1024-byte buffer and skips longer
/// lines; releases up to at least 13 use `fgets` into 256 bytes, which splits
/// a longer line in two and parses the tail as a line of its own. 254 bytes
/// plus the newline fit the smaller buffer, so every Asterisk reads each line
/// whole.
pub const MAX_LINE_BYTES: usize = 254;

/// Longest caller-id name, in bytes. `apply_outgoing` splits `CallerID:` into
/// 80-byte buffers with `ast_copy_string`, which keeps 79 bytes and the NUL:
/// an 80-byte name would lose its last byte (possibly half a UTF-8 character).
pub const MAX_CALLERID_NAME_BYTES: usize = 79;

/// Longest context or extension, in bytes (`AST_MAX_CONTEXT` and
/// `AST_MAX_EXTENSION` are 80, NUL included).
pub const MAX_DIALPLAN_NAME_BYTES: usize = 79;

/// Longest channel, in bytes.
pub const MAX_CHANNEL_BYTES: usize = 200;

/// Longest account code, in bytes (old releases store it in 20 bytes).
pub const MAX_ACCOUNT_BYTES: usize = 19;

/// Longest variable name, in bytes.
pub const MAX_VAR_NAME_BYTES: usize = 64;

/// Most `Set:` lines in one file.
pub const MAX_VARS: usize = 32;

/// Longest call file name, in bytes, `.call` excluded.
pub const MAX_FILE_STEM_BYTES: usize = 100;

/// `MaxRetries` ceiling: beyond it the caller has a bug, not a policy.
pub const MAX_RETRIES: u32 = 100;

/// `RetryTime` ceiling, in seconds (one day).
pub const MAX_RETRY_TIME_S: u32 = 86_400;

/// `WaitTime` ceiling, in seconds.
pub const MAX_WAIT_TIME_S: u32 = 3_600;

/// Channel technologies a callback may use.
pub use crate::channel::CHANNEL_TECHS;

/// Mode of the written file: Asterisk (owner or group) must read it, append
/// to it and rename it; calltrail (owner or group) reads it back.
const FILE_MODE: u32 = 0o660;

/// Mode of `<spool>/tmp` when [`write()`] creates it.
const TMP_DIR_MODE: u32 = 0o770;

/// Serialises [`write()`] within the process, so that the existence check and
/// the rename of one name cannot interleave with another writer's.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// One callback attempt: what Asterisk dials and where the answered channel
/// goes in the dialplan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFile {
    /// The leg Asterisk dials first, `Tech/resource`: `Local/201@from-internal/n`,
    /// `PJSIP/201`, `PJSIP/79161234567@trunk`, `DAHDI/g1/79161234567`,
    /// `IAX2/provider/79161234567`. Technologies: [`CHANNEL_TECHS`]. `Local`
    /// takes exactly `exten@context`, optionally followed by `/n`.
    pub channel: String,
    /// Caller-id name shown on the dialled leg; may be empty.
    pub callerid_name: String,
    /// Caller-id number: `^\+?[0-9]{3,20}$`.
    pub callerid_num: String,
    /// Dialplan context the answered channel enters.
    pub context: String,
    /// Extension in [`context`](Self::context).
    pub extension: String,
    /// Priority, at least 1.
    pub priority: u32,
    /// Retries after the first attempt (Asterisk makes `max_retries + 1`
    /// attempts). At most [`MAX_RETRIES`].
    pub max_retries: u32,
    /// Seconds between the end of a failed attempt and the next one;
    /// `1..=`[`MAX_RETRY_TIME_S`].
    pub retry_time_s: u32,
    /// Seconds the dialled leg may ring; `1..=`[`MAX_WAIT_TIME_S`].
    pub wait_time_s: u32,
    /// Account code (`^[A-Za-z0-9_.+-]{1,19}$`).
    pub account: Option<String>,
    /// `Archive: yes`: Asterisk moves the finished file to `outgoing_done/`
    /// and appends `Status:`. Without it [`outcome`] cannot tell a finished
    /// call from a cancelled one, and [`write()`]'s never-twice guard only
    /// covers files still queued.
    pub archive: bool,
    /// Channel variables (`Set:` lines), in order. Names are unique
    /// (case-insensitively, `_`/`__` inheritance prefixes ignored).
    pub vars: Vec<Var>,
}

/// One `Set: name=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// Variable name: `^_{0,2}[A-Za-z][A-Za-z0-9_]*$`, at most
    /// [`MAX_VAR_NAME_BYTES`] bytes. One or two leading `_` make it
    /// inherited by the channels this one creates.
    pub name: String,
    /// The value, validated according to [`kind`](Self::kind).
    pub value: String,
    /// How [`value`](Self::value) is validated.
    pub kind: VarKind,
}

/// How a [`Var`] value is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    /// Printable ASCII (an id, a queue name, a reason...), possibly empty,
    /// without `;`, substitutions, surrounding blanks or comment starts.
    /// Non-ASCII text belongs in the caller-id name: releases whose blank
    /// trimming compares signed `char`s eat trailing bytes `>= 0x80`.
    Text,
    /// A phone number: `^\+?[0-9]{3,20}$`.
    Number,
}

impl Var {
    /// A [`VarKind::Text`] variable.
    pub fn text(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            kind: VarKind::Text,
        }
    }

    /// A [`VarKind::Number`] variable.
    pub fn number(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            kind: VarKind::Number,
        }
    }
}

/// The field a [`CallFileError::Invalid`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// [`CallFile::channel`].
    Channel,
    /// [`CallFile::callerid_name`].
    CallerIdName,
    /// [`CallFile::callerid_num`].
    CallerIdNum,
    /// [`CallFile::context`].
    Context,
    /// [`CallFile::extension`].
    Extension,
    /// [`CallFile::priority`].
    Priority,
    /// [`CallFile::max_retries`].
    MaxRetries,
    /// [`CallFile::retry_time_s`].
    RetryTime,
    /// [`CallFile::wait_time_s`].
    WaitTime,
    /// [`CallFile::account`].
    Account,
    /// [`CallFile::vars`] as a whole (too many).
    Vars,
    /// The name of the variable at this index of [`CallFile::vars`].
    VarName(usize),
    /// The value of the variable with this (valid) name.
    VarValue(String),
    /// The file name given to [`write()`], [`outcome`] or [`cancel`].
    FileName,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Channel => f.write_str("channel"),
            Self::CallerIdName => f.write_str("caller-id name"),
            Self::CallerIdNum => f.write_str("caller-id number"),
            Self::Context => f.write_str("context"),
            Self::Extension => f.write_str("extension"),
            Self::Priority => f.write_str("priority"),
            Self::MaxRetries => f.write_str("max retries"),
            Self::RetryTime => f.write_str("retry time"),
            Self::WaitTime => f.write_str("wait time"),
            Self::Account => f.write_str("account"),
            Self::Vars => f.write_str("variables"),
            Self::VarName(i) => write!(f, "name of variable #{i}"),
            Self::VarValue(name) => write!(f, "value of variable {name}"),
            Self::FileName => f.write_str("file name"),
        }
    }
}

/// Why a field was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The field must not be empty.
    Empty,
    /// Longer than allowed.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A control character (CR, LF, TAB, NUL, DEL, C1...).
    ControlChar(char),
    /// A `;` (a comment start in a call file).
    Semicolon,
    /// A leading or trailing blank (Asterisk trims them).
    Blank,
    /// Starts with `#` or has a `#` after a space (a comment start).
    Comment,
    /// `${` or `$[`.
    Substitution,
    /// A character the field does not allow.
    ForbiddenChar(char),
    /// Does not have the required shape (described).
    Pattern(&'static str),
    /// A variable name ending in `)`: a function write.
    FunctionWrite,
    /// A number outside the allowed range.
    OutOfRange {
        /// The value given.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A second variable with the same name.
    Duplicate,
    /// Too many items.
    TooMany {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The rendered line would be longer than [`MAX_LINE_BYTES`].
    LineTooLong {
        /// Its length in bytes, without the newline.
        len: usize,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { len, max } => write!(f, "is {len} bytes long (at most {max})"),
            Self::ControlChar(c) => write!(f, "contains the control character {c:?}"),
            Self::Semicolon => f.write_str("contains `;` (a call-file comment)"),
            Self::Blank => f.write_str("has a leading or trailing blank"),
            Self::Comment => f.write_str("starts a `#` comment"),
            Self::Substitution => f.write_str("contains a `${`/`$[` substitution"),
            Self::ForbiddenChar(c) => write!(f, "contains the forbidden character {c:?}"),
            Self::Pattern(p) => write!(f, "does not match {p}"),
            Self::FunctionWrite => f.write_str("ends in `)` (a dialplan function write)"),
            Self::OutOfRange { value, min, max } => {
                write!(f, "is {value}, outside {min}..={max}")
            }
            Self::Duplicate => f.write_str("is set twice"),
            Self::TooMany { count, max } => write!(f, "has {count} items (at most {max})"),
            Self::LineTooLong { len } => {
                write!(f, "makes a {len}-byte line (at most {MAX_LINE_BYTES})")
            }
        }
    }
}

/// Everything [`CallFile::render`], [`write()`], [`outcome`] and [`cancel`]
/// can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallFileError {
    /// A field was rejected; nothing was written.
    #[error("call file rejected: {field} {reason}")]
    Invalid {
        /// The offending field.
        field: Field,
        /// Why.
        reason: Reason,
    },

    /// `outgoing/<name>` or `outgoing_done/<name>` already exists: this call
    /// was already placed (or is queued). Nothing was written.
    #[error("call file {} already exists", path.display())]
    AlreadyThere {
        /// The existing file.
        path: PathBuf,
    },

    /// `<spool>/tmp` and `<spool>/outgoing` are on different filesystems, so
    /// the file cannot be renamed into the spool atomically.
    #[error("{} and {} are on different filesystems: cannot rename atomically", from.display(), to.display())]
    CrossDevice {
        /// The temporary file.
        from: PathBuf,
        /// Where it was to go.
        to: PathBuf,
    },

    /// A line Asterisk appended does not have the expected shape.
    #[error("unexpected line {line:?} in {}", path.display())]
    Malformed {
        /// The call file.
        path: PathBuf,
        /// The line (lossy UTF-8).
        line: String,
    },

    /// A file-system operation failed.
    #[error("call file {op} on {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// File or directory involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl CallFileError {
    /// Whether retrying the same operation later may succeed (only I/O
    /// errors may: a full disk, a missing directory being recreated).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}

fn invalid(field: Field, reason: Reason) -> CallFileError {
    CallFileError::Invalid { field, reason }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CallFileError {
    let path = path.to_path_buf();
    move |source| CallFileError::Io { op, path, source }
}
