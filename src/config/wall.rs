//! `[wall]`: the wallboard's language, when the page calls itself stale
//! without news, and the colour thresholds of its figures. docs/http.md
//! ("The wallboard") is the manual.

use super::Problem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[wall]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WallSection {
    /// `auto` (the browser's Accept-Language), `en` or `ru`.
    pub language: String,
    /// The page says "data is stale" when no board arrived for this long
    /// (the daemon is gone, or the network).
    pub page_stale_after_s: u64,
    /// Per figure, `{ amber = …, red = … }`: the colour from that value on
    /// (service levels: below it).
    pub thresholds: BTreeMap<String, Threshold>,
}

/// One figure's thresholds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub amber: f64,
    pub red: f64,
}

/// Figures that can be coloured, and whether a lower value is worse.
pub const COLOURED: [(&str, bool); 7] = [
    ("waiting", false),
    ("longest_wait_s", false),
    ("service_level_today", true),
    ("service_level_hour", true),
    ("asa_s", false),
    ("missed_open", false),
    ("abandoned_today", false),
];

impl Default for WallSection {
    fn default() -> Self {
        let t = |amber, red| Threshold { amber, red };
        WallSection {
            language: "auto".into(),
            page_stale_after_s: 15,
            thresholds: BTreeMap::from([
                ("waiting".to_string(), t(3.0, 6.0)),
                ("longest_wait_s".to_string(), t(30.0, 60.0)),
                ("service_level_today".to_string(), t(0.8, 0.6)),
                ("service_level_hour".to_string(), t(0.8, 0.6)),
                ("asa_s".to_string(), t(20.0, 40.0)),
                ("missed_open".to_string(), t(1.0, 5.0)),
            ]),
        }
    }
}

impl WallSection {
    /// The thresholds as the page reads them: `{figure: {at: [amber, red],
    /// lower_is_worse}}`.
    pub fn thresholds_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (name, t) in &self.thresholds {
            let lower = COLOURED.iter().any(|(n, l)| n == name && *l);
            m.insert(
                name.clone(),
                serde_json::json!({ "at": [t.amber, t.red], "lower_is_worse": lower }),
            );
        }
        serde_json::Value::Object(m)
    }

    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !["auto", "en", "ru"].contains(&self.language.as_str()) {
            out.push(Problem {
                location: "wall.language".into(),
                expected: "\"auto\", \"en\" or \"ru\"".into(),
                found: format!("{:?}", self.language),
            });
        }
        if self.page_stale_after_s < 3 {
            out.push(Problem {
                location: "wall.page_stale_after_s".into(),
                expected: "3 seconds or more (the board comes every second)".into(),
                found: self.page_stale_after_s.to_string(),
            });
        }
        for (name, t) in &self.thresholds {
            let Some((_, lower)) = COLOURED.iter().find(|(n, _)| n == name) else {
                out.push(Problem {
                    location: format!("wall.thresholds.{name}"),
                    expected: format!("one of {}", COLOURED.map(|(n, _)| n).join(", ")),
                    found: name.clone(),
                });
                continue;
            };
            let ordered = if *lower {
                t.red <= t.amber
            } else {
                t.red >= t.amber
            };
            if !ordered || !t.amber.is_finite() || !t.red.is_finite() {
                out.push(Problem {
                    location: format!("wall.thresholds.{name}"),
                    expected: if *lower {
                        "red at or below amber (lower is worse)".into()
                    } else {
                        "red at or above amber".into()
                    },
                    found: format!("amber = {}, red = {}", t.amber, t.red),
                });
            }
        }
        out
    }
}
