//! Agent identity: one id per agent whatever the PBX wrote.
//!
//! Default rule, applied after the configured alias map (exact match on the
//! raw text, then on the resolved id):
//! - empty, `NONE` → no agent;
//! - `Local/201@from-queue/n` → `201` (the part before `@`);
//! - `PJSIP/201`, `SIP/201`, `IAX2/201`, `Agent/1001`, `DAHDI/1` → the part after `/`;
//! - a CDR channel `PJSIP/201-0000a1b2` → `201` (the `-<hex>` channel suffix dropped);
//! - `1001`, or free text such as `Paty Marin` → itself, trimmed.

use crate::event::Str;
use rustc_hash::FxHashMap;

/// Resolves raw agent strings to agent ids, interning them.
#[derive(Debug, Default, Clone)]
pub struct AgentResolver {
    aliases: FxHashMap<String, Str>,
    /// Raw text → index into `resolved` (an index, so that a hit can
    /// return borrows of `resolved`).
    interned: FxHashMap<Box<str>, u32>,
    resolved: Vec<Resolved>,
    /// Index of the resolution returned last (one compare instead of a
    /// hash lookup when consecutive lines name the same agent).
    last: usize,
}

/// One cached resolution: the raw text (shared) and the agent id.
#[derive(Debug, Clone)]
struct Resolved {
    raw: Str,
    id: Option<Str>,
}

impl AgentResolver {
    /// `aliases` maps a raw member name or interface (or a resolved id) to the agent id.
    pub fn new(aliases: impl IntoIterator<Item = (String, String)>) -> Self {
        AgentResolver {
            aliases: aliases
                .into_iter()
                .map(|(k, v)| (k.trim().to_string(), Str::from(v.trim())))
                .collect(),
            interned: FxHashMap::default(),
            resolved: Vec::new(),
            last: 0,
        }
    }

    /// The agent id for `raw`, or `None` for sentinels.
    pub fn resolve(&mut self, raw: &str) -> Option<Str> {
        self.resolve_ref(raw).1.cloned()
    }

    /// Borrows of the shared copy of `raw` and of its agent id (`None` for
    /// sentinels): one hash lookup on a hit, no allocation, no reference
    /// count traffic.
    pub fn resolve_ref(&mut self, raw: &str) -> (&Str, Option<&Str>) {
        let last = self.last;
        if last < self.resolved.len() && *self.resolved[last].raw == *raw {
            let r = &self.resolved[last];
            return (&r.raw, r.id.as_ref());
        }
        if let Some(&i) = self.interned.get(raw) {
            if (i as usize) < self.resolved.len() {
                self.last = i as usize;
                let r = &self.resolved[i as usize];
                return (&r.raw, r.id.as_ref());
            }
        }
        let id = self.compute(raw);
        if self.resolved.len() > 100_000 {
            self.interned.clear();
            self.resolved.clear();
        }
        let i = self.resolved.len();
        self.last = i;
        self.resolved.push(Resolved {
            raw: Str::from(raw),
            id,
        });
        self.interned.insert(raw.into(), i as u32);
        let r = &self.resolved[i];
        (&r.raw, r.id.as_ref())
    }

    fn compute(&self, raw: &str) -> Option<Str> {
        let t = raw.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("NONE") {
            return None;
        }
        if let Some(a) = self.aliases.get(t) {
            return Some(a.clone());
        }
        let id = default_agent_id(t);
        if id.is_empty() {
            return None;
        }
        if let Some(a) = self.aliases.get(id) {
            return Some(a.clone());
        }
        Some(Str::from(id))
    }
}

/// The default rule without aliases (see the module docs).
pub fn default_agent_id(raw: &str) -> &str {
    let t = raw.trim();
    let Some((tech, rest)) = t.split_once('/') else {
        return t;
    };
    // Free text with a slash ("Sales / Day") is not an interface.
    if tech.is_empty() || !tech.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return t;
    }
    if tech.eq_ignore_ascii_case("Local") {
        let end = rest.find(['@', '/']).unwrap_or(rest.len());
        return rest[..end].trim();
    }
    let mut id = rest.split('/').next().unwrap_or(rest);
    if let Some(at) = id.find('@') {
        id = &id[..at];
    }
    // Channel names carry a "-<hex>" sequence suffix: PJSIP/201-0000a1b2.
    if let Some((base, suffix)) = id.rsplit_once('-') {
        if !base.is_empty() && suffix.len() >= 6 && suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            id = base;
        }
    }
    // SIP/trunk;2 style (Local channel halves) — drop the ";n".
    if let Some((base, _)) = id.split_once(';') {
        id = base;
    }
    id.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule() {
        for (raw, want) in [
            ("PJSIP/201", "201"),
            ("SIP/201", "201"),
            ("Local/201@from-queue/n", "201"),
            ("Local/2004@from-internal/n", "2004"),
            ("Agent/1001", "1001"),
            ("1001", "1001"),
            ("PJSIP/201-0000a1b2", "201"),
            ("SIP/8007-00000012", "8007"),
            ("Paty Marin", "Paty Marin"),
            ("Sales / Day", "Sales / Day"),
            ("  PJSIP/7009 ", "7009"),
        ] {
            assert_eq!(default_agent_id(raw), want, "{raw}");
        }
    }

    #[test]
    fn aliases_and_sentinels() {
        let mut r = AgentResolver::new([
            ("Paty Marin".to_string(), "301".to_string()),
            ("7051".to_string(), "anna".to_string()),
        ]);
        assert_eq!(r.resolve("Paty Marin").as_deref(), Some("301"));
        assert_eq!(r.resolve("PJSIP/7051").as_deref(), Some("anna"));
        assert_eq!(r.resolve("NONE"), None);
        assert_eq!(r.resolve(""), None);
        assert_eq!(r.resolve("PJSIP/201").as_deref(), Some("201"));
        // Repeats and near-repeats (the one-entry memo) resolve the same.
        assert_eq!(r.resolve("PJSIP/201").as_deref(), Some("201"));
        assert_eq!(r.resolve("PJSIP/20").as_deref(), Some("20"));
        assert_eq!(r.resolve_ref("NONE").1, None);
        assert_eq!(&**r.resolve_ref("NONE").0, "NONE");
        assert_eq!(r.resolve("PJSIP/201").as_deref(), Some("201"));
    }
}
