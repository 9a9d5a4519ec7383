//! Business hours and holidays (`[calendars.NAME]`, docs/rules.md): when a
//! rule may act, and when a closed calendar opens next (a night's missed
//! calls are called back at the opening, not at 03:00).
//!
//! A minute `t` is open when, in the calendar's zone, its date is not a
//! holiday, and either the date is one of `open_dates` and the minute is in
//! that date's hours, or some `hours` spec matches and no `closed` spec
//! does. Specs are Asterisk's time specs ([`spec`]), evaluated on the local
//! wall clock (so DST moves nothing: 09:00 is 09:00 in summer and winter;
//! a local minute a DST jump skips never happens, one it repeats happens
//! twice); a spec with a fifth field is evaluated in that zone instead.

pub mod check;
pub mod spec;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use spec::{Minutes, TimeSpec};
use std::collections::{BTreeMap, BTreeSet};

/// `[calendars.NAME]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// IANA zone of every spec and date below; default: the zone every
    /// configured source agrees on, else UTC.
    pub timezone: Option<String>,
    /// When open: Asterisk time specs (`"09:00-17:59,mon-fri,*,*"`).
    #[serde(default)]
    pub hours: Vec<String>,
    /// Yearly closures, as time specs (`"*,*,1-8,jan"`).
    #[serde(default)]
    pub closed: Vec<String>,
    /// Dated holidays: closed all day (`YYYY-MM-DD`).
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Dated working days with their hours (`"2026-11-01" = "10:00-15:59"`),
    /// winning over `hours` and `closed` (a weekend worked).
    #[serde(default)]
    pub open_dates: BTreeMap<String, String>,
}

/// Why a calendar cannot be built: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {why}")]
pub struct CalendarError {
    /// `hours[1]`, `holidays[0]`, `timezone` …
    pub location: String,
    pub why: String,
}

/// A built calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub name: String,
    pub tz: Tz,
    hours: Vec<TimeSpec>,
    closed: Vec<TimeSpec>,
    holidays: BTreeSet<NaiveDate>,
    open_dates: BTreeMap<NaiveDate, Minutes>,
}

/// How far [`Calendar::next_open`] looks ahead.
const HORIZON_DAYS: i64 = 400;

/// The start of `t`'s minute.
fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t - Duration::seconds(i64::from(t.second())) - Duration::nanoseconds(i64::from(t.nanosecond()))
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

impl Calendar {
    /// Builds `[calendars.name]`; `default_tz` when it names no zone. The
    /// first problem found is the error ([`Calendar::problems`] lists all).
    pub fn build(
        name: &str,
        c: &CalendarConfig,
        default_tz: Tz,
    ) -> Result<Calendar, CalendarError> {
        let mut problems = Vec::new();
        let cal = Self::parts(name, c, default_tz, &mut problems);
        match problems.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(cal),
        }
    }

    /// Every problem of `[calendars.name]` (for check-config).
    pub fn problems(c: &CalendarConfig, default_tz: Tz) -> Vec<CalendarError> {
        let mut problems = Vec::new();
        Self::parts("", c, default_tz, &mut problems);
        problems
    }

    fn parts(
        name: &str,
        c: &CalendarConfig,
        default_tz: Tz,
        out: &mut Vec<CalendarError>,
    ) -> Calendar {
        let mut fail = |location: String, why: String| out.push(CalendarError { location, why });
        let tz = match &c.timezone {
            Some(z) => z.trim().parse::<Tz>().unwrap_or_else(|_| {
                fail(
                    "timezone".into(),
                    format!("{z:?} is not an IANA zone such as Europe/Moscow"),
                );
                default_tz
            }),
            None => default_tz,
        };
        if c.hours.is_empty() {
            fail(
                "hours".into(),
                "no opening hours: give at least one spec such as \"09:00-17:59,mon-fri,*,*\" (a rule without a calendar acts at any time)".into(),
            );
        }
        let mut specs = |list: &[String], key: &str| -> Vec<TimeSpec> {
            list.iter()
                .enumerate()
                .filter_map(|(i, s)| match TimeSpec::parse(s) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        fail(
                            format!("{key}[{i}]"),
                            format!("{e} (in the time spec {s:?})"),
                        );
                        None
                    }
                })
                .collect()
        };
        let hours = specs(&c.hours, "hours");
        let closed = specs(&c.closed, "closed");
        let mut holidays = BTreeSet::new();
        for (i, h) in c.holidays.iter().enumerate() {
            match date(h) {
                Some(d) => {
                    holidays.insert(d);
                }
                None => fail(
                    format!("holidays[{i}]"),
                    format!("{h:?} is not a date YYYY-MM-DD"),
                ),
            }
        }
        let mut open_dates = BTreeMap::new();
        for (d, times) in &c.open_dates {
            let Some(day) = date(d) else {
                fail(
                    format!("open_dates.{d:?}"),
                    "the key is not a date YYYY-MM-DD".into(),
                );
                continue;
            };
            match Minutes::parse(times) {
                Ok(m) => {
                    open_dates.insert(day, m);
                }
                Err(e) => fail(format!("open_dates.{d}"), e.to_string()),
            }
        }
        Calendar {
            name: name.to_string(),
            tz,
            hours,
            closed,
            holidays,
            open_dates,
        }
    }

    fn local(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
        t.with_timezone(&tz).naive_local()
    }

    fn spec_matches(&self, s: &TimeSpec, t: DateTime<Utc>) -> bool {
        s.matches(&Self::local(t, s.timezone.unwrap_or(self.tz)))
    }

    /// Whether the minute holding `t` is open.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let local = Self::local(t, self.tz);
        let day = local.date();
        if self.holidays.contains(&day) {
            return false;
        }
        if let Some(m) = self.open_dates.get(&day) {
            return m.has((local.hour() * 60 + local.minute()) as usize);
        }
        self.hours.iter().any(|s| self.spec_matches(s, t))
            && !self.closed.iter().any(|s| self.spec_matches(s, t))
    }

    /// Whether no minute of `t`'s local date can be open (a holiday, or a
    /// date no `hours` spec in the calendar's zone matches): lets
    /// [`Calendar::next_open`] skip the day.
    fn day_closed(&self, local: &NaiveDateTime) -> bool {
        let day = local.date();
        if self.holidays.contains(&day) {
            return true;
        }
        if self.open_dates.contains_key(&day) {
            return false;
        }
        self.hours
            .iter()
            .all(|s| s.timezone.is_none() && !s.matches_date(local))
    }

    /// The first open minute at or after `t` (`t` itself, to the second,
    /// when open), within about a year; `None` when the calendar never
    /// opens in that time.
    pub fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(t) {
            return Some(t);
        }
        let mut m = floor_minute(t);
        let end = t + Duration::days(HORIZON_DAYS);
        while m < end {
            m += Duration::minutes(1);
            let local = Self::local(m, self.tz);
            if self.day_closed(&local) {
                // Jump to the next local midnight (at least a minute on).
                let minutes_left = 1440 - i64::from(local.hour() * 60 + local.minute());
                m += Duration::minutes(minutes_left - 1);
                continue;
            }
            if self.is_open(m) {
                return Some(m);
            }
        }
        None
    }

    /// The first closed minute at or after `t` (`None`: open for the whole
    /// horizon), for pacing work that must stop at closing time.
    pub fn next_close(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.is_open(t) {
            return Some(t);
        }
        let mut m = floor_minute(t);
        let end = t + Duration::days(HORIZON_DAYS);
        while m < end {
            m += Duration::minutes(1);
            if !self.is_open(m) {
                return Some(m);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn moscow_office() -> Calendar {
        Calendar::build(
            "office",
            &CalendarConfig {
                timezone: Some("Europe/Moscow".into()),
                hours: vec![
                    "09:00-17:59,mon-fri,*,*".into(),
                    "10:00-13:59,sat,*,*".into(),
                ],
                closed: vec!["*,*,1-8,jan".into()],
                holidays: vec!["2026-12-31".into()],
                open_dates: [("2027-01-09".to_string(), "10:00-14:59".to_string())].into(),
            },
            Tz::UTC,
        )
        .unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn a_night_a_weekend_a_holiday() {
        let c = moscow_office();
        // Thursday 2026-12-03, 08:00 MSK = 05:00 UTC: closed; opens 09:00 MSK.
        assert!(!c.is_open(utc(2026, 12, 3, 5, 0)));
        assert_eq!(
            c.next_open(utc(2026, 12, 3, 5, 0)),
            Some(utc(2026, 12, 3, 6, 0))
        );
        assert!(c.is_open(utc(2026, 12, 3, 14, 59)));
        assert!(!c.is_open(utc(2026, 12, 3, 15, 0)));
        // Friday night → Saturday 10:00 MSK.
        assert_eq!(
            c.next_open(utc(2026, 12, 4, 20, 0)),
            Some(utc(2026, 12, 5, 7, 0))
        );
        // Saturday after 14:00 → Monday 09:00.
        assert_eq!(
            c.next_open(utc(2026, 12, 5, 11, 0)),
            Some(utc(2026, 12, 7, 6, 0))
        );
        // Dec 31 is a holiday, Jan 1-8 closed yearly, Saturday Jan 9 worked
        // 10:00-14:59 (not the usual Saturday hours), then Monday Jan 11.
        let eve = utc(2026, 12, 30, 16, 0);
        assert_eq!(c.next_open(eve), Some(utc(2027, 1, 9, 7, 0)));
        assert!(c.is_open(utc(2027, 1, 9, 11, 30))); // 14:30 MSK
        assert_eq!(
            c.next_close(utc(2027, 1, 9, 11, 30)),
            Some(utc(2027, 1, 9, 12, 0))
        );
        assert_eq!(
            c.next_open(utc(2027, 1, 9, 12, 0)),
            Some(utc(2027, 1, 11, 6, 0))
        );
        // An open instant is its own next opening, to the second.
        let t = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 17).unwrap();
        assert_eq!(c.next_open(t), Some(t));
    }

    fn berlin(hours: &str) -> Calendar {
        Calendar::build(
            "berlin",
            &CalendarConfig {
                timezone: Some("Europe/Berlin".into()),
                hours: vec![hours.into()],
                ..CalendarConfig::default()
            },
            Tz::UTC,
        )
        .unwrap()
    }

    #[test]
    fn dst_follows_the_wall_clock() {
        let c = berlin("09:00-17:59,mon-fri");
        // Friday 2026-03-27 09:00 CET = 08:00 UTC; Monday 2026-03-30 09:00
        // CEST = 07:00 UTC (the clocks went forward on Sunday 29 March).
        assert_eq!(
            c.next_open(utc(2026, 3, 27, 7, 0)),
            Some(utc(2026, 3, 27, 8, 0))
        );
        assert_eq!(
            c.next_open(utc(2026, 3, 27, 17, 0)),
            Some(utc(2026, 3, 30, 7, 0))
        );
        // Autumn: Monday 2026-10-26 09:00 CET = 08:00 UTC.
        assert_eq!(
            c.next_open(utc(2026, 10, 23, 17, 0)),
            Some(utc(2026, 10, 26, 8, 0))
        );
        // A night spec across the skipped hour: 02:30 never happens on
        // 29 March, so it is not open then.
        let n = berlin("02:00-02:59");
        assert_eq!(
            n.next_open(utc(2026, 3, 29, 0, 30)),
            Some(utc(2026, 3, 30, 0, 0))
        );
    }

    #[test]
    fn refusals_name_the_place() {
        let bad = |c: CalendarConfig| Calendar::build("x", &c, Tz::UTC).unwrap_err();
        let e = bad(CalendarConfig::default());
        assert_eq!(e.location, "hours");
        let e = bad(CalendarConfig {
            hours: vec!["09:00-17:59,mon-fri".into(), "9:00-18:00,monday".into()],
            ..CalendarConfig::default()
        });
        assert_eq!(e.location, "hours[1]");
        assert!(e.why.contains("monday"), "{e}");
        let e = bad(CalendarConfig {
            hours: vec!["*".into()],
            holidays: vec!["31.12.2026".into()],
            ..CalendarConfig::default()
        });
        assert_eq!(e.location, "holidays[0]");
        let never = Calendar::build(
            "never",
            &CalendarConfig {
                hours: vec!["*,*,30,feb".into()],
                ..CalendarConfig::default()
            },
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(never.next_open(utc(2026, 12, 3, 0, 0)), None);
    }
}
