//! The action worker: runs the outbox rows that rules created (emails;
//! webhooks, POSTed at least once with an `Idempotency-Key`; callbacks;
//! SMS, never twice: [`sms`]).
//!
//! An action is marked done only after it was carried out. Outbox email is
//! exactly-once (the file name is the action id; an existing file means it
//! was already written). SMTP is at-least-once: a crash between the server's
//! acceptance and the `done` mark re-sends that one message on restart, with
//! the same Message-ID so mail clients can fold it. Transient failures
//! (4xx, connection errors) are retried with backoff; permanent ones (5xx,
//! bad addresses) are marked failed with the reason.

use crate::publish::Mode;
use crate::rules::callback::Placed;
use crate::rules::{EmailPayload, WebhookPayload, CALLBACK, DIGEST, EMAIL, SMS, WEBHOOK};
use crate::store::{PendingAction, Store};
use calltrail_sinks::{EmailMessage, Mailer};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

pub mod cli;
pub mod digest;
mod outcome;
mod pace;
pub mod sms;

const MAX_ATTEMPTS: u32 = 20;

/// What the worker sends with.
pub struct Senders {
    pub mailer: Mailer,
    pub callbacks: crate::config::CallbacksSection,
    /// `[callbacks] method = "ami"`.
    pub ami: Option<calltrail_sinks::ami::AmiClient>,
    pub sms: calltrail_sinks::sms::Gateway,
}

/// Counts of what the worker did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ActionStats {
    pub sent: u64,
    pub already_done: u64,
    pub failed: u64,
    pub retried: u64,
    /// Sends whose outcome is unknown (left for an operator).
    pub in_doubt: u64,
}

/// Runs until `mode` is `Drain` and nothing is due.
pub async fn run(
    store: Store,
    senders: Senders,
    wake: Arc<Notify>,
    mut mode: watch::Receiver<Mode>,
) -> ActionStats {
    let Senders {
        mailer,
        callbacks,
        ami,
        sms: gateway,
    } = senders;
    let callbacks = Arc::new(callbacks);
    let gateway = Arc::new(gateway);
    let store = Arc::new(store);
    let mut stats = ActionStats::default();
    let mut pace = pace::Pace::new(callbacks.per_minute);
    let mut pause = outcome::Pause::default();
    reconcile(&store, &gateway).await;
    if let Some(client) = &ami {
        crate::rules::callback_ami::resume(&store, &callbacks, client).await;
    }
    loop {
        // While the store cannot be written, no send starts (its outcome
        // could not be recorded); a pass now and then, with backoff, finds
        // out when it can.
        if let Some(wait) = pause.wait(store.health().not_writable().is_none()) {
            if *mode.borrow() == Mode::Drain {
                tracing::warn!(
                    "the store cannot be written; the actions due run on the next start"
                );
                return stats;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = mode.changed() => {}
            }
            continue;
        }
        let s = store.clone();
        // Callbacks held back by pacing stay pending; the rest still runs.
        let except = (!pace.ready(std::time::Instant::now())).then_some(CALLBACK);
        let due = match tokio::task::spawn_blocking(move || s.due_actions(Utc::now(), 100, except))
            .await
        {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                if crate::store::health::Failure::of(&e).is_some() {
                    // The store's health logged it (once, then every minute).
                    tracing::debug!(error = %e, "cannot read due actions");
                } else {
                    tracing::error!(error = %e, "cannot read due actions");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "action store task failed");
                return stats;
            }
        };
        if due.is_empty() {
            if *mode.borrow() == Mode::Drain {
                return stats;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = mode.changed() => {}
            }
            continue;
        }
        for a in due {
            let paced = a.kind == CALLBACK && a.priority < crate::store::URGENT;
            if paced && !pace.ready(std::time::Instant::now()) {
                continue;
            }
            if a.kind == SMS {
                match sms::send(&store, &gateway, &a).await {
                    sms::Settled::Sent => stats.sent += 1,
                    sms::Settled::Already => stats.already_done += 1,
                    sms::Settled::Failed => stats.failed += 1,
                    sms::Settled::Retried => stats.retried += 1,
                    sms::Settled::InDoubt => stats.in_doubt += 1,
                    sms::Settled::NotClaimed => {}
                }
                continue;
            }
            if let (true, Some(client)) = (a.kind == CALLBACK, &ami) {
                use crate::rules::callback_ami::{place, Settled};
                match place(&store, &callbacks, client, &a).await {
                    Settled::Placed => {
                        stats.sent += 1;
                        if paced {
                            pace.placed(std::time::Instant::now());
                        }
                    }
                    Settled::Failed => stats.failed += 1,
                    Settled::Retried => stats.retried += 1,
                    Settled::InDoubt => stats.in_doubt += 1,
                    Settled::Skipped | Settled::NotClaimed => {}
                }
                continue;
            }
            if a.kind == DIGEST {
                match digest::send(&store, &mailer, &a).await {
                    digest::Settled::Sent => stats.sent += 1,
                    digest::Settled::Already => stats.already_done += 1,
                    digest::Settled::Failed => stats.failed += 1,
                    digest::Settled::Retried => stats.retried += 1,
                    digest::Settled::NotClaimed => {}
                }
                continue;
            }
            let outcome = if a.kind == CALLBACK {
                let (s, cfg, act) = (store.clone(), callbacks.clone(), a.clone());
                match tokio::task::spawn_blocking(move || {
                    crate::rules::callback::place(&s, &cfg, &act.action_id, &act.payload)
                })
                .await
                {
                    Ok(Placed::Done(already)) => Outcome::Done(already),
                    Ok(Placed::Skipped(why)) => Outcome::Skipped(why),
                    Ok(Placed::Failed(why)) => Outcome::Failed(why),
                    Ok(Placed::Retry(why)) => Outcome::Retry(why),
                    Err(e) => Outcome::Retry(format!("the callback task failed: {e}")),
                }
            } else {
                execute(&mailer, &a).await
            };
            // Recorded however long the store takes to take it: an outcome
            // lost would run the action again.
            let id = a.action_id.clone();
            const WHAT: &str = "an action's outcome";
            match outcome {
                Outcome::Done(already) => {
                    if already {
                        stats.already_done += 1;
                    } else {
                        stats.sent += 1;
                        if paced {
                            pace.placed(std::time::Instant::now());
                        }
                    }
                    tracing::debug!(action = %id, via = %mailer.describe(), "action done");
                    let i = id.clone();
                    outcome::record(&store, &id, WHAT, move |s| s.finish_action(&i, true, None))
                        .await;
                }
                Outcome::Skipped(why) => {
                    tracing::info!(action = %id, reason = %why, "action skipped");
                    let i = id.clone();
                    outcome::record(&store, &id, WHAT, move |s| s.skip_action(&i, &why)).await;
                }
                Outcome::Failed(err) => {
                    stats.failed += 1;
                    tracing::error!(action = %id, error = %err, "action failed permanently");
                    let i = id.clone();
                    outcome::record(&store, &id, WHAT, move |s| {
                        s.finish_action(&i, false, Some(&err))
                    })
                    .await;
                }
                Outcome::Retry(err) if a.attempts + 1 >= MAX_ATTEMPTS => {
                    stats.failed += 1;
                    tracing::error!(action = %id, error = %err, attempts = a.attempts + 1, "action gave up");
                    let i = id.clone();
                    outcome::record(&store, &id, WHAT, move |s| {
                        s.finish_action(&i, false, Some(&err))
                    })
                    .await;
                }
                Outcome::Retry(err) => {
                    stats.retried += 1;
                    let delay = backoff(a.attempts);
                    tracing::warn!(action = %id, error = %err, retry_in_s = delay.as_secs(), "action will be retried");
                    let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    let i = id.clone();
                    outcome::record(&store, &id, WHAT, move |s| s.retry_action(&i, &err, next))
                        .await;
                }
            }
        }
        if *mode.borrow() == Mode::Drain {
            // Only what is due now is run while draining; later retries wait for the next start.
            let s = store.clone();
            if let Ok(Ok(d)) =
                tokio::task::spawn_blocking(move || s.due_actions(Utc::now(), 1, None)).await
            {
                if d.is_empty() {
                    return stats;
                }
            }
        }
    }
}

/// Settles what a stopped daemon left `sending`: SMS by asking the
/// gateway where it can tell, anything else `in_doubt`.
async fn reconcile(store: &Arc<Store>, gateway: &Arc<calltrail_sinks::sms::Gateway>) {
    let s = store.clone();
    let rows = match tokio::task::spawn_blocking(move || s.unsettled_actions()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read the actions left sending");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "action store task failed");
            return;
        }
    };
    if rows.is_empty() {
        return;
    }
    tracing::warn!(
        count = rows.len(),
        "actions were being sent when the daemon stopped; reconciling"
    );
    let (texts, others): (Vec<_>, Vec<_>) = rows.into_iter().partition(|a| a.kind == SMS);
    sms::reconcile(store, gateway, texts).await;
    for a in others {
        let s = store.clone();
        let id = a.action_id.clone();
        let digest = a.kind == DIGEST;
        let callback = a.kind == CALLBACK;
        let _ = tokio::task::spawn_blocking(move || {
            if digest {
                // Email is at least once: send it (again) with its Message-ID.
                s.release_action(&id, "the daemon stopped while sending", Utc::now())
            } else {
                if callback {
                    let _ = crate::rules::callback_ami::mark_in_doubt(&s, &id);
                }
                s.settle_action(
                    &id,
                    crate::store::actions::status::IN_DOUBT,
                    Some("the daemon stopped while sending; outcome unknown"),
                    None,
                )
            }
        })
        .await;
    }
}

enum Outcome {
    Done(bool),
    /// Not to be done any more (a callback whose episode closed).
    Skipped(String),
    Retry(String),
    Failed(String),
}

fn backoff(attempts: u32) -> Duration {
    Duration::from_secs((5u64 << attempts.min(10)).min(3600))
}

async fn execute(mailer: &Mailer, a: &PendingAction) -> Outcome {
    if a.kind == WEBHOOK {
        return webhook(a).await;
    }
    if a.kind != EMAIL {
        return Outcome::Failed(format!("unknown action kind {:?}", a.kind));
    }
    let p: EmailPayload = match serde_json::from_str(&a.payload) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("malformed payload: {e}")),
    };
    let msg = EmailMessage {
        id: a.action_id.clone(),
        from: p.from,
        to: p.to,
        subject: p.subject,
        text_body: p.body,
    };
    match mailer.send(&msg).await {
        Ok(calltrail_sinks::SendOutcome::Sent) => Outcome::Done(false),
        Ok(calltrail_sinks::SendOutcome::AlreadyInOutbox) => Outcome::Done(true),
        Err(e) if e.is_transient() => Outcome::Retry(e.to_string()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// POSTs a webhook's JSON with the action id as `Idempotency-Key` (sent at
/// least once: a crash between the answer and the `done` mark sends it
/// again, with the same key). 2xx is done; 408, 429, 5xx and no answer are
/// retried; any other status fails.
async fn webhook(a: &PendingAction) -> Outcome {
    let p: WebhookPayload = match serde_json::from_str(&a.payload) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("malformed payload: {e}")),
    };
    let id = a.action_id.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        agent
            .post(&p.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &id)
            .header(
                "user-agent",
                concat!("calltrail/", env!("CARGO_PKG_VERSION")),
            )
            .send(p.body.to_string().as_bytes())
            .map(|r| r.status().as_u16())
    })
    .await;
    match sent {
        Ok(Ok(s)) if (200..300).contains(&s) => Outcome::Done(false),
        Ok(Ok(s)) if s == 408 || s == 429 || s >= 500 => {
            Outcome::Retry(format!("the webhook answered {s}"))
        }
        Ok(Ok(s)) => Outcome::Failed(format!("the webhook answered {s}")),
        Ok(Err(e)) => Outcome::Retry(format!("no answer from the webhook: {e}")),
        Err(e) => Outcome::Retry(format!("the webhook task failed: {e}")),
    }
}
