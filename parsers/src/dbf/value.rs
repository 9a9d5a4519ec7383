//! Field bytes → typed values.
//!
//! Blank is never an error: a blank `N`, `D`, `L`, `T` or `M` is the
//! variant's `None`. Bytes that do not fit the declared type become
//! [`DbfValue::Invalid`] (the rest of the record still decodes), and types
//! we do not interpret become [`DbfValue::Raw`].

use super::field::FieldType;
use crate::text::Charset;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// One decoded field value.
#[derive(Clone, Debug, PartialEq)]
pub enum DbfValue {
    /// `C`: text with trailing spaces and NULs removed (leading kept).
    Text(String),
    /// `N`, `F` (ASCII), `B` (VFP double), `Y` (currency). `None` when blank.
    Number(Option<f64>),
    /// `D`. `None` when blank or `00000000`.
    Date(Option<NaiveDate>),
    /// `L`. `None` for `?`, space or NUL.
    Logical(Option<bool>),
    /// `I`.
    Int(i32),
    /// `T` (VFP). `None` when both halves are zero or blank.
    DateTime(Option<NaiveDateTime>),
    /// `M`, `G`, `P`, dBase `B`: the memo block number. Memo files are not
    /// read. `None` when blank or 0 (no memo).
    Memo(Option<u32>),
    /// VFP NULL (the field's bit in `_NullFlags` is set).
    Null,
    /// Types we do not interpret (`_NullFlags`, `V`, `Q`, `+`, `@`, …).
    Raw(Vec<u8>),
    /// Bytes that do not parse as the declared type.
    Invalid(Vec<u8>),
}

impl DbfValue {
    /// True for values that carry nothing: blank text, `None`s, NULL.
    pub fn is_blank(&self) -> bool {
        match self {
            DbfValue::Text(s) => s.trim().is_empty(),
            DbfValue::Number(v) => v.is_none(),
            DbfValue::Date(v) => v.is_none(),
            DbfValue::Logical(v) => v.is_none(),
            DbfValue::DateTime(v) => v.is_none(),
            DbfValue::Memo(v) => v.is_none(),
            DbfValue::Null => true,
            DbfValue::Int(_) => false,
            DbfValue::Raw(b) | DbfValue::Invalid(b) => b.iter().all(|c| *c == b' ' || *c == 0),
        }
    }

    /// The text of a `C` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            DbfValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// A number from `N`/`F`/`B`/`Y` or `I`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            DbfValue::Number(v) => *v,
            DbfValue::Int(i) => Some(f64::from(*i)),
            _ => None,
        }
    }

    /// The value as trimmed text, `None` when blank: numbers without a
    /// spurious `.0`, dates as `YYYY-MM-DD`, datetimes as
    /// `YYYY-MM-DD HH:MM:SS`. Raw and invalid bytes are decoded lossily as
    /// UTF-8.
    pub fn to_text(&self) -> Option<String> {
        if self.is_blank() {
            return None;
        }
        Some(match self {
            DbfValue::Text(s) => s.trim().to_string(),
            DbfValue::Number(Some(n)) => format_number(*n),
            DbfValue::Int(i) => i.to_string(),
            DbfValue::Date(Some(d)) => d.format("%Y-%m-%d").to_string(),
            DbfValue::DateTime(Some(t)) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            DbfValue::Logical(Some(b)) => if *b { "T" } else { "F" }.to_string(),
            DbfValue::Memo(Some(m)) => m.to_string(),
            DbfValue::Raw(b) | DbfValue::Invalid(b) => String::from_utf8_lossy(b)
                .trim_matches([' ', '\0'])
                .to_string(),
            _ => return None,
        })
    }
}

/// Integers print without a fraction; others in Rust's shortest form.
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn is_pad(b: &u8) -> bool {
    *b == b' ' || *b == 0
}

/// `bytes` without leading and trailing spaces and NULs.
fn trim_pad(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !is_pad(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |p| p + 1);
    &bytes[start..end]
}

/// `bytes` without trailing spaces and NULs.
fn trim_pad_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| !is_pad(b)).map_or(0, |p| p + 1);
    &bytes[..end]
}

/// Decodes one field. `vfp` tells the VFP `B` double from dBase IV's `B`
/// memo reference.
pub(crate) fn decode(ty: FieldType, bytes: &[u8], charset: Charset, vfp: bool) -> DbfValue {
    let invalid = || DbfValue::Invalid(bytes.to_vec());
    match ty {
        FieldType::Character => DbfValue::Text(charset.decode(trim_pad_end(bytes)).into_owned()),
        FieldType::Numeric | FieldType::Float => match parse_ascii_number(bytes) {
            Some(v) => DbfValue::Number(v),
            None => invalid(),
        },
        FieldType::Date => {
            let t = trim_pad(bytes);
            if t.is_empty() || t.iter().all(|b| *b == b'0') {
                return DbfValue::Date(None);
            }
            match parse_yyyymmdd(t) {
                Some(d) => DbfValue::Date(Some(d)),
                None => invalid(),
            }
        }
        FieldType::Logical => match trim_pad(bytes) {
            [] | [b'?'] => DbfValue::Logical(None),
            [b'T' | b't' | b'Y' | b'y'] => DbfValue::Logical(Some(true)),
            [b'F' | b'f' | b'N' | b'n'] => DbfValue::Logical(Some(false)),
            _ => invalid(),
        },
        FieldType::Integer => match <[u8; 4]>::try_from(bytes) {
            Ok(b) => DbfValue::Int(i32::from_le_bytes(b)),
            Err(_) => invalid(),
        },
        FieldType::DateTime => decode_vfp_datetime(bytes).unwrap_or_else(invalid),
        FieldType::Double if vfp || bytes.len() == 8 => match <[u8; 8]>::try_from(bytes) {
            Ok(b) => {
                let v = f64::from_le_bytes(b);
                if v.is_finite() {
                    DbfValue::Number(Some(v))
                } else {
                    invalid()
                }
            }
            Err(_) => invalid(),
        },
        FieldType::Currency => match <[u8; 8]>::try_from(bytes) {
            Ok(b) => DbfValue::Number(Some(i64::from_le_bytes(b) as f64 / 10_000.0)),
            Err(_) => invalid(),
        },
        FieldType::Memo | FieldType::BlobMemo | FieldType::Double => {
            decode_memo_ref(bytes).unwrap_or_else(invalid)
        }
        FieldType::NullFlags | FieldType::Other(_) => DbfValue::Raw(bytes.to_vec()),
    }
}

/// `N`/`F` text: blank (spaces, NULs, dBase's `*` overflow marks) is
/// `Some(None)`; a comma decimal separator is accepted (dbfread does);
/// anything but digits, sign, `.` and an exponent is `None` (invalid).
fn parse_ascii_number(bytes: &[u8]) -> Option<Option<f64>> {
    let t = trim_pad(bytes);
    if t.is_empty() || t.iter().all(|b| *b == b'*') {
        return Some(None);
    }
    if !t
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b',' | b'e' | b'E'))
        || !t.iter().any(u8::is_ascii_digit)
    {
        return None;
    }
    let s: String = t
        .iter()
        .map(|&b| if b == b',' { '.' } else { char::from(b) })
        .collect();
    s.parse::<f64>().ok().filter(|v| v.is_finite()).map(Some)
}

fn parse_yyyymmdd(t: &[u8]) -> Option<NaiveDate> {
    if t.len() != 8 || !t.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| {
        t[r].iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    NaiveDate::from_ymd_opt(i32::try_from(n(0..4)).ok()?, n(4..6), n(6..8))
}

/// Julian day number of 1970-01-01.
const JDN_UNIX_EPOCH: i64 = 2_440_588;

fn decode_vfp_datetime(bytes: &[u8]) -> Option<DbfValue> {
    let b: [u8; 8] = bytes.try_into().ok()?;
    if b.iter().all(|c| *c == 0) || b.iter().all(|c| *c == b' ') {
        return Some(DbfValue::DateTime(None));
    }
    let jd = i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let ms = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let date = epoch.checked_add_signed(chrono::TimeDelta::try_days(jd - JDN_UNIX_EPOCH)?)?;
    let ms = u32::try_from(ms).ok().filter(|m| *m < 86_400_000)?;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000)?;
    Some(DbfValue::DateTime(Some(NaiveDateTime::new(date, time))))
}

/// A memo reference: 4 bytes little-endian (VFP) or ASCII digits (dBase).
fn decode_memo_ref(bytes: &[u8]) -> Option<DbfValue> {
    let block = match <[u8; 4]>::try_from(bytes) {
        // Four spaces: a blank reference some writers leave in new rows.
        Ok([b' ', b' ', b' ', b' ']) => 0,
        Ok(b) => u32::from_le_bytes(b),
        Err(_) => ascii_u32(bytes)?,
    };
    Some(DbfValue::Memo((block != 0).then_some(block)))
}

fn ascii_u32(bytes: &[u8]) -> Option<u32> {
    let t = trim_pad(bytes);
    if t.is_empty() {
        return Some(0);
    }
    if !t.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(t).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ty: u8, bytes: &[u8]) -> DbfValue {
        decode(FieldType::from_byte(ty), bytes, Charset::Cp866, false)
    }

    #[test]
    fn numbers() {
        assert_eq!(d(b'N', b"   42"), DbfValue::Number(Some(42.0)));
        assert_eq!(
            d(b'N', b" 1234.      \0\0\0\0"),
            DbfValue::Number(Some(1234.0))
        );
        assert_eq!(d(b'N', b"     "), DbfValue::Number(None));
        assert_eq!(d(b'N', b"\0\0\0"), DbfValue::Number(None));
        assert_eq!(d(b'N', b"*****"), DbfValue::Number(None));
        assert_eq!(d(b'N', b"  -3,5"), DbfValue::Number(Some(-3.5)));
        assert_eq!(d(b'F', b" 1.5e2"), DbfValue::Number(Some(150.0)));
        assert_eq!(d(b'N', b"  inf"), DbfValue::Invalid(b"  inf".to_vec()));
        assert_eq!(d(b'N', b"  1-2"), DbfValue::Invalid(b"  1-2".to_vec()));
        assert_eq!(d(b'N', b"   ."), DbfValue::Invalid(b"   .".to_vec()));
        assert_eq!(
            d(b'Y', &12_345_000i64.to_le_bytes()),
            DbfValue::Number(Some(1234.5))
        );
        assert_eq!(
            decode(
                FieldType::Double,
                &2.5f64.to_le_bytes(),
                Charset::Cp866,
                true
            ),
            DbfValue::Number(Some(2.5))
        );
        assert_eq!(d(b'I', &(-7i32).to_le_bytes()), DbfValue::Int(-7));
        assert!(matches!(d(b'I', b"123"), DbfValue::Invalid(_)));
    }

    #[test]
    fn text_dates_logicals() {
        // "Вх" in cp866, padded.
        assert_eq!(
            d(b'C', &[0x82, 0xE5, b' ', b' ']),
            DbfValue::Text("Вх".into())
        );
        assert_eq!(d(b'C', b"  a b  \0"), DbfValue::Text("  a b".into()));
        assert_eq!(
            d(b'D', b"20240127"),
            DbfValue::Date(NaiveDate::from_ymd_opt(2024, 1, 27))
        );
        assert_eq!(d(b'D', b"        "), DbfValue::Date(None));
        assert_eq!(d(b'D', b"00000000"), DbfValue::Date(None));
        assert!(matches!(d(b'D', b"20241327"), DbfValue::Invalid(_)));
        assert!(matches!(d(b'D', b"2024-1-2"), DbfValue::Invalid(_)));
        assert_eq!(d(b'L', b"T"), DbfValue::Logical(Some(true)));
        assert_eq!(d(b'L', b"n"), DbfValue::Logical(Some(false)));
        assert_eq!(d(b'L', b"?"), DbfValue::Logical(None));
        assert_eq!(d(b'L', b" "), DbfValue::Logical(None));
        assert!(matches!(d(b'L', b"x"), DbfValue::Invalid(_)));
    }

    #[test]
    fn vfp_datetime() {
        // 2024-01-27 = JDN 2460337; 19:23:16.500
        let mut b = 2_460_337i32.to_le_bytes().to_vec();
        b.extend(((19 * 3600 + 23 * 60 + 16) * 1000 + 500i32).to_le_bytes());
        let DbfValue::DateTime(Some(t)) = d(b'T', &b) else {
            panic!("not a datetime");
        };
        assert_eq!(t.to_string(), "2024-01-27 19:23:16.500");
        assert_eq!(d(b'T', &[0; 8]), DbfValue::DateTime(None));
        let mut bad = 2_460_337i32.to_le_bytes().to_vec();
        bad.extend(90_000_000i32.to_le_bytes());
        assert!(matches!(d(b'T', &bad), DbfValue::Invalid(_)));
        assert!(matches!(d(b'T', &[0xFF; 8]), DbfValue::Invalid(_)));
        assert!(matches!(d(b'T', &[1; 3]), DbfValue::Invalid(_)));
    }

    #[test]
    fn memo_refs() {
        assert_eq!(d(b'M', &1u32.to_le_bytes()), DbfValue::Memo(Some(1)));
        assert_eq!(d(b'M', &[0; 4]), DbfValue::Memo(None));
        assert_eq!(d(b'M', b"        12"), DbfValue::Memo(Some(12)));
        assert_eq!(d(b'M', b"          "), DbfValue::Memo(None));
        // Binary block 32 is 0x20 0 0 0: not blank.
        assert_eq!(d(b'M', &[0x20, 0, 0, 0]), DbfValue::Memo(Some(32)));
        assert_eq!(d(b'M', b"    "), DbfValue::Memo(None));
        assert!(matches!(d(b'M', b"    ab    "), DbfValue::Invalid(_)));
        // dBase IV B (10 ASCII bytes) is a memo reference too.
        assert_eq!(d(b'B', b"         3"), DbfValue::Memo(Some(3)));
    }

    #[test]
    fn text_forms() {
        assert_eq!(
            DbfValue::Number(Some(201.0)).to_text().as_deref(),
            Some("201")
        );
        assert_eq!(
            DbfValue::Number(Some(2.5)).to_text().as_deref(),
            Some("2.5")
        );
        assert_eq!(DbfValue::Text("  ".into()).to_text(), None);
        assert_eq!(DbfValue::Null.to_text(), None);
        assert_eq!(DbfValue::Int(0).to_text().as_deref(), Some("0"));
        assert!(DbfValue::Raw(vec![0, b' ']).is_blank());
    }
}
