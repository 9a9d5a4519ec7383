//! An `sms` rule's decision, inside the state deriver's transaction: to
//! whom (the caller's E.164 number, a mobile unless the rule says
//! otherwise), under which id, and whether the rule's per-number limits
//! leave room for one more (`once_per_number`, `per_number_per_day`).
//!
//! The limits live in the action ids, so they hold across restarts,
//! replays and re-imports without a counter to keep in step:
//! - `once_per_number`: `rule:<name>:sms:<number>`: one id per number, ever;
//! - `per_number_per_day`: `rule:<name>:sms:<number>:<day>:<event id>`,
//!   the day of the event in the rule's zone; the messages of a day are the
//!   ids with that prefix (skipped and cancelled ones do not count).

use super::config::RuleConfig;
use crate::store::{NewAction, StoreError};
use calltrail_parsers::LineKind;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use duckdb::{params, Connection};

/// Whom and under which id an `sms` rule writes for one event.
#[derive(Debug, PartialEq, Eq)]
pub struct SmsDecision {
    pub action_id: String,
    /// Why it is not sent (recorded as `skipped`), if it is not.
    pub skipped: Option<String>,
}

/// Decides the id and the limits of `rule`'s SMS to `number` for the
/// event `event_id` at `at`. `pending` are the actions decided earlier in
/// the same step (not in the table yet).
#[allow(clippy::too_many_arguments)]
pub fn decide(
    conn: &Connection,
    rule: &RuleConfig,
    mobile_only_default: bool,
    number: &str,
    event_id: &str,
    at: DateTime<Utc>,
    tz: Tz,
    pending: &[NewAction],
) -> Result<SmsDecision, StoreError> {
    let name = &rule.name;
    let day = at.with_timezone(&tz).format("%Y-%m-%d");
    let (action_id, day_prefix) = if rule.once_per_number {
        (format!("rule:{name}:sms:{number}"), None)
    } else if rule.per_number_per_day.is_some() {
        let prefix = format!("rule:{name}:sms:{number}:{day}:");
        (format!("{prefix}{event_id}"), Some(prefix))
    } else {
        (format!("rule:{name}:{event_id}"), None)
    };
    let skip = |why: String| SmsDecision {
        action_id: action_id.clone(),
        skipped: Some(why),
    };
    if !super::callback::dialable(number) || !number.starts_with('+') {
        return Ok(skip(format!(
            "{number:?} is not an international number (+ and digits)"
        )));
    }
    if rule.mobile_only.unwrap_or(mobile_only_default) {
        let kind = LineKind::of(number);
        if !matches!(kind, LineKind::Mobile | LineKind::FixedLineOrMobile) {
            return Ok(skip(format!(
                "{number} is a {} number, not a mobile (mobile_only)",
                kind.name()
            )));
        }
    }
    if let (Some(limit), Some(prefix)) = (rule.per_number_per_day, day_prefix) {
        let stored: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM actions
                 WHERE starts_with(action_id, ?1) AND action_id <> ?2
                   AND status NOT IN ('skipped', 'cancelled')",
            )
            .and_then(|mut q| q.query_row(params![prefix, action_id], |r| r.get(0)))
            .map_err(|source| StoreError::Db {
                what: "counting a number's SMS of the day",
                source,
            })?;
        let in_step = pending
            .iter()
            .filter(|a| {
                a.action_id.starts_with(&prefix) && a.action_id != action_id && a.skipped.is_none()
            })
            .count() as i64;
        if stored + in_step >= i64::from(limit) {
            return Ok(skip(format!(
                "{} SMS from this rule to {number} on {day} already (per_number_per_day = {limit})",
                stored + in_step
            )));
        }
    }
    Ok(SmsDecision {
        action_id,
        skipped: None,
    })
}
