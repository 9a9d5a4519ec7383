//! WinTariff call table rows → `call_record` events.
//!
//! WinTariff's table layout is **not public** and no sample exists
//! (FORMATS.md §c.1): the field meanings below come from one user's
//! write-up and are unverified. So every field name is configurable
//! ([`WinTariffMapping`]); the defaults are that write-up's names. A role
//! configured as `""` is not used.
//!
//! | role | default | use |
//! |---|---|---|
//! | `calltype` | `CALLTYPE` | direction (rules below); filled a few seconds after the row appears, so blank = incomplete ([`WinTariffMapper::is_complete`]) |
//! | `callerid` | `CALLERID` | the calling number of inbound calls |
//! | `extension` | `EXTENSION` | the agent (resolved with [`AgentResolver`]) |
//! | `number` | `NUMBER` | the external number; containing `internal` (any case) marks an internal call |
//! | `duration` | `IDURATION` | talk seconds: `> 0` answered, `0` no answer, blank unknown |
//! | `date` | `DATE` | start of the call, with `time` (see below) |
//! | `time` | `TIME` | |
//!
//! **Start time** (read in the source's time zone), whichever the table has:
//! * `date` a `D` field and `time` a `C` field `HH:MM:SS` (or `HH:MM`,
//!   `HHMMSS`);
//! * `date` a VFP `T` (datetime) field; `time` is then not read;
//! * `date` a `C` field holding `YYYY-MM-DD HH:MM:SS` (also with `T`) or
//!   `DD.MM.YYYY HH:MM:SS`; or holding only a date (`YYYY-MM-DD`,
//!   `DD.MM.YYYY`, `YYYYMMDD`), with the time from `time`.
//!
//! The `time` field is looked up only when the date carries no time.
//!
//! **Direction**: `number` containing the internal marker → internal;
//! otherwise the trimmed, upper-cased CALLTYPE is matched against
//! [`CallTypeRule`] prefixes, longest prefix first. Defaults: `IN`, `ВХ` →
//! inbound; `OUT`, `ИСХ` → outbound; `INTERNAL`, `ВНУТ` → internal;
//! `INTERNATIONAL` → outbound (so it does not fall under `IN`). No match →
//! no direction.
//!
//! **Parties** (raw values kept in `caller_raw`/`callee_raw`, normalized
//! with [`NumberNormalizer`]):
//! * inbound: caller = CALLERID (NUMBER when CALLERID is blank), callee = EXTENSION;
//! * outbound: caller = EXTENSION, callee = NUMBER;
//! * internal: caller = EXTENSION, callee = CALLERID;
//! * unknown: caller = CALLERID, callee = NUMBER, as written.
//!
//! The event: kind `call_record`, verb `WINTARIFF`, `call_id` = the record
//! index (the ingest layer prefixes it with the source), `talk_s` =
//! IDURATION, `info` = CALLTYPE, `data` = `[CALLTYPE, CALLERID, EXTENSION,
//! NUMBER]` as written (trimmed). Deleted rows give `Ok(None)`.

use super::{DbfRecord, DbfTable, DbfValue, FieldType};
use crate::agent::AgentResolver;
use crate::event::{Direction, Disposition, Event, EventKind, SourceKind, Str};
use crate::phone::NumberNormalizer;
use crate::time::local_to_utc;
use crate::SourceContext;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

/// Why a WinTariff row could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WinTariffError {
    #[error("no field named {name:?} (configured as `{role}`) in the table; its fields are: {available}")]
    MissingField {
        role: &'static str,
        name: String,
        available: String,
    },
    #[error("start time field {field:?} is blank")]
    NoStartTime { field: String },
    #[error("field {field:?} value {found:?} is not a date: expected a D field, YYYY-MM-DD, DD.MM.YYYY or YYYYMMDD, optionally followed by HH:MM:SS")]
    BadDate { field: String, found: String },
    #[error(
        "field {field:?} value {found:?} is not a time of day: expected HH:MM:SS, HH:MM or HHMMSS"
    )]
    BadTime { field: String, found: String },
    #[error("local time {found:?} does not exist in time zone {tz} (skipped by a DST change)")]
    NonexistentLocalTime { found: String, tz: String },
    #[error("duration field {field:?} value {found:?} is not a whole number of seconds >= 0")]
    BadDuration { field: String, found: String },
}

/// One CALLTYPE rule: values starting with `prefix` (case-insensitive)
/// have `direction`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTypeRule {
    pub prefix: String,
    pub direction: Direction,
}

impl CallTypeRule {
    pub fn new(prefix: &str, direction: Direction) -> Self {
        CallTypeRule {
            prefix: prefix.to_string(),
            direction,
        }
    }
}

/// Which fields hold what (see the module docs); every name configurable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WinTariffMapping {
    pub calltype: String,
    pub callerid: String,
    pub extension: String,
    pub number: String,
    pub duration: String,
    pub date: String,
    pub time: String,
    /// Text in NUMBER that marks an internal call (case-insensitive).
    pub internal_marker: String,
    pub calltype_rules: Vec<CallTypeRule>,
}

impl Default for WinTariffMapping {
    fn default() -> Self {
        WinTariffMapping {
            calltype: "CALLTYPE".into(),
            callerid: "CALLERID".into(),
            extension: "EXTENSION".into(),
            number: "NUMBER".into(),
            duration: "IDURATION".into(),
            date: "DATE".into(),
            time: "TIME".into(),
            internal_marker: "internal".into(),
            calltype_rules: vec![
                CallTypeRule::new("IN", Direction::Inbound),
                CallTypeRule::new("ВХ", Direction::Inbound),
                CallTypeRule::new("OUT", Direction::Outbound),
                CallTypeRule::new("ИСХ", Direction::Outbound),
                CallTypeRule::new("INTERNAL", Direction::Internal),
                CallTypeRule::new("ВНУТ", Direction::Internal),
                CallTypeRule::new("INTERNATIONAL", Direction::Outbound),
            ],
        }
    }
}

/// Maps rows of one WinTariff table to events.
#[derive(Debug, Clone)]
pub struct WinTariffMapper {
    mapping: WinTariffMapping,
    verb: Str,
    /// Rules with upper-cased prefixes, longest first.
    rules: Vec<(String, Direction)>,
    marker: String,
}

/// The roles a row is read by, as (role, configured name) pairs.
fn roles(m: &WinTariffMapping) -> [(&'static str, &str); 7] {
    [
        ("calltype", &m.calltype),
        ("callerid", &m.callerid),
        ("extension", &m.extension),
        ("number", &m.number),
        ("duration", &m.duration),
        ("date", &m.date),
        ("time", &m.time),
    ]
}

impl WinTariffMapper {
    pub fn new(mapping: WinTariffMapping) -> Self {
        let mut rules: Vec<(String, Direction)> = mapping
            .calltype_rules
            .iter()
            .map(|r| (r.prefix.trim().to_uppercase(), r.direction))
            .filter(|(p, _)| !p.is_empty())
            .collect();
        rules.sort_by_key(|(p, _)| std::cmp::Reverse(p.chars().count()));
        let marker = mapping.internal_marker.trim().to_lowercase();
        WinTariffMapper {
            mapping,
            verb: Str::from("WINTARIFF"),
            rules,
            marker,
        }
    }

    pub fn mapping(&self) -> &WinTariffMapping {
        &self.mapping
    }

    /// Checks up front that the configured fields exist, so a wrong
    /// mapping is reported once rather than on every row. Roles configured
    /// as `""` are skipped, except `date`, which is required; `time` is
    /// checked only when `date` is a `D` field (a `T` field or a `C` field
    /// with a full date-time does not need it).
    pub fn check_fields(&self, table: &DbfTable<'_>) -> Result<(), WinTariffError> {
        let date_needs_time = table
            .field(&self.mapping.date)
            .is_some_and(|f| f.field_type == FieldType::Date);
        for (role, name) in roles(&self.mapping) {
            let skip = match role {
                "date" => false,
                "time" => !date_needs_time && table.field_index(name).is_none(),
                _ => name.trim().is_empty(),
            };
            if skip {
                continue;
            }
            if name.trim().is_empty() {
                return Err(self.missing(table, role, name));
            }
            self.index(table, role, name)?;
        }
        Ok(())
    }

    /// A row is complete once CALLTYPE is filled in (always, when no
    /// CALLTYPE field is configured). Deletion is not considered here:
    /// [`Self::record_to_event`] returns `None` for deleted rows.
    pub fn is_complete(
        &self,
        table: &DbfTable<'_>,
        record: &DbfRecord,
    ) -> Result<bool, WinTariffError> {
        Ok(
            match self.value(table, record, "calltype", &self.mapping.calltype)? {
                Some(v) => !v.is_blank(),
                None => true,
            },
        )
    }

    /// The direction for a CALLTYPE and NUMBER (see the module docs).
    pub fn direction(&self, calltype: Option<&str>, number: Option<&str>) -> Option<Direction> {
        if !self.marker.is_empty()
            && number.is_some_and(|n| n.to_lowercase().contains(&self.marker))
        {
            return Some(Direction::Internal);
        }
        let ct = calltype?.trim().to_uppercase();
        self.rules
            .iter()
            .find(|(p, _)| ct.starts_with(p.as_str()))
            .map(|(_, d)| *d)
    }

    /// Maps one record; `Ok(None)` for deleted rows. The event's
    /// `event_id` is left empty for the ingest layer.
    pub fn record_to_event(
        &self,
        table: &DbfTable<'_>,
        record: &DbfRecord,
        ctx: &SourceContext,
        numbers: &mut NumberNormalizer,
        agents: &mut AgentResolver,
    ) -> Result<Option<Event>, WinTariffError> {
        if record.deleted {
            return Ok(None);
        }
        let m = &self.mapping;
        let text = |role: &'static str, name: &str| -> Result<Option<String>, WinTariffError> {
            Ok(self
                .value(table, record, role, name)?
                .and_then(DbfValue::to_text))
        };
        let calltype = text("calltype", &m.calltype)?;
        let callerid = text("callerid", &m.callerid)?;
        let extension = text("extension", &m.extension)?;
        let number = text("number", &m.number)?;
        let talk = self.duration(table, record)?;
        let naive = self.start(table, record)?;
        let ts = local_to_utc(naive, ctx.timezone).ok_or_else(|| {
            WinTariffError::NonexistentLocalTime {
                found: naive.to_string(),
                tz: ctx.timezone.name().into(),
            }
        })?;

        let mut ev = Event::new(
            SourceKind::WintariffDbf,
            ctx.source.clone(),
            ctx.pbx.clone(),
            ts,
            EventKind::CallRecord,
            self.verb.clone(),
        );
        ev.call_id = Some(record.index.to_string());
        let direction = self.direction(calltype.as_deref(), number.as_deref());
        ev.direction = direction;
        ev.talk_s = talk;
        ev.disposition = Some(match talk {
            Some(t) if t > 0 => Disposition::Answered,
            Some(_) => Disposition::NoAnswer,
            None => Disposition::Unknown,
        });
        if let Some(ext) = &extension {
            ev.agent_raw = Some(Str::from(ext.as_str()));
            ev.agent = agents.resolve(ext);
        }
        let (caller, callee) = match direction {
            Some(Direction::Inbound) => (callerid.as_ref().or(number.as_ref()), extension.as_ref()),
            Some(Direction::Outbound) => (extension.as_ref(), number.as_ref()),
            Some(Direction::Internal) => (extension.as_ref(), callerid.as_ref()),
            None => (callerid.as_ref(), number.as_ref()),
        };
        if let Some(c) = caller {
            ev.caller = numbers.normalize(c);
            ev.caller_raw = Some(c.clone());
        }
        if let Some(c) = callee {
            ev.callee = numbers.normalize(c);
            ev.callee_raw = Some(c.clone());
        }
        ev.info = calltype.clone();
        ev.data = [calltype, callerid, extension, number]
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok(Some(ev))
    }

    fn index(
        &self,
        table: &DbfTable<'_>,
        role: &'static str,
        name: &str,
    ) -> Result<usize, WinTariffError> {
        table
            .field_index(name)
            .ok_or_else(|| self.missing(table, role, name))
    }

    /// The value for a role; `Ok(None)` when the role is not configured.
    fn value<'r>(
        &self,
        table: &DbfTable<'_>,
        record: &'r DbfRecord,
        role: &'static str,
        name: &str,
    ) -> Result<Option<&'r DbfValue>, WinTariffError> {
        if name.trim().is_empty() {
            return Ok(None);
        }
        let i = self.index(table, role, name)?;
        Ok(record.values.get(i))
    }

    /// The value for a role that must be configured and present.
    fn required<'r>(
        &self,
        table: &DbfTable<'_>,
        record: &'r DbfRecord,
        role: &'static str,
        name: &str,
    ) -> Result<&'r DbfValue, WinTariffError> {
        let i = if name.trim().is_empty() {
            None
        } else {
            table.field_index(name)
        };
        i.and_then(|i| record.values.get(i))
            .ok_or_else(|| self.missing(table, role, name))
    }

    fn missing(&self, table: &DbfTable<'_>, role: &'static str, name: &str) -> WinTariffError {
        WinTariffError::MissingField {
            role,
            name: name.to_string(),
            available: table
                .fields()
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn duration(
        &self,
        table: &DbfTable<'_>,
        record: &DbfRecord,
    ) -> Result<Option<u32>, WinTariffError> {
        let name = &self.mapping.duration;
        let Some(v) = self.value(table, record, "duration", name)? else {
            return Ok(None);
        };
        if v.is_blank() {
            return Ok(None);
        }
        let bad = || WinTariffError::BadDuration {
            field: name.clone(),
            found: v.to_text().unwrap_or_default(),
        };
        let secs = match v {
            DbfValue::Number(Some(n)) => whole_seconds(*n),
            DbfValue::Int(i) => u32::try_from(*i).ok(),
            DbfValue::Text(s) => parse_seconds(s.trim()),
            _ => None,
        };
        secs.map(Some).ok_or_else(bad)
    }

    fn start(
        &self,
        table: &DbfTable<'_>,
        record: &DbfRecord,
    ) -> Result<NaiveDateTime, WinTariffError> {
        let m = &self.mapping;
        let date_v = self.required(table, record, "date", &m.date)?;
        let bad_date = || WinTariffError::BadDate {
            field: m.date.clone(),
            found: date_v.to_text().unwrap_or_default(),
        };
        if date_v.is_blank() {
            return Err(WinTariffError::NoStartTime {
                field: m.date.clone(),
            });
        }
        let date = match date_v {
            DbfValue::DateTime(Some(t)) => return Ok(*t),
            DbfValue::Date(Some(d)) => *d,
            DbfValue::Text(s) => match parse_date_or_datetime(s.trim()) {
                Some(DateOrDateTime::DateTime(t)) => return Ok(t),
                Some(DateOrDateTime::Date(d)) => d,
                None => return Err(bad_date()),
            },
            _ => return Err(bad_date()),
        };
        let time_v = self.required(table, record, "time", &m.time)?;
        let bad_time = || WinTariffError::BadTime {
            field: m.time.clone(),
            found: time_v.to_text().unwrap_or_default(),
        };
        let time = match time_v {
            _ if time_v.is_blank() => {
                return Err(WinTariffError::NoStartTime {
                    field: m.time.clone(),
                })
            }
            DbfValue::Text(s) => parse_time(s.trim()).ok_or_else(bad_time)?,
            DbfValue::DateTime(Some(t)) => t.time(),
            _ => return Err(bad_time()),
        };
        Ok(NaiveDateTime::new(date, time))
    }
}

fn whole_seconds(n: f64) -> Option<u32> {
    (n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX)).then_some(n as u32)
}

/// `123` or `H:MM:SS` / `MM:SS`.
fn parse_seconds(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    parts.iter().try_fold(0u32, |acc, p| {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        acc.checked_mul(60)?.checked_add(p.parse().ok()?)
    })
}

enum DateOrDateTime {
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%d.%m.%Y", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    ["%H:%M:%S", "%H:%M", "%H%M%S"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(s, f).ok())
}

fn parse_date_or_datetime(s: &str) -> Option<DateOrDateTime> {
    match s.split_once([' ', 'T']) {
        Some((d, t)) => Some(DateOrDateTime::DateTime(NaiveDateTime::new(
            parse_date(d.trim())?,
            parse_time(t.trim())?,
        ))),
        None => parse_date(s).map(DateOrDateTime::Date),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper() -> WinTariffMapper {
        WinTariffMapper::new(WinTariffMapping::default())
    }

    #[test]
    fn directions() {
        let m = mapper();
        assert_eq!(m.direction(Some("IN"), None), Some(Direction::Inbound));
        assert_eq!(
            m.direction(Some(" incoming "), None),
            Some(Direction::Inbound)
        );
        assert_eq!(
            m.direction(Some("Входящий"), None),
            Some(Direction::Inbound)
        );
        assert_eq!(m.direction(Some("OUT"), None), Some(Direction::Outbound));
        assert_eq!(
            m.direction(Some("исходящий"), None),
            Some(Direction::Outbound)
        );
        assert_eq!(
            m.direction(Some("Internal"), None),
            Some(Direction::Internal)
        );
        assert_eq!(
            m.direction(Some("внутренний"), None),
            Some(Direction::Internal)
        );
        assert_eq!(
            m.direction(Some("International"), None),
            Some(Direction::Outbound)
        );
        assert_eq!(m.direction(Some("LOCAL"), None), None);
        assert_eq!(m.direction(None, None), None);
        assert_eq!(
            m.direction(Some("IN"), Some("INTERNAL call")),
            Some(Direction::Internal)
        );
        assert_eq!(
            m.direction(None, Some("internal")),
            Some(Direction::Internal)
        );
    }

    #[test]
    fn time_forms() {
        assert!(matches!(
            parse_date_or_datetime("2024-01-27 19:23:16"),
            Some(DateOrDateTime::DateTime(_))
        ));
        assert!(matches!(
            parse_date_or_datetime("27.01.2024 19:23"),
            Some(DateOrDateTime::DateTime(_))
        ));
        assert!(matches!(
            parse_date_or_datetime("2024-01-27T19:23:16"),
            Some(DateOrDateTime::DateTime(_))
        ));
        assert!(matches!(
            parse_date_or_datetime("27.01.2024"),
            Some(DateOrDateTime::Date(_))
        ));
        assert!(matches!(
            parse_date_or_datetime("20240127"),
            Some(DateOrDateTime::Date(_))
        ));
        assert!(parse_date_or_datetime("2024-01-27 25:00:00").is_none());
        assert!(parse_date_or_datetime("yesterday").is_none());
        assert_eq!(parse_time("192316"), NaiveTime::from_hms_opt(19, 23, 16));
        assert_eq!(parse_seconds("75"), Some(75));
        assert_eq!(parse_seconds("1:02:03"), Some(3723));
        assert_eq!(parse_seconds("2:05"), Some(125));
        assert_eq!(parse_seconds("-5"), None);
        assert_eq!(parse_seconds("1::2"), None);
        assert_eq!(whole_seconds(12.0), Some(12));
        assert_eq!(whole_seconds(-1.0), None);
        assert_eq!(whole_seconds(1.5), None);
    }

    #[test]
    fn mapping_deserializes_with_defaults() {
        let m: WinTariffMapping = serde_json::from_str(r#"{"duration":"DUR","time":""}"#).unwrap();
        assert_eq!(m.duration, "DUR");
        assert_eq!(m.time, "");
        assert_eq!(m.calltype, "CALLTYPE");
        assert_eq!(m.calltype_rules.len(), 7);
        let r: WinTariffMapping =
            serde_json::from_str(r#"{"calltype_rules":[{"prefix":"I","direction":"inbound"}]}"#)
                .unwrap();
        assert_eq!(
            r.calltype_rules,
            vec![CallTypeRule::new("I", Direction::Inbound)]
        );
    }
}
