//! One SMS through one gateway, sent exactly as that gateway wants it, with an
//! answer that tells the caller precisely whether the message may have left.
//!
//! # Gateways
//!
//! | [`Gateway`] | request | reconcile after a crash |
//! |---|---|---|
//! | [`Folder`](Gateway::Folder) | one file `<dir>/<id>.sms` ([`FolderConfig`]) | the file exists |
//! | [`Kannel`](Gateway::Kannel) | `GET /cgi-bin/sendsms?…` ([`KannelConfig`]) | cannot ask: `Unknown` |
//! | [`SmsRu`](Gateway::SmsRu) | `POST sms/send`, `json=1` ([`SmsRuConfig`]) | cannot ask: `Unknown` |
//! | [`Smsc`](Gateway::Smsc) | `POST send.php`, `fmt=3`, our `id` ([`SmscConfig`]) | `status.php` by our id |
//! | [`Http`](Gateway::Http) | a request template ([`HttpConfig`]) | cannot ask: `Unknown` |
//!
//! Each gateway's module ([`folder`], [`kannel`], [`smsru`], [`smsc`],
//! [`http`]) documents its request and its reply table, as implemented.
//!
//! # What an answer means
//!
//! * `Ok(`[`Accepted`]`)`: the gateway took the message (a 2xx means
//!   "accepted", never "delivered"), or found it already taken
//!   ([`Accepted::already`]).
//! * [`SmsError::Invalid`]: refused before anything was sent.
//! * [`SmsError::Unavailable`]: **nothing** was sent (no connection could be
//!   made, or the gateway said "temporarily unavailable, nothing done"); the
//!   only error [`SmsError::is_retryable`] says yes to. Retry with backoff of
//!   at least [`MIN_RETRY_DELAY`] (SMSC.ru blocks the address of a client
//!   that retries storms).
//! * [`SmsError::Rejected`]: the gateway refused this message for good (bad
//!   number, no funds, bad credentials, 4xx): a dead letter.
//! * [`SmsError::InDoubt`]: the request left and no clear answer came back
//!   (timeout or connection lost after sending, 5xx, an unparseable reply).
//!   The message **may** have been sent: never resend it blindly.
//!
//! ## Before or after sending
//!
//! The HTTP client (`ureq` 3, blocking) watches the connection: until the
//! first byte of the request is handed to it, any failure — DNS, a refused
//! or unreachable connection, the resolve or connect timeout, a TLS
//! handshake failure — means nothing was sent: `Unavailable`. After that,
//! any failure (reset, EOF, a send or receive timeout, a malformed reply) is
//! `InDoubt`. Each phase (resolve, connect with TLS, send, wait for the
//! reply, read it) is limited by the gateway's `timeout`, the whole exchange
//! by three times that. Every exchange uses a fresh connection (no pool: a
//! stale pooled connection would blur the line), follows no redirect and
//! ignores `HTTP(S)_PROXY`.
//!
//! # Injection
//!
//! Numbers must match `^\+?[0-9]{3,20}$` ([`check_number`]); senders are
//! `[A-Za-z0-9 ._-]{1,11}` (no blank at either end) or `^\+?[0-9]{3,15}$`
//! ([`check_sender`]); ids are 1 to [`MAX_ID_BYTES`] bytes without control
//! characters. Anything else is rejected ([`SmsError::Invalid`]), never
//! cleaned. The text is free (any Unicode but NUL) and only ever travels
//! %XX-encoded (query strings, form bodies: every byte outside
//! `[A-Za-z0-9-._~]`) or JSON-escaped: nothing a caller writes can add a
//! parameter, a header or a line.
//!
//! # Length
//!
//! [`parts`] counts the SMS a text needs: GSM 03.38 texts 160 characters in
//! one SMS, 153 per part when split; any other text is UCS-2, 70 UTF-16 units
//! in one, 67 per part. Each config's `max_parts` (default
//! [`DEFAULT_MAX_PARTS`]) refuses longer texts before sending.

pub mod folder;
pub mod http;
pub mod kannel;
pub mod smsc;
pub mod smsru;
#[cfg(test)]
mod tests;

pub use folder::FolderConfig;
pub use http::{HttpCharset, HttpConfig, HttpMethod};
pub use kannel::KannelConfig;
pub use smsc::{smsc_client_id, SmscConfig};
pub use smsru::SmsRuConfig;

use std::time::Duration;

/// Most SMS parts a text may take unless a config says otherwise.
pub const DEFAULT_MAX_PARTS: u32 = 6;

/// Default limit of each phase of an HTTP exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Shortest delay before retrying an [`SmsError::Unavailable`]: SMSC.ru
/// blocks the client's address (error 4) after frequent errors and refuses
/// an identical request within a minute (error 9).
pub const MIN_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Longest [`Accepted::answer`], in characters.
pub const MAX_ANSWER_CHARS: usize = 200;

/// Longest [`Sms::id`], in bytes.
pub const MAX_ID_BYTES: usize = 255;

/// Longest reply body read from a gateway, in bytes.
const MAX_REPLY_BYTES: u64 = 64 * 1024;

/// One SMS to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// The action id: unique and deterministic (the same message always has
    /// the same id). The folder's file name and SMSC.ru's client message id
    /// are derived from it. 1 to [`MAX_ID_BYTES`] bytes, no control
    /// characters.
    pub id: String,
    /// The recipient, `^\+?[0-9]{3,20}$` (calltrail stores E.164:
    /// `+79161234567`).
    pub to: String,
    /// The text, any Unicode but NUL, not blank; at most the config's
    /// `max_parts` SMS ([`parts`]).
    pub text: String,
    /// The sender name or number; `None` takes the config's default.
    pub sender: Option<String>,
}

/// The gateway took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The gateway's message id, when it gives one (Kannel does not).
    pub foreign_id: Option<String>,
    /// The gateway's reply on one line, at most [`MAX_ANSWER_CHARS`]
    /// characters.
    pub answer: String,
    /// Found already sent rather than sent now: the folder's file existed,
    /// SMSC.ru's status knew our id.
    pub already: bool,
}

/// Why an SMS was not (or may not have been) sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// Refused before sending: a number not `^\+?[0-9]{3,20}$`, a bad
    /// sender or id, an empty text, a text longer than the configured
    /// `max_parts`.
    #[error("SMS refused before sending: {reason}")]
    Invalid {
        /// What was wrong.
        reason: String,
    },
    /// Nothing was sent (connection refused, DNS, connect timeout, Kannel's
    /// 503, SMS.ru's 220, SMSC.ru's 4): safe to retry later.
    #[error("SMS not sent, gateway unavailable: {reason}")]
    Unavailable {
        /// What happened.
        reason: String,
    },
    /// The gateway refused this message for good (a 4xx, a bad number, no
    /// funds, bad credentials): a dead letter.
    #[error("SMS rejected by the gateway: {reason}")]
    Rejected {
        /// The gateway's reason.
        reason: String,
    },
    /// The request left and no clear answer came (a timeout after sending,
    /// a reset connection, a 5xx, an unparseable reply): the message may
    /// have been sent. Never resend it blindly.
    #[error("SMS may have been sent, no clear answer: {reason}")]
    InDoubt {
        /// What happened.
        reason: String,
    },
}

impl SmsError {
    /// Whether sending the same message again later is safe and may
    /// succeed: only for [`SmsError::Unavailable`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The reason, whatever the kind.
    pub fn reason(&self) -> &str {
        match self {
            Self::Invalid { reason }
            | Self::Unavailable { reason }
            | Self::Rejected { reason }
            | Self::InDoubt { reason } => reason,
        }
    }
}

/// What [`Gateway::reconcile`] found out about a message whose outcome was
/// never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The gateway has it ([`Accepted::already`] is true).
    Sent(Accepted),
    /// The gateway says it never got it: sending it now is safe.
    NotSent,
    /// No way to tell (the gateway cannot be asked by our id, or did not
    /// answer): treat as in doubt.
    Unknown(String),
}

/// A configured SMS gateway.
#[derive(Debug, Clone)]
pub enum Gateway {
    /// Files in a directory.
    Folder(FolderConfig),
    /// Kannel's smsbox `sendsms`.
    Kannel(KannelConfig),
    /// SMS.ru.
    SmsRu(SmsRuConfig),
    /// SMSC.ru.
    Smsc(SmscConfig),
    /// An HTTP request template.
    Http(HttpConfig),
}

impl Gateway {
    /// Sends `sms`. Blocking (file or network I/O): call it from a thread
    /// that may block (`tokio::task::spawn_blocking`).
    pub fn send(&self, sms: &Sms) -> Result<Accepted, SmsError> {
        match self {
            Self::Folder(c) => c.send(sms),
            Self::Kannel(c) => c.send(sms),
            Self::SmsRu(c) => c.send(sms),
            Self::Smsc(c) => c.send(sms),
            Self::Http(c) => c.send(sms),
        }
    }

    /// After a crash between sending and recording: did `sms` go out?
    /// Folder: the file exists. SMSC.ru: `status.php` by the client id given
    /// at send ([`smsc_client_id`]) and the number. The others cannot be
    /// asked by our id: [`Reconciled::Unknown`]. Blocking.
    pub fn reconcile(&self, sms: &Sms) -> Reconciled {
        match self {
            Self::Folder(c) => c.reconcile(sms),
            Self::Smsc(c) => c.reconcile(sms),
            Self::Kannel(_) | Self::SmsRu(_) | Self::Http(_) => Reconciled::Unknown(format!(
                "{} cannot be asked whether a message went out",
                self.name()
            )),
        }
    }

    /// `folder`, `kannel`, `smsru`, `smsc` or `http`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Folder(_) => "folder",
            Self::Kannel(_) => "kannel",
            Self::SmsRu(_) => "smsru",
            Self::Smsc(_) => "smsc",
            Self::Http(_) => "http",
        }
    }

    /// One line for logs and `check-config`: the gateway, where it sends
    /// (scheme, host, port and path only) and as whom. No secrets.
    pub fn describe(&self) -> String {
        match self {
            Self::Folder(c) => format!("folder {}", c.dir.display()),
            Self::Kannel(c) => format!(
                "kannel {} as {:?}{}",
                redact_url(&c.url),
                c.username,
                c.smsc
                    .as_deref()
                    .map(|s| format!(" via smsc {s:?}"))
                    .unwrap_or_default()
            ),
            Self::SmsRu(c) => format!("smsru {}", redact_url(&c.url)),
            Self::Smsc(c) => format!("smsc {} as {:?}", redact_url(&c.url), c.login),
            Self::Http(c) => format!("http {} {}", c.method.as_str(), redact_url(&c.url)),
        }
    }

    /// The configuration's problems, if any (URLs, default sender, limits,
    /// templates), as one message.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::Folder(c) => c.check(),
            Self::Kannel(c) => c.check(),
            Self::SmsRu(c) => c.check(),
            Self::Smsc(c) => c.check(),
            Self::Http(c) => c.check(),
        }
    }
}

// ---------------------------------------------------------------------------
// Validation shared by every gateway.

fn invalid(reason: impl Into<String>) -> SmsError {
    SmsError::Invalid {
        reason: reason.into(),
    }
}

/// Checks a recipient number: `^\+?[0-9]{3,20}$`.
pub fn check_number(number: &str) -> Result<(), SmsError> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "the number {number:?} is not ^\\+?[0-9]{{3,20}}$"
        )))
    }
}

/// Checks a sender: an alphanumeric name `[A-Za-z0-9 ._-]{1,11}` without a
/// blank at either end, or a number `^\+?[0-9]{3,15}$`.
pub fn check_sender(sender: &str) -> Result<(), SmsError> {
    let name = (1..=11).contains(&sender.len())
        && sender
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b'-'))
        && !sender.starts_with(' ')
        && !sender.ends_with(' ');
    let digits = sender.strip_prefix('+').unwrap_or(sender);
    let number = (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    if name || number {
        Ok(())
    } else {
        Err(invalid(format!(
            "the sender {sender:?} is neither up to 11 of [A-Za-z0-9 ._-] nor a number of 3 to 15 digits"
        )))
    }
}

/// Checks a message id: 1 to [`MAX_ID_BYTES`] bytes, no control character
/// (nor U+2028/U+2029).
pub fn check_id(id: &str) -> Result<(), SmsError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(invalid(format!(
            "the id is {} bytes long (1 to {MAX_ID_BYTES})",
            id.len()
        )));
    }
    if let Some(c) = id
        .chars()
        .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(invalid(format!(
            "the id contains the control character {c:?}"
        )));
    }
    Ok(())
}

/// Checks a text against `max_parts`: not blank, no NUL, at most
/// `max_parts` SMS.
pub fn check_text(text: &str, max_parts: u32) -> Result<(), SmsError> {
    if text.trim().is_empty() {
        return Err(invalid("the text is empty"));
    }
    if text.contains('\0') {
        return Err(invalid("the text contains NUL"));
    }
    let n = parts(text);
    if n > max_parts as usize {
        return Err(invalid(format!(
            "the text needs {n} SMS ({} {}), more than the {max_parts} allowed",
            if is_gsm7(text) {
                text.chars().count()
            } else {
                text.encode_utf16().count()
            },
            if is_gsm7(text) {
                "GSM-7 characters"
            } else {
                "UCS-2 units"
            },
        )));
    }
    Ok(())
}

/// Everything [`Gateway::send`] checks before sending; returns the sender to
/// use (`sms.sender`, else `default_sender`).
fn validate<'a>(
    sms: &'a Sms,
    max_parts: u32,
    default_sender: Option<&'a str>,
) -> Result<Option<&'a str>, SmsError> {
    check_id(&sms.id)?;
    check_number(&sms.to)?;
    check_text(&sms.text, max_parts)?;
    let sender = sms.sender.as_deref().or(default_sender);
    if let Some(s) = sender {
        check_sender(s)?;
    }
    Ok(sender)
}

/// Config checks shared by the HTTP gateways.
fn check_common(
    urls: &[(&str, &str)],
    sender: Option<&str>,
    max_parts: u32,
    timeout: Duration,
) -> Result<(), String> {
    for (what, url) in urls {
        check_url(url).map_err(|e| format!("{what}: {e}"))?;
    }
    if let Some(s) = sender {
        check_sender(s).map_err(|e| e.reason().to_string())?;
    }
    check_limits(max_parts, timeout)
}

fn check_limits(max_parts: u32, timeout: Duration) -> Result<(), String> {
    if max_parts == 0 {
        return Err("max_parts must be at least 1".into());
    }
    if timeout.is_zero() {
        return Err("the timeout must be more than 0".into());
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host, no blank, no fragment.
fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "{} is not an http:// or https:// URL",
            redact_url(url)
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains('#') {
        return Err(format!(
            "{} contains a blank, a control character or a #",
            redact_url(url)
        ));
    }
    match url.parse::<ureq::http::Uri>() {
        Ok(u) if u.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(format!("{} is not a valid URL", redact_url(url))),
    }
}

/// `scheme://host[:port]/path` of a URL: no user info, no query (either may
/// hold a secret).
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "<not a URL>".into(),
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let query = if end < rest.len() { "?…" } else { "" };
    let rest = &rest[..end];
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}{path}{query}")
}

// ---------------------------------------------------------------------------
// Length.

/// Whether every character of `text` is in the GSM 03.38 default alphabet's
/// basic table. The extension table (`^{}\[~]|€`, form feed) is left out on
/// purpose: its escapes are handled inconsistently by SMSCs, so such a text
/// goes as UCS-2 (more parts, never garbled).
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(is_gsm7_basic)
}

fn is_gsm7_basic(c: char) -> bool {
    matches!(c,
        'A'..='Z' | 'a'..='z' | '0'..='9'
        | '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r'
        | 'Å' | 'å' | 'Δ' | '_' | 'Φ' | 'Γ' | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ'
        | 'Æ' | 'æ' | 'ß' | 'É'
        | ' ' | '!' | '"' | '#' | '¤' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-'
        | '.' | '/' | ':' | ';' | '<' | '=' | '>' | '?'
        | '¡' | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à')
}

/// How many SMS `text` takes: GSM-7 ([`is_gsm7`]) 160 characters in one,
/// 153 per part of a longer text; otherwise UCS-2, 70 UTF-16 units in one,
/// 67 per part. An empty text counts as one. (A gateway that never splits a
/// surrogate pair may need one part more for texts full of emoji.)
pub fn parts(text: &str) -> usize {
    let (len, single, part) = if is_gsm7(text) {
        (text.chars().count(), 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    if len <= single {
        1
    } else {
        len.div_ceil(part)
    }
}

// ---------------------------------------------------------------------------
// Shared helpers.

/// The gateway's reply made one line of at most [`MAX_ANSWER_CHARS`]
/// characters (control characters become blanks, blanks collapse).
fn one_line(text: &str) -> String {
    crate::sanitize::header_text(text, MAX_ANSWER_CHARS)
}

/// Every byte outside RFC 3986's unreserved set `[A-Za-z0-9-._~]` is
/// %XX-encoded (so `+` is `%2B`, a blank `%20`, `&` `%26`, CR `%0D`).
const VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` %XX-encoded for a query string or a form body.
fn enc(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, VALUE).to_string()
}

/// Bytes %XX-encoded (a text transcoded to another charset).
fn enc_bytes(value: &[u8]) -> String {
    percent_encoding::percent_encode(value, VALUE).to_string()
}

/// `k=v&k=v…` with every key and value encoded by [`enc`].
fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&enc(k));
        out.push('=');
        out.push_str(&enc(v));
    }
    out
}

/// Serde helpers: `timeout_s` (whole or fractional seconds) and defaults.
mod de {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Secs {
        Whole(u64),
        Fraction(f64),
    }

    pub(super) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Secs::deserialize(d)? {
            Secs::Whole(s) => Ok(Duration::from_secs(s)),
            Secs::Fraction(f) if f.is_finite() && (0.0..=86_400.0).contains(&f) => {
                Ok(Duration::from_secs_f64(f))
            }
            Secs::Fraction(f) => Err(serde::de::Error::custom(format!(
                "{f} is not a number of seconds between 0 and 86400"
            ))),
        }
    }

    pub(super) fn timeout() -> Duration {
        super::DEFAULT_TIMEOUT
    }

    pub(super) fn max_parts() -> u32 {
        super::DEFAULT_MAX_PARTS
    }
}
