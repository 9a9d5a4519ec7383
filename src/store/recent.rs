//! The events committed lately, held in memory in `seq` order, so that the
//! Kafka publisher takes what was just committed without a query (a read of
//! `events` costs milliseconds; this is the latency of every message). Only
//! what is known to be complete is served: every commit of events either
//! appends here (tailed batches, under the commit lock, after the commit
//! succeeded) or tells this to forget (imports, snapshot sources), and
//! anything older than what is held is read from the store.

use calltrail_parsers::Event;
use std::collections::VecDeque;

/// How many events are held at most.
const CAPACITY: usize = 20_000;

#[derive(Debug)]
pub struct Recent {
    events: VecDeque<(i64, Event)>,
    /// Every committed event with `seq >= complete_from` is in `events`.
    complete_from: i64,
    /// The `seq` after the last one held.
    next: i64,
}

impl Recent {
    /// Nothing held; `next_seq` is the next `seq` to be committed.
    pub fn new(next_seq: i64) -> Recent {
        Recent {
            events: VecDeque::new(),
            complete_from: next_seq,
            next: next_seq,
        }
    }

    /// Events committed with `seq`s from `first` on, in order.
    pub fn push<'e>(&mut self, first: i64, events: impl ExactSizeIterator<Item = &'e Event>) {
        let n = events.len();
        if n > CAPACITY || first != self.next {
            self.forget(first + n as i64);
            return;
        }
        for (i, e) in events.enumerate() {
            self.events.push_back((first + i as i64, e.clone()));
        }
        self.next = first + n as i64;
        while self.events.len() > CAPACITY {
            self.events.pop_front();
        }
        self.complete_from = self.events.front().map_or(self.next, |(s, _)| *s);
    }

    /// Events were committed another way; what follows `next_seq` will be
    /// held again.
    pub fn forget(&mut self, next_seq: i64) {
        self.events.clear();
        self.complete_from = next_seq;
        self.next = next_seq;
    }

    /// Up to `limit` events after `after`, or `None` when some of them may
    /// not be held (read the store).
    pub fn after(&self, after: i64, limit: usize) -> Option<Vec<(i64, Event)>> {
        if after + 1 < self.complete_from {
            return None;
        }
        let start = self.events.partition_point(|(s, _)| *s <= after);
        Some(
            self.events
                .iter()
                .skip(start)
                .take(limit)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltrail_parsers::{EventKind, SourceKind};

    fn ev(i: i64) -> Event {
        let mut e = Event::new(
            SourceKind::AsteriskQueueLog,
            "s".into(),
            "p".into(),
            chrono::DateTime::from_timestamp(i, 0).unwrap(),
            EventKind::EnterQueue,
            "ENTERQUEUE".into(),
        );
        e.event_id = format!("s:0:{i}");
        e
    }

    fn seqs(v: Option<Vec<(i64, Event)>>) -> Option<Vec<i64>> {
        v.map(|v| v.into_iter().map(|(s, _)| s).collect())
    }

    #[test]
    fn serves_only_what_is_complete() {
        let mut r = Recent::new(10);
        assert_eq!(seqs(r.after(9, 10)), Some(vec![]), "nothing committed yet");
        assert_eq!(seqs(r.after(5, 10)), None, "before what is held");
        let evs: Vec<Event> = (10..13).map(ev).collect();
        r.push(10, evs.iter());
        assert_eq!(seqs(r.after(9, 10)), Some(vec![10, 11, 12]));
        assert_eq!(seqs(r.after(10, 1)), Some(vec![11]));
        assert_eq!(seqs(r.after(12, 10)), Some(vec![]));
        // A commit that did not come through here: only what follows it.
        r.forget(20);
        assert_eq!(seqs(r.after(12, 10)), None);
        assert_eq!(seqs(r.after(19, 10)), Some(vec![]));
        // A gap (a push not following the last) forgets too.
        let evs: Vec<Event> = (25..27).map(ev).collect();
        r.push(25, evs.iter());
        assert_eq!(seqs(r.after(19, 10)), None);
        assert_eq!(seqs(r.after(26, 10)), Some(vec![]));
    }

    #[test]
    fn drops_the_oldest_beyond_capacity() {
        let mut r = Recent::new(1);
        let evs: Vec<Event> = (1..=CAPACITY as i64).map(ev).collect();
        r.push(1, evs.iter());
        let more: Vec<Event> = (CAPACITY as i64 + 1..CAPACITY as i64 + 11)
            .map(ev)
            .collect();
        r.push(CAPACITY as i64 + 1, more.iter());
        assert_eq!(seqs(r.after(0, 1)), None);
        assert_eq!(seqs(r.after(10, 1)), Some(vec![11]));
    }
}
