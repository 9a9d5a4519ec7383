//! `party_key`: a `UBIGINT` beside every party column of the state tables
//! (`calls.party`, and `caller` of `callers`, `last_agent`,
//! `missed_calls`), so the deriver finds a party's rows by joining on a
//! number. DuckDB (2.0) does not push a join's keys into a scan: finding
//! 13 parties' calls decodes every row of `calls`, and one `VARCHAR` key
//! costs about as much as the rest (at 10 M events, one thread: 200 ms a
//! pass by `party`, 105 ms by `party_key`; the three deletes 48 → 13 ms
//! each). docs/schema.md documents the column.
//!
//! A number (1–17 digits with an optional `+`, what every E.164 and internal
//! number is) packs into the key exactly, as the lookup's memory packs it;
//! anything else takes a 64-bit FNV-1a hash with the top bit set (packed
//! numbers stay below 2^63). Two parties may therefore share a key; the
//! deriver recomputes every party whose rows a key finds, so a collision
//! costs a little work and never a wrong row.

/// Digits a packed key holds at most (10^17 < 2^57: with the length and
/// the `+`, 63 bits).
const PACKED_DIGITS: usize = 17;

/// The `party_key` of `party` (see the module doc).
pub fn party_key(party: &str) -> u64 {
    packed(party).unwrap_or_else(|| fnv1a(party.as_bytes()) | 1 << 63)
}

/// `party_key` of an optional party (a call without a party has none).
pub fn party_key_of(party: Option<&str>) -> Option<u64> {
    party.map(party_key)
}

/// The party a packed key was made from; `None` for a hashed key (a
/// party that is no number: its key does not give it back).
pub fn unpacked(key: u64) -> Option<String> {
    if key >> 63 == 1 {
        return None;
    }
    let (value, len, plus) = (key >> 6, ((key >> 1) & 31) as usize, key & 1 == 1);
    Some(format!("{}{value:0len$}", if plus { "+" } else { "" }))
}

/// Whether `key` is a hash (its party is no number).
pub fn is_hashed(key: u64) -> bool {
    key >> 63 == 1
}

/// `key` packed exactly, when it is a number (see the module doc).
pub(crate) fn packed(key: &str) -> Option<u64> {
    let (plus, digits) = match key.strip_prefix('+') {
        Some(d) => (1, d),
        None => (0, key),
    };
    if digits.is_empty()
        || digits.len() > PACKED_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(value << 6 | (digits.len() as u64) << 1 | plus)
}

/// FNV-1a, 64 bits: fixed forever (keys are stored), unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_pack_exactly_and_others_hash_above_them() {
        assert_eq!(party_key("+79161234567"), 79161234567 << 6 | 11 << 1 | 1);
        assert_ne!(party_key("79161234567"), party_key("+79161234567"));
        // Leading zeros are kept by the length.
        assert_ne!(party_key("0201"), party_key("201"));
        assert!(party_key("99999999999999999") < 1 << 63);
        // 18 digits, a name, a URI: hashed, top bit set, stable.
        for other in [
            "999999999999999999",
            "anonymous",
            "sip:alice@example.com",
            "",
        ] {
            assert!(party_key(other) >= 1 << 63, "{other}");
        }
        assert_eq!(party_key("anonymous"), fnv1a(b"anonymous") | 1 << 63);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(party_key_of(None), None);
        for number in [
            "+79161234567",
            "0201",
            "201",
            "+0",
            "99999999999999999",
            "00000",
        ] {
            assert_eq!(unpacked(party_key(number)).as_deref(), Some(number));
            assert!(!is_hashed(party_key(number)));
        }
        assert_eq!(unpacked(party_key("anonymous")), None);
        assert!(is_hashed(party_key("anonymous")));
    }
}
