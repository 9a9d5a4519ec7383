//! SMS.ru's `sms/send` (INTEGRATIONS.md §4.2).
//!
//! The request is a `POST <url>` with the form `api_id, to, msg, json=1
//! [, from]`: `to` is the number's digits without `+`, every value
//! %XX-encoded, the text UTF-8 (SMS.ru's error 212 asks for UTF-8).
//!
//! SMS.ru answers HTTP 200 with a JSON body and puts errors in it: the
//! top-level `status_code` (100 = request accepted) and, per number,
//! `sms.<number>.status_code` with `sms_id`. Classification uses the
//! per-number code when the top-level one is 100, else the top-level one:
//!
//! | code | meaning | result |
//! |---|---|---|
//! | 100 (per number, with `sms_id`) | accepted | Accepted, `foreign_id` = `sms_id` |
//! | 100 at the top, no entry for the number | — | InDoubt |
//! | 220 | service temporarily unavailable | Unavailable |
//! | 231 | an identical text to this number within a minute | InDoubt |
//! | 232 | an identical text to this number today | InDoubt |
//! | 200–213, 230, 233, 300–302 (bad api_id, no funds, bad number, no text, sender not approved, too long, limits, stop-list, auth …) | refused | Rejected |
//! | any other code with `status` ERROR | refused | Rejected |
//! | any other code otherwise | — | InDoubt |
//!
//! 231/232 are **InDoubt**, not Accepted: the identical text that went out
//! is most likely an earlier attempt of this very message (a resend of an
//! in-doubt one), but SMS.ru cannot be asked by our id and another message
//! with the same text would look the same; the reason says what the gateway
//! said, so whoever resolves it knows the text reached the number.
//!
//! HTTP statuses other than 2xx follow the shared rules (408/429
//! Unavailable, other 4xx Rejected, the rest InDoubt); a 2xx whose body is
//! not the expected JSON is InDoubt. SMS.ru cannot be asked about a message
//! by our id: reconcile answers `Unknown`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::http::{by_status, exchange, json_body, HttpMethod, Reply, Request};
use super::{check_common, de, form, one_line, redact_url, validate, Accepted, SmsError};

/// `[sms.smsru]`: SMS.ru.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsRuConfig {
    /// The send URL (default `https://sms.ru/sms/send`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The account's `api_id` (a secret).
    pub api_id: String,
    /// The default sender (`from`, a name approved by SMS.ru).
    #[serde(default)]
    pub from: Option<String>,
    /// Most SMS parts a text may take.
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
    "https://sms.ru/sms/send".into()
}

impl std::fmt::Debug for SmsRuConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsRuConfig")
            .field("url", &redact_url(&self.url))
            .field("api_id", &"<redacted>")
            .field("from", &self.from)
            .field("max_parts", &self.max_parts)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A code that may be a number or a numeric string.
fn code(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => one_line(s),
        Value::Null => String::new(),
        other => one_line(&other.to_string()),
    }
}

impl SmsRuConfig {
    /// The default URL, with `api_id`.
    pub fn new(api_id: impl Into<String>) -> Self {
        Self {
            url: default_url(),
            api_id: api_id.into(),
            from: None,
            max_parts: super::DEFAULT_MAX_PARTS,
            timeout: super::DEFAULT_TIMEOUT,
        }
    }

    /// The URL, the default sender, `max_parts`, `timeout`.
    pub fn check(&self) -> Result<(), String> {
        check_common(
            &[("url", &self.url)],
            self.from.as_deref(),
            self.max_parts,
            self.timeout,
        )
    }

    pub(super) fn send(&self, sms: &super::Sms) -> Result<Accepted, SmsError> {
        self.check().map_err(|e| SmsError::Unavailable {
            reason: format!("smsru: unusable configuration, nothing sent: {e}"),
        })?;
        let sender = validate(sms, self.max_parts, self.from.as_deref())?;
        let digits = sms.to.strip_prefix('+').unwrap_or(&sms.to);
        let mut fields: Vec<(&str, &str)> = vec![
            ("api_id", &self.api_id),
            ("to", digits),
            ("msg", &sms.text),
            ("json", "1"),
        ];
        if let Some(s) = sender {
            fields.push(("from", s));
        }
        let body = form(&fields);
        let reply = exchange(&Request {
            gateway: "smsru",
            method: HttpMethod::Post,
            url: &self.url,
            headers: &[],
            body: Some(("application/x-www-form-urlencoded", body.as_bytes())),
            timeout: self.timeout,
        })?;
        classify(&reply, digits)
    }
}

/// SMS.ru's reply to a send for the number `digits`.
fn classify(reply: &Reply, digits: &str) -> Result<Accepted, SmsError> {
    if !(200..=299).contains(&reply.status) {
        return Err(by_status("smsru", reply));
    }
    let v = json_body("smsru", reply)?;
    let answer = reply.answer();
    let Some(top) = code(&v["status_code"]) else {
        return Err(SmsError::InDoubt {
            reason: format!("smsru: {answer} (no status_code)"),
        });
    };
    if top != 100 {
        return Err(by_code(top, &v, &answer));
    }
    let entries = v["sms"].as_object();
    let entry = entries.and_then(|m| {
        m.get(digits)
            .or_else(|| (m.len() == 1).then(|| m.values().next()).flatten())
    });
    let Some(entry) = entry else {
        return Err(SmsError::InDoubt {
            reason: format!("smsru: {answer} (request accepted, but no entry for {digits})"),
        });
    };
    match code(&entry["status_code"]) {
        Some(100) => Ok(Accepted {
            foreign_id: Some(text_of(&entry["sms_id"])).filter(|s| !s.is_empty()),
            answer,
            already: false,
        }),
        Some(c) => Err(by_code(c, entry, &answer)),
        None => Err(SmsError::InDoubt {
            reason: format!("smsru: {answer} (no status_code for {digits})"),
        }),
    }
}

/// The result of a non-100 code found in `v` (the top level or an entry).
fn by_code(code: i64, v: &Value, answer: &str) -> SmsError {
    let said = text_of(&v["status_text"]);
    let said = if said.is_empty() {
        answer.to_string()
    } else {
        said
    };
    let reason = format!("smsru: code {code}: {said}");
    match code {
        220 => SmsError::Unavailable {
            reason: format!("{reason} (service temporarily unavailable)"),
        },
        231 => SmsError::InDoubt {
            reason: format!(
                "{reason} (the gateway says an identical text was sent to this number within the last minute: probably an earlier attempt of this message; not resent)"
            ),
        },
        232 => SmsError::InDoubt {
            reason: format!(
                "{reason} (the gateway says an identical text was sent to this number today: probably an earlier attempt of this message; not resent)"
            ),
        },
        200..=213 | 230 | 233 | 300..=302 => SmsError::Rejected { reason },
        _ if v["status"].as_str() == Some("ERROR") => SmsError::Rejected { reason },
        _ => SmsError::InDoubt {
            reason: format!("{reason} (an unknown code)"),
        },
    }
}
