//! What a reload (SIGHUP) of the config file may change in a running
//! daemon, and what needs a restart (docs/rules.md "Reloading").
//!
//! Live: `[[rules]]` and `[calendars.NAME]`, as one unit (a rule names its
//! calendar). Everything else is set up once at start (the store, the
//! listeners, Kafka, the senders, each source's reader, how numbers are
//! keyed): a change there is named ("needs a restart: kafka.brokers") and
//! left as it runs. [`plan`] is pure: it compares the running config with
//! the new one (already loaded and checked) and says what to apply.

use super::{validate, Config};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// What the senders were set up for when the daemon started: the kinds of
/// action whose machinery exists only when a rule had them then (the SMS
/// gateway, the callback spool and its follower).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub sms: bool,
    pub callbacks: bool,
}

impl Started {
    /// What `cfg` (the config the daemon starts with) sets up.
    pub fn of(cfg: &Config) -> Started {
        let has = |a: &str| cfg.rules.list.iter().any(|r| r.action == a);
        Started {
            sms: has("sms"),
            callbacks: has("callback"),
        }
    }
}

/// The outcome of comparing the running config with a new one.
#[derive(Debug)]
pub struct Plan {
    /// The config to run on from now on, when the live part changed: the
    /// running one with the new rules and calendars. `None`: keep it.
    pub apply: Option<Config>,
    /// What changed live, for the log (`rules: added x; changed y`).
    pub changed: Vec<String>,
    /// What changed in the live part but waits for a restart with it
    /// (the reason is in `restart`).
    pub held: Vec<String>,
    /// Keys that changed but need a restart (left as they run).
    pub restart: Vec<String>,
}

/// Compares the running config with `new` (loaded and checked like at
/// start); `started` is what the daemon set up at start.
pub fn plan(running: &Config, new: &Config, started: Started) -> Plan {
    let mut restart = restart_keys(running, new);
    let mut changed = Vec::new();
    by_name(
        "rules",
        &names(&running.rules.list, |r| &r.name),
        &names(&new.rules.list, |r| &r.name),
        &mut changed,
    );
    by_name(
        "calendars",
        &running
            .calendars
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
        &new.calendars.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        &mut changed,
    );
    // The rules' order is the order of their actions within a step.
    let order = |c: &Config| {
        c.rules
            .list
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    if changed.is_empty() && order(running) != order(new) {
        changed.push("rules: reordered".into());
    }
    if changed.is_empty() {
        return Plan {
            apply: None,
            changed,
            held: Vec::new(),
            restart,
        };
    }
    let refuse = |why: String, restart: &mut Vec<String>| {
        restart.push(format!("[[rules]] and [calendars] ({why})"));
    };
    // The older [rules.missed_call_email] is decided at ingest, by each
    // source's reader: with it changing, applying [[rules]] alone could
    // mail a missed call twice (both forms) or not at all.
    if differs(
        &running.rules.missed_call_email,
        &new.rules.missed_call_email,
    ) {
        refuse(
            "they come with a change of [rules.missed_call_email]".into(),
            &mut restart,
        );
        return Plan {
            apply: None,
            changed: Vec::new(),
            held: changed,
            restart,
        };
    }
    let needs = |a: &str| new.rules.list.iter().any(|r| r.action == a);
    let mut missing = Vec::new();
    if needs("sms") && !started.sms {
        missing.push("the first sms rule: the SMS gateway is set up at start");
    }
    if needs("callback") && !started.callbacks {
        missing.push("the first callback rule: the callback spool and its follower start with one");
    }
    if !missing.is_empty() {
        refuse(missing.join("; "), &mut restart);
        return Plan {
            apply: None,
            changed: Vec::new(),
            held: changed,
            restart,
        };
    }
    let mut apply = running.clone();
    apply.rules.list = new.rules.list.clone();
    apply.calendars = new.calendars.clone();
    // Checked again as they will run: with the running [sms], [callbacks],
    // sources' zone… (a rule may need a setting only the new file has).
    let problems = validate::check(&apply);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        refuse(
            format!("with the settings that are running: {}", list.join("; ")),
            &mut restart,
        );
        return Plan {
            apply: None,
            changed: Vec::new(),
            held: changed,
            restart,
        };
    }
    Plan {
        apply: Some(apply),
        changed,
        held: Vec::new(),
        restart,
    }
}

/// Values compared as they are built from the file (defaults filled in,
/// paths resolved): the config's types all print every field, and hold
/// ordered maps only, so equal values print the same.
fn differs<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

fn names<'a, T>(list: &'a [T], name: impl Fn(&'a T) -> &'a String) -> BTreeMap<&'a str, &'a T> {
    list.iter().map(|t| (name(t).as_str(), t)).collect()
}

/// `what: added a, b; changed c; removed d`, when anything did.
fn by_name<T: Debug>(
    what: &str,
    old: &BTreeMap<&str, &T>,
    new: &BTreeMap<&str, &T>,
    out: &mut Vec<String>,
) {
    let added: Vec<&str> = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .copied()
        .collect();
    let removed: Vec<&str> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .copied()
        .collect();
    let changed: Vec<&str> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| differs(o, *v)))
        .map(|(k, _)| *k)
        .collect();
    let mut parts = Vec::new();
    for (verb, names) in [("added", added), ("changed", changed), ("removed", removed)] {
        if !names.is_empty() {
            parts.push(format!("{verb} {}", names.join(", ")));
        }
    }
    if !parts.is_empty() {
        out.push(format!("{what}: {}", parts.join("; ")));
    }
}

/// Pushes `prefix.field` for each named field that differs, then `prefix`
/// alone when the section differs in a field not named.
macro_rules! fields {
    ($out:expr, $prefix:expr, $a:expr, $b:expr, [$($f:ident),* $(,)?]) => {{
        let before = $out.len();
        $(
            if differs(&$a.$f, &$b.$f) {
                $out.push(format!("{}.{}", $prefix, stringify!($f)));
            }
        )*
        if $out.len() == before && differs(&$a, &$b) {
            $out.push($prefix.to_string());
        }
    }};
}

/// Every key of `new` that differs from `running` outside the live part.
pub fn restart_keys(running: &Config, new: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let (a, b) = (running, new);
    fields!(
        out,
        "store",
        a.store,
        b.store,
        [path, memory_limit, threads]
    );
    fields!(
        out,
        "numbers",
        a.numbers,
        b.numbers,
        [default_region, max_internal_len, match_last_digits]
    );
    sources(a, b, &mut out);
    match (&a.kafka, &b.kafka) {
        (Some(x), Some(y)) => fields!(
            out,
            "kafka",
            x,
            y,
            [brokers, topic, client_id, delivery_timeout_ms, properties]
        ),
        (None, None) => {}
        _ => out.push("kafka".into()),
    }
    fields!(out, "email", a.email, b.email, [from, outbox, smtp]);
    fields!(
        out,
        "http",
        a.http,
        b.http,
        [
            enabled,
            listen,
            token_file,
            allow,
            admin_token_file,
            users,
            tokens,
            session_key_file
        ]
    );
    fields!(out, "agi", a.agi, b.agi, [enabled, listen, allow]);
    // Sections without names for their fields: the section.
    for (name, x, y) in [
        ("agents", dbg(&a.agents), dbg(&b.agents)),
        ("state", dbg(&a.state), dbg(&b.state)),
        ("snapshot", dbg(&a.snapshot), dbg(&b.snapshot)),
        ("query", dbg(&a.query), dbg(&b.query)),
        ("lookup", dbg(&a.lookup), dbg(&b.lookup)),
        ("callbacks", dbg(&a.callbacks), dbg(&b.callbacks)),
        ("sms", dbg(&a.sms), dbg(&b.sms)),
        ("wall", dbg(&a.wall), dbg(&b.wall)),
        ("reports", dbg(&a.reports), dbg(&b.reports)),
    ] {
        if x != y {
            out.push(name.into());
        }
    }
    if differs(&a.rules.missed_call_email, &b.rules.missed_call_email) {
        out.push("rules.missed_call_email".into());
    }
    // Whatever else there is (a section added to the config later): the
    // whole config outside the live part.
    if out.is_empty() {
        let outside = |c: &Config| {
            let mut c = c.clone();
            c.rules.list.clear();
            c.calendars.clear();
            dbg(&c)
        };
        if outside(a) != outside(b) {
            out.push("a setting outside [[rules]] and [calendars]".into());
        }
    }
    out
}

fn dbg<T: Debug>(v: &T) -> String {
    format!("{v:?}")
}

/// Sources by name: added, removed, or a key changed.
fn sources(a: &Config, b: &Config, out: &mut Vec<String>) {
    let old = names(&a.sources, |s| &s.name);
    let new = names(&b.sources, |s| &s.name);
    for (name, s) in &new {
        match old.get(name) {
            None => out.push(format!("sources.{name} (added)")),
            Some(o) => fields!(
                out,
                format!("sources.{name}"),
                o,
                s,
                [
                    kind,
                    path,
                    pbx,
                    timezone,
                    charset,
                    poll_interval_ms,
                    rotated,
                    rotation_grace_s,
                    stale_after_s,
                    layout,
                    columns,
                ]
            ),
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(format!("sources.{name} (removed)"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"
[store]
path = "s.duckdb"
[email]
outbox = "outbox"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "UTC"
[calendars.office]
timezone = "UTC"
hours = ["09:00-17:59,mon-fri,*,*"]
[[rules]]
name = "missed"
when = "missed_opened"
action = "email"
to = ["sup@example.com"]
"#;

    fn parse(text: &str) -> Config {
        crate::config::parse(text, Path::new("/etc/calltrail/c.toml")).expect("valid config")
    }

    fn started(text: &str) -> Started {
        Started::of(&parse(text))
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let p = plan(&parse(BASE), &parse(BASE), started(BASE));
        assert!(p.apply.is_none());
        assert!(p.changed.is_empty(), "{:?}", p.changed);
        assert!(p.restart.is_empty(), "{:?}", p.restart);
    }

    #[test]
    fn the_sample_config_equals_itself() {
        // The fullest config there is: every section prints the same twice.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/calltrail.toml");
        let text = std::fs::read_to_string(&path).expect("sample");
        let (a, b) = (
            crate::config::parse(&text, &path).expect("sample is valid"),
            crate::config::parse(&text, &path).expect("sample is valid"),
        );
        assert!(restart_keys(&a, &b).is_empty());
        assert!(plan(&a, &b, Started::of(&a)).apply.is_none());
    }

    #[test]
    fn a_changed_rule_and_calendar_apply_live() {
        let new = BASE
            .replace("hours = [\"09:00-17:59", "hours = [\"08:00-17:59")
            .replace("to = [\"sup@example.com\"]", "to = [\"boss@example.com\"]")
            + r#"
[[rules]]
name = "hook"
when = "call_answered"
action = "webhook"
url = "http://127.0.0.1:9/hook"
"#;
        let p = plan(&parse(BASE), &parse(&new), started(BASE));
        assert_eq!(
            p.changed,
            vec![
                "rules: added hook; changed missed".to_string(),
                "calendars: changed office".to_string()
            ]
        );
        assert!(p.restart.is_empty(), "{:?}", p.restart);
        let applied = p.apply.expect("applied");
        assert_eq!(applied.rules.list.len(), 2);
        assert_eq!(applied.rules.list[0].to, vec!["boss@example.com"]);
        assert_eq!(
            applied.calendars["office"].hours,
            vec!["08:00-17:59,mon-fri,*,*"]
        );
    }

    #[test]
    fn a_removed_rule_applies_live() {
        let new = BASE.replace("name = \"missed\"", "name = \"other\"");
        let p = plan(&parse(BASE), &parse(&new), started(BASE));
        assert_eq!(p.changed, vec!["rules: added other; removed missed"]);
        assert!(p.apply.is_some());
    }

    #[test]
    fn what_needs_a_restart_is_named_and_left_as_it_runs() {
        let new = BASE
            .replace("path = \"s.duckdb\"", "path = \"t.duckdb\"\nthreads = 2")
            .replace("path = \"queue_log\"", "path = \"queue_log2\"")
            .replace(
                "timezone = \"UTC\"\n[calendars",
                "timezone = \"Europe/Moscow\"\n[calendars",
            )
            .replace(
                "outbox = \"outbox\"",
                "outbox = \"outbox\"\nfrom = \"ct@example.com\"",
            )
            + r#"
[numbers]
default_region = "UA"
[kafka]
brokers = "127.0.0.1:9092"
[http]
listen = "127.0.0.1:9999"
[[sources]]
name = "cdr"
kind = "asterisk_cdr_csv"
path = "Master.csv"
pbx = "pbx1"
[sms]
mobile_only = false
[state]
short_abandon_s = 7
"#;
        let p = plan(&parse(BASE), &parse(&new), started(BASE));
        assert_eq!(
            p.restart,
            vec![
                "store.path",
                "store.threads",
                "numbers.default_region",
                "sources.cdr (added)",
                "sources.q.path",
                "sources.q.timezone",
                "kafka",
                "email.from",
                "http.listen",
                "state",
                "sms",
            ]
        );
        assert!(p.apply.is_none(), "the rules did not change");
        assert!(p.changed.is_empty());
    }

    #[test]
    fn a_removed_source_and_a_changed_broker_are_named() {
        let with =
            |brokers: &str| format!("{BASE}\n[kafka]\nbrokers = \"{brokers}\"\ntopic = \"t\"\n");
        let old = with("a:9092");
        let new = with("b:9092").replace("name = \"q\"", "name = \"q2\"");
        let p = plan(&parse(&old), &parse(&new), started(&old));
        assert_eq!(
            p.restart,
            vec!["sources.q2 (added)", "sources.q (removed)", "kafka.brokers"]
        );
    }

    #[test]
    fn live_and_restart_changes_together_apply_the_live_part_only() {
        let new = BASE.replace("sup@example.com", "boss@example.com")
            + "\n[lookup]\npolicy = \"first_agent\"\n";
        // Written out, a default is no change.
        let same = format!("{BASE}\n[lookup]\npolicy = \"last_agent\"\n");
        assert!(restart_keys(&parse(BASE), &parse(&same)).is_empty());
        let p = plan(&parse(BASE), &parse(&new), started(BASE));
        assert_eq!(p.changed, vec!["rules: changed missed"]);
        assert_eq!(p.restart, vec!["lookup"]);
        let applied = p.apply.expect("rules applied");
        // The applied config keeps what runs outside the rules.
        assert_eq!(applied.lookup.policy, parse(BASE).lookup.policy);
        assert_eq!(applied.rules.list[0].to, vec!["boss@example.com"]);
    }

    #[test]
    fn the_first_sms_or_callback_rule_needs_a_restart() {
        let sms = BASE.to_string()
            + r#"
[[rules]]
name = "text"
when = "missed_opened"
action = "sms"
text = "We missed your call"
"#;
        let p = plan(&parse(BASE), &parse(&sms), started(BASE));
        assert!(p.apply.is_none());
        assert!(p.changed.is_empty());
        assert_eq!(p.held, vec!["rules: added text"]);
        assert_eq!(p.restart.len(), 1, "{:?}", p.restart);
        assert!(
            p.restart[0].contains("the first sms rule"),
            "{:?}",
            p.restart
        );
        // Started with one: another is live.
        let more = sms.replace("name = \"text\"", "name = \"text2\"");
        let p = plan(&parse(&sms), &parse(&more), started(&sms));
        assert_eq!(p.changed, vec!["rules: added text2; removed text"]);
        assert!(p.apply.is_some());
        // Started with one that is gone now: still set up, still live.
        let p = plan(&parse(BASE), &parse(&more), started(&sms));
        assert!(p.apply.is_some(), "{:?}", p.restart);

        let cb = BASE.to_string()
            + r#"
[[rules]]
name = "back"
when = "missed_opened"
action = "callback"
"#;
        let p = plan(&parse(BASE), &parse(&cb), started(BASE));
        assert!(p.apply.is_none());
        assert!(
            p.restart[0].contains("the first callback rule"),
            "{:?}",
            p.restart
        );
    }

    #[test]
    fn rules_with_the_older_missed_call_email_changing_need_a_restart() {
        let legacy = BASE.split("[[rules]]").next().expect("head").to_string()
            + "[rules.missed_call_email]\nto = [\"sup@example.com\"]\n";
        // From the table form to [[rules]]: both forms would run.
        let p = plan(&parse(&legacy), &parse(BASE), started(&legacy));
        assert!(p.apply.is_none());
        assert!(p.restart.contains(&"rules.missed_call_email".to_string()));
        assert!(
            p.restart
                .iter()
                .any(|k| k.contains("[rules.missed_call_email]")),
            "{:?}",
            p.restart
        );
    }
}
