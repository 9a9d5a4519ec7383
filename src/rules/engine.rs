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
use crate::store::{directory, NewAction, StoreError};
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
    };
    if let Some(call) = &ev.call_id {
        // A state change names its call but no PBX (`*`).
        let pbx = ev.pbx.as_ref();
        let any_pbx = pbx == "*";
        let sql = if any_pbx {
            "SELECT pbx, any_value(caller), any_value(caller_raw), max(wait_s) FROM calls
             WHERE call_id = ?1 GROUP BY pbx ORDER BY pbx LIMIT 1"
        } else {
            "SELECT pbx, any_value(caller), any_value(caller_raw), max(wait_s) FROM calls
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
        }
    }
    if let Some(c) = &p.caller {
        if let Some(e) = directory::lookup(conn, c, now)? {
            p.class = e.fields.class.clone();
            p.name = e.fields.name.clone().or(p.name);
        }
        let mut q = conn
            .prepare_cached("SELECT agent FROM last_agent WHERE caller = ?")
            .map_err(db("preparing the last-agent lookup of a rule"))?;
        let mut rows = q
            .query(params![c])
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
            let calendar = match &r.calendar {
                Some(name) => {
                    let c = cfg
                        .calendars
                        .get(name)
                        .ok_or_else(|| anyhow::anyhow!("rule {}: no [calendars.{name}]", r.name))?;
                    Some(
                        Calendar::build(name, c, zone)
                            .map_err(|e| anyhow::anyhow!("[calendars.{name}] {e}"))?,
                    )
                }
                None => None,
            };
            rules.push(Rule {
                cfg: r.clone(),
                calendar,
            });
        }
        Ok(Some(RuleSet {
            rules,
            from: cfg.email.from.clone(),
            zone,
        }))
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
        let (due_at, skipped) = match &rule.calendar {
            None => (None, None),
            Some(c) if c.is_open(now) => (None, None),
            Some(c) if r.outside_hours == "wait" => match c.next_open(now) {
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
        };
        let tz = rule.calendar.as_ref().map_or(self.zone, |c| c.tz);
        let vars = variables(r, ev, p, tz);
        let v: BTreeMap<&str, &str> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (kind, payload) = match r.action.as_str() {
            "email" => {
                let subject = r
                    .subject
                    .as_deref()
                    .unwrap_or("[calltrail] {{ when }}: {{ caller or caller_raw }} {{ queue }}");
                let body = r.body.as_deref().unwrap_or(DEFAULT_BODY);
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
        })
    }
}

fn action_id(r: &RuleConfig, ev: &Event) -> String {
    format!("rule:{}:{}", r.name, ev.event_id)
}

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
    vec![
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
    ]
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
                        let id = format!("rule:{}:first_call:{caller}", r.cfg.name);
                        out.extend(self.act(r, ev, &p, now, Some(&id)));
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
            out.extend(rules.iter().filter_map(|r| self.act(r, ev, &p, now, None)));
        }
        Ok(out)
    }
}
