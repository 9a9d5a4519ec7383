//! Building the `calls` rows of one call from all its stored events: queue
//! stints from the queue_log verbs, merged with the call's CDR record (same
//! uniqueid); the CDR rows of its legs (other uniqueids, grouped by
//! `legs.rs`) are attempts, never calls. A pure function of the set of
//! events (sorted here by event time, never by arrival), so any arrival
//! order gives the same rows.

use super::StateConfig;

/// The fields of a stored event that call facts are made of. Times are
/// microseconds since the epoch (UTC).
#[derive(Debug, Clone, Default)]
pub struct Ev {
    pub pbx: String,
    pub call_id: String,
    pub event_id: String,
    pub ts: i64,
    pub kind: String,
    pub source_kind: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub caller: Option<String>,
    pub caller_raw: Option<String>,
    pub callee: Option<String>,
    pub direction: Option<String>,
    pub disposition: Option<String>,
    pub wait_s: Option<i32>,
    pub talk_s: Option<i32>,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub linked_id: Option<String>,
    pub channel: Option<String>,
    pub dst_channel: Option<String>,
    /// `lastapp(lastdata)` of a CDR row.
    pub info: Option<String>,
}

/// One `calls` row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallRow {
    pub pbx: String,
    pub call_id: String,
    pub stint: i32,
    pub direction: Option<String>,
    pub queue: Option<String>,
    pub caller: Option<String>,
    pub caller_raw: Option<String>,
    pub callee: Option<String>,
    pub party: Option<String>,
    pub entered_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub outcome: String,
    pub agent: Option<String>,
    pub wait_s: Option<i32>,
    pub talk_s: Option<i32>,
    pub missed: bool,
}

pub(crate) const US: i64 = 1_000_000;

/// Order of same-second events within a stint.
fn rank(kind: &str) -> u8 {
    match kind {
        "did" => 0,
        "enter_queue" => 1,
        "ring_no_answer" | "ring_canceled" => 2,
        "answered" => 3,
        _ => 4,
    }
}

fn is_end(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "completed_by_caller" | "completed_by_agent" => "answered",
        "transferred" => "transferred",
        "abandoned" | "withdrawn" => "abandoned",
        "timeout" => "timeout",
        "exit_empty" => "exit_empty",
        "exit_with_key" => "exit_key",
        _ => return None,
    })
}

#[derive(Debug, Default, Clone)]
struct Stint {
    queue: String,
    entered_at: i64,
    caller: Option<String>,
    caller_raw: Option<String>,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    outcome: Option<&'static str>,
    agent: Option<String>,
    wait_s: Option<i32>,
    talk_s: Option<i32>,
}

/// Whether `n` is an internal extension rather than an outside number.
pub fn is_internal(n: &str, max_internal_len: usize) -> bool {
    !n.starts_with('+') && n.len() <= max_internal_len && !n.is_empty()
}

/// The rows of call `call_id` from the events of its group (all share
/// `pbx`; those of other call ids are its legs' CDR rows, left to
/// `attempts.rs`).
pub fn build(events: &mut [Ev], call_id: &str, cfg: &StateConfig) -> Vec<CallRow> {
    let Some(first) = events.first() else {
        return Vec::new();
    };
    let (pbx, call_id) = (first.pbx.clone(), call_id.to_string());
    events.sort_by(|a, b| {
        (a.ts, rank(&a.kind), &a.event_id).cmp(&(b.ts, rank(&b.kind), &b.event_id))
    });
    let mut stints: Vec<Stint> = Vec::new();
    let mut did: Option<String> = None;
    let mut cdr: Option<&Ev> = None;
    for e in events.iter() {
        if e.call_id != call_id {
            continue;
        }
        if e.kind == "call_record" {
            // Forked CDRs: the answered one, else the latest.
            let better = match cdr {
                None => true,
                Some(c) => {
                    let ans = |x: &Ev| x.disposition.as_deref() == Some("answered");
                    (ans(e), e.ts) >= (ans(c), c.ts)
                }
            };
            if better {
                cdr = Some(e);
            }
            continue;
        }
        if e.kind == "did" {
            did = e.callee.clone().or(did);
            continue;
        }
        let Some(q) = e.queue.as_deref() else {
            continue;
        };
        let cur = stints.iter().rposition(|s| s.queue == q);
        match e.kind.as_str() {
            "enter_queue" => stints.push(Stint {
                queue: q.to_string(),
                entered_at: e.ts,
                caller: e.caller.clone(),
                caller_raw: e.caller_raw.clone(),
                ..Stint::default()
            }),
            "answered" => {
                let i = match cur.filter(|&i| stints[i].ended_at.is_none()) {
                    Some(i) => i,
                    None => {
                        let wait = e.wait_s.unwrap_or(0).max(0) as i64;
                        stints.push(Stint {
                            queue: q.to_string(),
                            entered_at: e.ts - wait * US,
                            ..Stint::default()
                        });
                        stints.len() - 1
                    }
                };
                let s = &mut stints[i];
                if s.answered_at.is_none() {
                    s.answered_at = Some(e.ts);
                    s.agent = e.agent.clone();
                    s.wait_s = e.wait_s.or(Some(((e.ts - s.entered_at) / US) as i32));
                }
            }
            k => {
                let Some(outcome) = is_end(k) else { continue };
                let i = match cur.filter(|&i| stints[i].ended_at.is_none()) {
                    Some(i) => i,
                    None => {
                        let talk = e.talk_s.unwrap_or(0).max(0) as i64;
                        let wait = e.wait_s.unwrap_or(0).max(0) as i64;
                        let answered = matches!(outcome, "answered" | "transferred");
                        stints.push(Stint {
                            queue: q.to_string(),
                            entered_at: e.ts - (talk + wait) * US,
                            answered_at: answered.then_some(e.ts - talk * US),
                            agent: if answered { e.agent.clone() } else { None },
                            ..Stint::default()
                        });
                        stints.len() - 1
                    }
                };
                let s = &mut stints[i];
                s.ended_at = Some(e.ts);
                // A transfer of an unanswered caller is still a transfer.
                s.outcome = Some(outcome);
                if s.wait_s.is_none() {
                    s.wait_s = e.wait_s;
                }
                if matches!(outcome, "answered" | "transferred") {
                    s.talk_s = e.talk_s.or(s.talk_s);
                    if s.agent.is_none() {
                        s.agent = e.agent.clone();
                    }
                }
            }
        }
    }
    stints.sort_by_key(|s| s.entered_at);
    // Answered and never ended, but the call went on to another stint:
    // it was transferred there.
    for i in 0..stints.len().saturating_sub(1) {
        let next_in = stints[i + 1].entered_at;
        let s = &mut stints[i];
        if s.ended_at.is_none() && s.answered_at.is_some() {
            s.ended_at = Some(next_in.max(s.answered_at.unwrap_or(next_in)));
            s.outcome = Some("transferred");
        }
    }

    let cdr_dir = cdr.and_then(|c| c.direction.clone());
    let mut rows: Vec<CallRow> = Vec::new();
    for (n, s) in stints.iter().enumerate() {
        let caller = s
            .caller
            .clone()
            .or_else(|| cdr.and_then(|c| c.caller.clone()));
        let caller_raw = s
            .caller_raw
            .clone()
            .or_else(|| cdr.and_then(|c| c.caller_raw.clone()));
        let direction = cdr_dir.clone().or_else(|| {
            Some(match caller.as_deref() {
                Some(c) if is_internal(c, cfg.max_internal_len) => "internal".to_string(),
                _ => "inbound".to_string(),
            })
        });
        let wait_s = s.wait_s.or_else(|| {
            s.answered_at
                .or(s.ended_at)
                .map(|t| ((t - s.entered_at) / US) as i32)
        });
        rows.push(CallRow {
            pbx: pbx.clone(),
            call_id: call_id.clone(),
            stint: n as i32 + 1,
            direction,
            queue: Some(s.queue.clone()),
            caller,
            caller_raw,
            callee: cdr.and_then(|c| c.callee.clone()).or_else(|| did.clone()),
            party: None,
            entered_at: Some(s.entered_at),
            answered_at: s.answered_at,
            ended_at: s.ended_at,
            outcome: s.outcome.unwrap_or("open").to_string(),
            agent: s.agent.clone(),
            wait_s,
            talk_s: s.talk_s,
            missed: false,
        });
    }
    if rows.is_empty() {
        if let Some(c) = cdr {
            let outcome = cdr_outcome(c);
            let answered_at = if outcome == "answered" {
                c.answered_at
            } else {
                None
            };
            let wait_s = match outcome {
                "answered" => answered_at.map(|a| ((a - c.ts) / US) as i32),
                "abandoned" => c.ended_at.map(|t| ((t - c.ts).max(0) / US) as i32),
                _ => None,
            };
            rows.push(CallRow {
                pbx: pbx.clone(),
                call_id: call_id.clone(),
                stint: 1,
                direction: c.direction.clone(),
                queue: c.queue.clone(),
                caller: c.caller.clone(),
                caller_raw: c.caller_raw.clone(),
                callee: c.callee.clone(),
                party: None,
                entered_at: Some(c.ts),
                answered_at,
                ended_at: c.ended_at,
                outcome: outcome.to_string(),
                agent: c.agent.clone(),
                wait_s,
                talk_s: c.talk_s,
                missed: false,
            });
        }
    }
    // An open call has no end: the deriver finds open calls by
    // `ended_at IS NULL` (`agents::AGENT_CALLS`, `refresh::sweep`).
    debug_assert!(rows
        .iter()
        .all(|r| r.outcome != "open" || r.ended_at.is_none()));
    // Call-level facts on every row.
    let answered = rows.iter().any(|r| r.answered_at.is_some());
    let last = rows
        .last()
        .map(|r| (r.outcome.clone(), r.wait_s, r.queue.is_some()));
    let inbound = rows
        .first()
        .is_some_and(|r| r.direction.as_deref() == Some("inbound"));
    let missed = inbound
        && !answered
        && match last {
            Some((o, w, true)) => match o.as_str() {
                "abandoned" => w.unwrap_or(0) >= cfg.short_abandon_s,
                "timeout" | "exit_empty" | "exit_key" => true,
                _ => false,
            },
            Some((o, _, false)) => matches!(o.as_str(), "no_answer" | "busy" | "voicemail"),
            None => false,
        };
    for r in &mut rows {
        r.missed = missed;
        r.party = match r.direction.as_deref() {
            Some("outbound") => r.callee.clone(),
            _ => r.caller.clone(),
        };
    }
    rows
}

/// The outcome of a call known from its CDR alone (no queue_log lines).
/// An inbound queue call (lastapp `Queue`) is `abandoned` unless a member
/// answered. An inbound call that reached no agent (no `dstchannel`) is
/// `abandoned` when it was in a queue (the trunk row's disposition is not
/// the queue's outcome), `voicemail` when it ended in VoiceMail, `no_answer`/`busy` when
/// it dialled something that did not answer, and else `ivr`: answered by
/// the PBX itself (an IVR, an announcement) or hung up before being routed.
///
/// An inbound row that runs in a Local channel's `;2` half and rang an agent
/// is `leg`: a member's leg whose call's row has not been read yet (Asterisk
/// writes a leg's row when the member stops ringing, the call's when the
/// caller hangs up, maybe minutes later). Once that row is read the leg is
/// an attempt of its call (`legs.rs`); until then it is no call of the
/// caller's and never missed, so it cannot open an episode of its own.
fn cdr_outcome(c: &Ev) -> &'static str {
    let disposition = super::attempts::outcome_of(c.disposition.as_deref());
    let inbound = c.direction.as_deref() == Some("inbound");
    let local_leg = c
        .channel
        .as_deref()
        .and_then(super::legs::local_half)
        .is_some_and(|(_, half)| half == 2);
    if inbound && local_leg && c.agent.is_some() {
        return "leg";
    }
    // A queue call no member answered (the row names the last one rung).
    if inbound && c.queue.is_some() && disposition != "answered" {
        return "abandoned";
    }
    let nobody = inbound && c.agent.is_none();
    if !nobody {
        return match disposition {
            "unknown" => "failed",
            d => d,
        };
    }
    let app = c
        .info
        .as_deref()
        .and_then(|i| i.split('(').next())
        .unwrap_or("");
    if c.queue.is_some() {
        "abandoned"
    } else if app.eq_ignore_ascii_case("VoiceMail") {
        "voicemail"
    } else if app.eq_ignore_ascii_case("Dial") && matches!(disposition, "no_answer" | "busy") {
        disposition
    } else {
        "ivr"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, kind: &str, queue: Option<&str>) -> Ev {
        Ev {
            pbx: "p".into(),
            call_id: "c1".into(),
            event_id: format!("s:f:{ts}"),
            ts: ts * US,
            kind: kind.into(),
            queue: queue.map(str::to_string),
            ..Ev::default()
        }
    }

    #[test]
    fn answered_stint_then_completion() {
        let mut enter = ev(100, "enter_queue", Some("sales"));
        enter.caller = Some("+79161234567".into());
        let mut conn = ev(114, "answered", Some("sales"));
        conn.agent = Some("201".into());
        conn.wait_s = Some(14);
        let mut done = ev(281, "completed_by_caller", Some("sales"));
        done.talk_s = Some(167);
        // Arrival order does not matter.
        let mut evs = vec![done, enter, conn];
        let rows = build(&mut evs, "c1", &StateConfig::default());
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (
                r.outcome.as_str(),
                r.agent.as_deref(),
                r.wait_s,
                r.talk_s,
                r.missed
            ),
            ("answered", Some("201"), Some(14), Some(167), false)
        );
        assert_eq!(r.party.as_deref(), Some("+79161234567"));
        assert_eq!(r.direction.as_deref(), Some("inbound"));
    }

    #[test]
    fn short_and_long_abandons() {
        let cfg = StateConfig::default();
        for (wait, missed) in [(3, false), (25, true)] {
            let mut enter = ev(100, "enter_queue", Some("sales"));
            enter.caller = Some("+79031396745".into());
            let mut ab = ev(100 + wait, "abandoned", Some("sales"));
            ab.wait_s = Some(wait as i32);
            let rows = build(&mut [enter, ab], "c1", &cfg);
            assert_eq!(rows[0].outcome, "abandoned");
            assert_eq!(rows[0].missed, missed, "wait {wait}");
        }
    }

    #[test]
    fn two_stints_and_a_cdr_row() {
        let mut e1 = ev(100, "enter_queue", Some("sales"));
        e1.caller = Some("+79161234567".into());
        let mut c1 = ev(106, "answered", Some("sales"));
        c1.agent = Some("201".into());
        let mut c2 = ev(245, "answered", Some("support"));
        c2.agent = Some("301".into());
        c2.wait_s = Some(9);
        let mut d2 = ev(360, "completed_by_agent", Some("support"));
        d2.talk_s = Some(115);
        let mut cdr = ev(100, "call_record", Some("sales"));
        cdr.direction = Some("inbound".into());
        cdr.callee = Some("+74957877871".into());
        cdr.disposition = Some("answered".into());
        let rows = build(&mut [d2, cdr, c2, c1, e1], "c1", &StateConfig::default());
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(
            (rows[0].stint, rows[0].outcome.as_str(), rows[0].ended_at),
            (1, "transferred", Some(236 * US))
        );
        assert_eq!(
            (
                rows[1].stint,
                rows[1].queue.as_deref(),
                rows[1].outcome.as_str(),
                rows[1].agent.as_deref()
            ),
            (2, Some("support"), "answered", Some("301"))
        );
        assert!(rows
            .iter()
            .all(|r| r.callee.as_deref() == Some("+74957877871")));
    }

    /// A FreePBX member's leg (Local `;2`, ringing the phone) read before
    /// its call's row: kept, but no call of the caller's and never missed.
    #[test]
    fn a_member_leg_alone_is_a_leg() {
        for disposition in ["no_answer", "answered"] {
            let mut leg = ev(500, "call_record", None);
            leg.source_kind = "asterisk_cdr_csv".into();
            leg.direction = Some("inbound".into());
            leg.caller = Some("+79031396745".into());
            leg.channel = Some("Local/205@from-queue-0000004a;2".into());
            leg.dst_channel = Some("PJSIP/205-00000051".into());
            leg.agent = Some("205".into());
            leg.disposition = Some(disposition.into());
            leg.answered_at = Some(503 * US);
            let rows = build(&mut [leg.clone()], "c1", &StateConfig::default());
            assert_eq!(
                (
                    rows[0].outcome.as_str(),
                    rows[0].missed,
                    rows[0].answered_at
                ),
                ("leg", false, None),
                "{disposition}"
            );
            // The same row on a device channel is a direct call.
            leg.channel = Some("PJSIP/trunk-00000050".into());
            let rows = build(&mut [leg], "c1", &StateConfig::default());
            assert_eq!(rows[0].outcome, disposition);
        }
    }

    #[test]
    fn cdr_only_outbound_callback() {
        let mut cdr = ev(500, "call_record", None);
        cdr.direction = Some("outbound".into());
        cdr.caller = Some("201".into());
        cdr.callee = Some("+79031396745".into());
        cdr.agent = Some("201".into());
        cdr.disposition = Some("answered".into());
        cdr.answered_at = Some(507 * US);
        cdr.talk_s = Some(60);
        let rows = build(&mut [cdr], "c1", &StateConfig::default());
        let r = &rows[0];
        assert_eq!(
            (
                r.outcome.as_str(),
                r.party.as_deref(),
                r.wait_s,
                r.queue.as_deref()
            ),
            ("answered", Some("+79031396745"), Some(7), None)
        );
    }
}
