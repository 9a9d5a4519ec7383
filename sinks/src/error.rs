//! The error type shared by every sink, with the transient/permanent split the
//! caller's retry loop relies on.

use std::path::PathBuf;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Everything that can go wrong while delivering to a sink.
///
/// Use [`SinkError::is_transient`] to decide whether to retry with backoff
/// (broker/server unreachable, 4xx SMTP replies, timeouts, I/O errors) or to
/// give up on the message (5xx SMTP replies, invalid addresses, messages the
/// broker will never accept, bad configuration).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink's configuration is unusable (empty broker list, unreadable
    /// certificate, ...).
    #[error("invalid sink configuration: {0}")]
    Config(String),

    /// librdkafka refused the client configuration or could not create the
    /// producer.
    #[error("cannot create Kafka producer: {0}")]
    KafkaClient(#[source] KafkaError),

    /// A message could not be enqueued or was not acknowledged by the broker.
    #[error("Kafka delivery to topic `{topic}` failed: {source}")]
    KafkaDelivery {
        /// Topic the message was meant for.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },

    /// The producer hit a fatal error (e.g. the idempotent producer lost its
    /// sequence state). It will never deliver again: drop the `KafkaSink` and
    /// create a new one.
    #[error("Kafka producer is in a fatal state ({code:?}): {reason}")]
    KafkaFatal {
        /// librdkafka's error code for the fatal condition.
        code: RDKafkaErrorCode,
        /// librdkafka's description.
        reason: String,
    },

    /// The producer was dropped before the broker answered.
    #[error("Kafka producer shut down before the delivery report for topic `{topic}` arrived")]
    KafkaCanceled {
        /// Topic the message was meant for.
        topic: String,
    },

    /// `flush` did not finish within its timeout (or failed).
    #[error("Kafka flush failed: {0}")]
    KafkaFlush(#[source] KafkaError),

    /// An email address (From or To) does not parse.
    #[error("invalid email address {address:?}: {source}")]
    InvalidAddress {
        /// The offending input.
        address: String,
        /// lettre's parse error.
        #[source]
        source: lettre::address::AddressError,
    },

    /// The message could not be assembled (e.g. no recipients).
    #[error("cannot build email: {0}")]
    EmailBuild(#[source] lettre::error::Error),

    /// The SMTP exchange failed.
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),

    /// The whole SMTP send (connect, dialogue, DATA) exceeded the configured
    /// timeout. The server may still have accepted the message.
    #[error("SMTP delivery timed out after {0:?}")]
    SmtpTimeout(std::time::Duration),

    /// Writing to the outbox directory failed.
    #[error("outbox I/O on {path}: {source}")]
    Outbox {
        /// File or directory involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl SinkError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Config(_)
            | Self::KafkaClient(_)
            | Self::KafkaFatal { .. }
            | Self::InvalidAddress { .. }
            | Self::EmailBuild(_) => false,
            Self::KafkaDelivery { source, .. } => kafka_is_transient(source),
            Self::KafkaCanceled { .. }
            | Self::KafkaFlush(_)
            | Self::SmtpTimeout(_)
            | Self::Outbox { .. } => true,
            // 5xx replies and client-side protocol errors will fail again;
            // 4xx replies, connection, TLS, timeout and I/O errors may not.
            Self::Smtp(e) => !(e.is_permanent() || e.is_client()),
        }
    }

    /// The SMTP reply code, when the server answered with an error.
    pub fn smtp_code(&self) -> Option<String> {
        match self {
            Self::Smtp(e) => e.status().map(|c| c.to_string()),
            _ => None,
        }
    }
}

/// Classify a librdkafka produce error: only errors that the same message
/// will hit again are permanent.
fn kafka_is_transient(err: &KafkaError) -> bool {
    let Some(code) = err.rdkafka_error_code() else {
        return true;
    };
    !matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidDifferentRecord
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::InvalidArgument
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::UnsupportedForMessageFormat
            | RDKafkaErrorCode::Fatal
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(code: RDKafkaErrorCode) -> SinkError {
        SinkError::KafkaDelivery {
            topic: "t".to_owned(),
            source: KafkaError::MessageProduction(code),
        }
    }

    #[test]
    fn kafka_classification() {
        assert!(delivery(RDKafkaErrorCode::MessageTimedOut).is_transient());
        assert!(delivery(RDKafkaErrorCode::AllBrokersDown).is_transient());
        assert!(delivery(RDKafkaErrorCode::QueueFull).is_transient());
        assert!(delivery(RDKafkaErrorCode::NotLeaderForPartition).is_transient());
        assert!(!delivery(RDKafkaErrorCode::MessageSizeTooLarge).is_transient());
        assert!(!delivery(RDKafkaErrorCode::TopicAuthorizationFailed).is_transient());
        assert!(SinkError::KafkaCanceled { topic: "t".into() }.is_transient());
        assert!(!SinkError::Config("x".into()).is_transient());
    }

    #[test]
    fn address_errors_are_permanent() {
        let source = "not an address"
            .parse::<lettre::Address>()
            .expect_err("must not parse");
        let e = SinkError::InvalidAddress {
            address: "not an address".into(),
            source,
        };
        assert!(!e.is_transient());
        assert!(e.to_string().contains("not an address"));
    }
}
