//! `[[rules]]` at work (docs/rules.md): inside each state derivation's
//! transaction ([`StateActions`]), every input event and derived state
//! change of the step is matched against the rules' triggers and
//! conditions; each match becomes one outbox action under the id
//! `rule:<name>:<event id>` (state changes have deterministic ids, so a
//! replay, a re-import or a rederive finds the action already there), due
//! now, at the calendar's next opening, or recorded as skipped.

use super::config::RuleConfig;
use super::template;
use super::{inline, EmailPayload, WebhookPayload, EMAIL, WEBHOOK};
use crate::calendar::Calendar;
use crate::config::Config;
use crate::store::actions::StateActions;
use crate::store::{digests, directory, NewAction, StoreError};
use calltrail_parsers::{Event, EventKind};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use duckdb::{params, Connection};
use std::collections::BTreeMap;

/// One rule, built.
#[derive(Debug)]
struct Rule {
    cfg: RuleConfig,
    calendar: Option<Calendar>,
}

/// Every `[[rules]]` rule, ready to match.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    from: String,
    zone: Tz,
    sms_mobile_only: bool,
    sms_sender: Option<String>,
}

/// The trigger an event is, if any.
pub fn trigger_of(ev: &Event) -> Option<&'static str> {
    Some(match ev.kind {
        EventKind::MissedOpened => "missed_opened",
        EventKind::MissedClosed => "missed_closed",
        EventKind::SlaBreachStarted => "sla_breach_started",
        EventKind::SlaBreachEnded => "sla_breach_ended",
        EventKind::Answered => "call_answered",
        EventKind::CompletedByCaller
        | EventKind::CompletedByAgent
        | EventKind::Abandoned
        | EventKind::Timeout
        | EventKind::ExitEmpty
        | EventKind::ExitWithKey
        | EventKind::CallRecord => "call_ended",
        _ => return None,
    })
}

/// Who an event is about, from the event or its call's other lines.
struct Party {
    /// The call's PBX (state changes name none: `*`).
    pbx: String,
    caller: Option<String>,
    caller_raw: Option<String>,
    name: Option<String>,
    class: Option<String>,
    wait_s: Option<u32>,
    /// The caller's agent of their latest answered conversation.
    agent: Option<String>,
    /// Variables of the event's kind (an SLA breach's figures).
    extra: Vec<(&'static str, String)>,
    /// The call ended with the caller asking to be called back
    /// (`EXITWITHKEY`).
    asked: bool,
}

fn db(what: &'static str) -> impl Fn(duckdb::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

fn party_of(conn: &Connection, ev: &Event, now: DateTime<Utc>) -> Result<Party, StoreError> {
    let mut p = Party {
        pbx: ev.pbx.to_string(),
        caller: ev.caller.clone(),
        caller_raw: ev.caller_raw.clone(),
        name: ev.caller_name.clone(),
        class: None,
        wait_s: ev.wait_s,
        agent: None,
        extra: Vec::new(),
        asked: false,
    };
    if matches!(
        ev.kind,
        EventKind::SlaBreachStarted | EventKind::SlaBreachEnded
    ) {
        p.extra = breach_vars(conn, ev)?;
    }
    if let Some(call) = &ev.call_id {
        // A state change names its call but no PBX (`*`).
        let pbx = ev.pbx.as_ref();
        let any_pbx = pbx == "*";
        let sql = if any_pbx {
            "SELECT pbx, any_value(caller), any_value(caller_raw), max(wait_s),
                    bool_or(outcome = 'exit_key') FROM calls
             WHERE call_id = ?1 GROUP BY pbx ORDER BY pbx LIMIT 1"
        } else {
            "SELECT pbx, any_value(caller), any_value(caller_raw), max(wait_s),
                    bool_or(outcome = 'exit_key') FROM calls
             WHERE call_id = ?1 AND pbx = ?2 GROUP BY pbx LIMIT 1"
        };
        let mut q = conn
            .prepare_cached(sql)
            .map_err(db("preparing the call lookup of a rule"))?;
        let mut rows = if any_pbx {
            q.query(params![call])
        } else {
            q.query(params![call, pbx])
        }
        .map_err(db("reading the call of a rule's event"))?;
        if let Some(r) = rows
            .next()
            .map_err(db("reading the call of a rule's event"))?
        {
            p.pbx = r.get(0).map_err(db("a call's pbx"))?;
            p.caller = p.caller.or(r.get(1).map_err(db("a call's caller"))?);
            p.caller_raw = p.caller_raw.or(r.get(2).map_err(db("a call's caller"))?);
            let w: Option<i64> = r.get(3).map_err(db("a call's wait"))?;
            p.wait_s = p.wait_s.or(w.map(|w| w.max(0) as u32));
            p.asked = r
                .get::<_, Option<bool>>(4)
                .map_err(db("a call's outcome"))?
                .unwrap_or(false);
        }
    }
    if let Some(c) = &p.caller {
        if let Some(e) = directory::lookup(conn, c, now)? {
            p.class = e.fields.class.clone();
            p.name = e.fields.name.clone().or(p.name);
        }
        let mut q = conn
            // By `party_key` first: a number's equality DuckDB checks
            // without reading the callers' names.
            .prepare_cached("SELECT agent FROM last_agent WHERE party_key = ? AND caller = ?")
            .map_err(db("preparing the last-agent lookup of a rule"))?;
        let mut rows = q
            .query(params![crate::state::party_key::party_key(c), c])
            .map_err(db("reading the last agent of a caller"))?;
        if let Some(r) = rows
            .next()
            .map_err(db("reading the last agent of a caller"))?
        {
            p.agent = r.get(0).map_err(db("a caller's last agent"))?;
        }
    }
    Ok(p)
}

/// An SLA breach's figures: `breach_kind` (service_level, max_wait,
/// waiting_calls), `value` and `threshold` (raw and as text: a percentage,
/// seconds, callers), `started_utc`, `ended_utc`, `duration_min`.
fn breach_vars(conn: &Connection, ev: &Event) -> Result<Vec<(&'static str, String)>, StoreError> {
    let (Some(queue), Some(info)) = (ev.queue.as_deref(), ev.info.as_deref()) else {
        return Ok(Vec::new());
    };
    let kind = info.split(' ').next().unwrap_or("");
    let Some(started) = ev
        .event_id
        .rsplit(':')
        .next()
        .and_then(|s| s.parse::<i64>().ok())
    else {
        return Ok(Vec::new());
    };
    let row: Option<(f64, f64, Option<i64>)> = {
        let mut q = conn
            .prepare_cached(
                "SELECT value, threshold, epoch_us(ended_at) FROM sla_breaches
                 WHERE queue = ? AND kind = ? AND epoch_us(started_at) = ?",
            )
            .map_err(db("preparing the breach lookup of a rule"))?;
        let mut rows = q
            .query(params![queue, kind, started])
            .map_err(db("reading a breach"))?;
        match rows.next().map_err(db("reading a breach"))? {
            Some(r) => Some((
                r.get(0).map_err(db("a breach's value"))?,
                r.get(1).map_err(db("a breach's threshold"))?,
                r.get(2).map_err(db("a breach's end"))?,
            )),
            None => None,
        }
    };
    let Some((value, threshold, ended)) = row else {
        return Ok(Vec::new());
    };
    // A start is mailed as a start, even when the breach is over by now.
    let ended = ended.filter(|_| ev.kind == EventKind::SlaBreachEnded);
    let text = |v: f64| match kind {
        "service_level" => format!("{:.1} %", v * 100.0),
        "max_wait" => format!("{v:.0} s"),
        _ => format!("{v:.0}"),
    };
    let at = |us: i64| {
        DateTime::from_timestamp_micros(us)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    Ok(vec![
        ("breach_kind", kind.to_string()),
        ("value", value.to_string()),
        ("value_text", text(value)),
        ("threshold", threshold.to_string()),
        ("threshold_text", text(threshold)),
        ("started_utc", at(started)),
        ("ended_utc", ended.map(at).unwrap_or_default()),
        (
            "duration_min",
            ended
                .map(|e| ((e - started) / 60_000_000).to_string())
                .unwrap_or_default(),
        ),
    ])
}

/// The caller whose first inbound call ever `ev` ends, when that call was
/// answered (calls the PBX answered itself and member legs do not count).
fn first_answered_call(conn: &Connection, ev: &Event) -> Result<Option<String>, StoreError> {
    let Some(call) = &ev.call_id else {
        return Ok(None);
    };
    let mut q = conn
        .prepare_cached(
            "WITH c AS (
                SELECT party, min(entered_at) AS entered,
                       bool_or(answered_at IS NOT NULL) AS answered,
                       bool_and(ended_at IS NOT NULL) AS ended
                FROM calls
                WHERE pbx = ?1 AND call_id = ?2 AND direction = 'inbound'
                  AND outcome NOT IN ('ivr', 'leg') AND party IS NOT NULL
                GROUP BY party)
             SELECT c.party FROM c
             WHERE c.answered AND c.ended AND NOT EXISTS (
                SELECT 1 FROM calls o
                WHERE o.party = c.party AND o.direction = 'inbound'
                  AND o.outcome NOT IN ('ivr', 'leg') AND o.entered_at < c.entered)",
        )
        .map_err(db("preparing the first-call check"))?;
    let mut rows = q
        .query(params![ev.pbx.as_ref(), call])
        .map_err(db("checking a first call"))?;
    match rows.next().map_err(db("checking a first call"))? {
        Some(r) => Ok(Some(r.get(0).map_err(db("a first call's caller"))?)),
        None => Ok(None),
    }
}

impl RuleSet {
    /// The `[[rules]]` of `cfg` (already checked by the config), or `None`
    /// when there are none.
    pub fn new(cfg: &Config) -> anyhow::Result<Option<RuleSet>> {
        if cfg.rules.list.is_empty() {
            return Ok(None);
        }
        let zone = crate::numbers::zone(cfg);
        let mut rules = Vec::new();
        for r in &cfg.rules.list {
            let calendar = calendar_of(cfg, r, zone)?;
            rules.push(Rule {
                cfg: r.clone(),
                calendar,
            });
        }
        Ok(Some(RuleSet {
            rules,
            from: cfg.email.from.clone(),
            zone,
            sms_mobile_only: cfg.sms.mobile_only,
            sms_sender: cfg.sms.sender.clone(),
        }))
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Never: a set has at least one rule ([`RuleSet::new`]).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Why `rule` does not act on `ev`, if it does not.
    fn unmet(&self, rule: &Rule, ev: &Event, p: &Party, now: DateTime<Utc>) -> Option<String> {
        let r = &rule.cfg;
        if r.max_age_minutes > 0 && (now - ev.ts).num_minutes() >= r.max_age_minutes as i64 {
            return Some(format!(
                "older than max_age_minutes = {}",
                r.max_age_minutes
            ));
        }
        if !r.queues.is_empty()
            && !ev
                .queue
                .as_deref()
                .is_some_and(|q| r.queues.iter().any(|x| x == q))
        {
            return Some("not one of its queues".into());
        }
        if !r.pbx.is_empty() && !r.pbx.contains(&p.pbx) {
            return Some("not one of its PBXes".into());
        }
        let class = p.class.as_deref().unwrap_or("none");
        if r.skip_blacklisted && class == "blacklist" {
            return Some("the caller is blacklisted".into());
        }
        if !r.classes.is_empty() && !r.classes.iter().any(|c| c == class) {
            return Some(format!("the caller's class is {class}"));
        }
        match (r.min_wait_s, p.wait_s) {
            (Some(min), w) if w.unwrap_or(0) < min => Some(format!(
                "waited {} s, under min_wait_s = {min}",
                w.unwrap_or(0)
            )),
            _ => None,
        }
    }

    /// The action of `rule` for `ev` under the id `id` (default
    /// `rule:<name>:<event id>`), if its conditions hold.
    fn act(
        &self,
        rule: &Rule,
        ev: &Event,
        p: &Party,
        now: DateTime<Utc>,
        id: Option<&str>,
    ) -> Option<NewAction> {
        let r = &rule.cfg;
        let action_id = id.map_or_else(|| action_id(r, ev), str::to_string);
        if let Some(why) = self.unmet(rule, ev, p, now) {
            tracing::debug!(rule = %r.name, event = %ev.event_id, "rule not acting: {why}");
            return None;
        }
        let (due_at, skipped) = schedule(rule, now);
        let tz = rule.calendar.as_ref().map_or(self.zone, |c| c.tz);
        let vars = variables(r, ev, p, tz);
        let v: BTreeMap<&str, &str> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let breach = r.when.starts_with("sla_breach");
        let (kind, payload) = match r.action.as_str() {
            "email" => {
                let subject = r.subject.as_deref().unwrap_or(if breach {
                    BREACH_SUBJECT
                } else {
                    "[calltrail] {{ when }}: {{ caller or caller_raw }} {{ queue }}"
                });
                let body =
                    r.body
                        .as_deref()
                        .unwrap_or(if breach { BREACH_BODY } else { DEFAULT_BODY });
                let render = |t: &str| template::render(t, &v);
                let (subject, body) = match (render(subject), render(body)) {
                    (Ok(s), Ok(b)) => (inline(&s, 200), b),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!(rule = %r.name, error = %e, "a rule's template failed; no action");
                        return None;
                    }
                };
                let p = EmailPayload {
                    from: self.from.clone(),
                    to: r.to.clone(),
                    subject,
                    body,
                };
                (EMAIL, serde_json::to_string(&p).ok()?)
            }
            "callback" => {
                let caller = p.caller.clone().unwrap_or_default();
                let dialable = super::callback::dialable(&caller);
                let payload = super::CallbackPayload {
                    caller,
                    episode_opened_at: ev.ts,
                    queue: ev.queue.as_deref().map(str::to_string),
                    agent: p.agent.clone(),
                    context: None,
                };
                let skipped = match (skipped, dialable) {
                    (Some(s), _) => Some(s),
                    (None, false) => Some("the caller is not a dialable number".to_string()),
                    (None, true) => None,
                };
                return Some(NewAction {
                    action_id: action_id.clone(),
                    kind: super::CALLBACK.into(),
                    event_id: ev.event_id.clone(),
                    payload: serde_json::to_string(&payload).ok()?,
                    due_at,
                    skipped,
                    priority: i32::from(p.asked),
                });
            }
            "webhook" => {
                let body = serde_json::json!({
                    "rule": r.name,
                    "when": r.when,
                    "action_id": action_id,
                    "event": vars.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                });
                let p = WebhookPayload {
                    url: r.url.clone()?,
                    body,
                };
                (WEBHOOK, serde_json::to_string(&p).ok()?)
            }
            _ => return None,
        };
        Some(NewAction {
            action_id: action_id.clone(),
            kind: kind.into(),
            event_id: ev.event_id.clone(),
            payload,
            due_at,
            skipped,
            priority: 0,
        })
    }
}

/// The calendar a rule names, built in `zone` (unless it has its own).
pub(super) fn calendar_of(
    cfg: &Config,
    r: &RuleConfig,
    zone: Tz,
) -> anyhow::Result<Option<Calendar>> {
    let Some(name) = &r.calendar else {
        return Ok(None);
    };
    let c = cfg
        .calendars
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("rule {}: no [calendars.{name}]", r.name))?;
    Ok(Some(
        Calendar::build(name, c, zone).map_err(|e| anyhow::anyhow!("[calendars.{name}] {e}"))?,
    ))
}

/// When a matched rule acts: now (`None`), at its calendar's next opening,
/// or never (dropped outside hours), with the reason.
fn schedule(rule: &Rule, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<String>) {
    match &rule.calendar {
        None => (None, None),
        Some(c) if c.is_open(now) => (None, None),
        Some(c) if rule.cfg.outside_hours == "wait" => match c.next_open(now) {
            Some(t) => (Some(t), None),
            None => (
                None,
                Some(format!("calendar {} does not open within 400 days", c.name)),
            ),
        },
        Some(c) => (
            None,
            Some(format!(
                "outside business hours (calendar {}): dropped",
                c.name
            )),
        ),
    }
}

impl RuleSet {
    /// The SMS of `rule` for `ev`, if its conditions hold: the caller's
    /// number, the rendered text, the per-number limits (see
    /// [`super::sms`]); `pending` are the step's earlier decisions.
    #[allow(clippy::too_many_arguments)]
    fn act_sms(
        &self,
        conn: &Connection,
        rule: &Rule,
        ev: &Event,
        p: &Party,
        now: DateTime<Utc>,
        id_key: &str,
        pending: &[NewAction],
    ) -> Result<Option<NewAction>, StoreError> {
        let r = &rule.cfg;
        if let Some(why) = self.unmet(rule, ev, p, now) {
            tracing::debug!(rule = %r.name, event = %ev.event_id, "rule not acting: {why}");
            return Ok(None);
        }
        let Some(number) = p.caller.as_deref() else {
            return Ok(None);
        };
        let tz = rule.calendar.as_ref().map_or(self.zone, |c| c.tz);
        let decision = super::sms::decide(
            conn,
            r,
            self.sms_mobile_only,
            number,
            id_key,
            ev.ts,
            tz,
            pending,
        )?;
        let (due_at, skipped) = schedule(rule, now);
        let vars = variables(r, ev, p, tz);
        let v: BTreeMap<&str, &str> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let text = match template::render(r.text.as_deref().unwrap_or(""), &v) {
            Ok(t) => t.trim().to_string(),
            Err(e) => {
                tracing::error!(rule = %r.name, error = %e, "a rule's template failed; no action");
                return Ok(None);
            }
        };
        let skipped = decision.skipped.or(skipped).or_else(|| {
            text.is_empty()
                .then(|| "the text template rendered nothing".to_string())
        });
        let payload = super::SmsPayload {
            to: number.to_string(),
            text,
            sender: self.sms_sender.clone(),
        };
        Ok(Some(NewAction {
            action_id: decision.action_id,
            kind: super::SMS.into(),
            event_id: ev.event_id.clone(),
            payload: serde_json::to_string(&payload)
                .map_err(|e| StoreError::Malformed(format!("an SMS payload: {e}")))?,
            due_at,
            skipped,
            priority: 0,
        }))
    }
}

impl RuleSet {
    /// Adds `ev` to `rule`'s digest of the current window for its queue
    /// (`digest_minutes`); the window's action is created with its first
    /// item, due at the window's end (or the calendar's next opening).
    /// A window whose action was already claimed takes no more items: the
    /// next one does.
    fn act_digest(
        &self,
        conn: &Connection,
        rule: &Rule,
        ev: &Event,
        p: &Party,
        now: DateTime<Utc>,
    ) -> Result<Option<NewAction>, StoreError> {
        let r = &rule.cfg;
        if let Some(why) = self.unmet(rule, ev, p, now) {
            tracing::debug!(rule = %r.name, event = %ev.event_id, "rule not acting: {why}");
            return Ok(None);
        }
        if digests::has_item(conn, &r.name, &ev.event_id)? {
            return Ok(None);
        }
        let minutes = i64::from(r.digest_minutes.unwrap_or(15).max(1));
        let queue = ev.queue.as_deref().unwrap_or("*");
        let span = minutes * 60;
        let mut start = now.timestamp().div_euclid(span) * span;
        let action_id = loop {
            let at = DateTime::from_timestamp(start, 0).unwrap_or(now);
            let id = format!(
                "rule:{}:digest:{queue}:{}",
                r.name,
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            match digests::action_status(conn, &id)? {
                Some(s) if s != crate::store::actions::status::PENDING => start += span,
                _ => break id,
            }
        };
        let tz = rule.calendar.as_ref().map_or(self.zone, |c| c.tz);
        let vars = variables(r, ev, p, tz);
        let v: BTreeMap<&str, &str> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (line, subject) = match (
            template::render(r.body.as_deref().unwrap_or(DIGEST_LINE), &v),
            template::render(
                r.subject
                    .as_deref()
                    .unwrap_or("[calltrail] {{ when }}: queue {{ queue }}"),
                &v,
            ),
        ) {
            (Ok(l), Ok(s)) => (l.trim_end().to_string(), inline(&s, 200)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(rule = %r.name, error = %e, "a rule's template failed; no action");
                return Ok(None);
            }
        };
        digests::add_item(conn, &r.name, &ev.event_id, &action_id, ev.ts, &line)?;
        let window_end = DateTime::from_timestamp(start + span, 0).unwrap_or(now);
        let (due_at, skipped) = schedule(rule, window_end);
        let payload = super::DigestPayload {
            from: self.from.clone(),
            to: r.to.clone(),
            subject,
            queue: queue.to_string(),
            minutes: minutes as u32,
            window_start: DateTime::from_timestamp(start, 0).unwrap_or(now),
        };
        Ok(Some(NewAction {
            action_id,
            kind: super::DIGEST.into(),
            event_id: ev.event_id.clone(),
            payload: serde_json::to_string(&payload)
                .map_err(|e| StoreError::Malformed(format!("a digest payload: {e}")))?,
            due_at: Some(due_at.unwrap_or(window_end)),
            skipped,
            priority: 0,
        }))
    }
}

fn action_id(r: &RuleConfig, ev: &Event) -> String {
    format!("rule:{}:{}", r.name, ev.event_id)
}

const BREACH_SUBJECT: &str = "[calltrail] SLA breach {% if ended_utc %}over{% else %}started{% endif %}: queue {{ queue }} {{ breach_kind }} {{ value_text }} (threshold {{ threshold_text }})";

const BREACH_BODY: &str = "SLA breach {% if ended_utc %}ended{% else %}started{% endif %} in queue {{ queue }} ({{ rule }})
kind: {{ breach_kind }}
worst value: {{ value_text }} (threshold {{ threshold_text }})
started: {{ started }}{% if ended_utc %}
ended: {{ ended }} ({{ duration_min }} min){% endif %}
";

const DIGEST_LINE: &str = "{{ at }}  {{ caller or caller_raw }}{% if name %} ({{ name }}){% endif %}  queue {{ queue }}{% if wait_s %}  waited {{ wait_s }} s{% endif %}";

const DEFAULT_BODY: &str = "{{ when }} ({{ rule }})
caller: {{ caller or caller_raw }}{% if name %} ({{ name }}){% endif %}
queue: {{ queue }}
agent: {{ agent }}
wait: {{ wait_s }} s
status: {{ status }}
at: {{ at }} ({{ at_utc }})
";

/// The template variables of an event (every value one bounded line).
fn variables(r: &RuleConfig, ev: &Event, p: &Party, tz: Tz) -> Vec<(&'static str, String)> {
    let s = |v: Option<&str>| inline(v.unwrap_or(""), 200);
    let mut vars = vec![
        ("rule", s(Some(&r.name))),
        ("when", s(Some(&r.when))),
        ("caller", s(p.caller.as_deref())),
        ("caller_raw", s(p.caller_raw.as_deref())),
        ("name", s(p.name.as_deref())),
        ("class", s(Some(p.class.as_deref().unwrap_or("none")))),
        ("queue", s(ev.queue.as_deref())),
        ("agent", s(ev.agent.as_deref())),
        ("pbx", s(Some(&p.pbx))),
        (
            "wait_s",
            p.wait_s.map(|w| w.to_string()).unwrap_or_default(),
        ),
        (
            "talk_s",
            ev.talk_s.map(|w| w.to_string()).unwrap_or_default(),
        ),
        ("status", s(ev.info.as_deref())),
        (
            "at",
            ev.ts
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
        ),
        (
            "at_utc",
            ev.ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        ("event_id", s(Some(&ev.event_id))),
    ];
    for (k, v) in &p.extra {
        let local = |v: &str| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| {
                    t.with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M:%S %Z")
                        .to_string()
                })
                .unwrap_or_default()
        };
        match *k {
            "started_utc" => vars.push(("started", local(v))),
            "ended_utc" => vars.push(("ended", local(v))),
            _ => {}
        }
        vars.push((k, v.clone()));
    }
    for k in &template::VARIABLES {
        if !vars.iter().any(|(n, _)| n == k) {
            vars.push((k, String::new()));
        }
    }
    vars
}

impl StateActions for RuleSet {
    fn actions(
        &self,
        conn: &Connection,
        input: &[Event],
        derived: &[Event],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewAction>, StoreError> {
        let mut out = Vec::new();
        let first_rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.cfg.when == "first_call")
            .collect();
        for ev in input.iter().chain(derived) {
            let Some(trigger) = trigger_of(ev) else {
                continue;
            };
            // `first_call`: the end of a caller's first inbound call ever,
            // answered; once per caller (the id names the caller, so the
            // CDR row and the queue_log end of one call make one action).
            if trigger == "call_ended" && !first_rules.is_empty() {
                if let Some(caller) = first_answered_call(conn, ev)? {
                    let mut p = party_of(conn, ev, now)?;
                    p.caller = Some(caller.clone());
                    for r in &first_rules {
                        if r.cfg.action == "sms" {
                            // Keyed by the caller: once per caller.
                            let key = format!("first_call:{caller}");
                            if let Some(a) = self.act_sms(conn, r, ev, &p, now, &key, &out)? {
                                out.push(a);
                            }
                        } else {
                            let id = format!("rule:{}:first_call:{caller}", r.cfg.name);
                            out.extend(self.act(r, ev, &p, now, Some(&id)));
                        }
                    }
                }
            }
            let rules: Vec<&Rule> = self
                .rules
                .iter()
                .filter(|r| r.cfg.when == trigger)
                .collect();
            if rules.is_empty() {
                continue;
            }
            let p = party_of(conn, ev, now)?;
            for r in rules {
                if r.cfg.action == "sms" {
                    if let Some(a) = self.act_sms(conn, r, ev, &p, now, &ev.event_id, &out)? {
                        out.push(a);
                    }
                } else if r.cfg.action == "email" && r.cfg.digest_minutes.is_some() {
                    if let Some(a) = self.act_digest(conn, r, ev, &p, now)? {
                        out.push(a);
                    }
                } else {
                    out.extend(self.act(r, ev, &p, now, None));
                }
            }
        }
        Ok(out)
    }
}
