//! The original rule, `[rules.missed_call_email]`: an email per line that
//! loses a caller (ABANDON, EXITWITH*), decided at ingest and written to the
//! outbox in the same transaction as the line, under a deterministic id, so
//! a replayed line can never create a second action. `[[rules]]`
//! (`engine.rs`) supersedes it.

use crate::config::{Config, MissedCallEmailRule};
use calltrail_parsers::{Event, EventKind};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::store::{CallerInfo, NewAction};

/// Action kind for emails.
pub const EMAIL: &str = "email";

/// The stored payload of an email action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailPayload {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// The rules of one source.
#[derive(Debug, Clone)]
pub struct Rules {
    missed: Option<MissedCallEmailRule>,
    from: String,
    tz: Tz,
}

impl Rules {
    pub fn new(cfg: &Config, tz: Tz) -> Rules {
        let m = &cfg.rules.missed_call_email;
        Rules {
            missed: m.enabled.then(|| m.clone()),
            from: cfg.email.from.clone(),
            tz,
        }
    }

    /// Actions caused by `ev`, judged at `now`. `caller` is who placed the
    /// call (ABANDON and friends name only the call).
    pub fn actions_for(
        &self,
        ev: &Event,
        caller: Option<&CallerInfo>,
        now: DateTime<Utc>,
    ) -> Vec<NewAction> {
        let mut out = Vec::new();
        if let Some(rule) = &self.missed {
            if ev.kind.is_missed() && fresh(ev, rule.max_age_minutes, now) {
                let payload = EmailPayload {
                    from: self.from.clone(),
                    to: rule.to.clone(),
                    subject: missed_subject(ev, caller),
                    body: missed_body(ev, caller, self.tz),
                };
                match serde_json::to_string(&payload) {
                    Ok(payload) => out.push(NewAction {
                        action_id: format!("missed-call-email:{}", ev.event_id),
                        kind: EMAIL.into(),
                        event_id: ev.event_id.clone(),
                        payload,
                        due_at: None,
                        skipped: None,
                        priority: 0,
                    }),
                    Err(e) => tracing::error!(error = %e, "cannot encode an email action"),
                }
            }
        }
        out
    }
}

fn fresh(ev: &Event, max_age_minutes: u64, now: DateTime<Utc>) -> bool {
    max_age_minutes == 0 || (now - ev.ts).num_minutes() < max_age_minutes as i64
}

/// Text from the PBX made safe for one line of a message: no control
/// characters (so no header or line injection), bounded length.
pub fn inline(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

fn who(caller: Option<&CallerInfo>) -> String {
    match caller.map(|c| (&c.caller, &c.caller_raw)) {
        Some((Some(c), _)) => inline(c, 40),
        Some((None, Some(raw))) if !raw.trim().is_empty() => {
            format!("a withheld number ({})", inline(raw, 40))
        }
        _ => "an unknown caller".into(),
    }
}

fn queue(ev: &Event) -> String {
    ev.queue
        .as_deref()
        .map(|q| inline(q, 60))
        .unwrap_or_else(|| "no queue".into())
}

/// `Missed call from <caller> in <queue>`.
pub fn missed_subject(ev: &Event, caller: Option<&CallerInfo>) -> String {
    format!("Missed call from {} in {}", who(caller), queue(ev))
}

fn what_happened(ev: &Event) -> String {
    let wait = ev
        .wait_s
        .map(|w| format!(" after waiting {w} s"))
        .unwrap_or_default();
    match ev.kind {
        EventKind::Abandoned => format!("the caller hung up{wait}"),
        EventKind::Timeout => format!("the queue timed out{wait}"),
        EventKind::ExitEmpty => format!("no agent was available (the queue was empty){wait}"),
        EventKind::ExitWithKey => format!(
            "the caller left the queue by pressing {}{wait}",
            ev.info
                .as_deref()
                .map(|k| inline(k, 8))
                .unwrap_or_else(|| "a key".into())
        ),
        other => other.to_string(),
    }
}

/// The plain-text body of a missed-call email.
pub fn missed_body(ev: &Event, caller: Option<&CallerInfo>, tz: Tz) -> String {
    let local = ev.ts.with_timezone(&tz);
    let mut b = format!("Missed call from {} in {}.\n\n", who(caller), queue(ev));
    b.push_str(&format!("What happened: {}\n", what_happened(ev)));
    b.push_str(&format!(
        "When:          {} UTC ({} {})\n",
        ev.ts.format("%Y-%m-%d %H:%M:%S"),
        local.format("%Y-%m-%d %H:%M:%S"),
        tz.name()
    ));
    if let Some(raw) = caller.and_then(|c| c.caller_raw.as_ref()) {
        b.push_str(&format!("As received:   {}\n", inline(raw, 60)));
    }
    if let Some(name) = caller.and_then(|c| c.caller_name.as_ref()) {
        b.push_str(&format!("Caller name:   {}\n", inline(name, 80)));
    }
    if let Some(p) = ev.position {
        b.push_str(&format!("Position:      {p}"));
        if let Some(o) = ev.orig_position {
            b.push_str(&format!(" (entered at {o})"));
        }
        b.push('\n');
    }
    b.push_str(&format!(
        "PBX / source:  {} / {}\n",
        inline(&ev.pbx, 60),
        inline(&ev.source, 60)
    ));
    if let Some(c) = &ev.call_id {
        b.push_str(&format!("Call id:       {}\n", inline(c, 80)));
    }
    b.push_str("\n-- \ncalltrail\n");
    b
}
