//! queue_log rows exported from a database as CSV → normalized events.
//!
//! The first non-blank line is the header; it picks one of two layouts.
//! Column names are matched trimmed and case-insensitively, with quotes,
//! backticks or brackets around them ignored; columns not named below (`id`,
//! `uid`, …) are ignored. The delimiter is `,`, `;` or tab, whichever the
//! header uses most. A field that is exactly `\N` or `NULL` (how MySQL and
//! SQL Server dumps write NULL) is empty. Fields are decoded as UTF-8 when
//! valid, else with the source's fallback charset. A row repeating the header
//! (concatenated exports) is skipped like a blank line.
//!
//! # Asterisk realtime table (FORMATS.md §a.2)
//!
//! `time, callid, queuename, agent, event` plus `data` and/or
//! `data1`…`data5`, as Asterisk's own table script creates them. `time` is
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` local in the source's zone (configure UTC
//! for `queue_log_realtime_use_gmt=yes`) or epoch seconds as text (1.6.2).
//! data1…data5 are joined with `|` after dropping trailing empty columns
//! (Asterisk leaves the unsplit remainder, `|` included, in data5); a row whose
//! data1…data5 are all empty uses `data`. The result goes through
//! [`QueueLogParser::parse_fields`], so each verb is interpreted exactly as in
//! the flat file.
//!
//! # Normalised export
//!
//! `date_time, callid, queue_name, type, event, param1, param2, param3,
//! entpos, expos, htime, ttime, time` (`type` is the agent; `date_time` is
//! epoch seconds; `time` the same instant as local text). Such tables are
//! filled by a loader that reads queue_log and spreads each verb's data over
//! named columns, so the Asterisk data fields are rebuilt per verb and then
//! parsed by [`QueueLogParser::parse_fields`] like any line. The mapping, with
//! the evidence from a 1 000-row export (samples/queue_log-dbexport-voipreports1):
//!
//! | verb | Asterisk data rebuilt | evidence |
//! |---|---|---|
//! | ENTERQUEUE | `(url)\|param1\|entpos` | param1 is the caller number, entpos the position (1 or 2); the URL is not exported |
//! | RINGNOANSWER, RINGCANCELED | `htime` | htime is the ring time in ms (9000, 10000) |
//! | CONNECT | `htime\|param2\|param3` | htime equals the seconds since ENTERQUEUE on all 93 rows; param2 is the member's uniqueid (newer than the callid); param3 (≤ htime) is the ring time in s |
//! | COMPLETECALLER, COMPLETEAGENT | `htime\|ttime\|entpos` | htime equals CONNECT's holdtime and ttime the seconds since CONNECT (on 87 of 91 rows; the rest are 1 s off) |
//! | TRANSFER, BLINDTRANSFER, ATTENDEDTRANSFER | `param2\|param3\|htime\|ttime\|entpos` | BLINDTRANSFER: param2 `1142`, param3 `transfer` (exten, context); htime/ttime as for COMPLETE*. ATTENDEDTRANSFER has param2/param3 empty (the BRIDGE/APP/LINK kind is not exported) |
//! | ABANDON, EXITWITHTIMEOUT, EXITEMPTY | `expos\|entpos\|htime` | entpos equals ENTERQUEUE's position, expos ≤ entpos, htime equals the seconds since ENTERQUEUE |
//! | EXITWITHKEY | `param2\|expos\|entpos\|htime` | not in the sample: by analogy (param1 holds the caller on caller rows) |
//! | WITHDRAW | `expos\|entpos\|htime\|param2` | not in the sample: by analogy |
//! | other known verbs | `param1\|param2\|param3` | AGENTCALLBACKLOGIN param1 `hint:1127@default`; AGENTCALLBACKLOGOFF param2 is the login time in s; their numeric columns are 0 |
//! | unknown verbs (kind `other`) | `param1\|param2\|param3\|entpos\|expos\|htime\|ttime` as written | OUTDIAL, OUTANSWER, … use htime/ttime their own way; nothing is dropped |
//!
//! entpos and expos of `0` mean "none" (queue positions start at 1) and give
//! empty fields; trailing empty fields are dropped. On the call verbs of the
//! table (all rows but the last two) param1 is the caller's number — on every
//! row of the sample it equals ENTERQUEUE's — so it also fills `caller` /
//! `caller_raw` when the event has none, and entpos / expos fill
//! `orig_position` / `position` when the event has none (RINGNOANSWER has
//! positions only in this layout). `ts` is `date_time` when set, else `time`
//! in the source's zone; in the sample `time` is `date_time` in UTC−05:00
//! rounded to the second, so it is up to 1 s later.

use crate::event::Event;
use crate::queue_log::{QueueLogError, QueueLogParser, MAX_LINE_LEN};
use crate::text::decode_lenient;
use std::fmt;

/// Which header layout a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueLogDbLayout {
    /// Asterisk's realtime `queue_log` table (`time, callid, queuename, agent, event, data…`).
    AsteriskRealtime,
    /// A normalised export (`date_time, callid, queue_name, type, event, param1…`).
    Normalised,
}

impl QueueLogDbLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueLogDbLayout::AsteriskRealtime => "Asterisk realtime",
            QueueLogDbLayout::Normalised => "normalised",
        }
    }
}

impl fmt::Display for QueueLogDbLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a DB-export line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueLogDbError {
    #[error(
        "header row matches no known layout: expected Asterisk's realtime columns (time, callid, \
         queuename, agent, event, data or data1..data5) or a normalised export (date_time, callid, \
         queue_name, type, event, param1..param3, entpos, expos, htime, ttime); found {found:?}"
    )]
    UnknownLayout { found: Vec<String> },
    #[error("header row of the {layout} layout lacks {missing:?}; found {found:?}")]
    MissingColumns {
        layout: QueueLogDbLayout,
        missing: Vec<&'static str>,
        found: Vec<String>,
    },
    #[error("header row names column {name:?} twice")]
    DuplicateColumn { name: String },
    #[error("row has {found} columns but the header has {expected}")]
    ColumnCount { expected: usize, found: usize },
    #[error("a quoted field is not closed (a quoted value cannot span lines here)")]
    UnterminatedQuote,
    #[error("malformed CSV row: {reason}")]
    Csv { reason: String },
    #[error("line is {len} bytes, longer than the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error(transparent)]
    Row(#[from] QueueLogError),
}

/// Column positions of the realtime layout.
#[derive(Debug, Clone)]
struct Realtime {
    time: usize,
    callid: usize,
    queue: usize,
    agent: usize,
    event: usize,
    data: Option<usize>,
    data_n: [Option<usize>; 5],
}

/// Column positions of the normalised layout.
#[derive(Debug, Clone)]
struct Normalised {
    date_time: Option<usize>,
    time: Option<usize>,
    callid: usize,
    queue: usize,
    agent: usize,
    event: usize,
    param: [usize; 3],
    entpos: usize,
    expos: usize,
    htime: usize,
    ttime: usize,
}

#[derive(Debug, Clone)]
enum Columns {
    Realtime(Realtime),
    Normalised(Normalised),
}

#[derive(Debug, Clone)]
struct Header {
    names: Vec<String>,
    delimiter: u8,
    columns: Columns,
}

/// Reads one DB-export CSV file line by line (see the module docs). Use one
/// reader per file: the header is remembered.
#[derive(Debug)]
pub struct QueueLogDbReader {
    parser: QueueLogParser,
    header: Option<Header>,
}

const NORMALISED_MARKERS: &[&str] = &[
    "date_time",
    "param1",
    "param2",
    "param3",
    "entpos",
    "expos",
    "htime",
    "ttime",
];
const REALTIME_MARKERS: &[&str] = &[
    "time",
    "callid",
    "queuename",
    "agent",
    "event",
    "data",
    "data1",
    "data2",
    "data3",
    "data4",
    "data5",
];

impl QueueLogDbReader {
    pub fn new(parser: QueueLogParser) -> Self {
        QueueLogDbReader {
            parser,
            header: None,
        }
    }

    /// The layout named by the header, once it has been read.
    pub fn layout(&self) -> Option<QueueLogDbLayout> {
        self.header.as_ref().map(|h| match h.columns {
            Columns::Realtime(_) => QueueLogDbLayout::AsteriskRealtime,
            Columns::Normalised(_) => QueueLogDbLayout::Normalised,
        })
    }

    /// Gives the parser (and its caches) back, e.g. for the next file.
    pub fn into_parser(self) -> QueueLogParser {
        self.parser
    }

    /// Parses one line (with or without its `\n` / `\r\n`). The header and
    /// blank lines give `Ok(None)`; until a header has been accepted, every
    /// non-blank line is taken as the header. The returned event has an
    /// empty `event_id`, which the caller sets from the line's position.
    pub fn parse_line(&mut self, raw: &[u8]) -> Result<Option<Event>, QueueLogDbError> {
        if raw.len() > MAX_LINE_LEN {
            return Err(QueueLogDbError::TooLong {
                len: raw.len(),
                max: MAX_LINE_LEN,
            });
        }
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let Some(header) = &self.header else {
            self.header = Some(self.read_header(raw)?);
            return Ok(None);
        };
        let fields = self.split(raw, header.delimiter)?;
        if fields.len() == header.names.len()
            && fields
                .iter()
                .zip(&header.names)
                .all(|(f, n)| column_name(f) == *n)
        {
            return Ok(None);
        }
        if fields.len() != header.names.len() {
            return Err(QueueLogDbError::ColumnCount {
                expected: header.names.len(),
                found: fields.len(),
            });
        }
        let ev = match &header.columns {
            Columns::Realtime(c) => realtime_row(&mut self.parser, c, &fields)?,
            Columns::Normalised(c) => normalised_row(&mut self.parser, c, &fields)?,
        };
        Ok(Some(ev))
    }

    fn read_header(&self, raw: &[u8]) -> Result<Header, QueueLogDbError> {
        let delimiter = sniff_delimiter(raw);
        let names: Vec<String> = self
            .split(raw, delimiter)?
            .iter()
            .map(|f| column_name(f))
            .collect();
        let has = |set: &[&str]| names.iter().any(|n| set.contains(&n.as_str()));
        let columns = if has(NORMALISED_MARKERS) {
            Columns::Normalised(normalised_columns(&names)?)
        } else if has(REALTIME_MARKERS) {
            Columns::Realtime(realtime_columns(&names)?)
        } else {
            return Err(QueueLogDbError::UnknownLayout { found: names });
        };
        Ok(Header {
            names,
            delimiter,
            columns,
        })
    }

    /// Splits one CSV line into decoded fields.
    fn split(&self, raw: &[u8], delimiter: u8) -> Result<Vec<String>, QueueLogDbError> {
        if unterminated_quote(raw, delimiter) {
            return Err(QueueLogDbError::UnterminatedQuote);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            // A lone CR inside a field is data, as in the flat file.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(raw.len().clamp(64, 8 * 1024) + 1)
            .from_reader(raw);
        let mut record = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(Vec::new()),
            Err(e) => {
                return Err(QueueLogDbError::Csv {
                    reason: e.to_string(),
                })
            }
        }
        if !matches!(
            reader.read_byte_record(&mut csv::ByteRecord::new()),
            Ok(false)
        ) {
            return Err(QueueLogDbError::Csv {
                reason: "the line holds more than one record (an unquoted line break)".into(),
            });
        }
        let charset = self.parser.context().fallback_charset;
        Ok(record
            .iter()
            .map(|f| {
                if f == b"\\N" || f == b"NULL" {
                    String::new()
                } else {
                    decode_lenient(f, charset).into_owned()
                }
            })
            .collect())
    }
}

/// A header cell as matched: trimmed, unquoted, lower-case.
fn column_name(s: &str) -> String {
    s.trim()
        .trim_start_matches('\u{feff}')
        .trim_matches(|c: char| c == '"' || c == '`' || c == '[' || c == ']' || c.is_whitespace())
        .to_lowercase()
}

/// The delimiter the header uses most among `,`, `;` and tab (`,` on a tie).
fn sniff_delimiter(raw: &[u8]) -> u8 {
    let count = |d: u8| raw.iter().filter(|&&b| b == d).count();
    let mut best = (b',', count(b','));
    for d in [b';', b'\t'] {
        let n = count(d);
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// True when a field opened with `"` is not closed by the end of the line
/// (the csv crate would silently take the rest of the line).
fn unterminated_quote(raw: &[u8], delimiter: u8) -> bool {
    let mut at_field_start = true;
    let mut quoted = false;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if quoted {
            if b == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
            at_field_start = false;
        } else if b == delimiter {
            at_field_start = true;
        } else {
            quoted = b == b'"' && at_field_start;
            at_field_start = false;
        }
        i += 1;
    }
    quoted
}

/// Finds the one column named by any of `aliases`.
fn find(names: &[String], aliases: &[&str]) -> Result<Option<usize>, QueueLogDbError> {
    let mut hits = names
        .iter()
        .enumerate()
        .filter(|(_, n)| aliases.contains(&n.as_str()));
    let first = hits.next();
    if let Some((_, n)) = hits.next() {
        return Err(QueueLogDbError::DuplicateColumn { name: n.clone() });
    }
    Ok(first.map(|(i, _)| i))
}

/// Resolves required columns, collecting every missing one for the error.
struct Required<'a> {
    names: &'a [String],
    missing: Vec<&'static str>,
}

impl Required<'_> {
    fn get(&mut self, aliases: &[&'static str]) -> Result<usize, QueueLogDbError> {
        Ok(find(self.names, aliases)?.unwrap_or_else(|| {
            self.missing.push(aliases[0]);
            usize::MAX
        }))
    }

    fn finish(self, layout: QueueLogDbLayout) -> Result<(), QueueLogDbError> {
        if self.missing.is_empty() {
            Ok(())
        } else {
            Err(QueueLogDbError::MissingColumns {
                layout,
                missing: self.missing,
                found: self.names.to_vec(),
            })
        }
    }
}

const CALLID: &[&str] = &["callid", "call_id"];
const QUEUE: &[&str] = &["queuename", "queue_name", "queue"];

fn realtime_columns(names: &[String]) -> Result<Realtime, QueueLogDbError> {
    let mut req = Required {
        names,
        missing: Vec::new(),
    };
    let time = req.get(&["time"])?;
    let callid = req.get(CALLID)?;
    let queue = req.get(QUEUE)?;
    let agent = req.get(&["agent"])?;
    let event = req.get(&["event"])?;
    let data = find(names, &["data"])?;
    let mut data_n = [None; 5];
    for (k, slot) in data_n.iter_mut().enumerate() {
        *slot = find(names, &[["data1", "data2", "data3", "data4", "data5"][k]])?;
    }
    if data.is_none() && data_n.iter().all(Option::is_none) {
        req.missing.push("data or data1..data5");
    }
    req.finish(QueueLogDbLayout::AsteriskRealtime)?;
    Ok(Realtime {
        time,
        callid,
        queue,
        agent,
        event,
        data,
        data_n,
    })
}

fn normalised_columns(names: &[String]) -> Result<Normalised, QueueLogDbError> {
    let mut req = Required {
        names,
        missing: Vec::new(),
    };
    let date_time = find(names, &["date_time"])?;
    let time = find(names, &["time"])?;
    if date_time.is_none() && time.is_none() {
        req.missing.push("date_time or time");
    }
    let callid = req.get(CALLID)?;
    let queue = req.get(QUEUE)?;
    let agent = req.get(&["type", "agent"])?;
    let event = req.get(&["event"])?;
    let param = [
        req.get(&["param1"])?,
        req.get(&["param2"])?,
        req.get(&["param3"])?,
    ];
    let entpos = req.get(&["entpos"])?;
    let expos = req.get(&["expos"])?;
    let htime = req.get(&["htime"])?;
    let ttime = req.get(&["ttime"])?;
    req.finish(QueueLogDbLayout::Normalised)?;
    Ok(Normalised {
        date_time,
        time,
        callid,
        queue,
        agent,
        event,
        param,
        entpos,
        expos,
        htime,
        ttime,
    })
}

/// Joins data fields with `|`, dropping trailing empty ones.
fn join_data(parts: &[&str]) -> String {
    let n = parts
        .iter()
        .rposition(|s| !s.trim().is_empty())
        .map_or(0, |i| i + 1);
    parts[..n].join("|")
}

fn realtime_row(
    parser: &mut QueueLogParser,
    c: &Realtime,
    f: &[String],
) -> Result<Event, QueueLogDbError> {
    let parts: Vec<&str> = c
        .data_n
        .iter()
        .map(|i| i.map_or("", |i| f[i].as_str()))
        .collect();
    let mut data = join_data(&parts);
    if data.is_empty() {
        if let Some(i) = c.data {
            data = f[i].clone();
        }
    }
    Ok(parser.parse_fields(
        &f[c.time],
        &f[c.callid],
        &f[c.queue],
        &f[c.agent],
        &f[c.event],
        &data,
    )?)
}

/// How a normalised row's columns map back to Asterisk data fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mapping {
    EnterQueue,
    Ring,
    Connect,
    Complete,
    Transfer,
    Exit,
    ExitWithKey,
    Withdraw,
    /// Known verbs without call data: `param1|param2|param3`.
    Params,
    /// Verbs Asterisk does not write: every value column, as written.
    Everything,
}

fn mapping(verb: &str) -> Mapping {
    match verb {
        "ENTERQUEUE" => Mapping::EnterQueue,
        "RINGNOANSWER" | "RINGCANCELED" => Mapping::Ring,
        "CONNECT" => Mapping::Connect,
        "COMPLETECALLER" | "COMPLETEAGENT" => Mapping::Complete,
        "TRANSFER" | "BLINDTRANSFER" | "ATTENDEDTRANSFER" => Mapping::Transfer,
        "ABANDON" | "EXITWITHTIMEOUT" | "EXITEMPTY" => Mapping::Exit,
        "EXITWITHKEY" => Mapping::ExitWithKey,
        "WITHDRAW" => Mapping::Withdraw,
        v if crate::queue_log::kind_of(v) == crate::event::EventKind::Other => Mapping::Everything,
        _ => Mapping::Params,
    }
}

/// `0` (or empty) in a position column means no position.
fn position(s: &str) -> &str {
    match s.trim().parse::<u32>() {
        Ok(0) => "",
        _ => s,
    }
}

fn normalised_row(
    parser: &mut QueueLogParser,
    c: &Normalised,
    f: &[String],
) -> Result<Event, QueueLogDbError> {
    let verb = f[c.event].trim().to_ascii_uppercase();
    let [p1, p2, p3] = c.param.map(|i| f[i].as_str());
    let (entpos, expos) = (position(&f[c.entpos]), position(&f[c.expos]));
    let (htime, ttime) = (f[c.htime].as_str(), f[c.ttime].as_str());
    let map = mapping(&verb);
    let data = join_data(&match map {
        Mapping::EnterQueue => vec!["", p1, entpos],
        Mapping::Ring => vec![htime],
        Mapping::Connect => vec![htime, p2, p3],
        Mapping::Complete => vec![htime, ttime, entpos],
        Mapping::Transfer => vec![p2, p3, htime, ttime, entpos],
        Mapping::Exit => vec![expos, entpos, htime],
        Mapping::ExitWithKey => vec![p2, expos, entpos, htime],
        Mapping::Withdraw => vec![expos, entpos, htime, p2],
        Mapping::Params => vec![p1, p2, p3],
        Mapping::Everything => vec![p1, p2, p3, &f[c.entpos], &f[c.expos], htime, ttime],
    });
    let time = c
        .date_time
        .map(|i| f[i].as_str())
        .filter(|s| !s.trim().is_empty())
        .or(c.time.map(|i| f[i].as_str()))
        .unwrap_or("");
    let mut ev = parser.parse_fields(time, &f[c.callid], &f[c.queue], &f[c.agent], &verb, &data)?;
    if !matches!(map, Mapping::Params | Mapping::Everything) {
        let caller = p1.trim();
        if ev.caller_raw.is_none() && !caller.is_empty() {
            ev.caller = parser.normalize_number(caller);
            ev.caller_raw = Some(caller.to_string());
        }
        if ev.orig_position.is_none() {
            ev.orig_position = entpos.trim().parse().ok();
        }
        if ev.position.is_none() {
            ev.position = expos.trim().parse().ok();
        }
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::{AgentResolver, NumberConfig, NumberNormalizer, SourceContext};

    fn reader() -> QueueLogDbReader {
        QueueLogDbReader::new(QueueLogParser::new(
            SourceContext::new("db", "pbx1"),
            NumberNormalizer::new(NumberConfig::default()).unwrap(),
            AgentResolver::default(),
        ))
    }

    fn rows(header: &str, lines: &[&str]) -> Vec<Result<Option<Event>, QueueLogDbError>> {
        let mut r = reader();
        assert_eq!(r.parse_line(header.as_bytes()).unwrap(), None);
        lines.iter().map(|l| r.parse_line(l.as_bytes())).collect()
    }

    #[test]
    fn realtime_data_columns_join_and_keep_data5_pipes() {
        let out = rows(
            "id,time,callid,queuename,agent,event,data1,data2,data3,data4,data5\r\n",
            &[
                "1,2012-07-04 07:33:21.165823,1341401601.24,q1,NONE,ENTERQUEUE,,1000,1,,\r\n",
                "2,1341401700,c,q1,PJSIP/1,ATTENDEDTRANSFER,LINK,PJSIP/1-01,PJSIP/2-02,5,60|2\r\n",
            ],
        );
        let e = out[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(e.ts.to_rfc3339(), "2012-07-04T07:33:21.165823+00:00");
        assert_eq!(
            (e.kind, e.caller.as_deref(), e.orig_position),
            (EventKind::EnterQueue, Some("1000"), Some(1))
        );
        assert_eq!(e.data, vec!["", "1000", "1"]);
        let t = out[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(t.info.as_deref(), Some("LINK|PJSIP/1-01|PJSIP/2-02"));
        assert_eq!(
            (t.wait_s, t.talk_s, t.orig_position),
            (Some(5), Some(60), Some(2))
        );
    }

    #[test]
    fn realtime_single_data_and_both() {
        let out = rows(
            "TIME;CallId;QueueName;Agent;Event;Data;Data1;Data2;Data3;Data4;Data5",
            &[
                "1;c;q;NONE;ABANDON;3|4|25;;;;;",
                "1;c;q;NONE;ABANDON;9|9|9;1;2;30;;",
                "1;NONE;NONE;NONE;QUEUESTART;\\N;NULL;;;;",
            ],
        );
        let a = out[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(
            (a.position, a.orig_position, a.wait_s),
            (Some(3), Some(4), Some(25))
        );
        let b = out[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(
            (b.position, b.orig_position, b.wait_s),
            (Some(1), Some(2), Some(30))
        );
        let q = out[2].as_ref().unwrap().as_ref().unwrap();
        assert_eq!((q.kind, q.data.len()), (EventKind::QueueStart, 0));
    }

    #[test]
    fn header_errors_say_what_was_found() {
        let mut r = reader();
        assert_eq!(
            r.parse_line(b"a,b,c").unwrap_err(),
            QueueLogDbError::UnknownLayout {
                found: vec!["a".into(), "b".into(), "c".into()]
            }
        );
        let e = r.parse_line(b"\"Time\",\"CallID\",\"Event\"").unwrap_err();
        assert_eq!(
            e,
            QueueLogDbError::MissingColumns {
                layout: QueueLogDbLayout::AsteriskRealtime,
                missing: vec!["queuename", "agent", "data or data1..data5"],
                found: vec!["time".into(), "callid".into(), "event".into()],
            }
        );
        assert!(e.to_string().contains("lacks [\"queuename\""), "{e}");
        let e = r.parse_line(b"date_time,callid,event,param1").unwrap_err();
        assert!(
            matches!(
                e,
                QueueLogDbError::MissingColumns {
                    layout: QueueLogDbLayout::Normalised,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            r.parse_line(b"time,callid,queuename,agent,event,data,DATA")
                .unwrap_err(),
            QueueLogDbError::DuplicateColumn {
                name: "data".into()
            }
        );
        assert_eq!(r.layout(), None);
    }

    #[test]
    fn row_errors() {
        let out = rows(
            "time,callid,queuename,agent,event,data",
            &[
                "1,c,q,a,CONNECT",
                "1,c,q,a,CONNECT,\"5|u",
                "x,c,q,a,CONNECT,5",
                "1,c,q,a,,5",
                "time,callid,queuename,agent,event,data",
            ],
        );
        assert_eq!(
            out[0],
            Err(QueueLogDbError::ColumnCount {
                expected: 6,
                found: 5
            })
        );
        assert_eq!(out[1], Err(QueueLogDbError::UnterminatedQuote));
        assert!(matches!(
            out[2],
            Err(QueueLogDbError::Row(QueueLogError::BadTime { .. }))
        ));
        assert_eq!(out[3], Err(QueueLogDbError::Row(QueueLogError::EmptyEvent)));
        assert_eq!(out[4], Ok(None));
        let out = rows(
            "time,callid,queuename,agent,event,data",
            &[
                "1,c,q,a,PAUSE,lunch\rbreak\r\n",
                "1,c,q,a,PAUSE,x\n1,c,q,a,PAUSE,y",
            ],
        );
        let e = out[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(e.info.as_deref(), Some("lunch\rbreak"));
        assert!(
            matches!(&out[1], Err(QueueLogDbError::Csv { reason }) if reason.contains("more than one record"))
        );
    }

    #[test]
    fn normalised_mapping() {
        let h = "uid,date_time,callid,queue_name,type,event,param1,param2,param3,entpos,expos,htime,ttime,time";
        let out = rows(
            h,
            &[
                "13,1543602677,1543602660.197,IT,NONE,ENTERQUEUE,17038225596,,,1,0,0,0,\"2018-11-30 13:31:17\"",
                "14,1543602687,1543602660.197,IT,Agent/1141,RINGNOANSWER,17038225596,,,1,1,10000,0,\"2018-11-30 13:31:28\"",
                "19,1543602753,1543602660.197,IT,Agent/1127,CONNECT,,1543602746.232,6,0,0,76,0,\"2018-11-30 13:32:34\"",
                "20,1543603600,1543602660.197,IT,Agent/1127,COMPLETECALLER,17038225596,,,1,0,76,847,\"2018-11-30 13:46:41\"",
                "928,1543938963,1543938872.1743,IT,Agent/1128,BLINDTRANSFER,14154246089,1142,transfer,1,0,6,38,\"2018-12-04 10:56:03\"",
                "177,1543833653,1543833609.335,IT,Agent/1128,ATTENDEDTRANSFER,17326306102,,,1,0,6,30,\"2018-12-03 05:40:54\"",
                "998,1543942840,1543942628.2322,IT,NONE,ABANDON,16786664403,,,1,1,201,0,\"2018-12-04 12:00:40\"",
                "9,1543601975,1543601975.170,NONE,Agent/1127,OUTDIAL,881142,,,0,0,0,0,\"2018-11-30 13:19:35\"",
            ],
        );
        let ev: Vec<&Event> = out
            .iter()
            .map(|r| r.as_ref().unwrap().as_ref().unwrap())
            .collect();
        assert_eq!(ev[0].data, vec!["", "17038225596", "1"]);
        assert_eq!(
            (
                ev[0].caller_raw.as_deref(),
                ev[0].orig_position,
                ev[0].position
            ),
            (Some("17038225596"), Some(1), None)
        );
        assert_eq!(
            (ev[1].ring_ms, ev[1].position, ev[1].orig_position),
            (Some(10000), Some(1), Some(1))
        );
        assert_eq!(ev[1].caller_raw.as_deref(), Some("17038225596"));
        assert_eq!(
            (ev[2].wait_s, ev[2].peer_call_id.as_deref(), ev[2].ring_ms),
            (Some(76), Some("1543602746.232"), Some(6000))
        );
        assert_eq!(ev[2].caller_raw, None);
        assert_eq!(
            (ev[3].wait_s, ev[3].talk_s, ev[3].orig_position),
            (Some(76), Some(847), Some(1))
        );
        assert_eq!(
            (ev[4].info.as_deref(), ev[4].wait_s, ev[4].talk_s),
            (Some("1142@transfer"), Some(6), Some(38))
        );
        assert_eq!(
            (
                ev[5].info.as_deref(),
                ev[5].wait_s,
                ev[5].talk_s,
                ev[5].orig_position
            ),
            (None, Some(6), Some(30), Some(1))
        );
        assert_eq!(
            (ev[6].position, ev[6].orig_position, ev[6].wait_s),
            (Some(1), Some(1), Some(201))
        );
        assert_eq!(ev[7].kind, EventKind::Other);
        assert_eq!(ev[7].data, vec!["881142", "", "", "0", "0", "0", "0"]);
        assert_eq!(ev[7].ts.timestamp(), 1543601975);
    }
}
