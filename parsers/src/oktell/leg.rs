//! One row of `A_Stat_Connections_1x1` (one leg of a call), its normalized
//! [`Event`], and its content fingerprint.
//!
//! Direction by `ConnectionType` (FORMATS.md §d), from the PBX's side:
//!
//! | type | legs              | direction | agent (inside party)  |
//! |------|-------------------|-----------|-----------------------|
//! | 1    | inside → outside  | outbound  | `ALineNum`            |
//! | 2    | inside → IVR      | internal  | `ALineNum`            |
//! | 3    | inside → inside   | internal  | `ALineNum` (the caller) |
//! | 4    | outside → IVR     | inbound   | none                  |
//! | 5    | outside → inside  | inbound   | `BLineNum`            |
//! | 6    | outside → outside | inbound   | none                  |
//! | 7    | IVR → outside     | outbound  | none                  |
//! | 8    | IVR → inside      | internal  | `BLineNum`            |
//! | 0, other | failed / unknown | none  | none                  |
//!
//! The rule: a leg whose A side is outside is inbound; otherwise a leg whose B
//! side is outside is outbound; otherwise (inside or IVR on both ends) it is
//! internal. Transit (6) therefore counts as inbound: an external party
//! called in on our trunk and the PBX forwarded it out again (a forward to a
//! mobile, a follow-me): the call was started by the outside caller and
//! belongs with the inbound legs of its chain, and its caller is that
//! external A number. Trunk-usage reports that need to see the second,
//! outgoing trunk can still tell type 6 apart through the raw fields.

use super::header::Column;
use crate::agent::AgentResolver;
use crate::event::{Direction, Disposition, Event, EventKind, SourceKind, Str};
use crate::hash::Fnv1a;
use crate::phone::NumberNormalizer;
use crate::SourceContext;
use chrono::{DateTime, Utc};

/// The verb of every Oktell event.
pub const VERB: &str = "OKTELL";

/// One leg (row) as read. Optional columns are `None` when the export lacks
/// them or the value is NULL; ids are normalized (GUIDs upper-case without
/// braces); times are UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktellLeg {
    /// `Id`: the leg (connection) id.
    pub id: String,
    /// `IdChain`: shared by every leg of one call.
    pub chain: String,
    /// `ConnectionType` (see the module docs).
    pub connection_type: u8,
    pub start: DateTime<Utc>,
    pub answer: Option<DateTime<Utc>>,
    /// False when the export has no `TimeAnswer` column: then `answer` is
    /// `None` without meaning "not answered" (the disposition is unknown).
    pub answer_known: bool,
    /// `None` while the leg is still active (open).
    pub stop: Option<DateTime<Utc>>,
    /// For type 5: 1 primary inbound to the operator, 5 back from FLASH
    /// (a transfer), 2 automatic return from FLASH.
    pub reason_start: Option<i32>,
    pub reason_stop: Option<i32>,
    /// 0: side A hung up, 1: side B.
    pub stop_side: Option<i32>,
    pub a_out_number: Option<String>,
    pub b_out_number: Option<String>,
    pub a_str: Option<String>,
    pub b_str: Option<String>,
    pub a_line_id: Option<String>,
    pub b_line_id: Option<String>,
    pub a_line_num: Option<String>,
    pub b_line_num: Option<String>,
    /// The number A dialed: on a type-4 leg, our DID.
    pub a_number_dialed: Option<String>,
    pub is_recorded: Option<bool>,
    /// Every field of the row as written (unquoted, trimmed), in header order.
    pub fields: Vec<String>,
}

/// The direction of a leg of `connection_type` (see the module docs).
pub fn direction_of(connection_type: u8) -> Option<Direction> {
    match connection_type {
        4..=6 => Some(Direction::Inbound),
        1 | 7 => Some(Direction::Outbound),
        2 | 3 | 8 => Some(Direction::Internal),
        _ => None,
    }
}

/// Which side's line is the inside party (the agent) for `connection_type`.
pub fn agent_column(connection_type: u8) -> Option<Column> {
    match connection_type {
        1..=3 => Some(Column::ALineNum),
        5 | 8 => Some(Column::BLineNum),
        _ => None,
    }
}

/// Oktell's description of a connection type.
pub fn connection_type_name(connection_type: u8) -> Option<&'static str> {
    Some(match connection_type {
        0 => "failed",
        1 => "inside -> outside",
        2 => "inside -> IVR",
        3 => "inside -> inside",
        4 => "outside -> IVR",
        5 => "outside -> inside",
        6 => "outside -> outside (transit)",
        7 => "IVR -> outside",
        8 => "IVR -> inside",
        _ => return None,
    })
}

/// Whole seconds from `a` to `b`, truncated like Asterisk's billsec; `None`
/// when `b` is before `a` (a clock stepped back) or absurdly far.
fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> Option<u32> {
    let ms = (b - a).num_milliseconds();
    u32::try_from(ms / 1000).ok().filter(|_| ms >= 0)
}

/// [`NumberNormalizer::normalize`] on the ASCII characters of `raw` only. A
/// number has no others (Oktell may write a word such as `Неизвестен` for a
/// hidden number), and `normalize` currently panics on text whose first five
/// bytes split a multi-byte character (its `tel:`/`sips:` prefix check slices
/// the string by bytes), so non-ASCII text never reaches it.
fn normalize_number(numbers: &mut NumberNormalizer, raw: &str) -> Option<String> {
    if raw.is_ascii() {
        numbers.normalize(raw)
    } else {
        let ascii: String = raw.chars().filter(char::is_ascii).collect();
        numbers.normalize(&ascii)
    }
}

impl OktellLeg {
    /// True while the leg is active (`TimeStop` is NULL): the row will still
    /// be updated, so it has no event yet.
    pub fn is_open(&self) -> bool {
        self.stop.is_none()
    }

    /// The leg's direction (see the module docs).
    pub fn direction(&self) -> Option<Direction> {
        direction_of(self.connection_type)
    }

    /// The inside party's line number as written (`BLineNum` for type 5 and
    /// 8, `ALineNum` for 1, 2 and 3), the raw agent.
    pub fn agent_line(&self) -> Option<&str> {
        match agent_column(self.connection_type)? {
            Column::ALineNum => self.a_line_num.as_deref(),
            _ => self.b_line_num.as_deref(),
        }
    }

    /// Conversation seconds (`TimeStop - TimeAnswer`), for a closed answered leg.
    pub fn talk_s(&self) -> Option<u32> {
        secs_between(self.answer?, self.stop?)
    }

    /// Whole-leg seconds (`TimeStop - TimeStart`), for a closed leg.
    pub fn duration_s(&self) -> Option<u32> {
        secs_between(self.start, self.stop?)
    }

    /// The normalized event for a closed leg; `None` while the leg is open.
    ///
    /// `call_id` = `Id`, `linked_id` = `IdChain`, `ts` = `TimeStart`;
    /// `answered_at`, `ended_at`, `duration_s` (stop − start), `talk_s`
    /// (stop − answer; `None` when unanswered), `ring_ms` (answer − start);
    /// disposition answered when `TimeAnswer` is set, else no-answer (unknown
    /// when the export has no `TimeAnswer` column; per leg:
    /// an IVR leg is answered by the IVR, so a missed inbound call is a chain
    /// with no answered type-5 leg). Caller from `AOutNumber` (name `AStr`),
    /// callee from `BOutNumber`, or from `ANumberDialed` when `BOutNumber`
    /// holds no number (an IVR leg); on type 4 `info` is the DID
    /// (`ANumberDialed`). Agent from the inside party's line (see
    /// [`OktellLeg::agent_line`]). No queue: this table has none. `data` is
    /// the row's fields in header order. `event_id` is left empty for the
    /// ingest layer.
    pub fn to_event(
        &self,
        ctx: &SourceContext,
        numbers: &mut NumberNormalizer,
        agents: &mut AgentResolver,
    ) -> Option<Event> {
        self.build_event(ctx, numbers, agents, Str::from(VERB))
    }

    pub(crate) fn build_event(
        &self,
        ctx: &SourceContext,
        numbers: &mut NumberNormalizer,
        agents: &mut AgentResolver,
        verb: Str,
    ) -> Option<Event> {
        let stop = self.stop?;
        let mut ev = Event::new(
            SourceKind::OktellCsv,
            ctx.source.clone(),
            ctx.pbx.clone(),
            self.start,
            EventKind::CallRecord,
            verb,
        );
        ev.call_id = Some(self.id.clone());
        ev.linked_id = Some(self.chain.clone());
        ev.answered_at = self.answer;
        ev.ended_at = Some(stop);
        ev.duration_s = self.duration_s();
        ev.talk_s = self.talk_s();
        ev.ring_ms = self
            .answer
            .map(|a| (a - self.start).num_milliseconds())
            .and_then(|ms| u64::try_from(ms).ok());
        ev.disposition = Some(match (self.answer, self.answer_known) {
            (Some(_), _) => Disposition::Answered,
            (None, true) => Disposition::NoAnswer,
            (None, false) => Disposition::Unknown,
        });
        ev.direction = self.direction();

        if let Some(a) = &self.a_out_number {
            ev.caller = normalize_number(numbers, a);
            ev.caller_raw = Some(a.clone());
        }
        ev.caller_name = self.a_str.clone();
        // `IVR` and other line markers are not numbers: fall back to the DID.
        let b_number = self
            .b_out_number
            .as_deref()
            .filter(|b| b.bytes().any(|c| c.is_ascii_digit()))
            .and_then(|b| normalize_number(numbers, b));
        match (b_number, &self.a_number_dialed) {
            (Some(n), _) => {
                ev.callee = Some(n);
                ev.callee_raw = self.b_out_number.clone();
            }
            (None, Some(dialed)) => {
                ev.callee = normalize_number(numbers, dialed);
                ev.callee_raw = Some(dialed.clone());
            }
            (None, None) => ev.callee_raw = self.b_out_number.clone(),
        }
        if self.connection_type == 4 {
            ev.info = self.a_number_dialed.clone();
        }
        if let Some(line) = self.agent_line() {
            ev.agent = agents.resolve(line);
            ev.agent_raw = Some(Str::from(line));
        }
        ev.data = self.fields.clone();
        Some(ev)
    }

    /// A content fingerprint of the leg: 64-bit FNV-1a over every typed
    /// column value (not the raw text, so the same row re-exported with other
    /// quoting, padding, date format or column order has the same
    /// fingerprint; columns the parser does not know are not included).
    /// Stable across runs, platforms and Rust versions.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv1a::new();
        h.write(b"oktell-leg/1");
        h.write_opt_str(Some(&self.id));
        h.write_opt_str(Some(&self.chain));
        h.write(&[self.connection_type]);
        h.write_opt_time(Some(self.start));
        h.write_opt_time(self.answer);
        h.write_opt_time(self.stop);
        for n in [self.reason_start, self.reason_stop, self.stop_side] {
            match n {
                Some(v) => {
                    h.write(&[1]);
                    h.write(&v.to_le_bytes());
                }
                None => h.write(&[0]),
            }
        }
        for s in [
            &self.a_out_number,
            &self.b_out_number,
            &self.a_str,
            &self.b_str,
            &self.a_line_id,
            &self.b_line_id,
            &self.a_line_num,
            &self.b_line_num,
            &self.a_number_dialed,
        ] {
            h.write_opt_str(s.as_deref());
        }
        h.write(&[match self.is_recorded {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        }]);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::NumberConfig;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32, ms: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, h, m, s).unwrap()
            + chrono::Duration::milliseconds(ms.into())
    }

    fn leg(ty: u8) -> OktellLeg {
        OktellLeg {
            id: "L1".into(),
            chain: "C1".into(),
            connection_type: ty,
            start: t(7, 15, 0, 123),
            answer: Some(t(7, 15, 6, 0)),
            answer_known: true,
            stop: Some(t(7, 17, 6, 999)),
            reason_start: Some(1),
            reason_stop: None,
            stop_side: Some(0),
            a_out_number: Some("89161234567".into()),
            b_out_number: Some("101".into()),
            a_str: Some("Иван".into()),
            b_str: None,
            a_line_id: None,
            b_line_id: None,
            a_line_num: Some("102".into()),
            b_line_num: Some("101".into()),
            a_number_dialed: Some("84951234567".into()),
            is_recorded: Some(true),
            fields: vec!["raw".into()],
        }
    }

    fn event(l: &OktellLeg) -> Option<Event> {
        l.to_event(
            &SourceContext::new("ok", "pbx"),
            &mut NumberNormalizer::new(NumberConfig::default()).unwrap(),
            &mut AgentResolver::default(),
        )
    }

    #[test]
    fn every_type_direction_and_agent() {
        use Direction::*;
        let want: [(u8, Option<Direction>, Option<&str>); 11] = [
            (0, None, None),
            (1, Some(Outbound), Some("102")),
            (2, Some(Internal), Some("102")),
            (3, Some(Internal), Some("102")),
            (4, Some(Inbound), None),
            (5, Some(Inbound), Some("101")),
            (6, Some(Inbound), None),
            (7, Some(Outbound), None),
            (8, Some(Internal), Some("101")),
            (9, None, None),
            (255, None, None),
        ];
        for (ty, dir, agent) in want {
            let e = event(&leg(ty)).unwrap();
            assert_eq!(e.direction, dir, "type {ty}");
            assert_eq!(e.agent.as_deref(), agent, "type {ty}");
            assert_eq!(e.agent_raw.as_deref(), agent, "type {ty}");
            assert_eq!(
                e.info.as_deref(),
                (ty == 4).then_some("84951234567"),
                "type {ty}"
            );
            assert_eq!(connection_type_name(ty).is_some(), ty <= 8);
        }
    }

    #[test]
    fn closed_leg_event() {
        let e = event(&leg(5)).unwrap();
        assert_eq!(e.kind, EventKind::CallRecord);
        assert_eq!(e.verb.as_ref(), "OKTELL");
        assert_eq!(e.source_kind, SourceKind::OktellCsv);
        assert_eq!(
            (e.call_id.as_deref(), e.linked_id.as_deref()),
            (Some("L1"), Some("C1"))
        );
        assert_eq!(e.ts, t(7, 15, 0, 123));
        assert_eq!(e.answered_at, Some(t(7, 15, 6, 0)));
        assert_eq!(e.ended_at, Some(t(7, 17, 6, 999)));
        // 126.876 s and 120.999 s, truncated
        assert_eq!(
            (e.duration_s, e.talk_s, e.ring_ms),
            (Some(126), Some(120), Some(5877))
        );
        assert_eq!(e.disposition, Some(Disposition::Answered));
        assert_eq!(e.caller.as_deref(), Some("+79161234567"));
        assert_eq!(e.caller_raw.as_deref(), Some("89161234567"));
        assert_eq!(e.caller_name.as_deref(), Some("Иван"));
        assert_eq!(
            (e.callee.as_deref(), e.callee_raw.as_deref()),
            (Some("101"), Some("101"))
        );
        assert_eq!(e.queue, None);
        assert_eq!(e.data, ["raw"]);
    }

    #[test]
    fn open_unanswered_and_odd_legs() {
        let mut open = leg(5);
        open.stop = None;
        assert!(open.is_open());
        assert_eq!(event(&open), None);
        assert_eq!((open.talk_s(), open.duration_s()), (None, None));

        let mut missed = leg(4);
        missed.answer = None;
        missed.b_out_number = Some("IVR".into());
        let e = event(&missed).unwrap();
        assert_eq!(e.disposition, Some(Disposition::NoAnswer));
        assert_eq!((e.talk_s, e.ring_ms, e.duration_s), (None, None, Some(126)));
        // BOutNumber holds no number: the DID is the callee
        assert_eq!(e.callee.as_deref(), Some("+74951234567"));
        assert_eq!(e.callee_raw.as_deref(), Some("84951234567"));

        let mut no_column = missed.clone();
        no_column.answer_known = false;
        assert_eq!(
            event(&no_column).unwrap().disposition,
            Some(Disposition::Unknown)
        );

        let mut back = leg(1);
        back.stop = Some(t(7, 0, 0, 0)); // before start: clock stepped back
        let e = event(&back).unwrap();
        assert_eq!((e.duration_s, e.talk_s), (None, None));
    }

    #[test]
    fn non_ascii_numbers_do_not_reach_the_normalizer() {
        let mut l = leg(5);
        l.a_out_number = Some("Неизвестен".into());
        l.b_out_number = Some("8916И234567".into());
        let e = event(&l).unwrap();
        assert_eq!(
            (e.caller, e.caller_raw.as_deref()),
            (None, Some("Неизвестен"))
        );
        // the letter is dropped; the rest is not a valid RU number, so it stays digits
        assert_eq!(e.callee.as_deref(), Some("8916234567"));
        assert_eq!(e.callee_raw.as_deref(), Some("8916И234567"));
    }

    #[test]
    fn fingerprint_is_pinned_and_content_sensitive() {
        let l = leg(5);
        // Pinned: a change here changes every stored fingerprint (bump the "/1" tag).
        assert_eq!(l.fingerprint(), PINNED);
        let mut raw = l.clone();
        raw.fields = vec!["other".into(), "layout".into()];
        assert_eq!(raw.fingerprint(), l.fingerprint());
        let mut closed_later = l.clone();
        closed_later.stop = Some(t(7, 17, 7, 0));
        assert_ne!(closed_later.fingerprint(), l.fingerprint());
        let mut none_vs_empty = l.clone();
        none_vs_empty.b_str = Some(String::new());
        assert_ne!(none_vs_empty.fingerprint(), l.fingerprint());
        let mut shifted = l.clone();
        shifted.a_out_number = Some("8916123456".into());
        shifted.b_out_number = Some("7101".into());
        assert_ne!(shifted.fingerprint(), l.fingerprint());
    }

    /// Recomputed independently from the documented byte layout (a Python FNV-1a).
    const PINNED: u64 = 18_291_457_649_863_109_432;
}
