//! Text decoding for PBX data that is not always UTF-8.
//!
//! Caller-ID names arrive as UTF-8, cp1251 or cp866 (and sometimes junk).
//! Every field is tried as UTF-8 first; bytes that are not valid UTF-8 are
//! decoded with the source's configured fallback charset, so nothing is lost
//! and nothing panics.

use encoding_rs::Encoding;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A charset calltrail can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    Utf8,
    /// Windows Cyrillic, the usual Russian Windows charset.
    #[default]
    Cp1251,
    /// DOS Cyrillic (Russian OEM), common in DBF tables.
    Cp866,
    #[serde(rename = "koi8-r")]
    Koi8R,
    /// Windows Western (a superset of Latin-1 for printable bytes).
    Cp1252,
    Cp437,
    Cp850,
    Cp936,
}

impl Charset {
    /// Every charset, for listing in error messages.
    pub const ALL: [Charset; 8] = [
        Charset::Utf8,
        Charset::Cp1251,
        Charset::Cp866,
        Charset::Koi8R,
        Charset::Cp1252,
        Charset::Cp437,
        Charset::Cp850,
        Charset::Cp936,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "utf8",
            Charset::Cp1251 => "cp1251",
            Charset::Cp866 => "cp866",
            Charset::Koi8R => "koi8-r",
            Charset::Cp1252 => "cp1252",
            Charset::Cp437 => "cp437",
            Charset::Cp850 => "cp850",
            Charset::Cp936 => "cp936",
        }
    }

    /// Parses a config name (`cp1251`, `windows-1251`, `cp866`, `ibm866`, …).
    pub fn from_name(name: &str) -> Option<Charset> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        Some(match n.as_str() {
            "utf8" | "utf-8" => Charset::Utf8,
            "cp1251" | "windows-1251" | "win1251" => Charset::Cp1251,
            "cp866" | "ibm866" | "dos-866" => Charset::Cp866,
            "koi8-r" | "koi8r" => Charset::Koi8R,
            "cp1252" | "windows-1252" | "latin1" | "iso-8859-1" => Charset::Cp1252,
            "cp437" | "ibm437" => Charset::Cp437,
            "cp850" | "ibm850" => Charset::Cp850,
            "cp936" | "gbk" => Charset::Cp936,
            _ => return None,
        })
    }

    /// The `encoding_rs` codec for this charset; `None` for cp437/cp850,
    /// which are decoded by [`decode_oem`].
    fn encoding(self) -> Option<&'static Encoding> {
        match self {
            Charset::Utf8 => Some(encoding_rs::UTF_8),
            Charset::Cp1251 => Some(encoding_rs::WINDOWS_1251),
            Charset::Cp866 => Some(encoding_rs::IBM866),
            Charset::Koi8R => Some(encoding_rs::KOI8_R),
            Charset::Cp1252 => Some(encoding_rs::WINDOWS_1252),
            Charset::Cp936 => Some(encoding_rs::GBK),
            Charset::Cp437 | Charset::Cp850 => None,
        }
    }

    /// Decodes bytes in this charset (invalid sequences become U+FFFD).
    pub fn decode(self, bytes: &[u8]) -> Cow<'_, str> {
        match self.encoding() {
            Some(enc) => enc.decode_without_bom_handling(bytes).0,
            None => Cow::Owned(decode_oem(self, bytes)),
        }
    }
}

/// Decodes `bytes` as UTF-8 when valid, otherwise with `fallback`.
pub fn decode_lenient(bytes: &[u8], fallback: Charset) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => fallback.decode(bytes),
    }
}

/// cp437 / cp850, which encoding_rs (a WHATWG implementation) lacks, come
/// from the `oem_cp` tables.
fn decode_oem(cs: Charset, bytes: &[u8]) -> String {
    use oem_cp::code_table::{DECODING_TABLE_CP437, DECODING_TABLE_CP850};
    let table = if cs == Charset::Cp850 {
        &DECODING_TABLE_CP850
    } else {
        &DECODING_TABLE_CP437
    };
    oem_cp::decode_string_complete_table(bytes, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_through_and_cp1251_falls_back() {
        assert_eq!(
            decode_lenient("Привет".as_bytes(), Charset::Cp1251),
            "Привет"
        );
        // "Привет" in cp1251
        let cp = [0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2];
        assert_eq!(decode_lenient(&cp, Charset::Cp1251), "Привет");
        // and in cp866
        let dos = [0x8F, 0xE0, 0xA8, 0xA2, 0xA5, 0xE2];
        assert_eq!(decode_lenient(&dos, Charset::Cp866), "Привет");
    }

    #[test]
    fn names_round_trip() {
        for cs in Charset::ALL {
            assert_eq!(Charset::from_name(cs.name()), Some(cs));
        }
        assert_eq!(Charset::from_name("Windows-1251"), Some(Charset::Cp1251));
        assert_eq!(Charset::from_name("ebcdic"), None);
    }
}
