//! Field values of an Oktell export: SQL `NULL`s, datetimes in the forms SSMS,
//! sqlcmd, bcp and a Russian-locale Excel re-save write, integers, bit flags
//! and GUIDs.
//!
//! Everything here is pure and total: a value that does not fit gives `None`
//! and the caller turns that into a typed error naming the column.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while_m_n};
use nom::character::complete::{one_of, space1};
use nom::combinator::{all_consuming, map_opt, map_res, opt};
use nom::{IResult, Parser};

/// The trimmed value, or `None` for SQL NULL: the text `NULL` (any case), an
/// empty field or one of only blanks (bcp writes NULL as nothing).
pub(crate) fn non_null(s: &str) -> Option<&str> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("NULL") {
        None
    } else {
        Some(t)
    }
}

/// 1 to `max` ASCII digits (at least `min`) as a number.
fn digits<'a>(
    min: usize,
    max: usize,
) -> impl Parser<&'a str, Output = u32, Error = nom::error::Error<&'a str>> {
    map_res(
        take_while_m_n(min, max, |c: char| c.is_ascii_digit()),
        |d: &str| d.parse::<u32>(),
    )
}

/// `YYYY-MM-DD` (month and day may have one digit).
fn iso_date(i: &str) -> IResult<&str, NaiveDate> {
    map_opt(
        (digits(4, 4), tag("-"), digits(1, 2), tag("-"), digits(1, 2)),
        |(y, _, m, _, d)| NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d),
    )
    .parse(i)
}

/// `DD.MM.YYYY`, the Russian locale's short date.
fn ru_date(i: &str) -> IResult<&str, NaiveDate> {
    map_opt(
        (digits(1, 2), tag("."), digits(1, 2), tag("."), digits(4, 4)),
        |(d, _, m, _, y)| NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d),
    )
    .parse(i)
}

/// `.fff…` or `,fff…` (1 to 9 digits) as nanoseconds.
fn fraction(i: &str) -> IResult<&str, u32> {
    let (i, _) = one_of(".,").parse(i)?;
    let (rest, frac) = take_while_m_n(1, 9, |c: char| c.is_ascii_digit()).parse(i)?;
    let mut nanos = 0u32;
    let mut scale = 100_000_000u32;
    for c in frac.bytes() {
        nanos += u32::from(c - b'0') * scale;
        scale /= 10;
    }
    Ok((rest, nanos))
}

/// `H:MM`, `HH:MM:SS` or `HH:MM:SS.fff…`.
fn time_of_day(i: &str) -> IResult<&str, NaiveTime> {
    map_opt(
        (
            digits(1, 2),
            tag(":"),
            digits(2, 2),
            opt((tag(":"), digits(2, 2), opt(fraction))),
        ),
        |(h, _, m, rest)| {
            let (s, nanos) = match rest {
                Some((_, s, frac)) => (s, frac.unwrap_or(0)),
                None => (0, 0),
            };
            NaiveTime::from_hms_nano_opt(h, m, s, nanos)
        },
    )
    .parse(i)
}

fn datetime(i: &str) -> IResult<&str, NaiveDateTime> {
    let (i, date) = alt((iso_date, ru_date)).parse(i)?;
    let (i, _) = alt((tag("T"), space1)).parse(i)?;
    let (i, time) = time_of_day(i)?;
    Ok((i, NaiveDateTime::new(date, time)))
}

/// Parses a naive (zone-less) datetime in any of the accepted forms:
///
/// - `2024-03-01 10:15:00.123` (SSMS, sqlcmd, bcp: SQL Server's own text form;
///   `datetime2` gives up to 7 fraction digits, 9 are accepted);
/// - `2024-03-01T10:15:00.123` (ISO 8601, PowerShell / .NET exports);
/// - `01.03.2024 10:15:00.123` (Russian locale), also `1.3.2024 9:05` as a
///   Russian Excel re-save writes it (seconds optional, then 0).
///
/// Seconds are optional in every form; the fraction may use `.` or `,`.
pub(crate) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let r: IResult<&str, NaiveDateTime> = all_consuming(datetime).parse(s.trim());
    r.ok().map(|(_, dt)| dt)
}

/// A signed integer (`ReasonStart`, `ReasonStop`, `StopSide`).
pub(crate) fn parse_int(s: &str) -> Option<i32> {
    s.trim().parse::<i32>().ok()
}

/// A `bit` column: `0`/`1` (SSMS, sqlcmd, bcp) or `False`/`True`
/// (PowerShell `Export-Csv`, .NET).
pub(crate) fn parse_flag(s: &str) -> Option<bool> {
    let t = s.trim();
    if t == "1" || t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t == "0" || t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// True for `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (hex digits, any case).
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// An id as one canonical string: a GUID (with or without `{}`, any case)
/// becomes SQL Server's own text form, upper-case without braces; anything
/// else (an installation with integer ids) is kept as written, trimmed.
pub(crate) fn normalize_id(s: &str) -> String {
    let t = s.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .map(str::trim)
        .unwrap_or(t);
    if is_guid(inner) {
        inner.to_ascii_uppercase()
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> String {
        parse_datetime(s).map(|d| d.to_string()).unwrap_or_default()
    }

    #[test]
    fn date_forms() {
        assert_eq!(dt("2024-03-01 10:15:00.123"), "2024-03-01 10:15:00.123");
        assert_eq!(dt("2024-03-01T10:15:00.123"), "2024-03-01 10:15:00.123");
        assert_eq!(dt("01.03.2024 10:15:00.123"), "2024-03-01 10:15:00.123");
        assert_eq!(dt(" 2024-03-01 10:15:00 "), "2024-03-01 10:15:00");
        assert_eq!(dt("2024-03-01 10:15:00.1230000"), "2024-03-01 10:15:00.123");
        assert_eq!(dt("2024-03-01 10:15:00,5"), "2024-03-01 10:15:00.500");
        assert_eq!(dt("1.3.2024 9:05"), "2024-03-01 09:05:00");
        assert_eq!(dt("2024-3-1 10:15"), "2024-03-01 10:15:00");
        assert_eq!(dt("29.02.2024  23:59:59.999"), "2024-02-29 23:59:59.999");
    }

    #[test]
    fn bad_dates() {
        for s in [
            "",
            "NULL",
            "2024-03-01",
            "10:15:00",
            "2024-02-30 10:15:00",
            "30.02.2024 10:15:00",
            "2024-03-01 24:00:00",
            "2024-03-01 10:60:00",
            "2024-03-01 10:15:60",
            "2024-03-01 10:15:00.",
            "2024-03-01 10:15:00.1234567890",
            "2024-03-01 10:15:00 +03:00",
            "03/01/2024 10:15:00",
            "2024-03-01X10:15:00",
            "99999-03-01 10:15:00",
            "01.03.24 10:15:00",
        ] {
            assert_eq!(parse_datetime(s), None, "{s:?}");
        }
    }

    #[test]
    fn nulls_numbers_flags() {
        assert_eq!(non_null("NULL"), None);
        assert_eq!(non_null(" null "), None);
        assert_eq!(non_null(""), None);
        assert_eq!(non_null("   "), None);
        assert_eq!(non_null(" 101 "), Some("101"));
        assert_eq!(non_null("NULLS"), Some("NULLS"));
        assert_eq!(parse_int(" 5 "), Some(5));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("5.0"), None);
        assert_eq!(parse_int("99999999999"), None);
        assert_eq!(parse_flag("1"), Some(true));
        assert_eq!(parse_flag("False"), Some(false));
        assert_eq!(parse_flag("2"), None);
    }

    #[test]
    fn guids() {
        let g = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
        assert!(is_guid(g));
        assert_eq!(normalize_id(g), g);
        assert_eq!(normalize_id("{6f9619ff-8b86-d011-b42d-00c04fc964ff}"), g);
        assert_eq!(
            normalize_id(" { 6F9619FF-8B86-D011-B42D-00C04FC964FF } "),
            g
        );
        assert_eq!(normalize_id("12345"), "12345");
        assert_eq!(normalize_id("{not-a-guid}"), "{not-a-guid}");
        assert!(!is_guid("6F9619FF-8B86-D011-B42D-00C04FC964FG"));
        assert!(!is_guid("6F9619FF8B86D011B42D00C04FC964FF"));
        // multi-byte text of the same byte length is not a GUID and does not panic
        assert!(!is_guid("ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ"));
    }
}
