//! Semantic checks of a parsed config, and the error type that explains
//! every problem found (not just the first) with where/expected/found.

use super::Config;
use calltrail_parsers::{Charset, NumberNormalizer, SourceKind};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path (`sources[0].timezone`) or `line L, column C`.
    pub location: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.location, self.expected, self.found
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid: {}", path.display(), list(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    let mut s = format!("{} problem(s)", problems.len());
    for p in problems {
        s.push_str("\n  - ");
        s.push_str(&p.to_string());
    }
    s
}

/// Turns a TOML/serde error into a located problem.
pub(super) fn syntax_error(text: &str, path: &std::path::Path, e: toml::de::Error) -> ConfigError {
    let location = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}, column {col} (`{snippet}`)")
        }
        None => "the file".into(),
    };
    let msg = e.message().trim().to_string();
    ConfigError::Invalid {
        path: path.to_path_buf(),
        problems: vec![Problem {
            location,
            expected: "valid calltrail TOML (see samples/calltrail.toml)".into(),
            found: msg,
        }],
    }
}

pub(super) fn check(cfg: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut p = |location: String, expected: &str, found: String| {
        out.push(Problem {
            location,
            expected: expected.into(),
            found,
        })
    };
    if let Err(e) = NumberNormalizer::check_region(&cfg.numbers.default_region) {
        p(
            "numbers.default_region".into(),
            "an ISO 3166 two-letter region such as RU, UA, KZ, US",
            format!("{:?} ({e})", cfg.numbers.default_region),
        );
    }
    if let Some(n) = cfg.numbers.match_last_digits {
        if !(6..=15).contains(&n) {
            p(
                "numbers.match_last_digits".into(),
                "a digit count from 6 to 15",
                n.to_string(),
            );
        }
    }
    let budget = super::budget::parse_size(&cfg.store.memory_budget);
    match budget {
        None => p(
            "store.memory_budget".into(),
            "a size such as \"512MB\" or \"2GB\" (B, KB, MB, GB, TB or KiB … TiB)",
            format!("{:?}", cfg.store.memory_budget),
        ),
        Some(b) if b < super::budget::MIN_BUDGET => p(
            "store.memory_budget".into(),
            "at least 128MB (the process itself holds ~128 MB beside DuckDB's limit of at least 64MB)",
            format!("{:?}", cfg.store.memory_budget),
        ),
        Some(_) => {}
    }
    if let Some(m) = &cfg.store.memory_limit {
        match (super::budget::parse_size(m), budget) {
            (None, _) => p(
                "store.memory_limit".into(),
                "a size such as \"1GB\" or \"512MB\" (B, KB, MB, GB, TB or KiB … TiB)",
                format!("{m:?}"),
            ),
            (Some(limit), Some(b)) if limit > b => p(
                "store.memory_limit".into(),
                &format!(
                    "at most store.memory_budget ({:?}{}), the whole process's budget, which \
                     DuckDB's limit is part of: raise memory_budget too, or leave memory_limit \
                     out (DuckDB then gets 40 % of the budget)",
                    cfg.store.memory_budget,
                    if cfg.store.memory_budget == super::DEFAULT_MEMORY_BUDGET {
                        ", the default"
                    } else {
                        ""
                    }
                ),
                format!("{m:?}"),
            ),
            _ => {}
        }
    }
    if cfg.store.threads == Some(0) {
        p(
            "store.threads".into(),
            "at least 1 thread (leave it out for one per core)",
            "0".into(),
        );
    }
    let mut names = HashSet::new();
    for (i, s) in cfg.sources.iter().enumerate() {
        let at = |k: &str| format!("sources[{i}] ({:?}).{k}", s.name);
        if !is_source_name(&s.name) {
            p(
                at("name"),
                "a non-empty name of letters, digits, '-', '_' or '.'",
                format!("{:?}", s.name),
            );
        }
        if !names.insert(s.name.clone()) {
            p(
                at("name"),
                "a name used by no other source",
                format!("{:?} again", s.name),
            );
        }
        if s.pbx.trim().is_empty() {
            p(
                at("pbx"),
                "the PBX name this source belongs to",
                "an empty string".into(),
            );
        }
        if s.timezone.parse::<chrono_tz::Tz>().is_err() {
            p(
                at("timezone"),
                "an IANA time zone such as UTC, Europe/Moscow, Asia/Tashkent",
                format!("{:?}", s.timezone),
            );
        }
        if Charset::from_name(&s.charset).is_none() {
            let all: Vec<&str> = Charset::ALL.iter().map(|c| c.name()).collect();
            p(
                at("charset"),
                &format!("one of {}", all.join(", ")),
                format!("{:?}", s.charset),
            );
        }
        if s.poll_interval_ms == 0 || s.poll_interval_ms > 60_000 {
            p(
                at("poll_interval_ms"),
                "1 to 60000 milliseconds",
                s.poll_interval_ms.to_string(),
            );
        }
        if s.stale_after_s == 0 || s.stale_after_s * 1000 < s.poll_interval_ms * 2 {
            p(
                at("stale_after_s"),
                "seconds, at least two poll intervals",
                s.stale_after_s.to_string(),
            );
        }
        if s.path.as_os_str().is_empty() {
            p(at("path"), "the log file path", "an empty string".into());
        } else if s.path.is_dir() {
            p(
                at("path"),
                "a file (it need not exist yet)",
                format!("the directory {}", s.path.display()),
            );
        }
        use calltrail_parsers::SourceKind as K;
        let is_cdr = matches!(s.kind, K::AsteriskCdrCsv | K::AsteriskCdrCustom);
        if let Some(layout) = &s.layout {
            if !is_cdr {
                p(
                    at("layout"),
                    "no `layout` (it applies to CDR sources only)",
                    format!("{layout:?}"),
                );
            } else if calltrail_parsers::cdr::CdrLayout::from_name(layout).is_none() {
                p(
                    at("layout"),
                    "auto, cdr_csv, cdr_custom or header_row",
                    format!("{layout:?}"),
                );
            }
        }
        if let Some(cols) = &s.columns {
            if !is_cdr {
                p(
                    at("columns"),
                    "no `columns` (they apply to CDR sources only)",
                    format!("{} names", cols.len()),
                );
            } else if let Err(e) = calltrail_parsers::cdr::CdrLayout::columns(cols) {
                p(at("columns"), "CDR variable names in file order (`-` for an ignored column), including start or calldate", e.to_string());
            }
        }
        for (j, pat) in s.rotated.iter().flatten().enumerate() {
            if let Err(e) = glob::Pattern::new(pat) {
                p(
                    format!("{}[{j}]", at("rotated")),
                    "a glob pattern",
                    format!("{pat:?} ({e})"),
                );
            }
        }
        if s.rotation_grace_s > 3600 {
            p(
                at("rotation_grace_s"),
                "0 to 3600 seconds",
                s.rotation_grace_s.to_string(),
            );
        }
    }
    for (name, o) in &cfg.snapshot {
        let at = |k: &str| format!("snapshot.{name}.{k}");
        match cfg.sources.iter().find(|s| &s.name == name) {
            Some(s) if matches!(s.kind, SourceKind::WintariffDbf | SourceKind::OktellCsv) => {}
            Some(s) => p(
                format!("snapshot.{name}"),
                "options for a wintariff_dbf or oktell_csv source",
                format!("a source of kind {}", s.kind),
            ),
            None => p(
                format!("snapshot.{name}"),
                "the name of a configured [[sources]] entry",
                format!("{name:?}, which no source has"),
            ),
        }
        if o.grace_s > 7 * 24 * 3600 {
            p(at("grace_s"), "0 to 604800 seconds", o.grace_s.to_string());
        }
        if o.rescan_s == 0 || o.rescan_s > 24 * 3600 {
            p(at("rescan_s"), "1 to 86400 seconds", o.rescan_s.to_string());
        }
        if !["auto", "ldid", "fixed"].contains(&o.charset_from.as_str()) {
            p(
                at("charset_from"),
                "auto, ldid or fixed",
                format!("{:?}", o.charset_from),
            );
        }
        if o.key_fields
            .as_ref()
            .is_some_and(|k| k.iter().any(|f| f.trim().is_empty()))
        {
            p(at("key_fields"), "DBF field names", "an empty name".into());
        }
    }
    let st = &cfg.state;
    if st.interval_minutes == 0 || 1440 % st.interval_minutes != 0 {
        p(
            "state.interval_minutes".into(),
            "a whole number of minutes that divides a day (5, 10, 15, 30, 60, …)",
            st.interval_minutes.to_string(),
        );
    }
    if st.short_abandon_s < 0 || st.sla_threshold_s < 0 {
        p(
            "state.short_abandon_s / state.sla_threshold_s".into(),
            "seconds, 0 or more",
            format!("{} / {}", st.short_abandon_s, st.sla_threshold_s),
        );
    }
    if st.sweep_interval_s == 0 || st.sweep_interval_s > 3600 {
        p(
            "state.sweep_interval_s".into(),
            "1 to 3600 seconds",
            st.sweep_interval_s.to_string(),
        );
    }
    if st.missed_expiry_hours == 0 {
        p(
            "state.missed_expiry_hours".into(),
            "1 or more hours",
            "0".into(),
        );
    }
    let b = &st.breach;
    if !(0.0..=1.0).contains(&b.service_level_min)
        || !(0.0..=1.0).contains(&b.service_level_hysteresis)
    {
        p(
            "state.breach.service_level_min / service_level_hysteresis".into(),
            "fractions between 0 and 1 (0.8 = 80 %)",
            format!("{} / {}", b.service_level_min, b.service_level_hysteresis),
        );
    }
    if b.window_minutes < st.interval_minutes {
        p(
            "state.breach.window_minutes".into(),
            "at least state.interval_minutes",
            b.window_minutes.to_string(),
        );
    }
    if let Some(k) = &cfg.kafka {
        if k.brokers.trim().is_empty() {
            p(
                "kafka.brokers".into(),
                "host:port[,host:port…]",
                "an empty string".into(),
            );
        }
        if k.topic.trim().is_empty()
            || k.topic.len() > 249
            || !k
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            p(
                "kafka.topic".into(),
                "a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)",
                format!("{:?}", k.topic),
            );
        }
    }
    if !plausible_address(&cfg.email.from) {
        p(
            "email.from".into(),
            "an email address",
            format!("{:?}", cfg.email.from),
        );
    }
    if let Some(smtp) = &cfg.email.smtp {
        if !["none", "starttls", "tls"].contains(&smtp.tls.as_str()) {
            p(
                "email.smtp.tls".into(),
                "none, starttls or tls",
                format!("{:?}", smtp.tls),
            );
        }
        if smtp.host.trim().is_empty() {
            p(
                "email.smtp.host".into(),
                "the SMTP relay's host name",
                "an empty string".into(),
            );
        }
        if smtp.password.is_some() && smtp.password_env.is_some() {
            p(
                "email.smtp.password_env".into(),
                "either password or password_env, not both",
                "both".into(),
            );
        }
        if (smtp.password.is_some() || smtp.password_env.is_some()) && smtp.username.is_none() {
            p(
                "email.smtp.username".into(),
                "a user name when a password is given",
                "none".into(),
            );
        }
        if let Some(ca) = &smtp.ca_file {
            if !ca.is_file() {
                p(
                    "email.smtp.ca_file".into(),
                    "a readable PEM file",
                    format!("{} (missing)", ca.display()),
                );
            }
        }
    }
    let rule = &cfg.rules.missed_call_email;
    if rule.enabled {
        if rule.to.is_empty() {
            p(
                "rules.missed_call_email.to".into(),
                "at least one recipient (or enabled = false)",
                "an empty list".into(),
            );
        }
        for (i, a) in rule.to.iter().enumerate() {
            if !plausible_address(a) {
                p(
                    format!("rules.missed_call_email.to[{i}]"),
                    "an email address",
                    format!("{a:?}"),
                );
            }
        }
    }
    out.extend(cfg.http.problems());
    out.extend(cfg.query.problems());
    out.extend(cfg.lookup.problems());
    out.extend(cfg.agi.problems());
    out.extend(crate::rules::config::problems(
        &cfg.rules.list,
        &cfg.calendars,
    ));
    out.extend(cfg.callbacks.problems());
    out.extend(cfg.sms.problems());
    out.extend(cfg.wall.problems());
    out.extend(cfg.reports.problems());
    let zone = crate::numbers::zone(cfg);
    for (name, c) in &cfg.calendars {
        for e in crate::calendar::Calendar::problems(c, zone) {
            let expected =
                if e.location.starts_with("holidays") || e.location.starts_with("open_dates") {
                    "dates YYYY-MM-DD (open_dates: date = \"HH:MM-HH:MM\")"
                } else if e.location == "timezone" {
                    "an IANA time zone"
                } else {
                    "Asterisk time specs \"times,weekdays,mdays,months[,timezone]\" (docs/rules.md)"
                };
            out.push(Problem {
                location: format!("calendars.{name}.{}", e.location),
                expected: expected.into(),
                found: e.why,
            });
        }
    }
    out
}

/// Whether `name` can name a source: letters, digits, '-', '_' or '.' (it
/// is the first part of every event id, `<source>:<fp>:<offset>`).
pub fn is_source_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// What is worth saying about a valid config without being wrong: no
/// `[[sources]]` (`run` has nothing to follow; `import`, `query` and
/// `rederive` work), a source whose path does not exist (yet: a log may
/// appear later, and `run` follows it once it does). One sentence each.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if cfg.sources.is_empty() {
        out.push(
            "no [[sources]]: `run` has nothing to follow (import, query and rederive work without them)"
                .to_string(),
        );
    }
    for s in &cfg.sources {
        if let Some(why) = missing_path(&s.path) {
            out.push(format!(
                "source {:?}: path {} {why} (`run` reads it once it appears)",
                s.name,
                s.path.display()
            ));
        }
    }
    out
}

/// Why `path` cannot be seen, when it cannot: "does not exist", or the
/// error that prevented looking.
pub fn missing_path(path: &std::path::Path) -> Option<String> {
    match path.try_exists() {
        Ok(true) => None,
        Ok(false) => Some("does not exist".into()),
        Err(e) => Some(format!("cannot be checked ({e})")),
    }
}

/// What the environment must provide for `run` (not needed to query or
/// import): checked by `check-config`, which runs where the daemon will.
pub fn environment_problems(cfg: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(var) = cfg
        .email
        .smtp
        .as_ref()
        .and_then(|s| s.password_env.as_ref())
    {
        if std::env::var_os(var).is_none() {
            out.push(Problem {
                location: "email.smtp.password_env".into(),
                expected: format!("the environment variable {var} to be set"),
                found: "it is not set".into(),
            });
        }
    }
    // What `run` refuses: a listener beyond loopback that authorizes nobody.
    let open = |addr: Result<std::net::SocketAddr, _>| addr.is_ok_and(|a| !a.ip().is_loopback());
    let http_token = cfg.http.token_file.is_some()
        || std::env::var("CALLTRAIL_TOKEN").is_ok_and(|v| !v.trim().is_empty());
    if cfg.http.enabled
        && open(cfg.http.addr())
        && !http_token
        && cfg.http.allow.is_empty()
        && !cfg.http.has_logins()
    {
        out.push(Problem {
            location: "http.listen".into(),
            expected: "a loopback address, or [[http.users]] / [[http.tokens]], [http] token_file (or CALLTRAIL_TOKEN) or [http] allow for a listener others can reach".into(),
            found: format!("{:?} with neither", cfg.http.listen),
        });
    }
    if cfg.agi.enabled && open(cfg.agi.addr()) && cfg.agi.allow.is_empty() {
        out.push(Problem {
            location: "agi.listen".into(),
            expected: "a loopback address, or [agi] allow for a listener others can reach".into(),
            found: format!("{:?} without an allow list", cfg.agi.listen),
        });
    }
    out
}

/// A cheap shape check; lettre does the real parsing when mail is built.
pub fn plausible_address(a: &str) -> bool {
    let a = a.trim();
    match a.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && !d.is_empty()
                && !a
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_without_sources_is_valid_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            crate::config::parse("[store]\npath = \"s.duckdb\"\n", &dir.path().join("c.toml"))
                .unwrap();
        assert!(cfg.sources.is_empty());
        let w = warnings(&cfg);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("no [[sources]]"), "{w:?}");
    }

    /// `[store] memory_budget` and an explicit `memory_limit` within it.
    #[test]
    fn the_memory_budget_and_the_limit_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let parse = |store: &str| crate::config::parse(store, &dir.path().join("c.toml"));
        let problems = |store: &str| match parse(store) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
            }
            other => panic!("{store}: {other:?}"),
        };
        // Defaults: 512MB, DuckDB 40 % of it.
        let cfg = parse("[store]\n").unwrap();
        assert_eq!(cfg.store.memory_budget, "512MB");
        assert_eq!(cfg.store.limits().memory_limit, 204_800_000);
        // An explicit limit within the budget wins.
        let cfg = parse("[store]\nmemory_budget = \"2GB\"\nmemory_limit = \"1.5GB\"\n").unwrap();
        assert_eq!(cfg.store.limits().memory_limit, 1_500_000_000);
        assert_eq!(cfg.store.limits().budget, 2_000_000_000);
        // Beyond the default budget: told what to do.
        let p = problems("[store]\nmemory_limit = \"1GB\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "store.memory_limit: expected at most store.memory_budget (\"512MB\", the default)"
            ),
            "{p:?}"
        );
        assert!(p[0].contains("raise memory_budget too"), "{p:?}");
        assert!(p[0].ends_with("found \"1GB\""), "{p:?}");
        let p = problems("[store]\nmemory_budget = \"1GB\"\nmemory_limit = \"1GiB\"\n");
        assert!(
            p[0].starts_with("store.memory_limit: expected at most store.memory_budget (\"1GB\")"),
            "{p:?}"
        );
        // Not a size, too small.
        let p = problems("[store]\nmemory_budget = \"half\"\n");
        assert!(
            p[0].starts_with("store.memory_budget: expected a size such as \"512MB\""),
            "{p:?}"
        );
        let p = problems("[store]\nmemory_budget = \"100MB\"\n");
        assert!(
            p[0].starts_with("store.memory_budget: expected at least 128MB"),
            "{p:?}"
        );
        assert!(parse("[store]\nmemory_budget = \"128MB\"\n").is_ok());
    }

    #[test]
    fn a_missing_source_path_is_a_warning_with_its_name_and_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("queue_log"), "").unwrap();
        let text = r#"
[[sources]]
name = "here"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "p"
[[sources]]
name = "later"
kind = "asterisk_cdr_csv"
path = "cdr/Master.csv"
pbx = "p"
"#;
        let cfg = crate::config::parse(text, &dir.path().join("c.toml")).unwrap();
        let w = warnings(&cfg);
        assert_eq!(w.len(), 1, "{w:?}");
        let missing = dir.path().join("cdr/Master.csv");
        assert_eq!(
            w[0],
            format!(
                "source \"later\": path {} does not exist (`run` reads it once it appears)",
                missing.display()
            )
        );
    }

    #[test]
    fn source_names() {
        for ok in ["q", "pbx1-queue", "a_b.c", "X9"] {
            assert!(is_source_name(ok), "{ok}");
        }
        for bad in ["", " ", "a:b", "a b", "q/1", "é"] {
            assert!(!is_source_name(bad), "{bad}");
        }
    }
}
