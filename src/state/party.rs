//! Per-party state from the party's calls: the `callers` row, the
//! `last_agent` row and the missed-call episodes. Pure functions of the
//! set of calls (walked in event-time order), so arrival order never
//! changes the result.

use super::calls::CallRow;
use super::StateConfig;

/// One call of a party, from its stints.
#[derive(Debug, Clone)]
pub struct PartyCall {
    pub call_id: String,
    pub direction: String,
    pub entered_at: i64,
    /// Earliest answer over the stints.
    pub answered_at: Option<i64>,
    /// Agent of the latest answered stint.
    pub agent: Option<String>,
    /// When the latest answered stint was answered (the conversation with
    /// `agent`; later than `answered_at` after a transfer).
    pub agent_at: Option<i64>,
    pub missed: bool,
    /// Queue of the last stint.
    pub queue: Option<String>,
}

/// Groups stints (sorted by call, stint) into calls.
pub fn calls_of(rows: &[CallRow]) -> Vec<PartyCall> {
    let mut out: Vec<PartyCall> = Vec::new();
    let mut sorted: Vec<&CallRow> = rows.iter().collect();
    sorted.sort_by(|a, b| (&a.pbx, &a.call_id, a.stint).cmp(&(&b.pbx, &b.call_id, b.stint)));
    let mut prev: Option<(&str, &str)> = None;
    for r in sorted {
        let key = (r.pbx.as_str(), r.call_id.as_str());
        let Some(entered) = r.entered_at else {
            continue;
        };
        if prev != Some(key) {
            prev = Some(key);
            out.push(PartyCall {
                call_id: r.call_id.clone(),
                direction: r.direction.clone().unwrap_or_else(|| "inbound".into()),
                entered_at: entered,
                answered_at: None,
                agent: None,
                agent_at: None,
                missed: r.missed,
                queue: None,
            });
        }
        let Some(c) = out.last_mut() else { continue };
        c.entered_at = c.entered_at.min(entered);
        if let Some(a) = r.answered_at {
            c.answered_at = Some(c.answered_at.map_or(a, |x| x.min(a)));
            if r.agent.is_some() && c.agent_at.is_none_or(|t| a >= t) {
                c.agent = r.agent.clone();
                c.agent_at = Some(a);
            }
        }
        c.queue = r.queue.clone();
    }
    out.sort_by(|a, b| (a.entered_at, &a.call_id).cmp(&(b.entered_at, &b.call_id)));
    out
}

/// A `callers` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerRow {
    pub first_seen_at: i64,
    pub first_answered_at: Option<i64>,
    pub calls: i32,
    pub answered_calls: i32,
    pub last_seen_at: i64,
}

/// The inbound-caller facts, if the party ever called in.
pub fn caller_row(calls: &[PartyCall]) -> Option<CallerRow> {
    let inbound: Vec<&PartyCall> = calls.iter().filter(|c| c.direction == "inbound").collect();
    let first = inbound.first()?;
    Some(CallerRow {
        first_seen_at: first.entered_at,
        first_answered_at: inbound.iter().find_map(|c| c.answered_at),
        calls: inbound.len() as i32,
        answered_calls: inbound.iter().filter(|c| c.answered_at.is_some()).count() as i32,
        last_seen_at: inbound
            .iter()
            .map(|c| c.entered_at)
            .max()
            .unwrap_or(first.entered_at),
    })
}

/// `(agent, last_talk_at, call_id)` of the latest answered conversation
/// with an agent, inbound or outbound.
pub fn last_agent(calls: &[PartyCall]) -> Option<(String, i64, String)> {
    calls
        .iter()
        .filter(|c| c.direction != "internal")
        .filter_map(|c| Some((c.agent_at?, c.agent.clone()?, c.call_id.clone())))
        .max_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)))
        .map(|(at, agent, call)| (agent, at, call))
}

/// A missed-call episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    pub queue: Option<String>,
    pub opened_at: i64,
    pub opened_by: String,
    pub last_missed_at: i64,
    pub missed_count: i32,
    pub callback_attempts: i32,
    pub status: &'static str,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
}

/// The party's missed-call episodes as of `now` (µs).
pub fn episodes(calls: &[PartyCall], cfg: &StateConfig, now: i64) -> Vec<Episode> {
    let expiry = cfg.missed_expiry_hours as i64 * 3600 * 1_000_000;
    let mut out: Vec<Episode> = Vec::new();
    let mut open: Option<Episode> = None;
    for c in calls {
        // An open episode whose time ran out before this call expired then.
        if let Some(ep) = open.as_ref() {
            if c.entered_at > ep.last_missed_at + expiry {
                let mut ep = open.take().expect("checked");
                ep.status = "expired";
                ep.resolved_at = Some(ep.last_missed_at + expiry);
                out.push(ep);
            }
        }
        match (c.direction.as_str(), c.missed, c.answered_at) {
            ("inbound", true, _) => match open.as_mut() {
                Some(ep) => {
                    ep.missed_count += 1;
                    ep.last_missed_at = c.entered_at;
                }
                None => {
                    open = Some(Episode {
                        queue: c.queue.clone(),
                        opened_at: c.entered_at,
                        opened_by: c.call_id.clone(),
                        last_missed_at: c.entered_at,
                        missed_count: 1,
                        callback_attempts: 0,
                        status: "open",
                        resolved_at: None,
                        resolved_by: None,
                    })
                }
            },
            ("inbound", false, Some(at)) => {
                if let Some(mut ep) = open.take() {
                    ep.status = "returned";
                    ep.resolved_at = Some(at);
                    ep.resolved_by = Some(c.call_id.clone());
                    out.push(ep);
                }
            }
            ("outbound", _, answered) => {
                if let Some(ep) = open.as_mut() {
                    ep.callback_attempts += 1;
                    if let (Some(at), Some(_)) = (answered, &c.agent) {
                        let mut ep = open.take().expect("checked");
                        ep.status = "called_back";
                        ep.resolved_at = Some(at);
                        ep.resolved_by = Some(c.call_id.clone());
                        out.push(ep);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(mut ep) = open {
        if now > ep.last_missed_at + expiry {
            ep.status = "expired";
            ep.resolved_at = Some(ep.last_missed_at + expiry);
        }
        out.push(ep);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1_000_000;

    fn call(id: &str, dir: &str, at_h: i64, missed: bool, answered: bool) -> PartyCall {
        PartyCall {
            call_id: id.into(),
            direction: dir.into(),
            entered_at: at_h * H,
            answered_at: answered.then_some(at_h * H + 10),
            agent: answered.then(|| "201".to_string()),
            agent_at: answered.then_some(at_h * H + 10),
            missed,
            queue: Some("sales".into()),
        }
    }

    #[test]
    fn episode_lifecycle() {
        let cfg = StateConfig::default();
        let calls = vec![
            call("a", "inbound", 1, true, false),
            call("b", "inbound", 2, true, false),
            call("cb1", "outbound", 3, false, false),
            call("cb2", "outbound", 4, false, true),
            call("c", "inbound", 5, true, false),
            call("d", "inbound", 6, false, true),
            call("e", "inbound", 10, true, false),
        ];
        let eps = episodes(&calls, &cfg, 11 * H);
        assert_eq!(eps.len(), 3);
        assert_eq!(
            (
                eps[0].status,
                eps[0].missed_count,
                eps[0].callback_attempts,
                eps[0].resolved_by.as_deref()
            ),
            ("called_back", 2, 2, Some("cb2"))
        );
        assert_eq!(
            (eps[1].status, eps[1].resolved_by.as_deref()),
            ("returned", Some("d"))
        );
        assert_eq!(eps[2].status, "open");
        // Seven days later it has expired.
        let eps = episodes(&calls, &cfg, 10 * H + 169 * H);
        assert_eq!(eps[2].status, "expired");
        assert_eq!(eps[2].resolved_at, Some(10 * H + 168 * H));
    }

    #[test]
    fn a_miss_after_expiry_opens_a_new_episode() {
        let cfg = StateConfig::default();
        let calls = vec![
            call("a", "inbound", 1, true, false),
            call("b", "inbound", 1 + 200, true, false),
        ];
        let eps = episodes(&calls, &cfg, 202 * H);
        assert_eq!(eps.len(), 2);
        assert_eq!((eps[0].status, eps[1].status), ("expired", "open"));
    }

    #[test]
    fn caller_and_last_agent() {
        let calls = vec![
            call("a", "inbound", 1, true, false),
            call("b", "inbound", 2, false, true),
            call("cb", "outbound", 3, false, true),
        ];
        let r = caller_row(&calls).expect("row");
        assert_eq!((r.calls, r.answered_calls, r.first_seen_at), (2, 1, H));
        assert_eq!(last_agent(&calls).map(|x| x.2), Some("cb".to_string()));
    }
}
