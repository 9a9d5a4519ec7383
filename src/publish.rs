//! The Kafka publisher: feeds the topic from the store (transactional outbox).
//!
//! Events are committed to DuckDB first; this task reads them in `seq` order
//! after its own checkpoint, publishes them (key = call id), waits for every
//! acknowledgement, and only then moves its checkpoint. A broker outage
//! therefore delays the stream but never loses it, and never stalls local
//! ingest. A crash between acknowledgement and checkpoint re-publishes that
//! batch: delivery is at-least-once, with `event_id` for de-duplication.

use crate::store::Store;
use calltrail_sinks::{KafkaMessage, KafkaSink};
use std::sync::Arc;
use std::time::Duration;
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

/// The input events.
pub const EVENTS: Stream = Stream {
    table: "events",
    sink: SINK,
};
/// The derived state changes (`state_events`), published by their own task
/// so that they never hold up input events.
pub const STATE_EVENTS: Stream = Stream {
    table: "state_events",
    sink: STATE_SINK,
};
const BATCH: usize = 5_000;

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
    loop {
        let s = store.clone();
        let batch = tokio::task::spawn_blocking(move || {
            let after = s.sink_checkpoint(stream.sink)?;
            let b = s.events_after_in(stream.table, after, BATCH)?;
            Ok::<_, crate::store::StoreError>((stream.sink, b))
        })
        .await;
        let (sink_name, batch) = match batch {
            Ok(Ok(b)) => b,
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
            if *mode.borrow() == Mode::Drain {
                return;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
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
        match sink.publish_batch(&msgs).await {
            Ok(()) => {
                let last = batch.last().map(|(seq, _)| *seq).unwrap_or(0);
                let s = store.clone();
                match tokio::task::spawn_blocking(move || s.set_sink_checkpoint(sink_name, last))
                    .await
                {
                    Ok(Ok(())) => {
                        tracing::debug!(
                            count = batch.len(),
                            last_seq = last,
                            topic = sink.topic(),
                            "published"
                        );
                        backoff = Duration::from_millis(200);
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "published, but cannot store the kafka checkpoint (the batch will be sent again)")
                    }
                    Err(e) => tracing::error!(error = %e, "publisher checkpoint task failed"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "kafka publish failed; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = mode.changed() => {}
                }
                if *mode.borrow() == Mode::Drain {
                    // Draining with a broker that is down: stop; the store
                    // keeps the events and the next start publishes them.
                    tracing::warn!("stopping with unpublished events; they will be published on the next start");
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
