//! Expected dialplan lookups (docs/dialplan.md, "The decision") from the
//! simulator's ground truth: per party, its answered conversations and its
//! contacts with agents, and the agent each policy picks in a window.
//! Shared with the lookup test on a real Asterisk's files (`lookup.rs`),
//! which fills [`Want`] from that sample's truth.json.

use super::truth::{Day, Direction};
use std::collections::BTreeMap;

/// What the lookup must know of one party.
#[derive(Debug, Default, Clone)]
pub struct Want {
    /// Inbound calls.
    pub calls: i64,
    /// Inbound calls that ended (`first_call` is "none ended").
    pub ended: i64,
    /// `(at, agent)` of every answered conversation, in or out, sorted.
    pub answered: Vec<(i64, String)>,
    /// `(at, agent)` of every call with an agent, answered (at the answer)
    /// or not (at its start), sorted.
    pub contacts: Vec<(i64, String)>,
}

/// Every party of the day.
pub fn parties(day: &Day) -> BTreeMap<String, Want> {
    let mut out: BTreeMap<String, Want> = BTreeMap::new();
    for c in &day.calls {
        if c.direction == Direction::Internal {
            continue;
        }
        let Some(party) = c.party() else { continue };
        let w = out.entry(party.to_string()).or_default();
        if c.direction == Direction::Inbound {
            w.calls += 1;
            let ended = match c.stints.last() {
                Some(s) => s.end.is_some(),
                None => c.cdr.is_some(),
            };
            w.ended += i64::from(ended);
        }
        if c.stints.is_empty() {
            let (Some(r), Some(agent)) = (&c.cdr, c.cdr_agent) else {
                continue;
            };
            let id = day.agents[agent].id.to_string();
            if let Some(a) = r.answer {
                w.answered.push((a, id.clone()));
            }
            w.contacts.push((r.answer.unwrap_or(r.start), id));
        } else {
            for x in c.stints.iter().filter_map(|s| s.connect.as_ref()) {
                let id = day.agents[x.agent].id.to_string();
                w.answered.push((x.at, id.clone()));
                w.contacts.push((x.at, id));
            }
        }
    }
    for w in out.values_mut() {
        w.answered.sort();
        w.contacts.sort();
    }
    out
}

/// `(agent, contact_at)` the policy picks among contacts at or after
/// `start` (`None`: all); `("", None)` when none.
pub fn pick(w: &Want, policy: &str, start: Option<i64>) -> (String, Option<i64>) {
    let inside = |at: i64| start.is_none_or(|s| at >= s);
    let last = |list: &[(i64, String)]| {
        list.iter()
            .rev()
            .find(|(at, _)| inside(*at))
            .map(|(at, a)| (a.clone(), Some(*at)))
    };
    let got = match policy {
        "last_agent" => last(&w.answered),
        "last_contact" => last(&w.contacts),
        "first_agent" => w.answered.iter().position(|(at, _)| inside(*at)).map(|i| {
            let (at, a) = &w.answered[i];
            // The first answer of an agent's series of consecutive
            // conversations that began before the window is not known.
            let began_before = i > 0 && w.answered[i - 1].1 == *a;
            (a.clone(), (!began_before).then_some(*at))
        }),
        other => panic!("policy {other}"),
    };
    got.unwrap_or_default()
}
