//! The clock of the derived state: what "now" is when the deriver and the
//! sweep decide time-dependent state (a missed-call episode expiring
//! `[state] missed_expiry_hours` after its last miss, a caller still
//! waiting, a breach still going on, `calls.updated_at`).
//!
//! It is the system clock, unless the process was started with
//! `CALLTRAIL_NOW` set to an RFC 3339 instant: then it is fixed at that
//! instant (it does not advance), so that tests of the derived state do not
//! depend on the day they run. Only the derived state follows it (and the
//! period a scheduled report covers, a reading of that state): when a
//! line or reject was stored (`ingested_at`, `rejected_at`), when a state
//! change was stored, checkpoint times, the scheduling of actions (and the
//! missed-call rule's `max_age_minutes`), snapshot grace periods and the
//! tailer's timers stay on the real clock — they are bookkeeping of this
//! process, not facts derived from the events.

use chrono::{DateTime, Utc};

/// The environment variable that fixes the derived state's clock.
pub const NOW_ENV: &str = "CALLTRAIL_NOW";

/// Where the derived state's "now" comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
}

/// `CALLTRAIL_NOW` is set to something that is not an instant.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error(
        "{NOW_ENV}={value:?} is not an RFC 3339 instant such as 2026-11-20T10:00:00Z: {source}"
    )]
    Parse {
        value: String,
        source: chrono::ParseError,
    },
    #[error("{NOW_ENV} is not valid UTF-8")]
    NotUnicode,
}

impl Clock {
    /// The current instant by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }

    /// A clock fixed at the RFC 3339 instant `s` (any offset; kept in UTC).
    pub fn fixed(s: &str) -> Result<Clock, ClockError> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Clock::Fixed(t.with_timezone(&Utc)))
            .map_err(|source| ClockError::Parse {
                value: s.to_string(),
                source,
            })
    }

    /// The clock the environment asks for: fixed at `CALLTRAIL_NOW` when it
    /// is set and not empty, else the system clock.
    pub fn from_env() -> Result<Clock, ClockError> {
        Clock::from_value(std::env::var_os(NOW_ENV))
    }

    fn from_value(value: Option<std::ffi::OsString>) -> Result<Clock, ClockError> {
        match value {
            None => Ok(Clock::System),
            Some(v) => {
                let v = v.into_string().map_err(|_| ClockError::NotUnicode)?;
                if v.trim().is_empty() {
                    Ok(Clock::System)
                } else {
                    Clock::fixed(&v)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_fixed_clock_stays_at_its_instant() {
        let c = Clock::fixed("2026-11-20T10:00:00Z").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        assert_eq!(c, Clock::Fixed(at));
        assert_eq!(c.now(), at);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(c.now(), at);
        // Another offset is the same instant.
        assert_eq!(Clock::fixed("2026-11-20T13:00:00+03:00").unwrap(), c);
    }

    #[test]
    fn the_environment_value() {
        assert_eq!(Clock::from_value(None).unwrap(), Clock::System);
        assert_eq!(Clock::from_value(Some(" ".into())).unwrap(), Clock::System);
        assert!(matches!(
            Clock::from_value(Some("2026-11-20T10:00:00.5Z".into())).unwrap(),
            Clock::Fixed(_)
        ));
        for bad in ["2026-11-20", "2026-11-20 10:00", "tomorrow", "1795154520"] {
            let e = Clock::from_value(Some(bad.into())).unwrap_err().to_string();
            assert!(e.contains("CALLTRAIL_NOW") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_system_clock_moves() {
        let before = Utc::now();
        let now = Clock::System.now();
        assert!(now >= before && now <= Utc::now());
    }
}
