//! The wallboard's live feed. One task reads the board from the store when
//! the derived state changes (the state deriver wakes it): at once after a
//! quiet spell, at most twice a second in a burst, and within a CPU budget
//! (a read that cost `c` of CPU time is followed by a gap of
//! `c / CPU_SHARE`); and at least every `READ_EVERY`. In between, every
//! second while anyone watches, it brings the last board up to date without
//! the store (waits grow, sources go stale). It publishes each board on a
//! watch channel. Each `GET /api/wall/stream` client receives it as
//! server-sent events (`event: wall`, the JSON of `/api/wall`), filtered to
//! its `?queues=`. Each board is serialised once per filter (by the first
//! screen that needs it), so the figures and their JSON cost the same for
//! one screen or fifty; nothing is computed while none is open
//! (bench/wall_load.sh measures it).

use super::figures::Wall;
use super::WallConfig;
use crate::store::Store;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// One board as published: its figures, and their JSON per filter of the
/// screens that asked (a handful of distinct `?queues=`, however many
/// screens).
#[derive(Debug)]
pub struct Board {
    wall: Wall,
    json: Mutex<Vec<(Vec<String>, Arc<str>)>>,
}

impl Board {
    fn new(wall: Wall) -> Board {
        Board {
            wall,
            json: Mutex::new(Vec::new()),
        }
    }

    /// The JSON of the board for `only` (sorted, no duplicates; every
    /// queue when empty), serialised on first use.
    fn json(&self, only: &[String]) -> Arc<str> {
        let mut cache = self.json.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, j)) = cache.iter().find(|(k, _)| k.as_slice() == only) {
            return j.clone();
        }
        let text = if only.is_empty() {
            serde_json::to_string(&self.wall)
        } else {
            serde_json::to_string(&self.wall.clone().only(only))
        };
        let j: Arc<str> = text.unwrap_or_default().into();
        cache.push((only.to_vec(), j.clone()));
        j
    }
}

/// The shared feed.
#[derive(Debug)]
pub struct Feed {
    tx: watch::Sender<Option<Arc<Board>>>,
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

    fn subscribe(&self) -> watch::Receiver<Option<Arc<Board>>> {
        let rx = self.tx.subscribe();
        self.wake.notify_one();
        rx
    }
}

/// The board's reads may take at most this share of one core: after a read
/// that cost `c` of the daemon's CPU time, the next waits at least
/// `c / CPU_SHARE` (however busy the PBX, however many screens). CPU time,
/// not elapsed time: a host busy with other work does not slow the board.
const CPU_SHARE: f64 = 0.05;
/// Between two reads, at least this: a burst of changes (a busy PBX
/// commits a state change every line) is shown twice a second, a lone
/// change at once…
const MIN_GAP: Duration = Duration::from_millis(500);
/// …and at most this, when reads are costly.
const MAX_GAP: Duration = Duration::from_secs(2);
/// A board is read again at least this often while screens watch (the
/// last hour's service level slides with the clock); in between, each
/// second brings the last one up to date without reading the store.
const READ_EVERY: Duration = Duration::from_secs(10);

/// The gap after a read that cost `cpu`.
fn gap_after(cpu: Duration) -> Duration {
    cpu.div_f64(CPU_SHARE).clamp(MIN_GAP, MAX_GAP)
}

/// The CPU time the daemon has used (every thread: DuckDB's workers take
/// part in a read); zero where the clock cannot be read.
fn process_cpu() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

async fn publish(feed: Arc<Feed>, store: Arc<Store>, cfg: Arc<WallConfig>) {
    // The last board read, when, and the gap its cost asks for.
    let mut last: Option<(Wall, Instant, Duration)> = None;
    // The state changed (or a screen connected) since the last read.
    let mut changed = true;
    loop {
        tokio::select! {
            _ = feed.wake.notified() => changed = true,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if feed.tx.receiver_count() == 0 {
            // No one watches: nothing is computed, and the next screen
            // waits for a fresh board rather than getting an old one.
            if last.take().is_some() {
                feed.tx.send_replace(None);
            }
            changed = true;
            continue;
        }
        let now = chrono::Utc::now();
        if let Some((w, read_at, _)) = &last {
            let same_day =
                super::figures::days(&cfg, w.generated_at) == super::figures::days(&cfg, now);
            if !changed && same_day && read_at.elapsed() < READ_EVERY {
                let board = w.clone().at(&cfg, now);
                feed.tx.send_replace(Some(Arc::new(Board::new(board))));
                continue;
            }
        }
        if let Some((_, read_at, gap)) = &last {
            let since = read_at.elapsed();
            if since < *gap {
                tokio::time::sleep(*gap - since).await;
            }
        }
        // Changes from here on ask for another read.
        changed = false;
        let (s, c) = (store.clone(), cfg.clone());
        let started = Instant::now();
        let r = tokio::task::spawn_blocking(move || {
            let cpu = process_cpu();
            let w = s.with_conn(|conn| super::figures::read(conn, &c, chrono::Utc::now(), &[]));
            (w, process_cpu().saturating_sub(cpu))
        })
        .await;
        match r {
            Ok((Ok(w), cpu)) => {
                tracing::debug!(
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    cpu_ms = cpu.as_secs_f64() * 1e3,
                    screens = feed.tx.receiver_count(),
                    "wallboard read"
                );
                feed.tx.send_replace(Some(Arc::new(Board::new(w.clone()))));
                last = Some((w, started, gap_after(cpu)));
            }
            Ok((Err(e), _)) => tracing::warn!(error = %e, "cannot compute the wallboard"),
            Err(e) => tracing::warn!(error = %e, "the wallboard task failed"),
        }
    }
}

/// `GET /api/wall/stream`: the board as server-sent events, the current
/// one at once, then each new one.
pub fn stream(feed: &Arc<Feed>, mut only: Vec<String>) -> Response {
    only.sort();
    only.dedup();
    let rx = feed.subscribe();
    let events =
        futures_util::stream::unfold((rx, only, true), |(mut rx, only, first)| async move {
            if !first {
                rx.changed().await.ok()?;
            }
            loop {
                let board = rx.borrow_and_update().clone();
                if let Some(b) = board {
                    let ev = Event::default().event("wall").data(&*b.json(&only));
                    return Some((Ok::<_, Infallible>(ev), (rx, only, false)));
                }
                rx.changed().await.ok()?;
            }
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::wall::figures::{AgentRow, QueueTile};

    fn wall() -> Wall {
        let tile = |q: &str, waiting| QueueTile {
            queue: q.to_string(),
            waiting,
            ..QueueTile::default()
        };
        let agent = |a: &str, q: &str| AgentRow {
            agent: a.to_string(),
            name: a.to_string(),
            state: "available",
            pause_reason: None,
            since: None,
            queues: vec![q.to_string()],
            calls_today: 1,
            talk_s_today: 60,
        };
        Wall {
            generated_at: chrono::Utc::now(),
            stale: false,
            stale_sources: Vec::new(),
            service_level_formula: "default".to_string(),
            queues: vec![tile("sales", 2), tile("support", 1)],
            agents: vec![agent("201", "sales"), agent("202", "support")],
        }
    }

    /// Every screen gets what serialising its own filtered copy gave, and
    /// screens with the same filter share one serialisation.
    #[test]
    fn each_filter_is_serialised_once_and_as_before() {
        let w = wall();
        let board = Board::new(w.clone());
        let all = board.json(&[]);
        assert_eq!(&*all, serde_json::to_string(&w).unwrap());
        let only = vec!["support".to_string()];
        let support = board.json(&only);
        assert_eq!(
            &*support,
            serde_json::to_string(&w.clone().only(&only)).unwrap()
        );
        assert!(!support.contains("sales"));
        assert!(Arc::ptr_eq(&support, &board.json(&only)));
        assert!(Arc::ptr_eq(&all, &board.json(&[])));
    }

    /// A slow read spaces the next ones out: the board's reads stay within
    /// CPU_SHARE of a core, between MIN_GAP and MAX_GAP apart.
    #[test]
    fn reads_stay_within_their_cpu_share() {
        assert_eq!(gap_after(Duration::from_millis(1)), MIN_GAP);
        assert_eq!(gap_after(Duration::from_millis(10)), MIN_GAP);
        assert_eq!(gap_after(Duration::from_millis(50)), Duration::from_secs(1));
        assert!(process_cpu() > Duration::ZERO);
        assert_eq!(gap_after(Duration::from_secs(1)), MAX_GAP);
    }
}
