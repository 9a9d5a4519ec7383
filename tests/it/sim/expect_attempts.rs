//! Expected `call_attempts` rows, per docs/schema.md, from the simulator's
//! ground truth: its members are devices (`PJSIP/201`), which write no
//! agent-leg row, so an inbound call's one CDR row naming a member in
//! `dstchannel` is its one attempt.

use super::table::{int, text, ts, Expected, Row, NULL};
use super::truth::{Day, Direction, Disposition};

pub fn expected(day: &Day) -> Expected {
    let mut rows = Vec::new();
    for c in &day.calls {
        let Some(cdr) = c.cdr.as_ref() else { continue };
        if c.direction != Direction::Inbound || cdr.dstchannel.is_empty() {
            continue;
        }
        // The member the row names: the last agent who answered a queue
        // call (the simulator writes that one), else the dialled agent.
        let agent = c
            .stints
            .iter()
            .rev()
            .find_map(|s| s.connect.as_ref().map(|x| x.agent))
            .or(c.cdr_agent)
            .map(|a| day.agents[a].id);
        let answered = cdr.disposition == Disposition::Answered;
        let outcome = match cdr.disposition {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
        };
        let mut r = Row::new();
        r.insert("call_id", c.id.clone());
        r.insert("attempt", "1".into());
        r.insert("agent", text(agent));
        r.insert("channel", cdr.dstchannel.clone());
        r.insert("leg_call_id", NULL.into());
        r.insert("rang_at", ts(Some(cdr.start)));
        r.insert("answered_at", ts(cdr.answer.filter(|_| answered)));
        r.insert(
            "ring_s",
            int(Some(
                cdr.answer.filter(|_| answered).unwrap_or(cdr.end) - cdr.start,
            )),
        );
        r.insert("outcome", outcome.into());
        rows.push(r);
    }
    Expected {
        name: "call_attempts",
        key: &["call_id", "attempt"],
        sql: "SELECT call_id, attempt::BIGINT AS attempt, agent, channel, leg_call_id, \
              epoch(rang_at)::BIGINT AS rang_at, epoch(answered_at)::BIGINT AS answered_at, \
              ring_s::BIGINT AS ring_s, outcome FROM call_attempts",
        rows,
        soft: false,
    }
}
