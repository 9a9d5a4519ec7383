//! A callback carried out through AMI `Originate` (`[callbacks] method =
//! "ami"`), never twice.
//!
//! The action is claimed (`sending`, committed) before the Originate is
//! written. Asterisk's `Originate successfully queued` makes it `done`: the
//! call is Asterisk's from then on, and its `OriginateResponse` (answered,
//! busy, no answer, congestion, failure) is stored in `callbacks`. A busy
//! or unanswered attempt is retried after `retry_time_s`, up to
//! `max_retries` more, each time only if the episode is still open; the
//! retries survive a restart ([`resume`]), and each is claimed in
//! `callbacks` before its Originate, so a stop while placing one never
//! places it twice.
//!
//! Nothing queued (no connection, a refused login, `Response: Error`, a
//! field refused) → retried later or failed with the reason. The connection
//! lost after the Originate was written and before Asterisk answered →
//! `in_doubt`: the callback is not placed again blindly; the CDR settles
//! it (the Originate carries `Account: <ct…>`, and a CDR row with that
//! accountcode proves the call was made; see [`reconcile`]), or an operator.

use super::callback::unwanted;
use super::CallbackPayload;
use crate::config::CallbacksSection;
use crate::store::actions::status;
use crate::store::callbacks::{self, CallbackRow};
use crate::store::{PendingAction, Store};
use calltrail_sinks::ami::{AmiClient, AmiError, CallerId, Originate};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// How one AMI callback action ended this time.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    Placed,
    Skipped,
    Failed,
    Retried,
    InDoubt,
    NotClaimed,
}

/// The accountcode (and ActionID stem) of an action: `ct` and 16 hex
/// digits of a hash of its id, short enough for every CDR backend.
pub fn account(action_id: &str) -> String {
    format!("ct{:016x}", super::callback::fnv64(action_id))
}

/// The Originate of attempt `attempt` (1-based) of a callback.
pub fn originate(
    cfg: &CallbacksSection,
    action_id: &str,
    p: &CallbackPayload,
    attempt: u32,
) -> Result<Originate, String> {
    let f = super::callback::call_file(cfg, action_id, p)?;
    let acct = account(action_id);
    Ok(Originate {
        action_id: format!("{acct}-{attempt}"),
        channel: f.channel,
        context: f.context,
        exten: f.extension,
        priority: f.priority,
        timeout_ms: u64::from(f.wait_time_s) * 1000,
        caller_id: Some(CallerId {
            name: f.callerid_name,
            number: f.callerid_num,
        }),
        variables: f
            .vars
            .into_iter()
            .map(|v| (v.name, v.value))
            .chain([("CT_ATTEMPT".to_string(), attempt.to_string())])
            .collect(),
        account: Some(acct),
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "callback store task failed");
            None
        }
    }
}

fn row<'a>(
    action_id: &'a str,
    p: &'a CallbackPayload,
    attempt: u32,
    status: &'a str,
    placed_as: Option<&'a str>,
    reason: Option<&'a str>,
) -> CallbackRow<'a> {
    CallbackRow {
        method: "ami",
        attempt,
        ..super::callback::row_of(action_id, p, status, placed_as, reason)
    }
}

/// Records attempt `attempt` of a callback; false when it could not.
async fn record(
    store: &Arc<Store>,
    id: &str,
    p: &CallbackPayload,
    attempt: u32,
    st: &'static str,
    placed_as: Option<String>,
    reason: Option<String>,
) -> bool {
    let (s, id2, p2) = (store.clone(), id.to_string(), p.clone());
    let done = blocking(move || {
        s.with_conn(|c| {
            callbacks::record(
                c,
                &row(
                    &id2,
                    &p2,
                    attempt,
                    st,
                    placed_as.as_deref(),
                    reason.as_deref(),
                ),
                Utc::now(),
            )
        })
    })
    .await;
    match done {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            tracing::error!(action = %id, error = %e, "cannot record a callback");
            false
        }
        None => false,
    }
}

async fn settle(
    store: &Arc<Store>,
    id: &str,
    st: &'static str,
    err: Option<String>,
    result: Option<String>,
) {
    let (s, sid) = (store.clone(), id.to_string());
    if let Some(Err(e)) =
        blocking(move || s.settle_action(&sid, st, err.as_deref(), result.as_deref())).await
    {
        tracing::error!(action = %id, error = %e, "cannot record a callback's outcome");
    }
}

async fn release(store: &Arc<Store>, id: &str, why: String, delay: Duration) {
    let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    let (s, sid) = (store.clone(), id.to_string());
    if let Some(Err(e)) = blocking(move || s.release_action(&sid, &why, next)).await {
        tracing::error!(action = %id, error = %e, "cannot reschedule a callback");
    }
}

/// Places one due callback action through AMI.
pub async fn place(
    store: &Arc<Store>,
    cfg: &Arc<CallbacksSection>,
    client: &AmiClient,
    a: &PendingAction,
) -> Settled {
    let id = a.action_id.clone();
    let p: CallbackPayload = match serde_json::from_str(&a.payload) {
        Ok(p) => p,
        Err(e) => {
            settle(
                store,
                &id,
                status::FAILED,
                Some(format!("malformed payload: {e}")),
                None,
            )
            .await;
            return Settled::Failed;
        }
    };
    let (s, p2) = (store.clone(), p.clone());
    match blocking(move || unwanted(&s, &p2)).await {
        Some(Ok(None)) => {}
        Some(Ok(Some(why))) => {
            record(store, &id, &p, 1, "skipped", None, Some(why.clone())).await;
            settle(store, &id, status::SKIPPED, Some(why), None).await;
            return Settled::Skipped;
        }
        Some(Err(e)) => {
            release(
                store,
                &id,
                format!("cannot check the episode: {e}"),
                Duration::from_secs(5),
            )
            .await;
            return Settled::Retried;
        }
        None => return Settled::NotClaimed,
    }
    let (s, p2) = (store.clone(), p);
    let Some(p) = blocking(move || super::callback::with_free_agent(&s, p2)).await else {
        return Settled::NotClaimed;
    };
    let o = match originate(cfg, &id, &p, 1) {
        Ok(o) => o,
        Err(why) => {
            record(store, &id, &p, 1, "failed", None, Some(why.clone())).await;
            settle(store, &id, status::FAILED, Some(why), None).await;
            return Settled::Failed;
        }
    };
    let (s, cid) = (store.clone(), id.clone());
    if !matches!(blocking(move || s.claim_action(&cid)).await, Some(Ok(true))) {
        return Settled::NotClaimed;
    }
    record(
        store,
        &id,
        &p,
        1,
        "placing",
        Some(o.action_id.clone()),
        None,
    )
    .await;
    match client.originate(&o).await {
        Ok(queued) => {
            let action = queued.action_id().to_string();
            tracing::info!(action = %id, ami_action = %action, channel = %o.channel, "callback originated");
            record(store, &id, &p, 1, "queued", Some(action.clone()), None).await;
            settle(store, &id, status::DONE, None, Some(action)).await;
            tokio::spawn(follow(
                store.clone(),
                cfg.clone(),
                client.clone(),
                id,
                p,
                Next::Await(queued),
                1,
            ));
            Settled::Placed
        }
        Err(e @ AmiError::InDoubt(_)) => {
            tracing::error!(action = %id, error = %e, "callback outcome unknown: in_doubt, not placed again (the CDR or an operator settles it)");
            record(
                store,
                &id,
                &p,
                1,
                "in_doubt",
                Some(o.action_id.clone()),
                Some(e.to_string()),
            )
            .await;
            settle(
                store,
                &id,
                status::IN_DOUBT,
                Some(e.to_string()),
                Some(o.action_id),
            )
            .await;
            Settled::InDoubt
        }
        Err(e) if e.nothing_queued() && (e.is_transient() || matches!(e, AmiError::Login(_))) => {
            // Nothing was sent: safe to try again (a refused login is a
            // configuration problem: slowly, and loudly).
            let login = matches!(e, AmiError::Login(_));
            let delay = Duration::from_secs(if login {
                60
            } else {
                (5u64 << a.attempts.min(6)).min(300)
            });
            if a.attempts + 1 >= 20 {
                record(store, &id, &p, 1, "failed", None, Some(e.to_string())).await;
                settle(
                    store,
                    &id,
                    status::FAILED,
                    Some(format!("gave up: {e}")),
                    None,
                )
                .await;
                return Settled::Failed;
            }
            if login {
                tracing::error!(action = %id, error = %e, "AMI login refused: check [callbacks.ami]");
            } else {
                tracing::warn!(action = %id, error = %e, retry_in_s = delay.as_secs(), "AMI unreachable; callback will be retried");
            }
            release(store, &id, e.to_string(), delay).await;
            Settled::Retried
        }
        Err(e) => {
            tracing::error!(action = %id, error = %e, "callback refused");
            record(store, &id, &p, 1, "failed", None, Some(e.to_string())).await;
            settle(store, &id, status::FAILED, Some(e.to_string()), None).await;
            Settled::Failed
        }
    }
}

/// Where a callback's follower starts: waiting for the OriginateResponse
/// of a queued attempt, or waiting to make the next attempt.
pub(crate) enum Next {
    Await(calltrail_sinks::ami::Queued),
    RetryIn(Duration),
}

/// Waits for the OriginateResponse of a queued attempt, records it, and
/// makes the next attempt after `retry_time_s` while the episode is open.
/// Each retry is claimed in `callbacks` (`placing`, committed) before its
/// Originate is written: a daemon stopped between attempts resumes them
/// ([`resume`]), one stopped while placing one never places it again.
async fn follow(
    store: Arc<Store>,
    cfg: Arc<CallbacksSection>,
    client: AmiClient,
    id: String,
    p: CallbackPayload,
    mut next: Next,
    mut attempt: u32,
) {
    loop {
        let queued = match next {
            Next::Await(q) => q,
            Next::RetryIn(delay) => {
                tokio::time::sleep(delay).await;
                match retry(&store, &cfg, &client, &id, &p, attempt + 1).await {
                    Some(q) => {
                        attempt += 1;
                        q
                    }
                    None => return,
                }
            }
        };
        let deadline = Duration::from_secs(u64::from(cfg.wait_time_s) + 30);
        let (st, reason) = match queued.outcome(deadline).await {
            Ok(o) if o.response_success => ("completed", None),
            Ok(o) => (
                "failed",
                Some(format!(
                    "attempt {attempt}: {} (reason {})",
                    o.reason_text, o.reason
                )),
            ),
            Err(e) => {
                // Queued, outcome not heard: the call happens or not; the CDR tells.
                record(
                    &store,
                    &id,
                    &p,
                    attempt,
                    "unknown",
                    Some(queued_id(&id, attempt)),
                    Some(e.to_string()),
                )
                .await;
                return;
            }
        };
        if st == "completed" || attempt > cfg.max_retries {
            let st = if st == "completed" { st } else { "expired" };
            finish(&store, &id, st, attempt, reason).await;
            tracing::info!(action = %id, attempt, status = st, "callback finished");
            return;
        }
        finish(&store, &id, "failed", attempt, reason).await;
        tracing::info!(action = %id, attempt, "callback attempt failed; retrying");
        next = Next::RetryIn(Duration::from_secs(u64::from(cfg.retry_time_s)));
    }
}

/// Attempt `attempt` of a callback, if its episode is still open: claimed
/// (`placing`), then originated. `None`: not placed (closed meanwhile,
/// refused, or the connection failed: recorded).
async fn retry(
    store: &Arc<Store>,
    cfg: &Arc<CallbacksSection>,
    client: &AmiClient,
    id: &str,
    p: &CallbackPayload,
    attempt: u32,
) -> Option<calltrail_sinks::ami::Queued> {
    let (s, p2) = (store.clone(), p.clone());
    match blocking(move || unwanted(&s, &p2)).await {
        Some(Ok(None)) => {}
        Some(Ok(Some(why))) => {
            record(store, id, p, attempt, "cancelled", None, Some(why)).await;
            return None;
        }
        _ => return None,
    }
    let o = originate(cfg, id, p, attempt).ok()?;
    // The claim, committed before the Originate is written.
    if !record(
        store,
        id,
        p,
        attempt,
        "placing",
        Some(o.action_id.clone()),
        None,
    )
    .await
    {
        return None;
    }
    match client.originate(&o).await {
        Ok(q) => {
            record(
                store,
                id,
                p,
                attempt,
                "queued",
                Some(o.action_id.clone()),
                None,
            )
            .await;
            Some(q)
        }
        Err(e) => {
            tracing::warn!(action = %id, attempt, error = %e, "callback retry not placed");
            let st = if matches!(e, AmiError::InDoubt(_)) {
                "in_doubt"
            } else {
                "failed"
            };
            record(
                store,
                id,
                p,
                attempt,
                st,
                Some(o.action_id),
                Some(e.to_string()),
            )
            .await;
            None
        }
    }
}

/// Records what came of attempt `attempt`; false when it could not.
async fn finish(
    store: &Arc<Store>,
    id: &str,
    st: &'static str,
    attempt: u32,
    reason: Option<String>,
) -> bool {
    let (s, sid) = (store.clone(), id.to_string());
    match blocking(move || {
        s.with_conn(|c| {
            callbacks::finish(c, &sid, attempt, st, None, reason.as_deref(), Utc::now())
        })
    })
    .await
    {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            tracing::error!(action = %id, error = %e, "cannot record a callback");
            false
        }
        None => false,
    }
}

/// At start: the AMI callbacks a stopped daemon left between attempts
/// (`failed` with retries left) are followed again, their next attempt
/// `retry_time_s` after the last; one left `placing` (stopped while
/// placing an attempt) is never placed again: `unknown` (its CDR tells);
/// one with no retries left is `expired`.
pub async fn resume(store: &Arc<Store>, cfg: &Arc<CallbacksSection>, client: &AmiClient) {
    let s = store.clone();
    let rows = match blocking(move || s.with_conn(callbacks::ami_between_attempts)).await {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot read the AMI callbacks between attempts");
            return;
        }
        None => return,
    };
    for r in rows {
        let attempt = r.attempt.max(1);
        if r.status == "placing" {
            let why = format!(
                "the daemon stopped while placing attempt {attempt}: not placed again (the CDR tells)"
            );
            tracing::warn!(action = %r.action_id, "{why}");
            finish(store, &r.action_id, "unknown", attempt, Some(why)).await;
            continue;
        }
        if attempt > cfg.max_retries {
            finish(store, &r.action_id, "expired", attempt, None).await;
            continue;
        }
        let p: CallbackPayload = match serde_json::from_str(&r.payload) {
            Ok(p) => p,
            Err(_) => continue,
        };
        let due = r.updated_at + chrono::Duration::seconds(i64::from(cfg.retry_time_s));
        let delay = (due - Utc::now()).to_std().unwrap_or_default();
        tracing::info!(action = %r.action_id, attempt = attempt + 1, in_s = delay.as_secs(), "resuming a callback's retries");
        tokio::spawn(follow(
            store.clone(),
            cfg.clone(),
            client.clone(),
            r.action_id,
            p,
            Next::RetryIn(delay),
            attempt,
        ));
    }
}

fn queued_id(id: &str, attempt: u32) -> String {
    format!("{}-{attempt}", account(id))
}

/// Settles `in_doubt` AMI callbacks from the CDR: a CDR row whose fields
/// hold the callback's accountcode proves the Originate was queued (the
/// call was made); the action becomes `done`. Returns how many settled.
pub fn reconcile(store: &Store) -> Result<usize, crate::store::StoreError> {
    let doubtful = store.with_conn(callbacks::in_doubt_ami)?;
    let mut n = 0;
    for action_id in doubtful {
        let acct = account(&action_id);
        if store.with_conn(|c| callbacks::cdr_mentions(c, &acct))? {
            store.settle_action(
                &action_id,
                status::DONE,
                None,
                Some(&format!("CDR accountcode {acct}")),
            )?;
            store.with_conn(|c| {
                let attempt = callbacks::latest_attempt(c, &action_id)?;
                callbacks::finish(
                    c,
                    &action_id,
                    attempt,
                    "completed",
                    None,
                    Some("settled from the CDR (accountcode)"),
                    Utc::now(),
                )
            })?;
            tracing::info!(action = %action_id, "in_doubt callback settled from the CDR");
            n += 1;
        }
    }
    Ok(n)
}

/// Marks the latest attempt of a callback a stopped daemon left `sending`
/// as `in_doubt` (its action is, too).
pub fn mark_in_doubt(store: &Store, action_id: &str) -> Result<(), crate::store::StoreError> {
    store.with_conn(|c| {
        let attempt = callbacks::latest_attempt(c, action_id)?;
        callbacks::finish(
            c,
            action_id,
            attempt,
            "in_doubt",
            None,
            Some("the daemon stopped while placing it; outcome unknown"),
            Utc::now(),
        )
    })
}
