//! The daemon's signals: SIGTERM and SIGINT stop it; SIGHUP reloads the
//! config file (docs/rules.md "Reloading"). The file is read and checked
//! again with the checks of start and `check-config`; when it is not valid
//! the reload is refused as a whole (one error naming every problem) and the
//! running config stays. Otherwise its `[[rules]]` and `[calendars]` are put
//! in force for the derivations and lookups that start from then on, and
//! every other change is logged as needing a restart
//! ([`crate::config::reload`] decides which is which).

use crate::config::reload::{plan, Started};
use crate::config::{self, Config, ConfigError};
use crate::rules::employee::{EmployeeCallbacks, EmployeeRules};
use crate::rules::live::LiveRules;
use crate::rules::RuleSet;
use anyhow::Context;
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The handlers of the daemon's signals, installed as early as `run`
/// starts: SIGHUP's default action ends the process.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// Reloads on every SIGHUP until SIGTERM or SIGINT comes.
    pub async fn until_stop(&mut self, reloader: &mut Reloader) {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    tracing::info!("SIGTERM received");
                    return;
                }
                _ = self.int.recv() => {
                    tracing::info!("SIGINT received");
                    return;
                }
                _ = self.hup.recv() => {
                    tracing::info!(file = %reloader.running.file.display(), "SIGHUP received: reading the config again");
                    // A file of a few KB, rules and calendars built: quick
                    // enough for the signal's task.
                    reloader.reload();
                }
            }
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file is not valid (or its rules cannot be built): nothing changed.
    Refused,
    /// Valid; no rule or calendar changed, or their change must wait for
    /// a restart (as must changes elsewhere, if any).
    Unchanged,
    /// Rules and calendars put in force.
    Applied,
}

/// Reloads the config of a running daemon.
pub struct Reloader {
    /// The config in force: the one started with, with the rules and
    /// calendars of the last reload applied.
    running: Config,
    /// What the daemon set up at start.
    started: Started,
    rules: Arc<LiveRules>,
    /// The `employee_lookup` hook (when the lookup is served).
    employee: Option<Arc<EmployeeCallbacks>>,
}

impl Reloader {
    /// For a daemon started with `cfg`, whose deriver acts on `rules` and
    /// whose lookups go through `employee`.
    pub fn new(
        cfg: &Config,
        rules: Arc<LiveRules>,
        employee: Option<Arc<EmployeeCallbacks>>,
    ) -> Reloader {
        Reloader {
            running: cfg.clone(),
            started: Started::of(cfg),
            rules,
            employee,
        }
    }

    /// Reads the config file again and applies what can be, logging what
    /// happened and counting it (`calltrail_config_reloads_total`).
    pub fn reload(&mut self) -> Outcome {
        let outcome = self.try_reload();
        crate::serve::metrics::count_reload(outcome != Outcome::Refused);
        outcome
    }

    fn try_reload(&mut self) -> Outcome {
        let path = self.running.file.clone();
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config reload refused, running on as before: {e}");
                return Outcome::Refused;
            }
        };
        // What `check-config` adds (the environment `run` needs).
        let problems = config::environment_problems(&new);
        if !problems.is_empty() {
            let e = ConfigError::Invalid { path, problems };
            tracing::error!("config reload refused, running on as before: {e}");
            return Outcome::Refused;
        }
        let plan = plan(&self.running, &new, self.started);
        for key in &plan.restart {
            tracing::warn!("needs a restart: {key}");
        }
        let Some(apply) = plan.apply else {
            if plan.held.is_empty() {
                tracing::info!(
                    restart = plan.restart.len(),
                    "config reloaded: no rule or calendar changed"
                );
            } else {
                let held = plan.held.join("; ");
                tracing::warn!(
                    restart = plan.restart.len(),
                    "config reloaded: nothing applied, held for a restart: {held}"
                );
            }
            return Outcome::Unchanged;
        };
        // Built in full before anything is replaced: all or nothing.
        let (rules, employee) = match build(&apply) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("config reload refused, running on as before: [[rules]]: {e:#}");
                return Outcome::Refused;
            }
        };
        self.rules.replace(rules);
        if let Some(hook) = &self.employee {
            hook.replace(employee);
        }
        let changed = plan.changed.join("; ");
        tracing::info!(
            rules = apply.rules.list.len(),
            calendars = apply.calendars.len(),
            restart = plan.restart.len(),
            "config reloaded: {changed}"
        );
        self.running = apply;
        Outcome::Applied
    }
}

/// The rules of `cfg` as the deriver and the lookup hook use them.
fn build(cfg: &Config) -> anyhow::Result<(Option<RuleSet>, EmployeeRules)> {
    Ok((RuleSet::new(cfg)?, EmployeeRules::of(cfg)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[store]
path = "s.duckdb"
[calendars.office]
timezone = "UTC"
hours = ["09:00-17:59,mon-fri,*,*"]
[[rules]]
name = "a"
when = "missed_opened"
action = "email"
to = ["a@example.com"]
"#;

    fn names(live: &LiveRules) -> usize {
        live.current().as_ref().as_ref().map_or(0, RuleSet::len)
    }

    #[test]
    fn a_valid_file_replaces_the_rules_an_invalid_one_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, BASE).expect("write");
        let cfg = config::load(&file).expect("valid");
        let live = Arc::new(LiveRules::new(&cfg).expect("rules"));
        let mut r = Reloader::new(&cfg, live.clone(), None);
        assert_eq!(r.reload(), Outcome::Unchanged);

        let two = format!("{BASE}{}", &BASE[BASE.find("[[rules]]").expect("rules")..]).replacen(
            "name = \"a\"",
            "name = \"b\"",
            1,
        );
        std::fs::write(&file, &two).expect("write");
        assert_eq!(r.reload(), Outcome::Applied);
        assert_eq!(names(&live), 2);

        // Invalid: an unknown trigger and an unknown calendar, both named;
        // the two rules stay.
        let bad = two
            .replace("when = \"missed_opened\"", "when = \"missed_openned\"")
            .replace(
                "[[rules]]\nname = \"b\"",
                "[[rules]]\nname = \"b\"\ncalendar = \"nope\"",
            );
        std::fs::write(&file, &bad).expect("write");
        assert_eq!(r.reload(), Outcome::Refused);
        assert_eq!(names(&live), 2);
        std::fs::write(&file, "[store\n").expect("write");
        assert_eq!(r.reload(), Outcome::Refused);
        std::fs::remove_file(&file).expect("rm");
        assert_eq!(r.reload(), Outcome::Refused);
        assert_eq!(names(&live), 2);

        // Back to one rule: applied against the last good set.
        std::fs::write(&file, BASE).expect("write");
        assert_eq!(r.reload(), Outcome::Applied);
        assert_eq!(names(&live), 1);
    }
}
