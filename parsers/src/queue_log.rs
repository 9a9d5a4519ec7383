//! Asterisk `queue_log` lines → normalized events.
//!
//! Layout (FORMATS.md §a): `<time>|<callid>|<queue>|<agent>|<event>|<data…>`.
//! The line is split in one word-at-a-time pass ([`crate::bars`]); the first
//! five fields are then checked strictly; the data fields are
//! interpreted per verb keyed on how many there are, since their number
//! differs between Asterisk versions (1.4 → 23) and `|` is never escaped.
//!
//! Accepted variants: epoch seconds (optionally fractional) or a DB-export
//! local datetime `YYYY-MM-DD HH:MM:SS[.ffffff]` in the source's zone; CRLF;
//! blanks around separators; a missing `|` after the event; trailing `|`;
//! non-UTF-8 bytes (decoded with the source's fallback charset); sentinel
//! call ids (`NONE`, `REALTIME`, `MANAGER`, `CLI`), queue `NONE`, agent
//! `NONE` or empty. Blank lines yield `Ok(None)`. Unknown verbs become
//! [`EventKind::Other`] with their raw fields.

use crate::agent::AgentResolver;
use crate::bars::Bars;
use crate::event::{Direction, Event, EventKind, SourceKind};
use crate::event_ref::{DataFields, EventRef};
use crate::intern::Interner;
use crate::phone::NumberNormalizer;
pub use crate::queue_log_verbs::kind_of;
use crate::queue_log_verbs::VerbCache;
use crate::time::{local_to_utc, parse_epoch, parse_naive, EpochClock};
use crate::SourceContext;
use chrono::{DateTime, Utc};
use smallvec::SmallVec;
use std::borrow::Cow;

/// Longest line accepted (Asterisk's own buffer is 8 KiB plus the prefix).
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Why a queue_log line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueLogError {
    #[error(
        "expected at least 5 '|'-separated fields (time|callid|queue|agent|event), found {found}"
    )]
    TooFewFields { found: usize },
    #[error("time field {found:?} is neither epoch seconds nor 'YYYY-MM-DD HH:MM:SS[.ffffff]'")]
    BadTime { found: String },
    #[error("local time {found:?} does not exist in time zone {tz} (skipped by a DST change)")]
    NonexistentLocalTime { found: String, tz: String },
    #[error("event name (5th field) is empty")]
    EmptyEvent,
    #[error("event name {found:?} is not a queue_log verb (expected letters, digits or '_')")]
    BadEvent { found: String },
    #[error("line is {len} bytes, longer than the {max}-byte limit")]
    TooLong { len: usize, max: usize },
}

/// The five fixed fields, borrowed from the line.
struct Header<'a> {
    time: &'a str,
    callid: &'a str,
    queue: &'a str,
    agent: &'a str,
    event: &'a str,
    /// Everything after the `|` that follows the event (may be empty).
    data: &'a str,
}

/// Splits a line at the separators found by [`Bars::scan`] on its bytes:
/// the five fixed fields (trimmed) and the data after them (as written).
#[inline]
fn split_line<'a>(text: &'a str, bars: &Bars) -> Result<Header<'a>, QueueLogError> {
    let count = bars.count();
    if count < 4 {
        return Err(QueueLogError::TooFewFields { found: count + 1 });
    }
    let p = bars.positions();
    // Offset of separator i, or the end of the line past the last one.
    let at = |i: usize| p.get(i).map_or(text.len(), |&x| x as usize);
    let cut = |from: usize, to: usize| text.get(from..to).unwrap_or("");
    Ok(Header {
        time: cut(0, at(0)).trim_ascii(),
        callid: cut(at(0) + 1, at(1)).trim_ascii(),
        queue: cut(at(1) + 1, at(2)).trim_ascii(),
        agent: cut(at(2) + 1, at(3)).trim_ascii(),
        event: cut(at(3) + 1, at(4)).trim_ascii(),
        data: if count > 4 {
            text.get(at(4) + 1..).unwrap_or("")
        } else {
            ""
        },
    })
}

/// The data fields of a line (data1, data2, …), cut from the text only
/// when the verb reads them.
#[derive(Clone, Copy)]
enum Fields<'s, 'a> {
    /// Field `i` runs from after the separator at `seps[i]` to the next
    /// one (or the end of `text`).
    Cut { text: &'a str, seps: &'s [u32] },
    /// Already split: slices of `data` (DB-export columns, or a line with
    /// more separators than [`Bars`] keeps).
    Split {
        data: &'a str,
        fields: &'s [&'a str],
    },
}

impl<'a> Fields<'_, 'a> {
    fn len(&self) -> usize {
        match self {
            Fields::Cut { seps, .. } => seps.len(),
            Fields::Split { fields, .. } => fields.len(),
        }
    }

    /// Fields `i..=j` as written (`|`-joined); `i <= j < len`.
    #[inline(always)]
    fn span(&self, i: usize, j: usize) -> &'a str {
        match *self {
            Fields::Cut { text, seps } => {
                let from = seps.get(i).map_or(text.len(), |&x| x as usize + 1);
                let to = seps.get(j + 1).map_or(text.len(), |&x| x as usize);
                text.get(from..to).unwrap_or("")
            }
            Fields::Split { data, fields } => match (fields.get(i), fields.get(j)) {
                (Some(first), Some(last)) => covering(data, first, last),
                _ => "",
            },
        }
    }

    fn get(&self, i: usize) -> &'a str {
        self.span(i, i)
    }
}

/// Parses queue_log lines for one source. Keeps small caches (interned
/// queues and verbs, normalized numbers, resolved agents), so one parser
/// should be reused for a whole file.
#[derive(Debug)]
pub struct QueueLogParser {
    ctx: SourceContext,
    caches: Caches,
    /// The decoded text of the last non-UTF-8 line (borrowed by its [`EventRef`]).
    decoded: String,
}

/// The parser's caches, one field per value of a line so that one line can
/// hold borrows of all of them at once.
#[derive(Debug)]
struct Caches {
    numbers: NumberNormalizer,
    agents: AgentResolver,
    verbs: VerbCache,
    queues: Interner,
    clock: EpochClock,
}

impl QueueLogParser {
    pub fn new(ctx: SourceContext, numbers: NumberNormalizer, agents: AgentResolver) -> Self {
        QueueLogParser {
            ctx,
            caches: Caches {
                numbers,
                agents,
                verbs: VerbCache::default(),
                queues: Interner::default(),
                clock: EpochClock::default(),
            },
            decoded: String::new(),
        }
    }

    /// The source this parser reads (zone, fallback charset), for readers
    /// that decode their own framing such as [`crate::queue_log_db`].
    pub fn context(&self) -> &SourceContext {
        &self.ctx
    }

    /// Normalizes a phone number with this parser's rules and cache.
    pub fn normalize_number(&mut self, raw: &str) -> Option<String> {
        self.caches.numbers.normalize(raw)
    }

    /// Parses one line (with or without its `\n` / `\r\n`). Blank lines give
    /// `Ok(None)`; the returned event has an empty `event_id`, which the
    /// caller sets from the line's position.
    pub fn parse_line(&mut self, raw: &[u8]) -> Result<Option<Event>, QueueLogError> {
        Ok(self.parse_line_ref(raw)?.map(EventRef::into_event))
    }

    /// [`parse_line`](Self::parse_line) without copying: the same typed,
    /// normalized event as a view of `raw` and of this parser's caches. On
    /// a warm parser and valid UTF-8 it allocates nothing (a non-UTF-8 line
    /// is decoded into a buffer the view borrows). The view borrows the
    /// parser, so it must be consumed before the next line is parsed.
    #[inline]
    pub fn parse_line_ref<'a>(
        &'a mut self,
        raw: &'a [u8],
    ) -> Result<Option<EventRef<'a>>, QueueLogError> {
        if raw.len() > MAX_LINE_LEN {
            return Err(QueueLogError::TooLong {
                len: raw.len(),
                max: MAX_LINE_LEN,
            });
        }
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let scanned = Bars::scan(raw);
        let rescanned: Bars;
        let (text, bars): (&'a str, &Bars) = if scanned.ascii() {
            // SAFETY: the scan saw every byte below 0x80 (`Bars::ascii`,
            // tested on every byte value at every word offset), and ASCII
            // is valid UTF-8; skipping the second validation pass is worth
            // about a tenth of the parse.
            (unsafe { std::str::from_utf8_unchecked(raw) }, &scanned)
        } else {
            let text: &'a str = match std::str::from_utf8(raw) {
                Ok(s) => s,
                Err(_) => {
                    let decoded = &mut self.decoded;
                    decoded.clear();
                    decoded.push_str(&self.ctx.fallback_charset.decode(raw));
                    decoded
                }
            };
            // A file saved by a Windows editor may start with a byte-order mark.
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            rescanned = Bars::scan(text.as_bytes());
            (text, &rescanned)
        };
        let h = split_line(text, bars)?;
        let slow: SmallVec<[&str; 8]>;
        let fields = if h.data.is_empty() {
            Fields::Split {
                data: "",
                fields: &[],
            }
        } else if bars.complete() {
            Fields::Cut {
                text,
                seps: bars.positions().get(4..).unwrap_or(&[]),
            }
        } else {
            slow = split_bar(h.data);
            Fields::Split {
                data: h.data,
                fields: &slow,
            }
        };
        build(&self.ctx, &mut self.caches, h, fields).map(Some)
    }

    /// Builds an event from already-split DB-export columns
    /// (`time, callid, queuename, agent, event, data`), where `data` is the
    /// `|`-joined data1..data5 (or the single `data` column).
    pub fn parse_fields(
        &mut self,
        time: &str,
        callid: &str,
        queue: &str,
        agent: &str,
        event: &str,
        data: &str,
    ) -> Result<Event, QueueLogError> {
        let h = Header {
            time: time.trim_ascii(),
            callid: callid.trim_ascii(),
            queue: queue.trim_ascii(),
            agent: agent.trim_ascii(),
            event: event.trim_ascii(),
            data,
        };
        let d = if data.is_empty() {
            SmallVec::new()
        } else {
            split_bar(data)
        };
        let fields = Fields::Split { data, fields: &d };
        build(&self.ctx, &mut self.caches, h, fields).map(EventRef::into_event)
    }
}

fn time(
    ctx: &SourceContext,
    clock: &mut EpochClock,
    s: &str,
) -> Result<DateTime<Utc>, QueueLogError> {
    // Fast path: whole epoch seconds, the queue_log norm (as `parse_epoch`'s).
    if let Some(secs) = whole_seconds(s.as_bytes()) {
        return clock
            .utc(secs)
            .ok_or_else(|| QueueLogError::BadTime { found: s.into() });
    }
    if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) && !s.contains('-') {
        return parse_epoch(s).ok_or_else(|| QueueLogError::BadTime { found: s.into() });
    }
    let naive = parse_naive(s).ok_or_else(|| QueueLogError::BadTime { found: s.into() })?;
    local_to_utc(naive, ctx.timezone).ok_or_else(|| QueueLogError::NonexistentLocalTime {
        found: s.into(),
        tz: ctx.timezone.name().into(),
    })
}

/// 1 to 12 ASCII digits as a number, else `None`; the first eight digits
/// in one step ([`eight_digits`]).
#[inline]
fn whole_seconds(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 12 {
        return None;
    }
    let (mut v, rest) = match (b.get(..8), b.get(8..)) {
        (Some(head), Some(rest)) => (eight_digits(head)?, rest),
        _ => (0, b),
    };
    for &c in rest {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        v = v * 10 + u64::from(digit);
    }
    i64::try_from(v).ok()
}

/// Eight ASCII digits (`b` is exactly eight bytes) as a number, else `None`:
/// a check that every byte is `'0'..='9'`, then the usual multiply-and-shift
/// reduction of a little-endian word (pairs, then quads, then all eight).
#[inline]
fn eight_digits(b: &[u8]) -> Option<u64> {
    let mut word = [0u8; 8];
    word.copy_from_slice(b.get(..8)?);
    let w = u64::from_le_bytes(word);
    const NIBBLE_HI: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const NIBBLE_LO: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    // High nibble 3 everywhere, and low nibble + 6 never reaching 16.
    let digits = w & NIBBLE_HI == 0x3030_3030_3030_3030
        && (w & NIBBLE_LO).wrapping_add(0x0606_0606_0606_0606) & NIBBLE_HI == 0;
    if !digits {
        return None;
    }
    let v = w & NIBBLE_LO;
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    Some(
        (v & MASK)
            .wrapping_mul(MUL1)
            .wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))
            >> 32,
    )
}

#[inline]
fn build<'a>(
    ctx: &'a SourceContext,
    caches: &'a mut Caches,
    h: Header<'a>,
    d: Fields<'_, 'a>,
) -> Result<EventRef<'a>, QueueLogError> {
    let Caches {
        numbers,
        agents,
        verbs,
        queues,
        clock,
    } = caches;
    let verb = verbs.get(h.event)?;
    let ts = time(ctx, clock, h.time)?;
    let mut ev = EventRef::new(
        SourceKind::AsteriskQueueLog,
        &ctx.source,
        &ctx.pbx,
        ts,
        verb.kind,
        &verb.name,
    );
    if !is_sentinel_callid(h.callid) {
        ev.call_id = Some(h.callid);
    }
    if !h.queue.is_empty() && !h.queue.eq_ignore_ascii_case("NONE") {
        ev.queue = Some(queues.get_ref(h.queue));
    }
    if !h.agent.is_empty() && !h.agent.eq_ignore_ascii_case("NONE") {
        let (raw, id) = agents.resolve_ref(h.agent);
        ev.agent_raw = Some(raw);
        ev.agent = id;
    }
    interpret(&mut ev, d, numbers);
    ev.data = DataFields::new(h.data);
    Ok(ev)
}

/// The text from the start of `first` to the end of `last`, both slices of
/// `whole` (the data fields between them, `|`-joined as written).
fn covering<'a>(whole: &'a str, first: &str, last: &str) -> &'a str {
    let base = whole.as_ptr() as usize;
    let start = (first.as_ptr() as usize).wrapping_sub(base);
    let end = (last.as_ptr() as usize)
        .wrapping_sub(base)
        .saturating_add(last.len());
    whole.get(start..end).unwrap_or("")
}

/// Fills the kind-specific fields from the data fields `d`.
fn interpret<'a>(ev: &mut EventRef<'a>, d: Fields<'_, 'a>, numbers: &'a mut NumberNormalizer) {
    // Trailing empty fields (a stray trailing '|') carry nothing.
    let mut n = d.len();
    while n > 0 && d.get(n - 1).trim_ascii().is_empty() {
        n -= 1;
    }
    let get = |i: usize| Some(d.get(i).trim_ascii()).filter(|s| i < n && !s.is_empty());
    let num = |i: usize| get(i).and_then(|s| s.parse::<u32>().ok());
    // Fields i.. joined (as written), trimmed; `None` when blank.
    let rest = |i: usize| -> Option<&'a str> {
        let s = d.span(i, n.checked_sub(1)?).trim();
        (i < n && !s.is_empty()).then_some(s)
    };
    match ev.kind {
        EventKind::Did => {
            if let Some(did) = get(0) {
                ev.callee_raw = Some(did);
                ev.callee = numbers.normalize_ref(did);
                ev.info = Some(Cow::Borrowed(did));
            }
            ev.direction = Some(Direction::Inbound);
        }
        EventKind::EnterQueue => {
            ev.info = get(0).map(Cow::Borrowed);
            if let Some(cid) = get(1) {
                ev.caller_raw = Some(cid);
                ev.caller = numbers.normalize_ref(cid);
            }
            ev.orig_position = num(2);
            // The name is last; before 2025 a '|' in it was not escaped.
            ev.caller_name = rest(3);
            ev.direction = Some(Direction::Inbound);
        }
        EventKind::RingNoAnswer | EventKind::RingCanceled => {
            ev.ring_ms = get(0).and_then(|s| s.parse().ok());
        }
        EventKind::Answered => {
            ev.wait_s = num(0);
            ev.peer_call_id = get(1);
            ev.ring_ms = num(2).map(|s| u64::from(s) * 1000);
        }
        EventKind::CompletedByCaller | EventKind::CompletedByAgent => {
            ev.wait_s = num(0);
            ev.talk_s = num(1);
            ev.orig_position = num(2);
        }
        EventKind::Transferred if ev.verb.as_ref() == "ATTENDEDTRANSFER" => {
            // BRIDGE|uid|h|c|o, APP|app|h|c|o, LINK|c1|c2|h|c|o: numbers are last.
            if n >= 4 {
                let k = n;
                ev.wait_s = num(k - 3);
                ev.talk_s = num(k - 2);
                ev.orig_position = num(k - 1);
                // A DB export can lose the kind and target (`||h|c|o`): then no info, not "|".
                let kind = d.span(0, k - 4);
                let blank = kind
                    .trim_matches(|c: char| c == '|' || c.is_whitespace())
                    .is_empty();
                ev.info = (!blank).then_some(Cow::Borrowed(kind));
            } else {
                ev.info = rest(0).map(Cow::Borrowed);
            }
        }
        EventKind::Transferred => {
            // exten|context|holdtime|calltime[|origposition]
            ev.info = match (get(0), get(1)) {
                (Some(e), Some(c)) => Some(Cow::Owned(format!("{e}@{c}"))),
                (Some(e), None) => Some(Cow::Borrowed(e)),
                _ => None,
            };
            ev.wait_s = num(2);
            ev.talk_s = num(3);
            ev.orig_position = num(4);
        }
        EventKind::Abandoned | EventKind::Timeout | EventKind::ExitEmpty => {
            ev.position = num(0);
            ev.orig_position = num(1);
            ev.wait_s = num(2);
        }
        EventKind::ExitWithKey => {
            ev.info = get(0).map(Cow::Borrowed);
            ev.position = num(1);
            ev.orig_position = num(2);
            ev.wait_s = num(3);
        }
        EventKind::Withdrawn => {
            ev.position = num(0);
            ev.orig_position = num(1);
            ev.wait_s = num(2);
            ev.info = rest(3).map(Cow::Borrowed);
        }
        EventKind::AgentLogoff => {
            ev.info = get(0).map(Cow::Borrowed);
            ev.duration_s = num(1);
        }
        EventKind::OutCall => {
            ev.info = get(0).map(Cow::Borrowed);
            ev.talk_s = num(1);
        }
        EventKind::MemberAdded
        | EventKind::Paused
        | EventKind::Unpaused
        | EventKind::PausedAll
        | EventKind::UnpausedAll
        | EventKind::Penalty
        | EventKind::RingInUse
        | EventKind::AgentLogin => {
            ev.info = rest(0).map(Cow::Borrowed);
        }
        _ => {}
    }
}

/// `s.split('|')` with a byte scan (`|` is ASCII: every cut is a char boundary).
fn split_bar(s: &str) -> SmallVec<[&str; 8]> {
    let mut out = SmallVec::new();
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'|' {
            out.push(s.get(start..i).unwrap_or(""));
            start = i + 1;
        }
    }
    out.push(s.get(start..).unwrap_or(""));
    out
}

fn is_sentinel_callid(s: &str) -> bool {
    s.is_empty()
        || ["NONE", "REALTIME", "MANAGER", "CLI"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::NumberConfig;

    #[test]
    fn whole_seconds_matches_a_plain_parse() {
        let plain = |b: &[u8]| -> Option<i64> {
            let s = std::str::from_utf8(b).ok()?;
            (!s.is_empty() && s.len() <= 12 && s.bytes().all(|c| c.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for n in [
            0u64,
            7,
            42,
            12345678,
            99999999,
            100000000,
            1546015415,
            999999999999,
        ] {
            cases.push(n.to_string().into_bytes());
            cases.push(format!("{n:012}").into_bytes());
        }
        for len in 1..=13usize {
            for at in 0..len {
                for v in 0..=255u8 {
                    let mut b = b"1234567890123"[..len].to_vec();
                    b[at] = v;
                    cases.push(b);
                }
            }
        }
        for b in cases {
            assert_eq!(
                whole_seconds(&b),
                plain(&b),
                "{:?}",
                String::from_utf8_lossy(&b)
            );
        }
        assert_eq!(whole_seconds(b""), None);
    }

    fn parser() -> QueueLogParser {
        QueueLogParser::new(
            SourceContext::new("q", "pbx1"),
            NumberNormalizer::new(NumberConfig::default()).unwrap(),
            AgentResolver::default(),
        )
    }

    fn one(line: &str) -> Event {
        parser().parse_line(line.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn enterqueue_versions() {
        let e = one("1546015415|1546015415.757927|201|NONE|ENTERQUEUE||+13238679471|1");
        assert_eq!(e.kind, EventKind::EnterQueue);
        assert_eq!(e.caller.as_deref(), Some("+13238679471"));
        assert_eq!(e.orig_position, Some(1));
        assert_eq!(e.queue.as_deref(), Some("201"));
        assert_eq!(e.agent, None);
        let old = one("0|1266833905.2|9000|NONE|ENTERQUEUE||01773597776");
        assert_eq!(old.caller_raw.as_deref(), Some("01773597776"));
        assert_eq!(old.orig_position, None);
        let named = one("1|c|q|NONE|ENTERQUEUE||89161234567|2|Ivan | Petrov");
        assert_eq!(named.caller.as_deref(), Some("+79161234567"));
        assert_eq!(named.caller_name.as_deref(), Some("Ivan | Petrov"));
    }

    #[test]
    fn connect_complete_abandon() {
        let c = one("1546015425|1546015415.757927|201|Paty Marin|CONNECT|10|1546015415.757936|9");
        assert_eq!(
            (c.kind, c.wait_s, c.ring_ms),
            (EventKind::Answered, Some(10), Some(9000))
        );
        assert_eq!(c.agent.as_deref(), Some("Paty Marin"));
        assert_eq!(c.peer_call_id.as_deref(), Some("1546015415.757936"));
        let d = one("1546015547|1546015415.757927|201|Paty Marin|COMPLETECALLER|10|122|1");
        assert_eq!(
            (d.wait_s, d.talk_s, d.orig_position),
            (Some(10), Some(122), Some(1))
        );
        let a = one("1|c|sales|NONE|ABANDON|3|4|25");
        assert_eq!(
            (a.kind, a.position, a.orig_position, a.wait_s),
            (EventKind::Abandoned, Some(3), Some(4), Some(25))
        );
        let t = one("1|c|sales|NONE|EXITWITHTIMEOUT|2");
        assert_eq!(
            (t.kind, t.position, t.wait_s),
            (EventKind::Timeout, Some(2), None)
        );
        let k = one("1|c|sales|NONE|EXITWITHKEY|5|1|1|12");
        assert_eq!((k.info.as_deref(), k.wait_s), (Some("5"), Some(12)));
    }

    #[test]
    fn attended_transfer_forms() {
        let e =
            one("1717397391|1717397390.239830|1501|PJSIP/7009|ATTENDEDTRANSFER|APP|Queue|12|120|1");
        assert_eq!(e.kind, EventKind::Transferred);
        assert_eq!(e.agent.as_deref(), Some("7009"));
        assert_eq!(e.info.as_deref(), Some("APP|Queue"));
        assert_eq!(
            (e.wait_s, e.talk_s, e.orig_position),
            (Some(12), Some(120), Some(1))
        );
        let l = one("1|c|q|PJSIP/1|ATTENDEDTRANSFER|LINK|PJSIP/1-01|PJSIP/2-02|5|60|2|");
        assert_eq!(l.info.as_deref(), Some("LINK|PJSIP/1-01|PJSIP/2-02"));
        assert_eq!(
            (l.wait_s, l.talk_s, l.orig_position),
            (Some(5), Some(60), Some(2))
        );
        let bare = one("1|c|q|PJSIP/1|ATTENDEDTRANSFER|||6|30|1");
        assert_eq!(
            (bare.info, bare.wait_s, bare.talk_s, bare.orig_position),
            (None, Some(6), Some(30), Some(1))
        );
    }

    #[test]
    fn sentinels_blank_crlf_and_no_data() {
        let e = one("1596191926|NONE|NONE|NONE|QUEUESTART|\r\n");
        assert_eq!(
            (e.kind, e.call_id.clone(), e.queue.clone()),
            (EventKind::QueueStart, None, None)
        );
        assert!(e.data.is_empty());
        let m = one("1|MANAGER|sales|PJSIP/201|ADDMEMBER|PAUSED");
        assert_eq!((m.call_id, m.info.as_deref()), (None, Some("PAUSED")));
        assert_eq!(parser().parse_line(b"").unwrap(), None);
        assert_eq!(parser().parse_line(b"  \r\n").unwrap(), None);
        let bom = one("\u{feff}1596191926|NONE|NONE|NONE|QUEUESTART|");
        assert_eq!(bom.kind, EventKind::QueueStart);
        let nodata = one("1|c|q|NONE|AGENTDUMP");
        assert_eq!(nodata.kind, EventKind::AgentDump);
        let spaced = one("1266834360 | 1266834354.91 | 9000 | NONE | ENTERQUEUE || anonymous");
        assert_eq!(spaced.call_id.as_deref(), Some("1266834354.91"));
        assert_eq!(spaced.caller, None);
        assert_eq!(spaced.caller_raw.as_deref(), Some("anonymous"));
    }

    #[test]
    fn unknown_verbs_are_kept() {
        let e = one("1546015415|1546015415.757927|201|NONE|CALLERONHOLD|x|y");
        assert_eq!(e.kind, EventKind::Other);
        assert_eq!(e.verb.as_ref(), "CALLERONHOLD");
        assert_eq!(e.data, vec!["x", "y"]);
    }

    #[test]
    fn db_time_in_zone_and_non_utf8() {
        let mut p = QueueLogParser::new(
            SourceContext {
                timezone: "Europe/Moscow".parse().unwrap(),
                ..SourceContext::new("q", "pbx1")
            },
            NumberNormalizer::new(NumberConfig::default()).unwrap(),
            AgentResolver::default(),
        );
        let e = p
            .parse_line(b"2012-07-04 07:33:21.165823|1341401601.24|q1|NONE|ENTERQUEUE||1000|1")
            .unwrap()
            .unwrap();
        assert_eq!(e.ts.to_rfc3339(), "2012-07-04T03:33:21.165823+00:00");
        let mut line = b"1|c|q|NONE|ENTERQUEUE||89161234567|1|".to_vec();
        line.extend_from_slice(&[0xC8, 0xE2, 0xE0, 0xED]); // "Иван" in cp1251
        let e = p.parse_line(&line).unwrap().unwrap();
        assert_eq!(e.caller_name.as_deref(), Some("Иван"));
    }

    #[test]
    fn rejects_say_why() {
        let mut p = parser();
        assert_eq!(
            p.parse_line(b"garbage").unwrap_err(),
            QueueLogError::TooFewFields { found: 1 }
        );
        assert!(matches!(
            p.parse_line(b"abc|c|q|a|CONNECT|1").unwrap_err(),
            QueueLogError::BadTime { .. }
        ));
        assert_eq!(
            p.parse_line(b"1|c|q|a||x").unwrap_err(),
            QueueLogError::EmptyEvent
        );
        let long = vec![b'1'; MAX_LINE_LEN + 1];
        assert!(matches!(
            p.parse_line(&long).unwrap_err(),
            QueueLogError::TooLong { .. }
        ));
    }
}
