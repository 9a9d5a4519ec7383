//! Heartbeats on the Kafka topic, so that downstream can tell a quiet source
//! from a dead sidecar: every `[kafka] heartbeat_interval_s` (default 30;
//! 0: none), one message per configured source saying what its reader last
//! saw (when a line last arrived, bytes not read yet, lines so far), who sent
//! it (host, version, start time), and how many stored events Kafka has not
//! acknowledged yet.
//!
//! A heartbeat is not an event: it is never stored (no `events` row, no
//! `seq`), and it goes straight to the events' producer: same topic, key =
//! the source's name, header `kind: heartbeat` (and no `event_id` header),
//! JSON `{"kind": "heartbeat", …}` as `docs/heartbeat.schema.json` describes.
//! It is sent only while the events' publisher is not blocked — no batch of
//! events has been waiting for the broker longer than one interval — so a
//! heartbeat never says "alive" while events are stuck; its
//! `unpublished_events` tells a backlog being worked off. A heartbeat that
//! the broker does not take is dropped and never sent again (the next one
//! follows an interval later); events never wait for one.

use crate::config::Config;
use crate::publish::{Mode, Progress};
use crate::store::Store;
use crate::tail::status::{SourceStatus, Statuses};
use calltrail_parsers::SourceKind;
use calltrail_sinks::{KafkaMessage, KafkaSink};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The record header that marks a heartbeat (events carry `event_id`).
pub const HEADER: (&str, &[u8]) = ("kind", b"heartbeat");

/// What a heartbeat message is (its `kind`; an event's is an event kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatKind {
    Heartbeat,
}

/// One source's heartbeat: the JSON value of the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Heartbeat")]
pub struct Heartbeat {
    /// Always `heartbeat` (the header `kind` says the same).
    pub kind: HeartbeatKind,
    /// The configured source's name (also the message's key).
    pub source: String,
    /// The configured source's kind.
    pub source_kind: SourceKind,
    /// The configured PBX name.
    pub pbx: String,
    /// When the heartbeat was made, UTC.
    pub ts: DateTime<Utc>,
    /// Seconds until the next heartbeat of this source, when all is well.
    pub interval_s: u64,
    /// The host calltrail runs on.
    pub host: String,
    /// calltrail's version.
    pub version: String,
    /// When this calltrail process started (a new value: it restarted).
    pub started_at: DateTime<Utc>,
    /// When a line of the source was last stored, UTC (absent: none since
    /// the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_line_at: Option<DateTime<Utc>>,
    /// Seconds since a line of the source was last stored (since the start
    /// when none was).
    pub last_line_age_s: f64,
    /// Bytes of the source's file not read yet (absent for snapshot
    /// sources, and while the file is not there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_behind: Option<u64>,
    /// Lines of the source read and stored or rejected since the start.
    pub lines: u64,
    /// Events stored from them since the start.
    pub events: u64,
    /// Lines rejected since the start.
    pub rejects: u64,
    /// The source's file has not been found readable for longer than its
    /// `stale_after_s` (as the wallboard and `/metrics` say).
    pub stale: bool,
    /// Events stored (of every source) that Kafka had not acknowledged
    /// when the heartbeat was made: the publisher's backlog.
    pub unpublished_events: u64,
}

/// The JSON Schema of a heartbeat message (`docs/heartbeat.schema.json`).
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(Heartbeat)
}

/// One configured source as the heartbeats see it.
#[derive(Debug)]
struct Source {
    name: String,
    pbx: String,
    kind: SourceKind,
    path: PathBuf,
    /// Read line by line (a lag in bytes), not re-read whole.
    lines: bool,
    status: Arc<SourceStatus>,
}

/// Everything the heartbeats of a daemon need besides the store.
#[derive(Debug)]
pub struct Heartbeats {
    interval: Duration,
    sources: Vec<Source>,
    host: String,
    started_at: DateTime<Utc>,
}

impl Heartbeats {
    /// The heartbeats of `cfg`'s sources (`None`: no Kafka, or
    /// `heartbeat_interval_s = 0`).
    pub fn new(cfg: &Config, statuses: &Statuses) -> Option<Heartbeats> {
        let k = cfg.kafka.as_ref()?;
        if k.heartbeat_interval_s == 0 {
            return None;
        }
        let sources = cfg
            .sources
            .iter()
            .filter_map(|s| {
                Some(Source {
                    name: s.name.clone(),
                    pbx: s.pbx.clone(),
                    kind: s.kind,
                    path: s.path.clone(),
                    lines: !crate::snapshot::handles(s.kind),
                    status: statuses.get(&s.name)?,
                })
            })
            .collect();
        Some(Heartbeats {
            interval: Duration::from_secs(k.heartbeat_interval_s),
            sources,
            host: host(),
            started_at: Utc::now(),
        })
    }

    /// Every source's heartbeat at `now`: `behind` tells a line source's
    /// bytes not read yet, `unpublished` the publisher's backlog.
    fn beats(&self, now: SystemTime, behind: &[Option<u64>], unpublished: u64) -> Vec<Heartbeat> {
        self.sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let st = &s.status;
                let last = st.last_line();
                let since = last.unwrap_or(st.started());
                Heartbeat {
                    kind: HeartbeatKind::Heartbeat,
                    source: s.name.clone(),
                    source_kind: s.kind,
                    pbx: s.pbx.clone(),
                    ts: DateTime::<Utc>::from(now),
                    interval_s: self.interval.as_secs(),
                    host: self.host.clone(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    started_at: self.started_at,
                    last_line_at: last.map(DateTime::<Utc>::from),
                    last_line_age_s: now
                        .duration_since(since)
                        .map_or(0.0, |d| d.as_millis() as f64 / 1000.0),
                    bytes_behind: behind.get(i).copied().flatten(),
                    lines: st.lines.load(Ordering::Relaxed),
                    events: st.events.load(Ordering::Relaxed),
                    rejects: st.rejects.load(Ordering::Relaxed),
                    stale: st.stale(now),
                    unpublished_events: unpublished,
                }
            })
            .collect()
    }
}

/// This host's name (`unknown` when it cannot be read).
fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether a heartbeat may be sent: the publisher has read its checkpoint
/// and no batch has waited for the broker longer than `interval`.
fn may_beat(progress: &Progress, interval: Duration) -> Result<i64, &'static str> {
    let acked = progress
        .acked()
        .ok_or("the publisher has not started yet")?;
    if progress.waiting_for().is_some_and(|w| w > interval) {
        return Err("events have waited for the broker longer than one interval");
    }
    Ok(acked)
}

/// Sends the heartbeats every interval until `mode` turns to `Drain`.
pub async fn run(
    hb: Heartbeats,
    store: Store,
    sink: Arc<KafkaSink>,
    progress: Arc<Progress>,
    mut mode: watch::Receiver<Mode>,
) {
    let hb = Arc::new(hb);
    let store = Arc::new(store);
    let mut tick = tokio::time::interval(hb.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is at once: beat one interval in
    tracing::info!(
        interval_s = hb.interval.as_secs(),
        sources = hb.sources.len(),
        topic = sink.topic(),
        "heartbeats on"
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = mode.changed() => {
                if changed.is_err() {
                    return; // the daemon is gone
                }
            }
        }
        if *mode.borrow() == Mode::Drain {
            return;
        }
        let acked = match may_beat(&progress, hb.interval) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(why, "no heartbeat this time");
                continue;
            }
        };
        // What the sources' files hold beyond their checkpoints, and the
        // events after the acknowledged position (`seq`s may have gaps: a
        // count, which the zone maps of `seq` keep to the table's tail).
        let (h, s) = (hb.clone(), store.clone());
        let read = tokio::task::spawn_blocking(move || {
            s.with_conn(|c| {
                let behind = h
                    .sources
                    .iter()
                    .map(|src| {
                        if !src.lines {
                            return None;
                        }
                        crate::serve::metrics::bytes_behind(c, &src.name, &src.path)
                            .unwrap_or_else(|e| {
                                tracing::warn!(source = %src.name, error = %e, "cannot read the source's checkpoint for its heartbeat");
                                None
                            })
                    })
                    .collect::<Vec<_>>();
                let unpublished = c.query_row(
                    "SELECT count(*) FROM events WHERE seq > ?",
                    [acked],
                    |r| r.get::<_, i64>(0),
                );
                (behind, unpublished)
            })
        })
        .await;
        let (behind, unpublished) = match read {
            Ok((behind, Ok(n))) => (behind, u64::try_from(n).unwrap_or(0)),
            Ok((_, Err(e))) => {
                tracing::warn!(error = %e, "cannot count the unpublished events; no heartbeat this time");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat store task failed");
                continue;
            }
        };
        let beats = hb.beats(SystemTime::now(), &behind, unpublished);
        let payloads: Vec<Vec<u8>> = beats
            .iter()
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .collect();
        let headers = [HEADER];
        let msgs: Vec<KafkaMessage<'_>> = beats
            .iter()
            .zip(&payloads)
            .map(|(b, p)| KafkaMessage {
                key: &b.source,
                payload: p,
                headers: &headers,
            })
            .collect();
        // Not past the next beat: a heartbeat held up is dropped.
        match tokio::time::timeout(hb.interval, sink.publish_batch(&msgs)).await {
            Ok(Ok(())) => {
                tracing::debug!(sources = msgs.len(), unpublished, "heartbeats sent")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "heartbeats not delivered (dropped)"),
            Err(_) => tracing::warn!("heartbeats not acknowledged within one interval (dropped)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/heartbeat.schema.json");

    /// The published schema is exactly the one derived from the type.
    /// Regenerate with `UPDATE_SCHEMA=1 cargo test -p calltrail --lib heartbeat`.
    #[test]
    fn published_schema_matches_the_type() {
        let generated = serde_json::to_string_pretty(&json_schema()).expect("schema") + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(PATH, &generated).expect("write schema");
        }
        let published = std::fs::read_to_string(PATH).expect("docs/heartbeat.schema.json");
        assert_eq!(
            published, generated,
            "docs/heartbeat.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p calltrail --lib heartbeat"
        );
    }

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
[[sources]]
name = "dbf"
kind = "wintariff_dbf"
path = "CALLS.DBF"
pbx = "office"
{extra}
"#
        );
        crate::config::parse(&text, &dir.path().join("c.toml")).unwrap()
    }

    fn statuses(cfg: &Config) -> Statuses {
        Statuses(
            cfg.sources
                .iter()
                .map(|s| {
                    Arc::new(SourceStatus::new(
                        &s.name,
                        s.path.clone(),
                        Duration::from_secs(60),
                    ))
                })
                .collect(),
        )
    }

    #[test]
    fn on_by_default_with_kafka_off_at_zero() {
        let cfg = config("");
        assert!(
            Heartbeats::new(&cfg, &statuses(&cfg)).is_none(),
            "no [kafka]"
        );
        let cfg = config("[kafka]\nbrokers = \"h:1\"\n");
        assert_eq!(cfg.kafka.as_ref().unwrap().heartbeat_interval_s, 30);
        let hb = Heartbeats::new(&cfg, &statuses(&cfg)).expect("on");
        assert_eq!(hb.interval, Duration::from_secs(30));
        assert_eq!(hb.sources.len(), 2);
        assert!(hb.sources[0].lines && !hb.sources[1].lines);
        let cfg = config("[kafka]\nbrokers = \"h:1\"\nheartbeat_interval_s = 0\n");
        assert!(Heartbeats::new(&cfg, &statuses(&cfg)).is_none());
    }

    /// Each source's figures, its age growing while no line comes.
    #[test]
    fn a_heartbeat_per_source_with_its_figures() {
        let cfg = config("[kafka]\nbrokers = \"h:1\"\nheartbeat_interval_s = 5\n");
        let st = statuses(&cfg);
        let hb = Heartbeats::new(&cfg, &st).unwrap();
        st.0[0].committed(10, 9, 1);
        let t = SystemTime::now() + Duration::from_secs(3);
        let beats = hb.beats(t, &[Some(42), None], 7);
        assert_eq!(beats.len(), 2);
        let q = &beats[0];
        assert_eq!(q.source, "q");
        assert_eq!(q.pbx, "pbx1");
        assert_eq!(q.source_kind, SourceKind::AsteriskQueueLog);
        assert_eq!((q.lines, q.events, q.rejects), (10, 9, 1));
        assert_eq!(q.bytes_behind, Some(42));
        assert_eq!(q.unpublished_events, 7);
        assert_eq!(q.interval_s, 5);
        assert!(q.last_line_at.is_some());
        assert!(
            (2.9..3.2).contains(&q.last_line_age_s),
            "{}",
            q.last_line_age_s
        );
        assert_eq!(q.version, env!("CARGO_PKG_VERSION"));
        assert!(!q.host.is_empty());
        let d = &beats[1];
        assert_eq!(d.source, "dbf");
        assert_eq!(d.bytes_behind, None);
        assert_eq!(
            d.last_line_at, None,
            "no line yet: the age counts from the start"
        );
        let later = hb.beats(t + Duration::from_secs(10), &[Some(0), None], 0);
        assert!(later[0].last_line_age_s > q.last_line_age_s + 9.0);
        assert_eq!(later[0].last_line_at, q.last_line_at);
        // The JSON: kind heartbeat, no event fields, absent options left out.
        let v = serde_json::to_value(d).unwrap();
        assert_eq!(v["kind"], "heartbeat");
        assert_eq!(v["source_kind"], "wintariff_dbf");
        assert!(v.get("event_id").is_none());
        assert!(v.get("bytes_behind").is_none() && v.get("last_line_at").is_none());
        let back: Heartbeat = serde_json::from_value(v).unwrap();
        assert_eq!(&back, d);
    }

    /// No heartbeat before the publisher knows where it is, nor while a
    /// batch has waited for the broker longer than an interval.
    #[test]
    fn silent_while_the_publisher_is_blocked() {
        let p = Progress::default();
        let i = Duration::from_millis(50);
        assert!(may_beat(&p, i).is_err(), "not started");
        p.acknowledged(10);
        assert_eq!(may_beat(&p, i), Ok(10));
        p.sending();
        assert_eq!(may_beat(&p, i), Ok(10), "a batch just sent");
        std::thread::sleep(Duration::from_millis(80));
        assert!(may_beat(&p, i).is_err(), "waiting longer than an interval");
        p.acknowledged(20);
        assert_eq!(may_beat(&p, i), Ok(20));
    }
}
