//! Parser-level tests: header detection, dates, NULLs, quoting, noise lines,
//! errors and garbage.

use super::*;
use crate::event::{Direction, Disposition};
use crate::phone::NumberConfig;

const HDR: &str =
    "Id;IdChain;ConnectionType;TimeStart;TimeAnswer;TimeStop;AOutNumber;BOutNumber;AStr;ALineNum;BLineNum";
const CHAIN: &str = "6F9619FF-8B86-D011-B42D-00C04FC964FF";

fn parser_in(tz: &str) -> OktellParser {
    OktellParser::new(
        SourceContext {
            timezone: tz.parse().unwrap(),
            ..SourceContext::new("oktell", "pbx1")
        },
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    )
}

fn with_header(header: &str) -> OktellParser {
    let mut p = parser_in("Europe/Moscow");
    assert_eq!(p.parse_line(header.as_bytes()), Ok(None));
    p
}

fn leg_of(p: &mut OktellParser, line: &str) -> OktellLeg {
    p.parse_line(line.as_bytes()).unwrap().unwrap()
}

fn row(ty: u8, answer: &str, stop: &str) -> String {
    format!("7;{CHAIN};{ty};2024-03-01 10:15:00.123;{answer};{stop};89161234567;101;Иван;102;101")
}

#[test]
fn header_each_delimiter_bom_brackets_case() {
    for sep in [";", ",", "\t", "|"] {
        let header = format!(
            "\u{FEFF}[ID]{sep}idchain{sep} [ConnectionType] {sep}TIMESTART{sep}\"TimeStop\"{sep}BLineNum\r\n"
        );
        let mut p = with_header(&header);
        assert_eq!(p.delimiter(), Some(sep.as_bytes()[0]));
        assert_eq!(p.columns().map(<[String]>::len), Some(6));
        let line = [
            "1",
            CHAIN,
            "5",
            "2024-03-01 10:15:00",
            "2024-03-01 10:16:00",
            "101",
        ]
        .join(sep);
        let leg = leg_of(&mut p, &format!("{line}\r\n"));
        assert_eq!((leg.id.as_str(), leg.connection_type), ("1", 5));
        assert_eq!(leg.b_line_num.as_deref(), Some("101"));
        assert_eq!((leg.answer, leg.answer_known), (None, false));
    }
}

#[test]
fn header_errors() {
    let mut p = parser_in("UTC");
    let data = row(5, "NULL", "NULL");
    assert!(matches!(
        p.parse_line(data.as_bytes()),
        Err(OktellError::NoHeader { .. })
    ));
    assert_eq!(
        p.parse_line(b"Id;IdChain;TimeStart;TimeStop"),
        Err(OktellError::MissingColumn {
            name: "ConnectionType"
        })
    );
    assert_eq!(p.parse_line(b"\xFF\xFEI\0d\0"), Err(OktellError::Utf16));
    assert_eq!(p.parse_line(b"I\0d\0;\0"), Err(OktellError::Utf16));
    // still looking for the header: a good one is taken
    assert_eq!(p.parse_line(HDR.as_bytes()), Ok(None));
    assert!(p.parse_line(data.as_bytes()).unwrap().is_some());
}

#[test]
fn date_forms_in_server_zone() {
    let mut p = with_header("Id;IdChain;ConnectionType;TimeStart;TimeAnswer;TimeStop");
    for (start, answer, stop) in [
        (
            "2024-03-01 10:15:00.123",
            "2024-03-01 10:15:05.500",
            "2024-03-01 10:17:05.499",
        ),
        (
            "2024-03-01T10:15:00.123",
            "2024-03-01T10:15:05.5",
            "2024-03-01T10:17:05.4990000",
        ),
        (
            "01.03.2024 10:15:00.123",
            "01.03.2024 10:15:05.500",
            "01.03.2024 10:17:05.499",
        ),
    ] {
        let leg = leg_of(&mut p, &format!("1;{CHAIN};5;{start};{answer};{stop}"));
        assert_eq!(
            leg.start.to_rfc3339(),
            "2024-03-01T07:15:00.123+00:00",
            "{start}"
        );
        assert_eq!(
            leg.answer.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-03-01T07:15:05.500+00:00")
        );
        assert_eq!(
            leg.stop.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-03-01T07:17:05.499+00:00")
        );
        // 119.999 s of talk: truncated
        assert_eq!((leg.talk_s(), leg.duration_s()), (Some(119), Some(125)));
    }
    assert_eq!(
        p.parse_line(format!("1;{CHAIN};5;2024-03-01 10:15:00;yesterday;NULL").as_bytes()),
        Err(OktellError::BadDate {
            column: "TimeAnswer",
            found: "yesterday".into()
        })
    );
}

#[test]
fn dst_gap_names_the_column_and_fold_takes_earlier() {
    let mut p = parser_in("Europe/Berlin");
    p.parse_line(b"Id,IdChain,ConnectionType,TimeStart,TimeAnswer,TimeStop")
        .unwrap();
    let gap = format!("1,{CHAIN},5,2024-03-31 01:59:00,NULL,2024-03-31 02:30:00.000");
    assert_eq!(
        p.parse_line(gap.as_bytes()),
        Err(OktellError::NonexistentLocalTime {
            column: "TimeStop",
            found: "2024-03-31 02:30:00.000".into(),
            tz: "Europe/Berlin".into(),
        })
    );
    let fold = format!("1,{CHAIN},5,2024-10-27 02:30:00,NULL,NULL");
    let leg = leg_of(&mut p, &fold);
    assert_eq!(leg.start.to_rfc3339(), "2024-10-27T00:30:00+00:00");
}

#[test]
fn nulls() {
    let mut p = with_header(
        "Id;IdChain;ConnectionType;TimeStart;TimeAnswer;TimeStop;ReasonStart;AOutNumber;AStr;IsRecorded",
    );
    let leg = leg_of(
        &mut p,
        &format!("1;{CHAIN};4;2024-03-01 10:15:00;NULL;null;;NULL;  ;NULL"),
    );
    assert_eq!((leg.answer, leg.stop, leg.reason_start), (None, None, None));
    assert_eq!(
        (leg.a_out_number, leg.a_str, leg.is_recorded),
        (None, None, None)
    );
    assert_eq!(leg.fields[4], "NULL");
    for (line, column) in [
        (format!("NULL;{CHAIN};4;2024-03-01 10:15:00;;;;;;"), "Id"),
        ("1;;4;2024-03-01 10:15:00;;;;;;".to_string(), "IdChain"),
        (
            format!("1;{CHAIN};NULL;2024-03-01 10:15:00;;;;;;"),
            "ConnectionType",
        ),
        (format!("1;{CHAIN};4;NULL;;;;;;"), "TimeStart"),
    ] {
        assert_eq!(
            p.parse_line(line.as_bytes()),
            Err(OktellError::MissingValue { column })
        );
    }
}

#[test]
fn numbers_and_flags() {
    let mut p =
        with_header("Id;IdChain;ConnectionType;TimeStart;TimeStop;ReasonStart;StopSide;IsRecorded");
    let leg = leg_of(
        &mut p,
        &format!("1;{{{CHAIN}}};5;2024-03-01 10:15:00;NULL;5;1;True"),
    );
    assert_eq!(
        (leg.reason_start, leg.stop_side, leg.is_recorded),
        (Some(5), Some(1), Some(true))
    );
    assert_eq!(leg.chain, CHAIN);
    fn p_line(p: &mut OktellParser, l: &str) -> Result<Option<OktellLeg>, OktellError> {
        p.parse_line(l.as_bytes())
    }
    assert_eq!(
        p_line(
            &mut p,
            &format!("1;{CHAIN};300;2024-03-01 10:15:00;NULL;1;1;1")
        ),
        Err(OktellError::BadNumber {
            column: "ConnectionType",
            found: "300".into()
        })
    );
    assert_eq!(
        p_line(
            &mut p,
            &format!("1;{CHAIN};-1;2024-03-01 10:15:00;NULL;1;1;1")
        ),
        Err(OktellError::BadNumber {
            column: "ConnectionType",
            found: "-1".into()
        })
    );
    assert_eq!(
        p_line(
            &mut p,
            &format!("1;{CHAIN};5;2024-03-01 10:15:00;NULL;x1;1;1")
        ),
        Err(OktellError::BadNumber {
            column: "ReasonStart",
            found: "x1".into()
        })
    );
    assert_eq!(
        p_line(
            &mut p,
            &format!("1;{CHAIN};5;2024-03-01 10:15:00;NULL;1;1;yes")
        ),
        Err(OktellError::BadFlag {
            column: "IsRecorded",
            found: "yes".into()
        })
    );
}

#[test]
fn open_and_closed_legs() {
    let mut p = with_header(HDR);
    let open = leg_of(&mut p, &row(5, "2024-03-01 10:15:06.000", "NULL"));
    assert!(open.is_open());
    assert_eq!(p.to_event(&open), None);
    let closed = leg_of(
        &mut p,
        &row(5, "2024-03-01 10:15:06.000", "2024-03-01 10:17:06.999"),
    );
    assert!(!closed.is_open());
    assert_ne!(open.fingerprint(), closed.fingerprint());
    let e = p.to_event(&closed).unwrap();
    assert_eq!(
        e.ended_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-03-01T07:17:06.999+00:00")
    );
    assert_eq!((e.talk_s, e.duration_s), (Some(120), Some(126)));
    assert_eq!(e.disposition, Some(Disposition::Answered));
    assert_eq!(e.agent.as_deref(), Some("101"));
    assert_eq!(e.data.len(), 11);
    let missed = leg_of(&mut p, &row(4, "NULL", "2024-03-01 10:15:40.000"));
    let e = p.to_event(&missed).unwrap();
    assert_eq!(
        (e.disposition, e.talk_s),
        (Some(Disposition::NoAnswer), None)
    );
}

#[test]
fn every_connection_type_through_the_parser() {
    let mut p = with_header(HDR);
    for (ty, want) in [
        (0, None),
        (1, Some(Direction::Outbound)),
        (2, Some(Direction::Internal)),
        (3, Some(Direction::Internal)),
        (4, Some(Direction::Inbound)),
        (5, Some(Direction::Inbound)),
        (6, Some(Direction::Inbound)),
        (7, Some(Direction::Outbound)),
        (8, Some(Direction::Internal)),
        (42, None),
    ] {
        let leg = leg_of(&mut p, &row(ty, "NULL", "2024-03-01 10:16:00.000"));
        assert_eq!(
            p.to_event(&leg).and_then(|e| e.direction),
            want,
            "type {ty}"
        );
    }
}

#[test]
fn cp1251_names() {
    let mut p = with_header(HDR);
    let mut line =
        format!("7;{CHAIN};5;2024-03-01 10:15:00;NULL;NULL;89161234567;101;").into_bytes();
    line.extend_from_slice(&[0xC8, 0xE2, 0xE0, 0xED, 0xEE, 0xE2, b' ', 0xB8]); // "Иванов ё"
    line.extend_from_slice(b";102;101\r\n");
    let leg = p.parse_line(&line).unwrap().unwrap();
    assert_eq!(leg.a_str.as_deref(), Some("Иванов ё"));
    // UTF-8 stays UTF-8
    let leg = leg_of(&mut p, &row(5, "NULL", "NULL"));
    assert_eq!(leg.a_str.as_deref(), Some("Иван"));
}

#[test]
fn quoted_fields() {
    let mut p = with_header(HDR);
    let line = format!(
        "7;{CHAIN};5;2024-03-01 10:15:00;NULL;NULL;\"89161234567\";101;\"ООО \"\"Ромашка\"\"; склад\";102;101"
    );
    let leg = leg_of(&mut p, &line);
    assert_eq!(leg.a_str.as_deref(), Some("ООО \"Ромашка\"; склад"));
    assert_eq!(leg.a_out_number.as_deref(), Some("89161234567"));
    // an unquoted name with quotes inside is kept as written
    let leg = leg_of(
        &mut p,
        &row(5, "NULL", "NULL").replace("Иван", "ООО \"Ромашка\""),
    );
    assert_eq!(leg.a_str.as_deref(), Some("ООО \"Ромашка\""));
}

#[test]
fn quoted_line_breaks_continue_the_record() {
    let mut p = with_header(HDR);
    let first = format!("7;{CHAIN};5;2024-03-01 10:15:00;NULL;NULL;89161234567;101;\"Иван\r\n");
    assert_eq!(p.parse_line(first.as_bytes()), Ok(None));
    assert!(p.has_pending());
    assert_eq!(p.parse_line(b"\r\n"), Ok(None));
    let leg = p.parse_line(b"Petrov\";102;101\r\n").unwrap().unwrap();
    assert_eq!(leg.a_str.as_deref(), Some("Иван\n\nPetrov"));
    assert_eq!(leg.b_line_num.as_deref(), Some("101"));
    assert!(!p.has_pending());
    assert_eq!(p.finish(), Ok(()));

    // an unbalanced quote gives up after MAX_RECORD_LINES lines, then parsing resumes
    assert_eq!(
        p.parse_line(format!("7;{CHAIN};5;\"oops").as_bytes()),
        Ok(None)
    );
    let good = row(5, "NULL", "NULL");
    for _ in 2..MAX_RECORD_LINES {
        assert_eq!(p.parse_line(good.as_bytes()), Ok(None));
    }
    assert_eq!(
        p.parse_line(good.as_bytes()),
        Err(OktellError::UnterminatedQuote {
            lines: MAX_RECORD_LINES
        })
    );
    assert!(p.parse_line(good.as_bytes()).unwrap().is_some());
    // and at the end of input
    assert_eq!(p.parse_line(b"\"open"), Ok(None));
    assert_eq!(p.finish(), Err(OktellError::UnterminatedQuote { lines: 1 }));
    assert!(!p.has_pending());
}

#[test]
fn sqlcmd_noise_trailing_delimiters_and_repeated_headers() {
    let mut p = with_header("Id,IdChain,ConnectionType,TimeStart,TimeStop");
    for noise in [
        "--,-------,--------------,---------,--------",
        "(5 rows affected)",
        "(затронуто строк: 5)",
        ",,,,",
        "   ",
        "",
    ] {
        assert_eq!(p.parse_line(noise.as_bytes()), Ok(None), "{noise:?}");
    }
    let leg = leg_of(&mut p, &format!("1,{CHAIN},3,2024-03-01 10:15:00,NULL,"));
    assert_eq!(leg.fields.len(), 5);
    assert_eq!(
        p.parse_line(format!("1,{CHAIN},3,2024-03-01 10:15:00").as_bytes()),
        Err(OktellError::WrongFieldCount {
            expected: 5,
            found: 4
        })
    );
    assert_eq!(
        p.parse_line(format!("1,{CHAIN},3,2024-03-01 10:15:00,NULL,x").as_bytes()),
        Err(OktellError::WrongFieldCount {
            expected: 5,
            found: 6
        })
    );
    // a second export appended, with another delimiter and column order
    assert_eq!(
        p.parse_line(b"\xEF\xBB\xBFTimeStop;Id;IdChain;ConnectionType;TimeStart;AStr"),
        Ok(None)
    );
    assert_eq!(p.delimiter(), Some(b';'));
    let leg = leg_of(
        &mut p,
        &format!("NULL;2;{CHAIN};1;2024-03-01 10:15:00;A, B"),
    );
    assert_eq!((leg.id.as_str(), leg.a_str.as_deref()), ("2", Some("A, B")));
    // a header-like line that is not a complete header says why
    assert_eq!(
        p.parse_line(b"Id;IdChain;ConnectionType;TimeStart;AStr;BStr"),
        Err(OktellError::MissingColumn { name: "TimeStop" })
    );
    p.reset();
    assert_eq!(p.columns(), None);
}

#[test]
fn same_row_in_two_formats_has_one_fingerprint() {
    let mut a =
        with_header("Id;IdChain;ConnectionType;TimeStart;TimeAnswer;TimeStop;AStr;BLineNum");
    let mut b = with_header(
        "[BLineNum],[AStr],[TimeStop],[TimeAnswer],[TimeStart],[ConnectionType],[IdChain],[Id]",
    );
    let la = leg_of(
        &mut a,
        "{0f8fad5b-d9cb-469f-a165-70867728950e};{6f9619ff-8b86-d011-b42d-00c04fc964ff};5;01.03.2024 10:15:00.123;01.03.2024 10:15:05.000;NULL;\"Иван; Петров\";101",
    );
    let lb = leg_of(
        &mut b,
        "101,Иван; Петров,NULL,2024-03-01T10:15:05,2024-03-01 10:15:00.1230000,5,6F9619FF-8B86-D011-B42D-00C04FC964FF,0F8FAD5B-D9CB-469F-A165-70867728950E",
    );
    assert_ne!(la.fields, lb.fields);
    assert_eq!(la.fingerprint(), lb.fingerprint());
    assert_eq!(
        OktellLeg {
            fields: vec![],
            ..la
        },
        OktellLeg {
            fields: vec![],
            ..lb
        }
    );
}

#[test]
fn limits_and_stray_line_breaks() {
    let mut p = with_header(HDR);
    let long = vec![b'x'; MAX_LINE_LEN + 1];
    assert_eq!(
        p.parse_line(&long),
        Err(OktellError::TooLong {
            len: MAX_LINE_LEN + 1,
            max: MAX_LINE_LEN
        })
    );
    let mut parser = parser_in("UTC");
    assert!(matches!(
        parser.parse_line(&long),
        Err(OktellError::TooLong { .. })
    ));
    let two = format!("{}\n{}", row(5, "NULL", "NULL"), row(5, "NULL", "NULL"));
    assert_eq!(
        p.parse_line(two.as_bytes()),
        Err(OktellError::MultipleRecords)
    );
    // a lone '\r' inside a line stays in its field
    let leg = leg_of(&mut p, &row(5, "NULL", "NULL").replace("Иван", "Ив\rан"));
    assert_eq!(leg.a_str.as_deref(), Some("Ив\rан"));
}

#[test]
fn errors_read_well() {
    let e = OktellError::BadDate {
        column: "TimeStart",
        found: "x".into(),
    };
    assert!(e
        .to_string()
        .starts_with("TimeStart value \"x\" is not a date-time"));
    let e = OktellError::MissingColumn { name: "IdChain" };
    assert!(e.to_string().contains("no IdChain column"));
    assert_eq!(clip(&"ж".repeat(100)).chars().count(), 81);
}

/// A tiny LCG (Numerical Recipes constants): reproducible noise, no new deps.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }
}

/// 3000 rounds; `OKTELL_FUZZ_ROUNDS` for a longer local run.
fn rounds() -> usize {
    std::env::var("OKTELL_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

#[test]
fn garbage_never_panics() {
    let mut rng = Lcg(0x0C7E_11AB);
    // bytes that steer into the interesting paths
    let alphabet: &[u8] =
        b"0123456789;,\t|\"-:. TNULLnull{}[]IdChainTimeStop\r\n\xEF\xBB\xBF\xC8\xFF\x00";
    let valid = row(5, "2024-03-01 10:15:06.000", "2024-03-01 10:17:06.999");
    for round in 0..rounds() {
        let mut p = if round % 3 == 0 {
            parser_in("America/New_York")
        } else {
            with_header(HDR)
        };
        for _ in 0..8 {
            let len = rng.below(200);
            let line: Vec<u8> = match rng.below(3) {
                0 => (0..len).map(|_| rng.next() as u8).collect(),
                1 => (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect(),
                _ => {
                    let mut v = valid.clone().into_bytes();
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(v.len());
                        v[i] = alphabet[rng.below(alphabet.len())];
                    }
                    v
                }
            };
            if let Ok(Some(leg)) = p.parse_line(&line) {
                let _ = p.to_event(&leg);
                let _ = leg.fingerprint();
            }
        }
        let _ = p.finish();
    }
}
