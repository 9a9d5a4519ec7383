//! Finding the `|` separators of a queue_log line in one pass, eight bytes
//! at a time (SWAR on `u64` words, no `unsafe`, no SIMD intrinsics), and
//! learning on the way whether the line is pure ASCII (then it is valid
//! UTF-8 and needs no further validation).
//!
//! A byte-at-a-time scan (nom's `take_till`, `split`) costs several
//! instructions per byte; this costs about one per byte plus a few per
//! separator found, which is most of what separates a queue_log parse from
//! a CSV loader's.

/// Separator positions kept; a line with more (a caller name full of `|`)
/// still counts them all, and its data fields are split by a second scan.
pub const MAX_BARS: usize = 24;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const BAR: u64 = LO * b'|' as u64;

/// Where the `|`s of a line are.
#[derive(Debug, Clone)]
pub struct Bars {
    pos: [u32; MAX_BARS],
    /// All the separators in the line (may exceed `MAX_BARS`).
    count: usize,
    /// OR of every byte: bit 7 set when some byte is not ASCII.
    high: u64,
}

impl Bars {
    /// Scans `line` (at most `u32::MAX` bytes are indexed; callers cap lines far below).
    #[inline]
    pub fn scan(line: &[u8]) -> Bars {
        // Locals rather than fields, so that they stay in registers.
        let mut pos = [0u32; MAX_BARS];
        let mut count = 0usize;
        let mut high = 0u64;
        let mut word = |w: u64, base: u32| {
            high |= w;
            let mut m = zero_bytes(w ^ BAR);
            while m != 0 {
                if let Some(slot) = pos.get_mut(count) {
                    *slot = base.wrapping_add(m.trailing_zeros() / 8);
                }
                count += 1;
                m &= m - 1;
            }
        };
        let mut chunks = line.chunks_exact(8);
        let mut base = 0u32;
        for chunk in &mut chunks {
            word(load(chunk), base);
            base = base.wrapping_add(8);
        }
        let rest = chunks.remainder().len();
        if rest > 0 {
            if let Some(last) = line.len().checked_sub(8).and_then(|at| line.get(at..)) {
                // The last eight bytes, shifted so that only the `rest` new
                // ones remain (the vacated high bytes are zero: neither '|'
                // nor non-ASCII).
                word(load(last) >> (8 * (8 - rest)), base);
            } else {
                let mut w = 0u64;
                for (i, &b) in chunks.remainder().iter().enumerate() {
                    w |= u64::from(b) << (8 * i);
                }
                word(w, base);
            }
        }
        Bars { pos, count, high }
    }

    /// True when every byte is ASCII.
    pub fn ascii(&self) -> bool {
        self.high & HI == 0
    }

    /// How many `|` the line has.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The byte offsets of the first `min(count, MAX_BARS)` separators.
    pub fn positions(&self) -> &[u32] {
        &self.pos[..self.count.min(MAX_BARS)]
    }

    /// True when [`positions`](Self::positions) holds every separator.
    pub fn complete(&self) -> bool {
        self.count <= MAX_BARS
    }
}

/// The first eight bytes of `b` as a little-endian word (0 if `b` is shorter).
#[inline(always)]
fn load(b: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    if let Some(head) = b.get(..8) {
        word.copy_from_slice(head);
    }
    u64::from_le_bytes(word)
}

/// Bit 7 set in exactly the bytes of `x` that are zero (no carries between
/// bytes: `(b & 0x7f) + 0x7f` stays below 0x100).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !(((x & !HI).wrapping_add(!HI)) | x) & HI
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(line: &[u8]) -> Vec<u32> {
        line.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'|')
            .map(|(i, _)| i as u32)
            .collect()
    }

    #[test]
    fn finds_every_bar_and_non_ascii() {
        let long = "|".repeat(MAX_BARS + 3);
        for line in [
            "",
            "|",
            "abc",
            "1546015415|1546015415.757927|201|NONE|ENTERQUEUE||+13238679471|1",
            "1|c|q|NONE|ENTERQUEUE||89161234567|2|Ivan | Petrov",
            "||||||||",
            "1234567|",
            "12345678|",
            "a|Привет|b",
            long.as_str(),
        ] {
            let b = Bars::scan(line.as_bytes());
            let want = naive(line.as_bytes());
            assert_eq!(b.count(), want.len(), "{line:?}");
            assert_eq!(b.complete(), want.len() <= MAX_BARS);
            assert_eq!(b.positions(), &want[..want.len().min(MAX_BARS)]);
            assert_eq!(b.ascii(), line.is_ascii(), "{line:?}");
        }
        // Every byte value, at every offset within a word.
        for v in 0..=255u8 {
            for at in 0..9 {
                let mut line = vec![b'x'; 9];
                line[at] = v;
                let b = Bars::scan(&line);
                assert_eq!(b.positions(), naive(&line).as_slice());
                assert_eq!(b.ascii(), line.is_ascii());
            }
        }
    }
}
