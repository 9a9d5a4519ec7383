//! Email sink: builds RFC 5322 messages with lettre and delivers them over
//! SMTP (plain, STARTTLS or implicit TLS) or into an outbox directory.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::SinkError;
use crate::outbox::Outbox;
use crate::sanitize::{header_text, id_token, MAX_DISPLAY_NAME_CHARS, MAX_SUBJECT_CHARS};

/// One email to deliver. Every text field may contain attacker-controlled
/// caller data; it is sanitized when the message is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// Deterministic action id: becomes the Message-ID
    /// (`<{sanitized id}@calltrail>`) and the outbox file name.
    pub id: String,
    /// Sender, `addr@host` or `Display Name <addr@host>`.
    pub from: String,
    /// Recipients, same syntax as `from`.
    pub to: Vec<String>,
    /// Subject (control characters are replaced, length bounded).
    pub subject: String,
    /// Plain-text body (sent as `text/plain; charset=utf-8`).
    pub text_body: String,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (trusted local relays only).
    None,
    /// Plain connection upgraded with a mandatory STARTTLS.
    StartTls,
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    fn label(self) -> &'static str {
        match self {
            Self::None => "plain",
            Self::StartTls => "starttls",
            Self::Tls => "tls",
        }
    }
}

/// SMTP relay settings.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Relay host name (also the name its TLS certificate must match).
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Connection security.
    pub tls: SmtpTls,
    /// AUTH user; `None` disables authentication.
    pub username: Option<String>,
    /// AUTH password (never logged).
    pub password: Option<String>,
    /// Upper bound for one whole send: connecting, the SMTP dialogue and
    /// DATA. (lettre itself only bounds the TCP connect; without this cap a
    /// server that stops answering would hang `send` forever.)
    pub timeout: Duration,
    /// Extra PEM root certificate(s) to trust, e.g. a test server's
    /// self-signed certificate. Added to the built-in roots.
    pub extra_root_cert_pem: Option<PathBuf>,
    /// Name sent in EHLO; defaults to the machine's host name.
    pub hello_name: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("extra_root_cert_pem", &self.extra_root_cert_pem)
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

/// Result of a successful [`Mailer::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Handed to the SMTP relay, or written to the outbox.
    Sent,
    /// Outbox only: `<id>.eml` already existed, nothing was written
    /// (a replay of an action that was already delivered).
    AlreadyInOutbox,
}

/// Where emails go.
#[derive(Debug)]
pub enum Mailer {
    /// An SMTP relay (pooled connections).
    Smtp(SmtpMailer),
    /// A directory of `.eml` files.
    Outbox(Outbox),
}

/// SMTP delivery: a pooled lettre transport.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    description: String,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("relay", &self.description)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Build an SMTP mailer. Does not connect (the first `send` does).
    ///
    /// Must be called inside a tokio runtime: the connection pool spawns its
    /// housekeeping task here.
    pub fn smtp(cfg: &SmtpConfig) -> Result<Self, SinkError> {
        let transport = smtp_transport(cfg)?;
        let description = format!("smtp://{}:{} ({})", cfg.host, cfg.port, cfg.tls.label());
        tracing::info!(relay = %description, auth = cfg.username.is_some(), "smtp mailer configured");
        Ok(Self::Smtp(SmtpMailer {
            transport,
            description,
            timeout: cfg.timeout,
        }))
    }

    /// Build an outbox mailer writing `<id>.eml` files into `dir` (created
    /// if missing).
    pub fn outbox(dir: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let outbox = Outbox::create(dir.into())?;
        tracing::info!(dir = %outbox.dir().display(), "outbox mailer configured");
        Ok(Self::Outbox(outbox))
    }

    /// Deliver one message.
    pub async fn send(&self, msg: &EmailMessage) -> Result<SendOutcome, SinkError> {
        let (token, message) = build_message(msg)?;
        match self {
            Self::Smtp(smtp) => {
                let response = tokio::time::timeout(smtp.timeout, smtp.transport.send(message))
                    .await
                    .map_err(|_| SinkError::SmtpTimeout(smtp.timeout))?
                    .map_err(SinkError::Smtp)?;
                tracing::info!(
                    id = %msg.id,
                    recipients = msg.to.len(),
                    relay = %smtp.description,
                    code = %response.code(),
                    "email sent"
                );
                Ok(SendOutcome::Sent)
            }
            Self::Outbox(outbox) => {
                let path = outbox.path_for(&token);
                let outcome = outbox.deliver(token, message.formatted()).await?;
                match outcome {
                    SendOutcome::Sent => {
                        tracing::info!(id = %msg.id, path = %path.display(), "email written to outbox");
                    }
                    SendOutcome::AlreadyInOutbox => {
                        tracing::info!(id = %msg.id, path = %path.display(), "email already in outbox, skipped");
                    }
                }
                Ok(outcome)
            }
        }
    }

    /// Human-readable destination for logs: `smtp://host:port (starttls)` or
    /// `outbox /path`. Never contains credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(smtp) => smtp.description.clone(),
            Self::Outbox(outbox) => format!("outbox {}", outbox.dir().display()),
        }
    }
}

fn smtp_transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, SinkError> {
    let config = |what: String| SinkError::Config(what);
    if cfg.host.trim().is_empty() || cfg.host.chars().any(|c| c.is_control() || c == ' ') {
        return Err(config(format!("invalid smtp host {:?}", cfg.host)));
    }
    if cfg.port == 0 {
        return Err(config("smtp port must not be 0".to_owned()));
    }
    if cfg.timeout.is_zero() {
        return Err(config("smtp timeout must be > 0".to_owned()));
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(config(
            "Mailer::smtp must be called inside a tokio runtime".to_owned(),
        ));
    }

    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
        .port(cfg.port)
        .timeout(Some(cfg.timeout));

    let tls = match cfg.tls {
        SmtpTls::None => {
            if cfg.extra_root_cert_pem.is_some() {
                tracing::warn!("smtp tls = none: extra_root_cert_pem is ignored");
            }
            Tls::None
        }
        SmtpTls::StartTls => Tls::Required(tls_parameters(cfg)?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters(cfg)?),
    };
    builder = builder.tls(tls);

    match (&cfg.username, &cfg.password) {
        (Some(user), password) => {
            if cfg.tls == SmtpTls::None {
                tracing::warn!(host = %cfg.host, "smtp credentials will be sent without TLS");
            }
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.clone().unwrap_or_default(),
            ));
        }
        (None, Some(_)) => {
            return Err(config("smtp password given without a username".to_owned()));
        }
        (None, None) => {}
    }

    if let Some(name) = &cfg.hello_name {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
        if !valid {
            return Err(config(format!("invalid smtp hello_name {name:?}")));
        }
        builder = builder.hello_name(ClientId::Domain(name.clone()));
    }
    Ok(builder.build())
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters, SinkError> {
    let mut params = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.extra_root_cert_pem {
        let pem = std::fs::read(path).map_err(|e| {
            SinkError::Config(format!(
                "cannot read smtp root certificate {}: {e}",
                path.display()
            ))
        })?;
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(SinkError::Config(format!(
                "{} contains no PEM certificate",
                path.display()
            )));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            SinkError::Config(format!(
                "invalid smtp root certificate {}: {e}",
                path.display()
            ))
        })?;
        params = params.add_root_certificate(cert);
    }
    params
        .build()
        .map_err(|e| SinkError::Config(format!("smtp tls setup: {e}")))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): tells mail systems not to
/// send vacation replies or bounces loops to an automated sender.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Parse an address, keeping a sanitized display name (control characters
/// replaced, length bounded).
fn mailbox(raw: &str) -> Result<Mailbox, SinkError> {
    // Control characters are never valid in an address; in a display name
    // they are neutralized instead of failing the whole message.
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let parsed: Mailbox = cleaned
        .trim()
        .parse()
        .map_err(|source| SinkError::InvalidAddress {
            address: raw.to_owned(),
            source,
        })?;
    let name = parsed
        .name
        .map(|n| header_text(&n, MAX_DISPLAY_NAME_CHARS))
        .filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, parsed.email))
}

/// Body text: CRLF/CR normalized to LF (lettre emits CRLF), control
/// characters other than TAB and LF dropped.
fn body_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Build the lettre message; returns it with the sanitized id token.
pub(crate) fn build_message(msg: &EmailMessage) -> Result<(String, Message), SinkError> {
    let token = id_token(&msg.id);
    let mut builder = Message::builder()
        .from(mailbox(&msg.from)?)
        .subject(header_text(&msg.subject, MAX_SUBJECT_CHARS))
        .message_id(Some(format!("<{token}@calltrail>")))
        .date_now()
        .header(AutoSubmitted)
        .header(ContentType::TEXT_PLAIN);
    for to in &msg.to {
        builder = builder.to(mailbox(to)?);
    }
    let message = builder
        .body(body_text(&msg.text_body))
        .map_err(SinkError::EmailBuild)?;
    Ok((token, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EmailMessage {
        EmailMessage {
            id: "call-42/email#1".to_owned(),
            from: "CallTrail <calltrail@example.com>".to_owned(),
            to: vec![
                "ops@example.com".to_owned(),
                "Иван Петров <ivan@example.ru>".to_owned(),
            ],
            subject: "Пропущенный звонок от +7 900 000-00-00".to_owned(),
            text_body: "Звонок\r\nот Иван\rконец\n.\n".to_owned(),
        }
    }

    fn render(msg: &EmailMessage) -> String {
        let (_, m) = build_message(msg).expect("build");
        String::from_utf8(m.formatted()).expect("ascii headers")
    }

    fn headers(raw: &str) -> &str {
        raw.split("\r\n\r\n").next().expect("headers")
    }

    #[test]
    fn builds_expected_headers() {
        let raw = render(&sample());
        let h = headers(&raw);
        let token = id_token("call-42/email#1");
        assert!(
            h.contains(&format!("Message-ID: <{token}@calltrail>")),
            "{h}"
        );
        assert!(h.contains("From: CallTrail <calltrail@example.com>"), "{h}");
        assert!(h.contains("Content-Type: text/plain; charset=utf-8"), "{h}");
        assert!(h.contains("Auto-Submitted: auto-generated"), "{h}");
        assert!(h.contains("Date: "), "{h}");
        // Non-ASCII subject and display name are RFC 2047 encoded.
        assert!(h.contains("Subject: =?utf-8?"), "{h}");
        assert!(h.contains("<ivan@example.ru>"), "{h}");
        assert!(h.is_ascii(), "{h}");
        let (_, m) = build_message(&sample()).expect("build");
        assert_eq!(m.envelope().to().len(), 2);
    }

    #[test]
    fn subject_and_names_cannot_inject_headers() {
        let mut msg = sample();
        msg.subject = "hi\r\nBcc: victim@evil.example\r\n\r\nbody".to_owned();
        msg.from = "\"Evil\r\nBcc: x@evil.example\" <calltrail@example.com>".to_owned();
        msg.to = vec!["\"Ив\nан\" <ivan@example.ru>".to_owned()];
        let raw = render(&msg);
        let h = headers(&raw);
        for line in h.split("\r\n") {
            assert!(!line.to_ascii_lowercase().starts_with("bcc:"), "{h}");
        }
        assert!(!raw.contains('\0'));
        assert!(
            h.contains("Subject: hi Bcc: victim@evil.example body"),
            "{h}"
        );
        // Only From, To, Subject, Message-ID, Date, Auto-Submitted,
        // Content-Type, Content-Transfer-Encoding.
        assert_eq!(
            h.split("\r\n").filter(|l| !l.starts_with(' ')).count(),
            8,
            "{h}"
        );
    }

    #[test]
    fn body_line_endings_are_normalized() {
        assert_eq!(body_text("a\r\nb\rc\nd\0e\tf"), "a\nb\nc\nde\tf");
        let raw = render(&sample());
        assert!(!raw.contains("\r\r"));
    }

    #[test]
    fn invalid_addresses_are_typed_permanent_errors() {
        for bad in [
            "",
            "not-an-address",
            "a@b@c",
            "x <y>",
            "ivan@example.ru\r\nBcc: a@b",
        ] {
            let mut msg = sample();
            msg.to = vec![bad.to_owned()];
            let err = build_message(&msg).expect_err(bad);
            assert!(
                matches!(err, SinkError::InvalidAddress { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(!err.is_transient());
        }
        let mut msg = sample();
        msg.from = "nope".to_owned();
        assert!(matches!(
            build_message(&msg),
            Err(SinkError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn no_recipients_is_a_build_error() {
        let mut msg = sample();
        msg.to.clear();
        let err = build_message(&msg).expect_err("no recipients");
        assert!(matches!(err, SinkError::EmailBuild(_)), "{err:?}");
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn outbox_mailer_is_idempotent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("outbox");
        let mailer = Mailer::outbox(&dir).expect("outbox");
        assert_eq!(mailer.describe(), format!("outbox {}", dir.display()));
        let msg = sample();
        assert_eq!(mailer.send(&msg).await.expect("send"), SendOutcome::Sent);
        let mut again = msg.clone();
        again.subject = "different".to_owned();
        assert_eq!(
            mailer.send(&again).await.expect("send"),
            SendOutcome::AlreadyInOutbox
        );
        let file = dir.join(format!("{}.eml", id_token(&msg.id)));
        let raw = std::fs::read_to_string(&file).expect("eml");
        assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
        assert!(!raw.contains("different"));
        assert_eq!(std::fs::read_dir(&dir).expect("ls").count(), 1);
    }

    #[tokio::test]
    async fn smtp_config_validation_and_describe() {
        let cfg = SmtpConfig {
            host: "mail.example.com".to_owned(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: Some("alerts".to_owned()),
            password: Some("s3cret".to_owned()),
            timeout: Duration::from_secs(10),
            extra_root_cert_pem: None,
            hello_name: Some("pbx1.example.com".to_owned()),
        };
        let mailer = Mailer::smtp(&cfg).expect("smtp");
        assert_eq!(mailer.describe(), "smtp://mail.example.com:587 (starttls)");
        assert!(!format!("{cfg:?}").contains("s3cret"));
        assert!(!format!("{mailer:?}").contains("s3cret"));

        let bad = [
            SmtpConfig {
                host: String::new(),
                ..cfg.clone()
            },
            SmtpConfig {
                port: 0,
                ..cfg.clone()
            },
            SmtpConfig {
                username: None,
                ..cfg.clone()
            },
            SmtpConfig {
                hello_name: Some("a b\r\n".to_owned()),
                ..cfg.clone()
            },
            SmtpConfig {
                extra_root_cert_pem: Some(PathBuf::from("/nonexistent/ca.pem")),
                ..cfg.clone()
            },
        ];
        for c in bad {
            let err = Mailer::smtp(&c).expect_err("invalid config");
            assert!(matches!(err, SinkError::Config(_)), "{err:?}");
        }
    }

    #[test]
    fn smtp_outside_runtime_is_an_error_not_a_panic() {
        let cfg = SmtpConfig {
            host: "localhost".to_owned(),
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: None,
            timeout: Duration::from_secs(1),
            extra_root_cert_pem: None,
            hello_name: None,
        };
        assert!(matches!(Mailer::smtp(&cfg), Err(SinkError::Config(_))));
    }
}
