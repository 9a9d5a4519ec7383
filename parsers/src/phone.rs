//! Phone number normalization to E.164 (with the `phonenumber` crate, a port
//! of libphonenumber), keyed on a configured default region.
//!
//! Rules, in order (documented in `docs/events.md`):
//! 1. Trim; drop a `tel:`/`sip:` scheme and anything from `@`; an empty value
//!    or a privacy sentinel (`anonymous`, `unknown`, `restricted`, …) gives no number.
//! 2. Digits only and at most `max_internal_len` long (default 6): an internal
//!    extension, kept as it is (`201`).
//! 3. libphonenumber parses it under the default region and calls it valid:
//!    E.164 (`89161234567`, `+79161234567`, `79161234567` → `+79161234567` for RU).
//! 4. Letters and at most `max_internal_len` digits: an endpoint name
//!    (`client1`, `reception`), kept as written.
//! 5. Otherwise, when all its digits are in one leading run of digits and
//!    separators (`+ - . ( ) /`, spaces; trailing words are dropped), the fallback: `+` and the digits when it was
//!    written with a leading `+` or `00`, else the bare digits. Anything
//!    else (digits mixed with letters or other signs) is kept as written,
//!    never merged into a number: `79161110002;x666` is not `79161110002666`.
//!    A value with control characters (`\r`, `\n`, …) or more than 24
//!    digits gives no number.
//!    The raw text is always kept beside the key.
//! 6. With `match_last_digits = N`, the key is instead the last N digits of
//!    whatever rule 3/4 produced, for PBXes whose trunks mangle prefixes.

use crate::event::Str;
use phonenumber::{country, Mode};
use rustc_hash::FxHashMap;

/// How numbers are normalized for one calltrail instance.
#[derive(Debug, Clone)]
pub struct NumberConfig {
    /// ISO 3166 region used for numbers written without a country code.
    pub default_region: String,
    /// Digit strings up to this length are internal extensions.
    pub max_internal_len: usize,
    /// When set, numbers are keyed on their last N digits only.
    pub match_last_digits: Option<usize>,
}

impl Default for NumberConfig {
    fn default() -> Self {
        NumberConfig {
            default_region: "RU".into(),
            max_internal_len: 6,
            match_last_digits: None,
        }
    }
}

/// Error for a region libphonenumber does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown region {0:?}: expected an ISO 3166 two-letter code such as RU, UA, US")]
pub struct UnknownRegion(pub String);

/// Normalizes numbers, caching results (callers repeat a lot, and
/// libphonenumber parsing costs microseconds).
#[derive(Debug)]
pub struct NumberNormalizer {
    region: country::Id,
    cfg: NumberConfig,
    /// Raw text → index into `results` (an index, so that a hit can return a
    /// borrow of `results`).
    cache: FxHashMap<Box<str>, u32>,
    results: Vec<Option<Str>>,
}

const CACHE_LIMIT: usize = 200_000;

/// More digits than this is no phone number (E.164 has at most 15; room is
/// left for dial prefixes and trunk codes).
const MAX_DIGITS: usize = 24;

const SENTINELS: &[&str] = &[
    "anonymous",
    "unknown",
    "restricted",
    "private",
    "unavailable",
    "withheld",
    "none",
    "null",
    "<unknown>",
    "s",
];

impl NumberNormalizer {
    pub fn new(cfg: NumberConfig) -> Result<Self, UnknownRegion> {
        let region: country::Id = cfg
            .default_region
            .trim()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| UnknownRegion(cfg.default_region.clone()))?;
        Ok(NumberNormalizer {
            region,
            cfg,
            cache: FxHashMap::default(),
            results: Vec::new(),
        })
    }

    /// Checks that a region name is one libphonenumber knows.
    pub fn check_region(region: &str) -> Result<(), UnknownRegion> {
        region
            .trim()
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map(|_| ())
            .map_err(|_| UnknownRegion(region.to_string()))
    }

    /// The normalized key for `raw`, or `None` when it carries no number.
    pub fn normalize(&mut self, raw: &str) -> Option<String> {
        self.normalize_ref(raw).map(|s| s.to_string())
    }

    /// [`normalize`](Self::normalize) without copying: a borrow of the
    /// cached, shared result (one hash lookup on a hit, no allocation).
    pub fn normalize_ref(&mut self, raw: &str) -> Option<&Str> {
        if let Some(&i) = self.cache.get(raw) {
            if (i as usize) < self.results.len() {
                return self.results[i as usize].as_ref();
            }
        }
        let out = self.compute(raw).map(Str::from);
        if self.results.len() >= CACHE_LIMIT {
            self.cache.clear();
            self.results.clear();
        }
        let i = self.results.len();
        self.results.push(out);
        self.cache.insert(raw.into(), i as u32);
        self.results[i].as_ref()
    }

    fn compute(&self, raw: &str) -> Option<String> {
        let mut s = raw.trim();
        for scheme in ["tel:", "sip:", "sips:"] {
            if s.get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
            {
                s = &s[scheme.len()..];
            }
        }
        if let Some(at) = s.find('@') {
            s = &s[..at];
        }
        let s = s.trim();
        if s.is_empty()
            || SENTINELS.iter().any(|w| s.eq_ignore_ascii_case(w))
            || s.chars().any(char::is_control)
        {
            return None;
        }
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let plain_digits = s.bytes().all(|b| b.is_ascii_digit());
        if plain_digits && digits.len() <= self.cfg.max_internal_len {
            return Some(digits);
        }
        let e164 = (digits.len() > self.cfg.max_internal_len)
            .then(|| self.e164(s))
            .flatten();
        if e164.is_none()
            && digits.len() <= self.cfg.max_internal_len
            && s.chars().any(char::is_alphabetic)
        {
            // An endpoint name (`client1`, `reception`), not a number.
            return Some(s.chars().take(64).collect());
        }
        if digits.is_empty() {
            return None;
        }
        // Every digit within the leading run of digits and separators
        // (trailing words such as `+7 916 123-45-67 Ж` are dropped).
        let run = s
            .find(|c: char| {
                !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | '/' | ' '))
            })
            .unwrap_or(s.len());
        let phone_like = !s[run..].bytes().any(|b| b.is_ascii_digit());
        if e164.is_none() && digits.len() > MAX_DIGITS {
            // No numbering plan has this many digits: not a number (a
            // 10 KB caller id never becomes a 10 KB key).
            return None;
        }
        if e164.is_none() && !phone_like {
            // Digits among letters or other signs: not a number to dial or
            // to merge with one; kept as written (bounded).
            return Some(s.chars().take(64).collect());
        }
        let full = e164.unwrap_or_else(|| {
            if s.starts_with('+') {
                format!("+{digits}")
            } else if let Some(rest) = digits.strip_prefix("00") {
                format!("+{rest}")
            } else {
                digits
            }
        });
        Some(match self.cfg.match_last_digits {
            Some(n) => {
                let d: Vec<char> = full.chars().filter(char::is_ascii_digit).collect();
                d[d.len().saturating_sub(n)..].iter().collect()
            }
            None => full,
        })
    }

    fn e164(&self, s: &str) -> Option<String> {
        let n = phonenumber::parse(Some(self.region), s).ok()?;
        if !phonenumber::is_valid(&n) {
            return None;
        }
        Some(n.format().mode(Mode::E164).to_string())
    }
}

/// What kind of line a number is, as libphonenumber's metadata says
/// (SMS rules send only to mobiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Mobile,
    /// Numbering plans that do not tell (US, CA, …): may be a mobile.
    FixedLineOrMobile,
    FixedLine,
    /// Toll-free, premium, VoIP, pager, …
    Other,
    /// Not a valid international number.
    Invalid,
}

impl LineKind {
    /// The kind of an E.164 number (`+` and digits).
    pub fn of(e164: &str) -> LineKind {
        use phonenumber::metadata::DATABASE;
        use phonenumber::Type;
        if !e164.starts_with('+') {
            return LineKind::Invalid;
        }
        let Ok(n) = phonenumber::parse(None, e164) else {
            return LineKind::Invalid;
        };
        if !phonenumber::is_valid(&n) {
            return LineKind::Invalid;
        }
        match n.number_type(&DATABASE) {
            Type::Mobile => LineKind::Mobile,
            Type::FixedLineOrMobile => LineKind::FixedLineOrMobile,
            Type::FixedLine => LineKind::FixedLine,
            _ => LineKind::Other,
        }
    }

    /// The name used in reasons and docs.
    pub fn name(self) -> &'static str {
        match self {
            LineKind::Mobile => "mobile",
            LineKind::FixedLineOrMobile => "fixed_line_or_mobile",
            LineKind::FixedLine => "fixed_line",
            LineKind::Other => "other",
            LineKind::Invalid => "invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_kinds() {
        assert_eq!(LineKind::of("+79161234567"), LineKind::Mobile);
        assert_eq!(LineKind::of("+74951234567"), LineKind::FixedLine);
        assert_eq!(LineKind::of("+12015550123"), LineKind::FixedLineOrMobile);
        assert_eq!(LineKind::of("+80012340000"), LineKind::Other);
        assert_eq!(LineKind::of("79161234567"), LineKind::Invalid);
        assert_eq!(LineKind::of("+7"), LineKind::Invalid);
    }

    fn norm(region: &str) -> NumberNormalizer {
        NumberNormalizer::new(NumberConfig {
            default_region: region.into(),
            ..NumberConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn russian_forms_are_one_caller() {
        let mut n = norm("RU");
        for raw in [
            "89161234567",
            "+79161234567",
            "79161234567",
            "8 (916) 123-45-67",
            "9161234567",
        ] {
            assert_eq!(n.normalize(raw).as_deref(), Some("+79161234567"), "{raw}");
        }
    }

    #[test]
    fn ukraine_and_foreign() {
        let mut ua = norm("UA");
        assert_eq!(
            ua.normalize("+380441234567").as_deref(),
            Some("+380441234567")
        );
        assert_eq!(ua.normalize("0441234567").as_deref(), Some("+380441234567"));
        let mut ru = norm("RU");
        assert_eq!(
            ru.normalize("+13238679471").as_deref(),
            Some("+13238679471")
        );
    }

    #[test]
    fn extensions_sentinels_and_fallback() {
        let mut n = norm("RU");
        assert_eq!(n.normalize("201").as_deref(), Some("201"));
        assert_eq!(n.normalize(" 7009 ").as_deref(), Some("7009"));
        assert_eq!(n.normalize("anonymous"), None);
        assert_eq!(n.normalize(""), None);
        assert_eq!(n.normalize("sip:201@10.0.0.1").as_deref(), Some("201"));
        assert_eq!(n.normalize("client1").as_deref(), Some("client1"));
        assert_eq!(
            n.normalize("sip:reception@pbx").as_deref(),
            Some("reception")
        );
        assert_eq!(
            n.normalize("+7 916 123-45-67 Ж").as_deref(),
            Some("+79161234567")
        );
        // 555 numbers are not valid: keep + and digits
        assert_eq!(n.normalize("+15556667775").as_deref(), Some("+15556667775"));
        assert_eq!(
            n.normalize("0015556667775").as_deref(),
            Some("+15556667775")
        );
        assert_eq!(
            n.normalize("1234567890123").as_deref(),
            Some("1234567890123")
        );
    }

    #[test]
    fn hostile_ids_are_never_merged_into_numbers() {
        let mut n = norm("RU");
        // Control characters: no number at all.
        assert_eq!(n.normalize("79161110002\rChannel: Local/666@evil"), None);
        assert_eq!(n.normalize("79161110002\n666"), None);
        // Digits among other signs stay text, never `79161110002666`.
        for raw in ["7916111000;2666", "1234567${SHELL(id)}89", "12345678|9&0"] {
            let k = n.normalize(raw).unwrap();
            assert_eq!(k, raw, "{raw:?}");
        }
        assert_eq!(
            n.normalize("+7 (916) 123-45-67").as_deref(),
            Some("+79161234567")
        );
        assert_eq!(
            n.normalize("+1 555.666.7775").as_deref(),
            Some("+15556667775")
        );
    }

    #[test]
    fn non_ascii_never_panics() {
        let mut n = norm("RU");
        for raw in [
            "Неизвестен",
            "тел:123",
            "s\u{301}ip:1",
            "😀😀😀",
            "sip:Ива@x",
        ] {
            let _ = n.normalize(raw);
        }
        assert_eq!(n.normalize("Неизвестен").as_deref(), Some("Неизвестен"));
    }

    #[test]
    fn last_digits_mode() {
        let mut n = NumberNormalizer::new(NumberConfig {
            match_last_digits: Some(10),
            ..NumberConfig::default()
        })
        .unwrap();
        assert_eq!(n.normalize("89161234567").as_deref(), Some("9161234567"));
        assert_eq!(
            n.normalize("+7 916 123 45 67").as_deref(),
            Some("9161234567")
        );
    }

    #[test]
    fn bad_region() {
        assert!(NumberNormalizer::new(NumberConfig {
            default_region: "XX".into(),
            ..NumberConfig::default()
        })
        .is_err());
    }
}
