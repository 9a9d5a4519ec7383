//! The texts of rule actions: minijinja templates (`{{ caller }}`,
//! `{{ queue }}`, `{% if name %}…{% endif %}`) over the variables of the
//! event (docs/rules.md). Values from the PBX are attacker-controlled: they
//! arrive here without control characters and bounded (see
//! [`super::inline`]), and nothing rendered is ever evaluated again.

use minijinja::{Environment, UndefinedBehavior};
use std::collections::BTreeMap;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    // A misspelt variable is an error at check time, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// The variables every template may use.
pub const VARIABLES: [&str; 25] = [
    "rule",
    "when",
    "caller",
    "caller_raw",
    "name",
    "class",
    "queue",
    "agent",
    "pbx",
    "wait_s",
    "talk_s",
    "status",
    "at",
    "at_utc",
    "event_id",
    // An SLA breach's figures (empty for other events).
    "breach_kind",
    "value",
    "value_text",
    "threshold",
    "threshold_text",
    "started",
    "started_utc",
    "ended",
    "ended_utc",
    "duration_min",
];

/// Whether `text` compiles and uses only known variables.
pub fn check(text: &str) -> Result<(), String> {
    let env = env();
    let t = env.template_from_str(text).map_err(|e| e.to_string())?;
    let mut unknown: Vec<String> = t
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !VARIABLES.contains(&v.as_str()))
        .collect();
    unknown.sort();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown variable {} (known: {})",
            unknown.join(", "),
            VARIABLES.join(", ")
        ));
    }
    let vars: BTreeMap<&str, &str> = VARIABLES.iter().map(|v| (*v, "x")).collect();
    render(text, &vars).map(|_| ())
}

/// Renders `text` with `vars`.
pub fn render(text: &str, vars: &BTreeMap<&str, &str>) -> Result<String, String> {
    let env = env();
    let t = env.template_from_str(text).map_err(|e| e.to_string())?;
    t.render(vars).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses_unknown_variables() {
        let mut v = BTreeMap::new();
        v.insert("caller", "+79161234567");
        v.insert("name", "");
        let out = render(
            "Missed {{ caller }}{% if name %} ({{ name }}){% endif %}",
            &v,
        )
        .unwrap();
        assert_eq!(out, "Missed +79161234567");
        assert!(check("{{ caller }} in {{ queue }}").is_ok());
        assert!(check("{{ callr }}").is_err());
        assert!(check("{{ caller ").is_err());
        // A value is text, never template code.
        v.insert("name", "{{ caller }}");
        assert_eq!(render("{{ name }}", &v).unwrap(), "{{ caller }}");
    }
}
