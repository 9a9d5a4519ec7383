//! The zero-copy form of a normalized call event: the same typed, normalized
//! columns as [`Event`], but text borrowed from the input line (or from the
//! parser's caches) instead of owned.
//!
//! A parser hands out an [`EventRef`] per line without allocating (on a
//! warm parser, for valid UTF-8 input): raw fields are `&str` slices of the
//! line, repeated values (source, PBX, verb, queue, agent, normalized
//! numbers) are borrows of the parser's shared [`Str`]s, data fields are
//! split on demand. Bulk consumers (columnar appends) read the public fields
//! directly; [`EventRef::to_event`] builds the owned [`Event`] that the
//! tailing path publishes, identical to what the owned parse returns.

use crate::event::{Direction, Disposition, Event, EventKind, SourceKind, Str};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// One normalized event borrowing from its input line and its parser.
/// Every field means what the [`Event`] field of the same name means; there
/// is no `event_id` (set by the ingest layer from the line's position).
#[derive(Clone, Debug, PartialEq)]
pub struct EventRef<'a> {
    pub source_kind: SourceKind,
    pub source: &'a Str,
    pub pbx: &'a Str,
    pub ts: DateTime<Utc>,
    pub kind: EventKind,
    pub verb: &'a Str,
    pub call_id: Option<&'a str>,
    pub linked_id: Option<&'a str>,
    pub peer_call_id: Option<&'a str>,
    pub queue: Option<&'a Str>,
    pub agent: Option<&'a Str>,
    pub agent_raw: Option<&'a Str>,
    pub caller: Option<&'a Str>,
    pub caller_raw: Option<&'a str>,
    pub caller_name: Option<&'a str>,
    pub callee: Option<&'a Str>,
    pub callee_raw: Option<&'a str>,
    pub direction: Option<Direction>,
    pub disposition: Option<Disposition>,
    pub wait_s: Option<u32>,
    pub talk_s: Option<u32>,
    pub ring_ms: Option<u64>,
    pub duration_s: Option<u32>,
    pub position: Option<u32>,
    pub orig_position: Option<u32>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Borrowed from the line, except for the few kinds that compose it
    /// (queue_log `TRANSFER`: `exten@context`).
    pub info: Option<Cow<'a, str>>,
    pub data: DataFields<'a>,
}

impl<'a> EventRef<'a> {
    /// An event with only the envelope filled in.
    pub fn new(
        source_kind: SourceKind,
        source: &'a Str,
        pbx: &'a Str,
        ts: DateTime<Utc>,
        kind: EventKind,
        verb: &'a Str,
    ) -> Self {
        EventRef {
            source_kind,
            source,
            pbx,
            ts,
            kind,
            verb,
            call_id: None,
            linked_id: None,
            peer_call_id: None,
            queue: None,
            agent: None,
            agent_raw: None,
            caller: None,
            caller_raw: None,
            caller_name: None,
            callee: None,
            callee_raw: None,
            direction: None,
            disposition: None,
            wait_s: None,
            talk_s: None,
            ring_ms: None,
            duration_s: None,
            position: None,
            orig_position: None,
            answered_at: None,
            ended_at: None,
            info: None,
            data: DataFields::default(),
        }
    }

    /// The owned event (with an empty `event_id`, as the parsers return it).
    pub fn to_event(&self) -> Event {
        self.clone().into_event()
    }

    /// The owned event, reusing an already-owned `info`.
    pub fn into_event(self) -> Event {
        let owned = |s: Option<&str>| s.map(str::to_string);
        let text = |s: Option<&Str>| s.map(|s| s.to_string());
        Event {
            event_id: String::new(),
            source_kind: self.source_kind,
            source: self.source.clone(),
            pbx: self.pbx.clone(),
            ts: self.ts,
            kind: self.kind,
            verb: self.verb.clone(),
            call_id: owned(self.call_id),
            linked_id: owned(self.linked_id),
            peer_call_id: owned(self.peer_call_id),
            channel: None,
            dst_channel: None,
            queue: self.queue.cloned(),
            agent: self.agent.cloned(),
            agent_raw: self.agent_raw.cloned(),
            caller: text(self.caller),
            caller_raw: owned(self.caller_raw),
            caller_name: owned(self.caller_name),
            callee: text(self.callee),
            callee_raw: owned(self.callee_raw),
            direction: self.direction,
            disposition: self.disposition,
            wait_s: self.wait_s,
            talk_s: self.talk_s,
            ring_ms: self.ring_ms,
            duration_s: self.duration_s,
            position: self.position,
            orig_position: self.orig_position,
            answered_at: self.answered_at,
            ended_at: self.ended_at,
            info: self.info.map(Cow::into_owned),
            data: self.data.to_vec(),
        }
    }
}

/// The raw data fields after the fixed ones (queue_log's data1…), kept as
/// the `|`-separated text they were written as and split on demand: empty
/// text is no field, otherwise `n` bars make `n + 1` fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataFields<'a> {
    raw: &'a str,
}

impl<'a> DataFields<'a> {
    /// Fields from their `|`-joined text.
    pub fn new(raw: &'a str) -> Self {
        DataFields { raw }
    }

    /// The fields as written, `|`-joined.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn len(&self) -> usize {
        if self.raw.is_empty() {
            0
        } else {
            self.raw.bytes().filter(|&b| b == b'|').count() + 1
        }
    }

    /// Field `i`, if there are that many.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.iter().nth(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let raw = self.raw;
        (!raw.is_empty())
            .then(|| raw.split('|'))
            .into_iter()
            .flatten()
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_fields_split_like_the_owned_vec() {
        for (raw, want) in [
            ("", vec![]),
            ("x", vec!["x"]),
            ("|", vec!["", ""]),
            ("a||b|", vec!["a", "", "b", ""]),
        ] {
            let d = DataFields::new(raw);
            assert_eq!(d.to_vec(), want, "{raw:?}");
            assert_eq!(d.len(), want.len());
            assert_eq!(d.is_empty(), want.is_empty());
            assert_eq!(d.as_str(), raw);
            for (i, w) in want.iter().enumerate() {
                assert_eq!(d.get(i), Some(*w));
            }
            assert_eq!(d.get(want.len()), None);
        }
    }
}
