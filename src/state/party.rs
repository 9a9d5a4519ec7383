//! Per-party state from the party's calls: the `callers` row, the
//! `last_agent` row and the missed-call episodes. Pure functions of the
//! set of calls; episodes follow the moments things happened (a call lost,
//! a call answered), so arrival order never changes the result.

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
    /// When the call ended (its last stint's end), if it has.
    pub ended_at: Option<i64>,
    /// Queue of the last stint.
    pub queue: Option<String>,
    /// False for a call the PBX answered itself and that reached nobody
    /// (outcome `ivr`) and for a member's leg whose call has not been read
    /// (`leg`): not a call of the caller's in `callers`.
    pub counts: bool,
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
                ended_at: None,
                queue: None,
                counts: true,
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
        // The last stint's end is the call's.
        c.ended_at = r.ended_at;
        c.queue = r.queue.clone();
        c.counts = !matches!(r.outcome.as_str(), "ivr" | "leg");
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
    let inbound: Vec<&PartyCall> = calls
        .iter()
        .filter(|c| c.direction == "inbound" && c.counts)
        .collect();
    let first = inbound.first()?;
    Some(CallerRow {
        first_seen_at: first.entered_at,
        first_answered_at: inbound.iter().filter_map(|c| c.answered_at).min(),
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

/// What a call does to the party's episodes, and when. The order of the
/// variants is the order of things that happen in the same microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// An inbound call was lost (its abandon or exit, the end of an
    /// unanswered direct call): opens an episode, or adds to the open one.
    Lost,
    /// An outbound call to the party started: an attempt on the open one.
    Dialled,
    /// An inbound call was answered: the party returned.
    Returned,
    /// An outbound call to the party was answered by an agent.
    CalledBack,
}

/// The party's missed-call episodes as of `now` (µs), walking what its
/// calls did in the order it happened (ties: see [`Step`], then call id):
/// a miss counts from the moment the call was lost, and only a return or a
/// callback answered after that moment resolves it. So a caller who is
/// lost while another call from the same number is being answered (two
/// people behind one company number) opens an episode: the conversation
/// already going on did not serve them.
pub fn episodes(calls: &[PartyCall], cfg: &StateConfig, now: i64) -> Vec<Episode> {
    let expiry = cfg.missed_expiry_hours as i64 * 3600 * 1_000_000;
    let mut steps: Vec<(i64, Step, &PartyCall)> = Vec::new();
    for c in calls {
        match (c.direction.as_str(), c.missed, c.answered_at) {
            ("inbound", true, _) => {
                steps.push((c.ended_at.unwrap_or(c.entered_at), Step::Lost, c));
            }
            ("inbound", false, Some(at)) if c.counts => steps.push((at, Step::Returned, c)),
            ("outbound", _, answered) => {
                steps.push((c.entered_at, Step::Dialled, c));
                if let (Some(at), Some(_)) = (answered, &c.agent) {
                    steps.push((at, Step::CalledBack, c));
                }
            }
            _ => {}
        }
    }
    steps.sort_by(|a, b| (a.0, a.1, &a.2.call_id).cmp(&(b.0, b.1, &b.2.call_id)));
    let mut out: Vec<Episode> = Vec::new();
    let mut open: Option<Episode> = None;
    // Outbound calls counted as attempts on the open episode.
    let mut attempted: Vec<&str> = Vec::new();
    for (at, step, c) in steps {
        // An open episode whose time ran out before this happened expired then.
        if let Some(mut ep) = open.take() {
            if at > ep.last_missed_at + expiry {
                ep.status = "expired";
                ep.resolved_at = Some(ep.last_missed_at + expiry);
                out.push(ep);
            } else {
                open = Some(ep);
            }
        }
        match step {
            Step::Lost => match open.as_mut() {
                Some(ep) => {
                    ep.missed_count += 1;
                    ep.last_missed_at = at;
                }
                None => {
                    attempted.clear();
                    open = Some(Episode {
                        queue: c.queue.clone(),
                        opened_at: at,
                        opened_by: c.call_id.clone(),
                        last_missed_at: at,
                        missed_count: 1,
                        callback_attempts: 0,
                        status: "open",
                        resolved_at: None,
                        resolved_by: None,
                    })
                }
            },
            Step::Dialled => {
                if let Some(ep) = open.as_mut() {
                    ep.callback_attempts += 1;
                    attempted.push(&c.call_id);
                }
            }
            Step::Returned | Step::CalledBack => {
                if let Some(mut ep) = open.take() {
                    if step == Step::CalledBack {
                        // Dialled before the miss, answered after it: the
                        // call that resolved it is one of its attempts.
                        if !attempted.contains(&c.call_id.as_str()) {
                            ep.callback_attempts += 1;
                        }
                        ep.status = "called_back";
                    } else {
                        ep.status = "returned";
                    }
                    ep.resolved_at = Some(at);
                    ep.resolved_by = Some(c.call_id.clone());
                    out.push(ep);
                }
            }
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
            ended_at: Some(at_h * H + 20),
            queue: Some("sales".into()),
            counts: true,
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
        assert_eq!(eps[2].resolved_at, Some(eps[2].last_missed_at + 168 * H));
        // It counts from the moment the call was lost, not from its entry.
        assert_eq!(eps[2].opened_at, 10 * H + 20);
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

    const M: i64 = 60 * 1_000_000;

    /// A call from `at_m` minutes, answered at `answered_m`, ended at `end_m`.
    fn timed(id: &str, dir: &str, at_m: i64, answered_m: Option<i64>, end_m: i64) -> PartyCall {
        PartyCall {
            call_id: id.into(),
            direction: dir.into(),
            entered_at: at_m * M,
            answered_at: answered_m.map(|a| a * M),
            agent: answered_m.map(|_| "201".to_string()),
            agent_at: answered_m.map(|a| a * M),
            missed: dir == "inbound" && answered_m.is_none(),
            ended_at: Some(end_m * M),
            queue: Some("sales".into()),
            counts: true,
        }
    }

    /// A call answered at 12:04 does not "return" a call lost at 12:08,
    /// though it entered later: two people behind one number. A return
    /// answered after the loss resolves it.
    #[test]
    fn an_answer_before_the_loss_does_not_resolve_it() {
        let cfg = StateConfig::default();
        let calls = vec![
            timed("lost", "inbound", 12 * 60, None, 12 * 60 + 8),
            timed(
                "talk",
                "inbound",
                12 * 60 + 1,
                Some(12 * 60 + 4),
                12 * 60 + 10,
            ),
        ];
        let eps = episodes(&calls, &cfg, 13 * 60 * M);
        assert_eq!(eps.len(), 1, "{eps:#?}");
        assert_eq!(
            (eps[0].status, eps[0].opened_at, eps[0].opened_by.as_str()),
            ("open", (12 * 60 + 8) * M, "lost")
        );
        let mut calls = calls;
        calls.push(timed(
            "again",
            "inbound",
            12 * 60 + 20,
            Some(12 * 60 + 21),
            12 * 60 + 25,
        ));
        let eps = episodes(&calls, &cfg, 13 * 60 * M);
        assert_eq!(
            (
                eps[0].status,
                eps[0].resolved_by.as_deref(),
                eps[0].resolved_at
            ),
            ("returned", Some("again"), Some((12 * 60 + 21) * M))
        );
    }

    /// The customer's second call entered before the agent's callback but
    /// was answered after it: the callback resolved the episode.
    #[test]
    fn the_first_answer_in_time_resolves_it() {
        let cfg = StateConfig::default();
        let calls = vec![
            timed("lost", "inbound", 0, None, 2),
            timed("second", "inbound", 5, Some(9), 12),
            timed("cb", "outbound", 6, Some(7), 8),
        ];
        let eps = episodes(&calls, &cfg, 60 * M);
        assert_eq!(
            (
                eps[0].status,
                eps[0].resolved_by.as_deref(),
                eps[0].resolved_at,
                eps[0].callback_attempts
            ),
            ("called_back", Some("cb"), Some(7 * M), 1)
        );
        // A callback dialled before the loss and answered after it resolves
        // it too, and is its attempt.
        let calls = vec![
            timed("cb", "outbound", 0, Some(3), 8),
            timed("lost", "inbound", 0, None, 2),
        ];
        let eps = episodes(&calls, &cfg, 60 * M);
        assert_eq!(
            (eps[0].status, eps[0].callback_attempts),
            ("called_back", 1)
        );
    }

    /// In the same microsecond, losses come before answers: a caller lost
    /// at the second another of their calls is answered was served.
    #[test]
    fn a_loss_and_an_answer_at_once() {
        let cfg = StateConfig::default();
        let calls = vec![
            timed("b", "inbound", 1, Some(5), 9),
            timed("a", "inbound", 0, None, 5),
        ];
        let eps = episodes(&calls, &cfg, 60 * M);
        assert_eq!(
            (eps[0].status, eps[0].resolved_by.as_deref()),
            ("returned", Some("b"))
        );
    }

    /// A call the PBX answered itself (outcome `ivr`) is no call of the
    /// caller's and returns nothing.
    #[test]
    fn ivr_calls_do_not_count() {
        let cfg = StateConfig::default();
        let mut ivr = timed("ivr", "inbound", 3, Some(3), 4);
        ivr.agent = None;
        ivr.agent_at = None;
        ivr.counts = false;
        let calls = vec![timed("lost", "inbound", 0, None, 2), ivr];
        let eps = episodes(&calls, &cfg, 60 * M);
        assert_eq!(eps[0].status, "open");
        let r = caller_row(&calls).expect("row");
        assert_eq!((r.calls, r.answered_calls), (1, 0));
    }
}
