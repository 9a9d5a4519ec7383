//! Finding the `|` separators of a queue_log line in one pass, sixteen
//! bytes at a time with SSE2 on x86_64 (eight at a time in a `u64`
//! elsewhere and for short lines; the only `unsafe` is calling the SSE2
//! function, which x86_64 always supports), and learning on
//! the way whether the line is pure ASCII (then it is valid UTF-8 and needs
//! no further validation).
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
        #[cfg(target_arch = "x86_64")]
        if line.len() >= 16 {
            // SAFETY: `scan_sse2` only needs SSE2, which every x86_64 CPU
            // has (it is part of the x86_64 baseline the target is built
            // for); the function itself does no unchecked memory access.
            return unsafe { scan_sse2(line) };
        }
        scan_words(line)
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

/// Records the separators of one bit mask (bit `i * bits_per_byte` = byte
/// `base + i`). `pos` and `count` are separate locals of the caller (not
/// one struct), so that `count` stays in a register.
#[inline(always)]
fn push(
    pos: &mut [u32; MAX_BARS],
    count: &mut usize,
    mut mask: u64,
    base: u32,
    bits_per_byte: u32,
) {
    while mask != 0 {
        if let Some(slot) = pos.get_mut(*count) {
            *slot = base.wrapping_add(mask.trailing_zeros() / bits_per_byte);
        }
        *count += 1;
        mask &= mask - 1;
    }
}

/// The portable scan: eight bytes per step in a `u64`.
#[inline]
fn scan_words(line: &[u8]) -> Bars {
    let mut pos = [0u32; MAX_BARS];
    let mut count = 0usize;
    let mut high = 0u64;
    let mut chunks = line.chunks_exact(8);
    let mut base = 0u32;
    for chunk in &mut chunks {
        let w = load(chunk);
        high |= w;
        push(&mut pos, &mut count, zero_bytes(w ^ BAR), base, 8);
        base = base.wrapping_add(8);
    }
    let rest = chunks.remainder().len();
    if rest > 0 {
        let w = match line.len().checked_sub(8).and_then(|at| line.get(at..)) {
            // The last eight bytes, shifted so that only the `rest` new ones
            // remain (the vacated high bytes are zero: neither '|' nor
            // non-ASCII).
            Some(last) => load(last) >> (8 * (8 - rest)),
            None => chunks
                .remainder()
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, &b)| w | (u64::from(b) << (8 * i))),
        };
        high |= w;
        push(&mut pos, &mut count, zero_bytes(w ^ BAR), base, 8);
    }
    Bars { pos, count, high }
}

/// Sixteen bytes per step with SSE2 (always present on x86_64): one
/// compare and two byte masks per step. The vectors are built from two
/// `u64` loads, so there is no raw-pointer load.
/// `line` must be at least 16 bytes long (shorter lines take [`scan_words`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn scan_sse2(line: &[u8]) -> Bars {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x,
    };
    let vector = |b: &[u8]| -> __m128i {
        let hi = b.get(8..).map_or(0, load);
        _mm_set_epi64x(hi as i64, load(b) as i64)
    };
    let bar = _mm_set1_epi8(b'|' as i8);
    // movemask: bit i = top bit of byte i (non-ASCII), or of the compare.
    let masks = |v: __m128i| {
        (
            _mm_movemask_epi8(v) as u32 as u64,
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, bar)) as u32 as u64,
        )
    };
    let mut pos = [0u32; MAX_BARS];
    let mut count = 0usize;
    let mut high = 0u64;
    let mut chunks = line.chunks_exact(16);
    let mut base = 0u32;
    for chunk in &mut chunks {
        let (top, bars) = masks(vector(chunk));
        high |= top;
        push(&mut pos, &mut count, bars, base, 1);
        base = base.wrapping_add(16);
    }
    let rest = chunks.remainder().len();
    if rest > 0 {
        if let Some(last) = line.len().checked_sub(16).and_then(|at| line.get(at..)) {
            // The last sixteen bytes; drop the bits of those already seen.
            let shift = 16 - rest as u32;
            let (top, bars) = masks(vector(last));
            high |= top >> shift;
            push(&mut pos, &mut count, bars >> shift, base, 1);
        }
    }
    Bars {
        pos,
        count,
        high: if high == 0 { 0 } else { HI },
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

    /// Every scanner this target has.
    fn scanners() -> Vec<fn(&[u8]) -> Bars> {
        let mut v: Vec<fn(&[u8]) -> Bars> = vec![Bars::scan, scan_words];
        #[cfg(target_arch = "x86_64")]
        v.push(|l: &[u8]| {
            if l.len() >= 16 {
                // SAFETY: SSE2 is in the x86_64 baseline.
                unsafe { scan_sse2(l) }
            } else {
                scan_words(l)
            }
        });
        v
    }

    #[test]
    fn every_scanner_agrees_on_every_byte_at_every_offset() {
        for len in [1usize, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47] {
            for v in 0..=255u8 {
                for at in 0..len {
                    let mut line = vec![b'x'; len];
                    line[at] = v;
                    if at + 2 < len {
                        line[at + 2] = b'|';
                    }
                    for scan in scanners() {
                        let b = scan(&line);
                        assert_eq!(b.positions(), naive(&line).as_slice(), "{line:?}");
                        assert_eq!(b.count(), naive(&line).len());
                        assert_eq!(b.ascii(), line.is_ascii(), "{line:?}");
                    }
                }
            }
        }
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
            for scan in scanners() {
                let b = scan(line.as_bytes());
                let want = naive(line.as_bytes());
                assert_eq!(b.count(), want.len(), "{line:?}");
                assert_eq!(b.complete(), want.len() <= MAX_BARS);
                assert_eq!(b.positions(), &want[..want.len().min(MAX_BARS)]);
                assert_eq!(b.ascii(), line.is_ascii(), "{line:?}");
            }
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
