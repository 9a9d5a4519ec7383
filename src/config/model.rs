//! The config file's shape (serde) with its defaults.

use calltrail_parsers::SourceKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub numbers: NumbersConfig,
    #[serde(default)]
    pub agents: AgentsConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    pub kafka: Option<KafkaSection>,
    #[serde(default)]
    pub email: EmailSection,
    #[serde(default)]
    pub rules: RulesSection,
    /// Derived state: thresholds, intervals, service-level formula.
    #[serde(default)]
    pub state: crate::state::StateConfig,
    /// Options of snapshot sources (`wintariff_dbf`, `oktell_csv`), keyed by
    /// source name: `[snapshot.<name>]`.
    #[serde(default)]
    pub snapshot: BTreeMap<String, SnapshotOptions>,
    #[serde(default)]
    pub http: super::HttpSection,
    #[serde(default)]
    pub query: super::QuerySection,
    /// The dialplan lookup's policy and window.
    #[serde(default)]
    pub lookup: super::LookupSection,
    /// The FastAGI server.
    #[serde(default)]
    pub agi: super::AgiSection,
    /// How `callback` rules call back.
    #[serde(default)]
    pub callbacks: super::CallbacksSection,
    /// Where `sms` rules send: `[sms]`.
    #[serde(default)]
    pub sms: super::SmsSection,
    /// The wallboard: `[wall]`.
    #[serde(default)]
    pub wall: super::WallSection,
    /// Scheduled report emails: `[[reports.schedule]]`.
    #[serde(default)]
    pub reports: super::ReportsSection,
    /// Business hours and holidays, by name: `[calendars.NAME]`.
    #[serde(default)]
    pub calendars: BTreeMap<String, crate::calendar::CalendarConfig>,
    /// The file this was read from (not a TOML key).
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// DuckDB database file.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// The whole process's memory budget (`"512MB"`): DuckDB's memory
    /// limit, its threads and the bulk batch sizes follow from it
    /// (`config::budget`).
    #[serde(default = "default_memory_budget")]
    pub memory_budget: String,
    /// DuckDB's memory limit (`"1GB"`, `"512MB"`), at most the budget; a
    /// share of `memory_budget` when absent. Past it DuckDB spills to disk.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// DuckDB's worker threads; from the memory limit when absent.
    #[serde(default)]
    pub threads: Option<u32>,
}

/// `[store] memory_budget` when absent: fits a 2 GB PBX host.
pub const DEFAULT_MEMORY_BUDGET: &str = "512MB";

fn default_memory_budget() -> String {
    DEFAULT_MEMORY_BUDGET.into()
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            memory_budget: default_memory_budget(),
            memory_limit: None,
            threads: None,
        }
    }
}

/// Whether `s` is a size DuckDB's `memory_limit` takes: a number and a unit
/// (`B`, `KB`/`KiB` … `TB`/`TiB`), case-insensitive.
pub fn is_memory_size(s: &str) -> bool {
    super::budget::parse_size(s).is_some()
}

fn default_store_path() -> PathBuf {
    PathBuf::from("calltrail.duckdb")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersConfig {
    /// ISO 3166 region for numbers written without a country code.
    #[serde(default = "default_region")]
    pub default_region: String,
    /// Digit strings up to this length are internal extensions.
    #[serde(default = "default_internal_len")]
    pub max_internal_len: usize,
    /// Key callers on their last N digits only.
    pub match_last_digits: Option<usize>,
}

impl Default for NumbersConfig {
    fn default() -> Self {
        NumbersConfig {
            default_region: default_region(),
            max_internal_len: default_internal_len(),
            match_last_digits: None,
        }
    }
}

fn default_region() -> String {
    "RU".into()
}
fn default_internal_len() -> usize {
    6
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// Raw member name or interface → agent id.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

/// One log the daemon reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    #[serde(deserialize_with = "de_kind")]
    pub kind: SourceKind,
    pub path: PathBuf,
    pub pbx: String,
    /// IANA zone of the PBX clock (for timestamps written without a zone).
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Charset for bytes that are not valid UTF-8.
    #[serde(default = "default_charset")]
    pub charset: String,
    /// How often the file is re-checked when no change notification arrives.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Glob patterns where rotated copies of `path` are looked for (to finish
    /// the file last read after a restart or a copytruncate). Default:
    /// `<path>.*` and `<path>-*` (`queue_log.1`, `queue_log.2.gz`,
    /// `queue_log-20261121`). Relative patterns are relative to the config file.
    pub rotated: Option<Vec<String>>,
    /// How long a rotated-away file is still read for late writes (Asterisk
    /// writes to its open file until `logger reload`).
    #[serde(default = "default_grace_s")]
    pub rotation_grace_s: u64,
    /// The source is stale (the wallboard says "data is stale") when its
    /// file has not been found readable for this long.
    #[serde(default = "default_stale_after_s")]
    pub stale_after_s: u64,
    /// CDR sources: `auto` (default), `cdr_csv`, `cdr_custom`, `header_row`.
    pub layout: Option<String>,
    /// CDR sources: the column names in file order (a `cdr_custom` mapping);
    /// overrides `layout`.
    pub columns: Option<Vec<String>>,
}

impl SourceConfig {
    /// A source with every default, for imports without a configured source.
    pub fn new(name: String, kind: SourceKind, pbx: String) -> SourceConfig {
        SourceConfig {
            name,
            kind,
            path: PathBuf::new(),
            pbx,
            timezone: default_tz(),
            charset: default_charset(),
            poll_interval_ms: default_poll_ms(),
            rotated: None,
            rotation_grace_s: default_grace_s(),
            stale_after_s: default_stale_after_s(),
            layout: None,
            columns: None,
        }
    }
}

fn default_stale_after_s() -> u64 {
    60
}

fn default_grace_s() -> u64 {
    30
}

fn default_tz() -> String {
    "UTC".into()
}
fn default_charset() -> String {
    "cp1251".into()
}
fn default_poll_ms() -> u64 {
    500
}

/// How a snapshot source (`wintariff_dbf`, `oktell_csv`) is read; every
/// key optional. See `src/snapshot/mod.rs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotOptions {
    /// WinTariff: seconds a row without CALLTYPE waits before it is emitted
    /// anyway (an update follows if CALLTYPE is filled later).
    #[serde(default = "default_snapshot_grace_s")]
    pub grace_s: u64,
    /// WinTariff: the fields that identify a row together with its record
    /// index; the writer must never change them once the row exists.
    /// Default: the mapping's `date`, `time` and `extension` fields.
    pub key_fields: Option<Vec<String>>,
    /// WinTariff: where the table's charset comes from: `auto` (the header's
    /// LDID, else a guess from the data, else `charset`), `ldid` (LDID, else
    /// `charset`) or `fixed` (always `charset`).
    #[serde(default = "default_charset_from")]
    pub charset_from: String,
    /// WinTariff: field names (`[snapshot.<name>.wintariff]`).
    #[serde(default)]
    pub wintariff: calltrail_parsers::dbf::WinTariffMapping,
    /// Seconds after which the file is read again even though its size and
    /// times look unchanged (coarse network-share timestamps).
    #[serde(default = "default_rescan_s")]
    pub rescan_s: u64,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            grace_s: default_snapshot_grace_s(),
            key_fields: None,
            charset_from: default_charset_from(),
            wintariff: Default::default(),
            rescan_s: default_rescan_s(),
        }
    }
}

fn default_snapshot_grace_s() -> u64 {
    300
}
fn default_charset_from() -> String {
    "auto".into()
}
fn default_rescan_s() -> u64 {
    60
}

fn de_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SourceKind, D::Error> {
    let s = String::deserialize(d)?;
    SourceKind::from_name(&s).ok_or_else(|| {
        let names: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
        serde::de::Error::custom(format!(
            "unknown source kind {s:?}, expected one of: {}",
            names.join(", ")
        ))
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Comma-separated bootstrap servers.
    pub brokers: String,
    #[serde(default = "default_topic")]
    pub topic: String,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// How long one message may take to be acknowledged before it is retried.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout_ms: u64,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Seconds between two heartbeats of each source on the topic
    /// (`heartbeat.rs`); 0 sends none.
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval_s: u64,
}

fn default_heartbeat_interval() -> u64 {
    30
}

fn default_topic() -> String {
    "calltrail.events".into()
}
fn default_client_id() -> String {
    "calltrail".into()
}
fn default_delivery_timeout() -> u64 {
    30_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    #[serde(default = "default_from")]
    pub from: String,
    /// Where `.eml` files go when no SMTP server is configured.
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
    pub smtp: Option<SmtpSection>,
}

impl Default for EmailSection {
    fn default() -> Self {
        EmailSection {
            from: default_from(),
            outbox: default_outbox(),
            smtp: None,
        }
    }
}

fn default_from() -> String {
    "calltrail@localhost".into()
}
fn default_outbox() -> PathBuf {
    PathBuf::from("outbox")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Read the password from this environment variable instead.
    pub password_env: Option<String>,
    /// Extra CA certificate (PEM) to trust, e.g. for a self-signed relay.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_smtp_timeout")]
    pub timeout_s: u64,
}

fn default_smtp_port() -> u16 {
    25
}
fn default_smtp_tls() -> String {
    "starttls".into()
}
fn default_smtp_timeout() -> u64 {
    30
}

/// `rules` in the config: `[[rules]]` (a list of rules, docs/rules.md), or
/// the original `[rules.missed_call_email]` table (which a list replaces:
/// with `[[rules]]` that email is off).
#[derive(Debug, Clone, Default)]
pub struct RulesSection {
    pub missed_call_email: MissedCallEmailRule,
    pub list: Vec<crate::rules::RuleConfig>,
}

/// The table form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyRules {
    #[serde(default)]
    missed_call_email: MissedCallEmailRule,
}

impl<'de> Deserialize<'de> for RulesSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RulesSection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[[rules]] tables (or the older [rules.missed_call_email])")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<RulesSection, A::Error> {
                let list = Vec::<crate::rules::RuleConfig>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(RulesSection {
                    missed_call_email: MissedCallEmailRule {
                        enabled: false,
                        ..MissedCallEmailRule::default()
                    },
                    list,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RulesSection, A::Error> {
                let legacy =
                    LegacyRules::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RulesSection {
                    missed_call_email: legacy.missed_call_email,
                    list: Vec::new(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// "Missed call from <caller> in <queue>" to supervisors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissedCallEmailRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_to")]
    pub to: Vec<String>,
    /// Misses older than this (by event time, when the line is read) send no
    /// email: a catch-up after a long outage, or an import of old files, must
    /// not flood supervisors. 0 = no limit.
    #[serde(default = "default_max_age")]
    pub max_age_minutes: u64,
}

impl Default for MissedCallEmailRule {
    fn default() -> Self {
        MissedCallEmailRule {
            enabled: true,
            to: default_to(),
            max_age_minutes: default_max_age(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_to() -> Vec<String> {
    vec!["supervisor@localhost".into()]
}
fn default_max_age() -> u64 {
    24 * 60
}

impl Config {
    /// The derived-state settings, with the number rules they depend on.
    pub fn state_config(&self) -> crate::state::StateConfig {
        let mut s = self.state.clone();
        s.max_internal_len = self.numbers.max_internal_len;
        s
    }

    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.store.path);
        fix(&mut self.email.outbox);
        self.callbacks.resolve_paths(base);
        self.sms.resolve_paths(base);
        for f in [
            &mut self.http.token_file,
            &mut self.http.admin_token_file,
            &mut self.http.session_key_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(f);
        }
        for s in &mut self.sources {
            fix(&mut s.path);
            if let Some(pats) = &mut s.rotated {
                for pat in pats {
                    if Path::new(pat.as_str()).is_relative() {
                        *pat = glob::Pattern::escape(&base.to_string_lossy()) + "/" + pat;
                    }
                }
            }
        }
        if let Some(smtp) = &mut self.email.smtp {
            if let Some(ca) = &mut smtp.ca_file {
                fix(ca);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        for ok in ["1GB", "512MB", "1.5 GiB", "300mb", " 2TB ", "4096B"] {
            assert!(is_memory_size(ok), "{ok}");
        }
        for bad in [
            "",
            "1",
            "GB",
            "lots",
            "-1GB",
            "0GB",
            "1 GBs",
            "1e3MB",
            "1GB; DROP",
        ] {
            assert!(!is_memory_size(bad), "{bad}");
        }
    }
}
