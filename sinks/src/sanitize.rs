//! Sanitizing of attacker-controlled text before it reaches email headers or
//! file names.
//!
//! Caller IDs and display names come straight from PBX logs and must be
//! treated as hostile: a CR/LF in a subject would otherwise allow header
//! injection, and a `/` or `..` in an action id would escape the outbox
//! directory. Non-ASCII text (Cyrillic names are common) is kept as is:
//! lettre RFC 2047-encodes it when it renders the header.

/// Longest subject we put on the wire, in characters. lettre folds long
/// headers correctly, this only keeps hostile input from producing absurd
/// messages.
pub(crate) const MAX_SUBJECT_CHARS: usize = 250;

/// Longest display name we keep, in characters.
pub(crate) const MAX_DISPLAY_NAME_CHARS: usize = 120;

/// Longest sanitized id (before the optional hash suffix), in bytes.
pub(crate) const MAX_ID_LEN: usize = 100;

/// Make `text` safe for a single-line header value: every control character
/// (CR, LF, TAB, NUL, DEL, C1 controls) and the Unicode line/paragraph
/// separators become a space, runs of whitespace collapse to one space,
/// leading/trailing whitespace is trimmed and the result is cut to
/// `max_chars` characters.
pub(crate) fn header_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut chars = 0usize;
    let mut pending_space = false;
    for c in text.chars() {
        let blank = c.is_control() || c.is_whitespace() || matches!(c, '\u{2028}' | '\u{2029}');
        if blank {
            pending_space = !out.is_empty();
            continue;
        }
        // Zero-width/bidi formatting characters are not an injection vector
        // but are a classic spoofing one; drop the bidi overrides.
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            continue;
        }
        let needed = if pending_space { 2 } else { 1 };
        if chars + needed > max_chars {
            break;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// Turn an action id into a token that is both a safe file name and a valid
/// RFC 5322 `dot-atom-text` (the left part of a Message-ID).
///
/// Only `[A-Za-z0-9._-]` survive; any other character, a leading or trailing
/// `.`, and a `.` that follows another `.` become `_`. The result is cut to
/// [`MAX_ID_LEN`] bytes. If anything was changed, `-` and a 16-hex-digit
/// FNV-1a hash of the original id are appended, so distinct ids stay
/// distinct. The mapping is deterministic across runs and Rust versions
/// (the outbox relies on that for exactly-once delivery).
pub(crate) fn id_token(id: &str) -> String {
    let mut out = String::with_capacity(id.len().min(MAX_ID_LEN) + 17);
    let mut changed = false;
    let mut prev_dot = false;
    for c in id.chars() {
        if out.len() >= MAX_ID_LEN {
            changed = true;
            break;
        }
        let keep = match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' => true,
            '.' => !out.is_empty() && !prev_dot,
            _ => false,
        };
        if keep {
            out.push(c);
            prev_dot = c == '.';
        } else {
            out.push('_');
            prev_dot = false;
            changed = true;
        }
    }
    if out.ends_with('.') {
        out.pop();
        out.push('_');
        changed = true;
    }
    if out.is_empty() {
        out.push('_');
        changed = true;
    }
    if changed {
        out.push('-');
        out.push_str(&format!("{:016x}", fnv1a64(id.as_bytes())));
    }
    out
}

/// 64-bit FNV-1a: tiny, dependency-free and stable forever, which is all the
/// id disambiguation needs (it is not a security boundary: the sanitized
/// prefix already makes the name safe).
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_strips_crlf_and_controls() {
        let s = header_text("Missed call\r\nBcc: victim@example.com\0\x7f", 200);
        assert_eq!(s, "Missed call Bcc: victim@example.com");
        assert!(!s.contains('\r') && !s.contains('\n'));
    }

    #[test]
    fn header_text_keeps_cyrillic_and_collapses_whitespace() {
        assert_eq!(
            header_text("  Пропущенный\t\tзвонок\u{2028}от  Иван ", 200),
            "Пропущенный звонок от Иван"
        );
    }

    #[test]
    fn header_text_drops_bidi_overrides_and_c1() {
        assert_eq!(header_text("a\u{202E}b\u{0085}c", 200), "ab c");
    }

    #[test]
    fn header_text_truncates_by_chars() {
        assert_eq!(header_text("Жжжжж", 3), "Жжж");
        assert_eq!(header_text("ab cd", 3), "ab");
        assert_eq!(header_text("", 3), "");
    }

    #[test]
    fn id_token_keeps_clean_ids() {
        assert_eq!(id_token("call-123.email_0"), "call-123.email_0");
    }

    #[test]
    fn id_token_rewrites_and_hashes_dirty_ids() {
        let a = id_token("../etc/passwd");
        assert!(a.starts_with("_._etc_passwd-"), "{a}");
        assert_eq!(a.len(), "_._etc_passwd-".len() + 16);
        // Different originals that sanitize alike stay distinct.
        assert_ne!(id_token("a/b"), id_token("a:b"));
        assert_ne!(id_token("a/b"), "a_b");
        // Deterministic.
        assert_eq!(id_token("a/b"), id_token("a/b"));
    }

    #[test]
    fn id_token_dot_rules() {
        for (input, prefix) in [
            (".hidden", "_hidden-"),
            ("a..b", "a._b-"),
            ("end.", "end_-"),
            ("..", "__-"),
            ("", "_-"),
        ] {
            let got = id_token(input);
            assert!(got.starts_with(prefix), "{input:?} -> {got:?}");
            assert!(!got.starts_with('.') && !got.contains(".."), "{got:?}");
        }
    }

    #[test]
    fn id_token_bounds_length() {
        let long = "x".repeat(1000);
        let t = id_token(&long);
        assert_eq!(t.len(), MAX_ID_LEN + 17);
        assert_ne!(t, id_token(&"x".repeat(999)));
        let cyr = id_token("звонок-1");
        assert!(cyr.is_ascii());
    }

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
