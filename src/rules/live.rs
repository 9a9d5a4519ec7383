//! The `[[rules]]` the state deriver acts on, replaceable while the daemon
//! runs (a reload on SIGHUP, docs/rules.md "Reloading"): the store holds
//! this one [`StateActions`] for its whole life, and each derivation's
//! transaction takes the rule set current when it asks, once, so that no
//! step is judged half by the old rules and half by the new ones.

use super::RuleSet;
use crate::config::Config;
use crate::store::actions::StateActions;
use crate::store::{NewAction, StoreError};
use calltrail_parsers::Event;
use chrono::{DateTime, Utc};
use duckdb::Connection;
use std::sync::{Arc, RwLock};

/// The rule set in force (none: no `[[rules]]`, nothing to decide).
#[derive(Debug, Default)]
pub struct LiveRules {
    current: RwLock<Arc<Option<RuleSet>>>,
}

impl LiveRules {
    /// The `[[rules]]` of `cfg` (checked by the config).
    pub fn new(cfg: &Config) -> anyhow::Result<LiveRules> {
        Ok(LiveRules {
            current: RwLock::new(Arc::new(RuleSet::new(cfg)?)),
        })
    }

    /// Puts `rules` in force: the derivations that start from now on use
    /// them; one already running finishes with the set it took.
    pub fn replace(&self, rules: Option<RuleSet>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }

    /// The rule set in force now.
    pub fn current(&self) -> Arc<Option<RuleSet>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many rules are in force.
    pub fn len(&self) -> usize {
        self.current().as_ref().as_ref().map_or(0, RuleSet::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StateActions for LiveRules {
    fn actions(
        &self,
        conn: &Connection,
        input: &[Event],
        derived: &[Event],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewAction>, StoreError> {
        // Taken once: the whole step is decided by one set.
        match self.current().as_ref() {
            Some(rules) => rules.actions(conn, input, derived, now),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(rules: &str) -> Config {
        let text = format!("[store]\npath = \"s.duckdb\"\n{rules}");
        crate::config::parse(&text, Path::new("/tmp/c.toml")).expect("valid")
    }

    const ONE: &str = r#"
[[rules]]
name = "a"
when = "missed_opened"
action = "email"
to = ["a@example.com"]
"#;

    #[test]
    fn a_replaced_set_is_seen_by_the_next_taker_only() {
        let live = LiveRules::new(&cfg(ONE)).expect("rules");
        assert_eq!(live.len(), 1);
        let taken = live.current();
        let two = format!("{ONE}{}", ONE.replace("\"a\"", "\"b\""));
        live.replace(RuleSet::new(&cfg(&two)).expect("rules"));
        assert_eq!(live.len(), 2);
        // What a running derivation took stays as it was.
        assert_eq!(taken.as_ref().as_ref().map_or(0, RuleSet::len), 1);
        live.replace(RuleSet::new(&cfg("")).expect("no rules"));
        assert!(live.is_empty());
    }
}
