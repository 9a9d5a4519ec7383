//! SMS actions carried out: never twice.
//!
//! A duplicate SMS pesters a customer, so an SMS is claimed (`sending`,
//! committed) before it leaves and settled after the gateway answers:
//! - accepted → `done`, with the gateway's message id and answer in
//!   `result`;
//! - refused (bad number, no funds, bad credentials) → `failed`, the reason
//!   in `last_error` (the dead letter);
//! - the gateway could not be reached, so nothing left → back to `pending`
//!   with backoff (at least a minute: SMSC.ru blocks retry storms);
//! - the request left and no clear answer came → `in_doubt`: never resent
//!   blindly; an operator decides (`calltrail actions retry|cancel`).
//!
//! At start, the rows a stopped daemon left `sending` are reconciled with
//! the gateway where it can tell by our id (the folder: the file exists;
//! SMSC.ru: its status by our message id) and marked `in_doubt` otherwise.

use crate::rules::SmsPayload;
use crate::store::actions::status;
use crate::store::{PendingAction, Store};
use calltrail_sinks::sms::{Gateway, Reconciled, Sms, SmsError};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// How one SMS action ended this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Sent,
    /// Found already sent (a file already there, the gateway knew it).
    Already,
    Failed,
    Retried,
    InDoubt,
    /// Claimed by nobody: the row was not pending any more.
    NotClaimed,
}

/// Give up on a gateway that stays unreachable after this many tries.
const MAX_TRIES: u32 = 20;

fn backoff(attempts: u32) -> Duration {
    Duration::from_secs((60u64 << attempts.min(6)).min(3600))
}

fn message(a: &PendingAction) -> Result<Sms, String> {
    let p: SmsPayload =
        serde_json::from_str(&a.payload).map_err(|e| format!("malformed payload: {e}"))?;
    Ok(Sms {
        id: a.action_id.clone(),
        to: p.to,
        text: p.text,
        sender: p.sender,
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the SMS task failed: {e}"))
}

/// Sends one due SMS action and records the outcome.
pub async fn send(store: &Arc<Store>, gateway: &Arc<Gateway>, a: &PendingAction) -> Settled {
    let id = a.action_id.clone();
    let sms = match message(a) {
        Ok(m) => m,
        Err(e) => {
            settle(store, &id, status::FAILED, Some(e), None).await;
            return Settled::Failed;
        }
    };
    let s = store.clone();
    let claim_id = id.clone();
    match blocking(move || s.claim_action(&claim_id)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Settled::NotClaimed,
        Ok(Err(e)) => {
            tracing::error!(action = %id, error = %e, "cannot claim an SMS action");
            return Settled::NotClaimed;
        }
        Err(e) => {
            tracing::error!(action = %id, error = %e, "cannot claim an SMS action");
            return Settled::NotClaimed;
        }
    }
    let gw = gateway.clone();
    let to = sms.to.clone();
    let sent = blocking(move || gw.send(&sms)).await;
    match sent {
        Ok(Ok(acc)) => {
            tracing::info!(action = %id, to = %to, via = gateway.name(), foreign_id = acc.foreign_id.as_deref().unwrap_or(""), "SMS accepted");
            let result = result_of(&acc);
            settle(store, &id, status::DONE, None, Some(result)).await;
            if acc.already {
                Settled::Already
            } else {
                Settled::Sent
            }
        }
        Ok(Err(SmsError::Unavailable { reason })) => {
            let tries = a.attempts + 1;
            if tries >= MAX_TRIES {
                tracing::error!(action = %id, error = %reason, tries, "SMS gateway unreachable; giving up");
                settle(
                    store,
                    &id,
                    status::FAILED,
                    Some(format!("gave up after {tries} tries: {reason}")),
                    None,
                )
                .await;
                return Settled::Failed;
            }
            let delay = backoff(a.attempts);
            tracing::warn!(action = %id, error = %reason, retry_in_s = delay.as_secs(), "SMS not sent; will retry");
            let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            let s = store.clone();
            let rid = id.clone();
            match blocking(move || s.release_action(&rid, &reason, next)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(action = %id, error = %e, "cannot reschedule an SMS"),
                Err(e) => tracing::error!(action = %id, error = %e, "cannot reschedule an SMS"),
            }
            Settled::Retried
        }
        Ok(Err(e @ (SmsError::Invalid { .. } | SmsError::Rejected { .. }))) => {
            tracing::error!(action = %id, to = %to, error = %e, "SMS refused");
            settle(store, &id, status::FAILED, Some(e.to_string()), None).await;
            Settled::Failed
        }
        Ok(Err(e @ SmsError::InDoubt { .. })) => {
            tracing::error!(action = %id, to = %to, error = %e, "SMS outcome unknown: in_doubt, not resent (calltrail actions retry|cancel)");
            settle(store, &id, status::IN_DOUBT, Some(e.to_string()), None).await;
            Settled::InDoubt
        }
        Err(e) => {
            // The send task itself died: whether the request left is unknown.
            settle(store, &id, status::IN_DOUBT, Some(e), None).await;
            Settled::InDoubt
        }
    }
}

/// Settles the SMS actions a stopped daemon left `sending`.
pub async fn reconcile(store: &Arc<Store>, gateway: &Arc<Gateway>, rows: Vec<PendingAction>) {
    for a in rows {
        let id = a.action_id.clone();
        let sms = match message(&a) {
            Ok(m) => m,
            Err(e) => {
                settle(store, &id, status::FAILED, Some(e), None).await;
                continue;
            }
        };
        let gw = gateway.clone();
        let answer = blocking(move || gw.reconcile(&sms)).await;
        match answer {
            Ok(Reconciled::Sent(acc)) => {
                tracing::info!(action = %id, "SMS found sent while reconciling");
                settle(store, &id, status::DONE, None, Some(result_of(&acc))).await;
            }
            Ok(Reconciled::NotSent) => {
                tracing::info!(action = %id, "SMS found not sent while reconciling; sending");
                let s = store.clone();
                let rid = id.clone();
                let _ = blocking(move || {
                    s.release_action(&rid, "not sent before a stop (reconciled)", Utc::now())
                })
                .await;
            }
            Ok(Reconciled::Unknown(why)) => {
                tracing::warn!(action = %id, reason = %why, "SMS outcome unknown after a stop: in_doubt");
                settle(
                    store,
                    &id,
                    status::IN_DOUBT,
                    Some(format!("the daemon stopped while sending; {why}")),
                    None,
                )
                .await;
            }
            Err(e) => {
                settle(store, &id, status::IN_DOUBT, Some(e), None).await;
            }
        }
    }
}

fn result_of(acc: &calltrail_sinks::sms::Accepted) -> String {
    match &acc.foreign_id {
        Some(f) => format!("id {f}: {}", acc.answer),
        None => acc.answer.clone(),
    }
}

async fn settle(
    store: &Arc<Store>,
    id: &str,
    status: &'static str,
    error: Option<String>,
    result: Option<String>,
) {
    // Claimed, so never sent twice; recorded as soon as the store takes it
    // (rather than reconciled at the next start).
    let sid = id.to_string();
    super::outcome::record(store, id, "an SMS outcome", move |s| {
        s.settle_action(&sid, status, error.as_deref(), result.as_deref())
    })
    .await;
}
