//! Derived state: call facts (`calls`, `call_attempts`), per-caller state (`callers`,
//! `last_agent`, `missed_calls`), service level (`sla_intervals`,
//! `sla_breaches`) and `agent_status`, recomputed from the stored events of
//! every key a batch touches, by event time, inside the batch's transaction
//! (contract: `docs/schema.md`; formulas: `docs/metrics.md`). A
//! [`StateObserver`] hears what each commit changed (the lookup's memory).

mod agents;
mod attempts;
mod calls;
mod columns;
pub(crate) mod derived;
pub mod fresh;
mod legs;
mod party;
pub mod party_facts;
pub mod party_key;
mod refresh;
pub mod schema;
pub mod sla;

pub use agents::{interface_of, read_presence, AgentPresence};
pub use attempts::AttemptRow;
pub use calls::{build as build_call, CallRow, Ev};
pub use party::{caller_row, episodes, last_agent, Episode, PartyCall};
pub use party_facts::PartyFacts;
pub(crate) use refresh::{party_call_row, PARTY_CALL_COLUMNS};
pub use refresh::{refresh, sweep, Touched};

/// What one committed derivation changed that an observer keeping state in
/// memory (the dialplan lookup's index) must follow.
#[derive(Debug, Default)]
pub struct Changes {
    /// Every party recomputed, with its facts (empty facts: no calls left).
    pub parties: Vec<(String, PartyFacts)>,
    /// Every agent recomputed; `None`: no `agent_status` row any more.
    pub agents: Vec<(String, Option<AgentPresence>)>,
    /// `(agent, interface, is a device, event time µs)` seen in the events.
    pub interfaces: Vec<(String, String, bool, i64)>,
}

/// Told, after each commit of the state deriver, what it changed.
pub trait StateObserver: Send + Sync {
    fn committed(&self, changes: Changes);
}

use serde::Deserialize;

/// Which service-level formula `sla_intervals.service_level` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceLevel {
    /// answered_within / (offered − short_abandoned)
    #[default]
    Default,
    /// Cisco "abandoned calls ignored": answered_within / (offered − abandoned)
    AbandonsIgnored,
    /// Cisco "abandoned calls negatively affect": answered_within / offered
    AbandonsNegative,
    /// Cisco "abandoned calls positively affect": (answered_within + abandoned_within) / offered
    AbandonsPositive,
    /// Asterisk's SL: answered_within / answered
    AsteriskSl,
    /// Asterisk's SL2: (answered_within + abandoned_within) / (answered + abandoned)
    AsteriskSl2,
}

impl ServiceLevel {
    /// The name the config and docs/metrics.md give the formula.
    pub fn name(self) -> &'static str {
        match self {
            ServiceLevel::Default => "default",
            ServiceLevel::AbandonsIgnored => "abandons_ignored",
            ServiceLevel::AbandonsNegative => "abandons_negative",
            ServiceLevel::AbandonsPositive => "abandons_positive",
            ServiceLevel::AsteriskSl => "asterisk_sl",
            ServiceLevel::AsteriskSl2 => "asterisk_sl2",
        }
    }
}

/// `[state]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// An abandon with a shorter wait is a short abandon: not a miss, and
    /// left out of the default service level.
    pub short_abandon_s: i32,
    /// Answered within this many seconds counts for the service level.
    pub sla_threshold_s: i32,
    /// Length of `sla_intervals` buckets.
    pub interval_minutes: u32,
    pub service_level: ServiceLevel,
    /// An open missed-call episode expires this long after its last miss.
    pub missed_expiry_hours: u32,
    /// How often the daemon settles time-dependent state (episodes expiring,
    /// callers waiting too long).
    pub sweep_interval_s: u32,
    /// Digit strings up to this long are extensions (copied from `[numbers]`).
    #[serde(skip)]
    pub max_internal_len: usize,
    pub breach: BreachConfig,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            short_abandon_s: 5,
            sla_threshold_s: 20,
            interval_minutes: 15,
            service_level: ServiceLevel::Default,
            missed_expiry_hours: 168,
            sweep_interval_s: 15,
            max_internal_len: 6,
            breach: BreachConfig::default(),
        }
    }
}

/// `[state.breach]`: when a queue is in breach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreachConfig {
    pub window_minutes: u32,
    pub min_calls: u32,
    pub service_level_min: f64,
    pub service_level_hysteresis: f64,
    pub max_wait_s: u32,
    pub gap_s: u32,
    pub max_waiting: u32,
    pub waiting_hysteresis: u32,
}

impl Default for BreachConfig {
    fn default() -> Self {
        BreachConfig {
            window_minutes: 60,
            min_calls: 10,
            service_level_min: 0.8,
            service_level_hysteresis: 0.05,
            max_wait_s: 120,
            gap_s: 60,
            max_waiting: 10,
            waiting_hysteresis: 2,
        }
    }
}
