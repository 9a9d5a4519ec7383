//! `employee_lookup` rules: an employee calls the office from their mobile,
//! the dialplan asks calltrail (CURL or FastAGI), the directory says
//! `employee`, and the dialplan hangs up; calltrail calls them back into
//! the rule's `context` (DISA-style: the company pays for the call).
//!
//! The lookup answers at once; the callback action is inserted beside it
//! (a blocking task) and the action worker is woken: the call file (or
//! Originate) follows within a fraction of a second. The action id is
//! `rule:<name>:employee_lookup:<call>` with the dialplan's call id when it
//! gives one (`call=${UNIQUEID}`; FastAGI's `agi_uniqueid`), else the
//! number and the minute, so the dialplan asking twice for one call makes
//! one callback.

use super::config::RuleConfig;
use super::CallbackPayload;
use crate::calendar::Calendar;
use crate::config::Config;
use crate::lookup::index::LookupHook;
use crate::lookup::Decision;
use crate::store::{NewAction, Store};
use chrono::Utc;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// The `employee_lookup` rules of a config, ready to act on lookups; a
/// reload (SIGHUP) replaces them ([`EmployeeCallbacks::replace`]).
pub struct EmployeeCallbacks {
    rules: RwLock<Arc<EmployeeRules>>,
    store: Arc<Store>,
    wake: Arc<Notify>,
}

/// The `employee_lookup` rules of a config, built (with their calendars).
#[derive(Debug, Default)]
pub struct EmployeeRules(Vec<(RuleConfig, Option<Calendar>)>);

impl EmployeeRules {
    /// The rules of `cfg` with `when = "employee_lookup"` (maybe none).
    pub fn of(cfg: &Config) -> anyhow::Result<EmployeeRules> {
        let zone = crate::numbers::zone(cfg);
        let mut rules = Vec::new();
        for r in cfg
            .rules
            .list
            .iter()
            .filter(|r| r.when == "employee_lookup")
        {
            let cal = super::engine::calendar_of(cfg, r, zone)?;
            rules.push((r.clone(), cal));
        }
        Ok(EmployeeRules(rules))
    }
}

impl EmployeeCallbacks {
    /// The hook of `cfg`'s `employee_lookup` rules (with none it does
    /// nothing until a reload brings some).
    pub fn new(cfg: &Config, store: Store, wake: Arc<Notify>) -> anyhow::Result<EmployeeCallbacks> {
        Ok(EmployeeCallbacks {
            rules: RwLock::new(Arc::new(EmployeeRules::of(cfg)?)),
            store: Arc::new(store),
            wake,
        })
    }

    /// Puts `rules` in force for the lookups from now on.
    pub fn replace(&self, rules: EmployeeRules) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }

    /// The actions of one employee's lookup.
    fn actions(&self, number: &str, call: Option<&str>) -> Vec<NewAction> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner()).clone();
        if rules.0.is_empty() {
            return Vec::new();
        }
        let now = Utc::now();
        let key = match call.filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }) {
            Some(c) => c.to_string(),
            None => format!("{number}:{}", now.timestamp() / 60),
        };
        let mut out = Vec::new();
        for (r, cal) in &rules.0 {
            let (due_at, skipped) = match cal {
                None => (None, None),
                Some(c) if c.is_open(now) => (None, None),
                Some(c) if r.outside_hours == "wait" => (c.next_open(now), None),
                Some(c) => (
                    None,
                    Some(format!(
                        "outside business hours (calendar {}): dropped",
                        c.name
                    )),
                ),
            };
            let payload = CallbackPayload {
                caller: number.to_string(),
                episode_opened_at: now,
                queue: None,
                agent: None,
                context: r.context.clone(),
            };
            let Ok(payload) = serde_json::to_string(&payload) else {
                continue;
            };
            out.push(NewAction {
                action_id: format!("rule:{}:employee_lookup:{key}", r.name),
                kind: super::CALLBACK.into(),
                event_id: format!("lookup:{key}"),
                payload,
                due_at,
                skipped,
                priority: crate::store::URGENT,
            });
        }
        out
    }
}

impl LookupHook for EmployeeCallbacks {
    fn looked_up(&self, d: &Decision, call: Option<&str>) {
        let employee = d
            .known
            .as_ref()
            .and_then(|k| k.class.as_deref())
            .is_some_and(|c| c == "employee");
        let Some(number) = d.matched.as_deref().filter(|_| employee) else {
            return;
        };
        if !super::callback::dialable(number) {
            return;
        }
        let actions = self.actions(number, call);
        if actions.is_empty() {
            return;
        }
        let (store, wake) = (self.store.clone(), self.wake.clone());
        let insert = move || match store
            .with_conn(|c| crate::store::actions::insert(c, &actions, Utc::now()))
        {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(count = n, "employee lookup: callback queued");
                }
                wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "cannot queue an employee's callback"),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(insert)),
            Err(_) => drop(std::thread::spawn(insert)),
        }
    }
}
