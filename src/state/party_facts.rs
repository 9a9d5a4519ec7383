//! What the dialplan lookup needs to know about one party, kept in memory
//! (`crate::lookup::Index`): how often they called, whether a call of
//! theirs ever ended, their contacts with agents (the sticky-agent
//! policies) and their open missed-call episode. Built from the party's
//! `calls` rows by the same functions that write `callers`, `last_agent`
//! and `missed_calls`, so the lookup and the tables never disagree.

use super::calls::CallRow;
use super::party::{caller_row, calls_of, episodes, last_agent, Episode, PartyCall};
use super::StateConfig;
use std::collections::HashMap;
use std::sync::Arc;

/// A contact with an agent: who, and when (µs since the epoch, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub agent: Arc<str>,
    pub at: i64,
}

/// Consecutive answered contacts with one agent, in time order: the
/// `first_agent` policy's history, kept small (a party served by one agent
/// for years is one run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub agent: Arc<str>,
    pub first: i64,
    pub last: i64,
}

/// An open missed-call episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenMissed {
    pub queue: Option<String>,
    pub opened_at: i64,
    pub last_missed_at: i64,
    pub count: i32,
}

/// One party's facts (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartyFacts {
    /// Inbound calls of the caller's (`callers.calls`).
    pub calls: u32,
    /// Of those, the ones that ended: `first_call` is "none ended" (the call
    /// being routed, if already seen, does not count).
    pub ended_calls: u32,
    pub first_seen_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    /// The latest answered conversation with an agent, in or out
    /// (`last_agent`).
    pub last_answered: Option<Contact>,
    /// The latest call with an agent either way, answered or not: an
    /// outbound call the agent placed, an inbound call that reached or rang
    /// the agent (as far as the logs name the agent rung).
    pub last_contact: Option<Contact>,
    /// Answered conversations with agents (every answered stint), as runs,
    /// oldest first.
    pub runs: Vec<Run>,
    /// The open episode as derived; the lookup still checks its expiry.
    pub missed: Option<OpenMissed>,
}

/// Shares one `Arc<str>` per agent name among parties.
#[derive(Debug, Default)]
pub struct AgentNames(HashMap<String, Arc<str>>);

impl AgentNames {
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(a) = self.0.get(name) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(name);
        self.0.insert(name.to_string(), a.clone());
        a
    }
}

/// The facts of a party from all its `calls` rows, as of `now` (µs).
pub fn of_party(
    rows: &[CallRow],
    cfg: &StateConfig,
    now: i64,
    names: &mut AgentNames,
) -> PartyFacts {
    let calls = calls_of(rows);
    let eps = episodes(&calls, cfg, now);
    from_parts(rows, &calls, &eps, names)
}

/// [`of_party`] from what the deriver has computed already: the rows, the
/// calls they make ([`calls_of`]) and the episodes ([`episodes`]).
pub fn from_parts(
    rows: &[CallRow],
    calls: &[PartyCall],
    episodes: &[Episode],
    names: &mut AgentNames,
) -> PartyFacts {
    let mut f = PartyFacts::default();
    if let Some(c) = caller_row(calls) {
        f.calls = c.calls.max(0) as u32;
        f.first_seen_at = Some(c.first_seen_at);
        f.last_seen_at = Some(c.last_seen_at);
    }
    f.ended_calls = calls
        .iter()
        .filter(|c| c.direction == "inbound" && c.counts && c.ended_at.is_some())
        .count() as u32;
    f.last_answered = last_agent(calls).map(|(agent, at, _)| Contact {
        agent: names.get(&agent),
        at,
    });
    f.last_contact = rows
        .iter()
        .filter(|r| r.direction.as_deref() != Some("internal") && r.outcome != "ivr")
        .filter_map(|r| {
            let at = r.answered_at.or(r.entered_at)?;
            Some((at, r.agent.as_deref()?))
        })
        .max()
        .map(|(at, agent)| Contact {
            agent: names.get(agent),
            at,
        });
    // Every conversation (each answered stint: the agent who answered
    // first, then the one a transfer reached).
    let mut answered: Vec<(i64, &str)> = rows
        .iter()
        .filter(|r| r.direction.as_deref() != Some("internal"))
        .filter_map(|r| Some((r.answered_at?, r.agent.as_deref()?)))
        .collect();
    answered.sort();
    for (at, agent) in answered {
        match f.runs.last_mut() {
            Some(r) if &*r.agent == agent => r.last = at,
            _ => f.runs.push(Run {
                agent: names.get(agent),
                first: at,
                last: at,
            }),
        }
    }
    f.missed = episodes
        .iter()
        .find(|e| e.status == "open")
        .map(|e| OpenMissed {
            queue: e.queue.clone(),
            opened_at: e.opened_at,
            last_missed_at: e.last_missed_at,
            count: e.missed_count,
        });
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn row(id: &str, dir: &str, at_h: i64, answered: bool, agent: Option<&str>) -> CallRow {
        CallRow {
            pbx: "p".into(),
            call_id: id.into(),
            stint: 1,
            direction: Some(dir.into()),
            party: Some("+79161234567".into()),
            entered_at: Some(at_h * H),
            answered_at: answered.then_some(at_h * H + 1),
            ended_at: Some(at_h * H + 2),
            outcome: if answered { "answered" } else { "no_answer" }.into(),
            agent: agent.map(Into::into),
            missed: !answered && dir == "inbound",
            ..CallRow::default()
        }
    }

    #[test]
    fn contacts_runs_and_counts() {
        let rows = vec![
            row("a", "inbound", 1, true, Some("201")),
            row("b", "inbound", 2, true, Some("201")),
            row("c", "outbound", 3, true, Some("202")),
            row("d", "outbound", 4, false, Some("203")),
            row("e", "inbound", 5, false, None),
        ];
        let f = of_party(
            &rows,
            &StateConfig::default(),
            6 * H,
            &mut AgentNames::default(),
        );
        assert_eq!(f.calls, 3);
        assert_eq!(f.ended_calls, 3);
        assert_eq!(f.last_answered.as_ref().map(|c| &*c.agent), Some("202"));
        assert_eq!(f.last_contact.as_ref().map(|c| &*c.agent), Some("203"));
        let runs: Vec<(&str, i64, i64)> = f
            .runs
            .iter()
            .map(|r| (&*r.agent, r.first / H, r.last / H))
            .collect();
        assert_eq!(runs, vec![("201", 1, 2), ("202", 3, 3)]);
        assert_eq!(f.missed.map(|m| m.count), Some(1));
    }

    #[test]
    fn a_call_in_progress_is_not_an_earlier_call() {
        let mut r = row("a", "inbound", 1, false, None);
        r.ended_at = None;
        r.outcome = "open".into();
        r.missed = false;
        let f = of_party(
            &[r],
            &StateConfig::default(),
            2 * H,
            &mut AgentNames::default(),
        );
        assert_eq!((f.calls, f.ended_calls), (1, 0));
    }
}
