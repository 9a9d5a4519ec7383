//! An independent model of what Asterisk's `pbx_spool` makes of a call file:
//! the peer `calltrail_sinks::callfile` is checked against. It shares no code
//! with the writer (pure std) and is itself checked against what a real
//! Asterisk did with call files (`shared/reference/asterisk-probes/report.txt`,
//! `==== call files (pbx_spool)`).
//!
//! Written from `shared/reference/INTEGRATIONS.md` §3.1 and from Asterisk's
//! source (`pbx/pbx_spool.c` `apply_outgoing`/`safe_append`/
//! `remove_from_queue`, `main/callerid.c` `ast_callerid_split`/
//! `ast_callerid_parse`/`ast_shrink_phone_number`/`ast_isphonenumber`,
//! `include/asterisk/strings.h` `ast_skip_blanks`/`ast_trim_blanks`), step by
//! step, on bytes (C strings):
//!
//! 1. Lines: [`Reader::Master`] reads with a 1024-byte buffer and skips a line
//!    that does not fit whole (INTEGRATIONS §3.1, `:294-321`; the exact
//!    off-by-one at 1023 bytes is not modelled beyond "must fit with its
//!    newline"); [`Reader::Fgets256`] is `fgets(buf, 256)` as in the releases
//!    up to at least 13: a longer line is cut after 255 bytes and the rest is
//!    read as the next line. A NUL ends the line's C string.
//! 2. `#` starts a comment at the start of the line or after a space or tab.
//! 3. `;` starts a comment unless preceded by `\`; the backslash is removed
//!    and the scan resumes **two** bytes later (the C's `memmove` + `c++`), so
//!    in `\;;` the second `;` survives.
//! 4. Trailing bytes `< 33` (unsigned) are trimmed; an empty line is skipped;
//!    no `:` is a syntax error (logged, skipped).
//! 5. Key = everything before the first `:` (not trimmed), compared
//!    case-insensitively; value = after it, leading bytes `< 33` skipped.
//!    Later keys override earlier ones; `Set`/`SetVar` append `name=value`
//!    (split at the first `=`; no `=` → warning), in file order.
//! 6. `Channel` splits at the first `/` (none: warning, previous value
//!    kept); `CallerID` goes through `ast_callerid_split` into 80-byte buffers
//!    (79 bytes kept); numbers are `sscanf("%30d")` (glibc: leading blanks,
//!    sign, digits; out-of-range clamps to `long` then truncates to `int`
//!    **[inference]**); `Priority`/`RetryTime`/`WaitTime` < 1 fall back to
//!    1/300/45, an unreadable `MaxRetries` to 0; `AlwaysDelete`, `Archive`,
//!    `Early_Media` are `ast_true` (`yes|true|y|t|1|on`, any case).
//! 7. Progress lines: `StartRetry` sets the calling pid, `EndRetry` and
//!    `AbortRetry` clear it and count a retry, `Retry` counts one,
//!    `DelayedRetry` does nothing.
//! 8. Missing tech or dest, or both application and extension → invalid.
//!
//! Not modelled: `Codecs` parsing (kept as text), what the channel
//! technologies do with `dest`, the scheduling by mtime.

// The integration tests each use a part of this API.
#![allow(dead_code)]

/// How lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// Asterisk master: 1024-byte buffer, over-long lines skipped.
    Master,
    /// `fgets` into 256 bytes: over-long lines split in two (or more).
    Fgets256,
}

/// What Asterisk would do with a valid call file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolCall {
    /// Channel technology (before the first `/`).
    pub tech: String,
    /// Channel destination (after the first `/`).
    pub dest: String,
    /// Caller-id name, as `ast_callerid_split` leaves it.
    pub cid_name: String,
    /// Caller-id number, as `ast_callerid_split` leaves it.
    pub cid_num: String,
    /// `Application`.
    pub app: String,
    /// `Data`.
    pub data: String,
    /// `Context`.
    pub context: String,
    /// `Extension`.
    pub exten: String,
    /// `Priority` (default 1).
    pub priority: i32,
    /// `MaxRetries` (default 0).
    pub max_retries: i32,
    /// `RetryTime` (default 300).
    pub retry_time: i32,
    /// `WaitTime` (default 45).
    pub wait_time: i32,
    /// Retries counted from progress lines.
    pub retries: i32,
    /// Pid of the last `StartRetry` not closed by `EndRetry`/`AbortRetry`.
    pub calling_pid: i64,
    /// `Account`.
    pub account: String,
    /// `Codecs` values, in order (unparsed).
    pub codecs: Vec<String>,
    /// `Set`/`SetVar` pairs, in file order.
    pub vars: Vec<(String, String)>,
    /// `Archive` (default no).
    pub archive: bool,
    /// `AlwaysDelete` (default yes).
    pub always_delete: bool,
    /// `Early_Media` (default no).
    pub early_media: bool,
    /// Every `key:` line applied or rejected, lowercased, in file order.
    pub keys: Vec<String>,
    /// What Asterisk would log: syntax errors, unknown keys, bad numbers,
    /// skipped lines; plus fields that are not valid UTF-8.
    pub warnings: Vec<String>,
}

impl SpoolCall {
    fn new() -> Self {
        Self {
            tech: String::new(),
            dest: String::new(),
            cid_name: String::new(),
            cid_num: String::new(),
            app: String::new(),
            data: String::new(),
            context: String::new(),
            exten: String::new(),
            priority: 1,
            max_retries: 0,
            retry_time: 300,
            wait_time: 45,
            retries: 0,
            calling_pid: 0,
            account: String::new(),
            codecs: Vec::new(),
            vars: Vec::new(),
            archive: false,
            always_delete: true,
            early_media: false,
            keys: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Whether `scan_service` would launch an attempt (`retries <=
    /// maxretries`) rather than expire the file.
    pub fn would_dial(&self) -> bool {
        self.retries <= self.max_retries
    }
}

/// [`parse_with`] as Asterisk master reads.
pub fn parse(bytes: &[u8]) -> Result<SpoolCall, String> {
    parse_with(bytes, Reader::Master)
}

/// What `apply_outgoing` makes of `bytes`; `Err` with Asterisk's reason when
/// it would declare the file invalid ("Failed").
pub fn parse_with(bytes: &[u8], reader: Reader) -> Result<SpoolCall, String> {
    let mut o = SpoolCall::new();
    for (lineno, raw) in read_lines(bytes, reader, &mut o.warnings) {
        apply_line(&mut o, lineno, raw);
    }
    if o.tech.is_empty() || o.dest.is_empty() || (o.app.is_empty() && o.exten.is_empty()) {
        return Err(
            "At least one of app or extension must be specified, along with tech and dest"
                .to_string(),
        );
    }
    Ok(o)
}

/// The lines `apply_outgoing` sees, numbered, each a C string (cut at NUL).
fn read_lines(bytes: &[u8], reader: Reader, warnings: &mut Vec<String>) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut lineno = 0;
    while !rest.is_empty() {
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let take = match reader {
            Reader::Master => line_end,
            Reader::Fgets256 => line_end.min(255),
        };
        let chunk = &rest[..take];
        rest = &rest[take..];
        lineno += 1;
        if reader == Reader::Master && chunk.len() > 1023 {
            warnings.push(format!("line {lineno}: longer than 1023 bytes, skipped"));
            continue;
        }
        let c_string = chunk.split(|&b| b == 0).next().unwrap_or(&[]);
        out.push((lineno, c_string.to_vec()));
    }
    out
}

fn strip_comments(mut buf: Vec<u8>) -> Vec<u8> {
    // `#` at the start or after a space/tab.
    if let Some(i) = (0..buf.len())
        .find(|&i| buf[i] == b'#' && (i == 0 || buf[i - 1] == b' ' || buf[i - 1] == b'\t'))
    {
        buf.truncate(i);
    }
    // `;` unless `\;`: the backslash goes, the scan resumes at c + 1 in the
    // shifted buffer (one byte past the `;`'s new position).
    let mut c = 0;
    while let Some(off) = buf[c.min(buf.len())..].iter().position(|&b| b == b';') {
        let i = c + off;
        if i > 0 && buf[i - 1] == b'\\' {
            buf.remove(i - 1);
            c = i + 1;
        } else {
            buf.truncate(i);
            break;
        }
    }
    buf
}

/// `ast_trim_blanks`: trailing bytes `< 33` (unsigned).
fn trim_blanks(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b >= 33).map_or(0, |i| i + 1);
    &s[..end]
}

/// `ast_skip_blanks`: leading bytes `< 33` (unsigned).
fn skip_blanks(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b >= 33).unwrap_or(s.len());
    &s[start..]
}

fn text(field: &str, bytes: &[u8], warnings: &mut Vec<String>) -> String {
    match String::from_utf8(bytes.to_vec()) {
        Ok(s) => s,
        Err(_) => {
            warnings.push(format!("{field}: not valid UTF-8: {bytes:?}"));
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

/// glibc `sscanf(s, "%30d")` (`%30ld` with `long_int`): `None` when no
/// conversion happens.
fn scan_int(s: &[u8], long_int: bool) -> Option<i64> {
    let s = &s[s
        .iter()
        .position(|b| !b" \t\n\x0b\x0c\r".contains(b))
        .unwrap_or(s.len())..];
    let s = &s[..s.len().min(30)];
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut v: i128 = 0;
    for &d in &digits[..n] {
        v = (v * 10 + i128::from(d - b'0')).min(i128::from(i64::MAX) + 1);
    }
    let v = if neg { -v } else { v };
    let v = v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    Some(if long_int { v } else { v as i32 as i64 })
}

/// `ast_true`.
fn ast_true(s: &[u8]) -> bool {
    ["yes", "true", "y", "t", "1", "on"]
        .iter()
        .any(|t| s.eq_ignore_ascii_case(t.as_bytes()))
}

fn apply_line(o: &mut SpoolCall, lineno: usize, raw: Vec<u8>) {
    let buf = strip_comments(raw);
    let buf = trim_blanks(&buf);
    if buf.is_empty() {
        return;
    }
    let Some(colon) = buf.iter().position(|&b| b == b':') else {
        o.warnings.push(format!("Syntax error at line {lineno}"));
        return;
    };
    let key = String::from_utf8_lossy(&buf[..colon]).to_ascii_lowercase();
    let c = skip_blanks(&buf[colon + 1..]);
    o.keys.push(key.clone());
    let w = &mut o.warnings;
    match key.as_str() {
        "channel" => match c.iter().position(|&b| b == b'/') {
            Some(slash) => {
                o.tech = text("tech", &c[..slash], w);
                o.dest = text("dest", &c[slash + 1..], w);
            }
            None => w.push(format!(
                "Channel should be in form Tech/Dest at line {lineno}"
            )),
        },
        "callerid" => {
            let (name, num) = callerid_split(c);
            o.cid_name = text("cid_name", &name, w);
            o.cid_num = text("cid_num", &num, w);
        }
        "application" => o.app = text("app", c, w),
        "data" => o.data = text("data", c, w),
        "maxretries" => match scan_int(c, false) {
            Some(v) => o.max_retries = v as i32,
            None => {
                w.push(format!("Invalid max retries at line {lineno}"));
                o.max_retries = 0;
            }
        },
        "codecs" => o.codecs.push(text("codecs", c, w)),
        "context" => o.context = text("context", c, w),
        "extension" => o.exten = text("exten", c, w),
        "priority" => match scan_int(c, false) {
            Some(v) if v >= 1 => o.priority = v as i32,
            _ => {
                w.push(format!("Invalid priority at line {lineno}"));
                o.priority = 1;
            }
        },
        "retrytime" => match scan_int(c, false) {
            Some(v) if v >= 1 => o.retry_time = v as i32,
            _ => {
                w.push(format!("Invalid retrytime at line {lineno}"));
                o.retry_time = 300;
            }
        },
        "waittime" => match scan_int(c, false) {
            Some(v) if v >= 1 => o.wait_time = v as i32,
            _ => {
                w.push(format!("Invalid waittime at line {lineno}"));
                o.wait_time = 45;
            }
        },
        "retry" => o.retries += 1,
        "startretry" => match scan_int(c, true) {
            Some(v) => o.calling_pid = v,
            None => {
                w.push("Unable to retrieve calling PID!".to_string());
                o.calling_pid = 0;
            }
        },
        "endretry" | "abortretry" => {
            o.calling_pid = 0;
            o.retries += 1;
        }
        "delayedretry" => {}
        "setvar" | "set" => match c.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let name = text("var name", &c[..eq], w);
                let value = text("var value", &c[eq + 1..], w);
                o.vars.push((name, value));
            }
            None => w.push(format!("Malformed \"{key}\" argument at line {lineno}")),
        },
        "account" => o.account = text("account", c, w),
        "alwaysdelete" => o.always_delete = ast_true(c),
        "archive" => o.archive = ast_true(c),
        "early_media" => o.early_media = ast_true(c),
        _ => w.push(format!("Unknown keyword '{key}' at line {lineno}")),
    }
}

/// `ast_copy_string(dst, src, 80)`: at most 79 bytes.
fn copy_string_80(s: &[u8]) -> Vec<u8> {
    s[..s.len().min(79)].to_vec()
}

/// `ast_callerid_split(buf, name, 80, num, 80)`: (name, number).
pub fn callerid_split(buf: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (name, num) = callerid_parse(buf);
    let name = name.map_or_else(Vec::new, |n| copy_string_80(&n));
    let num = num.map_or_else(Vec::new, |l| copy_string_80(&shrink_phone_number(&l)));
    (name, num)
}

fn find(s: &[u8], b: u8) -> Option<usize> {
    s.iter().position(|&x| x == b)
}

/// `ast_callerid_parse` (the version with the "closing quote after the
/// number" case): (name, location).
fn callerid_parse(instr: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let lt = instr.iter().rposition(|&b| b == b'<');
    let gt = lt.and_then(|ls| instr[ls..].iter().rposition(|&b| b == b'>').map(|i| ls + i));
    if let (Some(ls), Some(le)) = (lt, gt) {
        let location = instr[ls + 1..le].to_vec();
        let head = &instr[..ls];
        let name = match find(head, b'"') {
            Some(ns) => match find(&head[ns + 1..], b'"') {
                Some(ne) => Some(head[ns + 1..ns + 1 + ne].to_vec()),
                None if find(&instr[le + 1..], b'"').is_some() => {
                    Some(trim_blanks(&head[ns + 1..]).to_vec())
                }
                None => None,
            },
            None => Some(trim_blanks(skip_blanks(head)).to_vec()),
        };
        return (name, Some(location));
    }
    let tmp = shrink_phone_number(&instr[..instr.len().min(255)]);
    if is_phone_number(&tmp) {
        return (None, Some(tmp));
    }
    let name = match find(instr, b'"') {
        Some(ns) => match find(&instr[ns + 1..], b'"') {
            Some(ne) => instr[ns + 1..ns + 1 + ne].to_vec(),
            None => trim_blanks(skip_blanks(instr)).to_vec(),
        },
        None => trim_blanks(skip_blanks(instr)).to_vec(),
    };
    (Some(name), None)
}

/// `ast_shrink_phone_number`: drop `(`, ` `, `)`, a `-` outside `[...]`, and
/// a `.` that is not the last byte.
fn shrink_phone_number(n: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(n.len());
    let mut bracketed = 0i32;
    for (x, &b) in n.iter().enumerate() {
        match b {
            b'[' => {
                bracketed += 1;
                out.push(b);
            }
            b']' => {
                bracketed -= 1;
                out.push(b);
            }
            b'-' => {
                if bracketed != 0 {
                    out.push(b);
                }
            }
            b'.' => {
                if x + 1 == n.len() {
                    out.push(b);
                }
            }
            b'(' | b' ' | b')' => {}
            _ => out.push(b),
        }
    }
    out
}

/// `ast_isphonenumber`: non-empty, only `0-9*#+`.
fn is_phone_number(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|b| b"0123456789*#+".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_and_escape_rules() {
        let call = parse(
            b"# header\nChannel: PJSIP/201 ; trailing\nContext: c#not-a-comment\n\
              Extension: s #comment\nSet: A=x\\;y\nSet: B=x\\;;y;z\nSet: C=1;2\n",
        )
        .expect("valid");
        assert_eq!((call.tech.as_str(), call.dest.as_str()), ("PJSIP", "201"));
        assert_eq!(call.context, "c#not-a-comment");
        assert_eq!(call.exten, "s");
        assert_eq!(
            call.vars,
            vec![
                ("A".into(), "x;y".into()),
                ("B".into(), "x;;y".into()),
                ("C".into(), "1".into())
            ]
        );
    }

    #[test]
    fn keys_are_case_insensitive_and_later_ones_win() {
        let call = parse(
            b"CHANNEL:PJSIP/1\nchannel:   Local/2@x/n\r\nextension: 1\n\
              Extension : 2\nApplication: Wait\nMaxRetries: x\nRetryTime: 0\nWaitTime: -5\n\
              Priority: 0\nArchive: On\nAlwaysDelete: no\n",
        )
        .expect("valid");
        assert_eq!((call.tech.as_str(), call.dest.as_str()), ("Local", "2@x/n"));
        assert_eq!(call.exten, "1", "`Extension ` is an unknown key");
        assert_eq!(call.app, "Wait");
        assert_eq!(
            (
                call.max_retries,
                call.retry_time,
                call.wait_time,
                call.priority
            ),
            (0, 300, 45, 1)
        );
        assert!(call.archive && !call.always_delete);
        assert!(call
            .warnings
            .iter()
            .any(|w| w.starts_with("Unknown keyword 'extension '")));
    }

    #[test]
    fn invalid_files() {
        assert!(parse(b"Context: a\nExtension: s\n").is_err());
        assert!(parse(b"Channel: PJSIP\nExtension: s\n").is_err());
        assert!(parse(b"Channel: PJSIP/\nExtension: s\n").is_err());
        assert!(parse(b"Channel: PJSIP/1\nContext: a\n").is_err());
        assert!(parse(b"Channel: PJSIP/1\nApplication: Wait\n").is_ok());
    }

    #[test]
    fn callerid_split_cases() {
        let split = |s: &str| {
            let (n, l) = callerid_split(s.as_bytes());
            (
                String::from_utf8(n).expect("utf8"),
                String::from_utf8(l).expect("utf8"),
            )
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(split("\"Callback\" <201>"), pair("Callback", "201"));
        assert_eq!(
            split("\" a b \" <+7 (916) 123-45-67>"),
            pair(" a b ", "+79161234567")
        );
        assert_eq!(split("Ivan <201>"), pair("Ivan", "201"));
        assert_eq!(split("201"), pair("", "201"));
        assert_eq!(split("\"x\" <1> <2>"), pair("x", "2"));
        assert_eq!(split("Ivan"), pair("Ivan", ""));
        assert_eq!(split("\"a<b\" <201>"), pair("a<b", "201"));
        // An unbalanced quote: the name is dropped unless a quote follows `>`.
        assert_eq!(split("\"a <201>"), pair("", "201"));
        assert_eq!(split("\"a <201>\""), pair("a", "201"));
        assert_eq!(split(&format!("\"{}\" <1>", "x".repeat(80))).0.len(), 79);
    }

    #[test]
    fn fgets256_splits_long_lines_master_skips_them() {
        let mut file = b"Channel: PJSIP/1\nExtension: s\nSet: X=".to_vec();
        file.extend(std::iter::repeat_n(b'a', 248));
        file.extend_from_slice(b"Application: System\n");
        let legacy = parse_with(&file, Reader::Fgets256).expect("valid");
        assert_eq!(legacy.app, "System");
        let master = parse(&file).expect("valid");
        assert_eq!(master.app, "");
        let mut long = b"Channel: PJSIP/1\nExtension: s\nSet: X=".to_vec();
        long.extend(std::iter::repeat_n(b'a', 2000));
        long.push(b'\n');
        assert!(parse(&long).expect("valid").vars.is_empty());
    }
}
