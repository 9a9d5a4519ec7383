//! Checking what a user gives for a known number (on the command line or in
//! a CSV row): the number normalizes like a caller's, the class is one of
//! three, dates parse (a `YYYY-MM-DD` is a whole day in the directory's time
//! zone), `valid_from` < `valid_until`, and text loses its control
//! characters.

use crate::cli::EntryArgs;
use crate::store::directory::Fields;
use calltrail_parsers::NumberNormalizer;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The classes an entry may have.
pub const CLASSES: [&str; 3] = ["vip", "blacklist", "employee"];

/// Why a value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("number {0:?} does not normalize to a number calltrail can match (it is empty, a withheld-number word such as `anonymous`, or has no digits)")]
    NotANumber(String),
    #[error("class {0:?}: expected vip, blacklist, employee or empty")]
    Class(String),
    #[error("{field} {value:?}: expected YYYY-MM-DD or an RFC 3339 instant such as 2026-12-01T09:00:00Z")]
    Date { field: &'static str, value: String },
    #[error("valid_from {from} is not before valid_until {until}")]
    Order { from: String, until: String },
}

/// Which end of a day a `YYYY-MM-DD` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The day's start (`valid_from`).
    From,
    /// The next midnight, exclusive (`valid_until`).
    Until,
}

/// Checks values with the config's `[numbers]` and the directory's zone.
pub struct Checker {
    numbers: NumberNormalizer,
    tz: Tz,
}

/// `s` without control characters; `None` when nothing is left.
pub fn text(s: &str) -> Option<String> {
    let t: String = s.chars().filter(|c| !c.is_control()).collect();
    (!t.is_empty()).then_some(t)
}

/// `class` checked (any case, trimmed); empty → `None`.
pub fn class(s: &str) -> Result<Option<String>, FieldError> {
    let c = s.trim().to_ascii_lowercase();
    if c.is_empty() {
        Ok(None)
    } else if CLASSES.contains(&c.as_str()) {
        Ok(Some(c))
    } else {
        Err(FieldError::Class(s.to_string()))
    }
}

/// Checks that the validity is not empty.
pub fn check_order(f: &Fields) -> Result<(), FieldError> {
    match (f.valid_from, f.valid_until) {
        (Some(from), Some(until)) if from >= until => Err(FieldError::Order {
            from: from.to_rfc3339(),
            until: until.to_rfc3339(),
        }),
        _ => Ok(()),
    }
}

impl Checker {
    pub fn new(numbers: NumberNormalizer, tz: Tz) -> Checker {
        Checker { numbers, tz }
    }

    /// The directory key of `raw` (normalized like events' callers).
    pub fn key(&mut self, raw: &str) -> Result<String, FieldError> {
        self.numbers
            .normalize(raw.trim())
            .ok_or_else(|| FieldError::NotANumber(raw.to_string()))
    }

    /// A DATE: `YYYY-MM-DD` (the start of that day, or the next midnight
    /// for [`Bound::Until`], in the directory's zone) or an RFC 3339
    /// instant; empty → `None`.
    pub fn date(
        &self,
        field: &'static str,
        s: &str,
        bound: Bound,
    ) -> Result<Option<DateTime<Utc>>, FieldError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let bad = || FieldError::Date {
            field,
            value: s.to_string(),
        };
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let day = match bound {
                Bound::From => day,
                Bound::Until => day.succ_opt().ok_or_else(bad)?,
            };
            return self.midnight(day).map(Some).ok_or_else(bad);
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| bad())
    }

    /// The first instant of `day` in the zone (a day starting in a DST gap
    /// starts at the gap's end).
    fn midnight(&self, day: NaiveDate) -> Option<DateTime<Utc>> {
        let start = day.and_hms_opt(0, 0, 0)?;
        (0..=3)
            .find_map(|h| {
                self.tz
                    .from_local_datetime(&(start + chrono::Duration::hours(h)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
    }

    /// Applies the given options to `f` (an empty value clears a field) and
    /// checks the result.
    pub fn apply(&self, f: &mut Fields, args: &EntryArgs) -> Result<(), FieldError> {
        let set = |dst: &mut Option<String>, v: &Option<String>| {
            if let Some(v) = v {
                *dst = text(v);
            }
        };
        set(&mut f.name, &args.name);
        set(&mut f.company, &args.company);
        set(&mut f.agent, &args.agent);
        set(&mut f.note, &args.note);
        if let Some(c) = &args.class {
            f.class = class(c)?;
        }
        if let Some(d) = &args.from {
            f.valid_from = self.date("--from", d, Bound::From)?;
        }
        if let Some(d) = &args.until {
            f.valid_until = self.date("--until", d, Bound::Until)?;
        }
        check_order(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltrail_parsers::NumberConfig;

    fn checker(tz: Tz) -> Checker {
        let n = NumberNormalizer::new(NumberConfig {
            default_region: "RU".into(),
            ..NumberConfig::default()
        })
        .unwrap();
        Checker::new(n, tz)
    }

    #[test]
    fn numbers_normalize_like_callers() {
        let mut c = checker(Tz::UTC);
        assert_eq!(c.key(" 8 (916) 000-00-01 ").unwrap(), "+79160000001");
        assert_eq!(c.key("+7 916 000 00 01").unwrap(), "+79160000001");
        assert_eq!(c.key("201").unwrap(), "201");
        for bad in ["", "anonymous", "+-()"] {
            assert_eq!(c.key(bad), Err(FieldError::NotANumber(bad.into())));
        }
    }

    #[test]
    fn with_match_last_digits_the_key_is_the_last_digits() {
        let n = NumberNormalizer::new(NumberConfig {
            default_region: "RU".into(),
            match_last_digits: Some(10),
            ..NumberConfig::default()
        })
        .unwrap();
        let mut c = Checker::new(n, Tz::UTC);
        assert_eq!(c.key("8 (916) 000-00-01").unwrap(), "9160000001");
        assert_eq!(c.key("+7 916 000 00 01").unwrap(), "9160000001");
    }

    #[test]
    fn days_are_whole_days_in_the_zone() {
        let utc = checker(Tz::UTC);
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            utc.date("f", "2026-12-01", Bound::From).unwrap(),
            Some(t("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            utc.date("f", "2026-12-31", Bound::Until).unwrap(),
            Some(t("2027-01-01T00:00:00Z"))
        );
        let msk = checker(chrono_tz::Europe::Moscow);
        assert_eq!(
            msk.date("f", "2026-12-01", Bound::From).unwrap(),
            Some(t("2026-11-30T21:00:00Z"))
        );
        assert_eq!(
            msk.date("f", "2026-12-01T09:30:00+03:00", Bound::Until)
                .unwrap(),
            Some(t("2026-12-01T06:30:00Z"))
        );
        assert_eq!(utc.date("f", " ", Bound::From).unwrap(), None);
        for bad in ["2026-13-01", "01.12.2026", "tomorrow", "2026-12-01 09:00"] {
            assert!(matches!(
                utc.date("valid_from", bad, Bound::From),
                Err(FieldError::Date {
                    field: "valid_from",
                    ..
                })
            ));
        }
    }

    #[test]
    fn classes_and_text() {
        assert_eq!(class(" VIP ").unwrap().as_deref(), Some("vip"));
        assert_eq!(class("").unwrap(), None);
        assert!(class("gold").is_err());
        assert_eq!(text("Ann\u{7}\r\n Lee").as_deref(), Some("Ann Lee"));
        assert_eq!(text("\n"), None);
    }

    #[test]
    fn set_changes_only_what_is_given_and_checks_the_order() {
        let c = checker(Tz::UTC);
        let mut f = Fields {
            number_raw: "201".into(),
            name: Some("Ann".into()),
            company: Some("Acme".into()),
            ..Fields::default()
        };
        let args = EntryArgs {
            name: Some(String::new()),
            class: Some("employee".into()),
            until: Some("2026-12-01".into()),
            ..EntryArgs::default()
        };
        c.apply(&mut f, &args).unwrap();
        assert_eq!(f.name, None);
        assert_eq!(f.company.as_deref(), Some("Acme"));
        assert_eq!(f.class.as_deref(), Some("employee"));
        // --until 2026-12-01 is through that day: from that day is valid,
        // from the next is not.
        let same_day = EntryArgs {
            from: Some("2026-12-01".into()),
            ..EntryArgs::default()
        };
        c.apply(&mut f, &same_day).unwrap();
        let late = EntryArgs {
            from: Some("2026-12-02".into()),
            ..EntryArgs::default()
        };
        assert!(matches!(
            c.apply(&mut f, &late),
            Err(FieldError::Order { .. })
        ));
    }
}
