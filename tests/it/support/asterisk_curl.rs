//! An independent model of what Asterisk does with an HTTP body under
//! `CURL()` + `CURLOPT(hashcompat)` and `Set(HASH(name)=${CURL(…)})`:
//! the peer calltrail's `serve::hashcompat` encoder is checked against. It
//! shares no code with the encoder and is itself checked against a real
//! Asterisk's answers (`shared/reference/asterisk-probes/report.txt`).
//!
//! Written from `shared/reference/INTEGRATIONS.md` §1.3 and the C it quotes,
//! step by step, on bytes (C strings):
//!
//! 1. `ast_str_trim_blanks`: trailing bytes `< 33` go. The C compares a plain
//!    `char`, signed on x86-64, so trailing bytes `>= 0x80` go too.
//! 2. `strsep(&remainder, "&")` for the pairs, `strsep(&piece, "=")` for the
//!    key (the first `=`; no `=` → empty value). A NUL ends the body.
//! 3. `ast_uri_decode` on both sides: `%XX` → byte when two bytes follow the
//!    `%` and `sscanf("%2x")` reads 1-2 hex digits (one digit still skips two
//!    bytes: the mis-decode); a decoded NUL ends the string; `legacy` turns
//!    `+` into a space first, `yes` keeps it. sscanf's acceptance of leading
//!    blanks and a sign after `%` is not modelled (such input panics here).
//! 4. `ast_str_set_escapecommas`: `\` and `,` get a backslash; the keys, and
//!    the values, are joined with `,`.
//! 5. `array()` (funcs/func_strings.c): both lists split by
//!    `__ast_app_separate_args(…, ',', remove_chars = 1, …, 100)`; key `i`
//!    gets value `i`, or `""` when there are fewer values; each is set as
//!    the channel variable `~HASH~name~key~` (snprintf into 256 bytes).
//!    Setting a variable removes the old one and inserts at the head of the
//!    channel's list, so `HASHKEYS()` lists keys newest first.

/// `CURLOPT(hashcompat)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `yes`: `+` stays `+`.
    Yes,
    /// `legacy`: `+` is a space.
    Legacy,
}

/// The `~HASH~<name>~…~` variables of a channel after one
/// `Set(HASH(name)=${CURL(…)})`, newest first (the channel's list order).
#[derive(Debug)]
pub struct Hash {
    name: String,
    vars: Vec<(Vec<u8>, Vec<u8>)>,
}

const VARNAME_SIZE: usize = 256;

/// `snprintf(varname, 256, "~HASH~%s~%s~", hash, key)`.
fn varname(hash: &str, key: &[u8]) -> Vec<u8> {
    let mut v = format!("~HASH~{hash}~").into_bytes();
    v.extend_from_slice(key);
    v.push(b'~');
    v.truncate(VARNAME_SIZE - 1);
    v
}

impl Hash {
    /// `${HASH(name,key)}` (`""` when unset), lossy UTF-8.
    pub fn get(&self, key: &str) -> String {
        let wanted = varname(&self.name, key.as_bytes());
        self.vars
            .iter()
            .find(|(n, _)| *n == wanted)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    /// `${HASHKEYS(name)}`: every variable with the prefix, prefix and last
    /// byte cut, joined with `,`, in the channel's list order.
    pub fn keys(&self) -> String {
        let prefix = format!("~HASH~{}~", self.name).into_bytes();
        let mut out: Vec<u8> = Vec::new();
        for (n, _) in &self.vars {
            if n.starts_with(&prefix) {
                if !out.is_empty() {
                    out.push(b',');
                }
                out.extend_from_slice(&n[prefix.len()..n.len() - 1]);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `pbx_builtin_setvar_helper`: drop the old variable, insert at head.
    fn set(&mut self, key: &[u8], value: &[u8]) {
        let n = varname(&self.name, key);
        self.vars.retain(|(old, _)| *old != n);
        self.vars.insert(0, (n, value.to_vec()));
    }
}

/// What `Set(HASH(hash)=${CURL(url)})` leaves on a fresh channel when the
/// server sent `body`. `None` for an empty body: func_curl skips the block
/// and `~ODBCFIELDS~` is never set, so HASH() fails.
pub fn hash_from_body(hash: &str, body: &[u8], mode: Mode) -> Option<Hash> {
    if body.is_empty() {
        return None;
    }
    let (fields, values) = func_curl_hashcompat(body, mode);
    let keys = separate_args(&fields, 100);
    let vals = separate_args(&values, 100);
    let mut out = Hash {
        name: hash.to_string(),
        vars: Vec::new(),
    };
    for (i, key) in keys.iter().enumerate() {
        let value: &[u8] = vals.get(i).map(Vec::as_slice).unwrap_or(b"");
        out.set(key, value);
    }
    Some(out)
}

/// func_curl.c:900-922: the `~ODBCFIELDS~` list and the returned value list.
fn func_curl_hashcompat(body: &[u8], mode: Mode) -> (Vec<u8>, Vec<u8>) {
    let mut buf = body.to_vec();
    // ast_str_trim_blanks: `(char) c < 33`, char signed on x86-64.
    while let Some(&last) = buf.last() {
        if i8::from_ne_bytes([last]) < 33 {
            buf.pop();
        } else {
            break;
        }
    }
    // strsep works on the C string.
    if let Some(nul) = buf.iter().position(|&b| b == 0) {
        buf.truncate(nul);
    }
    let mut fields = Vec::new();
    let mut values = Vec::new();
    for (row, piece) in buf.split(|&b| b == b'&').enumerate() {
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &b""[..]),
        };
        if row > 0 {
            fields.push(b',');
            values.push(b',');
        }
        escape_commas(&mut fields, &uri_decode(name, mode));
        escape_commas(&mut values, &uri_decode(value, mode));
    }
    (fields, values)
}

/// main/utils.c `ast_uri_decode`, then read back as a C string.
fn uri_decode(s: &[u8], mode: Mode) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if mode == Mode::Legacy && c == b'+' {
            out.push(b' ');
        } else if c == b'%' && i + 2 < s.len() {
            // s[1] and s[2] exist (are not the terminating NUL)
            let (a, b) = (s[i + 1], s[i + 2]);
            assert!(
                !(a.is_ascii_whitespace() || matches!(a, b'\x0b' | b'+' | b'-')),
                "sscanf's blank/sign handling after % is not modelled"
            );
            match (hex(a), hex(b)) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                // one digit read, two bytes skipped all the same
                (Some(d), None) => out.push(d),
                _ => {
                    out.push(c);
                    i += 1;
                    continue;
                }
            }
            i += 3;
            continue;
        } else {
            out.push(c);
        }
        i += 1;
    }
    if let Some(nul) = out.iter().position(|&b| b == 0) {
        out.truncate(nul);
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// main/strings.c `ast_str_set_escapecommas`: `\` and `,` get a backslash.
fn escape_commas(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if b == b'\\' || b == b',' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// main/app.c `__ast_app_separate_args(buf, ',', 1, array, arraylen)`:
/// `(`/`)` and `[`/`]` nesting, `"` toggles and is removed, `\x` is `x`
/// (never a delimiter); at most `arraylen` items, the last one holding the
/// rest of the string untouched; a trailing delimiter adds an empty item.
fn separate_args(buf: &[u8], arraylen: usize) -> Vec<Vec<u8>> {
    let mut items: Vec<Vec<u8>> = Vec::new();
    let (mut paren, mut bracket, mut quote) = (0u32, 0u32, false);
    let mut i = 0;
    let mut after_delim = false;
    while i < buf.len() && items.len() < arraylen - 1 {
        let mut item = Vec::new();
        after_delim = false;
        while i < buf.len() {
            let c = buf[i];
            match c {
                b'(' => paren += 1,
                b')' => paren = paren.saturating_sub(1),
                b'[' => bracket += 1,
                b']' => bracket = bracket.saturating_sub(1),
                b'"' => {
                    quote = !quote;
                    i += 1;
                    continue;
                }
                b'\\' => {
                    // the backslash goes, the next byte is taken as is
                    if let Some(&next) = buf.get(i + 1) {
                        item.push(next);
                    }
                    i += 2;
                    continue;
                }
                b',' if paren == 0 && bracket == 0 && !quote => {
                    i += 1;
                    after_delim = true;
                    break;
                }
                _ => {}
            }
            item.push(c);
            i += 1;
        }
        items.push(item);
    }
    if i < buf.len() {
        items.push(buf[i..].to_vec());
    } else if after_delim {
        items.push(Vec::new());
    }
    items
}
