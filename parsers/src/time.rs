//! Timestamps: epoch seconds and naive local date-times to UTC.
//!
//! PBXes write local times with no zone marker (CDR dates, queue_log DB
//! exports); each source has a configured zone. A local time that does not
//! exist (DST gap) is rejected; an ambiguous one (DST fold) takes the earlier
//! instant, which is what a PBX clock that was stepped back wrote first.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional `.fraction` (any number of
/// digits) or a `T` separator.
pub fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    let b = s.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let mut nanos = 0u32;
    if b.len() > 19 {
        if b[19] != b'.' && b[19] != b',' {
            return None;
        }
        let frac = &b[20..];
        if frac.is_empty() || frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for (i, &c) in frac.iter().enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
    }
    let time = NaiveTime::from_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)?;
    Some(NaiveDateTime::new(date, time))
}

/// Interprets a naive local time in `tz`.
pub fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// Whole epoch seconds to UTC, remembering the last day's date: queue_log
/// lines come in time order, so nearly every line falls on the same day as
/// the one before and only the time of day is left to compute.
#[derive(Debug, Clone, Default)]
pub struct EpochClock {
    last: Option<(i64, NaiveDate)>,
}

impl EpochClock {
    /// The same instant as `DateTime::from_timestamp(secs, 0)`.
    #[inline]
    pub fn utc(&mut self, secs: i64) -> Option<DateTime<Utc>> {
        let day = secs.div_euclid(86_400);
        let date = match self.last {
            Some((d, date)) if d == day => date,
            _ => {
                // 719_163: days from 0001-01-01 (CE day 1) to 1970-01-01.
                let ce = i32::try_from(day.checked_add(719_163)?).ok()?;
                let date = NaiveDate::from_num_days_from_ce_opt(ce)?;
                self.last = Some((day, date));
                date
            }
        };
        let of_day = u32::try_from(secs.rem_euclid(86_400)).ok()?;
        let time = NaiveTime::from_num_seconds_from_midnight_opt(of_day, 0)?;
        Some(NaiveDateTime::new(date, time).and_utc())
    }
}

/// Parses integer (or fractional) epoch seconds.
pub fn parse_epoch(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim_ascii();
    // Fast path: whole seconds, the queue_log norm.
    if !s.is_empty() && s.len() <= 12 && s.bytes().all(|c| c.is_ascii_digit()) {
        let secs = s.bytes().fold(0i64, |v, c| v * 10 + i64::from(c - b'0'));
        return DateTime::from_timestamp(secs, 0);
    }
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    if secs.is_empty() || !secs.bytes().all(|c| c.is_ascii_digit()) || secs.len() > 12 {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0u32;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        for (i, c) in f.bytes().enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
    }
    DateTime::from_timestamp(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_forms() {
        let t = parse_naive("2012-07-04 07:33:21.165823").unwrap();
        assert_eq!(t.to_string(), "2012-07-04 07:33:21.165823");
        assert!(parse_naive("2012-07-04 07:33:21").is_some());
        assert!(parse_naive("2012-07-04T07:33:21").is_some());
        assert!(parse_naive("2012-13-04 07:33:21").is_none());
        assert!(parse_naive("2012-07-04 07:33:21.").is_none());
        assert!(parse_naive("2012-07-04 07:33").is_none());
    }

    #[test]
    fn local_zone_and_dst() {
        let tz: Tz = "Europe/Moscow".parse().unwrap();
        let t = local_to_utc(parse_naive("2024-01-27 19:23:16").unwrap(), tz).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-27T16:23:16+00:00");
        let ny: Tz = "America/New_York".parse().unwrap();
        // spring-forward gap does not exist
        assert!(local_to_utc(parse_naive("2024-03-10 02:30:00").unwrap(), ny).is_none());
        // fall-back fold takes the earlier instant (EDT)
        let f = local_to_utc(parse_naive("2024-11-03 01:30:00").unwrap(), ny).unwrap();
        assert_eq!(f.to_rfc3339(), "2024-11-03T05:30:00+00:00");
    }

    #[test]
    fn clock_matches_from_timestamp() {
        let mut clock = EpochClock::default();
        let mut secs: Vec<i64> = vec![0, 1, 86_399, 86_400, 86_401, -1, -86_400, -86_401];
        secs.extend([
            1_546_015_415,
            999_999_999_999,
            i64::MAX,
            i64::MIN,
            -62_135_596_800,
        ]);
        secs.extend((0..5_000).map(|i| 1_717_000_000 + i * 997));
        secs.extend((0..2_000).map(|i| i * 123_456_789_011 % 1_000_000_000_000));
        for s in secs {
            assert_eq!(clock.utc(s), DateTime::from_timestamp(s, 0), "{s}");
            // and again, now from the cached day
            assert_eq!(clock.utc(s), DateTime::from_timestamp(s, 0), "{s}");
        }
    }

    #[test]
    fn epochs() {
        assert_eq!(parse_epoch("1546015415").unwrap().timestamp(), 1546015415);
        assert_eq!(parse_epoch("1.5").unwrap().timestamp_subsec_millis(), 500);
        assert!(parse_epoch("").is_none());
        assert!(parse_epoch("-5").is_none());
        assert!(parse_epoch("12a").is_none());
        assert!(parse_epoch("99999999999999999999").is_none());
    }
}
