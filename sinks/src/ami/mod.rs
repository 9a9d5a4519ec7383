//! An Asterisk Manager Interface (AMI) client that places callbacks with an
//! asynchronous `Originate` and reports each one's outcome.
//!
//! The module knows nothing about storage or policy: the action worker
//! decides who is called back and when, names each attempt with a unique
//! ActionID, and records what [`AmiClient::originate`] and
//! [`Queued::outcome`] return. A callback must never be placed twice, so the
//! errors tell apart what was certainly **not** sent ([`AmiError::Connect`],
//! [`AmiError::Login`], [`AmiError::Refused`], [`AmiError::Invalid`]) from
//! what **may** have been queued ([`AmiError::InDoubt`]) and what was queued
//! but whose result is unknown ([`AmiError::OutcomeLost`]). Nothing is ever
//! re-sent by this module: a reconnect only serves the next call.
//!
//! # The protocol (Asterisk `main/manager.c`)
//!
//! On connect Asterisk sends one banner line, `Asterisk Call Manager/<version>`.
//! Then both sides exchange messages: `Key: Value` lines ended by an empty
//! line. Asterisk ends a line with `\r\n` or a bare `\n`, reads at most 1024
//! bytes per line and 128 headers per message, and keeps the **first** of
//! duplicate headers (the module `frame` reads and writes
//! messages by these rules). Events (`Event: …`) are interleaved with
//! the replies to actions (`Response: …`, carrying the action's `ActionID`).
//!
//! A session logs in with `Action: Login` (`Username`, `Secret`,
//! `Events: call`: `OriginateResponse` is a `call`-class event, and
//! `Events: off` would suppress it). An Originate with `Async: true` is
//! answered at once by `Response: Success` / `Message: Originate successfully
//! queued` (or `Response: Error` and why), and later by
//! `Event: OriginateResponse` with the same ActionID, `Response:
//! Success|Failure`, `Reason` (see [`reason_text`]), `Channel` (the created
//! `Local/…;1` channel on success, the requested channel on failure) and
//! `Uniqueid` (`<unknown>` on failure).
//!
//! # Safety of the rendered action
//!
//! Every line of an Originate is built from constants plus validated fields,
//! and a field that does not validate is **rejected** with
//! [`AmiError::Invalid`] naming the field and the reason, never "cleaned"
//! ([`Originate::render`]):
//!
//! * no control character (CR, LF, NUL, TAB, DEL, C1, U+2028/U+2029)
//!   anywhere: a CR or LF would end the header and start another (or end the
//!   action and start a new one);
//! * the ActionID is `^[A-Za-z0-9._:-]{1,64}$`;
//! * channels are `Tech/resource` from [`CHANNEL_TECHS`] with a strict
//!   alphabet (no `&`, `,`, `|`, blank, `$`: Dial and application
//!   separators and substitutions); contexts and extensions are
//!   `^[A-Za-z0-9_+.-]{1,79}$`;
//! * variable names are `^[A-Z][A-Z0-9_]{0,63}$` (a name ending in `)` would
//!   be a dialplan *function write*) and unique; values contain none of
//!   `,` (Asterisk splits `Variable:` on commas into more pairs), `"`, `\`,
//!   `(`, `)`, `[`, `]` (its argument splitter's quoting and nesting), `$`
//!   (substitutions), `;`, `|`, `&` (dialplan separators), and no leading or
//!   trailing blank (the splitter trims them);
//! * the caller-id number is `^\+?[0-9]{3,20}$`; the caller-id name is
//!   printable text (UTF-8 allowed) of at most [`MAX_CALLERID_NAME_BYTES`]
//!   bytes without `"`, `<`, `>`, `\`, `$`, surrounding blanks;
//! * the account code is `^[A-Za-z0-9_.:-]{1,80}$`;
//! * every line, its `\r\n` included, is at most [`MAX_LINE_BYTES`] bytes.
//!
//! Only the `Context`/`Exten`/`Priority` form is supported, never
//! `Application`/`Data`.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), calltrail_sinks::ami::AmiError> {
//! use calltrail_sinks::ami::{AmiClient, AmiConfig, CallerId, Originate};
//! use std::time::Duration;
//!
//! let client = AmiClient::new(AmiConfig::new("127.0.0.1", "calltrail", "s3cret"));
//! let queued = client
//!     .originate(&Originate {
//!         action_id: "cb-42-1".into(),
//!         channel: "Local/201@from-internal/n".into(),
//!         context: "calltrail-callback".into(),
//!         exten: "s".into(),
//!         priority: 1,
//!         timeout_ms: 30_000,
//!         caller_id: Some(CallerId { name: "Callback".into(), number: "+79161234567".into() }),
//!         variables: vec![("CT_NUMBER".into(), "+79161234567".into())],
//!         account: None,
//!     })
//!     .await?;
//! let outcome = queued.outcome(Duration::from_secs(60)).await?;
//! println!("{} ({})", outcome.reason_text, outcome.reason);
//! # Ok(()) }
//! ```

mod client;
mod frame;
mod originate;
#[cfg(test)]
mod tests;

pub use client::{AmiClient, Queued};

use std::fmt;
use std::time::Duration;

/// The AMI port Asterisk listens on by default.
pub const DEFAULT_PORT: u16 = 5038;

/// Longest line Asterisk reads, in bytes (`inbuf[1025]` in `manager.c`).
///
/// Written lines, their `\r\n` included, are at most this long; a received
/// line longer than this (without its line end) discards its message.
pub const MAX_LINE_BYTES: usize = 1024;

/// Most headers in one message (`AST_MAX_MANHEADERS`). Written actions have
/// at most this many; a received message with more is discarded.
pub const MAX_HEADERS: usize = 128;

/// Longest ActionID, in bytes.
pub const MAX_ACTION_ID_BYTES: usize = 64;

/// Longest channel, in bytes (Asterisk accepts 255; a callback never needs
/// that much).
pub const MAX_CHANNEL_BYTES: usize = 200;

/// Longest context or extension, in bytes (`AST_MAX_CONTEXT` and
/// `AST_MAX_EXTENSION` are 80, NUL included).
pub const MAX_DIALPLAN_NAME_BYTES: usize = 79;

/// Longest caller-id name, in bytes.
pub const MAX_CALLERID_NAME_BYTES: usize = 80;

/// Longest account code, in bytes.
pub const MAX_ACCOUNT_BYTES: usize = 80;

/// Longest variable name, in bytes.
pub const MAX_VAR_NAME_BYTES: usize = 64;

/// Longest variable value, in bytes.
pub const MAX_VAR_VALUE_BYTES: usize = 512;

/// Most `Variable:` lines in one Originate.
pub const MAX_VARS: usize = 32;

/// Shortest `Timeout` (ring time of the dialled leg), in milliseconds.
pub const MIN_TIMEOUT_MS: u64 = 1_000;

/// Longest `Timeout`, in milliseconds (one hour).
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// Channel technologies a callback may use.
pub use crate::channel::CHANNEL_TECHS;

/// Where and how to reach Asterisk's manager interface.
///
/// `Debug` shows the secret as `<redacted>`; it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct AmiConfig {
    /// Host name or address of Asterisk.
    pub host: String,
    /// AMI port, [`DEFAULT_PORT`] by default.
    pub port: u16,
    /// The `manager.conf` user (needs `read = call`, `write = originate`).
    pub username: String,
    /// Its secret. Never logged.
    pub secret: String,
    /// Bound on the TCP connect, and then on the banner.
    pub connect_timeout: Duration,
    /// Bound on each reply: the login's response, the Originate's
    /// immediate response, a liveness ping's; and on each write.
    pub response_timeout: Duration,
}

impl AmiConfig {
    /// A configuration with the default port (5038), a 5 s connect timeout
    /// and a 10 s response timeout.
    pub fn new(
        host: impl Into<String>,
        username: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port: DEFAULT_PORT,
            username: username.into(),
            secret: secret.into(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for AmiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmiConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

/// The caller id the dialled leg shows: `CallerID: "name" <number>`, or
/// `CallerID: <number>` when the name is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    /// Printable text (UTF-8 allowed), at most [`MAX_CALLERID_NAME_BYTES`]
    /// bytes, without `"`, `<`, `>`, `\`, `$`; may be empty.
    pub name: String,
    /// `^\+?[0-9]{3,20}$`.
    pub number: String,
}

/// One asynchronous Originate: Asterisk dials [`channel`](Self::channel) and,
/// when it answers, sends it to `context`/`exten`/`priority`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// Unique per attempt (the caller's idempotency key):
    /// `^[A-Za-z0-9._:-]{1,64}$`. The `OriginateResponse` event is matched to
    /// this call by it, and it is broadcast to every AMI session: make it
    /// unique across everything that originates on this Asterisk.
    pub action_id: String,
    /// The leg Asterisk dials first, `Tech/resource`: `Local/201@from-internal/n`,
    /// `PJSIP/201`, `PJSIP/79161234567@trunk`, `DAHDI/g1/79161234567`,
    /// `IAX2/provider/79161234567`. Technologies: [`CHANNEL_TECHS`]. `Local`
    /// takes exactly `exten@context`, optionally followed by `/n`.
    pub channel: String,
    /// Dialplan context the answered channel enters:
    /// `^[A-Za-z0-9_+.-]{1,79}$`.
    pub context: String,
    /// Extension in [`context`](Self::context), same alphabet.
    pub exten: String,
    /// Priority, at least 1.
    pub priority: u32,
    /// How long the dialled leg may ring, in milliseconds:
    /// [`MIN_TIMEOUT_MS`]`..=`[`MAX_TIMEOUT_MS`].
    pub timeout_ms: u64,
    /// Caller id shown on the dialled leg.
    pub caller_id: Option<CallerId>,
    /// Channel variables, one `Variable: NAME=value` line each, in order.
    /// Names `^[A-Z][A-Z0-9_]{0,63}$`, unique; values see the
    /// [module documentation](self).
    pub variables: Vec<(String, String)>,
    /// Account code (`^[A-Za-z0-9_.:-]{1,80}$`).
    pub account: Option<String>,
}

/// What Asterisk reported in `Event: OriginateResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginateOutcome {
    /// `Response: Success` (the dialled leg answered), else `Failure`.
    pub response_success: bool,
    /// `Reason`: 0 failure, 1 hangup, 3 ringing with no answer (the Timeout
    /// included), 4 answered, 5 busy, 8 congestion.
    pub reason: u8,
    /// [`reason_text`] of [`reason`](Self::reason).
    pub reason_text: &'static str,
    /// `Channel`: the created channel (`Local/201@from-internal-0000001a;1`)
    /// on success, the requested one on failure.
    pub channel: String,
    /// `Uniqueid` of the created channel; `None` when Asterisk reports
    /// `<unknown>` (every failure) or nothing.
    pub uniqueid: Option<String>,
}

/// The name of an `OriginateResponse` `Reason` (Asterisk's `AST_CONTROL_*`
/// codes, `main/pbx.c`): `failure` (0), `hangup` (1), `ringing-no-answer`
/// (3), `answered` (4), `busy` (5), `congestion` (8), else `unknown`.
pub fn reason_text(reason: u8) -> &'static str {
    match reason {
        0 => "failure",
        1 => "hangup",
        3 => "ringing-no-answer",
        4 => "answered",
        5 => "busy",
        8 => "congestion",
        _ => "unknown",
    }
}

/// The field an [`AmiError::Invalid`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// [`Originate::action_id`].
    ActionId,
    /// [`Originate::channel`].
    Channel,
    /// [`Originate::context`].
    Context,
    /// [`Originate::exten`].
    Exten,
    /// [`Originate::priority`].
    Priority,
    /// [`Originate::timeout_ms`].
    Timeout,
    /// [`CallerId::name`].
    CallerIdName,
    /// [`CallerId::number`].
    CallerIdNum,
    /// [`Originate::variables`] as a whole (too many).
    Variables,
    /// The name of the variable at this index of [`Originate::variables`].
    VarName(usize),
    /// The value of the variable with this (valid) name.
    VarValue(String),
    /// [`Originate::account`].
    Account,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ActionId => f.write_str("ActionID"),
            Self::Channel => f.write_str("channel"),
            Self::Context => f.write_str("context"),
            Self::Exten => f.write_str("extension"),
            Self::Priority => f.write_str("priority"),
            Self::Timeout => f.write_str("timeout"),
            Self::CallerIdName => f.write_str("caller-id name"),
            Self::CallerIdNum => f.write_str("caller-id number"),
            Self::Variables => f.write_str("variables"),
            Self::VarName(i) => write!(f, "name of variable #{i}"),
            Self::VarValue(name) => write!(f, "value of variable {name}"),
            Self::Account => f.write_str("account"),
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
    /// A control character (CR, LF, NUL, TAB, DEL, C1, U+2028/U+2029).
    ControlChar(char),
    /// A leading or trailing blank (Asterisk trims them).
    Blank,
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
    /// An Originate with this ActionID is still waiting for its response
    /// or outcome on the client's current connection.
    InFlight,
    /// Too many items.
    TooMany {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The rendered line would be longer than [`MAX_LINE_BYTES`].
    LineTooLong {
        /// Its length in bytes, `\r\n` included.
        len: usize,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { len, max } => write!(f, "is {len} bytes long (at most {max})"),
            Self::ControlChar(c) => write!(f, "contains the control character {c:?}"),
            Self::Blank => f.write_str("has a leading or trailing blank"),
            Self::ForbiddenChar(c) => write!(f, "contains the forbidden character {c:?}"),
            Self::Pattern(p) => write!(f, "does not match {p}"),
            Self::FunctionWrite => f.write_str("ends in `)` (a dialplan function write)"),
            Self::OutOfRange { value, min, max } => {
                write!(f, "is {value}, outside {min}..={max}")
            }
            Self::Duplicate => f.write_str("is set twice"),
            Self::InFlight => f.write_str("is already in flight on this client"),
            Self::TooMany { count, max } => write!(f, "has {count} items (at most {max})"),
            Self::LineTooLong { len } => {
                write!(f, "makes a {len}-byte line (at most {MAX_LINE_BYTES})")
            }
        }
    }
}

/// Everything [`AmiClient::originate`] and [`Queued::outcome`] can fail
/// with, in the classes the action worker must tell apart.
///
/// Only [`InDoubt`](Self::InDoubt) and [`OutcomeLost`](Self::OutcomeLost)
/// mean a call may exist; see [`nothing_queued`](Self::nothing_queued).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmiError {
    /// Could not connect, or the banner, the login's response or a liveness
    /// ping's never came (refused, timed out, closed, not Asterisk), or the
    /// connection failed while the Originate was being written: Asterisk
    /// acts on an action only once its closing empty line has arrived, and
    /// the connection is closed at once so nothing can complete it.
    /// **Nothing was queued**: safe to retry later. After a failure the
    /// client waits (1 s, doubling up to 60 s) before it connects again;
    /// calls meanwhile fail at once with this error.
    #[error("AMI connection failed (nothing was sent): {0}")]
    Connect(String),

    /// Asterisk refused the login (`Response: Error`, `Message:
    /// Authentication failed`), or the configured username or secret cannot
    /// be sent. A permanent configuration problem; nothing was sent. The
    /// client tries to log in again only after 30 s (doubling up to 10 min);
    /// calls meanwhile fail at once with this error.
    #[error("AMI login refused (nothing was sent): {0}")]
    Login(String),

    /// Asterisk answered the Originate with `Response: Error`: nothing was
    /// queued. The message says why (`Extension does not exist.`,
    /// `Permission denied`, ...).
    #[error("Originate refused by Asterisk (nothing queued): {0}")]
    Refused(String),

    /// The connection dropped, or no response came in time, **after** the
    /// Originate was written and before its response: Asterisk may have
    /// queued the call. Must NOT be resent blindly; reconcile later (CDR).
    #[error("Originate in doubt (it may have been queued): {0}")]
    InDoubt(String),

    /// A field was refused by validation; nothing was sent.
    #[error("Originate rejected: {field} {reason}")]
    Invalid {
        /// The offending field.
        field: Field,
        /// Why.
        reason: Reason,
    },

    /// The Originate was queued, but its `OriginateResponse` did not arrive
    /// (the connection dropped, the deadline passed, or the event could not
    /// be read): the call happens or not. Reconcile later from the CDR.
    #[error("Originate queued, outcome unknown: {0}")]
    OutcomeLost(String),
}

impl AmiError {
    /// Whether Asterisk certainly did not queue the Originate
    /// ([`Connect`](Self::Connect), [`Login`](Self::Login),
    /// [`Refused`](Self::Refused), [`Invalid`](Self::Invalid)): sending it
    /// again cannot place the call twice.
    pub fn nothing_queued(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Login(_) | Self::Refused(_) | Self::Invalid { .. }
        )
    }

    /// Whether retrying the same Originate later may succeed without a
    /// change of configuration or input (only [`Connect`](Self::Connect)).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

fn invalid(field: Field, reason: Reason) -> AmiError {
    AmiError::Invalid { field, reason }
}
