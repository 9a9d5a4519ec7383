//! Property tests for the Oktell `A_Stat_Connections_1x1` export parser: no
//! input panics (arbitrary bytes, mutated exports under every delimiter);
//! generated exports (random header order, subset, case, brackets and
//! delimiter; GUID chains; every connection type; ISO and Russian dates with
//! milliseconds; open legs; quoted fields holding the delimiter, quotes and
//! line breaks) read back as the generated legs and events; and the leg
//! fingerprint ignores the rendering but sees a changed `TimeStop`.
//!
//! 512 cases per property by default; `PROPTEST_CASES` overrides.

use calltrail_parsers::oktell::{Column, OktellLeg, OktellParser};
use calltrail_parsers::{
    AgentResolver, Direction, Disposition, NumberConfig, NumberNormalizer, SourceContext,
};
use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(512),
        // no `*.proptest-regressions` files next to the tests
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn parser_in(tz: Tz) -> OktellParser {
    OktellParser::new(
        SourceContext {
            timezone: tz,
            ..SourceContext::new("oktell", "pbx1")
        },
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    )
}

/// Zones with one UTC offset over the generated years (2015..2037), and
/// that offset in seconds, computed here independently of chrono-tz.
const ZONES: [(&str, i64); 3] = [
    ("UTC", 0),
    ("Europe/Moscow", 3 * 3600),
    ("Asia/Kolkata", 5 * 3600 + 1800),
];

fn zone() -> impl Strategy<Value = (Tz, i64)> {
    prop::sample::select(ZONES.to_vec()).prop_map(|(name, off)| (name.parse::<Tz>().unwrap(), off))
}

fn utc_of(naive: NaiveDateTime, off: i64) -> DateTime<Utc> {
    (naive - TimeDelta::seconds(off)).and_utc()
}

// ---------------------------------------------------------------------------
// Generated legs

/// One row as the database holds it; ids canonical (GUIDs upper-case, no
/// braces), times server-local.
#[derive(Debug, Clone)]
struct Leg {
    id: String,
    chain: String,
    ty: u8,
    start: NaiveDateTime,
    answer: Option<NaiveDateTime>,
    stop: Option<NaiveDateTime>,
    reason_start: Option<i32>,
    reason_stop: Option<i32>,
    stop_side: Option<i32>,
    a_out_number: Option<String>,
    b_out_number: Option<String>,
    a_str: Option<String>,
    b_str: Option<String>,
    a_line_id: Option<String>,
    b_line_id: Option<String>,
    a_line_num: Option<String>,
    b_line_num: Option<String>,
    a_number_dialed: Option<String>,
    is_recorded: Option<bool>,
    /// Per column (by `Column as usize`), how the cell is rendered.
    style: Vec<u8>,
}

fn guid() -> impl Strategy<Value = String> {
    "[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        "[1-9][0-9]{2,3}",
        "8[0-9]{10}",
        "\\+7[0-9]{10}",
        "7[0-9]{10}",
        Just("IVR".to_string()),
        Just("Неизвестен".to_string()),
    ]
}

/// True for a text that must not be generated as a value: SQL NULL, or a
/// column name (a data row starting with one is taken for a header).
fn reserved(s: &str) -> bool {
    s.eq_ignore_ascii_case("null") || Column::from_header(s).is_some()
}

fn regex(re: &str) -> prop::string::RegexGeneratorStrategy<String> {
    prop::string::string_regex(re).unwrap()
}

/// Names and notes: Cyrillic, every delimiter, quotes, sometimes a line
/// break inside (SSMS "Retain CR/LF"); no blanks at either end.
fn text() -> impl Strategy<Value = String> {
    let edge = "[A-Za-zА-яЁё0-9\";,|.()№-]";
    let mid = "[A-Za-zА-яЁё0-9\" ;,|\t.()№-]";
    prop_oneof![
        6 => regex(&format!("{edge}({mid}{{0,16}}{edge})?")),
        1 => regex(&format!("{edge}{mid}{{0,6}}\n{{1,2}}{mid}{{0,6}}{edge}")),
        1 => Just("ООО \"Ромашка\"; склад, 2".to_string()),
        1 => Just("\"quoted\"".to_string()),
    ]
    .prop_filter("not NULL nor a column name", |s| !reserved(s))
}

fn small_int() -> impl Strategy<Value = Option<i32>> {
    prop::option::of(prop_oneof![4 => -1i32..10, 1 => any::<i32>()])
}

/// Legs of 1 to 3 calls (GUID chains shared by several legs).
fn legs() -> impl Strategy<Value = Vec<Leg>> {
    (
        prop::collection::vec(guid(), 1..4),
        prop::collection::vec((leg(), any::<prop::sample::Index>()), 1..6),
    )
        .prop_map(|(chains, legs)| {
            legs.into_iter()
                .map(|(l, i)| Leg {
                    chain: i.get(&chains).clone(),
                    ..l
                })
                .collect()
        })
}

fn leg() -> impl Strategy<Value = Leg> {
    let ids = (
        prop_oneof![4 => guid(), 1 => "[1-9][0-9]{0,9}"],
        0u8..=8,
        // 2015-01-01 .. 2037-12-31, with milliseconds
        1_420_070_400_000i64..2_145_830_400_000,
        prop::option::weighted(0.7, 0i64..60_000),
        prop::option::weighted(0.8, prop_oneof![0i64..5_000, 0i64..4_000_000]),
        prop::collection::vec(any::<u8>(), Column::COUNT),
    );
    let ints = (small_int(), small_int(), prop::option::of(0i32..2));
    let strs = (
        prop::option::of(number()),
        prop::option::of(number()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(guid()),
        prop::option::of(guid()),
        prop::option::of(prop_oneof!["[1-9][0-9]{1,3}", Just("IVR".to_string())]),
        prop::option::of(prop_oneof!["[1-9][0-9]{1,3}", Just("IVR".to_string())]),
        prop::option::of(number()),
        prop::option::of(any::<bool>()),
    );
    (ids, ints, strs).prop_map(
        |(
            (id, ty, start_ms, ring_ms, talk_ms, style),
            (reason_start, reason_stop, stop_side),
            (a_out, b_out, a_str, b_str, a_lid, b_lid, a_num, b_num, dialed, rec),
        )| {
            let start = DateTime::from_timestamp_millis(start_ms)
                .unwrap()
                .naive_utc();
            let answer = ring_ms.map(|r| start + TimeDelta::milliseconds(r));
            let stop = talk_ms.map(|t| answer.unwrap_or(start) + TimeDelta::milliseconds(t));
            Leg {
                id,
                chain: String::new(),
                ty,
                start,
                answer,
                stop,
                reason_start,
                reason_stop,
                stop_side,
                a_out_number: a_out,
                b_out_number: b_out,
                a_str,
                b_str,
                a_line_id: a_lid,
                b_line_id: b_lid,
                a_line_num: a_num,
                b_line_num: b_num,
                a_number_dialed: dialed,
                is_recorded: rec,
                style,
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Headers and the writer

/// A header cell: a known column or one the parser does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Known(Column),
    Extra(&'static str),
}

const EXTRAS: [&str; 3] = ["IdTask", "Comment", "LineCost"];

/// How the export is written.
#[derive(Debug, Clone)]
struct Export {
    cols: Vec<Col>,
    /// Per header cell: case, brackets, table prefix, quotes.
    name_style: Vec<u8>,
    delimiter: u8,
    crlf: bool,
    bom: bool,
    /// sqlcmd's dashed rule under the header and row-count trailer.
    sqlcmd_noise: bool,
    /// A delimiter after the last field: of every row (0: none, 1: rows
    /// only, 2: header and rows, as a re-saved spreadsheet pads them).
    trailing: u8,
    /// The file in cp1251 (SSMS "ANSI" on a Russian Windows), read through
    /// the source's fallback charset.
    cp1251: bool,
}

/// An export as bytes, with the fields the parser must report per leg.
struct Written {
    bytes: Vec<u8>,
    fields: Vec<Vec<String>>,
    /// A cp1251 row whose bytes happen to be valid UTF-8 too (only `Ё`, `ё`
    /// or `№` after certain letters): the parser rightly reads it as UTF-8.
    ambiguous: bool,
}

fn export() -> impl Strategy<Value = Export> {
    let optional: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|c| !Column::REQUIRED.contains(c))
        .collect();
    (
        prop::sample::subsequence(optional, 0..=14),
        prop::sample::subsequence(EXTRAS.to_vec(), 0..=2),
        prop::sample::select(vec![b';', b',', b'\t', b'|']),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        (prop_oneof![2 => Just(0u8), 1 => 1u8..=2], any::<bool>()),
    )
        .prop_flat_map(
            |(opt, extras, delimiter, crlf, bom, sqlcmd_noise, (trailing, cp1251))| {
                let mut cols: Vec<Col> = Column::REQUIRED.into_iter().map(Col::Known).collect();
                cols.extend(opt.into_iter().map(Col::Known));
                cols.extend(extras.into_iter().map(Col::Extra));
                let n = cols.len();
                (
                    Just(cols).prop_shuffle(),
                    prop::collection::vec(any::<u8>(), n),
                    Just((delimiter, crlf, bom, sqlcmd_noise, trailing, cp1251)),
                )
            },
        )
        .prop_map(
            |(cols, name_style, (delimiter, crlf, bom, sqlcmd_noise, trailing, cp1251))| Export {
                cols,
                name_style,
                delimiter,
                crlf,
                bom,
                sqlcmd_noise,
                trailing,
                cp1251,
            },
        )
}

impl Export {
    fn eol(&self) -> &'static str {
        if self.crlf {
            "\r\n"
        } else {
            "\n"
        }
    }

    fn has(&self, c: Column) -> bool {
        self.cols.contains(&Col::Known(c))
    }

    /// Columns the parser sees in the header.
    fn width(&self) -> usize {
        self.cols.len() + usize::from(self.trailing == 2)
    }

    fn header(&self) -> String {
        let d = char::from(self.delimiter);
        self.cols
            .iter()
            .zip(&self.name_style)
            .map(|(c, &s)| {
                let base = match c {
                    Col::Known(k) => k.name(),
                    Col::Extra(e) => e,
                };
                let mut n = match s % 4 {
                    0 => base.to_string(),
                    1 => base.to_uppercase(),
                    2 => base.to_lowercase(),
                    _ => base
                        .chars()
                        .enumerate()
                        .map(|(i, ch)| {
                            if i % 2 == 0 {
                                ch.to_ascii_uppercase()
                            } else {
                                ch.to_ascii_lowercase()
                            }
                        })
                        .collect(),
                };
                if s & 4 != 0 {
                    n = format!("[{n}]");
                }
                match (s >> 3) % 4 {
                    1 => n = format!("c.{n}"),
                    2 => n = format!("[dbo].[A_Stat_Connections_1x1].{n}"),
                    _ => {}
                }
                if s & 0x20 != 0 {
                    n = format!("\"{n}\"");
                } else if s & 0x40 != 0 {
                    n = format!(" {n} ");
                }
                n
            })
            .collect::<Vec<_>>()
            .join(&d.to_string())
    }

    /// The file: header (+ noise), one line per leg, and the fields the
    /// parser must report for each leg.
    fn write(&self, legs: &[Leg]) -> Written {
        let eol = self.eol();
        let d = char::from(self.delimiter).to_string();
        let mut out = String::new();
        if self.bom && !self.cp1251 {
            out.push('\u{FEFF}');
        }
        out.push_str(&self.header());
        if self.trailing == 2 {
            out.push_str(&d);
        }
        out.push_str(eol);
        if self.sqlcmd_noise {
            let rule: Vec<&str> = self.cols.iter().map(|_| "-----").collect();
            out.push_str(&rule.join(&d));
            out.push_str(eol);
        }
        let mut fields = Vec::new();
        let mut ambiguous = false;
        for l in legs {
            let (cells, mut want): (Vec<String>, Vec<String>) = self
                .cols
                .iter()
                .map(|&c| render(l, c, self.delimiter, eol))
                .unzip();
            let row = cells.join(&d);
            if self.cp1251 && !row.is_ascii() {
                let (enc, _, _) = encoding_rs::WINDOWS_1251.encode(&row);
                ambiguous |= std::str::from_utf8(&enc).is_ok();
            }
            out.push_str(&row);
            match self.trailing {
                0 => {}
                1 => out.push_str(&d),
                // the header's trailing delimiter names an empty column
                _ => {
                    out.push_str(&d);
                    want.push(String::new());
                }
            }
            out.push_str(eol);
            fields.push(want);
        }
        if self.sqlcmd_noise {
            out.push_str(eol);
            out.push_str(&format!("({} rows affected)", legs.len()));
            out.push_str(eol);
        }
        let bytes = if self.cp1251 {
            let (enc, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&out);
            assert!(!unmappable, "{out}");
            enc.into_owned()
        } else {
            out.into_bytes()
        };
        Written {
            bytes,
            fields,
            ambiguous,
        }
    }
}

fn style_of(l: &Leg, c: Col) -> u8 {
    match c {
        Col::Known(k) => l.style[Column::ALL.iter().position(|x| *x == k).unwrap()],
        Col::Extra(e) => (e.len() as u8).wrapping_mul(37),
    }
}

/// A GUID with or without braces, upper or lower case (an integer id as is).
fn render_id(id: &str, s: u8) -> String {
    if !id.contains('-') {
        return id.to_string();
    }
    let id = if s & 2 != 0 {
        id.to_lowercase()
    } else {
        id.to_string()
    };
    if s & 1 != 0 {
        format!("{{{id}}}")
    } else {
        id
    }
}

/// A datetime in one of the forms SSMS, sqlcmd, bcp, .NET and a Russian
/// Excel re-save write: ISO with ` ` or `T`, 3 or 7 fraction digits,
/// `DD.MM.YYYY` with `.` or `,` before the fraction, unpadded `D.M.YYYY H:MM`
/// and `YYYY-M-D H:MM`; the fraction (and then the seconds) left out when zero.
fn render_time(t: NaiveDateTime, s: u8) -> String {
    let ms = t.and_utc().timestamp_subsec_millis();
    let drop_frac = s & 8 != 0 && ms == 0;
    let drop_secs = drop_frac && s & 16 != 0 && t.second() == 0;
    let form = s % 7;
    let date = match form {
        0 | 1 | 4 => t.format("%Y-%m-%d").to_string(),
        2 | 3 => t.format("%d.%m.%Y").to_string(),
        5 => format!("{}.{}.{}", t.day(), t.month(), t.year()),
        _ => format!("{}-{}-{}", t.year(), t.month(), t.day()),
    };
    let sep = if form == 1 { "T" } else { " " };
    let hour = if form >= 5 {
        t.hour().to_string()
    } else {
        format!("{:02}", t.hour())
    };
    let mut out = format!("{date}{sep}{hour}:{:02}", t.minute());
    if !drop_secs {
        out.push_str(&format!(":{:02}", t.second()));
    }
    if !drop_frac {
        match form {
            3 => out.push_str(&format!(",{ms:03}")),
            4 => out.push_str(&format!(".{ms:03}0000")),
            _ => out.push_str(&format!(".{ms:03}")),
        }
    }
    out
}

/// One cell: the text written (quoted/padded as needed) and the field the
/// parser must report (unquoted, trimmed, line breaks as `\n`).
fn render(l: &Leg, c: Col, delimiter: u8, eol: &str) -> (String, String) {
    let s = style_of(l, c);
    let null = || match (s >> 5) % 3 {
        0 => "NULL".to_string(),
        1 => String::new(),
        _ => "null".to_string(),
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(null);
    let time = |t: Option<NaiveDateTime>| t.map_or_else(null, |t| render_time(t, s));
    let int = |v: Option<i32>| v.map_or_else(null, |v| v.to_string());
    let value = match c {
        Col::Extra(e) => format!("{e} value"),
        Col::Known(k) => match k {
            Column::Id => render_id(&l.id, s),
            Column::IdChain => render_id(&l.chain, s),
            Column::ConnectionType => l.ty.to_string(),
            Column::TimeStart => render_time(l.start, s),
            Column::TimeAnswer => time(l.answer),
            Column::TimeStop => time(l.stop),
            Column::ReasonStart => int(l.reason_start),
            Column::ReasonStop => int(l.reason_stop),
            Column::StopSide => int(l.stop_side),
            Column::AOutNumber => opt(&l.a_out_number),
            Column::BOutNumber => opt(&l.b_out_number),
            Column::AStr => opt(&l.a_str),
            Column::BStr => opt(&l.b_str),
            Column::ALineId => l
                .a_line_id
                .as_deref()
                .map_or_else(null, |g| render_id(g, s)),
            Column::BLineId => l
                .b_line_id
                .as_deref()
                .map_or_else(null, |g| render_id(g, s)),
            Column::ALineNum => opt(&l.a_line_num),
            Column::BLineNum => opt(&l.b_line_num),
            Column::ANumberDialed => opt(&l.a_number_dialed),
            Column::IsRecorded => match (l.is_recorded, s & 1 != 0) {
                (None, _) => null(),
                (Some(b), true) => u8::from(b).to_string(),
                (Some(true), false) => "True".into(),
                (Some(false), false) => "False".into(),
            },
        },
    };
    let must_quote = value.contains([char::from(delimiter), '"', '\n', '\r']);
    let written = if must_quote || s & 0x80 != 0 {
        format!("\"{}\"", value.replace('"', "\"\"").replace('\n', eol))
    } else if s & 0x10 != 0 {
        // sqlcmd without -W pads columns
        format!(" {value}   ")
    } else {
        value.clone()
    };
    (written, value)
}

/// What the parser must make of a leg written under `ex`.
fn expected(l: &Leg, ex: &Export, off: i64, fields: Vec<String>) -> OktellLeg {
    let has = |c| ex.has(c);
    let keep = |c, v: &Option<String>| if has(c) { v.clone() } else { None };
    let keep_i = |c, v: Option<i32>| if has(c) { v } else { None };
    OktellLeg {
        id: l.id.clone(),
        chain: l.chain.clone(),
        connection_type: l.ty,
        start: utc_of(l.start, off),
        answer: if has(Column::TimeAnswer) {
            l.answer.map(|a| utc_of(a, off))
        } else {
            None
        },
        answer_known: has(Column::TimeAnswer),
        stop: l.stop.map(|t| utc_of(t, off)),
        reason_start: keep_i(Column::ReasonStart, l.reason_start),
        reason_stop: keep_i(Column::ReasonStop, l.reason_stop),
        stop_side: keep_i(Column::StopSide, l.stop_side),
        a_out_number: keep(Column::AOutNumber, &l.a_out_number),
        b_out_number: keep(Column::BOutNumber, &l.b_out_number),
        a_str: keep(Column::AStr, &l.a_str),
        b_str: keep(Column::BStr, &l.b_str),
        a_line_id: keep(Column::ALineId, &l.a_line_id),
        b_line_id: keep(Column::BLineId, &l.b_line_id),
        a_line_num: keep(Column::ALineNum, &l.a_line_num),
        b_line_num: keep(Column::BLineNum, &l.b_line_num),
        a_number_dialed: keep(Column::ANumberDialed, &l.a_number_dialed),
        is_recorded: if has(Column::IsRecorded) {
            l.is_recorded
        } else {
            None
        },
        fields,
    }
}

/// Reads an export line by line as a file tailer would; every line must parse.
fn read(p: &mut OktellParser, bytes: &[u8]) -> Result<Vec<OktellLeg>, TestCaseError> {
    let mut legs = Vec::new();
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        match p.parse_line(line) {
            Ok(Some(l)) => legs.push(l),
            Ok(None) => {}
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "line {}: {e}\n{}",
                    n + 1,
                    String::from_utf8_lossy(bytes)
                )))
            }
        }
    }
    prop_assert_eq!(p.finish(), Ok(()));
    Ok(legs)
}

/// The documented direction of each connection type (FORMATS.md §d).
fn documented_direction(ty: u8) -> Option<Direction> {
    match ty {
        1 | 7 => Some(Direction::Outbound),
        2 | 3 | 8 => Some(Direction::Internal),
        4..=6 => Some(Direction::Inbound),
        _ => None,
    }
}

/// The documented agent line: `ALineNum` for 1..3, `BLineNum` for 5 and 8.
fn documented_agent(l: &OktellLeg) -> Option<&str> {
    match l.connection_type {
        1..=3 => l.a_line_num.as_deref(),
        5 | 8 => l.b_line_num.as_deref(),
        _ => None,
    }
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> Option<u32> {
    let ms = (b - a).num_milliseconds();
    (ms >= 0).then(|| u32::try_from(ms / 1000).ok()).flatten()
}

/// The event of a parsed leg, checked against the documented rules.
fn check_event(p: &mut OktellParser, l: &OktellLeg) -> Result<(), TestCaseError> {
    let ev = p.to_event(l);
    let Some(stop) = l.stop else {
        prop_assert!(ev.is_none(), "an open leg has no event");
        return Ok(());
    };
    let ev = ev.ok_or_else(|| TestCaseError::fail("a closed leg has an event"))?;
    prop_assert_eq!(ev.direction, documented_direction(l.connection_type));
    prop_assert_eq!(ev.call_id.as_deref(), Some(l.id.as_str()));
    prop_assert_eq!(ev.linked_id.as_deref(), Some(l.chain.as_str()));
    prop_assert_eq!(ev.ts, l.start);
    prop_assert_eq!(ev.answered_at, l.answer);
    prop_assert_eq!(ev.ended_at, Some(stop));
    prop_assert_eq!(ev.duration_s, secs(l.start, stop));
    prop_assert_eq!(ev.talk_s, l.answer.and_then(|a| secs(a, stop)));
    let disposition = match (l.answer, l.answer_known) {
        (Some(_), _) => Disposition::Answered,
        (None, true) => Disposition::NoAnswer,
        (None, false) => Disposition::Unknown,
    };
    prop_assert_eq!(ev.disposition, Some(disposition));
    prop_assert_eq!(&ev.caller_raw, &l.a_out_number);
    prop_assert_eq!(&ev.caller_name, &l.a_str);
    prop_assert_eq!(ev.agent_raw.as_deref(), documented_agent(l));
    let info = if l.connection_type == 4 {
        l.a_number_dialed.clone()
    } else {
        None
    };
    prop_assert_eq!(ev.info, info);
    prop_assert_eq!(&ev.data, &l.fields);
    Ok(())
}

// ---------------------------------------------------------------------------
// Mutations

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize),
    Truncate(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let bytes = prop_oneof![
        Just(b"\"".to_vec()),
        Just(b";".to_vec()),
        Just(b",".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xA5".to_vec()),
        Just(b"\xFF\xFE".to_vec()),
        Just("Ж".as_bytes().to_vec()),
        Just("😀".as_bytes().to_vec()),
        Just(b"NULL".to_vec()),
        Just(b"{".to_vec()),
        Just(b"2024-03-31 02:30:00".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(
        prop_oneof![
            3 => (any::<usize>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
            4 => (any::<usize>(), bytes).prop_map(|(i, b)| Mutation::Insert(i, b)),
            1 => any::<usize>().prop_map(Mutation::Delete),
            1 => any::<usize>().prop_map(Mutation::Truncate),
        ],
        1..8,
    )
}

fn mutate(mut v: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = v.len();
        match m {
            Mutation::Flip(i, mask) if n > 0 => v[i % n] ^= mask,
            Mutation::Insert(i, b) => {
                let at = i % (n + 1);
                v.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(i) if n > 0 => {
                v.remove(i % n);
            }
            Mutation::Truncate(i) => v.truncate(i % (n + 1)),
            _ => {}
        }
    }
    v
}

/// Feeds any bytes line by line: no panic, errors read as something, and
/// whatever parses obeys the event rules.
fn feed_any(p: &mut OktellParser, bytes: &[u8]) -> Result<(), TestCaseError> {
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        match p.parse_line(line) {
            Ok(Some(l)) => {
                let _ = l.fingerprint();
                let ev = p.to_event(&l);
                prop_assert_eq!(ev.is_some(), !l.is_open());
                if let Some(ev) = ev {
                    prop_assert_eq!(ev.direction, documented_direction(l.connection_type));
                }
            }
            Ok(None) => {}
            Err(e) => prop_assert!(!e.to_string().trim().is_empty(), "{:?}", e),
        }
    }
    if let Err(e) = p.finish() {
        prop_assert!(!e.to_string().trim().is_empty());
    }
    Ok(())
}

const HEADERS: [&str; 4] = [
    "Id;IdChain;ConnectionType;TimeStart;TimeAnswer;TimeStop;AOutNumber;BOutNumber;AStr;ALineNum;BLineNum",
    "Id,IdChain,ConnectionType,TimeStart,TimeStop,IsRecorded,ReasonStart",
    "[TimeStop]\t[Id]\t[IdChain]\t[ConnectionType]\t[TimeStart]",
    "id|idchain|connectiontype|timestart|timestop|astr",
];

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// 6. Arbitrary bytes never panic: as the first line, and as rows under
    /// a header of each delimiter.
    #[test]
    fn arbitrary_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        feed_any(&mut parser_in(Tz::UTC), &bytes)?;
        for h in HEADERS {
            let mut p = parser_in(Tz::America__New_York);
            prop_assert_eq!(p.parse_line(h.as_bytes()), Ok(None));
            feed_any(&mut p, &bytes)?;
        }
    }

    /// 6. A valid export (any delimiter) with bytes flipped, inserted,
    /// deleted or cut never panics, whole or with an intact header.
    #[test]
    fn mutated_exports_do_not_panic(
        ls in legs(), ex in export(), ms in mutations(), (tz, _) in zone(),
    ) {
        let bytes = ex.write(&ls).bytes;
        feed_any(&mut parser_in(tz), &mutate(bytes.clone(), &ms))?;
        let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut p = parser_in(tz);
        prop_assert_eq!(p.parse_line(&bytes[..header_len]), Ok(None));
        feed_any(&mut p, &mutate(bytes[header_len..].to_vec(), &ms))?;
    }

    /// 7. A generated export reads back as the generated legs; closed legs
    /// give events with the documented direction, open legs none.
    #[test]
    fn exports_round_trip(ls in legs(), ex in export(), (tz, off) in zone()) {
        let Written { bytes, fields, ambiguous } = ex.write(&ls);
        prop_assume!(!ambiguous);
        let mut p = parser_in(tz);
        let got = read(&mut p, &bytes)?;
        prop_assert_eq!(p.delimiter(), Some(ex.delimiter));
        prop_assert_eq!(p.columns().map(<[String]>::len), Some(ex.width()));
        prop_assert_eq!(got.len(), ls.len(), "{}", String::from_utf8_lossy(&bytes));
        for ((g, l), f) in got.iter().zip(&ls).zip(fields) {
            let want = expected(l, &ex, off, f);
            prop_assert_eq!(g, &want, "{}", String::from_utf8_lossy(&bytes));
            check_event(&mut p, g)?;
        }
    }

    /// 7. The fingerprint is the same for the same legs written with another
    /// column order, delimiter, case, quoting and date form, and changes when
    /// TimeStop does.
    #[test]
    fn fingerprint_ignores_rendering_but_sees_time_stop(
        ls in legs(),
        ex in export(),
        other_delimiter in prop::sample::select(vec![b';', b',', b'\t', b'|']),
        restyle in prop::collection::vec(any::<u8>(), Column::COUNT),
        shift_ms in prop_oneof![Just(1i64), 1i64..100_000, Just(-1i64)],
    ) {
        let a_w = ex.write(&ls);
        prop_assume!(!a_w.ambiguous);
        let a_bytes = a_w.bytes;
        let a = read(&mut parser_in(Tz::UTC), &a_bytes)?;

        // the same rows and columns, rendered otherwise
        let mut ex2 = ex.clone();
        ex2.cols.reverse();
        let n = ex2.cols.len();
        ex2.cols.rotate_left(ls.len() % n);
        ex2.delimiter = other_delimiter;
        ex2.name_style = ex.name_style.iter().map(|s| s.wrapping_add(0x55)).collect();
        ex2.crlf = !ex.crlf;
        ex2.cp1251 = !ex.cp1251;
        let restyled: Vec<Leg> = ls
            .iter()
            .map(|l| Leg {
                style: l.style.iter().zip(&restyle).map(|(a, b)| a ^ b).collect(),
                ..l.clone()
            })
            .collect();
        let b_w = ex2.write(&restyled);
        prop_assume!(!b_w.ambiguous);
        let b_bytes = b_w.bytes;
        let b = read(&mut parser_in(Tz::UTC), &b_bytes)?;
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            let strip = |l: &OktellLeg| OktellLeg { fields: Vec::new(), ..l.clone() };
            prop_assert_eq!(strip(x), strip(y));
            prop_assert_eq!(x.fingerprint(), y.fingerprint());
        }

        // TimeStop changes: closed later or earlier, closed, or reopened
        let changed: Vec<Leg> = ls
            .iter()
            .map(|l| Leg {
                stop: match l.stop {
                    Some(_) if shift_ms == -1 => None,
                    Some(t) => Some(t + TimeDelta::milliseconds(shift_ms)),
                    None => Some(l.start + TimeDelta::milliseconds(shift_ms.abs())),
                },
                ..l.clone()
            })
            .collect();
        let c_bytes = ex.write(&changed).bytes;
        let c = read(&mut parser_in(Tz::UTC), &c_bytes)?;
        for (x, z) in a.iter().zip(&c) {
            prop_assert_ne!(x.stop, z.stop);
            prop_assert_ne!(x.fingerprint(), z.fingerprint(), "{:?} vs {:?}", x.stop, z.stop);
        }
    }
}

#[test]
fn the_generators_cover_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (ls, es) = (legs(), export());
    let mut types = std::collections::HashSet::new();
    let mut forms = std::collections::HashSet::new();
    let (mut open, mut multiline, mut delims) = (0, 0, std::collections::HashSet::new());
    for _ in 0..1000 {
        let legs = ls.new_tree(&mut runner).unwrap().current();
        let ex = es.new_tree(&mut runner).unwrap().current();
        delims.insert(ex.delimiter);
        for l in &legs {
            types.insert(l.ty);
            forms.insert(
                l.style[Column::ALL
                    .iter()
                    .position(|c| *c == Column::TimeStart)
                    .unwrap()]
                    % 7,
            );
            open += usize::from(l.stop.is_none());
            multiline += usize::from(l.a_str.as_deref().is_some_and(|s| s.contains('\n')));
        }
    }
    assert_eq!(types.len(), 9);
    assert_eq!(forms.len(), 7);
    assert_eq!(delims.len(), 4);
    assert!(
        open > 200 && multiline > 50,
        "open {open}, multi-line {multiline}"
    );
}
