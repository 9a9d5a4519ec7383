//! Which charset a table's text is in: the LDID byte, the caller's choice,
//! and a cp866-versus-cp1251 guess for tables that do not say.
//!
//! The language-driver byte (header offset 29) is unreliable for Russian
//! data (FORMATS.md §c.2, §g.16): KLADR's cp866 tables carry 0, infused's
//! UTF-8 table carries the non-standard 0xF0. So the caller chooses:
//!
//! * [`CharsetChoice::Fixed`]: always this charset (recommended once the
//!   site's charset is known);
//! * [`CharsetChoice::Ldid`]: the LDID's charset, or the fallback when the
//!   LDID is 0 or unknown;
//! * [`CharsetChoice::Auto`]: the LDID's charset when it names one;
//!   otherwise guessed from the table's text bytes: none above 0x7F → the
//!   fallback; every text field valid UTF-8 → UTF-8; else
//!   [`guess_cyrillic`] (cp866 or cp1251), or the fallback when that finds
//!   no Russian letters either way.

use crate::text::Charset;
use serde::{Deserialize, Serialize};

/// How the caller wants the table's charset decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CharsetChoice {
    /// LDID when it names a code page, else a guess from the data.
    #[default]
    Auto,
    /// LDID when it names a code page, else the fallback; no guessing.
    Ldid,
    /// This charset, whatever the LDID says.
    Fixed(Charset),
}

/// Where the charset a table is decoded with came from (for logging).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharsetSource {
    /// The caller fixed it.
    Fixed,
    /// The header's language-driver byte named it.
    Ldid,
    /// Guessed from the table's bytes (UTF-8 validity or letter frequency).
    Guessed,
    /// Nothing to go on: the configured fallback.
    Fallback,
}

/// The charset an LDID names (dbfread's `codepages.py` subset we can
/// decode), or `None` for 0 (undeclared) and values we do not know.
pub fn ldid_charset(ldid: u8) -> Option<Charset> {
    Some(match ldid {
        0x01 => Charset::Cp437,
        0x02 => Charset::Cp850,
        0x03 | 0x57 => Charset::Cp1252,
        0x26 | 0x65 => Charset::Cp866,
        0x4D => Charset::Cp936,
        0xC9 => Charset::Cp1251,
        _ => return None,
    })
}

/// Approximate frequency (per mille) of the Russian letters а..я in text,
/// index 0 = а. Used as the reward for a byte that decodes to that letter.
const RU_FREQ: [i64; 32] = [
    80, 16, 45, 17, 30, 85, 9, 16, 74, 12, 35, 44, 32, 67, 110, 28, // а..п
    47, 55, 63, 26, 3, 10, 5, 14, 7, 4, 1, 19, 17, 3, 6, 20, // р..я
];

/// Score taken off for a byte above 0x7F that is not a Russian letter in
/// the charset being tried (box drawing in cp866, punctuation in cp1251).
const NON_LETTER_PENALTY: i64 = 30;

/// The Russian letter (index 0..32 into а..я, 6 for ё) a byte stands for.
fn letter_866(b: u8) -> Option<usize> {
    match b {
        0x80..=0x9F => Some(usize::from(b - 0x80)),
        0xA0..=0xAF => Some(usize::from(b - 0xA0)),
        0xE0..=0xEF => Some(usize::from(b - 0xE0) + 16),
        0xF0 | 0xF1 => Some(5),
        _ => None,
    }
}

fn letter_1251(b: u8) -> Option<usize> {
    match b {
        0xC0..=0xDF => Some(usize::from(b - 0xC0)),
        0xE0..=0xFF => Some(usize::from(b - 0xE0)),
        0xA8 | 0xB8 => Some(5),
        _ => None,
    }
}

fn score(bytes: &[u8], letter: fn(u8) -> Option<usize>) -> i64 {
    bytes
        .iter()
        .filter(|b| **b >= 0x80)
        .map(|&b| match letter(b) {
            Some(i) => RU_FREQ.get(i).copied().unwrap_or(1).max(1),
            None => -NON_LETTER_PENALTY,
        })
        .sum()
}

/// Decides whether `bytes` are Russian text in cp866 or in cp1251.
///
/// Each byte above 0x7F is decoded both ways; a Russian letter earns its
/// frequency in Russian text (о 110‰ … ъ 1‰), anything else loses 30.
/// The higher score wins. `None` when there are no such bytes, when
/// neither score is positive (not Russian in either charset), or on a tie.
/// The bytes 0xE0–0xEF are letters in both (р–я versus а–п), but real text
/// also uses the bytes only one charset has letters at, which decides it.
pub fn guess_cyrillic(bytes: &[u8]) -> Option<Charset> {
    let dos = score(bytes, letter_866);
    let win = score(bytes, letter_1251);
    if dos <= 0 && win <= 0 {
        return None;
    }
    match dos.cmp(&win) {
        std::cmp::Ordering::Greater => Some(Charset::Cp866),
        std::cmp::Ordering::Less => Some(Charset::Cp1251),
        std::cmp::Ordering::Equal => None,
    }
}

/// True when each chunk is valid UTF-8 (a multi-byte character cut at the
/// end of a fixed-width field is allowed) and at least one is non-ASCII.
pub(crate) fn all_utf8<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut any_multi = false;
    for c in chunks {
        if c.is_ascii() {
            continue;
        }
        match std::str::from_utf8(c) {
            Ok(_) => any_multi = true,
            // error_len() None: the input ends inside a character.
            Err(e) if e.error_len().is_none() => any_multi = true,
            Err(_) => return false,
        }
    }
    any_multi
}

/// The guess for an undeclared table from its text chunks (field names and
/// C field values): see the module docs.
pub(crate) fn guess_table<'a>(
    chunks: impl Iterator<Item = &'a [u8]> + Clone,
    fallback: Charset,
) -> (Charset, CharsetSource) {
    if chunks.clone().all(<[u8]>::is_ascii) {
        return (fallback, CharsetSource::Fallback);
    }
    if all_utf8(chunks.clone()) {
        return (Charset::Utf8, CharsetSource::Guessed);
    }
    let high: Vec<u8> = chunks
        .flat_map(|c| c.iter().copied())
        .filter(|b| *b >= 0x80)
        .collect();
    match guess_cyrillic(&high) {
        Some(cs) => (cs, CharsetSource::Guessed),
        None => (fallback, CharsetSource::Fallback),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldid_table() {
        assert_eq!(ldid_charset(0x26), Some(Charset::Cp866));
        assert_eq!(ldid_charset(0x65), Some(Charset::Cp866));
        assert_eq!(ldid_charset(0xC9), Some(Charset::Cp1251));
        assert_eq!(ldid_charset(0x57), Some(Charset::Cp1252));
        assert_eq!(ldid_charset(0x03), Some(Charset::Cp1252));
        assert_eq!(ldid_charset(0x01), Some(Charset::Cp437));
        assert_eq!(ldid_charset(0x02), Some(Charset::Cp850));
        assert_eq!(ldid_charset(0x4D), Some(Charset::Cp936));
        assert_eq!(ldid_charset(0x00), None);
        assert_eq!(ldid_charset(0xF0), None);
    }

    #[test]
    fn guesses_russian_both_ways() {
        let text = "Автономный округ Республика входящий исходящий внутренний звонок";
        let (dos, _, bad) = encoding_rs::IBM866.encode(text);
        assert!(!bad);
        let (win, _, bad) = encoding_rs::WINDOWS_1251.encode(text);
        assert!(!bad);
        assert_eq!(guess_cyrillic(&dos), Some(Charset::Cp866));
        assert_eq!(guess_cyrillic(&win), Some(Charset::Cp1251));
        // Short upper-case words too.
        assert_eq!(guess_cyrillic(&[0x80, 0x8E]), Some(Charset::Cp866)); // "АО" cp866
        assert_eq!(guess_cyrillic(&[0xC2, 0xD5]), Some(Charset::Cp1251)); // "ВХ" cp1251
        assert_eq!(guess_cyrillic(b"plain ascii"), None);
        assert_eq!(guess_cyrillic(&[]), None);
    }

    #[test]
    fn table_guess_order() {
        let ascii: [&[u8]; 2] = [b"abc", b"123"];
        assert_eq!(
            guess_table(ascii.iter().copied(), Charset::Cp1252),
            (Charset::Cp1252, CharsetSource::Fallback)
        );
        let utf: [&[u8]; 2] = ["Номер".as_bytes(), b"x"];
        assert_eq!(
            guess_table(utf.iter().copied(), Charset::Cp1251),
            (Charset::Utf8, CharsetSource::Guessed)
        );
        // "Номер" cut inside its last character by a field boundary.
        let cut = &"Номер".as_bytes()[..9];
        assert!(all_utf8([cut].into_iter()));
        let dos: [&[u8]; 1] = [&[0x8D, 0xAE, 0xAC, 0xA5, 0xE0]]; // "Номер" cp866
        assert_eq!(
            guess_table(dos.iter().copied(), Charset::Cp1251),
            (Charset::Cp866, CharsetSource::Guessed)
        );
        // Latin-1 accents are not Russian either way: the fallback.
        let lat: [&[u8]; 1] = [&[0xA9, 0xB0, 0xB1, 0xB5]];
        assert_eq!(
            guess_table(lat.iter().copied(), Charset::Cp1252),
            (Charset::Cp1252, CharsetSource::Fallback)
        );
    }
}
