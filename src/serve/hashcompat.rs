//! The body of a dialplan lookup answer for Asterisk's `CURL()` with
//! `CURLOPT(hashcompat)=yes` (or `legacy`), read by `Set(HASH(lk)=${CURL(…)})`.
//!
//! What Asterisk does with the body (funcs/func_curl.c:900-925, main/utils.c
//! `ast_uri_decode`, main/app.c `__ast_app_separate_args`; see
//! `shared/reference/INTEGRATIONS.md` §1.3): trailing bytes `< 33` trimmed,
//! pairs split on every `&`, key/value on the first `=`, each side
//! URI-decoded, `\` and `,` backslash-escaped, the keys and the values joined
//! with commas, and then HASH() splits both lists again with the application
//! argument splitter, which honours `(`/`)` and `[`/`]` nesting, toggles on
//! `"` and removes it, and takes at most 100 items.
//!
//! [`encode`] writes ONE line `k=v&k=v…` in the caller's order (put the
//! `ok=1` sentinel last) such that `HASH(lk,k)` is exactly
//! [`dialplan_value`]`(v)`:
//!
//! - every byte of keys and values outside `[A-Za-z0-9_.-]` is written `%XX`
//!   (two uppercase hex digits), so `&`, `=`, `+`, `%`, spaces and UTF-8
//!   bytes reach the dialplan as themselves in both `yes` and `legacy` modes
//!   (a raw `+` would be a space in `legacy`; a lone `%X` is mis-decoded);
//! - control characters (C0 with NUL, DEL, C1) are dropped first: `%00`
//!   ends the string in Asterisk's decoder, and CR/LF have no business in a
//!   dialplan variable;
//! - `"` is dropped: URI-encoding does not protect it, since decoding happens
//!   before HASH's splitter, which removes quotes and, while "inside" one,
//!   glues the following values together (probe c06 of
//!   `shared/reference/asterisk-probes/report.txt`);
//! - `(`/`)` are kept only when they balance within the value as the
//!   splitter counts them (a `)` with nothing open is ignored by it), else
//!   all of them are dropped from that value; the same for `[`/`]`. An
//!   unbalanced `(` swallows every following value into one (probe c06);
//! - `,` and `\` need nothing more: Asterisk escapes them before HASH splits,
//!   so `HASH()` shows them as sent (probe c05);
//! - a value keeps at most [`MAX_VALUE_BYTES`] bytes (after the drops above),
//!   cut on a UTF-8 character boundary.
//!
//! Keys are chosen by calltrail's code, never by input: they must be
//! non-empty, in the safe alphabet and at most [`MAX_KEY_BYTES`] long (so
//! `~HASH~<hash>~<key>~` stays inside HASH's 256-byte variable name), and an
//! answer has at most [`MAX_PAIRS`] pairs (far below HASH's 100 items; the
//! decoded, comma-escaped value list is then at most 16 × 401 bytes, under
//! the 8 KiB a dialplan application's data is commonly expanded into —
//! not probed). Both are checked with
//! `debug_assert!`; in release an unsafe key is still `%XX`-encoded, so it
//! cannot break the `&`/`=` framing.
//!
//! What the dialplan does with a value afterwards is its own business: a `,`
//! in `${HASH(lk,name)}` passed as an application argument splits it.

/// Bytes kept of each value (after dropping control characters, `"` and
/// unbalanced brackets), cut on a UTF-8 character boundary.
pub const MAX_VALUE_BYTES: usize = 200;

/// Longest key [`encode`] accepts (`debug_assert!`).
pub const MAX_KEY_BYTES: usize = 32;

/// Most pairs [`encode`] accepts in one answer (`debug_assert!`).
pub const MAX_PAIRS: usize = 16;

/// Whether `b` is written as itself: `[A-Za-z0-9_.-]`.
fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Whether `key` can be used as a key: non-empty, safe alphabet, short.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(is_safe)
}

/// The body line: `k=v&k=v…` in the order given, each side `%XX`-encoded
/// outside `[A-Za-z0-9_.-]`, each value first made [`dialplan_value`].
pub fn encode(pairs: &[(&str, &str)]) -> String {
    debug_assert!(
        pairs.len() <= MAX_PAIRS,
        "a hashcompat answer has at most {MAX_PAIRS} pairs, got {}",
        pairs.len()
    );
    let mut out = String::with_capacity(pairs.len() * 16);
    for (i, (key, value)) in pairs.iter().enumerate() {
        debug_assert!(is_valid_key(key), "hashcompat key {key:?} is not valid");
        if i > 0 {
            out.push('&');
        }
        push_encoded(&mut out, key);
        out.push('=');
        push_encoded(&mut out, &dialplan_value(value));
    }
    out
}

/// What `HASH(lk,key)` shows for `value` once [`encode`]d: control
/// characters and `"` dropped, cut to [`MAX_VALUE_BYTES`] on a character
/// boundary, then `(`/`)` (and, separately, `[`/`]`) dropped unless they
/// balance as Asterisk's argument splitter counts them.
pub fn dialplan_value(value: &str) -> String {
    let mut kept: String = value
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    if kept.len() > MAX_VALUE_BYTES {
        let mut cut = MAX_VALUE_BYTES;
        while !kept.is_char_boundary(cut) {
            cut -= 1;
        }
        kept.truncate(cut);
    }
    let parens_ok = balanced(&kept, '(', ')');
    let brackets_ok = balanced(&kept, '[', ']');
    if parens_ok && brackets_ok {
        return kept;
    }
    kept.chars()
        .filter(|c| match c {
            '(' | ')' => parens_ok,
            '[' | ']' => brackets_ok,
            _ => true,
        })
        .collect()
}

/// Whether `open`/`close` leave the splitter's depth at zero at the end of
/// `s` (a `close` at depth zero is ignored, as `__ast_app_separate_args`
/// does).
fn balanced(s: &str, open: char, close: char) -> bool {
    let mut depth = 0usize;
    for c in s.chars() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
        }
    }
    depth == 0
}

/// Every byte but `[A-Za-z0-9_.-]` is written `%XX` (uppercase hex).
const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-');

/// Appends `s` with every byte outside the safe alphabet as `%XX`.
fn push_encoded(out: &mut String, s: &str) {
    out.extend(percent_encoding::utf8_percent_encode(s, ENCODED));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_alphabet_is_written_as_is() {
        let all = "ABCXYZabcxyz0123456789_.-";
        assert_eq!(encode(&[("k", all)]), format!("k={all}"));
    }

    #[test]
    fn everything_else_is_percent_encoded_uppercase() {
        assert_eq!(
            encode(&[("name", "Ivan Petrov"), ("p", "a+b&c=d,e%f")]),
            "name=Ivan%20Petrov&p=a%2Bb%26c%3Dd%2Ce%25f"
        );
        assert_eq!(encode(&[("x", "Ия")]), "x=%D0%98%D1%8F");
        assert_eq!(encode(&[("x", "\\~;$'")]), "x=%5C%7E%3B%24%27");
        assert_eq!(encode(&[("x", "f(x)[y]")]), "x=f%28x%29%5By%5D");
        for b in 0u8..=127 {
            let s = char::from(b).to_string();
            let enc = encode(&[("k", &s)]);
            let body = &enc[2..];
            if b.is_ascii_control() || matches!(b, b'"' | b'(' | b'[') {
                // a lone `(` or `[` is unbalanced; a lone `)` or `]` is not
                assert_eq!(body, "", "byte {b:#04x} is dropped");
            } else if is_safe(b) {
                assert_eq!(body, s);
            } else {
                assert_eq!(body, format!("%{b:02X}"), "byte {b:#04x}");
            }
        }
    }

    #[test]
    fn one_line_in_order_without_blanks() {
        let body = encode(&[("v", "1"), ("route", "sticky"), ("name", ""), ("ok", "1")]);
        assert_eq!(body, "v=1&route=sticky&name=&ok=1");
        assert_eq!(encode(&[]), "");
        let hostile = encode(&[("n", " a\r\n b \t"), ("ok", "1")]);
        assert_eq!(hostile, "n=%20a%20b%20&ok=1");
        assert!(hostile.bytes().all(|b| b > b' ' && b < 0x7f));
    }

    #[test]
    fn control_characters_and_quotes_are_dropped() {
        assert_eq!(dialplan_value("a\0b\r\nc\u{7f}d\u{85}e"), "abcde");
        assert_eq!(dialplan_value("\"q\""), "q");
        assert_eq!(encode(&[("k", "a\0b")]), "k=ab");
    }

    #[test]
    fn brackets_kept_only_when_balanced() {
        assert_eq!(dialplan_value("f(x)"), "f(x)");
        assert_eq!(dialplan_value("[b] (c)"), "[b] (c)");
        assert_eq!(dialplan_value(")x("), "x");
        assert_eq!(dialplan_value("(x"), "x");
        assert_eq!(
            dialplan_value("a)b"),
            "a)b",
            "a ) with nothing open is harmless"
        );
        assert_eq!(
            dialplan_value("[(x]"),
            "[x]",
            "only the unbalanced kind goes"
        );
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let ascii = "a".repeat(4096);
        assert_eq!(dialplan_value(&ascii).len(), MAX_VALUE_BYTES);
        let cyr = format!("x{}", "Я".repeat(2048));
        let cut = dialplan_value(&cyr);
        assert_eq!(cut.len(), MAX_VALUE_BYTES - 1);
        assert!(cut.ends_with('Я'));
        let exact = "b".repeat(MAX_VALUE_BYTES);
        assert_eq!(dialplan_value(&exact), exact);
    }

    #[test]
    fn keys() {
        assert!(is_valid_key("ok"));
        assert!(is_valid_key("queue_name.2-x"));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("a b"));
        assert!(!is_valid_key("a=b"));
        assert!(!is_valid_key(&"k".repeat(MAX_KEY_BYTES + 1)));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is not valid")]
    fn an_unsafe_key_is_a_bug() {
        encode(&[("a&b", "1")]);
    }
}
