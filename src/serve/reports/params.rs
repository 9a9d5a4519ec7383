//! The query string every report takes (`from`, `to`, `queue`, `agent`,
//! `format`, and `formula` / `interval` for `service_level`), checked into
//! [`Params`], and the calendar hours of the range in each PBX's time zone
//! (the `_rep_hours` temp table every report's SQL joins: DST days have 23
//! or 25 hours, and a day never leaks into the next).

use crate::state::ServiceLevel;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

/// The longest range a report covers (days).
pub const MAX_DAYS: i64 = 366;
/// The longest queue or agent name accepted.
const MAX_NAME: usize = 200;

/// Every service-level formula the config offers, by name.
pub const FORMULAS: [ServiceLevel; 6] = [
    ServiceLevel::Default,
    ServiceLevel::AbandonsIgnored,
    ServiceLevel::AbandonsNegative,
    ServiceLevel::AbandonsPositive,
    ServiceLevel::AsteriskSl,
    ServiceLevel::AsteriskSl2,
];

/// How the report is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Csv,
    Json,
}

/// `service_level`'s interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    pub fn name(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }
}

/// A request's parameters, checked.
#[derive(Debug, Clone)]
pub struct Params {
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub format: Format,
    /// `None`: the configured one.
    pub formula: Option<ServiceLevel>,
    pub interval: Interval,
    /// Passed on to links and the form (the page's own access token).
    pub token: Option<String>,
}

/// A parameter that cannot be used: the request's fault (400).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BadParam(pub String);

fn date(key: &str, v: &str) -> Result<NaiveDate, BadParam> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
        BadParam(format!(
            "{key}={v:?} is not a date: write YYYY-MM-DD, such as 2026-11-20"
        ))
    })
}

fn name(key: &str, v: &str) -> Result<Option<String>, BadParam> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() > MAX_NAME || v.chars().any(char::is_control) {
        return Err(BadParam(format!(
            "{key} must be a name of at most {MAX_NAME} bytes without control characters"
        )));
    }
    Ok(Some(v.to_string()))
}

/// The formula called `v`.
pub fn formula(v: &str) -> Option<ServiceLevel> {
    FORMULAS.into_iter().find(|f| f.name() == v)
}

impl Params {
    /// Reads the query string; `today` is the default of `from` and `to`.
    pub fn parse(query: &str, today: NaiveDate) -> Result<Params, BadParam> {
        let mut p = Params {
            from: today,
            to: today,
            queue: None,
            agent: None,
            format: Format::Html,
            formula: None,
            interval: Interval::Hour,
            token: None,
        };
        let (mut from, mut to) = (None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "from" if !v.trim().is_empty() => from = Some(date("from", &v)?),
                "to" if !v.trim().is_empty() => to = Some(date("to", &v)?),
                "queue" => p.queue = name("queue", &v)?,
                "agent" => p.agent = name("agent", &v)?,
                "format" => {
                    p.format = match v.as_ref() {
                        "" | "html" => Format::Html,
                        "csv" => Format::Csv,
                        "json" => Format::Json,
                        other => {
                            return Err(BadParam(format!(
                                "format={other:?}: use html, csv or json"
                            )))
                        }
                    }
                }
                "formula" if !v.is_empty() => {
                    p.formula = Some(formula(&v).ok_or_else(|| {
                        let names: Vec<&str> = FORMULAS.iter().map(|f| f.name()).collect();
                        BadParam(format!(
                            "formula={v:?} is not a service-level formula: use one of {}",
                            names.join(", ")
                        ))
                    })?)
                }
                "interval" => {
                    p.interval = match v.as_ref() {
                        "" | "hour" => Interval::Hour,
                        "day" => Interval::Day,
                        other => {
                            return Err(BadParam(format!("interval={other:?}: use hour or day")))
                        }
                    }
                }
                "token" => p.token = Some(v.into_owned()),
                _ => {}
            }
        }
        p.from = from.or(to).unwrap_or(today);
        p.to = to.unwrap_or(p.from);
        if p.to < p.from {
            return Err(BadParam(format!(
                "to ({}) is before from ({})",
                p.to, p.from
            )));
        }
        if (p.to - p.from).num_days() + 1 > MAX_DAYS {
            return Err(BadParam(format!(
                "the range covers more than {MAX_DAYS} days: ask for a shorter one"
            )));
        }
        Ok(p)
    }

    /// The query string of these parameters (for links), with `format`.
    pub fn query(&self, format: Option<&str>) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("from", &self.from.to_string());
        s.append_pair("to", &self.to.to_string());
        if let Some(q) = &self.queue {
            s.append_pair("queue", q);
        }
        if let Some(a) = &self.agent {
            s.append_pair("agent", a);
        }
        if let Some(f) = self.formula {
            s.append_pair("formula", f.name());
        }
        if self.interval == Interval::Day {
            s.append_pair("interval", "day");
        }
        if let Some(t) = &self.token {
            s.append_pair("token", t);
        }
        if let Some(f) = format {
            s.append_pair("format", f);
        }
        s.finish()
    }
}

/// One calendar hour of the range in a PBX's zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Hour {
    pub pbx: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub day: NaiveDate,
    pub hour: u32,
    /// The hour's start in local time, RFC 3339 with the offset.
    pub local: String,
}

/// The first instant of local `d` `h`:00 or, when that is in a DST gap,
/// the first instant after it.
fn local_instant(tz: chrono_tz::Tz, d: NaiveDate, h: u32) -> Option<DateTime<Utc>> {
    let t = d.and_hms_opt(h, 0, 0)?;
    tz.from_local_datetime(&t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The hours of `from..=to` in `tz`: an hour that does not exist (DST
/// starts) is left out, one that happens twice (DST ends) lasts two hours.
pub fn hours(pbx: &str, tz: chrono_tz::Tz, from: NaiveDate, to: NaiveDate) -> Vec<Hour> {
    let mut starts: Vec<(NaiveDate, u32, DateTime<Utc>)> = Vec::new();
    let mut d = from;
    while d <= to {
        for h in 0..24 {
            if let Some(t) = local_instant(tz, d, h) {
                starts.push((d, h, t));
            }
        }
        d += Duration::days(1);
    }
    // The end of the range: the next day's first instant.
    let next = to + Duration::days(1);
    let end = (0..24)
        .find_map(|h| local_instant(tz, next, h))
        .unwrap_or_else(|| next.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    let mut out = Vec::with_capacity(starts.len());
    for (i, (day, hour, start)) in starts.iter().enumerate() {
        let e = starts.get(i + 1).map_or(end, |n| n.2);
        out.push(Hour {
            pbx: pbx.to_string(),
            start: *start,
            end: e,
            day: *day,
            hour: *hour,
            local: start
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn berlin_spring_forward_has_23_hours_and_autumn_25() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let h = hours("p", tz, d("2026-03-29"), d("2026-03-29"));
        assert_eq!(h.len(), 23);
        assert!(h.iter().all(|x| x.hour != 2));
        assert_eq!(h[0].start.to_rfc3339(), "2026-03-28T23:00:00+00:00");
        assert_eq!(h[22].end.to_rfc3339(), "2026-03-29T22:00:00+00:00");
        assert_eq!(h[2].local, "2026-03-29T03:00:00+02:00");
        let a = hours("p", tz, d("2026-10-25"), d("2026-10-25"));
        assert_eq!(a.len(), 24);
        let two = a.iter().find(|x| x.hour == 2).unwrap();
        assert_eq!((two.end - two.start).num_hours(), 2);
        assert_eq!(
            (a[23].end - a[0].start).num_hours(),
            25,
            "the autumn day lasts 25 hours"
        );
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        let today = d("2026-11-20");
        let p = Params::parse("", today).unwrap();
        assert_eq!((p.from, p.to), (today, today));
        let p = Params::parse("from=2026-11-01&to=2026-11-03&queue=&format=csv", today).unwrap();
        assert_eq!(
            (p.from, p.to, p.queue, p.format),
            (d("2026-11-01"), d("2026-11-03"), None, Format::Csv)
        );
        for (q, want) in [
            ("from=2026-13-01", "is not a date"),
            ("from=2026-11-05&to=2026-11-01", "before"),
            ("format=xml", "format"),
            ("formula=magic", "asterisk_sl"),
            ("interval=week", "hour or day"),
            ("from=2020-01-01&to=2026-01-01", "more than 366"),
            ("queue=a%0Ab", "control"),
        ] {
            let e = Params::parse(q, today).unwrap_err();
            assert!(e.0.contains(want), "{q}: {e}");
        }
    }
}
