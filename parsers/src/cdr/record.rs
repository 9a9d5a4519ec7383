//! One split CDR record + its column mapping → one [`Event`].
//!
//! Field rules:
//! - every field is decoded on its own: UTF-8 when valid, else the source's
//!   fallback charset (raw cp1251 caller-ID names next to ASCII numbers);
//! - dates are `YYYY-MM-DD HH:MM:SS` (a `.fraction` or epoch seconds are
//!   accepted too) in the source's time zone (UTC for `usegmtime=yes`); an
//!   empty `answer`/`end` or `0000-00-00 00:00:00` is no date; a local time
//!   skipped by DST is an error;
//! - `duration`/`billsec` are whole seconds; `CDR(duration,f)` fractions are
//!   rounded down; anything else gives no value;
//! - layouts without `answer`/`end` columns (a FreePBX `cdr` table export)
//!   get them derived: end = start + duration, answer = end − billsec when
//!   billsec > 0;
//! - caller name: a separate caller-name column when present and not empty,
//!   else the name part of clid (`"Name" <num>` → `Name`; a clid without
//!   `<num>` is a name unless it looks like a number);
//! - queue: the first argument of lastdata when lastapp is `Queue`;
//!   info: `lastapp(lastdata)`; data: every field, decoded, in file order.

use super::direction::{classify, direction};
use super::error::CdrError;
use super::layout::{Col, Mapping};
use super::split::Fields;
use crate::agent::AgentResolver;
use crate::event::{Direction, Disposition, Event, EventKind, SourceKind, Str};
use crate::intern::Interner;
use crate::phone::NumberNormalizer;
use crate::text::decode_lenient;
use crate::time::{local_to_utc, parse_epoch, parse_naive};
use crate::SourceContext;
use chrono::{DateTime, TimeDelta, Utc};

/// Turns records into events; holds the per-source caches.
#[derive(Debug)]
pub(crate) struct Builder {
    pub(crate) ctx: SourceContext,
    pub(crate) kind: SourceKind,
    numbers: NumberNormalizer,
    agents: AgentResolver,
    interned: Interner,
    verb: Str,
    /// Digit strings up to this long are extensions (see `direction`).
    pub(crate) max_extension_len: usize,
}

impl Builder {
    pub(crate) fn new(
        ctx: SourceContext,
        kind: SourceKind,
        numbers: NumberNormalizer,
        agents: AgentResolver,
    ) -> Self {
        Builder {
            ctx,
            kind,
            numbers,
            agents,
            interned: Interner::default(),
            verb: Str::from("CDR"),
            max_extension_len: super::DEFAULT_MAX_EXTENSION_LEN,
        }
    }

    /// A date column: `Ok(None)` when empty or all zeros.
    fn date(&self, column: &'static str, s: &str) -> Result<Option<DateTime<Utc>>, CdrError> {
        let s = s.trim();
        if s.is_empty() || s.starts_with("0000-00-00") {
            return Ok(None);
        }
        if let Some(naive) = parse_naive(s) {
            return local_to_utc(naive, self.ctx.timezone)
                .map(Some)
                .ok_or_else(|| CdrError::NonexistentLocalTime {
                    column,
                    found: s.into(),
                    tz: self.ctx.timezone.name().into(),
                });
        }
        if !s.contains('-') {
            if let Some(t) = parse_epoch(s) {
                // `${CDR(answer,u)}` writes an unset time as `0.000000`.
                return Ok((t != DateTime::UNIX_EPOCH).then_some(t));
            }
        }
        Err(CdrError::BadDate {
            column,
            found: s.chars().take(64).collect(),
        })
    }

    /// Builds the event for one record whose column count already matches `m`.
    pub(crate) fn build(&mut self, fields: &Fields, m: &Mapping) -> Result<Event, CdrError> {
        let cs = self.ctx.fallback_charset;
        let data: Vec<String> = fields
            .iter()
            .map(|f| decode_lenient(f, cs).into_owned())
            .collect();
        let get = |c: Col| -> &str { m.get(c).and_then(|i| data.get(i)).map_or("", |s| s.trim()) };

        let start = self
            .date("start", get(Col::Start))?
            .ok_or_else(|| CdrError::BadDate {
                column: "start",
                found: get(Col::Start).into(),
            })?;
        let mut answered_at = self.date("answer", get(Col::Answer))?;
        let mut ended_at = self.date("end", get(Col::End))?;
        let duration_s = seconds(get(Col::Duration));
        let talk_s = seconds(get(Col::Billsec));
        if !m.has(Col::End) {
            ended_at =
                duration_s.and_then(|d| start.checked_add_signed(TimeDelta::seconds(d.into())));
        }
        if !m.has(Col::Answer) {
            answered_at = match (ended_at, talk_s) {
                (Some(end), Some(talk)) if talk > 0 => {
                    end.checked_sub_signed(TimeDelta::seconds(talk.into()))
                }
                _ => None,
            };
        }

        let mut ev = Event::new(
            self.kind,
            self.ctx.source.clone(),
            self.ctx.pbx.clone(),
            start,
            EventKind::CallRecord,
            self.verb.clone(),
        );
        ev.answered_at = answered_at;
        ev.ended_at = ended_at;
        ev.duration_s = duration_s;
        ev.talk_s = talk_s;
        if m.has(Col::Disposition) {
            ev.disposition = Some(Disposition::from_asterisk(get(Col::Disposition)));
        }
        ev.call_id = non_empty(get(Col::Uniqueid)).map(str::to_string);
        ev.linked_id = non_empty(get(Col::Linkedid)).map(str::to_string);
        ev.channel = non_empty(get(Col::Channel)).map(str::to_string);
        ev.dst_channel = non_empty(get(Col::Dstchannel)).map(str::to_string);

        let src = get(Col::Src);
        let dst = get(Col::Dst);
        ev.caller = self.numbers.normalize(src);
        ev.callee = self.numbers.normalize(dst);
        ev.caller_raw = non_empty(src).map(str::to_string);
        ev.callee_raw = non_empty(dst).map(str::to_string);
        ev.caller_name = non_empty(get(Col::CallerName))
            .or_else(|| clid_name(get(Col::Clid)))
            .map(str::to_string);

        let dir = direction(
            classify(src, ev.caller.as_deref(), self.max_extension_len),
            classify(dst, ev.callee.as_deref(), self.max_extension_len),
            get(Col::Dcontext),
            get(Col::Userfield),
        );
        ev.direction = dir;
        let agent_channel = match dir {
            Some(Direction::Inbound) => get(Col::Dstchannel),
            Some(Direction::Outbound | Direction::Internal) => get(Col::Channel),
            None => "",
        };
        if !agent_channel.is_empty() {
            ev.agent = self.agents.resolve(agent_channel);
            ev.agent_raw = Some(Str::from(agent_channel));
        }

        let app = get(Col::Lastapp);
        let app_data = get(Col::Lastdata);
        if app.eq_ignore_ascii_case("Queue") {
            let q = app_data.split([',', '|']).next().unwrap_or("").trim();
            if !q.is_empty() {
                ev.queue = Some(self.interned.get(q));
            }
        }
        if !app.is_empty() {
            ev.info = Some(format!("{app}({app_data})"));
        }
        ev.data = data;
        Ok(ev)
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Whole seconds from `27`, `27.9` (rounded down) or `27.`; else `None`.
pub(crate) fn seconds(s: &str) -> Option<u32> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    int.parse().ok()
}

/// The name part of an Asterisk clid (`"Name" <num>`, `Name <num>`, `Name`),
/// `None` when there is no name (`"" <num>`, `<num>`, a bare number).
pub(crate) fn clid_name(clid: &str) -> Option<&str> {
    let t = clid.trim();
    let name = match t.rfind('<') {
        Some(lt) if t.ends_with('>') => t[..lt].trim(),
        _ => {
            let numeric = t
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-()*# ".contains(&b));
            if numeric {
                return None;
            }
            t
        }
    };
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => name,
    };
    non_empty(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clid_forms() {
        assert_eq!(clid_name(r#""Ivan Petrov" <201>"#), Some("Ivan Petrov"));
        assert_eq!(clid_name(r#"Ivan <201>"#), Some("Ivan"));
        assert_eq!(clid_name(r#""" <client1>"#), None);
        assert_eq!(clid_name("<201>"), None);
        assert_eq!(clid_name("201"), None);
        assert_eq!(clid_name("+7 (916) 123-45-67"), None);
        assert_eq!(clid_name(""), None);
        assert_eq!(clid_name("Reception"), Some("Reception"));
        assert_eq!(
            clid_name(r#""89245555937" <89245555937>"#),
            Some("89245555937")
        );
        assert_eq!(clid_name(r#""O"Brien" <5>"#), Some(r#"O"Brien"#));
        assert_eq!(clid_name(r#"""#), Some(r#"""#));
    }

    #[test]
    fn seconds_forms() {
        assert_eq!(seconds("27"), Some(27));
        assert_eq!(seconds(" 27 "), Some(27));
        assert_eq!(seconds("27.999"), Some(27));
        assert_eq!(seconds("27."), Some(27));
        assert_eq!(seconds("0.5"), Some(0));
        assert_eq!(seconds(""), None);
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds(".5"), None);
        assert_eq!(seconds("1e3"), None);
        assert_eq!(seconds("99999999999"), None);
    }
}
