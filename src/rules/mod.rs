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
//! - [`callback`]: a callback action carried out as an Asterisk call file.

pub mod callback;
pub mod config;
pub mod engine;
mod missed_email;
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
}

/// Action kind for webhooks.
pub const WEBHOOK: &str = "webhook";

/// The stored payload of a webhook action: POSTed as JSON to `url`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WebhookPayload {
    pub url: String,
    pub body: serde_json::Value,
}
