//! A throw-away Kafka-compatible broker for one test, and a way to read back
//! what the product published.
//!
//! [`Broker::start`] runs `tansu broker` (in-memory storage) on a free port of
//! 127.0.0.1 and waits until it accepts connections; dropping the `Broker`
//! kills it. Reading, producing and topic admin go through
//! `tests/support/kafka_consume.py` (kafka-python), a client that shares no
//! code with the product's librdkafka.
//!
//! tansu 0.6.0 behaviour worth knowing:
//! * a topic is created on first use by a *producer* (a metadata request that
//!   allows auto-creation, as librdkafka and kafka-python producers send),
//!   with **4 partitions**; call [`Broker::create_topic`] first when a test
//!   needs one partition (total order) or a known partition count;
//! * the consumer used here never creates topics, so reading a topic nobody
//!   produced to fails after the timeout instead of succeeding empty;
//! * joining a consumer group takes about twice the session timeout
//!   (kafka-python's default 10 s: ~23 s; 6 s: ~3 s), so the reader here
//!   assigns partitions directly and commits nothing; a product-side group
//!   consumer tested against tansu wants a short `session.timeout.ms`.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::tools;

/// The header of calltrail's heartbeats, as kafka_consume.py's filters take it.
pub const HEARTBEAT: &str = "kind=heartbeat";

/// How long the broker may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports tried before giving up: a free port can be taken by someone else
/// between [`tools::free_port`] and tansu's bind.
const START_ATTEMPTS: usize = 5;
/// Extra time the helper script gets beyond its own timeout before it is
/// killed (Python start-up, connection set-up, close).
const SCRIPT_GRACE: Duration = Duration::from_secs(30);

/// A message read back from a topic. Keys, values and header values are
/// decoded as UTF-8 (invalid bytes replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedMessage {
    pub key: Option<String>,
    pub value: String,
    pub partition: i32,
    pub offset: i64,
    /// Record headers in order, as (name, value).
    pub headers: Vec<(String, String)>,
}

/// A running tansu broker on 127.0.0.1; killed on drop.
pub struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker on a free port and waits until it accepts
    /// connections. Panics (with the broker's log) if it cannot.
    pub fn start() -> Broker {
        let tansu = tools::tansu();
        let dir = tempfile::Builder::new()
            .prefix("calltrail-broker-")
            .tempdir()
            .expect("tempdir");
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = tools::free_port();
            let log = dir.path().join(format!("tansu-{attempt}.log"));
            let mut child = spawn(&tansu, port, &log);
            if wait_ready(&mut child, port, &log) {
                return Broker {
                    child,
                    port,
                    log,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            failures.push_str(&format!(
                "--- attempt {attempt}, port {port}:\n{}\n",
                super::tail(&log, 20)
            ));
        }
        panic!("tansu failed to start {START_ATTEMPTS} times:\n{failures}");
    }

    /// The broker's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:PORT"`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The last `lines` lines of the broker's output (stdout and stderr).
    /// Its log level is `warn` unless `CALLTRAIL_TANSU_LOG` sets `RUST_LOG`.
    pub fn log_tail(&self, lines: usize) -> String {
        super::tail(&self.log, lines)
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1).
    /// Succeeds if the topic already exists.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let partitions = partitions.to_string();
        self.script(
            &[
                "--topic",
                topic,
                "--create-topic",
                "--partitions",
                &partitions,
            ],
            Duration::from_secs(20),
            "create topic",
        );
    }

    /// The names of all topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.script(&["--list-topics"], Duration::from_secs(20), "list topics")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Produces `values` in order, all with `key`, and waits for the acks.
    /// Creates the topic (4 partitions) if it does not exist.
    pub fn produce(&self, topic: &str, key: Option<&str>, values: &[&str]) {
        assert!(!values.is_empty(), "produce: no values");
        let mut args = vec!["--topic", topic];
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        for value in values {
            args.extend(["--produce", value]);
        }
        self.script(&args, Duration::from_secs(20), "produce");
    }

    /// Reads `topic` from the earliest offset until at least `expect` messages
    /// arrived, and returns them ordered by (partition, offset). Panics, with
    /// the consumer's and the broker's output, if fewer arrive within
    /// `timeout` or the topic does not exist by then. calltrail's heartbeats
    /// (header `kind: heartbeat`, sent by the clock) are left out: see
    /// [`Broker::consume_heartbeats`].
    pub fn consume(&self, topic: &str, expect: usize, timeout: Duration) -> Vec<ConsumedMessage> {
        self.consume_settled(topic, expect, timeout, Duration::ZERO)
    }

    /// calltrail's heartbeats on `topic` (header `kind: heartbeat`) and
    /// nothing else, as [`Broker::consume_settled`] reads.
    pub fn consume_heartbeats(
        &self,
        topic: &str,
        expect: usize,
        timeout: Duration,
        linger: Duration,
    ) -> Vec<ConsumedMessage> {
        self.read(topic, expect, timeout, linger, ["--only-header", HEARTBEAT])
    }

    /// Like [`Broker::consume`], but once `expect` messages arrived it keeps
    /// reading for `linger` more, so a test can assert there are no extra
    /// messages (duplicates): check the length of what is returned. With
    /// `expect == 0` it reads whatever is there within `linger` (the topic
    /// must exist). Heartbeats are left out.
    pub fn consume_settled(
        &self,
        topic: &str,
        expect: usize,
        timeout: Duration,
        linger: Duration,
    ) -> Vec<ConsumedMessage> {
        self.read(topic, expect, timeout, linger, ["--skip-header", HEARTBEAT])
    }

    fn read(
        &self,
        topic: &str,
        expect: usize,
        timeout: Duration,
        linger: Duration,
        filter: [&str; 2],
    ) -> Vec<ConsumedMessage> {
        let expect_arg = expect.to_string();
        let timeout_arg = format!("{:.3}", timeout.as_secs_f64());
        let linger_arg = format!("{:.3}", linger.as_secs_f64());
        let stdout = self.script(
            &[
                "--topic",
                topic,
                "--expect",
                &expect_arg,
                "--timeout",
                &timeout_arg,
                "--linger",
                &linger_arg,
                filter[0],
                filter[1],
            ],
            timeout + linger,
            &format!("consume {expect} message(s) from {topic:?}"),
        );
        stdout.lines().map(parse_message).collect()
    }

    /// Runs kafka_consume.py against this broker; returns its stdout or
    /// panics with everything needed to see why it failed.
    fn script(&self, args: &[&str], timeout: Duration, what: &str) -> String {
        let mut cmd = Command::new(tools::python());
        cmd.arg(tools::support_script("kafka_consume.py"))
            .args(["--bootstrap", &self.bootstrap()])
            .args(args);
        let out = tools::run(&mut cmd, timeout + SCRIPT_GRACE);
        if !out.success() {
            panic!(
                "kafka_consume.py failed to {what} (exit {:?}, killed on deadline: {})\n\
                 --- stderr:\n{}\n--- stdout:\n{}\n--- broker log ({}):\n{}",
                out.code,
                out.timed_out,
                out.stderr.trim_end(),
                out.stdout.trim_end(),
                self.bootstrap(),
                self.log_tail(40)
            );
        }
        out.stdout
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(tansu: &Path, port: u16, log: &Path) -> Child {
    let out = File::create(log).expect("create broker log");
    let err = out.try_clone().expect("clone log handle");
    let url = format!("tcp://127.0.0.1:{port}");
    let rust_log = std::env::var("CALLTRAIL_TANSU_LOG").unwrap_or_else(|_| "warn".to_owned());
    Command::new(tansu)
        .arg("broker")
        .args(["--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu.display()))
}

/// True once the port accepts connections while tansu is alive; false if
/// tansu exited or could not bind. Panics on timeout.
fn wait_ready(child: &mut Child, port: u16, log: &Path) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut first_connect: Option<Instant> = None;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("AddrInUse") || text.contains("Address in use") {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // tansu 0.6.0 prints "ready in …" once it listens. Without that
            // line (another build), trust a port that stays up for a second
            // rather than a foreign process that happens to hold it.
            let since = *first_connect.get_or_insert_with(Instant::now);
            if text.contains("ready in") || since.elapsed() >= Duration::from_secs(1) {
                return true;
            }
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "tansu did not accept connections on 127.0.0.1:{port} within {START_TIMEOUT:?}; log:\n{}",
        super::tail(log, 40)
    );
}

fn parse_message(line: &str) -> ConsumedMessage {
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("bad line from kafka_consume.py ({e}): {line}"));
    let text = |field: &str| v[field].as_str().map(str::to_owned);
    let int = |field: &str| {
        v[field]
            .as_i64()
            .unwrap_or_else(|| panic!("no {field} in {line}"))
    };
    ConsumedMessage {
        key: text("key"),
        value: text("value").unwrap_or_else(|| panic!("no value in {line}")),
        partition: i32::try_from(int("partition")).expect("partition fits i32"),
        offset: int("offset"),
        headers: v["headers"]
            .as_array()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        let part = |i: usize| h[i].as_str().unwrap_or_default().to_owned();
                        (part(0), part(1))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
