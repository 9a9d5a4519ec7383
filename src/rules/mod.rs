//! Rules: what calltrail does about what it sees.
//!
//! - [`missed_email`]: the original `[rules.missed_call_email]`, an email
//!   per lost-caller line, decided at ingest;
//! - [`config`]: `[[rules]]` as written and checked (docs/rules.md);
//! - [`engine`]: `[[rules]]` at work: inside each state derivation's
//!   transaction, the events and state changes of the step (`missed_opened`,
//!   `missed_closed`, `sla_breach_*`, `call_answered`, `call_ended`) matched
//!   against every rule's trigger and conditions (queue, PBX, the caller's
//!   class in the directory, wait, age, business hours), each match one
//!   outbox action under the id `rule:<name>:<event id>`;
//! - [`template`]: the actions' texts (`{{ caller }}`-style templates);
//!   email rules with `digest_minutes` gather matches into digests, breach
//!   events carry their figures;
//! - [`callback`]: a callback action carried out as an Asterisk call file;
//! - [`callback_ami`]: … or as an AMI `Originate`, in_doubt settled by the CDR;
//! - [`employee`]: `employee_lookup` rules, a callback queued by a lookup;
//! - [`sms`]: an SMS action's decision (mobile only, per-number limits);
//! - [`live`]: the rules in force, replaced by a reload (SIGHUP).

pub mod callback;
pub mod callback_ami;
pub mod config;
pub mod employee;
pub mod engine;
pub mod live;
mod missed_email;
pub mod sms;
pub mod template;

pub use config::RuleConfig;
pub use engine::RuleSet;
pub use missed_email::{inline, missed_body, missed_subject, EmailPayload, Rules, EMAIL};

/// Action kind for callbacks.
pub const CALLBACK: &str = "callback";

/// The stored payload of a callback action: whom to call back, for which
/// episode, and who to connect (the caller's sticky agent when known).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallbackPayload {
    pub caller: String,
    pub episode_opened_at: chrono::DateTime<chrono::Utc>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// An employee's callback (`employee_lookup`): the context their
    /// answered leg enters; no missed-call episode to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// Action kind for SMS.
pub const SMS: &str = "sms";

/// The stored payload of an SMS action: the number (E.164), the rendered
/// text and the sender, exactly what the gateway gets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SmsPayload {
    pub to: String,
    pub text: String,
    pub sender: Option<String>,
}

/// Action kind for email digests (`digest_minutes`).
pub const DIGEST: &str = "digest";

/// The stored payload of a digest: the message's frame; its lines are the
/// window's `digest_items`, read when it is sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DigestPayload {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub queue: String,
    pub minutes: u32,
    pub window_start: chrono::DateTime<chrono::Utc>,
}

/// Action kind for webhooks.
pub const WEBHOOK: &str = "webhook";

/// The stored payload of a webhook action: POSTed as JSON to `url`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WebhookPayload {
    pub url: String,
    pub body: serde_json::Value,
}
