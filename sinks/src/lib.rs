//! Outbound sinks for calltrail: Kafka (rdkafka), email (lettre: SMTP or
//! an outbox directory), SMS gateways (`sms`), Asterisk call files
//! (`callfile`) and AMI `Originate` (`ami`).
//!
//! The crate knows nothing about storage; callers hand it bytes and strings.
//! Every fallible operation returns [`SinkError`], whose
//! [`is_transient`](SinkError::is_transient) tells the caller whether to
//! retry with backoff.

pub mod ami;
pub mod callfile;
mod channel;
mod email;
mod error;
mod kafka;
mod outbox;
mod sanitize;
pub mod sms;

pub use email::{EmailMessage, Mailer, SendOutcome, SmtpConfig, SmtpMailer, SmtpTls};
pub use error::SinkError;
pub use kafka::{KafkaConfig, KafkaMessage, KafkaSink};
pub use outbox::Outbox;

#[cfg(test)]
mod live_tests;
