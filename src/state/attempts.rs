//! The `call_attempts` rows of one call: every agent its CDR says was rung,
//! for how long, and who answered. Made from the call's own CDR rows (one
//! per member attempt, the member in `dstchannel`) merged with its agent
//! legs (the rows of the Local channels' `;2` halves, see `legs.rs`), by
//! the member channel. A pure function of the call's events.

use super::calls::{Ev, US};
use super::legs::{is_asterisk_cdr, local_half};
use std::collections::BTreeMap;

/// One `call_attempts` row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttemptRow {
    pub pbx: String,
    pub call_id: String,
    pub attempt: i32,
    pub agent: Option<String>,
    /// The member channel as the call dialled it (`Local/205@from-queue-0000004a;1`,
    /// `PJSIP/205-00000012`), else as the leg ran it.
    pub channel: String,
    /// The uniqueid of the agent leg's own CDR row, when it has one.
    pub leg_call_id: Option<String>,
    pub queue: Option<String>,
    pub rang_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub ring_s: Option<i32>,
    pub talk_s: Option<i32>,
    pub outcome: String,
}

/// `answered`, `no_answer`, `busy`, `failed` or `unknown` from a CDR disposition.
pub fn outcome_of(disposition: Option<&str>) -> &'static str {
    match disposition {
        Some("answered") => "answered",
        Some("no_answer" | "cancel") => "no_answer",
        Some("busy") => "busy",
        Some("failed" | "congestion") => "failed",
        _ => "unknown",
    }
}

#[derive(Default)]
struct Side<'e> {
    /// The call's own row naming the member (its `dstchannel`).
    dial: Option<&'e Ev>,
    /// The member's leg row.
    leg: Option<&'e Ev>,
}

fn answered(e: &Ev) -> bool {
    e.disposition.as_deref() == Some("answered")
}

/// Keeps the answered row of two, else the later one.
fn better<'e>(old: Option<&'e Ev>, new: &'e Ev) -> &'e Ev {
    match old {
        Some(o) if (answered(o), o.ts) > (answered(new), new.ts) => o,
        _ => new,
    }
}

/// The attempts of call `call_id`, from `events` (its own and its legs').
pub fn build(events: &[Ev], call_id: &str) -> Vec<AttemptRow> {
    let mut by_member: BTreeMap<String, Side> = BTreeMap::new();
    for e in events.iter().filter(|e| is_asterisk_cdr(e)) {
        if e.call_id == call_id {
            // The call's own rows: one per member it dialled. Only an
            // inbound row's agent is the member (it comes from dstchannel;
            // an internal or outbound row's is the caller, from channel).
            let (Some(dst), Some(_)) = (e.dst_channel.as_deref(), e.agent.as_deref()) else {
                continue;
            };
            if e.direction.as_deref() != Some("inbound") {
                continue;
            }
            let key = local_half(dst).map_or(dst, |(base, _)| base).to_string();
            let side = by_member.entry(key).or_default();
            side.dial = Some(better(side.dial, e));
        } else if let Some(ch) = e.channel.as_deref() {
            let key = local_half(ch).map_or(ch, |(base, _)| base).to_string();
            let side = by_member.entry(key).or_default();
            side.leg = Some(better(side.leg, e));
        }
    }
    let mut rows: Vec<AttemptRow> = by_member
        .into_values()
        .filter_map(|s| {
            let main = s.leg.or(s.dial)?;
            let channel = s
                .dial
                .and_then(|d| d.dst_channel.clone())
                .or_else(|| main.channel.clone())
                .unwrap_or_default();
            let answered_at = main.answered_at.filter(|_| answered(main));
            let ended_at = main.ended_at;
            let ring_s = answered_at
                .or(ended_at)
                .map(|t| ((t - main.ts).max(0) / US) as i32);
            Some(AttemptRow {
                pbx: main.pbx.clone(),
                call_id: call_id.to_string(),
                attempt: 0,
                agent: s
                    .dial
                    .and_then(|d| d.agent.clone())
                    .or_else(|| main.agent.clone()),
                channel,
                leg_call_id: s.leg.map(|l| l.call_id.clone()),
                queue: s.dial.and_then(|d| d.queue.clone()),
                rang_at: main.ts,
                answered_at,
                ended_at,
                ring_s,
                talk_s: answered_at.and(main.talk_s),
                outcome: outcome_of(main.disposition.as_deref()).to_string(),
            })
        })
        .collect();
    rows.sort_by(|a, b| (a.rang_at, &a.channel).cmp(&(b.rang_at, &b.channel)));
    for (n, r) in rows.iter_mut().enumerate() {
        r.attempt = n as i32 + 1;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn row(
        id: &str,
        ts: i64,
        channel: &str,
        dst: &str,
        agent: Option<&str>,
        disposition: &str,
        answer: Option<i64>,
        end: i64,
        billsec: i32,
    ) -> Ev {
        Ev {
            pbx: "p".into(),
            call_id: id.into(),
            event_id: format!("{id}:{channel}:{dst}"),
            ts: ts * US,
            kind: "call_record".into(),
            source_kind: "asterisk_cdr_csv".into(),
            channel: Some(channel.into()),
            dst_channel: (!dst.is_empty()).then(|| dst.to_string()),
            agent: agent.map(str::to_string),
            direction: Some("inbound".into()),
            disposition: Some(disposition.into()),
            answered_at: answer.map(|a| a * US),
            ended_at: Some(end * US),
            talk_s: Some(billsec),
            queue: Some("sales".into()),
            ..Ev::default()
        }
    }

    /// Master.csv's first call: 204 and 205 rang and failed, 206 answered.
    #[test]
    fn local_members_and_their_legs() {
        let t = "Local/4951112244@from-pstn-00000000;2";
        let evs = vec![
            row(
                "1.3",
                100,
                "Local/204@from-queue-01;2",
                "",
                None,
                "failed",
                None,
                101,
                0,
            ),
            row(
                "1.5",
                100,
                "Local/205@from-queue-02;2",
                "",
                None,
                "failed",
                None,
                101,
                0,
            ),
            row(
                "1.7",
                100,
                "Local/206@from-queue-03;2",
                "",
                None,
                "answered",
                Some(101),
                109,
                7,
            ),
            row(
                "1.1",
                100,
                t,
                "Local/204@from-queue-01;1",
                Some("204"),
                "no_answer",
                Some(100),
                101,
                1,
            ),
            row(
                "1.1",
                100,
                t,
                "Local/205@from-queue-02;1",
                Some("205"),
                "no_answer",
                Some(100),
                101,
                1,
            ),
            row(
                "1.1",
                100,
                t,
                "Local/206@from-queue-03;1",
                Some("206"),
                "answered",
                Some(100),
                109,
                8,
            ),
        ];
        let a = build(&evs, "1.1");
        let got: Vec<_> = a
            .iter()
            .map(|r| {
                (
                    r.attempt,
                    r.agent.as_deref(),
                    r.leg_call_id.as_deref(),
                    r.outcome.as_str(),
                    r.ring_s,
                    r.talk_s,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Some("204"), Some("1.3"), "failed", Some(1), None),
                (2, Some("205"), Some("1.5"), "failed", Some(1), None),
                (3, Some("206"), Some("1.7"), "answered", Some(1), Some(7)),
            ]
        );
        assert_eq!(a[2].channel, "Local/206@from-queue-03;1");
        assert_eq!(a[2].queue.as_deref(), Some("sales"));
    }

    /// PJSIP members write no leg: the call's rows are the attempts.
    #[test]
    fn pjsip_members_from_the_calls_own_rows() {
        let evs = vec![
            row(
                "2.1",
                100,
                "PJSIP/trunk-01",
                "PJSIP/201-02",
                Some("201"),
                "no_answer",
                None,
                115,
                0,
            ),
            row(
                "2.1",
                100,
                "PJSIP/trunk-01",
                "PJSIP/202-03",
                Some("202"),
                "answered",
                Some(118),
                160,
                42,
            ),
        ];
        let a = build(&evs, "2.1");
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].agent.as_deref(), a[0].outcome.as_str(), a[0].ring_s),
            (Some("201"), "no_answer", Some(15))
        );
        assert_eq!(
            (
                a[1].agent.as_deref(),
                a[1].answered_at,
                a[1].talk_s,
                a[1].leg_call_id.as_deref()
            ),
            (Some("202"), Some(118 * US), Some(42), None)
        );
    }
}
