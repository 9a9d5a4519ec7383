//! End-to-end tests of [`CdrParser`]: each layout, detection, quoting as
//! seen through whole records, errors, and garbage input.

use super::*;
use crate::event::{Direction, Disposition, EventKind};
use crate::phone::NumberConfig;
use crate::text::Charset;

fn ctx(tz: &str) -> SourceContext {
    SourceContext {
        timezone: tz.parse().unwrap(),
        ..SourceContext::new("cdr", "pbx1")
    }
}

fn parser_in(layout: CdrLayout, tz: &str) -> CdrParser {
    CdrParser::new(
        ctx(tz),
        SourceKind::AsteriskCdrCsv,
        layout,
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    )
}

fn parser(layout: CdrLayout) -> CdrParser {
    parser_in(layout, "UTC")
}

fn one(p: &mut CdrParser, line: &str) -> Event {
    p.parse_line(line.as_bytes()).unwrap().unwrap()
}

/// cdr_csv, 21 columns, inbound call answered by SIP/301.
const CSV21: &str = r#""","89245555937","211553","stadion-pstn","""Ivan"" <89245555937>","SIP/211553-00000019","SIP/301-0000001a","Dial","SIP/301&SIP/200@stadionpbx,60,t","2024-01-28 03:39:25","2024-01-28 03:39:30","2024-01-28 03:40:13",48,43,"ANSWERED","DOCUMENTATION","1706413165.93","","","1706413165.90",75"#;

/// cdr_csv, 18 columns (the shipped cdr.conf.sample), outbound, unanswered.
const CSV18: &str = r#""acc1","201","89161234567","from-internal","""Anna"" <201>","PJSIP/201-0000a1b2","PJSIP/trunk-0000a1b3","Dial","PJSIP/89161234567@trunk,60","2024-03-01 10:00:00",,"2024-03-01 10:00:20",20,0,"NO ANSWER","DOCUMENTATION","1709287200.5","vip""#;

/// cdr_custom default mapping (clid first, numbers quoted, sequence bare).
const CUSTOM: &str = r#"""""" <client1>","client1","6789","default","PJSIP/client1-00000002","PJSIP/client2-00000003","Dial","PJSIP/client2","2023-07-26 01:51:32","2023-07-26 01:51:50","2023-07-26 01:52:04","31","13","ANSWERED","DOCUMENTATION","","1690325492.2","",2"#;

const GS_HEADER: &str = "Account Code,Caller Number,Callee Number,Context,CallerID Number,Source Channel,Dest. Channel,Last app.,Last date,Start Time,Answer Time,End Time,Call Time,Talk Time,Disposition,AMA Flags,Unique ID,Log Userfield,Dest Channel Extension,Caller Name,Answered by,Session,Premier Caller,Action Type,Source Trunk Name,Destination Trunk Name\r\n";
const GS_QUEUE: &str = ",997870032,6500,ext-queues,\"\"\"\"\" <997870032>\",PJSIP/trunk_1-00025e6b,PJSIP/173-00025e6f,Queue,\"6500,,,,900,,,\",2026-07-03 12:28:15,2026-07-03 12:28:17,2026-07-03 12:28:17,2,0,NO ANSWER,DOCUMENTATION,1783063443.624903,Inbound,173,,,1783063443702325-997870032,997870032,QUEUE[6500],EASTTELECOM,\r\n";

#[test]
fn cdr_csv_21_columns() {
    let mut p = parser(CdrLayout::CdrCsv);
    let e = one(&mut p, CSV21);
    assert_eq!(
        (e.kind, e.verb.as_ref(), e.source_kind),
        (EventKind::CallRecord, "CDR", SourceKind::AsteriskCdrCsv)
    );
    assert_eq!(e.ts.to_rfc3339(), "2024-01-28T03:39:25+00:00");
    assert_eq!(
        e.answered_at.unwrap().to_rfc3339(),
        "2024-01-28T03:39:30+00:00"
    );
    assert_eq!(
        e.ended_at.unwrap().to_rfc3339(),
        "2024-01-28T03:40:13+00:00"
    );
    assert_eq!(
        (e.duration_s, e.talk_s, e.disposition),
        (Some(48), Some(43), Some(Disposition::Answered))
    );
    assert_eq!(e.call_id.as_deref(), Some("1706413165.93"));
    assert_eq!(e.linked_id.as_deref(), Some("1706413165.90"));
    assert_eq!(e.caller_raw.as_deref(), Some("89245555937"));
    assert_eq!(e.caller.as_deref(), Some("+79245555937"));
    assert_eq!(e.caller_name.as_deref(), Some("Ivan"));
    assert_eq!(e.callee.as_deref(), Some("211553"));
    assert_eq!(e.direction, Some(Direction::Inbound));
    assert_eq!(e.agent.as_deref(), Some("301"));
    assert_eq!(e.agent_raw.as_deref(), Some("SIP/301-0000001a"));
    assert_eq!(e.queue, None);
    assert_eq!(
        e.info.as_deref(),
        Some("Dial(SIP/301&SIP/200@stadionpbx,60,t)")
    );
    assert_eq!(e.data.len(), 21);
    assert_eq!(e.data[4], r#""Ivan" <89245555937>"#);
    assert_eq!(e.data[20], "75");
    assert!(e.event_id.is_empty());
}

#[test]
fn cdr_csv_18_columns_outbound_unanswered_in_local_time() {
    let mut p = parser_in(CdrLayout::CdrCsv, "Europe/Moscow");
    let e = one(&mut p, CSV18);
    assert_eq!(e.ts.to_rfc3339(), "2024-03-01T07:00:00+00:00");
    assert_eq!(e.answered_at, None);
    assert_eq!(e.talk_s, Some(0));
    assert_eq!(e.disposition, Some(Disposition::NoAnswer));
    assert_eq!(e.call_id.as_deref(), Some("1709287200.5"));
    assert_eq!(e.linked_id, None);
    assert_eq!(e.direction, Some(Direction::Outbound));
    assert_eq!(e.agent.as_deref(), Some("201"));
    assert_eq!(e.agent_raw.as_deref(), Some("PJSIP/201-0000a1b2"));
    assert_eq!(e.callee.as_deref(), Some("+79161234567"));
    assert_eq!(e.caller_name.as_deref(), Some("Anna"));
    assert_eq!(e.data[17], "vip");
}

#[test]
fn cdr_csv_optional_column_counts() {
    let base16 = r#""","201","202","from-internal","""A"" <201>","PJSIP/201-00000001","PJSIP/202-00000002","Dial","PJSIP/202","2024-03-01 10:00:00","2024-03-01 10:00:02","2024-03-01 10:00:12",12,10,"ANSWERED","DOCUMENTATION""#;
    let mut p = parser(CdrLayout::CdrCsv);
    let e16 = one(&mut p, base16);
    assert_eq!(
        (e16.call_id.clone(), e16.direction),
        (None, Some(Direction::Internal))
    );
    assert_eq!(e16.agent.as_deref(), Some("201"));
    // 17: uniqueid (loguniqueid) or userfield (loguserfield), told apart by shape
    let e17u = one(&mut p, &format!(r#"{base16},"sys-1709287200.5""#));
    assert_eq!(e17u.call_id.as_deref(), Some("sys-1709287200.5"));
    let e17f = one(&mut p, &format!(r#"{base16},"vip""#));
    assert_eq!(e17f.call_id, None);
    // 19: newcdrcolumns alone
    let e19 = one(&mut p, &format!(r#"{base16},"peer","1709287200.1",4"#));
    assert_eq!(
        (e19.call_id.clone(), e19.linked_id.as_deref()),
        (None, Some("1709287200.1"))
    );
    // 20: uniqueid + newcdrcolumns
    let e20 = one(
        &mut p,
        &format!(r#"{base16},"1709287200.5","","1709287200.1",4"#),
    );
    assert_eq!(
        (e20.call_id.as_deref(), e20.linked_id.as_deref()),
        (Some("1709287200.5"), Some("1709287200.1"))
    );
    let err = p.parse_line(b"\"a\",\"b\"").unwrap_err();
    assert_eq!(
        err,
        CdrError::WrongColumnCount {
            layout: "cdr_csv",
            expected: "16 to 21".into(),
            found: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "layout cdr_csv expects 16 to 21 columns, found 2"
    );
}

#[test]
fn cdr_custom_default_mapping() {
    let mut p = parser_in(CdrLayout::CdrCustomDefault, "Indian/Antananarivo");
    let e = one(&mut p, CUSTOM);
    assert_eq!(
        e.ts.timestamp(),
        1690325492,
        "start is the uniqueid's epoch"
    );
    assert_eq!(e.call_id.as_deref(), Some("1690325492.2"));
    assert_eq!((e.duration_s, e.talk_s), (Some(31), Some(13)));
    assert_eq!(e.caller_name, None);
    assert_eq!(e.caller_raw.as_deref(), Some("client1"));
    assert_eq!(e.direction, Some(Direction::Internal));
    assert_eq!(e.agent.as_deref(), Some("client1"));
    assert_eq!(e.data.len(), 19);
    // the quoted empty answer of an unanswered call
    let unanswered = CUSTOM.replace(r#""2023-07-26 01:51:50""#, r#""""#);
    assert_eq!(one(&mut p, &unanswered).answered_at, None);
    // fractional CDR(duration,f) / CDR(billsec,f) round down
    let frac = CUSTOM.replace(r#""31","13""#, r#""31.870","13.999""#);
    let f = one(&mut p, &frac);
    assert_eq!((f.duration_s, f.talk_s), (Some(31), Some(13)));
    assert!(matches!(
        p.parse_line(CSV21.as_bytes()).unwrap_err(),
        CdrError::WrongColumnCount {
            layout: "cdr_custom_default",
            found: 21,
            ..
        }
    ));
}

#[test]
fn configured_columns() {
    // a FreePBX-style export: calldate, no answer/end columns
    let layout = CdrLayout::columns([
        "calldate",
        "clid",
        "src",
        "dst",
        "dcontext",
        "-",
        "dstchannel",
        "duration",
        "billsec",
        "disposition",
        "uniqueid",
    ])
    .unwrap();
    let mut p = parser(layout.clone());
    let e = one(
        &mut p,
        r#"2024-05-01 12:00:00,"Shop" <89161234567>,89161234567,7000,ext-queues,x,Local/201@from-queue-00000001;1,30,20,ANSWERED,1714564800.7"#,
    );
    assert_eq!(p.layout(), &layout);
    assert_eq!(e.caller_name.as_deref(), Some("Shop"));
    assert_eq!(
        e.ended_at.unwrap().to_rfc3339(),
        "2024-05-01T12:00:30+00:00"
    );
    assert_eq!(
        e.answered_at.unwrap().to_rfc3339(),
        "2024-05-01T12:00:10+00:00"
    );
    assert_eq!(e.direction, Some(Direction::Inbound));
    assert_eq!(e.agent.as_deref(), Some("201"));
    assert!(matches!(
        p.parse_line(b"a,b").unwrap_err(),
        CdrError::WrongColumnCount {
            layout: "columns",
            found: 2,
            ..
        }
    ));
    // an unvalidated Columns layout reports its problem on every record
    let mut bad = parser(CdrLayout::Columns(vec!["start".into(), "nosuch".into()]));
    for _ in 0..2 {
        assert_eq!(
            bad.parse_line(b"x,y").unwrap_err(),
            CdrError::UnknownColumn {
                name: "nosuch".into()
            }
        );
    }
    assert_eq!(bad.parse_line(b"\n").unwrap(), None);
}

#[test]
fn header_row_grandstream() {
    let mut p = parser_in(CdrLayout::HeaderRow, "Asia/Tashkent");
    assert_eq!(p.parse_line(GS_HEADER.as_bytes()).unwrap(), None);
    assert_eq!(p.header().unwrap()[6], "Dest. Channel");
    let e = one(&mut p, GS_QUEUE);
    assert_eq!(e.ts.to_rfc3339(), "2026-07-03T07:28:15+00:00");
    assert_eq!(e.call_id.as_deref(), Some("1783063443.624903"));
    assert_eq!(e.linked_id.as_deref(), Some("1783063443702325-997870032"));
    assert_eq!(e.queue.as_deref(), Some("6500"));
    assert_eq!(e.info.as_deref(), Some("Queue(6500,,,,900,,,)"));
    assert_eq!(e.direction, Some(Direction::Inbound));
    assert_eq!(e.agent.as_deref(), Some("173"));
    assert_eq!(e.caller_name, None);
    assert_eq!(e.data.len(), 26);
    assert_eq!(e.data[25], "");
    // the same header again (a concatenated export) is skipped
    assert_eq!(p.parse_line(GS_HEADER.as_bytes()).unwrap(), None);
    // a record where the header should be
    let mut q = parser(CdrLayout::HeaderRow);
    assert!(matches!(
        q.parse_line(GS_QUEUE.as_bytes()).unwrap_err(),
        CdrError::ExpectedHeader { .. }
    ));
    // a header without any start column
    assert!(matches!(
        q.parse_line(b"src,dst,clid,billsec").unwrap_err(),
        CdrError::MissingStartColumn { .. }
    ));
    assert_eq!(q.parse_line(GS_HEADER.as_bytes()).unwrap(), None);
    assert_eq!(q.layout(), &CdrLayout::HeaderRow);
}

#[test]
fn auto_detection() {
    let mut p = parser(CdrLayout::Auto);
    assert_eq!(p.parse_line(b"\r\n").unwrap(), None);
    assert_eq!(p.layout(), &CdrLayout::Auto);
    assert_eq!(
        p.parse_line(b"garbage,1,2").unwrap_err(),
        CdrError::UndetectedLayout { found: 3 }
    );
    assert_eq!(p.layout(), &CdrLayout::Auto);
    one(&mut p, CSV21);
    assert_eq!(p.layout(), &CdrLayout::CdrCsv);
    one(&mut p, CSV18); // cdr_csv keeps following each record's count

    let mut c = parser(CdrLayout::Auto);
    one(&mut c, CUSTOM);
    assert_eq!(c.layout(), &CdrLayout::CdrCustomDefault);

    let mut g = parser(CdrLayout::Auto);
    assert_eq!(g.parse_line(GS_HEADER.as_bytes()).unwrap(), None);
    assert_eq!(g.layout(), &CdrLayout::HeaderRow);
    assert_eq!(one(&mut g, GS_QUEUE).queue.as_deref(), Some("6500"));

    // a header row in front of cdr_csv records is skipped, not detected
    let mut h = parser(CdrLayout::CdrCsv);
    assert_eq!(h.parse_line(b"accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,billsec,disposition,amaflags").unwrap(), None);
}

#[test]
fn non_utf8_caller_name_uses_fallback_charset() {
    let mut line = br#""","89161234567","201","from-trunk",""""#.to_vec();
    line.extend_from_slice(&[0xC8, 0xE2, 0xE0, 0xED]); // "Иван" in cp1251
    line.extend_from_slice(br#""" <89161234567>","SIP/t-00000001","SIP/201-00000002","Dial","SIP/201","2024-01-01 10:00:00",,"2024-01-01 10:00:05",5,0,"NO ANSWER","DOCUMENTATION""#);
    let mut p = parser(CdrLayout::CdrCsv);
    let e = p.parse_line(&line).unwrap().unwrap();
    assert_eq!(e.caller_name.as_deref(), Some("Иван"));
    assert_eq!(e.data[4], "\"Иван\" <89161234567>");
    assert_eq!(e.data[1], "89161234567");
    let mut koi = CdrParser::new(
        SourceContext {
            fallback_charset: Charset::Koi8R,
            ..ctx("UTC")
        },
        SourceKind::AsteriskCdrCsv,
        CdrLayout::CdrCsv,
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    );
    assert_ne!(
        koi.parse_line(&line)
            .unwrap()
            .unwrap()
            .caller_name
            .as_deref(),
        Some("Иван")
    );
}

#[test]
fn record_split_over_lines_by_raw_newline() {
    let first = r#""","201","*97","from-internal","""A"" <201>","PJSIP/201-00000001","","Playback","line one"#;
    let second = r#"line two","2024-03-01 10:00:00","2024-03-01 10:00:00","2024-03-01 10:00:09",9,9,"ANSWERED","DOCUMENTATION""#;
    let mut buf = format!("{first}\n").into_bytes();
    assert!(!record_complete(&buf));
    let mut p = parser(CdrLayout::CdrCsv);
    assert_eq!(p.parse_line(&buf).unwrap_err(), CdrError::UnterminatedQuote);
    buf.extend_from_slice(format!("{second}\n").as_bytes());
    assert!(record_complete(&buf));
    let e = p.parse_line(&buf).unwrap().unwrap();
    assert_eq!(e.data[8], "line one\nline two");
    assert_eq!(e.info.as_deref(), Some("Playback(line one\nline two)"));
    assert_eq!(e.direction, Some(Direction::Internal));
}

#[test]
fn dates_errors_and_dst() {
    let mut p = parser(CdrLayout::CdrCsv);
    let bad = CSV21.replace("\"2024-01-28 03:39:25\"", "\"28/01/2024 03:39\"");
    let err = p.parse_line(bad.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        CdrError::BadDate {
            column: "start",
            found: "28/01/2024 03:39".into()
        }
    );
    assert!(err.to_string().contains("YYYY-MM-DD HH:MM:SS"), "{err}");
    let empty = CSV21.replace("\"2024-01-28 03:39:25\"", "\"\"");
    assert!(matches!(
        p.parse_line(empty.as_bytes()).unwrap_err(),
        CdrError::BadDate {
            column: "start",
            ..
        }
    ));
    let bad_end = CSV21.replace("\"2024-01-28 03:40:13\"", "\"soon\"");
    assert!(matches!(
        p.parse_line(bad_end.as_bytes()).unwrap_err(),
        CdrError::BadDate { column: "end", .. }
    ));
    let zero_end = CSV21.replace("\"2024-01-28 03:40:13\"", "\"0000-00-00 00:00:00\"");
    assert_eq!(one(&mut p, &zero_end).ended_at, None);
    let epoch = CSV21.replace("\"2024-01-28 03:39:25\"", "\"1706413165.250\"");
    assert_eq!(one(&mut p, &epoch).ts.timestamp_millis(), 1706413165250);

    let mut ny = parser_in(CdrLayout::CdrCsv, "America/New_York");
    let gap = CSV21.replace("\"2024-01-28 03:39:25\"", "\"2024-03-10 02:30:00\"");
    let err = ny.parse_line(gap.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        CdrError::NonexistentLocalTime {
            column: "start",
            found: "2024-03-10 02:30:00".into(),
            tz: "America/New_York".into()
        }
    );
}

#[test]
fn size_limit_and_blank_lines() {
    let mut p = parser(CdrLayout::Auto);
    for blank in [&b""[..], b"\n", b"\r\n", b"   \t\r\n"] {
        assert_eq!(p.parse_line(blank).unwrap(), None);
    }
    let long = vec![b'a'; MAX_RECORD_LEN + 1];
    assert_eq!(
        p.parse_line(&long).unwrap_err(),
        CdrError::TooLong {
            len: MAX_RECORD_LEN + 1,
            max: MAX_RECORD_LEN
        }
    );
}

#[test]
fn garbage_never_panics() {
    let mut rng = split::tests::Lcg(0x5eed);
    let alphabet: &[u8] = b"\",,,\r\n0123456789-: .<>SIP/abcQueue\xA5\xFF\xC8";
    for layout in [
        CdrLayout::Auto,
        CdrLayout::CdrCsv,
        CdrLayout::CdrCustomDefault,
        CdrLayout::HeaderRow,
        CdrLayout::columns([
            "start", "src", "dst", "clid", "answer", "end", "duration", "billsec",
        ])
        .unwrap(),
    ] {
        let mut p = parser_in(layout, "Europe/Moscow");
        for i in 0..20_000 {
            let len = (rng.next() % 300) as usize;
            let line: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| (rng.next() & 0xFF) as u8).collect()
            } else {
                (0..len)
                    .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                    .collect()
            };
            let _ = p.parse_line(&line);
            let _ = record_complete(&line);
        }
        // Mutations of real records: every prefix, and each byte replaced.
        let mut q = parser(CdrLayout::Auto);
        for rec in [CSV21, CSV18, CUSTOM, GS_QUEUE] {
            for cut in 0..rec.len() {
                let _ = q.parse_line(&rec.as_bytes()[..cut]);
            }
            for k in 0..rec.len() {
                let mut m = rec.as_bytes().to_vec();
                m[k] = alphabet[k % alphabet.len()];
                let _ = q.parse_line(&m);
            }
        }
    }
}

#[test]
fn non_ascii_src_and_dst() {
    // Non-ASCII src/dst reach the number normalizer (which once sliced them
    // at bytes 4 and 5 and panicked).
    let mut p = parser(CdrLayout::CdrCsv);
    for (src, dst) in [
        ("Иван", "201"),
        ("sipИ201", "Жанна"),
        ("+7 916 123-45-67 Ж", "tel:Ж"),
    ] {
        let line = CSV18
            .replacen("\"201\"", &format!("\"{src}\""), 1)
            .replacen("\"89161234567\"", &format!("\"{dst}\""), 1);
        let e = one(&mut p, &line);
        assert_eq!(e.caller_raw.as_deref(), Some(src));
        assert_eq!(e.callee_raw.as_deref(), Some(dst));
    }
    let e = one(&mut p, &CSV18.replacen("\"201\"", "\"Иван\"", 1));
    // Letters: an endpoint name, kept as written.
    assert_eq!(e.caller.as_deref(), Some("Иван"));
    let e = one(
        &mut p,
        &CSV18.replacen("\"201\"", "\"+7 916 123-45-67 Ж\"", 1),
    );
    assert_eq!(e.caller.as_deref(), Some("+79161234567"));
}
