//! The lookup's policy (`last_agent`, `last_contact`, `first_agent`) and
//! window (`Nd`, `Nh`, `this_week`, `all`), and where a window starts.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

/// How the sticky agent is chosen (docs/dialplan.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The most recent answered conversation, in or out.
    LastAgent,
    /// The most recent call either way, answered or not.
    LastContact,
    /// The first answered conversation inside the window.
    FirstAgent,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s.trim() {
            "last_agent" => Policy::LastAgent,
            "last_contact" => Policy::LastContact,
            "first_agent" => Policy::FirstAgent,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::LastAgent => "last_agent",
            Policy::LastContact => "last_contact",
            Policy::FirstAgent => "first_agent",
        }
    }
}

/// How far back the policy looks, from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hours(u32),
    Days(u32),
    /// Since Monday 00:00 of this week, in the lookup's time zone.
    ThisWeek,
    All,
}

/// The longest `Nd` / `Nh` accepted (about 100 years).
const MAX_DAYS: u32 = 36_600;

impl Window {
    pub fn parse(s: &str) -> Result<Window, String> {
        let s = s.trim();
        match s {
            "this_week" => return Ok(Window::ThisWeek),
            "all" => return Ok(Window::All),
            _ => {}
        }
        let (num, unit) = s.split_at(s.len().saturating_sub(1));
        let n: u32 = num.parse().map_err(|_| {
            "expected a number of days (7d), hours (12h), this_week or all".to_string()
        })?;
        if n == 0 {
            return Err("a window of 0 is empty".into());
        }
        match unit {
            "d" if n <= MAX_DAYS => Ok(Window::Days(n)),
            "h" if n <= MAX_DAYS * 24 => Ok(Window::Hours(n)),
            "d" | "h" => Err("longer than 100 years: use all".into()),
            _ => Err(format!("unknown unit {unit:?}: use d (days) or h (hours)")),
        }
    }

    /// The first instant inside the window (µs since the epoch), `None`
    /// for `all`.
    pub fn start(self, now: DateTime<Utc>, tz: Tz) -> Option<i64> {
        let us = |t: DateTime<Utc>| t.timestamp_micros();
        match self {
            Window::Hours(h) => Some(us(now - Duration::hours(i64::from(h)))),
            Window::Days(d) => Some(us(now - Duration::days(i64::from(d)))),
            Window::All => None,
            Window::ThisWeek => {
                let local = now.with_timezone(&tz).date_naive();
                let monday =
                    local - Duration::days(i64::from(local.weekday().num_days_from_monday()));
                let midnight = monday.and_hms_opt(0, 0, 0)?;
                // A midnight that does not exist (a DST jump) starts at the
                // earliest instant of that local day.
                let start = tz.from_local_datetime(&midnight).earliest().or_else(|| {
                    tz.from_local_datetime(&(midnight + Duration::hours(1)))
                        .earliest()
                })?;
                Some(us(start.with_timezone(&Utc)))
            }
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Hours(h) => write!(f, "{h}h"),
            Window::Days(d) => write!(f, "{d}d"),
            Window::ThisWeek => f.write_str("this_week"),
            Window::All => f.write_str("all"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(Window::parse("90d"), Ok(Window::Days(90)));
        assert_eq!(Window::parse("12h"), Ok(Window::Hours(12)));
        assert_eq!(Window::parse("this_week"), Ok(Window::ThisWeek));
        assert_eq!(Window::parse("all"), Ok(Window::All));
        for bad in ["", "d", "0d", "7w", "-1d", "1.5d", "99999999d"] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Policy::parse("first_agent"), Some(Policy::FirstAgent));
        assert_eq!(Policy::parse("sticky"), None);
    }

    #[test]
    fn this_week_starts_on_monday_in_the_zone() {
        // Thursday 2026-12-03 01:00 UTC = 04:00 in Moscow.
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 1, 0, 0).unwrap();
        let tz: Tz = "Europe/Moscow".parse().unwrap();
        let start = Window::ThisWeek.start(now, tz).unwrap();
        // Monday 2026-11-30 00:00 MSK = Sunday 21:00 UTC.
        let want = Utc.with_ymd_and_hms(2026, 11, 29, 21, 0, 0).unwrap();
        assert_eq!(start, want.timestamp_micros());
        // Monday 00:30 local is still this week (a week just begun).
        let mon = Utc.with_ymd_and_hms(2026, 11, 29, 21, 30, 0).unwrap();
        assert_eq!(
            Window::ThisWeek.start(mon, tz),
            Some(want.timestamp_micros())
        );
        assert_eq!(
            Window::Days(1).start(now, tz),
            Some((now - Duration::days(1)).timestamp_micros())
        );
    }
}
