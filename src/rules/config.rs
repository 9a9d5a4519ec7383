//! `[[rules]]` as written in the config, and its checks (docs/rules.md).

use crate::config::Problem;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The triggers a rule can have (`when`).
pub const TRIGGERS: [&str; 8] = [
    "first_call",
    "missed_opened",
    "missed_closed",
    "call_answered",
    "call_ended",
    "sla_breach_started",
    "sla_breach_ended",
    "employee_lookup",
];

/// The actions a rule can take (`action`).
pub const ACTIONS: [&str; 4] = ["email", "webhook", "callback", "sms"];

/// One `[[rules]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique; part of every action id the rule makes.
    pub name: String,
    /// The trigger ([`TRIGGERS`]).
    pub when: String,
    /// `[calendars.NAME]` the rule acts in; none: any time.
    pub calendar: Option<String>,
    /// Outside the calendar's hours: `wait` for the next opening
    /// (default) or `drop` (recorded as skipped).
    #[serde(default = "wait")]
    pub outside_hours: String,
    /// Only these queues (empty: any).
    #[serde(default)]
    pub queues: Vec<String>,
    /// Only these PBXes (empty: any).
    #[serde(default)]
    pub pbx: Vec<String>,
    /// Only callers of these directory classes (`vip`, `employee`, `none` for
    /// numbers without a class or not in the directory; empty: any).
    #[serde(default)]
    pub classes: Vec<String>,
    /// Never act for a blacklisted caller (default true).
    #[serde(default = "yes")]
    pub skip_blacklisted: bool,
    /// Only calls that waited at least this long (seconds).
    pub min_wait_s: Option<u32>,
    /// Events older than this when derived (an import of last month, a
    /// catch-up after an outage) cause nothing; 0 = no limit.
    #[serde(default = "default_max_age")]
    pub max_age_minutes: u64,
    /// What to do ([`ACTIONS`]).
    pub action: String,
    /// email: recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// email: subject template.
    pub subject: Option<String>,
    /// email: body template.
    pub body: Option<String>,
    /// webhook: where to POST the JSON (a fixed URL, never a template).
    pub url: Option<String>,
    /// sms: the text template.
    pub text: Option<String>,
    /// sms: at most one message from this rule to a number, ever (the
    /// first-call SMS with the company's contacts).
    #[serde(default)]
    pub once_per_number: bool,
    /// sms: at most this many messages from this rule to a number per day
    /// (the day of the rule's calendar zone, else the sources' zone).
    pub per_number_per_day: Option<u32>,
    /// sms: only numbers libphonenumber classes as mobile (default: `[sms]
    /// mobile_only`, itself true by default).
    pub mobile_only: Option<bool>,
    /// email: gather the matches of this many minutes per queue into one
    /// digest (a storm of misses is one message); none: one per match.
    pub digest_minutes: Option<u32>,
    /// callback of `employee_lookup`: the context the employee's answered
    /// leg enters (extension `s`), e.g. a DISA.
    pub context: Option<String>,
}

fn wait() -> String {
    "wait".into()
}
fn yes() -> bool {
    true
}
fn default_max_age() -> u64 {
    24 * 60
}

/// Every problem of the rules, with their locations (`rules[2].when`).
pub fn problems(
    rules: &[RuleConfig],
    calendars: &BTreeMap<String, crate::calendar::CalendarConfig>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in rules.iter().enumerate() {
        let mut bad = |key: &str, expected: String, found: String| {
            out.push(Problem {
                location: format!("rules[{i}].{key}"),
                expected,
                found,
            })
        };
        let name_ok = !r.name.is_empty()
            && r.name.len() <= 64
            && r.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            bad(
                "name",
                "a name of letters, digits, - and _ (at most 64), unique".into(),
                format!("{:?}", r.name),
            );
        } else if !names.insert(r.name.clone()) {
            bad(
                "name",
                "a name no other rule has".into(),
                format!("{:?} again", r.name),
            );
        }
        if !TRIGGERS.contains(&r.when.as_str()) {
            bad(
                "when",
                format!("one of {}", TRIGGERS.join(", ")),
                format!("{:?}", r.when),
            );
        }
        if let Some(c) = &r.calendar {
            if !calendars.contains_key(c) {
                let known: Vec<&str> = calendars.keys().map(String::as_str).collect();
                bad(
                    "calendar",
                    format!(
                        "the name of a [calendars.NAME] section ({})",
                        if known.is_empty() {
                            "none configured".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                    format!("{c:?}"),
                );
            }
        }
        if !["wait", "drop"].contains(&r.outside_hours.as_str()) {
            bad(
                "outside_hours",
                "\"wait\" or \"drop\"".into(),
                format!("{:?}", r.outside_hours),
            );
        }
        for (j, c) in r.classes.iter().enumerate() {
            if !["vip", "employee", "none"].contains(&c.as_str()) {
                bad(
                    &format!("classes[{j}]"),
                    "vip, employee or none (blacklisted callers: skip_blacklisted)".into(),
                    format!("{c:?}"),
                );
            }
        }
        if r.action != "sms" {
            for (key, set) in [
                ("once_per_number", r.once_per_number),
                ("per_number_per_day", r.per_number_per_day.is_some()),
                ("mobile_only", r.mobile_only.is_some()),
                ("text", r.text.is_some()),
            ] {
                if set {
                    bad(
                        key,
                        "only on sms rules".into(),
                        format!("set on an {} rule", r.action),
                    );
                }
            }
        }
        if r.when == "employee_lookup" && r.action != "callback" {
            bad(
                "action",
                "callback: an employee_lookup rule calls the employee back into its context".into(),
                format!("{:?}", r.action),
            );
        }
        if let Some(m) = r.digest_minutes {
            if r.action != "email" {
                bad(
                    "digest_minutes",
                    "only on email rules".into(),
                    format!("set on an {} rule", r.action),
                );
            } else if !(1..=1440).contains(&m) {
                bad(
                    "digest_minutes",
                    "1 to 1440 minutes (one digest per queue per that many minutes)".into(),
                    m.to_string(),
                );
            }
        }
        match r.action.as_str() {
            "email" => {
                if r.to.is_empty() {
                    bad("to", "at least one recipient address".into(), "none".into());
                }
                for (j, a) in r.to.iter().enumerate() {
                    if !crate::config::plausible_address(a) {
                        bad(
                            &format!("to[{j}]"),
                            "an email address".into(),
                            format!("{a:?}"),
                        );
                    }
                }
                for (key, t) in [("subject", &r.subject), ("body", &r.body)] {
                    if let Some(t) = t {
                        if let Err(e) = super::template::check(t) {
                            bad(
                                key,
                                "a template such as \"Missed call from {{ caller }}\"".into(),
                                e,
                            );
                        }
                    }
                }
            }
            "callback" => {
                if r.when != "missed_opened" && r.when != "employee_lookup" {
                    bad(
                        "when",
                        "missed_opened (a callback calls back a missed-call episode) or employee_lookup ([callbacks] says how)".into(),
                        format!("{:?}", r.when),
                    );
                }
                let token = |c: &str| {
                    !c.is_empty()
                        && c.len() <= 79
                        && c.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                };
                match (r.when.as_str(), &r.context) {
                    ("employee_lookup", None) => bad(
                        "context",
                        "the context the employee's answered call enters, e.g. \"disa-employees\"".into(),
                        "none".into(),
                    ),
                    ("employee_lookup", Some(c)) if !token(c) => bad(
                        "context",
                        "a dialplan context name (letters, digits, _ - .)".into(),
                        format!("{c:?}"),
                    ),
                    ("employee_lookup", _) => {}
                    (_, Some(_)) => bad(
                        "context",
                        "only with when = \"employee_lookup\" ([callbacks] context is the missed-call callback's)".into(),
                        "set".into(),
                    ),
                    _ => {}
                }
            }
            "sms" => {
                match r.text.as_deref() {
                    None => bad(
                        "text",
                        "the message's text template, e.g. \"Thank you for calling {{ company }}\""
                            .into(),
                        "none".into(),
                    ),
                    Some(t) => {
                        if let Err(e) = super::template::check(t) {
                            bad(
                                "text",
                                "a template such as \"We missed your call\"".into(),
                                e,
                            );
                        }
                    }
                }
                if r.per_number_per_day == Some(0) {
                    bad(
                        "per_number_per_day",
                        "at least 1 (or no limit: leave it out)".into(),
                        "0".into(),
                    );
                }
            }
            "webhook" => match r.url.as_deref() {
                Some(u)
                    if (u.starts_with("http://") || u.starts_with("https://"))
                        && !u.contains(char::is_whitespace)
                        && u.parse::<axum::http::Uri>().is_ok() => {}
                other => bad(
                    "url",
                    "an http:// or https:// URL (fixed: caller data goes in the JSON body)".into(),
                    format!("{other:?}"),
                ),
            },
            a => {
                bad(
                    "action",
                    format!("one of {}", ACTIONS.join(", ")),
                    format!("{a:?}"),
                );
            }
        }
    }
    out
}
