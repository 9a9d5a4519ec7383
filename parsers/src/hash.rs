//! 64-bit FNV-1a (<http://www.isthe.com/chongo/tech/comp/fnv/>), written out
//! so the values never depend on std's unspecified `DefaultHasher`: they are
//! stored (file fingerprints in event ids, DBF row hashes, Oktell leg
//! fingerprints) and must stay the same across runs, platforms and Rust
//! versions.

use chrono::{DateTime, Utc};

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a of `bytes` in one call.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(bytes);
    h.finish()
}

/// A streaming FNV-1a hasher, with length-prefixed helpers so that field
/// boundaries and absence are part of the value (`("ab","c")` ≠ `("a","bc")`,
/// `None` ≠ `Some("")`).
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Fnv1a {
    pub fn new() -> Self {
        Fnv1a(OFFSET)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// An optional string: presence tag, length, bytes.
    pub fn write_opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.write(&[1]);
                self.write(&(s.len() as u64).to_le_bytes());
                self.write(s.as_bytes());
            }
            None => self.write(&[0]),
        }
    }

    /// An optional instant: presence tag, seconds, nanoseconds.
    pub fn write_opt_time(&mut self, t: Option<DateTime<Utc>>) {
        match t {
            Some(t) => {
                self.write(&[1]);
                self.write(&t.timestamp().to_le_bytes());
                self.write(&t.timestamp_subsec_nanos().to_le_bytes());
            }
            None => self.write(&[0]),
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        for (input, want) in [
            ("", 0xcbf2_9ce4_8422_2325u64),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ] {
            assert_eq!(fnv1a64(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn boundaries_and_absence_count() {
        let h = |parts: &[Option<&str>]| {
            let mut f = Fnv1a::new();
            parts.iter().for_each(|p| f.write_opt_str(*p));
            f.finish()
        };
        assert_ne!(h(&[Some("ab"), Some("c")]), h(&[Some("a"), Some("bc")]));
        assert_ne!(h(&[None]), h(&[Some("")]));
    }
}
