//! Callback pacing: at most `[callbacks] per_minute` placed in any
//! minute, so that a night's misses due at the opening ring the agents one
//! after another rather than all at 09:00:00.

use std::time::Duration;

/// At most `per_minute` callbacks in any minute (0: no limit).
pub(super) struct Pace {
    per_minute: usize,
    recent: std::collections::VecDeque<std::time::Instant>,
}

impl Pace {
    pub(super) fn new(per_minute: u32) -> Pace {
        Pace {
            per_minute: per_minute as usize,
            recent: std::collections::VecDeque::new(),
        }
    }

    /// Whether one more callback may be placed at `now`.
    pub(super) fn ready(&mut self, now: std::time::Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.recent.pop_front();
        }
        self.per_minute == 0 || self.recent.len() < self.per_minute
    }

    pub(super) fn placed(&mut self, now: std::time::Instant) {
        if self.per_minute > 0 {
            self.recent.push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::{Duration, Instant};

    #[test]
    fn pace_allows_n_a_minute() {
        let t0 = Instant::now();
        let mut p = Pace::new(2);
        assert!(p.ready(t0));
        p.placed(t0);
        p.placed(t0 + Duration::from_secs(10));
        assert!(!p.ready(t0 + Duration::from_secs(59)));
        assert!(p.ready(t0 + Duration::from_secs(60)));
        let mut free = Pace::new(0);
        for _ in 0..1000 {
            free.placed(t0);
        }
        assert!(free.ready(t0));
    }
}
