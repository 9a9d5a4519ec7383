//! `[reports]`: the scheduled report emails (`[[reports.schedule]]`: a
//! name, daily or weekly, the local time to send at, the recipients, the
//! queues). docs/reports.md ("Scheduled report emails") is the manual.

use super::Problem;
use serde::Deserialize;

/// `[reports]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsSection {
    pub schedule: Vec<ReportSchedule>,
}

/// One `[[reports.schedule]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSchedule {
    /// Names the schedule in the action ids (`report:<name>:<first day>`).
    pub name: String,
    /// `daily` (the day before) or `weekly` (Monday to Sunday, sent on
    /// Mondays).
    pub every: String,
    /// `HH:MM`, local time of the zone (`timezone`, else the first
    /// source's).
    pub at: String,
    pub to: Vec<String>,
    /// Only these queues (all when absent).
    #[serde(default)]
    pub queues: Vec<String>,
    /// The zone of `at` and of the days; default the first source's.
    pub timezone: Option<String>,
}

impl ReportSchedule {
    /// `at` as (hour, minute), when it is a time of day.
    pub fn at_hm(&self) -> Option<(u32, u32)> {
        let (h, m) = self.at.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some((h, m))
    }
}

impl ReportsSection {
    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in self.schedule.iter().enumerate() {
            let at = |k: &str| format!("reports.schedule[{i}].{k}");
            let name_ok = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                out.push(Problem {
                    location: at("name"),
                    expected: "1 to 64 of A-Z a-z 0-9 _ -".into(),
                    found: format!("{:?}", s.name),
                });
            } else if !names.insert(s.name.clone()) {
                out.push(Problem {
                    location: at("name"),
                    expected: "a name no other schedule has".into(),
                    found: format!("{:?} twice", s.name),
                });
            }
            if !["daily", "weekly"].contains(&s.every.as_str()) {
                out.push(Problem {
                    location: at("every"),
                    expected: "\"daily\" or \"weekly\"".into(),
                    found: format!("{:?}", s.every),
                });
            }
            if s.at_hm().is_none() {
                out.push(Problem {
                    location: at("at"),
                    expected: "a time of day HH:MM, such as \"07:00\"".into(),
                    found: format!("{:?}", s.at),
                });
            }
            if s.to.is_empty() || s.to.iter().any(|a| !a.contains('@') || a.len() > 254) {
                out.push(Problem {
                    location: at("to"),
                    expected: "one or more email addresses".into(),
                    found: format!("{:?}", s.to),
                });
            }
            if let Some(tz) = &s.timezone {
                if tz.parse::<chrono_tz::Tz>().is_err() {
                    out.push(Problem {
                        location: at("timezone"),
                        expected: "an IANA time zone such as \"Europe/Moscow\"".into(),
                        found: format!("{tz:?}"),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mistake_is_named() {
        let s: ReportsSection = toml::from_str(
            r#"
[[schedule]]
name = "bad name"
every = "hourly"
at = "7:00"
to = []
timezone = "Mars/Olympus"
"#,
        )
        .unwrap();
        let p = s.problems();
        let locs: Vec<&str> = p.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locs,
            [
                "reports.schedule[0].name",
                "reports.schedule[0].every",
                "reports.schedule[0].at",
                "reports.schedule[0].to",
                "reports.schedule[0].timezone"
            ]
        );
        let ok: ReportsSection = toml::from_str(
            "[[schedule]]\nname = \"daily-sup\"\nevery = \"daily\"\nat = \"07:00\"\nto = [\"a@b.c\"]\n",
        )
        .unwrap();
        assert!(ok.problems().is_empty());
        assert_eq!(ok.schedule[0].at_hm(), Some((7, 0)));
    }
}
