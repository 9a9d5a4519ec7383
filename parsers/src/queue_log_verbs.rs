//! queue_log verbs: the verb → [`EventKind`] table, and a per-parser cache
//! that validates, upper-cases, interns and classifies each distinct verb
//! once (a line then costs one hash lookup for all three).

use crate::event::{EventKind, Str};
use crate::queue_log::QueueLogError;
use rustc_hash::FxHashMap;

/// Distinct verbs (as written) kept before the cache starts over; Asterisk
/// has about 30, so only hostile input ever reaches it.
const LIMIT: usize = 4_096;

/// The verbs calltrail knows (upper-case, as Asterisk writes them) and their kinds.
const KNOWN: [(&str, EventKind); 32] = [
    ("QUEUESTART", EventKind::QueueStart),
    ("CONFIGRELOAD", EventKind::ConfigReload),
    ("DID", EventKind::Did),
    ("ENTERQUEUE", EventKind::EnterQueue),
    ("RINGNOANSWER", EventKind::RingNoAnswer),
    ("RINGCANCELED", EventKind::RingCanceled),
    ("CONNECT", EventKind::Answered),
    ("COMPLETECALLER", EventKind::CompletedByCaller),
    ("COMPLETEAGENT", EventKind::CompletedByAgent),
    ("TRANSFER", EventKind::Transferred),
    ("BLINDTRANSFER", EventKind::Transferred),
    ("ATTENDEDTRANSFER", EventKind::Transferred),
    ("ABANDON", EventKind::Abandoned),
    ("EXITWITHTIMEOUT", EventKind::Timeout),
    ("EXITEMPTY", EventKind::ExitEmpty),
    ("EXITWITHKEY", EventKind::ExitWithKey),
    ("WITHDRAW", EventKind::Withdrawn),
    ("AGENTDUMP", EventKind::AgentDump),
    ("SYSCOMPAT", EventKind::SysCompat),
    ("AGENTLOGIN", EventKind::AgentLogin),
    ("AGENTCALLBACKLOGIN", EventKind::AgentLogin),
    ("AGENTLOGOFF", EventKind::AgentLogoff),
    ("AGENTCALLBACKLOGOFF", EventKind::AgentLogoff),
    ("ADDMEMBER", EventKind::MemberAdded),
    ("REMOVEMEMBER", EventKind::MemberRemoved),
    ("PAUSE", EventKind::Paused),
    ("UNPAUSE", EventKind::Unpaused),
    ("PAUSEALL", EventKind::PausedAll),
    ("UNPAUSEALL", EventKind::UnpausedAll),
    ("PENALTY", EventKind::Penalty),
    ("RINGINUSE", EventKind::RingInUse),
    ("OUTCALL", EventKind::OutCall),
];

/// The index in [`KNOWN`] of an upper-case verb (a `match`: a length
/// switch and one or two compares, cheaper than hashing).
fn known(verb: &str) -> Option<usize> {
    Some(match verb {
        "QUEUESTART" => 0,
        "CONFIGRELOAD" => 1,
        "DID" => 2,
        "ENTERQUEUE" => 3,
        "RINGNOANSWER" => 4,
        "RINGCANCELED" => 5,
        "CONNECT" => 6,
        "COMPLETECALLER" => 7,
        "COMPLETEAGENT" => 8,
        "TRANSFER" => 9,
        "BLINDTRANSFER" => 10,
        "ATTENDEDTRANSFER" => 11,
        "ABANDON" => 12,
        "EXITWITHTIMEOUT" => 13,
        "EXITEMPTY" => 14,
        "EXITWITHKEY" => 15,
        "WITHDRAW" => 16,
        "AGENTDUMP" => 17,
        "SYSCOMPAT" => 18,
        "AGENTLOGIN" => 19,
        "AGENTCALLBACKLOGIN" => 20,
        "AGENTLOGOFF" => 21,
        "AGENTCALLBACKLOGOFF" => 22,
        "ADDMEMBER" => 23,
        "REMOVEMEMBER" => 24,
        "PAUSE" => 25,
        "UNPAUSE" => 26,
        "PAUSEALL" => 27,
        "UNPAUSEALL" => 28,
        "PENALTY" => 29,
        "RINGINUSE" => 30,
        "OUTCALL" => 31,
        _ => return None,
    })
}

/// Maps a queue_log verb (upper-case) to its kind.
pub fn kind_of(verb: &str) -> EventKind {
    known(verb)
        .and_then(|i| KNOWN.get(i))
        .map_or(EventKind::Other, |&(_, kind)| kind)
}

/// A verb as events carry it.
#[derive(Debug, Clone)]
pub struct Verb {
    /// Upper-case, shared by every event with this verb.
    pub name: Str,
    pub kind: EventKind,
}

/// Caches [`Verb`]s by the text as written (already trimmed): the known
/// verbs written upper-case are looked up without hashing, anything else
/// (lower case, verbs calltrail does not know) is validated once and hashed.
#[derive(Debug, Clone)]
pub struct VerbCache {
    /// One per [`KNOWN`] verb, same order.
    known: Vec<Verb>,
    /// Text → index into `verbs` (an index, so a hit can return a borrow).
    map: FxHashMap<Box<str>, u32>,
    verbs: Vec<Verb>,
}

impl Default for VerbCache {
    fn default() -> Self {
        VerbCache {
            known: KNOWN
                .iter()
                .map(|&(name, kind)| Verb {
                    name: Str::from(name),
                    kind,
                })
                .collect(),
            map: FxHashMap::default(),
            verbs: Vec::new(),
        }
    }
}

impl VerbCache {
    /// The verb written as `event` (trimmed), or why it is not one.
    #[inline]
    pub fn get(&mut self, event: &str) -> Result<&Verb, QueueLogError> {
        if let Some(i) = known(event) {
            if i < self.known.len() {
                return Ok(&self.known[i]);
            }
        }
        self.get_other(event)
    }

    fn get_other(&mut self, event: &str) -> Result<&Verb, QueueLogError> {
        if let Some(&i) = self.map.get(event) {
            if (i as usize) < self.verbs.len() {
                return Ok(&self.verbs[i as usize]);
            }
        }
        let verb = classify(event)?;
        if self.verbs.len() >= LIMIT {
            self.map.clear();
            self.verbs.clear();
        }
        let i = self.verbs.len();
        self.verbs.push(verb);
        self.map.insert(event.into(), i as u32);
        Ok(&self.verbs[i])
    }
}

/// Validates, upper-cases and classifies one verb.
fn classify(event: &str) -> Result<Verb, QueueLogError> {
    if event.is_empty() {
        return Err(QueueLogError::EmptyEvent);
    }
    if !event
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(QueueLogError::BadEvent {
            found: event.chars().take(64).collect(),
        });
    }
    let name = event.to_ascii_uppercase();
    Ok(Verb {
        kind: kind_of(&name),
        name: Str::from(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_table_is_consistent() {
        for (i, (name, kind)) in KNOWN.iter().enumerate() {
            assert_eq!(known(name), Some(i), "{name}");
            assert_eq!(kind_of(name), *kind);
            let mut c = VerbCache::default();
            let v = c.get(name).unwrap();
            assert_eq!((&*v.name, v.kind), (*name, *kind));
            let lower = name.to_ascii_lowercase();
            assert_eq!(c.get(&lower).unwrap().kind, *kind);
        }
        assert_eq!(known("CONNECTX"), None);
        assert_eq!(kind_of("connect"), EventKind::Other);
    }

    #[test]
    fn caches_validates_and_classifies() {
        let mut c = VerbCache::default();
        let v = c.get("connect").unwrap();
        assert_eq!((&*v.name, v.kind), ("CONNECT", EventKind::Answered));
        let again = c.get("connect").unwrap().name.clone();
        let upper = c.get("CONNECT").unwrap().name.clone();
        assert_eq!(again, upper);
        assert_eq!(c.get("MIXMONITOR").unwrap().kind, EventKind::Other);
        assert_eq!(c.get("").unwrap_err(), QueueLogError::EmptyEvent);
        assert!(matches!(
            c.get("BAD VERB"),
            Err(QueueLogError::BadEvent { .. })
        ));
        for n in 0..LIMIT + 10 {
            c.get(&format!("V{n}")).unwrap();
        }
        assert!(c.verbs.len() <= LIMIT);
        assert_eq!(c.map.len(), c.verbs.len());
    }
}
