//! The wallboard's live feed. One task computes the board when the derived
//! state changes (the state deriver wakes it), and every second while
//! anyone watches (waits grow, sources go stale), at most five times a
//! second; it publishes the board on a watch channel. Each
//! `GET /api/wall/stream` client receives it as server-sent events (`event:
//! wall`, the JSON of `/api/wall`), filtered to its `?queues=`. The cost does
//! not grow with the number of screens, and nothing is computed while none
//! is open.

use super::figures::Wall;
use super::WallConfig;
use crate::store::Store;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The shared feed.
#[derive(Debug)]
pub struct Feed {
    tx: watch::Sender<Option<Arc<Wall>>>,
    /// Wakes the publisher: the state changed, or a screen connected.
    wake: Arc<Notify>,
}

impl Feed {
    /// Starts the publisher on the current runtime; `wake` is notified by
    /// the state deriver after each pass.
    pub fn start(store: Store, cfg: Arc<WallConfig>, wake: Arc<Notify>) -> Arc<Feed> {
        let (tx, _) = watch::channel(None);
        let feed = Arc::new(Feed { tx, wake });
        tokio::spawn(publish(feed.clone(), Arc::new(store), cfg));
        feed
    }

    fn subscribe(&self) -> watch::Receiver<Option<Arc<Wall>>> {
        let rx = self.tx.subscribe();
        self.wake.notify_one();
        rx
    }
}

async fn publish(feed: Arc<Feed>, store: Arc<Store>, cfg: Arc<WallConfig>) {
    loop {
        tokio::select! {
            _ = feed.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if feed.tx.receiver_count() == 0 {
            continue;
        }
        let (s, c) = (store.clone(), cfg.clone());
        let r = tokio::task::spawn_blocking(move || {
            s.with_conn(|conn| super::figures::read(conn, &c, chrono::Utc::now(), &[]))
        })
        .await;
        match r {
            Ok(Ok(w)) => {
                feed.tx.send_replace(Some(Arc::new(w)));
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot compute the wallboard"),
            Err(e) => tracing::warn!(error = %e, "the wallboard task failed"),
        }
        // Bursts of state changes: at most five boards a second.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /api/wall/stream`: the board as server-sent events, the current
/// one at once, then each new one.
pub fn stream(feed: &Arc<Feed>, only: Vec<String>) -> Response {
    let rx = feed.subscribe();
    let events =
        futures_util::stream::unfold((rx, only, true), |(mut rx, only, first)| async move {
            if !first {
                rx.changed().await.ok()?;
            }
            loop {
                let board = rx.borrow_and_update().clone();
                if let Some(w) = board {
                    let json = serde_json::to_string(&(*w).clone().only(&only)).unwrap_or_default();
                    let ev = Event::default().event("wall").data(json);
                    return Some((Ok::<_, Infallible>(ev), (rx, only, false)));
                }
                rx.changed().await.ok()?;
            }
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}
