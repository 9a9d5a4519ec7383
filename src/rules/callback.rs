//! A callback action carried out (`[callbacks]`, docs/rules.md): checked
//! again when due (the episode still open, the caller not blacklisted),
//! then placed as an Asterisk call file under a name derived from the
//! action id, so that a retry, a restart or a crash between placing and
//! recording finds the file already queued or archived
//! (`AlreadyThere`) and never places a second one. The placement is
//! recorded in `callbacks`.

use super::CallbackPayload;
use crate::config::CallbacksSection;
use crate::store::callbacks::{self, CallbackRow};
use crate::store::{directory, Store};
use calltrail_sinks::callfile::{self, CallFile, CallFileError, Var};
use chrono::Utc;

/// Whether `n` is a number a call file or AMI may dial:
/// `^\+?[0-9]{3,20}$` (anything else is refused, never cleaned).
pub fn dialable(n: &str) -> bool {
    let d = n.strip_prefix('+').unwrap_or(n);
    (3..=20).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
}

/// What became of a callback action.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    /// Queued now (`false`) or found queued/archived already (`true`).
    Done(bool),
    /// Not placed, for good, with the reason (episode closed, blacklisted).
    Skipped(String),
    /// Cannot ever be placed (a refused field), with the reason.
    Failed(String),
    /// Try again later (the spool not writable).
    Retry(String),
}

/// FNV-1a of `s`: a stable short name for an action id (call files, AMI
/// accountcodes).
pub fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The call file's name for an action: its id in the spool's alphabet plus
/// a hash of the whole id (distinct ids, distinct names).
pub fn file_name(action_id: &str) -> String {
    let h = fnv64(action_id);
    let stem: String = action_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(70)
        .collect();
    format!("ct-{stem}-{h:016x}.call")
}

fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The call file of `p` under `cfg`.
pub fn call_file(
    cfg: &CallbacksSection,
    action_id: &str,
    p: &CallbackPayload,
) -> Result<CallFile, String> {
    if !dialable(&p.caller) {
        return Err(format!("{:?} is not a dialable number", p.caller));
    }
    let agent = p.agent.as_deref().filter(|a| token_ok(a));
    let queue = p
        .queue
        .as_deref()
        .filter(|q| token_ok(q))
        .or(cfg.default_queue.as_deref().filter(|q| token_ok(q)));
    let channel =
        match (cfg.connect.as_str(), agent, queue) {
            // An employee's callback: dial them, then the rule's context.
            _ if p.context.is_some() => cfg.caller_channel.replace("{number}", &p.caller),
            ("caller_first", _, _) => cfg.caller_channel.replace("{number}", &p.caller),
            (_, Some(a), _) => cfg.agent_channel.replace("{agent}", a),
            (_, None, Some(q)) => cfg.queue_channel.replace("{queue}", q),
            (_, None, None) => return Err(
                "no sticky agent and no queue to connect the caller to ([callbacks] default_queue)"
                    .into(),
            ),
        };
    let mut vars = vec![
        Var::number("CT_NUMBER", &p.caller),
        Var::text(
            "CT_CALLBACK",
            action_id
                .chars()
                .filter(|c| c.is_ascii_graphic() && *c != ';')
                .take(120)
                .collect::<String>(),
        ),
    ];
    if let Some(q) = queue {
        vars.push(Var::text("CT_QUEUE", q));
    }
    if let Some(a) = agent {
        vars.push(Var::text("CT_AGENT", a));
    }
    Ok(CallFile {
        channel,
        callerid_name: cfg.callerid_name.clone(),
        callerid_num: p.caller.clone(),
        context: p.context.clone().unwrap_or_else(|| cfg.context.clone()),
        extension: "s".into(),
        priority: 1,
        max_retries: cfg.max_retries,
        retry_time_s: cfg.retry_time_s,
        wait_time_s: cfg.wait_time_s,
        account: None,
        // Always archived: a finished call stays in outgoing_done/, so
        // `write` refuses to place it a second time.
        archive: true,
        vars,
    })
}

pub fn row_of<'a>(
    action_id: &'a str,
    p: &'a CallbackPayload,
    status: &'a str,
    placed_as: Option<&'a str>,
    reason: Option<&'a str>,
) -> CallbackRow<'a> {
    CallbackRow {
        action_id,
        attempt: 1,
        caller: &p.caller,
        episode_opened_at: p.episode_opened_at,
        queue: p.queue.as_deref(),
        agent: p.agent.as_deref(),
        method: "call_file",
        placed_as,
        status,
        reason,
    }
}

/// Why the callback of `p` is not wanted any more, if it is not: its
/// episode closed (the caller got through, was called, or it expired), or
/// the caller is blacklisted now. Checked right before each attempt.
pub fn unwanted(
    store: &Store,
    p: &CallbackPayload,
) -> Result<Option<String>, crate::store::StoreError> {
    let now = Utc::now();
    store.with_conn(|c| -> Result<Option<String>, crate::store::StoreError> {
        if p.context.is_none() && !callbacks::episode_open(c, &p.caller, p.episode_opened_at)? {
            return Ok(Some("the missed-call episode closed before the callback (the caller got through, was called, or it expired)".into()));
        }
        if directory::lookup(c, &p.caller, now)?.is_some_and(|e| e.fields.class.as_deref() == Some("blacklist")) {
            return Ok(Some("the caller is blacklisted".into()));
        }
        Ok(None)
    })
}

/// `p` as it is placed now: with its sticky agent only while that agent is
/// free to take it (`available`, or a static member whose presence no line
/// tells); one on a call, paused or logged out gives way to the queue.
pub fn with_free_agent(store: &Store, mut p: CallbackPayload) -> CallbackPayload {
    let Some(agent) = p.agent.clone() else {
        return p;
    };
    let presence = store.with_conn(|c| {
        crate::state::read_presence(c, Some(std::slice::from_ref(&agent))).map_err(|e| {
            crate::store::StoreError::Db {
                what: "reading an agent's presence",
                source: e,
            }
        })
    });
    let state = match presence {
        Ok(rows) => rows
            .into_iter()
            .find(|(a, _)| *a == agent)
            .and_then(|(_, p)| p)
            .map_or("unknown", |p| crate::lookup::decision::agent_state(&p)),
        Err(e) => {
            tracing::warn!(agent = %agent, error = %e, "cannot read an agent's presence; dialling them");
            "unknown"
        }
    };
    if !matches!(state, "available" | "unknown") {
        tracing::info!(agent = %agent, state, "the sticky agent is not free: the callback goes to the queue");
        p.agent = None;
    }
    p
}

/// Carries out one callback action (blocking: the store and the spool).
pub fn place(store: &Store, cfg: &CallbacksSection, action_id: &str, payload: &str) -> Placed {
    let p: CallbackPayload = match serde_json::from_str(payload) {
        Ok(p) => p,
        Err(e) => return Placed::Failed(format!("malformed payload: {e}")),
    };
    let now = Utc::now();
    let row = |status, placed_as, reason| row_of(action_id, &p, status, placed_as, reason);
    match unwanted(store, &p) {
        Err(e) => return Placed::Retry(format!("cannot check the episode: {e}")),
        Ok(Some(why)) => {
            let _ =
                store.with_conn(|c| callbacks::record(c, &row("skipped", None, Some(&why)), now));
            return Placed::Skipped(why);
        }
        Ok(None) => {}
    }
    let name = file_name(action_id);
    let p = with_free_agent(store, p);
    let row = |status, placed_as, reason| row_of(action_id, &p, status, placed_as, reason);
    let file = match call_file(cfg, action_id, &p) {
        Ok(f) => f,
        Err(why) => {
            let _ =
                store.with_conn(|c| callbacks::record(c, &row("failed", None, Some(&why)), now));
            return Placed::Failed(why);
        }
    };
    let placed = match callfile::write(&cfg.spool, &name, &file, None, cfg.owner_ids) {
        Ok(_) => Placed::Done(false),
        Err(CallFileError::AlreadyThere { .. }) => Placed::Done(true),
        Err(e @ CallFileError::Invalid { .. }) => Placed::Failed(e.to_string()),
        Err(e) => Placed::Retry(e.to_string()),
    };
    let recorded = match &placed {
        Placed::Done(_) => {
            store.with_conn(|c| callbacks::record(c, &row("queued", Some(&name), None), now))
        }
        Placed::Failed(why) => {
            store.with_conn(|c| callbacks::record(c, &row("failed", Some(&name), Some(why)), now))
        }
        _ => Ok(()),
    };
    if let Err(e) = recorded {
        tracing::error!(action = %action_id, error = %e, "cannot record a callback");
    }
    placed
}

/// Reads back what Asterisk made of every placed callback still `queued`
/// (`outgoing_done/` and its `Status:` line) into `callbacks`; returns how
/// many finished.
pub fn follow(store: &Store, cfg: &CallbacksSection) -> Result<usize, crate::store::StoreError> {
    use calltrail_sinks::callfile::{CallFileOutcome, CallStatus};
    let queued = store.with_conn(callbacks::queued)?;
    let mut finished = 0;
    for (action_id, name) in queued {
        let (status, attempts, reason) = match callfile::outcome(&cfg.spool, &name) {
            Ok(CallFileOutcome::Pending(_)) => continue,
            Ok(CallFileOutcome::Done { status, attempts }) => (
                match status {
                    CallStatus::Completed => "completed",
                    CallStatus::Expired => "expired",
                    CallStatus::Failed => "failed",
                },
                Some(attempts),
                None,
            ),
            Ok(CallFileOutcome::Missing) => (
                "cancelled",
                None,
                Some("the call file left the spool without being archived"),
            ),
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "cannot read a callback's call file back");
                continue;
            }
        };
        store.with_conn(|c| {
            callbacks::finish(c, &action_id, 1, status, attempts, reason, Utc::now())
        })?;
        tracing::info!(action = %action_id, status, "callback finished");
        finished += 1;
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let n = file_name("rule:cb:state:missed_opened:+79161110001:1796340450000000");
        assert!(
            n.starts_with("ct-rule_cb_state_missed_opened__79161110001_") && n.ends_with(".call"),
            "{n}"
        );
        assert_ne!(file_name("a:b"), file_name("a_b"));
        assert!(dialable("+79161234567") && dialable("201"));
        for bad in [
            "",
            "+",
            "12",
            "7916;1",
            "7916\n1",
            "anonymous",
            &"1".repeat(21),
        ] {
            assert!(!dialable(bad), "{bad:?}");
        }
        let cfg = CallbacksSection::default();
        let p = CallbackPayload {
            caller: "+79161234567".into(),
            episode_opened_at: Utc::now(),
            queue: Some("support".into()),
            agent: Some("201".into()),
            context: None,
        };
        assert_eq!(call_file(&cfg, "x", &p).unwrap().channel, "PJSIP/201");
        let p = CallbackPayload {
            agent: Some("201&PJSIP/666".into()),
            ..p
        };
        assert_eq!(
            call_file(&cfg, "x", &p).unwrap().channel,
            "Local/support@calltrail-queues/n"
        );
    }
}
