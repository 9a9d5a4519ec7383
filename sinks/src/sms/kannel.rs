//! Kannel's smsbox `sendsms` interface (INTEGRATIONS.md §4.1, verified on a
//! live Kannel).
//!
//! The request is a `GET <url>?username=&password=&to=&text=[&from=][&smsc=]
//! [&coding=2&charset=UTF-8][&dlr-mask=&dlr-url=]`, every value
//! %XX-encoded (`+` in `to` is `%2B`: a bare `+` is a blank to Kannel, the
//! multi-recipient separator). A text Kannel's 7-bit path can carry goes
//! plain (charset UTF-8 is Kannel's default for 7 bits); any other gets
//! `coding=2&charset=UTF-8`, without which Cyrillic arrives as `??????`.
//! "Can carry" is the GSM 03.38 basic table less its Greek capitals: Kannel
//! converts 7-bit text through Latin-1, which lacks them \[inference from
//! its charset code\], so they go as UCS-2 (more parts, never garbled).
//!
//! `dlr_url` (optional) may hold `{id}`, replaced by the message id
//! hex-encoded (lowercase, two digits per UTF-8 byte): Kannel expands `%`
//! followed by a letter in a dlr-url (`%d` the DLR value, `%A` the SMSC's
//! reply …), so the id must bring no `%` of its own.
//!
//! | reply | result |
//! |---|---|
//! | 202 (`0: Accepted for delivery`, `3: Queued for later delivery`) | Accepted, `answer` = the body, no `foreign_id` (Kannel gives none) |
//! | 503 (`Temporal failure, try again later.`) | Unavailable |
//! | 408, 429 | Unavailable |
//! | other 4xx (403 `Authorization failed for sendsms`, 403 `Not routable. Do not try again.`, 400 `Number(s) has/have been denied…`, 400 `Sender missing and no global set, rejected`) | Rejected |
//! | anything else (200, 3xx, 500, 502 …) | InDoubt |
//!
//! Kannel cannot be asked about a message by our id: reconcile answers
//! `Unknown`.

use std::time::Duration;

use serde::Deserialize;

use super::http::{by_status, exchange, HttpMethod, Request};
use super::{check_common, de, form, is_gsm7_basic, redact_url, validate, Accepted, SmsError};

/// `[sms.kannel]`: Kannel's smsbox `sendsms`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KannelConfig {
    /// The `sendsms` URL (default `http://127.0.0.1:13013/cgi-bin/sendsms`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The sendsms-user's `username`.
    pub username: String,
    /// Its `password` (a secret).
    pub password: String,
    /// The default sender (`from`); Kannel's `global-sender` without one.
    #[serde(default)]
    pub from: Option<String>,
    /// Route through this SMSC (`smsc`, an `smsc-id`).
    #[serde(default)]
    pub smsc: Option<String>,
    /// Where Kannel reports delivery (`dlr-url`); `{id}` is the message id,
    /// hex-encoded.
    #[serde(default)]
    pub dlr_url: Option<String>,
    /// Which reports (`dlr-mask`, with `dlr_url`): 1 delivered, 2 not
    /// delivered, 4 queued on the SMSC, 8 delivered to the SMSC, 16 not
    /// delivered to the SMSC. Default 31 (all).
    #[serde(default = "default_dlr_mask")]
    pub dlr_mask: u8,
    /// Most SMS parts a text may take (the sendsms-user's `max-messages`
    /// must allow as many).
    #[serde(default = "de::max_parts")]
    pub max_parts: u32,
    /// Limit of each phase of the exchange (`timeout_s`, seconds).
    #[serde(
        rename = "timeout_s",
        default = "de::timeout",
        deserialize_with = "de::secs"
    )]
    pub timeout: Duration,
}

fn default_url() -> String {
    "http://127.0.0.1:13013/cgi-bin/sendsms".into()
}

fn default_dlr_mask() -> u8 {
    31
}

impl std::fmt::Debug for KannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KannelConfig")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .field("smsc", &self.smsc)
            .field("dlr_url", &self.dlr_url.as_deref().map(redact_url))
            .field("dlr_mask", &self.dlr_mask)
            .field("max_parts", &self.max_parts)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Whether Kannel's 7-bit path carries `text` unchanged.
fn plain(text: &str) -> bool {
    text.chars()
        .all(|c| is_gsm7_basic(c) && u32::from(c) < 0x100)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl KannelConfig {
    /// The default URL, with `username` and `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            url: default_url(),
            username: username.into(),
            password: password.into(),
            from: None,
            smsc: None,
            dlr_url: None,
            dlr_mask: default_dlr_mask(),
            max_parts: super::DEFAULT_MAX_PARTS,
            timeout: super::DEFAULT_TIMEOUT,
        }
    }

    /// The URL, the default sender, the dlr-url, `max_parts`, `timeout`.
    pub fn check(&self) -> Result<(), String> {
        let dlr = self.dlr_url.as_deref().map(|d| d.replace("{id}", "69"));
        let mut urls = vec![("url", self.url.as_str())];
        if let Some(d) = &dlr {
            urls.push(("dlr_url", d));
        }
        check_common(&urls, self.from.as_deref(), self.max_parts, self.timeout)?;
        if let Some(s) = &self.smsc {
            if s.is_empty() || s.chars().any(char::is_control) {
                return Err("smsc: empty or with a control character".into());
            }
        }
        Ok(())
    }

    pub(super) fn send(&self, sms: &super::Sms) -> Result<Accepted, SmsError> {
        self.check().map_err(|e| SmsError::Unavailable {
            reason: format!("kannel: unusable configuration, nothing sent: {e}"),
        })?;
        let sender = validate(sms, self.max_parts, self.from.as_deref())?;
        let mut q: Vec<(&str, &str)> = vec![
            ("username", &self.username),
            ("password", &self.password),
            ("to", &sms.to),
            ("text", &sms.text),
        ];
        if let Some(s) = sender {
            q.push(("from", s));
        }
        if let Some(s) = &self.smsc {
            q.push(("smsc", s));
        }
        if !plain(&sms.text) {
            q.push(("coding", "2"));
            q.push(("charset", "UTF-8"));
        }
        let mask = self.dlr_mask.to_string();
        let dlr = self
            .dlr_url
            .as_deref()
            .map(|d| d.replace("{id}", &hex(sms.id.as_bytes())));
        if let Some(d) = &dlr {
            q.push(("dlr-mask", &mask));
            q.push(("dlr-url", d));
        }
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}{}", self.url, form(&q));
        let reply = exchange(&Request {
            gateway: "kannel",
            method: HttpMethod::Get,
            url: &url,
            headers: &[],
            body: None,
            timeout: self.timeout,
        })?;
        match reply.status {
            202 => Ok(Accepted {
                foreign_id: None,
                answer: reply.answer(),
                already: false,
            }),
            503 => Err(SmsError::Unavailable {
                reason: format!("kannel: {}", reply.describe()),
            }),
            _ => Err(by_status("kannel", &reply)),
        }
    }
}
