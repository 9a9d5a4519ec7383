//! The lookup's one rule, as a pure function of what is known about a
//! number (docs/dialplan.md, "The decision"):
//!
//! 1. a known-numbers entry valid now gives `action` (its class, `none`
//!    without one), `name`, and `agent` when it names a preferred agent;
//! 2. otherwise the sticky agent by the policy, inside the window;
//! 3. a `blacklist` entry never gets an agent;
//! 4. the agent's state and interface from `agent_status` and the logs;
//!    `first_call`, `missed_open`, `calls` from the party's facts.

use super::window::{Policy, Window};
use crate::state::party_facts::PartyFacts;
use crate::state::AgentPresence;
use crate::store::directory::Entry;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The answer to one lookup: the public keys first (in the order of the
/// hashcompat line), then the details `/api/lookup` adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub action: &'static str,
    pub name: String,
    pub agent: String,
    pub agent_interface: String,
    pub agent_state: &'static str,
    pub first_call: bool,
    pub missed_open: bool,
    pub calls: u32,
    pub ok: bool,
    /// The `number` as given.
    pub number: String,
    /// The directory / caller key it matched as (E.164 …), if it is a number.
    pub matched: Option<String>,
    /// Why the answer is the unknown one, when it is.
    pub reason: Option<String>,
    pub policy: &'static str,
    pub window: String,
    pub known: Option<Known>,
    /// `known_number` (the entry's preferred agent) or `policy`.
    pub agent_source: Option<&'static str>,
    /// The contact the policy chose the agent by (for `first_agent`: the
    /// first answered contact of the agent's run, null when that run began
    /// before the window).
    pub agent_contact_at: Option<DateTime<Utc>>,
    pub agent_queues: Vec<String>,
    pub agent_pause_reason: Option<String>,
    pub missed: Option<Missed>,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// The matched known-numbers entry, as the lookup used it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Known {
    pub class: Option<String>,
    pub name: Option<String>,
    pub company: Option<String>,
    pub agent: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

/// The open missed-call episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Missed {
    pub count: i32,
    pub opened_at: Option<DateTime<Utc>>,
    pub last_missed_at: Option<DateTime<Utc>>,
    pub age_s: i64,
    pub queue: Option<String>,
}

/// What a lookup is asked with.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub policy: Policy,
    pub window: Window,
    /// The window's first instant (µs), `None` = all.
    pub window_start: Option<i64>,
    pub now: DateTime<Utc>,
    /// How long after its last miss an open episode expires (µs).
    pub missed_expiry_us: i64,
}

fn time(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

impl Decision {
    /// The well-formed answer for a number that is not one (withheld,
    /// hostile, unparseable): route normally.
    pub fn unknown(number: &str, reason: &str, ask: &Ask) -> Decision {
        Decision {
            action: "none",
            name: String::new(),
            agent: String::new(),
            agent_interface: String::new(),
            agent_state: "unknown",
            first_call: false,
            missed_open: false,
            calls: 0,
            ok: true,
            number: number.to_string(),
            matched: None,
            reason: Some(reason.to_string()),
            policy: ask.policy.as_str(),
            window: ask.window.to_string(),
            known: None,
            agent_source: None,
            agent_contact_at: None,
            agent_queues: Vec::new(),
            agent_pause_reason: None,
            missed: None,
            first_seen_at: None,
            last_seen_at: None,
        }
    }
}

/// The sticky agent of `facts` by `ask`'s policy and window: `(agent, the
/// contact's time if known)`.
pub fn sticky(facts: &PartyFacts, ask: &Ask) -> Option<(String, Option<i64>)> {
    let inside = |at: i64| ask.window_start.is_none_or(|s| at >= s);
    match ask.policy {
        Policy::LastAgent => facts
            .last_answered
            .as_ref()
            .filter(|c| inside(c.at))
            .map(|c| (c.agent.to_string(), Some(c.at))),
        Policy::LastContact => facts
            .last_contact
            .as_ref()
            .filter(|c| inside(c.at))
            .map(|c| (c.agent.to_string(), Some(c.at))),
        Policy::FirstAgent => facts
            .runs
            .iter()
            .find(|r| inside(r.last))
            .map(|r| (r.agent.to_string(), inside(r.first).then_some(r.first))),
    }
}

/// The agent's state word: `on_call` (on a queue call now), else
/// `unknown` for an agent no line ever logged in or out nor made a queue
/// member (a static member), else `logged_out`, `paused`, `available`.
pub fn agent_state(p: &AgentPresence) -> &'static str {
    if p.on_call_since.is_some() {
        "on_call"
    } else if !p.known {
        "unknown"
    } else if !p.logged_in && p.queues.is_empty() {
        "logged_out"
    } else if p.paused {
        "paused"
    } else {
        "available"
    }
}

/// The decision for `number` (matched as `key`), from what is known.
pub fn decide(
    number: &str,
    key: &str,
    entry: Option<&Entry>,
    facts: Option<&PartyFacts>,
    presence: impl Fn(&str) -> Option<AgentPresence>,
    interface: impl Fn(&str) -> Option<String>,
    ask: &Ask,
) -> Decision {
    let mut d = Decision::unknown(number, "", ask);
    d.reason = None;
    d.matched = Some(key.to_string());
    let entry = entry.filter(|e| e.fields.valid_at(ask.now));
    if let Some(e) = entry {
        let f = &e.fields;
        d.action = match f.class.as_deref() {
            Some("vip") => "vip",
            Some("blacklist") => "blacklist",
            Some("employee") => "employee",
            _ => "none",
        };
        d.name = f.name.clone().unwrap_or_default();
        d.known = Some(Known {
            class: f.class.clone(),
            name: f.name.clone(),
            company: f.company.clone(),
            agent: f.agent.clone(),
            valid_until: f.valid_until,
            note: f.note.clone(),
        });
        if let Some(a) = f.agent.as_deref().filter(|a| !a.is_empty()) {
            d.agent = a.to_string();
            d.agent_source = Some("known_number");
        }
    }
    if let Some(f) = facts {
        d.calls = f.calls;
        d.first_call = f.ended_calls == 0;
        d.first_seen_at = f.first_seen_at.and_then(time);
        d.last_seen_at = f.last_seen_at.and_then(time);
        if let Some(m) = &f.missed {
            let now = ask.now.timestamp_micros();
            if m.last_missed_at + ask.missed_expiry_us >= now {
                d.missed_open = true;
                d.missed = Some(Missed {
                    count: m.count,
                    opened_at: time(m.opened_at),
                    last_missed_at: time(m.last_missed_at),
                    age_s: (now - m.opened_at).max(0) / 1_000_000,
                    queue: m.queue.clone(),
                });
            }
        }
        if d.agent_source.is_none() {
            if let Some((agent, at)) = sticky(f, ask) {
                d.agent = agent;
                d.agent_source = Some("policy");
                d.agent_contact_at = at.and_then(time);
            }
        }
    } else {
        d.first_call = true;
    }
    if d.action == "blacklist" {
        d.agent.clear();
        d.agent_source = None;
        d.agent_contact_at = None;
    }
    if !d.agent.is_empty() {
        d.agent_interface = interface(&d.agent).unwrap_or_default();
        if let Some(p) = presence(&d.agent) {
            d.agent_state = agent_state(&p);
            d.agent_queues = p.queues;
            d.agent_pause_reason = p.pause_reason.filter(|_| p.paused);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::party_facts::{Contact, OpenMissed, Run};
    use crate::store::directory::Fields;
    use chrono::TimeZone;

    const H: i64 = 3_600_000_000;

    fn ask(policy: Policy, window: Window) -> Ask {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        Ask {
            policy,
            window,
            window_start: window.start(now, chrono_tz::UTC),
            now,
            missed_expiry_us: 168 * H,
        }
    }

    fn run_now() -> DateTime<Utc> {
        ask(Policy::LastAgent, Window::All).now
    }

    fn facts(now: i64) -> PartyFacts {
        let c = |a: &str, h: i64| Contact {
            agent: a.into(),
            at: now - h * H,
        };
        PartyFacts {
            calls: 5,
            ended_calls: 5,
            first_seen_at: Some(now - 2000 * H),
            last_seen_at: Some(now - H),
            last_answered: Some(c("202", 30)),
            last_contact: Some(c("203", 2)),
            runs: vec![
                Run {
                    agent: "201".into(),
                    first: now - 3000 * H,
                    last: now - 2500 * H,
                },
                Run {
                    agent: "202".into(),
                    first: now - 100 * H,
                    last: now - 30 * H,
                },
            ],
            missed: Some(OpenMissed {
                queue: Some("support".into()),
                opened_at: now - 3 * H,
                last_missed_at: now - H,
                count: 2,
            }),
        }
    }

    fn run(policy: Policy, window: Window, entry: Option<&Entry>) -> Decision {
        let a = ask(policy, window);
        let f = facts(a.now.timestamp_micros());
        decide(
            "+79161234567",
            "+79161234567",
            entry,
            Some(&f),
            |a| {
                (a == "202").then(|| AgentPresence {
                    queues: vec!["support".into()],
                    logged_in: true,
                    paused: true,
                    pause_reason: Some("lunch".into()),
                    on_call_since: None,
                    known: true,
                })
            },
            |a| Some(format!("PJSIP/{a}")),
            &a,
        )
    }

    #[test]
    fn policies_and_windows() {
        let agent = |p, w| run(p, w, None).agent;
        assert_eq!(agent(Policy::LastAgent, Window::Days(7)), "202");
        assert_eq!(agent(Policy::LastAgent, Window::Days(1)), "");
        assert_eq!(agent(Policy::LastContact, Window::Days(1)), "203");
        assert_eq!(agent(Policy::FirstAgent, Window::All), "201");
        assert_eq!(agent(Policy::FirstAgent, Window::Days(90)), "202");
        assert_eq!(agent(Policy::FirstAgent, Window::Hours(12)), "");
        let d = run(Policy::FirstAgent, Window::Hours(50), None);
        assert_eq!((d.agent.as_str(), d.agent_contact_at), ("202", None));
        let d = run(Policy::FirstAgent, Window::Days(30), None);
        let first = d.agent_contact_at.map(|t| (run_now() - t).num_hours());
        assert_eq!((d.agent.as_str(), first), ("202", Some(100)));
        let d = run(Policy::LastAgent, Window::Days(7), None);
        assert_eq!(
            (
                d.agent_state,
                d.agent_interface.as_str(),
                d.agent_pause_reason.as_deref()
            ),
            ("paused", "PJSIP/202", Some("lunch"))
        );
        assert!(d.missed_open && !d.first_call);
        assert_eq!(
            d.missed.as_ref().map(|m| (m.count, m.age_s)),
            Some((2, 3 * 3600))
        );
    }

    fn entry(class: &str, agent: Option<&str>, until: Option<DateTime<Utc>>) -> Entry {
        Entry {
            number: "+79161234567".into(),
            fields: Fields {
                number_raw: "+79161234567".into(),
                name: Some("Ivan Petrov".into()),
                class: Some(class.into()),
                agent: agent.map(Into::into),
                valid_until: until,
                ..Fields::default()
            },
            hits: 0,
            last_hit_at: None,
            created_at: Utc::now(),
            created_by: "t".into(),
            updated_at: Utc::now(),
            updated_by: "t".into(),
        }
    }

    #[test]
    fn known_numbers_come_first() {
        let e = entry("vip", Some("301"), None);
        let d = run(Policy::LastAgent, Window::Days(7), Some(&e));
        assert_eq!(
            (d.action, d.name.as_str(), d.agent.as_str()),
            ("vip", "Ivan Petrov", "301")
        );
        assert_eq!(
            (d.agent_source, d.agent_state),
            (Some("known_number"), "unknown")
        );
        let e = entry("vip", None, None);
        let d = run(Policy::LastAgent, Window::Days(7), Some(&e));
        assert_eq!((d.agent.as_str(), d.agent_source), ("202", Some("policy")));
        let e = entry("blacklist", Some("301"), None);
        let d = run(Policy::LastAgent, Window::Days(7), Some(&e));
        assert_eq!(
            (d.action, d.agent.as_str(), d.agent_interface.as_str()),
            ("blacklist", "", "")
        );
        let expired = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let e = entry("vip", Some("301"), Some(expired));
        let d = run(Policy::LastAgent, Window::Days(7), Some(&e));
        assert_eq!(
            (d.action, d.name.as_str(), d.agent.as_str()),
            ("none", "", "202")
        );
    }

    #[test]
    fn an_expired_episode_is_not_open() {
        let mut a = ask(Policy::LastAgent, Window::All);
        a.missed_expiry_us = H / 2;
        let f = facts(a.now.timestamp_micros());
        let d = decide("x", "x", None, Some(&f), |_| None, |_| None, &a);
        assert!(!d.missed_open && d.missed.is_none());
        let d = decide("x", "x", None, None, |_| None, |_| None, &a);
        assert!(d.first_call && d.calls == 0 && d.agent.is_empty());
    }
}
