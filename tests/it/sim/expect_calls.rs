//! Expected `calls` rows (one per call and queue stint), per
//! docs/schema.md, from the simulator's ground truth.

use super::table::{int, soft, text, ts, Expected, Row, NULL, OR};
use super::truth::{Call, Day, Direction, Disposition, EndKind};

/// `[state].short_abandon_s` default.
pub const SHORT_ABANDON_S: i64 = 5;

/// A call counts as missed: inbound, no stint answered, and the last stint
/// ended abandoned after at least `short_abandon_s`, by timeout or an
/// exit; or an inbound call outside queues ending no answer or busy.
pub fn is_missed(c: &Call) -> bool {
    if c.direction != Direction::Inbound {
        return false;
    }
    if c.stints.is_empty() {
        return c
            .cdr
            .as_ref()
            .is_some_and(|r| matches!(r.disposition, Disposition::NoAnswer | Disposition::Busy));
    }
    if c.stints.iter().any(|s| s.connect.is_some()) {
        return false;
    }
    match c.stints.last().and_then(|s| s.end.as_ref()) {
        Some(e) => match e.kind {
            EndKind::Abandon => e.wait >= SHORT_ABANDON_S,
            EndKind::Timeout | EndKind::ExitEmpty | EndKind::ExitKey(_) => true,
            _ => false,
        },
        None => false,
    }
}

pub fn outcome_of(kind: EndKind) -> &'static str {
    match kind {
        EndKind::CompleteCaller | EndKind::CompleteAgent => "answered",
        EndKind::Transfer => "transferred",
        EndKind::Abandon => "abandoned",
        EndKind::Timeout => "timeout",
        EndKind::ExitEmpty => "exit_empty",
        EndKind::ExitKey(_) => "exit_key",
    }
}

pub fn expected(day: &Day) -> Expected {
    let mut rows = Vec::new();
    for c in &day.calls {
        let missed = is_missed(c).to_string();
        let base = |stint: usize| -> Row {
            let mut r = Row::new();
            r.insert("pbx", "pbx1".into());
            r.insert("call_id", c.id.clone());
            r.insert("stint", stint.to_string());
            r.insert("direction", c.direction.as_str().into());
            r.insert("caller", text(c.caller.as_deref()));
            r.insert("caller_raw", c.caller_raw.clone());
            r.insert("callee", text(c.callee.as_deref()));
            r.insert("party", text(c.party()));
            r.insert("missed", missed.clone());
            r
        };
        if c.stints.is_empty() {
            let cdr = c
                .cdr
                .as_ref()
                .expect("a call outside queues has its CDR row");
            let mut r = base(1);
            r.insert("queue", NULL.into());
            r.insert("entered_at", ts(Some(cdr.start)));
            r.insert("answered_at", ts(cdr.answer));
            r.insert("ended_at", ts(Some(cdr.end)));
            let outcome = match cdr.disposition {
                Disposition::Answered => "answered",
                Disposition::NoAnswer => "no_answer",
                Disposition::Busy => "busy",
            };
            r.insert("outcome", outcome.into());
            r.insert("agent", text(c.cdr_agent.map(|a| day.agents[a].id)));
            r.insert(
                "wait_s",
                match cdr.answer {
                    Some(a) => int(Some(a - cdr.start)),
                    None => soft(NULL.into()),
                },
            );
            r.insert("talk_s", int(Some(cdr.answer.map_or(0, |a| cdr.end - a))));
            rows.push(r);
            continue;
        }
        for (i, s) in c.stints.iter().enumerate() {
            let mut r = base(i + 1);
            r.insert("queue", s.queue.into());
            r.insert("entered_at", ts(Some(s.entered)));
            r.insert("answered_at", ts(s.connect.as_ref().map(|x| x.at)));
            r.insert("ended_at", ts(s.end.as_ref().map(|e| e.at)));
            r.insert(
                "outcome",
                s.end.as_ref().map_or("open", |e| outcome_of(e.kind)).into(),
            );
            r.insert(
                "agent",
                text(s.connect.as_ref().map(|x| day.agents[x.agent].id)),
            );
            let wait = match (&s.connect, &s.end) {
                (Some(x), _) => int(Some(x.hold)),
                (None, Some(e)) => int(Some(e.wait)),
                (None, None) => soft(NULL.into()),
            };
            r.insert("wait_s", wait);
            let talk = match &s.end {
                Some(e) if e.kind.answered() => int(Some(e.talk)),
                Some(_) => format!("{NULL}{OR}0"),
                None => soft(NULL.into()),
            };
            r.insert("talk_s", talk);
            rows.push(r);
        }
    }
    Expected {
        name: "calls",
        key: &["call_id", "stint"],
        sql: "SELECT pbx, call_id, stint::BIGINT AS stint, direction, queue, caller, caller_raw, \
              callee, party, epoch(entered_at)::BIGINT AS entered_at, \
              epoch(answered_at)::BIGINT AS answered_at, epoch(ended_at)::BIGINT AS ended_at, \
              outcome, agent, wait_s::BIGINT AS wait_s, talk_s::BIGINT AS talk_s, missed \
              FROM calls",
        rows,
        soft: false,
    }
}
