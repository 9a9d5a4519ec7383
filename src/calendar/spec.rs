//! Asterisk's time spec (`GotoIfTime`, `include =>`, `IFTIME`):
//! `times,weekdays,mdays,months[,timezone]`, read with Asterisk's own rules
//! (main/pbx_timing.c; INTEGRATIONS.md §7.1): `|` and `,` both separate
//! fields, missing trailing fields are "all", `*` or empty is "all", `&`
//! joins elements, `a-b` ranges are cyclic (`fri-mon`, `22:00-06:59`), a
//! time range includes its end minute, names are exactly the three-letter
//! `sun`…`sat` / `jan`…`dec` (any case) or numbers (weekday 1 = Sunday), and
//! a fifth field is an IANA zone. Where Asterisk only warns and skips an
//! element (so a typo can make a spec never match), this refuses it.

use chrono::{Datelike, NaiveDateTime, Timelike};
use chrono_tz::Tz;
use std::fmt;

const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Why a spec is refused: which field, which element, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {element:?}: {why}")]
pub struct SpecError {
    pub field: &'static str,
    pub element: String,
    pub why: String,
}

fn err(field: &'static str, element: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        field,
        element: element.to_string(),
        why: why.into(),
    }
}

/// Minutes of the day, one bit each.
#[derive(Clone, PartialEq, Eq)]
pub struct Minutes([u64; 23]);

impl Minutes {
    pub fn none() -> Minutes {
        Minutes([0; 23])
    }

    pub fn all() -> Minutes {
        let mut m = Minutes::none();
        for x in 0..1440 {
            m.set(x);
        }
        m
    }

    fn set(&mut self, x: usize) {
        self.0[x / 64] |= 1 << (x % 64);
    }

    /// Whether minute `x` of the day (0..1440) is in.
    pub fn has(&self, x: usize) -> bool {
        x < 1440 && self.0[x / 64] & (1 << (x % 64)) != 0
    }

    /// The `times` field: `*`, or `HH:MM[-HH:MM]` joined by `&`.
    pub fn parse(field: &str) -> Result<Minutes, SpecError> {
        let field = field.trim();
        if field.is_empty() || field == "*" {
            return Ok(Minutes::all());
        }
        let mut m = Minutes::none();
        for part in field.split('&') {
            let part = part.trim();
            let (start, end) = match part.split_once('-') {
                Some((a, b)) => (hhmm(a.trim(), part)?, hhmm(b.trim(), part)?),
                None => {
                    let t = hhmm(part, part)?;
                    (t, t)
                }
            };
            // Through the end minute, wrapping past midnight.
            let mut x = start;
            while x != end {
                m.set(x);
                x = (x + 1) % 1440;
            }
            m.set(end);
        }
        Ok(m)
    }
}

impl fmt::Debug for Minutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Minutes({} on)",
            (0..1440).filter(|&x| self.has(x)).count()
        )
    }
}

/// `H:MM` / `HH:MM` → minute of the day.
fn hhmm(s: &str, element: &str) -> Result<usize, SpecError> {
    let bad = || {
        err(
            "time",
            element,
            "expected HH:MM or HH:MM-HH:MM (hours 0-23, minutes 00-59; the end minute is included)",
        )
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let num = |x: &str, max: usize| -> Option<usize> {
        (!x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse().ok())
            .flatten()
            .filter(|&v| v <= max)
    };
    match (num(h, 23), num(m, 59)) {
        (Some(h), Some(m)) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// A list field (`weekdays`, `mdays`, `months`) as a bit mask over
/// `0..max`.
fn range(field: &str, fname: &'static str, max: u32, names: &[&str]) -> Result<u32, SpecError> {
    let field = field.trim();
    if field.is_empty() || field == "*" {
        return Ok((1u32 << max) - 1);
    }
    let one =
        |s: &str, element: &str| -> Result<u32, SpecError> {
            let s = s.trim();
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(i as u32);
            }
            match s.parse::<u32>() {
                Ok(n) if s.len() <= 2 && (1..=max).contains(&n) => Ok(n - 1),
                _ if names.is_empty() => Err(err(fname, element, format!("expected 1-{max}"))),
                _ => {
                    Err(err(
                        fname,
                        element,
                        format!(
                    "expected one of {} (exactly these three letters, any case) or 1-{max}{}",
                    names.join(" "),
                    if fname == "weekday" { " (1 = Sunday)" } else { "" }
                ),
                    ))
                }
            }
        };
    let mut mask = 0u32;
    for part in field.split('&') {
        let (mut start, end) = match part.split_once('-') {
            Some((a, b)) => (one(a, part)?, one(b, part)?),
            None => {
                let v = one(part, part)?;
                (v, v)
            }
        };
        // Cyclic: fri-mon, nov-feb.
        mask |= 1 << end;
        while start != end {
            mask |= 1 << start;
            start = (start + 1) % max;
        }
    }
    Ok(mask)
}

/// One parsed time spec.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSpec {
    pub minutes: Minutes,
    /// Bit 0 = Sunday.
    pub weekdays: u32,
    /// Bit 0 = the 1st.
    pub mdays: u32,
    /// Bit 0 = January.
    pub months: u32,
    /// The fifth field, when given.
    pub timezone: Option<Tz>,
    /// The text as written.
    pub text: String,
}

impl TimeSpec {
    pub fn parse(text: &str) -> Result<TimeSpec, SpecError> {
        let fields: Vec<&str> = text.split([',', '|']).collect();
        if fields.len() > 5 {
            return Err(err(
                "spec",
                text,
                "at most 5 fields: times,weekdays,mdays,months[,timezone]",
            ));
        }
        let get = |i: usize| fields.get(i).copied().unwrap_or("*");
        let timezone =
            match fields.get(4) {
                Some(z) => Some(z.trim().parse::<Tz>().map_err(|_| {
                    err("timezone", z, "expected an IANA zone such as Europe/Moscow")
                })?),
                None => None,
            };
        Ok(TimeSpec {
            minutes: Minutes::parse(get(0))?,
            weekdays: range(get(1), "weekday", 7, &DAYS)?,
            mdays: range(get(2), "day of month", 31, &[])?,
            months: range(get(3), "month", 12, &MONTHS)?,
            timezone,
            text: text.to_string(),
        })
    }

    /// Whether the local date of `local` is one the spec can match at all.
    pub fn matches_date(&self, local: &NaiveDateTime) -> bool {
        self.months & (1 << local.month0()) != 0
            && self.mdays & (1 << local.day0()) != 0
            && self.weekdays & (1 << local.weekday().num_days_from_sunday()) != 0
    }

    /// Whether the local minute `local` matches (month, day, weekday, minute).
    pub fn matches(&self, local: &NaiveDateTime) -> bool {
        self.matches_date(local)
            && self
                .minutes
                .has((local.hour() * 60 + local.minute()) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn asterisks_rules() {
        // Thursday 2026-12-03.
        let s = TimeSpec::parse("9:00-17:59,mon-fri,*,*").unwrap();
        assert!(s.matches(&at(2026, 12, 3, 9, 0)));
        assert!(s.matches(&at(2026, 12, 3, 17, 59)));
        assert!(!s.matches(&at(2026, 12, 3, 18, 0)));
        assert!(!s.matches(&at(2026, 12, 3, 8, 59)));
        assert!(!s.matches(&at(2026, 12, 5, 12, 0))); // Saturday
                                                      // The end minute is included: 18:00 is open until 18:00:59.
        assert!(TimeSpec::parse("09:00-18:00")
            .unwrap()
            .matches(&at(2026, 12, 3, 18, 0)));
        // Wrapping past midnight; cyclic weekdays and months.
        let night = TimeSpec::parse("22:00-05:59|fri-mon|*|nov-feb").unwrap();
        assert!(night.matches(&at(2026, 12, 5, 3, 0)));
        assert!(night.matches(&at(2026, 12, 7, 23, 0)));
        assert!(!night.matches(&at(2026, 12, 8, 23, 0))); // Tuesday
        assert!(!night.matches(&at(2026, 3, 6, 23, 0))); // March
                                                         // Numbers: weekday 1 = Sunday; lists with &; one minute alone.
        let s = TimeSpec::parse("12:30&13:00-13:01,1&7,1-8,1").unwrap();
        assert!(s.matches(&at(2027, 1, 3, 12, 30))); // Sunday 3 Jan
        assert!(!s.matches(&at(2027, 1, 3, 12, 31)));
        assert!(s.matches(&at(2027, 1, 2, 13, 1))); // Saturday 2 Jan
        assert!(!s.matches(&at(2027, 1, 4, 13, 0))); // Monday
                                                     // Missing fields are "all"; names in any case.
        assert!(TimeSpec::parse("*,SUN")
            .unwrap()
            .matches(&at(2026, 12, 6, 0, 0)));
        assert!(TimeSpec::parse("").unwrap().matches(&at(2026, 12, 6, 0, 0)));
        let z = TimeSpec::parse("9:00-17:59,*,*,*,Asia/Vladivostok").unwrap();
        assert_eq!(z.timezone.map(|t| t.name()), Some("Asia/Vladivostok"));
    }

    #[test]
    fn what_asterisk_would_skip_is_refused() {
        for (spec, field) in [
            ("9:00-17:00,monday", "weekday"),
            ("9:00-17:00,mon-fry", "weekday"),
            ("9:00-17:00,8", "weekday"),
            ("24:00-25:00", "time"),
            ("9-17", "time"),
            ("9:60", "time"),
            ("*,*,32", "day of month"),
            ("*,*,0", "day of month"),
            ("*,*,*,january", "month"),
            ("*,*,*,13", "month"),
            ("*,*,*,*,Mars/Olympus", "timezone"),
            ("*,*,*,*,UTC,x", "spec"),
        ] {
            let e = TimeSpec::parse(spec).unwrap_err();
            assert_eq!(e.field, field, "{spec}: {e}");
        }
        let e = TimeSpec::parse("9:00-17:00,monday").unwrap_err();
        assert!(e.to_string().contains("sun mon tue wed thu fri sat"), "{e}");
    }
}
