//! Property tests for the CDR parser: no input panics (arbitrary bytes, and
//! mutations of valid `cdr_csv`, `cdr_custom` and header-row exports);
//! generated records written with each layout's real quoting rules
//! round-trip; the line terminator changes nothing; [`record_complete`]
//! agrees with the parser on records split by raw line breaks; and `Auto`
//! detects the layout a record was written in.
//!
//! 512 cases per property by default; `PROPTEST_CASES` overrides.

use calltrail_parsers::cdr::{record_complete, CdrError, CdrLayout, CdrParser};
use calltrail_parsers::{
    AgentResolver, Disposition, Event, NumberConfig, NumberNormalizer, SourceContext, SourceKind,
};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
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

fn parser_in(layout: CdrLayout, tz: Tz) -> CdrParser {
    CdrParser::new(
        SourceContext {
            timezone: tz,
            ..SourceContext::new("cdr", "pbx1")
        },
        SourceKind::AsteriskCdrCsv,
        layout,
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    )
}

/// Zones without DST in the generated years, with their fixed UTC offset in
/// seconds (computed here independently of chrono-tz).
const ZONES: [(&str, i64); 4] = [
    ("UTC", 0),
    ("Asia/Kolkata", 5 * 3600 + 1800),
    ("Etc/GMT-3", 3 * 3600),
    ("Etc/GMT+5", -5 * 3600),
];

fn zone() -> impl Strategy<Value = (Tz, i64)> {
    prop::sample::select(ZONES.to_vec()).prop_map(|(name, off)| (name.parse::<Tz>().unwrap(), off))
}

/// A naive local time as the parser must read it in a zone `off` seconds east of UTC.
fn utc_of(naive: NaiveDateTime, off: i64) -> DateTime<Utc> {
    (naive - TimeDelta::seconds(off)).and_utc()
}

// ---------------------------------------------------------------------------
// Generated records

/// One CDR record as Asterisk knows it, before it is written in a layout.
#[derive(Debug, Clone)]
struct Rec {
    accountcode: String,
    src: String,
    dst: String,
    dcontext: String,
    /// The caller name inside `clid`, if any.
    name: Option<String>,
    clid: String,
    channel: String,
    dstchannel: String,
    lastapp: String,
    lastdata: String,
    start: NaiveDateTime,
    answer: Option<NaiveDateTime>,
    end: NaiveDateTime,
    duration: u32,
    billsec: u32,
    disposition: &'static str,
    amaflags: &'static str,
    uniqueid: String,
    userfield: String,
    peeraccount: String,
    linkedid: String,
    sequence: u32,
    /// Microseconds of start/answer/end, seen only in raw (epoch) output.
    frac_us: u32,
}

/// src/dst in the forms PBXes write them (extensions, RU numbers with and
/// without formatting, international, endpoint names, SIP URIs, Cyrillic
/// text, sentinels, empty).
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[1-9][0-9]{1,5}",
        2 => "8[0-9]{10}",
        1 => "\\+7[0-9]{10}",
        1 => "7[0-9]{10}",
        1 => "8 \\([0-9]{3}\\) [0-9]{3}-[0-9]{2}-[0-9]{2}",
        1 => "\\+7 [0-9]{3} [0-9]{3}-[0-9]{2}-[0-9]{2}",
        1 => "00[1-9][0-9]{9,11}",
        1 => "\\*[0-9]{2}",
        1 => "(client|trunk)[0-9]{1,2}",
        1 => "sip:[0-9]{3,11}@pbx\\.example",
        1 => "[А-я]{1,6}",
        1 => prop::sample::select(vec!["anonymous", "s", "", "Unknown"]).prop_map(String::from),
    ]
}

fn regex(re: &str) -> prop::string::RegexGeneratorStrategy<String> {
    prop::string::string_regex(re).unwrap()
}

/// A caller name: Latin, Cyrillic, quotes, commas, angle brackets; no
/// blanks at either end (Asterisk's clid parser and ours trim them).
fn name() -> impl Strategy<Value = String> {
    let edge = "[A-Za-zА-яЁё0-9\",.'<>()&-]";
    let mid = "[A-Za-zА-яЁё0-9\" ,.'<>()&-]";
    prop_oneof![
        regex(&format!("{edge}({mid}{{0,16}}{edge})?")),
        // the interesting shapes, often
        Just("\"Bob\"".to_string()),
        Just("Иванов, Иван".to_string()),
        Just("O\"Brien".to_string()),
        Just("\"".to_string()),
        Just("ООО \"Ромашка\", склад".to_string()),
    ]
}

fn channel() -> impl Strategy<Value = String> {
    prop_oneof![
        ("(PJSIP|SIP|IAX2)", "[a-z0-9_]{1,10}", "[0-9a-f]{8}")
            .prop_map(|(t, e, h)| format!("{t}/{e}-{h}")),
        ("[0-9]{2,4}", "[0-9a-f]{8}").prop_map(|(e, h)| format!("Local/{e}@from-queue-{h};1")),
    ]
}

/// Free text for lastdata: dial strings with commas, quotes, Cyrillic. Never
/// a `YYYY-MM-DD HH:MM:SS` date (that would be a different layout).
fn lastdata() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9/&@,|=_ .:\"А-я-]{0,30}",
        ("[A-Z]+", "[0-9]{2,4}").prop_map(|(t, e)| format!("{t}/{e}&SIP/200@pbx,60,tT")),
        "[0-9]{3,4},,,,[0-9]{2,3},,,",
    ]
}

/// Userfield text: never shaped like a uniqueid (no digits), so the 17- and
/// 20-column `cdr_csv` forms are unambiguous.
fn userfield() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-zА-я ,;\"=_-]{0,14}",
        prop::sample::select(vec!["Inbound", "Outbound", "Internal", "vip"]).prop_map(String::from),
    ]
}

fn uniqueid() -> impl Strategy<Value = String> {
    "([a-z][a-z0-9]{0,10}-)?1[0-9]{9}\\.[0-9]{1,6}"
}

const DISPOSITIONS: [(&str, Disposition); 7] = [
    ("ANSWERED", Disposition::Answered),
    ("NO ANSWER", Disposition::NoAnswer),
    ("BUSY", Disposition::Busy),
    ("FAILED", Disposition::Failed),
    ("CONGESTION", Disposition::Congestion),
    ("CANCEL", Disposition::Cancel),
    ("UNKNOWN", Disposition::Unknown),
];

fn rec() -> impl Strategy<Value = Rec> {
    let parties = (
        "[a-z0-9]{0,8}",
        number(),
        number(),
        prop::sample::select(vec![
            "from-internal",
            "from-trunk",
            "ext-queues",
            "default",
            "stadion-pstn",
            "outbound-route-4",
            "macro-dialout-trunk",
            "ext-did-1",
        ]),
        prop::option::weighted(0.8, name()),
        0..3usize,
        channel(),
        prop_oneof![channel(), Just(String::new())],
    );
    let app = (
        prop::sample::select(vec!["Dial", "Queue", "Playback", "Hangup", "AppDial", ""]),
        lastdata(),
    );
    // 2000-01-01 .. 2037-12-31, local time of day as written
    let times = (
        946_684_800i64..2_145_830_400,
        0u32..120,
        prop_oneof![Just(0u32), 0u32..7200],
        any::<bool>(),
    );
    let rest = (
        prop::sample::select(DISPOSITIONS.to_vec()),
        prop::sample::select(vec!["DOCUMENTATION", "BILLING", "OMIT", "DEFAULT"]),
        uniqueid(),
        userfield(),
        "[a-z0-9]{0,6}",
        uniqueid(),
        0u32..100_000,
        prop_oneof![Just(0u32), 0u32..1_000_000],
    );
    (parties, app, times, rest).prop_map(
        |(
            (accountcode, src, dst, dcontext, name, clid_form, channel, dstchannel),
            (lastapp, lastdata),
            (epoch, ring, billsec, answered),
            (
                (disposition, _),
                amaflags,
                uniqueid,
                userfield,
                peeraccount,
                linkedid,
                sequence,
                frac_us,
            ),
        )| {
            let start = DateTime::from_timestamp(epoch, 0).unwrap().naive_utc();
            // Unanswered: no answer time and no billsec, as Asterisk writes it.
            let (answer, billsec) = if answered {
                (Some(start + TimeDelta::seconds(ring.into())), billsec)
            } else {
                (None, 0)
            };
            let duration = ring + billsec;
            let end = start + TimeDelta::seconds(duration.into());
            let clid = match (&name, clid_form) {
                (Some(n), _) => format!("\"{n}\" <{src}>"),
                (None, 0) => format!("\"\" <{src}>"),
                (None, _) => format!("<{src}>"),
            };
            Rec {
                accountcode,
                src,
                dst,
                dcontext: dcontext.to_string(),
                name,
                clid,
                channel,
                dstchannel,
                lastapp: lastapp.to_string(),
                lastdata,
                start,
                answer,
                end,
                duration,
                billsec,
                disposition,
                amaflags,
                uniqueid,
                userfield,
                peeraccount,
                linkedid,
                sequence,
                frac_us,
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Layouts and writers

/// How a record is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fmt {
    /// `cdr_csv` with `n` (16..=21) columns; for 17 and 20, whether the
    /// optional column is the uniqueid (else the userfield).
    Csv { n: usize, uid: bool },
    /// `cdr_custom.conf.sample`'s default mapping; `raw`: the times as
    /// `${CDR(start,u)}` writes them (`<epoch>.<usec>`, `0.000000` when
    /// unset) and durations as `${CDR(duration,f)}`.
    Custom { raw: bool },
    /// A Grandstream UCM export with its header row.
    Grandstream,
    /// A header row of Asterisk names in some order and case, plus unknown
    /// columns (a CDR-report export); `start` may be called `calldate`.
    Named {
        order: Vec<usize>,
        upper: Vec<bool>,
        calldate: bool,
    },
}

fn fmt() -> impl Strategy<Value = Fmt> {
    prop_oneof![
        6 => (16usize..=21, any::<bool>()).prop_map(|(n, uid)| Fmt::Csv { n, uid }),
        2 => any::<bool>().prop_map(|raw| Fmt::Custom { raw }),
        2 => Just(Fmt::Grandstream),
        2 => (Just((0..NAMED.len()).collect::<Vec<_>>()).prop_shuffle(),
              prop::collection::vec(any::<bool>(), NAMED.len()), any::<bool>())
            .prop_map(|(order, upper, calldate)| Fmt::Named { order, upper, calldate }),
    ]
}

impl Fmt {
    /// What `Auto` must detect, and the explicit layout.
    fn layout(&self) -> CdrLayout {
        match self {
            Fmt::Csv { .. } => CdrLayout::CdrCsv,
            Fmt::Custom { .. } => CdrLayout::CdrCustomDefault,
            Fmt::Grandstream | Fmt::Named { .. } => CdrLayout::HeaderRow,
        }
    }

    fn has_uniqueid(&self) -> bool {
        match *self {
            Fmt::Csv { n, uid } => matches!((n, uid), (18 | 21, _) | (17 | 20, true)),
            _ => true,
        }
    }

    fn has_userfield(&self) -> bool {
        match *self {
            Fmt::Csv { n, uid } => matches!((n, uid), (18 | 21, _) | (17 | 20, false)),
            _ => true,
        }
    }

    fn has_linkedid(&self) -> bool {
        match *self {
            Fmt::Csv { n, .. } => n >= 19,
            Fmt::Custom { .. } => false,
            _ => true,
        }
    }
}

/// A cell of a `cdr_csv` record.
enum Cell {
    /// Quoted, `"` doubled (`append_string`).
    Str(String),
    /// Bare (`append_int`).
    Int(u32),
    /// Quoted, or a bare empty field for a zero time (`append_date`).
    Date(Option<String>),
}

fn date(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes only when needed (a spreadsheet or vendor export).
fn minimal(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        quoted(s)
    } else {
        s.to_string()
    }
}

/// Header names of the `Named` layout (the last three are not CDR columns).
const NAMED: [&str; 24] = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
    "recordingfile",
    "did",
    "cnum",
];

const GS_HEADER: &str = "Account Code,Caller Number,Callee Number,Context,CallerID Number,Source Channel,Dest. Channel,Last app.,Last date,Start Time,Answer Time,End Time,Call Time,Talk Time,Disposition,AMA Flags,Unique ID,Log Userfield,Dest Channel Extension,Caller Name,Answered by,Session,Premier Caller,Action Type,Source Trunk Name,Destination Trunk Name";

/// A written record: the optional header line, the record line (no
/// terminator), and the cell values the parser must give back in `data`.
#[derive(Debug, Clone)]
struct Written {
    header: Option<String>,
    line: String,
    cells: Vec<String>,
    /// Index of lastdata and userfield among the cells.
    lastdata_at: usize,
    userfield_at: Option<usize>,
}

/// Writes `r` in layout `f`; `off` is the source zone's offset (raw epoch
/// times are instants, not local text).
fn write(r: &Rec, f: &Fmt, off: i64) -> Written {
    let answer = r.answer.map(date);
    match f {
        Fmt::Csv { n, uid } => {
            let mut cells = vec![
                Cell::Str(r.accountcode.clone()),
                Cell::Str(r.src.clone()),
                Cell::Str(r.dst.clone()),
                Cell::Str(r.dcontext.clone()),
                Cell::Str(r.clid.clone()),
                Cell::Str(r.channel.clone()),
                Cell::Str(r.dstchannel.clone()),
                Cell::Str(r.lastapp.clone()),
                Cell::Str(r.lastdata.clone()),
                Cell::Date(Some(date(r.start))),
                Cell::Date(answer),
                Cell::Date(Some(date(r.end))),
                Cell::Int(r.duration),
                Cell::Int(r.billsec),
                Cell::Str(r.disposition.into()),
                Cell::Str(r.amaflags.into()),
            ];
            let mut userfield_at = None;
            let (with_uid, with_uf, with_new) = match (n, uid) {
                (16, _) => (false, false, false),
                (17, u) => (*u, !*u, false),
                (18, _) => (true, true, false),
                (19, _) => (false, false, true),
                (20, u) => (*u, !*u, true),
                _ => (true, true, true),
            };
            if with_uid {
                cells.push(Cell::Str(r.uniqueid.clone()));
            }
            if with_uf {
                userfield_at = Some(cells.len());
                cells.push(Cell::Str(r.userfield.clone()));
            }
            if with_new {
                cells.push(Cell::Str(r.peeraccount.clone()));
                cells.push(Cell::Str(r.linkedid.clone()));
                cells.push(Cell::Int(r.sequence));
            }
            assert_eq!(cells.len(), *n);
            let line = cells
                .iter()
                .map(|c| match c {
                    Cell::Str(s) | Cell::Date(Some(s)) => quoted(s),
                    Cell::Int(i) => i.to_string(),
                    Cell::Date(None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(",");
            let cells = cells
                .into_iter()
                .map(|c| match c {
                    Cell::Str(s) | Cell::Date(Some(s)) => s,
                    Cell::Int(i) => i.to_string(),
                    Cell::Date(None) => String::new(),
                })
                .collect();
            Written {
                header: None,
                line,
                cells,
                lastdata_at: 8,
                userfield_at,
            }
        }
        Fmt::Custom { raw } => {
            // ${CDR(start,u)}: "%ld.%06ld" of the instant, "0.000000" when unset
            let epoch = |t: Option<NaiveDateTime>| {
                t.map_or("0.000000".to_string(), |t| {
                    format!("{}.{:06}", utc_of(t, off).timestamp(), r.frac_us)
                })
            };
            let (start, answer, end, duration, billsec) = if *raw {
                (
                    epoch(Some(r.start)),
                    epoch(r.answer),
                    epoch(Some(r.end)),
                    format!("{}.000000", r.duration),
                    format!("{}.000000", r.billsec),
                )
            } else {
                (
                    date(r.start),
                    answer.unwrap_or_default(),
                    date(r.end),
                    r.duration.to_string(),
                    r.billsec.to_string(),
                )
            };
            let cells = vec![
                r.clid.clone(),
                r.src.clone(),
                r.dst.clone(),
                r.dcontext.clone(),
                r.channel.clone(),
                r.dstchannel.clone(),
                r.lastapp.clone(),
                r.lastdata.clone(),
                start,
                answer,
                end,
                duration,
                billsec,
                r.disposition.into(),
                r.amaflags.into(),
                r.accountcode.clone(),
                r.uniqueid.clone(),
                r.userfield.clone(),
                r.sequence.to_string(),
            ];
            // ${CSV_QUOTE(...)} everywhere but the last ${CDR(sequence)}
            let mut parts: Vec<String> = cells[..18].iter().map(|c| quoted(c)).collect();
            parts.push(cells[18].clone());
            Written {
                header: None,
                line: parts.join(","),
                cells,
                lastdata_at: 7,
                userfield_at: Some(17),
            }
        }
        Fmt::Grandstream => {
            let action = if r.lastapp == "Queue" {
                "QUEUE[6500]"
            } else {
                "DIAL"
            };
            let cells = vec![
                r.accountcode.clone(),
                r.src.clone(),
                r.dst.clone(),
                r.dcontext.clone(),
                r.clid.clone(),
                r.channel.clone(),
                r.dstchannel.clone(),
                r.lastapp.clone(),
                r.lastdata.clone(),
                date(r.start),
                answer.unwrap_or_default(),
                date(r.end),
                r.duration.to_string(),
                r.billsec.to_string(),
                r.disposition.into(),
                r.amaflags.into(),
                r.uniqueid.clone(),
                r.userfield.clone(),
                r.dst.clone(),
                r.name.clone().unwrap_or_default(),
                String::new(),
                r.linkedid.clone(),
                r.src.clone(),
                action.into(),
                "EASTTELECOM".into(),
                String::new(),
            ];
            Written {
                header: Some(GS_HEADER.into()),
                line: cells
                    .iter()
                    .map(|c| minimal(c))
                    .collect::<Vec<_>>()
                    .join(","),
                cells,
                lastdata_at: 8,
                userfield_at: Some(17),
            }
        }
        Fmt::Named {
            order,
            upper,
            calldate,
        } => {
            let value = |name: &str| -> String {
                match name {
                    "accountcode" => r.accountcode.clone(),
                    "src" => r.src.clone(),
                    "dst" => r.dst.clone(),
                    "dcontext" => r.dcontext.clone(),
                    "clid" => r.clid.clone(),
                    "channel" => r.channel.clone(),
                    "dstchannel" => r.dstchannel.clone(),
                    "lastapp" => r.lastapp.clone(),
                    "lastdata" => r.lastdata.clone(),
                    "start" => date(r.start),
                    "answer" => answer.clone().unwrap_or_default(),
                    "end" => date(r.end),
                    "duration" => r.duration.to_string(),
                    "billsec" => r.billsec.to_string(),
                    "disposition" => r.disposition.into(),
                    "amaflags" => r.amaflags.into(),
                    "uniqueid" => r.uniqueid.clone(),
                    "userfield" => r.userfield.clone(),
                    "peeraccount" => r.peeraccount.clone(),
                    "linkedid" => r.linkedid.clone(),
                    "sequence" => r.sequence.to_string(),
                    "recordingfile" => "out-201-2024.wav".into(),
                    "did" => "74951234567".into(),
                    _ => r.src.clone(),
                }
            };
            let names: Vec<&str> = order.iter().map(|&i| NAMED[i]).collect();
            let header = names
                .iter()
                .zip(upper)
                .map(|(&n, &up)| {
                    let n = if n == "start" && *calldate {
                        "calldate"
                    } else {
                        n
                    };
                    if up {
                        n.to_uppercase()
                    } else {
                        n.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            let cells: Vec<String> = names.iter().map(|n| value(n)).collect();
            let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
            Written {
                header: Some(header),
                line: cells
                    .iter()
                    .map(|c| minimal(c))
                    .collect::<Vec<_>>()
                    .join(","),
                lastdata_at: at("lastdata"),
                userfield_at: Some(at("userfield")),
                cells,
            }
        }
    }
}

/// The whole file: header and record, each ended by `eol`; the record's
/// terminator left off when `last_eol` is false.
fn file(w: &Written, eol: &str, last_eol: bool) -> Vec<u8> {
    let mut out = String::new();
    if let Some(h) = &w.header {
        out.push_str(h);
        out.push_str(eol);
    }
    out.push_str(&w.line);
    if last_eol {
        out.push_str(eol);
    }
    out.into_bytes()
}

/// Reads a file as the ingest layer does: physical lines, joined while
/// [`record_complete`] says a quoted field is open. Returns every
/// record's result (the header row gives `Ok(None)`).
fn read(p: &mut CdrParser, bytes: &[u8]) -> Vec<Result<Option<Event>, CdrError>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        buf.extend_from_slice(line);
        if record_complete(&buf) {
            out.push(p.parse_line(&buf));
            buf.clear();
        }
    }
    if !buf.is_empty() {
        out.push(p.parse_line(&buf));
    }
    out
}

/// The one event of a file holding one record (after an optional header).
fn the_event(p: &mut CdrParser, bytes: &[u8]) -> Result<Event, TestCaseError> {
    let results = read(p, bytes);
    let mut events = Vec::new();
    for r in results {
        match r {
            Ok(Some(e)) => events.push(e),
            Ok(None) => {}
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "{e}\n{}",
                    String::from_utf8_lossy(bytes)
                )))
            }
        }
    }
    prop_assert_eq!(events.len(), 1, "{}", String::from_utf8_lossy(bytes));
    Ok(events.pop().unwrap())
}

// ---------------------------------------------------------------------------
// Mutations

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR a byte with a non-zero mask.
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize),
    Truncate(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let bytes = prop_oneof![
        Just(b"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xA5".to_vec()),
        Just("Ж".as_bytes().to_vec()),
        Just("€".as_bytes().to_vec()),
        Just("😀".as_bytes().to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xD0".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b"0000-00-00 00:00:00".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    let byte = prop_oneof![
        Just(b'"'),
        Just(b','),
        Just(b'\r'),
        Just(b'\n'),
        Just(0u8),
        Just(0xA5),
        Just(b'-'),
        Just(b'9'),
        any::<u8>(),
    ];
    prop::collection::vec(
        prop_oneof![
            3 => (any::<usize>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
            2 => (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Set(i, b)),
            4 => (any::<usize>(), bytes).prop_map(|(i, b)| Mutation::Insert(i, b)),
            1 => any::<usize>().prop_map(Mutation::Delete),
            1 => any::<usize>().prop_map(Mutation::Truncate),
        ],
        1..6,
    )
}

fn mutate(mut v: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = v.len();
        match m {
            Mutation::Flip(i, mask) if n > 0 => v[i % n] ^= mask,
            Mutation::Set(i, b) if n > 0 => v[i % n] = *b,
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

/// True when `r` written in `f` has Asterisk's raw unset answer `0.000000`.
fn raw_unset_answer(f: &Fmt, r: &Rec) -> bool {
    *f == (Fmt::Custom { raw: true }) && r.answer.is_none()
}

/// Parses `line` and checks what holds for every input: no panic, a
/// non-empty error message, and `record_complete` agreeing with the parser
/// on whether a quoted field is left open.
fn check_any(p: &mut CdrParser, line: &[u8]) -> Result<(), TestCaseError> {
    let r = p.parse_line(line);
    let complete = record_complete(line);
    if let Err(e) = &r {
        prop_assert!(!e.to_string().trim().is_empty(), "{:?}", e);
        if matches!(e, CdrError::UnterminatedQuote) {
            prop_assert!(
                !complete,
                "parser says open, record_complete says complete: {:?}",
                line
            );
        }
    }
    if !complete {
        prop_assert_eq!(r, Err(CdrError::UnterminatedQuote), "{:?}", line);
    }
    Ok(())
}

fn all_layouts() -> Vec<CdrLayout> {
    vec![
        CdrLayout::Auto,
        CdrLayout::CdrCsv,
        CdrLayout::CdrCustomDefault,
        CdrLayout::HeaderRow,
        CdrLayout::columns(["start", "src", "dst", "clid", "answer", "end", "billsec"]).unwrap(),
    ]
}

fn moscow() -> Tz {
    "Europe/Moscow".parse().unwrap()
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// 1. Arbitrary bytes never panic under any layout (also after a
    /// Grandstream header), errors read as something, and `record_complete`
    /// agrees with the parser.
    #[test]
    fn arbitrary_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for layout in all_layouts() {
            let mut p = parser_in(layout, moscow());
            check_any(&mut p, &bytes)?;
            check_any(&mut p, &bytes)?;
        }
        let mut g = parser_in(CdrLayout::Auto, Tz::UTC);
        prop_assert_eq!(g.parse_line(GS_HEADER.as_bytes()), Ok(None));
        check_any(&mut g, &bytes)?;
    }

    /// 1. Mutations of valid records (every layout, with and without the
    /// header) never panic, read as a file or line by line.
    #[test]
    fn mutated_records_do_not_panic(r in rec(), f in fmt(), ms in mutations(), crlf in any::<bool>()) {
        let w = write(&r, &f, 0);
        let eol = if crlf { "\r\n" } else { "\n" };
        let bytes = mutate(file(&w, eol, true), &ms);
        for layout in [CdrLayout::Auto, f.layout()] {
            let mut p = parser_in(layout.clone(), moscow());
            for res in read(&mut p, &bytes) {
                if let Err(e) = res {
                    prop_assert!(!e.to_string().trim().is_empty(), "{:?}", e);
                }
            }
            // line by line, without joining: open quotes are reported
            let mut p = parser_in(layout, Tz::America__New_York);
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                check_any(&mut p, line)?;
            }
        }
        // the mutated record alone under the right header
        if let Some(h) = &w.header {
            let mut p = parser_in(CdrLayout::HeaderRow, Tz::UTC);
            prop_assert_eq!(p.parse_line(h.as_bytes()), Ok(None));
            check_any(&mut p, &mutate(w.line.clone().into_bytes(), &ms))?;
        }
    }

    /// 2. A generated record written with its layout's quoting reads back:
    /// times (UTC and fixed zones), talk/duration, disposition, ids,
    /// numbers, caller name, and every cell in `data`; in UTF-8 or cp1251.
    #[test]
    fn records_round_trip(r in rec(), f in fmt(), (tz, off) in zone(), cp1251 in any::<bool>()) {
        let w = write(&r, &f, off);
        let mut bytes = file(&w, "\n", true);
        if cp1251 {
            // A Russian Windows PBX: the file in cp1251, read through the
            // source's fallback charset (each field decoded on its own).
            for c in w.cells.iter().filter(|c| !c.is_ascii()) {
                let (enc, _, _) = encoding_rs::WINDOWS_1251.encode(c);
                prop_assume!(std::str::from_utf8(&enc).is_err(), "cp1251 bytes that are UTF-8 too");
            }
            let (enc, _, unmappable) = encoding_rs::WINDOWS_1251.encode(std::str::from_utf8(&bytes).unwrap());
            prop_assert!(!unmappable);
            bytes = enc.into_owned();
        }
        let e = the_event(&mut parser_in(f.layout(), tz), &bytes)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // raw epoch times carry the microseconds; text dates have none
        let frac = if matches!(f, Fmt::Custom { raw: true }) { r.frac_us } else { 0 };
        let want = |t: NaiveDateTime| utc_of(t, off) + TimeDelta::microseconds(frac.into());
        prop_assert_eq!(e.ts, want(r.start), "{}", text);
        if raw_unset_answer(&f, &r) {
            // `0.000000`: see `raw_unset_answer_is_no_answer` (ignored, a parser bug)
        } else {
            prop_assert_eq!(e.answered_at, r.answer.map(want), "{}", text);
        }
        prop_assert_eq!(e.ended_at, Some(want(r.end)), "{}", text);
        prop_assert_eq!(e.talk_s, Some(r.billsec));
        prop_assert_eq!(e.duration_s, Some(r.duration));
        let disp = DISPOSITIONS.iter().find(|d| d.0 == r.disposition).unwrap().1;
        prop_assert_eq!(e.disposition, Some(disp));
        prop_assert_eq!(e.call_id, f.has_uniqueid().then(|| r.uniqueid.clone()), "{}", text);
        prop_assert_eq!(e.linked_id, f.has_linkedid().then(|| r.linkedid.clone()), "{}", text);
        prop_assert_eq!(e.caller_raw, Some(r.src.clone()).filter(|s| !s.is_empty()));
        prop_assert_eq!(e.callee_raw, Some(r.dst.clone()).filter(|s| !s.is_empty()));
        prop_assert_eq!(e.caller_name, r.name.clone(), "{}", text);
        prop_assert_eq!(&e.data, &w.cells, "{}", text);
        let want_info = (!r.lastapp.is_empty()).then(|| format!("{}({})", r.lastapp, r.lastdata.trim()));
        prop_assert_eq!(e.info, want_info);
    }

    /// 2. An unanswered call written by `${CDR(answer,u)}` has the answer
    /// `0.000000` (Asterisk's raw form of an unset time): no answer time.
    #[test]
    fn raw_unset_answer_is_no_answer(r in rec(), (tz, off) in zone()) {
        let r = Rec { answer: None, billsec: 0, ..r };
        let f = Fmt::Custom { raw: true };
        let w = write(&r, &f, off);
        prop_assert_eq!(&w.cells[9], "0.000000");
        let e = the_event(&mut parser_in(f.layout(), tz), &file(&w, "\n", true))?;
        prop_assert_eq!(e.answered_at, None, "{}", w.line);
    }

    /// 3. LF or CRLF, with or without the last terminator: the same event.
    #[test]
    fn line_endings_do_not_matter(r in rec(), f in fmt()) {
        let w = write(&r, &f, 0);
        let base = the_event(&mut parser_in(f.layout(), Tz::UTC), &file(&w, "\n", true))?;
        for (eol, last) in [("\n", false), ("\r\n", true), ("\r\n", false)] {
            let bytes = file(&w, eol, last);
            // Auto cannot detect raw epoch times (property 5)
            let auto = (f != Fmt::Custom { raw: true }).then_some(CdrLayout::Auto);
            for layout in [Some(f.layout()), auto].into_iter().flatten() {
                let e = the_event(&mut parser_in(layout, Tz::UTC), &bytes)?;
                prop_assert_eq!(&e, &base, "{:?}", String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// 4. A raw line break inside a quoted lastdata/userfield: every prefix
    /// ending at such a break is incomplete (and the parser says the quote is
    /// open), the whole record is complete, and the joined record parses to
    /// the event of the same record with blanks instead of the breaks, except
    /// for that field.
    #[test]
    fn raw_line_breaks_in_quoted_fields(
        r in rec(),
        f in fmt(),
        in_userfield in any::<bool>(),
        parts in prop::collection::vec("[A-Za-zА-я0-9 ,\"=/&-]{0,8}", 2..5),
        crlf_inside in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let field_is_userfield = in_userfield && f.has_userfield();
        let sep = if crlf_inside { "\r\n" } else { "\n" };
        let (mut broken, mut flat) = (r.clone(), r.clone());
        let (with_breaks, with_blanks) = (parts.join(sep), parts.join(" "));
        if field_is_userfield {
            broken.userfield = with_breaks.clone();
            flat.userfield = with_blanks;
        } else {
            broken.lastdata = with_breaks.clone();
            flat.lastdata = with_blanks;
        }
        let wb = write(&broken, &f, 0);
        let wf = write(&flat, &f, 0);
        let idx = if field_is_userfield { wb.userfield_at.unwrap() } else { wb.lastdata_at };
        let eol = if crlf { "\r\n" } else { "\n" };
        let bytes = file(&wb, eol, true);
        let record_start = wb.header.as_ref().map_or(0, |h| h.len() + eol.len());
        let record = &bytes[record_start..];

        // Physical lines of the record: all but the last end inside the quotes.
        let lines: Vec<&[u8]> = record.split_inclusive(|&b| b == b'\n').collect();
        prop_assert_eq!(lines.len(), parts.len());
        let mut p = parser_in(f.layout(), Tz::UTC);
        if let Some(h) = &wb.header {
            prop_assert_eq!(p.parse_line(h.as_bytes()), Ok(None));
        }
        let mut prefix = Vec::new();
        for (k, line) in lines.iter().enumerate() {
            prefix.extend_from_slice(line);
            let last = k + 1 == lines.len();
            prop_assert_eq!(record_complete(&prefix), last, "{:?}", String::from_utf8_lossy(&prefix));
            if !last {
                prop_assert_eq!(p.parse_line(&prefix), Err(CdrError::UnterminatedQuote));
            }
        }

        let e = the_event(&mut parser_in(f.layout(), Tz::UTC), &bytes)?;
        let mut want = the_event(&mut parser_in(f.layout(), Tz::UTC), &file(&wf, eol, true))?;
        prop_assert_eq!(&e.data[idx], &with_breaks);
        want.data[idx] = with_breaks.clone();
        // lastdata also shows in info and (for Queue) the queue name
        let mut got = e.clone();
        if !field_is_userfield {
            got.info = want.info.clone();
            got.queue = want.queue.clone();
            let info = (!r.lastapp.is_empty()).then(|| format!("{}({})", r.lastapp, with_breaks.trim()));
            prop_assert_eq!(&e.info, &info);
        }
        prop_assert_eq!(got, want);
    }

    /// 5. `Auto` detects the layout a record was written in, and reads it as
    /// the explicit layout does. (Raw epoch times cannot be detected: no
    /// date in the start column, so `Auto` says so and waits.)
    #[test]
    fn auto_detects_the_written_layout(r in rec(), f in fmt(), (tz, off) in zone()) {
        let w = write(&r, &f, off);
        let bytes = file(&w, "\r\n", true);
        let mut auto = parser_in(CdrLayout::Auto, tz);
        if f == (Fmt::Custom { raw: true }) {
            prop_assert_eq!(auto.parse_line(&bytes), Err(CdrError::UndetectedLayout { found: 19 }));
            prop_assert_eq!(auto.layout(), &CdrLayout::Auto);
            return Ok(());
        }
        let e = the_event(&mut auto, &bytes)?;
        prop_assert_eq!(auto.layout(), &f.layout(), "{}", String::from_utf8_lossy(&bytes));
        let fixed = the_event(&mut parser_in(f.layout(), tz), &bytes)?;
        prop_assert_eq!(e, fixed);
        if matches!(f, Fmt::Grandstream) {
            prop_assert_eq!(auto.header().map(<[String]>::len), Some(26));
        }
    }
}

#[test]
fn the_generators_cover_every_layout() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (fs, rs) = (fmt(), rec());
    let mut seen = std::collections::HashSet::new();
    let (mut named, mut unanswered, mut quote_in_name) = (0, 0, 0);
    for _ in 0..2000 {
        let f = fs.new_tree(&mut runner).unwrap().current();
        let r = rs.new_tree(&mut runner).unwrap().current();
        seen.insert(match f {
            Fmt::Csv { n, uid } => format!("csv{n}/{}", uid && (n == 17 || n == 20)),
            Fmt::Custom { raw } => format!("custom/{raw}"),
            Fmt::Grandstream => "grandstream".into(),
            Fmt::Named { .. } => "named".into(),
        });
        named += usize::from(r.name.is_some());
        unanswered += usize::from(r.answer.is_none());
        quote_in_name += usize::from(r.name.as_deref().is_some_and(|n| n.contains('"')));
    }
    // cdr_csv 16..21 (17 and 20 both ways), custom (text and raw), two header layouts
    assert_eq!(seen.len(), 8 + 2 + 2, "{seen:?}");
    assert!(named > 1000 && unanswered > 500 && quote_in_name > 100);
}
