//! Call direction of a CDR row, and which channel names the agent.
//!
//! A CDR has no direction column, so it is derived, first rule that applies:
//! 1. **userfield** is exactly `Inbound`, `Outbound` or `Internal` (any case):
//!    that. Grandstream UCM writes these in its "Log Userfield" column, and a
//!    dialplan that sets `CDR(userfield)` to one of these words means it.
//! 2. **dcontext** words (the context split on `-`, `_`, `.`, …):
//!    `outbound`, `outrt` or `dialout` (`outbound-route-4`, `outrt-1`,
//!    `macro-dialout-trunk`) → Outbound; then `pstn`, `trunk`, `did`,
//!    `incoming` or `inbound` (`from-trunk`, `from-pstn`, `ext-did-1`) →
//!    Inbound; `internal` (`from-internal`) with an external dst → Outbound.
//! 3. **src / dst numbers**, each classed as
//!    *extension* — only digits, `*` and `#`, at most 6 long (the number
//!    normalizer's default `max_internal_len`; configurable, for sites whose
//!    city numbers are 6 digits long), or
//!    an endpoint name with letters (`client1`); *external* — any other
//!    value that normalizes to a number (7+ digits, `+`, formatting);
//!    *unknown* — empty or a sentinel (`anonymous`, `s`, …; the normalizer
//!    gives no number):
//!    - extension → extension: Internal;
//!    - extension → external: Outbound;
//!    - external → anything: Inbound;
//!    - unknown → extension: Inbound (hidden caller ID ringing a phone);
//!    - otherwise: no direction.
//!
//! The agent is the extension on the PBX side of the call: for Inbound the
//! answering (or rung) one, from `dstchannel` (`PJSIP/201-0000a1` → `201`);
//! for Outbound and Internal the calling one, from `channel`.

use crate::event::Direction;

/// Longest digit string treated as an internal extension by default (the
/// number normalizer's default `max_internal_len`); see
/// [`CdrParser::with_max_extension_len`](super::CdrParser::with_max_extension_len).
pub const DEFAULT_MAX_EXTENSION_LEN: usize = 6;

/// What a src/dst value looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Party {
    Extension,
    External,
    Unknown,
}

/// Classes a raw src/dst; `normalized` is what the number normalizer made of it.
pub(crate) fn classify(raw: &str, normalized: Option<&str>, max_len: usize) -> Party {
    let t = raw.trim();
    if normalized.is_none() || t.is_empty() {
        return Party::Unknown;
    }
    if t.len() <= max_len
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
    {
        return Party::Extension;
    }
    if t.bytes().any(|b| b.is_ascii_alphabetic()) && !t.contains('@') && !t.contains(':') {
        return Party::Extension;
    }
    Party::External
}

/// The direction from the userfield word, if it is one.
fn from_userfield(userfield: &str) -> Option<Direction> {
    let u = userfield.trim();
    [Direction::Inbound, Direction::Outbound, Direction::Internal]
        .into_iter()
        .find(|d| u.eq_ignore_ascii_case(d.as_str()))
}

/// The direction hinted by a dialplan context name.
fn from_context(dcontext: &str, dst: Party) -> Option<Direction> {
    let has = |words: &[&str]| {
        dcontext
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| words.iter().any(|x| w.eq_ignore_ascii_case(x)))
    };
    if has(&["outbound", "outrt", "dialout"]) {
        return Some(Direction::Outbound);
    }
    if has(&["pstn", "trunk", "did", "incoming", "inbound"]) {
        return Some(Direction::Inbound);
    }
    if dst == Party::External && has(&["internal"]) {
        return Some(Direction::Outbound);
    }
    None
}

/// The direction of a record (see the module docs for the rule).
pub(crate) fn direction(
    src: Party,
    dst: Party,
    dcontext: &str,
    userfield: &str,
) -> Option<Direction> {
    if let Some(d) = from_userfield(userfield) {
        return Some(d);
    }
    if let Some(d) = from_context(dcontext, dst) {
        return Some(d);
    }
    match (src, dst) {
        (Party::Extension, Party::Extension) => Some(Direction::Internal),
        (Party::Extension, Party::External) => Some(Direction::Outbound),
        (Party::External, _) => Some(Direction::Inbound),
        (Party::Unknown, Party::Extension) => Some(Direction::Inbound),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;
    use Party::*;

    #[test]
    fn classes() {
        assert_eq!(classify("201", Some("201"), 6), Extension);
        assert_eq!(classify("*97", Some("97"), 6), Extension);
        assert_eq!(classify("client1", Some("1"), 6), Extension);
        assert_eq!(classify("89245555937", Some("+79245555937"), 6), External);
        assert_eq!(classify("+1 555 666", Some("+1555666"), 6), External);
        assert_eq!(classify("1234567", Some("1234567"), 6), External);
        assert_eq!(classify("sip:foo@example.com", Some("1"), 6), External);
        assert_eq!(classify("", None, 6), Unknown);
        assert_eq!(classify("anonymous", None, 6), Unknown);
        assert_eq!(classify("s", None, 6), Unknown);
        // a 6-digit city number, once extensions are configured shorter
        assert_eq!(classify("214943", Some("214943"), 6), Extension);
        assert_eq!(classify("214943", Some("214943"), 4), External);
    }

    #[test]
    fn number_rule() {
        assert_eq!(
            direction(Extension, Extension, "default", ""),
            Some(Internal)
        );
        assert_eq!(
            direction(Extension, External, "default", ""),
            Some(Outbound)
        );
        assert_eq!(direction(External, Extension, "default", ""), Some(Inbound));
        assert_eq!(direction(External, External, "default", ""), Some(Inbound));
        assert_eq!(direction(External, Unknown, "default", ""), Some(Inbound));
        assert_eq!(direction(Unknown, Extension, "default", ""), Some(Inbound));
        assert_eq!(direction(Extension, Unknown, "default", ""), None);
        assert_eq!(direction(Unknown, External, "default", ""), None);
    }

    #[test]
    fn context_and_userfield_hints() {
        // a 6-digit city number calling a 6-digit DID looks internal by numbers alone
        assert_eq!(
            direction(Extension, Extension, "stadion-pstn", ""),
            Some(Inbound)
        );
        assert_eq!(
            direction(Extension, Extension, "from-trunk", ""),
            Some(Inbound)
        );
        assert_eq!(
            direction(External, Extension, "ext-did-1", ""),
            Some(Inbound)
        );
        assert_eq!(
            direction(Extension, External, "outbound-route-4", ""),
            Some(Outbound)
        );
        assert_eq!(
            direction(Unknown, Unknown, "macro-dialout-trunk", ""),
            Some(Outbound)
        );
        // a forwarded inbound caller dialled out through from-internal
        assert_eq!(
            direction(External, External, "from-internal", ""),
            Some(Outbound)
        );
        assert_eq!(
            direction(Extension, Extension, "from-internal", ""),
            Some(Internal)
        );
        // "didactic" is not the word "did"
        assert_eq!(
            direction(Extension, Extension, "didactic", ""),
            Some(Internal)
        );
        assert_eq!(
            direction(External, Extension, "ext-did-1", "Internal"),
            Some(Internal)
        );
        assert_eq!(
            direction(Extension, Extension, "x", "outbound"),
            Some(Outbound)
        );
        assert_eq!(
            direction(Extension, Extension, "x", "vip caller"),
            Some(Internal)
        );
    }
}
