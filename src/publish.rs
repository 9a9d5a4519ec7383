//! The Kafka publisher: feeds the topic from the store (transactional outbox).
//!
//! Events are committed to DuckDB first; this task reads them in `seq` order
//! after its own checkpoint, publishes them (key = call id), waits for every
//! acknowledgement, and only then moves its position. The position is kept
//! in memory and written as the checkpoint at most once a second (and when
//! it stops), so no checkpoint commit sits between two messages. A broker
//! outage delays the stream but never loses it, and never stalls local
//! ingest. A crash re-publishes what was acknowledged since the last
//! checkpoint write (≤ 1 s): delivery is at-least-once, with `event_id` for
//! de-duplication.

use crate::store::{Store, StoreError};
use calltrail_sinks::{KafkaMessage, KafkaSink};
use std::sync::Arc;
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
/// How often the publisher's checkpoint is written while it keeps
/// publishing (and always when it goes idle past this, or stops). Between
/// writes its position is kept in memory, so a commit of the checkpoint
/// never delays the next message; a crash re-publishes at most this much.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Whether background workers keep running or finish what is due and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Drain,
}

/// Runs until `mode` turns to `Drain` and everything stored is published.
pub async fn run(
    store: Store,
    sink: Arc<KafkaSink>,
    stream: Stream,
    wake: Arc<Notify>,
    mut mode: watch::Receiver<Mode>,
) {
    let store = Arc::new(store);
    let mut backoff = Duration::from_millis(200);
    // Published up to here (read from the store once, then kept in memory).
    let mut after: Option<i64> = None;
    // Published but not yet written as the checkpoint.
    let mut unsaved: Option<i64> = None;
    let mut saved_at = Instant::now();
    // The read of what follows the batch in flight, started before that
    // batch is sent so that it overlaps the wait for the broker.
    let mut ahead: Option<Read> = None;
    loop {
        let read_started = Instant::now();
        let batch = match ahead.take() {
            Some(r) => r.await,
            None => read(&store, stream, after).await,
        };
        let batch = match batch {
            Ok(Ok((from, b))) => {
                after = Some(from);
                b
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read events to publish");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "publisher store task failed");
                return;
            }
        };
        if batch.is_empty() {
            let draining = *mode.borrow() == Mode::Drain;
            if unsaved.is_some() && (draining || saved_at.elapsed() >= CHECKPOINT_EVERY) {
                save(&store, stream.sink, &mut unsaved).await;
                saved_at = Instant::now();
            }
            if draining {
                return;
            }
            let idle = match unsaved {
                Some(_) => CHECKPOINT_EVERY.saturating_sub(saved_at.elapsed()),
                None => Duration::from_secs(1),
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(idle) => {}
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
        match sink.publish_batch(&msgs).await {
            Ok(()) => {
                tracing::debug!(
                    count = batch.len(),
                    read_us = (publish_started - read_started).as_micros() as u64,
                    publish_us = publish_started.elapsed().as_micros() as u64,
                    last_seq = last,
                    topic = sink.topic(),
                    "published"
                );
                after = Some(last);
                unsaved = Some(last);
                backoff = Duration::from_millis(200);
                if saved_at.elapsed() >= CHECKPOINT_EVERY {
                    save(&store, stream.sink, &mut unsaved).await;
                    saved_at = Instant::now();
                }
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
                    save(&store, stream.sink, &mut unsaved).await;
                    tracing::warn!("stopping with unpublished events; they will be published on the next start");
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Writes the publisher's checkpoint (`unsaved` is cleared once stored; on
/// failure it is kept and written next time).
async fn save(store: &Arc<Store>, sink: &'static str, unsaved: &mut Option<i64>) {
    let Some(seq) = *unsaved else { return };
    let s = store.clone();
    match tokio::task::spawn_blocking(move || s.set_sink_checkpoint(sink, seq)).await {
        Ok(Ok(())) => *unsaved = None,
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
