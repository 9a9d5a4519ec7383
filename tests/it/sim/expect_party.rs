//! Expected per-party state: `callers`, `last_agent` and `missed_calls`
//! (episodes by the moments calls were lost and answered), per
//! docs/schema.md, from the simulator's ground truth.

use super::expect_calls::is_missed;
use super::table::{soft, text, ts, Expected, Row, NOTE};
use super::truth::{Call, Day, Direction, Ts};
use std::collections::BTreeMap;

/// What per-party state needs to know about one call.
struct Fact<'a> {
    call: &'a Call,
    entered: Ts,
    /// First answer of the call (first CONNECT, or the CDR answer).
    answered_at: Option<Ts>,
    /// Answered conversations with an agent: (answered_at, agent id).
    convs: Vec<(Ts, &'static str)>,
    missed: bool,
    /// When the call was lost (its last stint's end, or the CDR end of a
    /// call outside queues); meaningful for missed calls.
    lost_at: Ts,
}

fn facts(day: &Day) -> BTreeMap<String, Vec<Fact<'_>>> {
    let mut by_party: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    for c in &day.calls {
        if c.direction == Direction::Internal {
            continue;
        }
        let Some(party) = c.party() else { continue };
        let (entered, answered_at, convs, lost_at) = if c.stints.is_empty() {
            let r = c.cdr.as_ref().expect("CDR row");
            let convs = match (r.answer, c.cdr_agent) {
                (Some(a), Some(agent)) => vec![(a, day.agents[agent].id)],
                _ => Vec::new(),
            };
            (r.start, r.answer, convs, r.end)
        } else {
            let convs: Vec<(Ts, &'static str)> = c
                .stints
                .iter()
                .filter_map(|s| s.connect.as_ref())
                .map(|x| (x.at, day.agents[x.agent].id))
                .collect();
            let last = c.stints.last().expect("a stint");
            let lost_at = last.end.as_ref().map_or(last.entered, |e| e.at);
            (
                c.stints[0].entered,
                convs.first().map(|v| v.0),
                convs,
                lost_at,
            )
        };
        by_party.entry(party.to_string()).or_default().push(Fact {
            call: c,
            entered,
            answered_at,
            convs,
            missed: is_missed(c),
            lost_at,
        });
    }
    for v in by_party.values_mut() {
        v.sort_by_key(|f| f.entered);
    }
    by_party
}

pub fn callers(day: &Day) -> Expected {
    let mut rows = Vec::new();
    for (party, facts) in facts(day) {
        let inbound: Vec<&Fact> = facts
            .iter()
            .filter(|f| f.call.direction == Direction::Inbound)
            .collect();
        if inbound.is_empty() {
            continue;
        }
        let first_answered = inbound
            .iter()
            .filter(|f| f.answered_at.is_some())
            .min_by_key(|f| f.answered_at);
        let mut r = Row::new();
        r.insert("caller", party.clone());
        r.insert("first_seen_at", ts(Some(inbound[0].entered)));
        r.insert(
            "first_answered_at",
            soft(ts(first_answered.and_then(|f| f.answered_at))),
        );
        r.insert("calls", inbound.len().to_string());
        r.insert(
            "answered_calls",
            inbound
                .iter()
                .filter(|f| f.answered_at.is_some())
                .count()
                .to_string(),
        );
        r.insert("last_seen_at", ts(inbound.iter().map(|f| f.entered).max()));
        rows.push(r);
    }
    Expected {
        name: "callers",
        key: &["caller"],
        sql: "SELECT caller, epoch(first_seen_at)::BIGINT AS first_seen_at, \
              epoch(first_answered_at)::BIGINT AS first_answered_at, calls::BIGINT AS calls, \
              answered_calls::BIGINT AS answered_calls, epoch(last_seen_at)::BIGINT AS last_seen_at \
              FROM callers",
        rows,
        soft: false,
    }
}

pub fn last_agent(day: &Day) -> Expected {
    let mut rows = Vec::new();
    for (party, facts) in facts(day) {
        let best = facts
            .iter()
            .flat_map(|f| f.convs.iter().map(move |c| (c.0, c.1, f)))
            .max_by_key(|c| c.0);
        if let Some((at, agent, f)) = best {
            let id = &f.call.id;
            let mut talk_at = ts(Some(at));
            if f.answered_at != Some(at) {
                talk_at += &format!(
                    "{NOTE}CONNECT of {agent} in a later stint; the call was first answered at {}",
                    ts(f.answered_at)
                );
            }
            let mut r = Row::new();
            r.insert("caller", party.clone());
            r.insert("agent", agent.to_string());
            r.insert("last_talk_at", talk_at);
            r.insert("call_id", id.clone());
            rows.push(r);
        }
    }
    Expected {
        name: "last_agent",
        key: &["caller"],
        sql: "SELECT caller, agent, epoch(last_talk_at)::BIGINT AS last_talk_at, call_id FROM last_agent",
        rows,
        soft: false,
    }
}

/// How an episode was resolved: (resolved_at, resolved_by, status).
type Resolution = (Ts, Option<String>, &'static str);

/// An open missed-call episode while walking a party's calls.
struct Episode {
    queue: Option<&'static str>,
    opened_at: Ts,
    opened_by: String,
    last_missed_at: Ts,
    count: usize,
}

/// How an episode opened at `opened_at` ends, if it does: the first answer
/// by time, at or after the moment it opened (a loss and an answer in the
/// same second: the loss came first), of an inbound call (returned) or of
/// an outbound call from an agent (called back).
fn resolution(facts: &[Fact], opened_at: Ts) -> Option<Resolution> {
    facts
        .iter()
        .filter(|f| f.answered_at.is_some_and(|a| a >= opened_at))
        .filter_map(|f| match f.call.direction {
            Direction::Inbound => Some((f.answered_at?, Some(f.call.id.clone()), "returned")),
            Direction::Outbound if f.call.cdr_agent.is_some() => {
                Some((f.answered_at?, Some(f.call.id.clone()), "called_back"))
            }
            _ => None,
        })
        .min_by_key(|r| (r.0, r.2 != "returned", r.1.clone()))
}

/// When the missed-call episodes expire, and the time they are judged at.
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    /// `[state].missed_expiry_hours` in seconds (default 168 h).
    pub after_s: i64,
    /// "Now" for the store's last recomputation (expiry is settled by it).
    pub now: Ts,
}

/// The episode's end: the first of an answer (returned / called back) and
/// its expiry, when either has happened by `expiry.now`.
fn closing(facts: &[Fact], ep: &Episode, expiry: Expiry) -> Option<Resolution> {
    let expires = ep.last_missed_at + expiry.after_s;
    let answered = resolution(facts, ep.opened_at).filter(|r| r.0 < expires);
    answered.or_else(|| (expires <= expiry.now).then_some((expires, None, "expired")))
}

pub fn missed_calls(day: &Day, expiry: Expiry) -> Expected {
    let mut rows = Vec::new();
    for (party, facts) in facts(day) {
        let mut episodes: Vec<(Episode, Option<Resolution>)> = Vec::new();
        let mut open: Option<Episode> = None;
        let mut lost: Vec<&Fact> = facts.iter().filter(|f| f.missed).collect();
        lost.sort_by(|a, b| (a.lost_at, &a.call.id).cmp(&(b.lost_at, &b.call.id)));
        for f in lost {
            if let Some(ep) = open.take() {
                match closing(&facts, &ep, expiry) {
                    Some(res) if res.0 < f.lost_at => episodes.push((ep, Some(res))),
                    _ => open = Some(ep),
                }
            }
            match &mut open {
                Some(ep) => {
                    ep.count += 1;
                    ep.last_missed_at = f.lost_at;
                }
                None => {
                    open = Some(Episode {
                        queue: f.call.stints.last().map(|s| s.queue),
                        opened_at: f.lost_at,
                        opened_by: f.call.id.clone(),
                        last_missed_at: f.lost_at,
                        count: 1,
                    })
                }
            }
        }
        if let Some(ep) = open {
            let res = closing(&facts, &ep, expiry);
            episodes.push((ep, res));
        }
        for (ep, res) in episodes {
            let until = res.as_ref().map_or(Ts::MAX, |r| r.0);
            let resolver = res.as_ref().and_then(|r| r.1.as_deref());
            // Outbound calls dialled while it was open, and the callback
            // that resolved it (it may have been dialled before the loss).
            let attempts = facts
                .iter()
                .filter(|f| f.call.direction == Direction::Outbound)
                .filter(|f| {
                    (f.entered >= ep.opened_at && f.entered <= until)
                        || Some(f.call.id.as_str()) == resolver
                })
                .count();
            let mut r = Row::new();
            r.insert("caller", party.clone());
            r.insert("queue", text(ep.queue));
            r.insert("opened_at", ts(Some(ep.opened_at)));
            r.insert("last_missed_at", ts(Some(ep.last_missed_at)));
            r.insert("missed_count", ep.count.to_string());
            r.insert("callback_attempts", attempts.to_string());
            r.insert("status", res.as_ref().map_or("open", |r| r.2).into());
            r.insert("resolved_at", ts(res.as_ref().map(|r| r.0)));
            r.insert(
                "resolved_by",
                text(res.as_ref().and_then(|r| r.1.as_deref())),
            );
            r.insert("opened_by", ep.opened_by.clone());
            rows.push(r);
        }
    }
    Expected {
        name: "missed_calls",
        key: &["caller", "opened_at"],
        sql: "SELECT caller, queue, epoch(opened_at)::BIGINT AS opened_at, \
              epoch(last_missed_at)::BIGINT AS last_missed_at, missed_count::BIGINT AS missed_count, \
              callback_attempts::BIGINT AS callback_attempts, status, \
              epoch(resolved_at)::BIGINT AS resolved_at, resolved_by, opened_by FROM missed_calls",
        rows,
        soft: false,
    }
}
