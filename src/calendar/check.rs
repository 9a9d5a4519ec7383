//! `calltrail calendar NAME|SPEC [--at TIME]`: whether a calendar or a
//! time spec is open at an instant and when it opens or closes next, in
//! its zone and in UTC (Asterisk's `TESTTIME`, for calendars).

use super::{Calendar, CalendarConfig};
use crate::config::Config;
use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::io::Write;

/// Runs the command; its answer goes to `out`.
pub fn run(
    cfg: &Config,
    calendar: &str,
    at: Option<&str>,
    timezone: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let now = match at {
        Some(t) => DateTime::parse_from_rfc3339(t.trim())
            .with_context(|| {
                format!(
                    "--at {t:?}: expected an RFC 3339 instant such as 2026-12-05T03:00:00+03:00"
                )
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let zone = match timezone {
        Some(z) => z
            .parse::<Tz>()
            .map_err(|_| anyhow::anyhow!("--timezone {z:?} is not an IANA zone"))?,
        None => crate::numbers::zone(cfg),
    };
    let (cal, what) =
        match cfg.calendars.get(calendar) {
            Some(c) => (
                Calendar::build(calendar, c, zone)
                    .map_err(|e| anyhow::anyhow!("[calendars.{calendar}] {e}"))?,
                format!("calendar {calendar}"),
            ),
            None => {
                let spec = CalendarConfig {
                    timezone: Some(zone.name().to_string()),
                    hours: vec![calendar.to_string()],
                    ..CalendarConfig::default()
                };
                let c =
                    Calendar::build("spec", &spec, zone).map_err(|e| {
                        let known: Vec<&str> = cfg.calendars.keys().map(String::as_str).collect();
                        anyhow::anyhow!(
                    "{calendar:?} is neither a configured calendar ({}) nor a time spec: {}",
                    if known.is_empty() { "none configured".to_string() } else { known.join(", ") },
                    e.why
                )
                    })?;
                (c, format!("time spec {calendar:?}"))
            }
        };
    let show = |t: DateTime<Utc>| {
        format!(
            "{} ({})",
            t.with_timezone(&cal.tz).format("%Y-%m-%d %H:%M %Z, %a"),
            t.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let wait = |t: DateTime<Utc>| {
        let m = (t - now).num_minutes();
        if m >= 1440 {
            format!("in {} d {} h {} min", m / 1440, m % 1440 / 60, m % 60)
        } else {
            format!("in {} h {} min", m / 60, m % 60)
        }
    };
    if cal.is_open(now) {
        writeln!(out, "{what} ({}) at {}: open", cal.tz.name(), show(now))?;
        match cal.next_close(now) {
            Some(t) => writeln!(out, "  closes {} {}", show(t), wait(t))?,
            None => writeln!(out, "  does not close in the next 400 days")?,
        }
    } else {
        writeln!(out, "{what} ({}) at {}: closed", cal.tz.name(), show(now))?;
        match cal.next_open(now) {
            Some(t) => writeln!(out, "  opens  {} {}", show(t), wait(t))?,
            None => writeln!(out, "  does not open in the next 400 days")?,
        }
    }
    Ok(())
}
