//! Expected `agent_status` at the end of the day: membership, login and
//! pause state from the member events, the call in progress and the end of
//! the latest answered call, each the latest by event time.

use super::table::{soft, text, ts, Expected, Row, NOTE, NULL, OR};
use super::truth::{AgentAct, Day, Ts};
use std::collections::BTreeSet;

pub fn expected(day: &Day) -> Expected {
    let mut rows = Vec::new();
    for (a, def) in day.agents.iter().enumerate() {
        let mut events: Vec<_> = day.agent_events.iter().filter(|e| e.agent == a).collect();
        events.sort_by_key(|e| e.at);
        let mut queues = BTreeSet::new();
        let mut agent_login = false;
        let mut pause: (bool, Option<String>, Option<Ts>) = (false, None, None);
        let mut updated: Option<Ts> = None;
        for e in &events {
            updated = updated.max(Some(e.at));
            match &e.act {
                AgentAct::Add { paused } => {
                    queues.insert(e.queue.expect("queue"));
                    if *paused {
                        pause = (true, None, Some(e.at));
                    }
                }
                AgentAct::Remove => {
                    queues.remove(e.queue.expect("queue"));
                }
                AgentAct::Pause(r) | AgentAct::PauseAll(r) => {
                    pause = (true, Some(r.clone()), Some(e.at))
                }
                AgentAct::Unpause | AgentAct::UnpauseAll => pause = (false, None, None),
                AgentAct::Login => agent_login = true,
                AgentAct::Logoff { .. } => agent_login = false,
            }
        }
        let mut on_call: Option<(Ts, &str)> = None;
        let mut last_end: Option<Ts> = None;
        let mut last_end_any: Option<Ts> = None;
        for c in &day.calls {
            for s in &c.stints {
                let Some(x) = s.connect.as_ref().filter(|x| x.agent == a) else {
                    continue;
                };
                updated = updated.max(Some(x.at));
                match &s.end {
                    Some(e) => {
                        last_end = last_end.max(Some(e.at));
                        updated = updated.max(Some(e.at));
                    }
                    None => on_call = Some((x.at, &c.id)),
                }
            }
            if c.stints.is_empty() && c.cdr_agent == Some(a) {
                if let Some(r) = c.cdr.as_ref().filter(|r| r.answer.is_some()) {
                    last_end_any = last_end_any.max(Some(r.end));
                }
            }
        }
        last_end_any = last_end_any.max(last_end);
        let mut r = Row::new();
        r.insert("agent", def.id.into());
        let list = queues.iter().copied().collect::<Vec<_>>().join(",");
        // No membership: an empty list, or NULL.
        r.insert(
            "queues",
            if list.is_empty() {
                format!("{OR}{NULL}")
            } else {
                list
            },
        );
        r.insert("logged_in", (!queues.is_empty() || agent_login).to_string());
        r.insert("paused", pause.0.to_string());
        if pause.0 {
            r.insert("pause_reason", text(pause.1.as_deref()));
            r.insert("paused_since", ts(pause.2));
        } else {
            r.insert("pause_reason", soft(NULL.into()));
            r.insert("paused_since", soft(NULL.into()));
        }
        r.insert("on_call_since", ts(on_call.map(|o| o.0)));
        r.insert("on_call_id", text(on_call.map(|o| o.1)));
        let ended = if last_end == last_end_any {
            ts(last_end)
        } else {
            format!(
                "{}{NOTE}queue calls only; {} counting answered CDR-only calls too",
                soft(ts(last_end)),
                ts(last_end_any)
            )
        };
        r.insert("last_call_ended_at", ended);
        r.insert("updated_at", soft(ts(updated)));
        rows.push(r);
    }
    Expected {
        name: "agent_status",
        key: &["agent"],
        sql: "SELECT agent, queues::VARCHAR AS queues, logged_in, paused, pause_reason, \
              epoch(paused_since)::BIGINT AS paused_since, epoch(on_call_since)::BIGINT AS on_call_since, \
              on_call_id, epoch(last_call_ended_at)::BIGINT AS last_call_ended_at, \
              epoch(updated_at)::BIGINT AS updated_at FROM agent_status",
        rows,
        soft: false,
    }
}
