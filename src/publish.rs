//! The Kafka publisher: feeds the topic from the store (transactional outbox).
//!
//! Events are committed to DuckDB first; this task reads them in `seq` order
//! after its own checkpoint, publishes them (key = call id), waits for every
//! acknowledgement, and only then moves its position. The position is kept
//! in memory and written as the checkpoint in the background (one write at
//! a time, at most every 0.1 s), so no checkpoint commit sits between two
//! messages. A broker outage delays the stream but never loses
//! it, and never stalls local ingest. A crash re-publishes what was
//! acknowledged since the last checkpoint write (~0.1 s of events):
//! delivery is at-least-once, with `event_id` for
//! de-duplication.

use crate::store::health::Failure;
use crate::store::{Store, StoreError};
use calltrail_sinks::{KafkaMessage, KafkaSink};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// The sink name under which the publisher keeps its checkpoint.
pub const SINK: &str = "kafka";
/// The checkpoint of derived state changes (`state_events`) on Kafka.
pub const STATE_SINK: &str = "kafka-state";
/// What a publisher follows: a table and the checkpoint it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub table: &'static str,
    pub sink: &'static str,
}

const EVENTS_TABLE: &str = "events";

/// The input events.
pub const EVENTS: Stream = Stream {
    table: EVENTS_TABLE,
    sink: SINK,
};
/// The derived state changes (`state_events`), published by their own task
/// so that they never hold up input events.
pub const STATE_EVENTS: Stream = Stream {
    table: "state_events",
    sink: STATE_SINK,
};
const BATCH: usize = 5_000;

/// How far the events' publisher is, shared with the heartbeats
/// (`heartbeat.rs`): the last `seq` the broker acknowledged, and since when
/// a batch has waited for the broker (set when one is handed over, cleared
/// by its acknowledgement: a failed batch keeps it, until one goes through).
#[derive(Debug)]
pub struct Progress {
    /// The last `seq` acknowledged (at start: the checkpoint); -1 before
    /// the publisher's first read.
    acked: AtomicI64,
    waiting_since: Mutex<Option<Instant>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            acked: AtomicI64::new(-1),
            waiting_since: Mutex::new(None),
        }
    }
}

impl Progress {
    /// The publisher starts after `seq` (its checkpoint).
    fn start_at(&self, seq: i64) {
        let _ = self
            .acked
            .compare_exchange(-1, seq, Ordering::AcqRel, Ordering::Acquire);
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.waiting_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A batch is handed to the broker.
    pub fn sending(&self) {
        self.waiting().get_or_insert_with(Instant::now);
    }

    /// Everything up to `seq` is acknowledged.
    pub fn acknowledged(&self, seq: i64) {
        self.acked.fetch_max(seq, Ordering::AcqRel);
        *self.waiting() = None;
    }

    /// The last `seq` acknowledged (`None` until the publisher has read its
    /// checkpoint).
    pub fn acked(&self) -> Option<i64> {
        Some(self.acked.load(Ordering::Acquire)).filter(|s| *s >= 0)
    }

    /// How long a batch has been waiting for the broker (`None`: nothing
    /// waits, the publisher is caught up or between batches).
    pub fn waiting_for(&self) -> Option<Duration> {
        self.waiting().map(|t| t.elapsed())
    }
}

/// Whether background workers keep running or finish what is due and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Drain,
}

/// Runs until `mode` turns to `Drain` and everything stored is published;
/// keeps `progress` (when given) up to date.
pub async fn run(
    store: Store,
    sink: Arc<KafkaSink>,
    stream: Stream,
    wake: Arc<Notify>,
    mut mode: watch::Receiver<Mode>,
    progress: Option<Arc<Progress>>,
) {
    let store = Arc::new(store);
    let mut backoff = Duration::from_millis(200);
    // Published up to here (read from the store once, then kept in memory).
    let mut after: Option<i64> = None;
    // The checkpoint: written after every acknowledged batch, in the
    // background (one write at a time), never in front of the next batch.
    let mut checkpoint = Checkpointer::new(store.clone(), stream.sink);
    // The read of what follows the batch in flight, started before that
    // batch is sent so that it overlaps the wait for the broker.
    let mut ahead: Option<Read> = None;
    loop {
        let read_started = Instant::now();
        // Only a fresh read that started after draining began may end it:
        // the sources (and, for state changes, the deriver) had finished by
        // then, so it sees everything they committed.
        let draining = *mode.borrow() == Mode::Drain;
        let (batch, read_ahead) = match ahead.take() {
            Some(r) => (r.await, true),
            None => (read(&store, stream, after).await, false),
        };
        let batch = match batch {
            Ok(Ok((from, b))) => {
                after = Some(from);
                if let Some(p) = &progress {
                    p.start_at(from);
                }
                b
            }
            Ok(Err(e)) => {
                if Failure::of(&e).is_some() {
                    // The store's health logged it (once, then every minute).
                    tracing::debug!(error = %e, "cannot read events to publish");
                } else {
                    tracing::error!(error = %e, "cannot read events to publish");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "publisher store task failed");
                return;
            }
        };
        if batch.is_empty() && read_ahead {
            // Read while the previous batch was in flight: something may
            // have been committed since. Only a fresh read may say "nothing
            // more" (when draining, that ends the task).
            continue;
        }
        if batch.is_empty() {
            checkpoint.kick();
            if draining {
                checkpoint.finish().await;
                return;
            }
            if *mode.borrow() == Mode::Drain {
                continue; // draining began during that read: read again
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(checkpoint.due_in().unwrap_or(Duration::from_secs(1))) => {}
                _ = mode.changed() => {}
            }
            continue;
        }
        let payloads: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|(_, ev)| {
                // An Event always serializes (strings, numbers, enums); should
                // that ever break, say so loudly rather than stall the topic.
                let body = serde_json::to_vec(ev).unwrap_or_else(|e| {
                    tracing::error!(event_id = %ev.event_id, error = %e, "cannot serialize an event; publishing it empty");
                    Vec::new()
                });
                (ev.partition_key().to_string(), body)
            })
            .collect();
        let ids: Vec<&str> = batch.iter().map(|(_, ev)| ev.event_id.as_str()).collect();
        let headers: Vec<[(&str, &[u8]); 1]> =
            ids.iter().map(|id| [("event_id", id.as_bytes())]).collect();
        let msgs: Vec<KafkaMessage<'_>> = payloads
            .iter()
            .zip(&headers)
            .map(|((k, p), h)| KafkaMessage {
                key: k,
                payload: p,
                headers: h,
            })
            .collect();
        let publish_started = Instant::now();
        let last = batch.last().map(|(seq, _)| *seq).unwrap_or(0);
        ahead = Some(read(&store, stream, Some(last)));
        if let Some(p) = &progress {
            p.sending();
        }
        match sink.publish_batch(&msgs).await {
            Ok(()) => {
                if let Some(p) = &progress {
                    p.acknowledged(last);
                }
                tracing::debug!(
                    count = batch.len(),
                    read_us = (publish_started - read_started).as_micros() as u64,
                    publish_us = publish_started.elapsed().as_micros() as u64,
                    last_seq = last,
                    topic = sink.topic(),
                    "published"
                );
                after = Some(last);
                backoff = Duration::from_millis(200);
                checkpoint.acknowledged(last);
            }
            Err(e) => {
                // Sent again from the same position: the read ahead is moot.
                ahead = None;
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "kafka publish failed; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = mode.changed() => {}
                }
                if *mode.borrow() == Mode::Drain {
                    // Draining with a broker that is down: stop; the store
                    // keeps the events and the next start publishes them.
                    checkpoint.finish().await;
                    tracing::warn!("stopping with unpublished events; they will be published on the next start");
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Writes a publisher's checkpoint behind it: each acknowledged position is
/// handed over and written by one background write at a time, at most every
/// [`CHECKPOINT_EVERY`] (a newer position replaces one still waiting), so the
/// checkpoint never goes backwards, stays within ~0.1 s of what the broker
/// acknowledged, and publishing never waits for it.
struct Checkpointer {
    store: Arc<Store>,
    sink: &'static str,
    /// Acknowledged, not yet being written.
    pending: Option<i64>,
    /// A position whose write failed (the store could not be written):
    /// written again unless a newer one is pending.
    failed: Arc<std::sync::Mutex<Option<i64>>>,
    writing: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
    last_write: Option<Instant>,
}

/// The least time between two checkpoint writes of a publisher (each is a
/// DuckDB commit; one per batch would compete with ingest for the store).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

impl Checkpointer {
    fn new(store: Arc<Store>, sink: &'static str) -> Checkpointer {
        Checkpointer {
            store,
            sink,
            pending: None,
            failed: Arc::default(),
            writing: None,
            last_write: None,
        }
    }

    /// When a position is waiting: how long until it may be written.
    fn due_in(&self) -> Option<Duration> {
        self.pending.or(*lock(&self.failed))?;
        Some(
            self.last_write
                .map_or(Duration::ZERO, |t| {
                    CHECKPOINT_EVERY.saturating_sub(t.elapsed())
                })
                .max(Duration::from_millis(1)),
        )
    }

    /// `seq` and everything before it is acknowledged by the broker.
    fn acknowledged(&mut self, seq: i64) {
        self.pending = Some(seq);
        self.kick();
    }

    /// Starts writing the pending position unless a write is under way or
    /// the last one was less than [`CHECKPOINT_EVERY`] ago.
    fn kick(&mut self) {
        if self.writing.as_ref().is_some_and(|h| !h.is_finished())
            || self
                .last_write
                .is_some_and(|t| t.elapsed() < CHECKPOINT_EVERY)
        {
            return;
        }
        if let Some(done) = self.writing.take() {
            // A finished write: report its failure, if any (the handle
            // resolves at once).
            tokio::spawn(async move { log_write(done.await) });
        }
        // A failed write is tried again, unless a newer position came.
        let failed = lock(&self.failed).take();
        if let Some(seq) = self.pending.take().or(failed) {
            let (s, sink, again) = (self.store.clone(), self.sink, self.failed.clone());
            self.last_write = Some(Instant::now());
            self.writing = Some(tokio::task::spawn_blocking(move || {
                let r = s.set_sink_checkpoint(sink, seq);
                if r.as_ref().is_err_and(|e| Failure::of(e).is_some()) {
                    let mut f = lock(&again);
                    *f = Some(f.map_or(seq, |old| old.max(seq)));
                }
                r
            }));
        }
    }

    /// Waits for the write under way, then writes what is pending.
    async fn finish(&mut self) {
        if let Some(h) = self.writing.take() {
            log_write(h.await);
        }
        let failed = lock(&self.failed).take();
        if let Some(seq) = self.pending.take().or(failed) {
            let (s, sink) = (self.store.clone(), self.sink);
            log_write(tokio::task::spawn_blocking(move || s.set_sink_checkpoint(sink, seq)).await);
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn log_write(r: Result<Result<(), StoreError>, tokio::task::JoinError>) {
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) if Failure::of(&e).is_some() => {
            // The store's health logged it; the write is tried again.
            tracing::debug!(error = %e, "cannot store the kafka checkpoint yet");
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot store the kafka checkpoint (what follows it will be sent again after a restart)")
        }
        Err(e) => tracing::error!(error = %e, "publisher checkpoint task failed"),
    }
}

/// A read of the events after a position, running on the blocking pool.
type Read =
    tokio::task::JoinHandle<Result<(i64, Vec<(i64, calltrail_parsers::Event)>), StoreError>>;

/// Starts reading the next batch of `stream` after `after` (after the
/// stored checkpoint when `None`).
fn read(store: &Arc<Store>, stream: Stream, after: Option<i64>) -> Read {
    if let (Some(a), EVENTS_TABLE) = (after, stream.table) {
        // Just committed: from memory, no query.
        if let Some(b) = store.recent_after(a, BATCH) {
            return tokio::spawn(std::future::ready(Ok((a, b))));
        }
    }
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let from = match after {
            Some(a) => a,
            None => s.sink_checkpoint(stream.sink)?,
        };
        let b = s.events_after_in(stream.table, from, BATCH)?;
        Ok((from, b))
    })
}
