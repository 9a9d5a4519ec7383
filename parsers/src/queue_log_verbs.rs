//! queue_log verbs: the verb → [`EventKind`] table, and a per-parser cache
//! that validates, upper-cases, interns and classifies each distinct verb
//! once (a line then costs one hash lookup for all three).

use crate::event::{EventKind, Str};
use crate::queue_log::QueueLogError;
use rustc_hash::FxHashMap;

/// Distinct verbs (as written) kept before the cache starts over; Asterisk
/// has about 30, so only hostile input ever reaches it.
const LIMIT: usize = 4_096;

/// Maps a queue_log verb (upper-case) to its kind.
pub fn kind_of(verb: &str) -> EventKind {
    match verb {
        "QUEUESTART" => EventKind::QueueStart,
        "CONFIGRELOAD" => EventKind::ConfigReload,
        "DID" => EventKind::Did,
        "ENTERQUEUE" => EventKind::EnterQueue,
        "RINGNOANSWER" => EventKind::RingNoAnswer,
        "RINGCANCELED" => EventKind::RingCanceled,
        "CONNECT" => EventKind::Answered,
        "COMPLETECALLER" => EventKind::CompletedByCaller,
        "COMPLETEAGENT" => EventKind::CompletedByAgent,
        "TRANSFER" | "BLINDTRANSFER" | "ATTENDEDTRANSFER" => EventKind::Transferred,
        "ABANDON" => EventKind::Abandoned,
        "EXITWITHTIMEOUT" => EventKind::Timeout,
        "EXITEMPTY" => EventKind::ExitEmpty,
        "EXITWITHKEY" => EventKind::ExitWithKey,
        "WITHDRAW" => EventKind::Withdrawn,
        "AGENTDUMP" => EventKind::AgentDump,
        "SYSCOMPAT" => EventKind::SysCompat,
        "AGENTLOGIN" | "AGENTCALLBACKLOGIN" => EventKind::AgentLogin,
        "AGENTLOGOFF" | "AGENTCALLBACKLOGOFF" => EventKind::AgentLogoff,
        "ADDMEMBER" => EventKind::MemberAdded,
        "REMOVEMEMBER" => EventKind::MemberRemoved,
        "PAUSE" => EventKind::Paused,
        "UNPAUSE" => EventKind::Unpaused,
        "PAUSEALL" => EventKind::PausedAll,
        "UNPAUSEALL" => EventKind::UnpausedAll,
        "PENALTY" => EventKind::Penalty,
        "RINGINUSE" => EventKind::RingInUse,
        "OUTCALL" => EventKind::OutCall,
        _ => EventKind::Other,
    }
}

/// A verb as events carry it.
#[derive(Debug, Clone)]
pub struct Verb {
    /// Upper-case, shared by every event with this verb.
    pub name: Str,
    pub kind: EventKind,
}

/// Caches [`Verb`]s by the text as written (already trimmed).
#[derive(Debug, Default, Clone)]
pub struct VerbCache {
    /// Text → index into `verbs` (an index, so a hit can return a borrow).
    map: FxHashMap<Box<str>, u32>,
    verbs: Vec<Verb>,
}

impl VerbCache {
    /// The verb written as `event` (trimmed), or why it is not one.
    pub fn get(&mut self, event: &str) -> Result<&Verb, QueueLogError> {
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
