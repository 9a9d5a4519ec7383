//! HTTP for every gateway, and the generic "HTTP template" gateway.
//!
//! # The exchange (all HTTP gateways)
//!
//! Each request is made on a fresh connection (no pool, no
//! redirect followed, no proxy from the environment) and tells a failure
//! before the request was written ([`SmsError::Unavailable`]) from one after
//! ([`SmsError::InDoubt`]) by watching the connection itself: the agent's
//! connector chain is ureq's default one (TCP, then rustls for `https`)
//! followed by a pass-through transport that notes the first time the HTTP
//! layer hands it bytes to write. DNS failures, refused or unreachable
//! connections, connect timeouts and TLS handshake failures all happen
//! before that (the handshake runs inside the TLS connector, below the
//! pass-through): Unavailable, whatever error type ureq reports them with
//! (a failed lookup, for one, is a plain `Io` error). Once the first byte
//! was handed over, any failure (a reset, EOF, a send or receive timeout,
//! a malformed reply) is InDoubt — even a write that failed at once, since
//! nothing tells how much of it left.
//!
//! The pass-through uses `ureq::unversioned::transport`, which ureq does
//! not cover by semver: a ureq update that changes it breaks the build
//! here, loudly.
//!
//! Statuses every gateway shares: 408 and 429 (the server
//! did nothing: too slow a request, too many requests) → Unavailable; other
//! 4xx → Rejected; anything else not handled by the gateway (1xx, 3xx — not
//! followed, and a POST may have been processed before a 303 —, 5xx) →
//! InDoubt.
//!
//! # The template gateway ([`HttpConfig`])
//!
//! `method` (`GET` or `POST`), `url` and an optional `body` are templates
//! with the placeholders `{to}` (the number as given, `+` included),
//! `{to_digits}` (without `+`), `{text}`, `{sender}` (empty without one),
//! `{id}` and `{secret}` (the config's [`secret`](HttpConfig::secret), which
//! the binary fills from the environment or a file). Each is encoded for its
//! place:
//!
//! * in the URL and in a form body (`application/x-www-form-urlencoded`, the
//!   default with a body): %XX-encoded, every byte outside `[A-Za-z0-9-._~]`;
//! * in a JSON body (a `content_type` containing `json`): JSON-string
//!   escaped — so it must sit inside quotes, which [`HttpConfig::check`]
//!   verifies;
//! * in a header value only `{id}` (%XX-encoded) and `{secret}` (as is; it
//!   must hold no control character) are allowed.
//!
//! A `{` not followed by `name}` is literal, so JSON braces need no escape.
//! With `charset = "windows-1251"` the text is transcoded before being
//! %XX-encoded (a character windows-1251 lacks makes the SMS
//! [`SmsError::Invalid`]); a JSON body is always UTF-8, so it refuses that
//! charset if it holds `{text}`.
//!
//! The reply, in this order: `permfail_regex` matches the body → Rejected;
//! `tempfail_regex` matches → Unavailable; the status is in `success_status`
//! (default 200, 201, 202) → Accepted, provided `success_regex` (when set)
//! matches, else InDoubt; otherwise the shared status rules above. `foreign_id_regex`'s
//! first capture group is the gateway's message id. Patterns use the
//! `regex` crate's syntax and see the body as (lossy) UTF-8.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
};

use super::{
    check_common, de, enc, enc_bytes, one_line, redact_url, validate, Accepted, SmsError,
    MAX_REPLY_BYTES,
};

// ---------------------------------------------------------------------------
// The exchange.

/// One request of a gateway.
pub(super) struct Request<'a> {
    /// The gateway's name, for reasons.
    pub gateway: &'static str,
    pub method: HttpMethod,
    /// The final URL, every value already encoded.
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    /// Content type and bytes (POST).
    pub body: Option<(&'a str, &'a [u8])>,
    pub timeout: Duration,
}

/// What the gateway answered.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    /// The body as (lossy) UTF-8, or why it could not be read.
    pub body: Result<String, String>,
}

impl Reply {
    /// The body on one line, or the status alone.
    pub fn answer(&self) -> String {
        match &self.body {
            Ok(b) if !b.trim().is_empty() => one_line(b),
            Ok(_) => format!("HTTP {} (empty body)", self.status),
            Err(e) => one_line(&format!("HTTP {} (body unreadable: {e})", self.status)),
        }
    }

    /// `HTTP <status>: <answer>` for reasons.
    pub fn describe(&self) -> String {
        match &self.body {
            Ok(b) if !b.trim().is_empty() => format!("HTTP {}: {}", self.status, one_line(b)),
            _ => self.answer(),
        }
    }
}

fn agent(timeout: Duration, sent: &Arc<AtomicBool>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .user_agent(concat!("calltrail/", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_send_body(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .timeout_global(Some(timeout.saturating_mul(3)))
        .build();
    let connector = DefaultConnector::new().chain(WatchWrites(sent.clone()));
    ureq::Agent::with_parts(config, connector, DefaultResolver::default())
}

/// The last connector of the chain: wraps the connection (TLS already
/// negotiated) in [`Watched`].
#[derive(Debug)]
struct WatchWrites(Arc<AtomicBool>);

impl Connector<Box<dyn Transport>> for WatchWrites {
    type Out = Watched;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Watched>, ureq::Error> {
        Ok(chained.map(|inner| Watched {
            inner,
            sent: self.0.clone(),
        }))
    }
}

/// A connection that notes when the HTTP layer first writes to it.
#[derive(Debug)]
struct Watched {
    inner: Box<dyn Transport>,
    sent: Arc<AtomicBool>,
}

impl Transport for Watched {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if amount > 0 {
            self.sent.store(true, Ordering::SeqCst);
        }
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// Makes one request; see the module documentation for the classification.
pub(super) fn exchange(req: &Request<'_>) -> Result<Reply, SmsError> {
    let sent = Arc::new(AtomicBool::new(false));
    let agent = agent(req.timeout, &sent);
    let result = match (req.method, req.body) {
        (HttpMethod::Get, _) => {
            let mut r = agent.get(req.url);
            for (k, v) in req.headers {
                r = r.header(k.as_str(), v.as_str());
            }
            r.call()
        }
        (HttpMethod::Post, body) => {
            let mut r = agent.post(req.url);
            for (k, v) in req.headers {
                r = r.header(k.as_str(), v.as_str());
            }
            match body {
                Some((content_type, bytes)) => r.content_type(content_type).send(bytes),
                None => r.send_empty(),
            }
        }
    };
    let mut response = result.map_err(|e| transport_error(req, &e, sent.load(Ordering::SeqCst)))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_vec()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| e.to_string());
    Ok(Reply { status, body })
}

/// A ureq error before (`sent` false) or after the request was handed to
/// the connection.
fn transport_error(req: &Request<'_>, err: &ureq::Error, sent: bool) -> SmsError {
    // `BadUri` would print the URL, whose query may hold a password.
    let what = match err {
        ureq::Error::BadUri(_) => "the URL is not valid".to_string(),
        e => e.to_string(),
    };
    let target = redact_url(req.url);
    if sent {
        SmsError::InDoubt {
            reason: format!(
                "{}: {target}: {what} after the request was sent",
                req.gateway
            ),
        }
    } else {
        SmsError::Unavailable {
            reason: format!("{}: {target}: {what} (nothing sent)", req.gateway),
        }
    }
}

/// The classification of statuses a gateway has no rule of its own for.
pub(super) fn by_status(gateway: &str, reply: &Reply) -> SmsError {
    let reason = format!("{gateway}: {}", reply.describe());
    match reply.status {
        408 | 429 => SmsError::Unavailable {
            reason: format!("{reason} (the gateway did nothing)"),
        },
        400..=499 => SmsError::Rejected { reason },
        300..=399 => SmsError::InDoubt {
            reason: format!("{reason} (redirect not followed: check the URL)"),
        },
        _ => SmsError::InDoubt { reason },
    }
}

/// The JSON reply of a gateway whose answer is JSON, or InDoubt.
pub(super) fn json_body(gateway: &str, reply: &Reply) -> Result<serde_json::Value, SmsError> {
    let body = reply.body.as_ref().map_err(|e| SmsError::InDoubt {
        reason: format!(
            "{gateway}: HTTP {}: the reply could not be read: {e}",
            reply.status
        ),
    })?;
    serde_json::from_str(body).map_err(|_| SmsError::InDoubt {
        reason: format!("{gateway}: {} (not the JSON expected)", reply.describe()),
    })
}

// ---------------------------------------------------------------------------
// The template gateway.

/// The request method of an [`HttpConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum HttpMethod {
    /// No body; everything in the URL.
    #[serde(rename = "GET", alias = "get")]
    Get,
    /// With the `body` template, if any.
    #[default]
    #[serde(rename = "POST", alias = "post")]
    Post,
}

impl HttpMethod {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// The charset `{text}` is sent in by an [`HttpConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum HttpCharset {
    /// UTF-8.
    #[default]
    #[serde(rename = "utf-8", alias = "UTF-8", alias = "utf8")]
    Utf8,
    /// windows-1251 (Cyrillic), for the URL and form bodies only.
    #[serde(
        rename = "windows-1251",
        alias = "WINDOWS-1251",
        alias = "cp1251",
        alias = "CP1251"
    )]
    Windows1251,
}

/// The generic "HTTP template" gateway (`[sms.http]`). See the module
/// documentation for the templates and the reply rules.
///
/// `sender`, `secret`, `max_parts` and `timeout` are never read from the
/// `[sms.http]` table (`serde(skip)`): the binary sets them from `[sms]`
/// and from the environment or a file, so no secret sits in the config's
/// text.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `GET` or `POST` (default).
    #[serde(default)]
    pub method: HttpMethod,
    /// The URL template (`http://` or `https://`).
    pub url: String,
    /// The body template (POST only).
    #[serde(default)]
    pub body: Option<String>,
    /// Extra headers; values may hold `{id}` and `{secret}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body's content type: `application/x-www-form-urlencoded`
    /// (default) or one containing `json`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The charset of `{text}`.
    #[serde(default)]
    pub charset: HttpCharset,
    /// Statuses that mean "accepted" (default 200, 201, 202).
    #[serde(default = "default_success_status")]
    pub success_status: Vec<u16>,
    /// When set, an accepted status also needs the body to match.
    #[serde(default)]
    pub success_regex: Option<String>,
    /// The body matches: refused for good (checked first).
    #[serde(default)]
    pub permfail_regex: Option<String>,
    /// The body matches: not sent, retry later.
    #[serde(default)]
    pub tempfail_regex: Option<String>,
    /// Its first capture group is the gateway's message id.
    #[serde(default)]
    pub foreign_id_regex: Option<String>,
    /// The default sender (`{sender}` when the SMS has none).
    #[serde(skip)]
    pub sender: Option<String>,
    /// The value of `{secret}`.
    #[serde(skip)]
    pub secret: Option<String>,
    /// Most SMS parts a text may take.
    #[serde(skip, default = "de::max_parts")]
    pub max_parts: u32,
    /// Limit of each phase of the exchange.
    #[serde(skip, default = "de::timeout")]
    pub timeout: Duration,
}

fn default_success_status() -> Vec<u16> {
    vec![200, 201, 202]
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field(
                "body",
                &self.body.as_ref().map(|b| format!("<{} bytes>", b.len())),
            )
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("content_type", &self.content_type)
            .field("charset", &self.charset)
            .field("success_status", &self.success_status)
            .field("success_regex", &self.success_regex)
            .field("permfail_regex", &self.permfail_regex)
            .field("tempfail_regex", &self.tempfail_regex)
            .field("foreign_id_regex", &self.foreign_id_regex)
            .field("sender", &self.sender)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("max_parts", &self.max_parts)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ph {
    To,
    ToDigits,
    Text,
    Sender,
    Id,
    Secret,
}

/// A piece of a parsed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Lit(&'a str),
    Ph(Ph),
}

/// Where a template is rendered, which decides the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Url,
    Form,
    Json,
    Header,
}

/// Splits a template into literals and placeholders: `{name}` with `name`
/// in `[a-z_]+` is a placeholder (an unknown one is an error); any other
/// `{` is literal.
fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    let b = template.as_bytes();
    while i < b.len() {
        if b[i] == b'{' {
            let name_len = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase() || **c == b'_')
                .count();
            let close = i + 1 + name_len;
            if name_len > 0 && b.get(close) == Some(&b'}') {
                let name = &template[i + 1..close];
                let ph = match name {
                    "to" => Ph::To,
                    "to_digits" => Ph::ToDigits,
                    "text" => Ph::Text,
                    "sender" => Ph::Sender,
                    "id" => Ph::Id,
                    "secret" => Ph::Secret,
                    _ => {
                        return Err(format!(
                            "unknown placeholder {{{name}}} (known: {{to}}, {{to_digits}}, {{text}}, {{sender}}, {{id}}, {{secret}})"
                        ))
                    }
                };
                if lit_start < i {
                    out.push(Piece::Lit(&template[lit_start..i]));
                }
                out.push(Piece::Ph(ph));
                i = close + 1;
                lit_start = i;
                continue;
            }
        }
        i += 1;
    }
    if lit_start < b.len() {
        out.push(Piece::Lit(&template[lit_start..]));
    }
    Ok(out)
}

/// The values placeholders stand for.
struct Values<'a> {
    to: &'a str,
    to_digits: &'a str,
    text: &'a str,
    /// `text` in the configured charset, when it is not UTF-8.
    text_bytes: Option<Vec<u8>>,
    sender: &'a str,
    id: &'a str,
    secret: &'a str,
}

fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

fn render(pieces: &[Piece<'_>], v: &Values<'_>, place: Place) -> String {
    let mut out = String::new();
    for p in pieces {
        match *p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Ph(ph) => {
                let value = match ph {
                    Ph::To => v.to,
                    Ph::ToDigits => v.to_digits,
                    Ph::Text => v.text,
                    Ph::Sender => v.sender,
                    Ph::Id => v.id,
                    Ph::Secret => v.secret,
                };
                match (place, ph) {
                    (Place::Url | Place::Form, Ph::Text) => match &v.text_bytes {
                        Some(bytes) => out.push_str(&enc_bytes(bytes)),
                        None => out.push_str(&enc(value)),
                    },
                    (Place::Url | Place::Form, _) => out.push_str(&enc(value)),
                    (Place::Json, _) => out.push_str(&json_escape(value)),
                    (Place::Header, Ph::Secret) => out.push_str(value),
                    (Place::Header, _) => out.push_str(&enc(value)),
                }
            }
        }
    }
    out
}

/// The compiled form of an [`HttpConfig`].
struct Compiled<'a> {
    url: Vec<Piece<'a>>,
    body: Option<(Vec<Piece<'a>>, Place, String)>,
    headers: Vec<(&'a str, Vec<Piece<'a>>)>,
    success: Option<Regex>,
    permfail: Option<Regex>,
    tempfail: Option<Regex>,
    foreign_id: Option<Regex>,
    uses_secret: bool,
}

fn regex(what: &str, re: &Option<String>) -> Result<Option<Regex>, String> {
    re.as_deref()
        .map(|r| Regex::new(r).map_err(|e| format!("{what}: {e}")))
        .transpose()
}

/// Header names calltrail sets itself, or that would change the framing.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "content-type",
    "connection",
];

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl HttpConfig {
    /// A POST to `url` with defaults for everything else.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            method: HttpMethod::Post,
            url: url.into(),
            body: None,
            headers: BTreeMap::new(),
            content_type: None,
            charset: HttpCharset::Utf8,
            success_status: default_success_status(),
            success_regex: None,
            permfail_regex: None,
            tempfail_regex: None,
            foreign_id_regex: None,
            sender: None,
            secret: None,
            max_parts: super::DEFAULT_MAX_PARTS,
            timeout: super::DEFAULT_TIMEOUT,
        }
    }

    /// Validates the templates and the rest: unknown placeholders, bad
    /// patterns, a URL that is not `http(s)://host…`, a body with `GET`, an
    /// unsupported content type, a JSON body that is not JSON once filled in
    /// (placeholders outside strings), `{text}` in a JSON body with
    /// windows-1251, header names, values and placeholders, the statuses,
    /// the default sender, `max_parts` and `timeout`. Does not need the
    /// secret.
    pub fn check(&self) -> Result<(), String> {
        let c = self.compile()?;
        let sample = Values {
            to: "+79161234567",
            to_digits: "79161234567",
            text: "a\"\\}{&=%+\n",
            text_bytes: None,
            sender: "Sender",
            id: "id:1",
            secret: "s",
        };
        let url = render(&c.url, &sample, Place::Url);
        check_common(
            &[("url", &url)],
            self.sender.as_deref(),
            self.max_parts,
            self.timeout,
        )?;
        if let Some((pieces, place, _)) = &c.body {
            if *place == Place::Json {
                let body = render(pieces, &sample, Place::Json);
                if serde_json::from_str::<serde_json::Value>(&body).is_err() {
                    return Err(
                        "body: not JSON once filled in (placeholders must sit inside JSON strings)"
                            .into(),
                    );
                }
                if self.charset == HttpCharset::Windows1251 && pieces.contains(&Piece::Ph(Ph::Text))
                {
                    return Err("charset: a JSON body is UTF-8; windows-1251 applies to the URL and form bodies only".into());
                }
            }
        }
        if self.success_status.is_empty() {
            return Err("success_status: at least one status".into());
        }
        if let Some(s) = self
            .success_status
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            return Err(format!("success_status: {s} is not an HTTP status"));
        }
        if let Some(s) = &self.secret {
            if s.chars().any(char::is_control) {
                return Err("secret: contains a control character".into());
            }
        }
        Ok(())
    }

    fn compile(&self) -> Result<Compiled<'_>, String> {
        let url = parse(&self.url).map_err(|e| format!("url: {e}"))?;
        let body = match (&self.body, self.method) {
            (Some(_), HttpMethod::Get) => return Err("body: a GET request has no body".into()),
            (None, _) => None,
            (Some(b), HttpMethod::Post) => {
                let pieces = parse(b).map_err(|e| format!("body: {e}"))?;
                let (place, content_type) = match &self.content_type {
                    None => (Place::Form, "application/x-www-form-urlencoded".to_string()),
                    Some(ct) if ct.chars().any(char::is_control) => {
                        return Err("content_type: contains a control character".into())
                    }
                    Some(ct) if ct.to_ascii_lowercase().contains("json") => {
                        (Place::Json, ct.clone())
                    }
                    Some(ct)
                        if ct
                            .to_ascii_lowercase()
                            .starts_with("application/x-www-form-urlencoded") =>
                    {
                        (Place::Form, ct.clone())
                    }
                    Some(ct) => {
                        return Err(format!(
                            "content_type: {ct:?} is neither application/x-www-form-urlencoded nor JSON"
                        ))
                    }
                };
                Some((pieces, place, content_type))
            }
        };
        if self.content_type.is_some() && body.is_none() {
            return Err("content_type: given without a body".into());
        }
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            if !is_token(name) {
                return Err(format!("headers: {name:?} is not a header name"));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "headers: {name} is set by calltrail (use content_type for the body's type)"
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(format!(
                    "headers: the value of {name} contains a control character"
                ));
            }
            let pieces = parse(value).map_err(|e| format!("headers: {name}: {e}"))?;
            if pieces
                .iter()
                .any(|p| matches!(p, Piece::Ph(ph) if !matches!(ph, Ph::Id | Ph::Secret)))
            {
                return Err(format!(
                    "headers: {name}: only {{id}} and {{secret}} may be used in a header"
                ));
            }
            headers.push((name.as_str(), pieces));
        }
        let uses_secret = url.contains(&Piece::Ph(Ph::Secret))
            || body
                .as_ref()
                .is_some_and(|(p, _, _)| p.contains(&Piece::Ph(Ph::Secret)))
            || headers
                .iter()
                .any(|(_, p)| p.contains(&Piece::Ph(Ph::Secret)));
        let foreign_id = regex("foreign_id_regex", &self.foreign_id_regex)?;
        if foreign_id.as_ref().is_some_and(|r| r.captures_len() < 2) {
            return Err("foreign_id_regex: needs a capture group (the id)".into());
        }
        Ok(Compiled {
            url,
            body,
            headers,
            success: regex("success_regex", &self.success_regex)?,
            permfail: regex("permfail_regex", &self.permfail_regex)?,
            tempfail: regex("tempfail_regex", &self.tempfail_regex)?,
            foreign_id,
            uses_secret,
        })
    }

    pub(super) fn send(&self, sms: &super::Sms) -> Result<Accepted, SmsError> {
        let unusable = |e: String| SmsError::Unavailable {
            reason: format!("http: unusable configuration, nothing sent: {e}"),
        };
        self.check().map_err(unusable)?;
        let c = self.compile().map_err(unusable)?;
        if c.uses_secret && self.secret.is_none() {
            return Err(unusable(
                "the templates use {secret} and none is set".into(),
            ));
        }
        let sender = validate(sms, self.max_parts, self.sender.as_deref())?;
        let text_bytes = match self.charset {
            HttpCharset::Utf8 => None,
            HttpCharset::Windows1251 => {
                let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&sms.text);
                if unmappable {
                    return Err(SmsError::Invalid {
                        reason: "the text has characters windows-1251 cannot represent".into(),
                    });
                }
                Some(bytes.into_owned())
            }
        };
        let values = Values {
            to: &sms.to,
            to_digits: sms.to.strip_prefix('+').unwrap_or(&sms.to),
            text: &sms.text,
            text_bytes,
            sender: sender.unwrap_or(""),
            id: &sms.id,
            secret: self.secret.as_deref().unwrap_or(""),
        };
        let url = render(&c.url, &values, Place::Url);
        let headers: Vec<(String, String)> = c
            .headers
            .iter()
            .map(|(n, p)| (n.to_string(), render(p, &values, Place::Header)))
            .collect();
        let body = c
            .body
            .as_ref()
            .map(|(p, place, ct)| (ct.as_str(), render(p, &values, *place)));
        let reply = exchange(&Request {
            gateway: "http",
            method: self.method,
            url: &url,
            headers: &headers,
            body: body.as_ref().map(|(ct, b)| (*ct, b.as_bytes())),
            timeout: self.timeout,
        })?;
        self.classify(&c, &reply)
    }

    fn classify(&self, c: &Compiled<'_>, reply: &Reply) -> Result<Accepted, SmsError> {
        let body = reply.body.as_deref().ok();
        let matches = |re: &Option<Regex>| match (re, body) {
            (Some(re), Some(b)) => re.is_match(b),
            _ => false,
        };
        if matches(&c.permfail) {
            return Err(SmsError::Rejected {
                reason: format!("http: {} (permfail_regex)", reply.describe()),
            });
        }
        if matches(&c.tempfail) {
            return Err(SmsError::Unavailable {
                reason: format!("http: {} (tempfail_regex)", reply.describe()),
            });
        }
        if !self.success_status.contains(&reply.status) {
            return Err(by_status("http", reply));
        }
        if c.success.is_some() && !matches(&c.success) {
            return Err(SmsError::InDoubt {
                reason: format!(
                    "http: {} (an accepted status, but the body does not match success_regex)",
                    reply.describe()
                ),
            });
        }
        let foreign_id = match (&c.foreign_id, body) {
            (Some(re), Some(b)) => re
                .captures(b)
                .and_then(|cap| cap.get(1))
                .map(|m| one_line(m.as_str()))
                .filter(|s| !s.is_empty()),
            _ => None,
        };
        Ok(Accepted {
            foreign_id,
            answer: reply.answer(),
            already: false,
        })
    }
}
