//! Recording what an action did while the store cannot be written (a full
//! disk): the send is done, and an outcome lost would send it again, so
//! the write is retried, with backoff, until the store takes it (the
//! worker waits meanwhile). Any other error is logged and the write given
//! up, as before. And the worker's pause: while the store cannot be
//! written, it starts no send, but looks again with backoff (a pass whose
//! writes tell whether the store takes them again).

use crate::store::health::Failure;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Runs `write` on the blocking pool until it succeeds or fails for a
/// reason other than the store's writability; `what` names it in the log.
pub(crate) async fn record<F>(store: &Arc<Store>, id: &str, what: &str, write: F)
where
    F: Fn(&Store) -> Result<(), StoreError> + Send + Sync + 'static,
{
    let write = Arc::new(write);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let (s, w) = (store.clone(), write.clone());
        match tokio::task::spawn_blocking(move || w(&s)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) if Failure::of(&e).is_some() => {
                // The store's health logged it (once, then every minute).
                tracing::debug!(action = %id, error = %e, retry_in_s = backoff.as_secs(), "cannot record {what} yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Ok(Err(e)) => {
                tracing::error!(action = %id, error = %e, "cannot record {what}");
                return;
            }
            Err(e) => {
                tracing::error!(action = %id, error = %e, "action store task failed");
                return;
            }
        }
    }
}

/// The worker's pause while the store cannot be written.
#[derive(Debug)]
pub(crate) struct Pause {
    next: Duration,
    /// The pause is over: the next pass runs.
    probing: bool,
}

impl Default for Pause {
    fn default() -> Pause {
        Pause {
            next: FIRST_BACKOFF,
            probing: false,
        }
    }
}

impl Pause {
    /// How long to wait before the next pass (`None`: run it now), given
    /// whether the store can be written as far as known.
    pub(crate) fn wait(&mut self, writable: bool) -> Option<Duration> {
        if writable {
            *self = Pause::default();
            return None;
        }
        if self.probing {
            // This pass runs; the next one waits longer if the store still
            // cannot be written.
            self.probing = false;
            return None;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        self.probing = true;
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_grows_and_ends_with_the_failure() {
        let mut p = Pause::default();
        assert_eq!(p.wait(true), None);
        assert_eq!(p.wait(false), Some(Duration::from_secs(1)));
        assert_eq!(p.wait(false), None, "a pass after the pause");
        assert_eq!(p.wait(false), Some(Duration::from_secs(2)));
        assert_eq!(p.wait(false), None);
        for _ in 0..10 {
            p.wait(false);
        }
        assert_eq!(p.wait(false).or(p.wait(false)), Some(MAX_BACKOFF));
        assert_eq!(p.wait(true), None);
        assert_eq!(p.wait(false), Some(Duration::from_secs(1)), "afresh");
    }
}
