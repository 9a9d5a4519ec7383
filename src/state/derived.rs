//! State changes as events on the stream (`source_kind = derived`): a
//! missed-call episode opened or closed, an SLA breach started or ended, a
//! first call, the last agent of a caller changed. Ids are deterministic
//! (`state:<kind>:<key>`), so a replayed batch derives nothing new.

use calltrail_parsers::{Event, EventKind, SourceKind, Str};
use chrono::{DateTime, Utc};

fn at(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn event(kind: EventKind, verb: &str, ts_us: i64, id: String) -> Event {
    let mut e = Event::new(
        SourceKind::Derived,
        Str::from("state"),
        Str::from("*"),
        at(ts_us),
        kind,
        Str::from(verb),
    );
    e.event_id = id;
    e
}

/// A caller's first inbound call.
pub fn first_call(caller: &str, first_seen: i64) -> Event {
    let mut e = event(
        EventKind::FirstCall,
        "FIRST_CALL",
        first_seen,
        format!("state:first_call:{caller}"),
    );
    e.caller = Some(caller.to_string());
    e
}

/// The agent of the caller's latest answered conversation changed.
pub fn last_agent_changed(caller: &str, agent: &str, at_us: i64, call_id: &str) -> Event {
    let mut e = event(
        EventKind::LastAgentChanged,
        "LAST_AGENT_CHANGED",
        at_us,
        format!("state:last_agent:{caller}:{call_id}"),
    );
    e.caller = Some(caller.to_string());
    e.agent = Some(Str::from(agent));
    e.call_id = Some(call_id.to_string());
    e
}

/// An episode opened.
pub fn missed_opened(caller: &str, queue: Option<&str>, opened: i64, call_id: &str) -> Event {
    let mut e = event(
        EventKind::MissedOpened,
        "MISSED_OPENED",
        opened,
        format!("state:missed_opened:{caller}:{opened}"),
    );
    e.caller = Some(caller.to_string());
    e.queue = queue.map(Str::from);
    e.call_id = Some(call_id.to_string());
    e
}

/// An episode closed with `status` at `resolved`.
pub fn missed_closed(
    caller: &str,
    queue: Option<&str>,
    opened: i64,
    status: &str,
    resolved: i64,
    by: Option<&str>,
) -> Event {
    let mut e = event(
        EventKind::MissedClosed,
        "MISSED_CLOSED",
        resolved,
        format!("state:missed_closed:{caller}:{opened}:{status}"),
    );
    e.caller = Some(caller.to_string());
    e.queue = queue.map(Str::from);
    e.call_id = by.map(str::to_string);
    e.info = Some(status.to_string());
    e
}

/// A breach started (`ended` = false) or ended.
pub fn breach(queue: &str, kind: &str, started: i64, ts_us: i64, value: f64, ended: bool) -> Event {
    let (k, verb, what) = if ended {
        (
            EventKind::SlaBreachEnded,
            "SLA_BREACH_ENDED",
            "breach_ended",
        )
    } else {
        (
            EventKind::SlaBreachStarted,
            "SLA_BREACH_STARTED",
            "breach_started",
        )
    };
    let mut e = event(
        k,
        verb,
        ts_us,
        format!("state:{what}:{queue}:{kind}:{started}"),
    );
    e.queue = Some(Str::from(queue));
    e.info = Some(format!("{kind} {value}"));
    e
}
