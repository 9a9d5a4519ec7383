//! SMSC.ru's `send.php` and `status.php` (INTEGRATIONS.md §4.3).
//!
//! The request is a `POST <url>` with the form `login, psw, phones, mes,
//! charset=utf-8, fmt=3, id [, sender]`, every value %XX-encoded. `charset`
//! is always sent: SMSC.ru's default is windows-1251. `phones` is the number
//! as given (with `+`, which turns SMSC.ru's auto-correction off). `id` is
//! our client message id, [`smsc_client_id`]: `ct` and 32 lowercase hex
//! digits (34 characters of `[a-z0-9]`), derived from
//! [`Sms::id`](super::Sms::id) alone, so a resend carries the same id and
//! `status.php` finds the message by it.
//!
//! SMSC.ru answers HTTP 200 with JSON (`fmt=3`): `{"id": …, "cnt": …}` when
//! accepted, `{"error": "…", "error_code": N}` when not.
//!
//! | reply | result |
//! |---|---|
//! | `id` (and `cnt`) | Accepted, `foreign_id` = that `id` |
//! | error 1 bad parameters, 2 bad login/password, 3 no funds, 5 bad date, 6 message forbidden, 7 bad number format, 8 cannot be delivered | Rejected |
//! | error 4: IP temporarily blocked for frequent errors | Unavailable (retry no sooner than [`MIN_RETRY_DELAY`](super::MIN_RETRY_DELAY)) |
//! | error 9: an identical request within a minute | asks `status.php` by our id: found → Accepted with `already`; otherwise InDoubt |
//! | another error code | Rejected |
//! | 2xx, neither `id` nor `error` (or not JSON) | InDoubt |
//! | other HTTP statuses | shared rules: 408/429 Unavailable, other 4xx Rejected, the rest InDoubt |
//!
//! Error 9 means SMSC.ru saw this very request (same id, same text) less
//! than a minute ago; asking `status.php` turns "probably sent" into a
//! sure answer when it can.
//!
//! # Reconcile
//!
//! `POST <status_url>` with `login, psw, phone, id, fmt=3, charset=utf-8`:
//!
//! | reply | result |
//! |---|---|
//! | `status` -3 (message not found) | NotSent |
//! | error 3 (message not found, as `status.php` lists it) | NotSent |
//! | any other `status` (-1 waiting, 0 passed to the operator, 1 delivered, 3 expired, 20/22/23/24/25 failures …) | Sent (`already`, `foreign_id` = our id) |
//! | any other error, no answer, not JSON | Unknown |

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::http::{by_status, exchange, json_body, HttpMethod, Reply, Request};
use super::{
    check_common, de, form, one_line, redact_url, validate, Accepted, Reconciled, SmsError,
};

/// `[sms.smsc]`: SMSC.ru.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmscConfig {
    /// The send URL (default `https://smsc.ru/sys/send.php`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The status URL (default `https://smsc.ru/sys/status.php`).
    #[serde(default = "default_status_url")]
    pub status_url: String,
    /// The account's login.
    pub login: String,
    /// Its password (`psw`, a secret).
    pub password: String,
    /// The default sender (`sender`, a name registered with SMSC.ru).
    #[serde(default)]
    pub sender: Option<String>,
    /// Most SMS parts a text may take.
    #[serde(default = "de::max_parts")]
    pub max_parts: u32,
    /// Limit of each phase of an exchange (`timeout_s`, seconds).
    #[serde(
        rename = "timeout_s",
        default = "de::timeout",
        deserialize_with = "de::secs"
    )]
    pub timeout: Duration,
}

fn default_url() -> String {
    "https://smsc.ru/sys/send.php".into()
}

fn default_status_url() -> String {
    "https://smsc.ru/sys/status.php".into()
}

impl std::fmt::Debug for SmscConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmscConfig")
            .field("url", &redact_url(&self.url))
            .field("status_url", &redact_url(&self.status_url))
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("sender", &self.sender)
            .field("max_parts", &self.max_parts)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The client message id SMSC.ru gets for the message `sms_id`: `ct`
/// followed by the 128-bit FNV-1a hash of the id's UTF-8 bytes as 32
/// lowercase hex digits. Deterministic forever (it is how a restarted
/// calltrail finds its message again); not a security boundary. 34
/// characters of `[a-z0-9]`, within any id SMSC.ru accepts.
pub fn smsc_client_id(sms_id: &str) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let h = sms_id
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u128::from(b)).wrapping_mul(PRIME));
    format!("ct{h:032x}")
}

/// An integer that may come as a number or a numeric string.
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(one_line(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl SmscConfig {
    /// The default URLs, with `login` and `password`.
    pub fn new(login: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            url: default_url(),
            status_url: default_status_url(),
            login: login.into(),
            password: password.into(),
            sender: None,
            max_parts: super::DEFAULT_MAX_PARTS,
            timeout: super::DEFAULT_TIMEOUT,
        }
    }

    /// The URLs, the default sender, `max_parts`, `timeout`.
    pub fn check(&self) -> Result<(), String> {
        check_common(
            &[("url", &self.url), ("status_url", &self.status_url)],
            self.sender.as_deref(),
            self.max_parts,
            self.timeout,
        )
    }

    fn post(&self, url: &str, fields: &[(&str, &str)]) -> Result<Reply, SmsError> {
        let body = form(fields);
        exchange(&Request {
            gateway: "smsc",
            method: HttpMethod::Post,
            url,
            headers: &[],
            body: Some(("application/x-www-form-urlencoded", body.as_bytes())),
            timeout: self.timeout,
        })
    }

    pub(super) fn send(&self, sms: &super::Sms) -> Result<Accepted, SmsError> {
        self.check().map_err(|e| SmsError::Unavailable {
            reason: format!("smsc: unusable configuration, nothing sent: {e}"),
        })?;
        let sender = validate(sms, self.max_parts, self.sender.as_deref())?;
        let client_id = smsc_client_id(&sms.id);
        let mut fields: Vec<(&str, &str)> = vec![
            ("login", &self.login),
            ("psw", &self.password),
            ("phones", &sms.to),
            ("mes", &sms.text),
            ("charset", "utf-8"),
            ("fmt", "3"),
            ("id", &client_id),
        ];
        if let Some(s) = sender {
            fields.push(("sender", s));
        }
        let reply = self.post(&self.url, &fields)?;
        if !(200..=299).contains(&reply.status) {
            return Err(by_status("smsc", &reply));
        }
        let v = json_body("smsc", &reply)?;
        let answer = reply.answer();
        if v.get("error").is_some() || v.get("error_code").is_some() {
            let code = int(&v["error_code"]);
            let said = scalar(&v["error"]).unwrap_or_else(|| answer.clone());
            let reason = format!(
                "smsc: error {}: {said}",
                code.map_or_else(|| "?".to_string(), |c| c.to_string())
            );
            return Err(match code {
                Some(4) => SmsError::Unavailable {
                    reason: format!(
                        "{reason} (this address is blocked for a while: retry no sooner than a minute)"
                    ),
                },
                Some(9) => return self.duplicate(sms, &client_id, &reason),
                None => SmsError::InDoubt {
                    reason: format!("{reason} (no error code)"),
                },
                Some(_) => SmsError::Rejected { reason },
            });
        }
        match scalar(&v["id"]) {
            Some(id) => Ok(Accepted {
                foreign_id: Some(id),
                answer,
                already: false,
            }),
            None => Err(SmsError::InDoubt {
                reason: format!("smsc: {answer} (neither an id nor an error)"),
            }),
        }
    }

    /// Error 9: the same request came less than a minute ago. Found by its
    /// status → already sent; otherwise in doubt.
    fn duplicate(
        &self,
        sms: &super::Sms,
        client_id: &str,
        reason: &str,
    ) -> Result<Accepted, SmsError> {
        match self.status(sms, client_id) {
            Reconciled::Sent(acc) => Ok(acc),
            Reconciled::NotSent => Err(SmsError::InDoubt {
                reason: format!(
                    "{reason} (an identical request came within a minute, yet status.php does not know {client_id} yet: probably sent, not resent)"
                ),
            }),
            Reconciled::Unknown(why) => Err(SmsError::InDoubt {
                reason: format!(
                    "{reason} (an identical request came within a minute: probably sent; status.php: {why})"
                ),
            }),
        }
    }

    pub(super) fn reconcile(&self, sms: &super::Sms) -> Reconciled {
        if let Err(e) = self.check() {
            return Reconciled::Unknown(format!("smsc: unusable configuration: {e}"));
        }
        if let Err(e) = super::check_number(&sms.to).and_then(|()| super::check_id(&sms.id)) {
            return Reconciled::Unknown(format!("smsc: {}", e.reason()));
        }
        self.status(sms, &smsc_client_id(&sms.id))
    }

    /// `status.php` for our id and the number.
    fn status(&self, sms: &super::Sms, client_id: &str) -> Reconciled {
        let fields = [
            ("login", self.login.as_str()),
            ("psw", self.password.as_str()),
            ("phone", sms.to.as_str()),
            ("id", client_id),
            ("fmt", "3"),
            ("charset", "utf-8"),
        ];
        let reply = match self.post(&self.status_url, &fields) {
            Ok(r) => r,
            Err(e) => return Reconciled::Unknown(e.reason().to_string()),
        };
        if !(200..=299).contains(&reply.status) {
            return Reconciled::Unknown(format!("smsc status: {}", reply.describe()));
        }
        let v = match json_body("smsc status", &reply) {
            Ok(v) => v,
            Err(e) => return Reconciled::Unknown(e.reason().to_string()),
        };
        let answer = reply.answer();
        if v.get("error").is_some() || v.get("error_code").is_some() {
            return match int(&v["error_code"]) {
                Some(3) => Reconciled::NotSent,
                code => Reconciled::Unknown(format!(
                    "smsc status: error {}: {}",
                    code.map_or_else(|| "?".to_string(), |c| c.to_string()),
                    scalar(&v["error"]).unwrap_or(answer)
                )),
            };
        }
        match int(&v["status"]) {
            Some(-3) => Reconciled::NotSent,
            Some(_) => Reconciled::Sent(Accepted {
                foreign_id: Some(client_id.to_string()),
                answer,
                already: true,
            }),
            None => Reconciled::Unknown(format!("smsc status: {answer} (no status)")),
        }
    }
}
