//! The lookup's table of parties, packed: about 110 bytes a party where a
//! map of `PartyFacts` took ~330 (a million callers' history is the
//! common case, and the daemon's whole budget is 512 MB by default).
//!
//! - A key that is digits with an optional `+` (every E.164 number, every
//!   internal one) is packed into a `u64`; anything else keeps its string
//!   in a second, small map.
//! - The map holds a slot number; the facts live in a slab, one fixed-size
//!   record each: times as `i64` with [`NONE`] for none, agents as
//!   numbers into a table of names (agents are few, parties many), the
//!   runs of a party as one boxed slice (most have none or one), the open
//!   missed-call episode boxed (most have none).
//!
//! [`Parties::get`] gives the facts back as a [`PartyFacts`] (a handful of
//! `Arc` clones and one small vector): the decision reads that.

use crate::state::party_facts::{Contact, OpenMissed, PartyFacts, Run};
use std::collections::HashMap;
use std::sync::Arc;

/// A time that is not there.
const NONE: i64 = i64::MIN;
/// An agent that is not there.
const NO_AGENT: u32 = u32::MAX;

/// One run of answered contacts with one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedRun {
    first: i64,
    last: i64,
    agent: u32,
}

/// One party's facts (see the module doc): 72 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packed {
    calls: u32,
    ended_calls: u32,
    first_seen_at: i64,
    last_seen_at: i64,
    answered_at: i64,
    contact_at: i64,
    answered_agent: u32,
    contact_agent: u32,
    runs: Box<[PackedRun]>,
    missed: Option<Box<OpenMissed>>,
}

/// The parties the lookup knows (see the module doc).
#[derive(Debug, Default)]
pub struct Parties {
    by_number: HashMap<u64, u32>,
    by_other: HashMap<Box<str>, u32>,
    slab: Vec<Packed>,
    /// Slots of removed parties, reused first.
    free: Vec<u32>,
    names: Vec<Arc<str>>,
    name_ids: HashMap<Arc<str>, u32>,
    runs: usize,
}

/// `key` packed into a `u64` when it is 1..=17 digits with an optional
/// leading `+` (the state tables' `party_key` of a number, the same value).
fn pack_key(key: &str) -> Option<u64> {
    crate::state::party_key::packed(key)
}

fn opt(t: Option<i64>) -> i64 {
    t.unwrap_or(NONE)
}
fn unopt(t: i64) -> Option<i64> {
    (t != NONE).then_some(t)
}

impl Parties {
    /// An empty table with room for `n` parties.
    pub fn with_capacity(n: usize) -> Parties {
        Parties {
            by_number: HashMap::with_capacity(n),
            slab: Vec::with_capacity(n),
            ..Parties::default()
        }
    }

    /// Parties held.
    pub fn len(&self) -> usize {
        self.slab.len() - self.free.len()
    }

    /// The heap this table holds, in bytes, about (the maps' buckets, the
    /// slab, the runs and episodes): what `run` counts against the budget.
    pub fn heap_bytes(&self) -> u64 {
        let bucket = |k: usize, v: usize| (k + v).next_multiple_of(8) as u64 + 1;
        let map = self.by_number.capacity() as u64 * bucket(8, 4)
            + self.by_other.capacity() as u64 * bucket(16, 4)
            + self
                .by_other
                .keys()
                .map(|k| k.len() as u64 + 16)
                .sum::<u64>();
        let slab = self.slab.capacity() as u64 * std::mem::size_of::<Packed>() as u64;
        // A boxed slice of n runs: n × 24 bytes in a chunk of malloc's.
        let runs = self.runs as u64 * std::mem::size_of::<PackedRun>() as u64
            + self.slab.iter().filter(|p| !p.runs.is_empty()).count() as u64 * 16;
        let missed = self.slab.iter().filter(|p| p.missed.is_some()).count() as u64
            * (std::mem::size_of::<OpenMissed>() as u64 + 16);
        map + slab + runs + missed + self.names.iter().map(|n| n.len() as u64 + 64).sum::<u64>()
    }

    fn slot(&self, key: &str) -> Option<u32> {
        match pack_key(key) {
            Some(k) => self.by_number.get(&k).copied(),
            None => self.by_other.get(key).copied(),
        }
    }

    /// The facts of the party `key`.
    pub fn get(&self, key: &str) -> Option<PartyFacts> {
        let p = &self.slab[self.slot(key)? as usize];
        let contact = |agent: u32, at: i64| {
            (agent != NO_AGENT && at != NONE).then(|| Contact {
                agent: self.names[agent as usize].clone(),
                at,
            })
        };
        Some(PartyFacts {
            calls: p.calls,
            ended_calls: p.ended_calls,
            first_seen_at: unopt(p.first_seen_at),
            last_seen_at: unopt(p.last_seen_at),
            last_answered: contact(p.answered_agent, p.answered_at),
            last_contact: contact(p.contact_agent, p.contact_at),
            runs: p
                .runs
                .iter()
                .map(|r| Run {
                    agent: self.names[r.agent as usize].clone(),
                    first: r.first,
                    last: r.last,
                })
                .collect(),
            missed: p.missed.as_deref().cloned(),
        })
    }

    fn name(&mut self, agent: &str) -> u32 {
        if let Some(id) = self.name_ids.get(agent) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(NO_AGENT - 1);
        let name: Arc<str> = Arc::from(agent);
        self.names.push(name.clone());
        self.name_ids.insert(name, id);
        id
    }

    fn pack(&mut self, f: &PartyFacts) -> Packed {
        let mut contact = |c: &Option<Contact>| match c {
            Some(c) => (self.name(&c.agent), c.at),
            None => (NO_AGENT, NONE),
        };
        let (answered_agent, answered_at) = contact(&f.last_answered);
        let (contact_agent, contact_at) = contact(&f.last_contact);
        let runs = f
            .runs
            .iter()
            .map(|r| PackedRun {
                first: r.first,
                last: r.last,
                agent: self.name(&r.agent),
            })
            .collect();
        Packed {
            calls: f.calls,
            ended_calls: f.ended_calls,
            first_seen_at: opt(f.first_seen_at),
            last_seen_at: opt(f.last_seen_at),
            answered_at,
            contact_at,
            answered_agent,
            contact_agent,
            runs,
            missed: f.missed.clone().map(Box::new),
        }
    }

    /// Sets the facts of the party `key` (a party with no facts is
    /// removed).
    pub fn set(&mut self, key: &str, f: &PartyFacts) {
        if *f == PartyFacts::default() {
            self.remove(key);
            return;
        }
        let packed = self.pack(f);
        self.runs += packed.runs.len();
        if let Some(slot) = self.slot(key) {
            let old = std::mem::replace(&mut self.slab[slot as usize], packed);
            self.runs -= old.runs.len();
            return;
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = packed;
                s
            }
            None => {
                // Grown by an eighth, not doubled: the slab of a million
                // callers is 73 MB, and a few new callers after the load
                // would otherwise take as much again.
                if self.slab.len() == self.slab.capacity() {
                    self.slab.reserve_exact((self.slab.len() / 8).max(1024));
                }
                self.slab.push(packed);
                u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX)
            }
        };
        match pack_key(key) {
            Some(k) => self.by_number.insert(k, slot),
            None => self.by_other.insert(key.into(), slot),
        };
    }

    /// Forgets the party `key`.
    pub fn remove(&mut self, key: &str) {
        let slot = match pack_key(key) {
            Some(k) => self.by_number.remove(&k),
            None => self.by_other.remove(key),
        };
        if let Some(s) = slot {
            let old = std::mem::replace(
                &mut self.slab[s as usize],
                Packed {
                    calls: 0,
                    ended_calls: 0,
                    first_seen_at: NONE,
                    last_seen_at: NONE,
                    answered_at: NONE,
                    contact_at: NONE,
                    answered_agent: NO_AGENT,
                    contact_agent: NO_AGENT,
                    runs: Box::default(),
                    missed: None,
                },
            );
            self.runs -= old.runs.len();
            self.free.push(s);
        }
    }

    /// Gives back what the load's growth left unused.
    pub fn shrink_to_fit(&mut self) {
        self.by_number.shrink_to_fit();
        self.by_other.shrink_to_fit();
        self.slab.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(agents: &[(&str, i64)], missed: bool) -> PartyFacts {
        let a = |s: &str| -> Arc<str> { Arc::from(s) };
        PartyFacts {
            calls: 4,
            ended_calls: 3,
            first_seen_at: Some(-5),
            last_seen_at: Some(i64::MAX),
            last_answered: agents.last().map(|(n, at)| Contact {
                agent: a(n),
                at: *at,
            }),
            last_contact: Some(Contact {
                agent: a("Local/203@agents"),
                at: 0,
            }),
            runs: agents
                .iter()
                .map(|(n, at)| Run {
                    agent: a(n),
                    first: *at,
                    last: at + 1,
                })
                .collect(),
            missed: missed.then(|| OpenMissed {
                queue: Some("support".into()),
                opened_at: 1,
                last_missed_at: 2,
                count: 3,
            }),
        }
    }

    #[test]
    fn keys_pack_apart_and_facts_come_back_whole() {
        let keys = [
            "+79161234567",
            "79161234567",
            "079161234567",
            "0",
            "00",
            "+0",
            "99999999999999999",
            "+99999999999999999",
            "999999999999999999",
            "1234567890123456789012",
            "sip:alice",
            "",
        ];
        assert_eq!(pack_key("999999999999999999"), None, "18 digits");
        let mut t = Parties::default();
        for (i, k) in keys.iter().enumerate() {
            let f = facts(&[("201", i as i64), ("PJSIP/202", 7)], i % 2 == 0);
            t.set(k, &f);
        }
        assert_eq!(t.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            let want = facts(&[("201", i as i64), ("PJSIP/202", 7)], i % 2 == 0);
            assert_eq!(t.get(k), Some(want), "{k:?}");
        }
        assert_eq!(t.get("+7916123456"), None);
        assert_eq!(t.get("9161234567"), None);
    }

    #[test]
    fn set_replaces_remove_frees_and_default_facts_remove() {
        let mut t = Parties::default();
        t.set("+1", &facts(&[("a", 1), ("b", 2)], true));
        t.set("+2", &facts(&[("a", 1)], false));
        assert_eq!(t.runs, 3);
        t.set("+1", &facts(&[], false));
        assert_eq!(t.runs, 1);
        assert_eq!(t.get("+1").map(|f| f.runs.len()), Some(0));
        assert_eq!(t.get("+1").and_then(|f| f.last_answered), None);
        t.set("+2", &PartyFacts::default());
        assert_eq!((t.len(), t.runs, t.get("+2")), (1, 0, None));
        t.set("+3", &facts(&[("c", 9)], false));
        assert_eq!(t.slab.len(), 2, "the freed slot is reused");
        assert_eq!(t.get("+3").map(|f| f.runs[0].first), Some(9));
        t.remove("+404");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_party_packs_small() {
        assert_eq!(std::mem::size_of::<Packed>(), 72);
        let mut t = Parties::with_capacity(100_000);
        for i in 0..100_000i64 {
            t.set(&format!("+7916{i:07}"), &facts(&[("201", i)], false));
        }
        t.shrink_to_fit();
        let per = t.heap_bytes() / 100_000;
        assert!((90..140).contains(&per), "{per} bytes a party");
        // New parties after the load grow the slab by an eighth.
        t.set("+1", &facts(&[], false));
        assert_eq!(t.slab.capacity(), 100_000 + 12_500);
    }
}
