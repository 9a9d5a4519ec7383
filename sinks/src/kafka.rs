//! Kafka producer sink: publishes normalized call events with librdkafka's
//! idempotent `FutureProducer` and waits for the broker's acknowledgement of
//! every message of a batch.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::error::SinkError;

/// Connection and producer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` bootstrap list.
    pub brokers: String,
    /// Topic every message goes to.
    pub topic: String,
    /// `client.id` reported to the broker.
    pub client_id: String,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`,
    /// `compression.type`, `enable.idempotence`, ...). Applied last, so they
    /// override the defaults set by [`KafkaSink::new`].
    pub properties: BTreeMap<String, String>,
    /// How long librdkafka keeps retrying one message before reporting it
    /// failed (`message.timeout.ms`); also bounds the wait for queue space.
    pub delivery_timeout_ms: u64,
}

impl KafkaConfig {
    /// A config with the defaults: client id `calltrail`, no extra
    /// properties, 30 s delivery timeout.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: topic.into(),
            client_id: "calltrail".to_owned(),
            properties: BTreeMap::new(),
            delivery_timeout_ms: 30_000,
        }
    }
}

/// One record to publish. The key selects the partition (so all events of a
/// call stay ordered); headers are passed through verbatim.
#[derive(Debug, Clone, Copy)]
pub struct KafkaMessage<'a> {
    /// Partitioning key (e.g. the call id).
    pub key: &'a str,
    /// Serialized event.
    pub payload: &'a [u8],
    /// Record headers.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Idempotent Kafka producer bound to one topic.
pub struct KafkaSink {
    producer: FutureProducer<TracingContext>,
    topic: String,
    delivery_timeout: Duration,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish_non_exhaustive()
    }
}

/// Properties set before the user's `properties` are applied.
fn default_properties(cfg: &KafkaConfig) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.servers", cfg.brokers.clone()),
        ("client.id", cfg.client_id.clone()),
        ("message.timeout.ms", cfg.delivery_timeout_ms.to_string()),
        // Exactly-once per partition from the producer's side, and ordering
        // per key even across retries. Implies acks=all, bounded in-flight.
        ("enable.idempotence", "true".to_owned()),
        ("acks", "all".to_owned()),
        // Uncompressed by default: call events are small, and not every
        // consumer ships every codec (kafka-python needs the separate `lz4`
        // package). `compression.type=lz4` works without any extra crate
        // feature: librdkafka bundles lz4.
        ("compression.type", "none".to_owned()),
        // Send at once: a batch is handed over whole (publish_batch), so
        // waiting for more only adds latency (librdkafka's default is 5 ms).
        ("linger.ms", "0".to_owned()),
        // Same key -> same partition as the Java/Python (murmur2) clients,
        // so other producers of the same topic agree on placement.
        ("partitioner", "murmur2_random".to_owned()),
    ]
}

/// Build the librdkafka configuration: defaults, then the user's properties.
/// Without idempotence, `max.in.flight` is pinned to 1 (unless set
/// explicitly) so retries cannot reorder messages of one key.
pub(crate) fn client_config(cfg: &KafkaConfig) -> Result<ClientConfig, SinkError> {
    if cfg.brokers.trim().is_empty() {
        return Err(SinkError::Config("kafka brokers list is empty".to_owned()));
    }
    validate_topic(&cfg.topic)?;
    if cfg.delivery_timeout_ms == 0 {
        return Err(SinkError::Config(
            "kafka delivery_timeout_ms must be > 0".to_owned(),
        ));
    }
    let mut config = ClientConfig::new();
    for (k, v) in default_properties(cfg) {
        config.set(k, v);
    }
    for (k, v) in &cfg.properties {
        config.set(k.as_str(), v.as_str());
    }
    let idempotent = config.get("enable.idempotence").is_some_and(|v| {
        ["true", "t", "1", "yes", "on"]
            .iter()
            .any(|t| v.trim().eq_ignore_ascii_case(t))
    });
    let in_flight_set = ["max.in.flight.requests.per.connection", "max.in.flight"]
        .iter()
        .any(|k| cfg.properties.contains_key(*k));
    if !idempotent && !in_flight_set {
        config.set("max.in.flight.requests.per.connection", "1");
    }
    Ok(config)
}

/// Kafka topic names: 1..=249 characters of `[A-Za-z0-9._-]`, not `.`/`..`.
fn validate_topic(topic: &str) -> Result<(), SinkError> {
    let legal = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if legal {
        Ok(())
    } else {
        Err(SinkError::Config(format!(
            "invalid kafka topic name {topic:?}"
        )))
    }
}

impl KafkaSink {
    /// Create the producer. Connecting is lazy: an unreachable broker shows
    /// up as (transient) delivery errors, not here.
    pub fn new(cfg: &KafkaConfig) -> Result<Self, SinkError> {
        let config = client_config(cfg)?;
        let producer = FutureProducer::from_config_and_context(&config, TracingContext)
            .map_err(SinkError::KafkaClient)?;
        tracing::info!(
            brokers = %cfg.brokers,
            topic = %cfg.topic,
            client_id = %cfg.client_id,
            idempotence = config.get("enable.idempotence").unwrap_or("false"),
            compression = config.get("compression.type").unwrap_or("none"),
            extra_properties = ?cfg.properties.keys().collect::<Vec<_>>(),
            "kafka producer created"
        );
        Ok(Self {
            producer,
            topic: cfg.topic.clone(),
            delivery_timeout: Duration::from_millis(cfg.delivery_timeout_ms),
        })
    }

    /// The topic this sink publishes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publish a batch; resolves only when EVERY message is acknowledged by
    /// the broker (or returns the first error). Order within a key preserved.
    ///
    /// Messages are enqueued in order (waiting for queue space if librdkafka's
    /// local queue is full) and the call then waits for every delivery report
    /// even after a failure, so when it returns nothing of the batch is still
    /// in flight. If enqueueing a message fails, the messages after it are not
    /// enqueued. On error some messages may have been delivered: retrying the
    /// batch is at-least-once, consumers must dedupe by event id.
    pub async fn publish_batch(&self, msgs: &[KafkaMessage<'_>]) -> Result<(), SinkError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + self.delivery_timeout;
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(msgs.len());
        let mut outcome = BatchOutcome::default();

        'messages: for msg in msgs {
            let mut record = FutureRecord::to(&self.topic)
                .key(msg.key)
                .payload(msg.payload);
            if !msg.headers.is_empty() {
                let headers = msg.headers.iter().fold(
                    OwnedHeaders::new_with_capacity(msg.headers.len()),
                    |h, (key, value)| {
                        h.insert(Header {
                            key,
                            value: Some(*value),
                        })
                    },
                );
                record = record.headers(headers);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        if let Some(oldest) = pending.pop_front() {
                            outcome.settle(self.await_delivery(oldest).await);
                        } else if Instant::now() >= deadline {
                            outcome.settle(Err(self.delivery_error(
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                            )));
                            break 'messages;
                        } else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    Err((e, _)) => {
                        outcome.settle(Err(self.delivery_error(e)));
                        break 'messages;
                    }
                }
            }
        }
        while let Some(delivery) = pending.pop_front() {
            outcome.settle(self.await_delivery(delivery).await);
        }

        match outcome.first_error {
            None => {
                tracing::debug!(
                    topic = %self.topic,
                    messages = msgs.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "kafka batch acknowledged"
                );
                Ok(())
            }
            Some(err) => {
                tracing::warn!(
                    topic = %self.topic,
                    messages = msgs.len(),
                    acknowledged = outcome.acknowledged,
                    failed = outcome.failed,
                    error = %err,
                    "kafka batch not fully acknowledged"
                );
                Err(err)
            }
        }
    }

    /// Wait until every message handed to librdkafka is delivered (or failed).
    pub fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        self.producer
            .flush(Timeout::After(timeout))
            .map_err(SinkError::KafkaFlush)
    }

    async fn await_delivery(&self, delivery: DeliveryFuture) -> Result<(), SinkError> {
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _msg))) => Err(self.delivery_error(e)),
            Err(_canceled) => Err(SinkError::KafkaCanceled {
                topic: self.topic.clone(),
            }),
        }
    }

    /// Wrap a produce error, upgrading it to [`SinkError::KafkaFatal`] when
    /// the producer instance is dead.
    fn delivery_error(&self, source: KafkaError) -> SinkError {
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            return SinkError::KafkaFatal { code, reason };
        }
        SinkError::KafkaDelivery {
            topic: self.topic.clone(),
            source,
        }
    }
}

/// Tally of delivery reports for one batch.
#[derive(Default)]
struct BatchOutcome {
    acknowledged: usize,
    failed: usize,
    first_error: Option<SinkError>,
}

impl BatchOutcome {
    fn settle(&mut self, result: Result<(), SinkError>) {
        match result {
            Ok(()) => self.acknowledged += 1,
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// Routes librdkafka's logs and global errors to `tracing`.
struct TracingContext;

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{log_message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{log_message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{log_message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{log_message}");
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker-down and similar conditions are retried by librdkafka and
        // surface per message; log them without alarm.
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_idempotent_and_user_overrides_win() {
        let mut cfg = KafkaConfig::new("127.0.0.1:9092", "calls");
        let c = client_config(&cfg).expect("valid");
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("compression.type"), Some("none"));
        assert_eq!(c.get("linger.ms"), Some("0"));
        assert_eq!(c.get("message.timeout.ms"), Some("30000"));
        assert_eq!(c.get("max.in.flight.requests.per.connection"), None);

        cfg.properties
            .insert("enable.idempotence".into(), "false".into());
        cfg.properties
            .insert("compression.type".into(), "lz4".into());
        let c = client_config(&cfg).expect("valid");
        assert_eq!(c.get("enable.idempotence"), Some("false"));
        assert_eq!(c.get("compression.type"), Some("lz4"));
        assert_eq!(c.get("max.in.flight.requests.per.connection"), Some("1"));
    }

    #[test]
    fn rejects_bad_config() {
        assert!(client_config(&KafkaConfig::new(" ", "calls")).is_err());
        for topic in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            let err = client_config(&KafkaConfig::new("h:1", topic)).expect_err(topic);
            assert!(!err.is_transient());
        }
        let mut cfg = KafkaConfig::new("h:1", "t");
        cfg.delivery_timeout_ms = 0;
        assert!(client_config(&cfg).is_err());
    }

    #[test]
    fn new_validates_properties_without_network() {
        // Creation is lazy: no broker needed.
        let sink = KafkaSink::new(&KafkaConfig::new("127.0.0.1:1", "calls")).expect("producer");
        assert_eq!(sink.topic(), "calls");
        let mut cfg = KafkaConfig::new("127.0.0.1:1", "calls");
        cfg.properties.insert("no.such.property".into(), "1".into());
        let err = KafkaSink::new(&cfg).expect_err("unknown property");
        assert!(matches!(err, SinkError::KafkaClient(_)), "{err:?}");
    }

    #[tokio::test]
    async fn unreachable_broker_is_transient_timeout() {
        let mut cfg = KafkaConfig::new("127.0.0.1:1", "calls");
        cfg.delivery_timeout_ms = 300;
        let sink = KafkaSink::new(&cfg).expect("producer");
        assert!(sink.publish_batch(&[]).await.is_ok());
        let msgs = [KafkaMessage {
            key: "k",
            payload: b"v",
            headers: &[],
        }];
        let err = sink.publish_batch(&msgs).await.expect_err("no broker");
        assert!(err.is_transient(), "{err:?}");
    }
}
