//! Email digests carried out (`digest_minutes`): the window's action is
//! claimed first (later matches then go to the next window), its items read
//! and mailed as one message. Like every email, at least once: SMTP gets the
//! same Message-ID again if a crash comes between its answer and the
//! `done` mark; the outbox directory is exactly-once by file name.

use crate::rules::DigestPayload;
use crate::store::actions::status;
use crate::store::{PendingAction, Store};
use calltrail_sinks::{EmailMessage, Mailer};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// How one digest ended this time.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    Sent,
    Already,
    Failed,
    Retried,
    NotClaimed,
}

/// The digest's text: a header line with the count and the window, then
/// one line per match.
pub fn body(p: &DigestPayload, lines: &[String]) -> String {
    let end = p.window_start + chrono::Duration::minutes(i64::from(p.minutes));
    let mut out = format!(
        "{} in queue {} between {} and {} (UTC):\n\n",
        lines.len(),
        p.queue,
        p.window_start.format("%Y-%m-%d %H:%M"),
        end.format("%H:%M"),
    );
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "digest store task failed");
            None
        }
    }
}

/// Sends one due digest.
pub async fn send(store: &Arc<Store>, mailer: &Mailer, a: &PendingAction) -> Settled {
    let id = a.action_id.clone();
    let p: DigestPayload = match serde_json::from_str(&a.payload) {
        Ok(p) => p,
        Err(e) => {
            let s = store.clone();
            let sid = id.clone();
            let why = format!("malformed payload: {e}");
            blocking(move || s.settle_action(&sid, status::FAILED, Some(&why), None)).await;
            return Settled::Failed;
        }
    };
    let (s, cid) = (store.clone(), id.clone());
    match blocking(move || s.claim_action(&cid)).await {
        Some(Ok(true)) => {}
        Some(Ok(false)) => return Settled::NotClaimed,
        Some(Err(e)) => {
            tracing::error!(action = %id, error = %e, "cannot claim a digest");
            return Settled::NotClaimed;
        }
        None => return Settled::NotClaimed,
    }
    let (s, rid) = (store.clone(), id.clone());
    let lines = match blocking(move || s.digest_items(&rid)).await {
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            tracing::error!(action = %id, error = %e, "cannot read a digest's items");
            release(store, &id, &e.to_string(), Duration::from_secs(5)).await;
            return Settled::Retried;
        }
        None => return Settled::NotClaimed,
    };
    let msg = EmailMessage {
        id: id.clone(),
        from: p.from.clone(),
        to: p.to.clone(),
        subject: format!("{} ({} in {} min)", p.subject, lines.len(), p.minutes),
        text_body: body(&p, &lines),
    };
    let settled = match mailer.send(&msg).await {
        Ok(calltrail_sinks::SendOutcome::Sent) => Ok(Settled::Sent),
        Ok(calltrail_sinks::SendOutcome::AlreadyInOutbox) => Ok(Settled::Already),
        Err(e) if e.is_transient() && a.attempts + 1 < 20 => {
            let delay = Duration::from_secs((5u64 << a.attempts.min(10)).min(3600));
            tracing::warn!(action = %id, error = %e, retry_in_s = delay.as_secs(), "digest will be retried");
            release(store, &id, &e.to_string(), delay).await;
            return Settled::Retried;
        }
        Err(e) => Err(e.to_string()),
    };
    let (s, sid) = (store.clone(), id.clone());
    match settled {
        Ok(how) => {
            let result = format!("{} items", lines.len());
            blocking(move || s.settle_action(&sid, status::DONE, None, Some(&result))).await;
            how
        }
        Err(why) => {
            tracing::error!(action = %id, error = %why, "digest failed");
            blocking(move || s.settle_action(&sid, status::FAILED, Some(&why), None)).await;
            Settled::Failed
        }
    }
}

async fn release(store: &Arc<Store>, id: &str, why: &str, delay: Duration) {
    let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    let (s, sid, w) = (store.clone(), id.to_string(), why.to_string());
    blocking(move || s.release_action(&sid, &w, next)).await;
}
