//! Conformance of the Oktell `A_Stat_Connections_1x1` parser on two realistic
//! exports of the same six calls (no public sample exists; FORMATS.md §d):
//!
//! 1. an SSMS "Save results as" from a Russian-locale Windows: `;`, cp1251
//!    (ANSI), CRLF, `DD.MM.YYYY` dates, `NULL`s, strings with the list
//!    separator or quotes quoted ("Quote strings containing list separators");
//! 2. `sqlcmd -S oktell -d oktell -s "," -W -f 65001 -Q "SELECT … ORDER BY
//!    TimeStart"`: `,`, UTF-8, LF, ISO dates, the dashed rule under the header
//!    and the `(10 rows affected)` trailer, columns in another order.
//!
//! The calls (2024-03-01, server time Europe/Moscow = UTC+3):
//! - C1 inbound, answered: IVR leg (type 4) then operator 101 (type 5);
//! - C2 inbound, abandoned in the IVR (type 4 only, never answered);
//! - C3 outbound from 102 (type 1);
//! - C4 internal 101 → 103 (type 3);
//! - C5 inbound transferred: IVR, operator 101 (ReasonStart 1), then 103
//!   after the FLASH transfer (ReasonStart 5);
//! - C6 inbound, operator 102 still talking: its type-5 leg is open (TimeStop NULL).

use calltrail_parsers::oktell::{OktellLeg, OktellParser};
use calltrail_parsers::phone::NumberConfig;
use calltrail_parsers::{
    AgentResolver, Charset, Direction, Disposition, Event, NumberNormalizer, SourceContext,
};
use std::collections::BTreeMap;

/// Written here in UTF-8 with LF; the test converts it to cp1251 with CRLF.
const SSMS_RU: &str = "\
Id;IdChain;ConnectionType;TimeStart;TimeAnswer;TimeStop;ReasonStart;ReasonStop;StopSide;AOutNumber;BOutNumber;AStr;BStr;ALineID;BLineID;ALineNum;BLineNum;ANumberDialed;IsRecorded
0F8FAD5B-D9CB-469F-A165-70867728950E;3F2504E0-4F89-41D3-9A0C-0305E82C3301;4;01.03.2024 10:15:00.123;01.03.2024 10:15:00.250;01.03.2024 10:15:21.480;1;2;1;89161234567;NULL;Иванов Иван;Главное меню;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;NULL;81;IVR;74951234567;0
7D444840-9DC0-41AB-B7A2-0F6F64E7F2B0;3F2504E0-4F89-41D3-9A0C-0305E82C3301;5;01.03.2024 10:15:21.480;01.03.2024 10:15:27.733;01.03.2024 10:18:32.901;1;0;0;89161234567;101;Иванов Иван;Петрова Анна;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;5C3A9E1F-2B4D-4F6A-8C0E-1D3F5B7A9C2E;81;101;74951234567;1
2C5EA4C0-4067-41FB-B4F8-B2B4A9D3C6E1;7C9E6679-7425-40DE-944B-E07FC1F90AE7;4;01.03.2024 10:20:10.007;NULL;01.03.2024 10:20:48.560;1;1;0;84997654321;NULL;NULL;Главное меню;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;NULL;82;IVR;74951234567;0
A8098C1A-F86E-41D5-B5F2-6E1C7B0A4D32;1B4E28BA-2FA1-41D2-883F-0016D3CCA427;1;01.03.2024 10:25:03.300;01.03.2024 10:25:15.040;01.03.2024 10:26:17.500;1;0;1;102;89035556677;Сидоров Пётр;NULL;6D4B0F2A-3C5E-4A7B-9D1F-2E4A6C8B0D3F;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;102;81;89035556677;1
6BA7B810-9DAD-41D1-80B4-00C04FD430C8;9B2E4F0C-5A1D-4E7B-8C3F-2D6A1E0B7F45;3;01.03.2024 10:30:00.000;01.03.2024 10:30:04.250;01.03.2024 10:31:10.100;1;0;0;101;103;Петрова Анна;Кузнецова Мария;5C3A9E1F-2B4D-4F6A-8C0E-1D3F5B7A9C2E;7E5C1A3B-4D6F-4B8C-AE2A-3F5B7D9C1E4A;101;103;103;1
4E1F5A2B-8C3D-4F6E-9A7B-1C2D3E4F5A6B;E4D2C1B0-8F7A-4C3D-9E2B-1A0F5D6C7B88;4;01.03.2024 10:40:00.500;01.03.2024 10:40:00.620;01.03.2024 10:40:12.900;1;2;1;89261112233;NULL;\"ООО \"\"Ромашка\"\"\";\"Отдел продаж; линия 2\";8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;NULL;81;IVR;74951234568;0
B1C2D3E4-F5A6-4B7C-8D9E-0F1A2B3C4D5E;E4D2C1B0-8F7A-4C3D-9E2B-1A0F5D6C7B88;5;01.03.2024 10:40:12.900;01.03.2024 10:40:18.000;01.03.2024 10:42:30.250;1;5;1;89261112233;101;\"ООО \"\"Ромашка\"\"\";Петрова Анна;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;5C3A9E1F-2B4D-4F6A-8C0E-1D3F5B7A9C2E;81;101;74951234568;1
C9D8E7F6-A5B4-4C3D-9E2F-1A0B9C8D7E6F;E4D2C1B0-8F7A-4C3D-9E2B-1A0F5D6C7B88;5;01.03.2024 10:42:30.250;01.03.2024 10:42:36.100;01.03.2024 10:47:01.999;5;0;0;89261112233;103;\"ООО \"\"Ромашка\"\"\";Кузнецова Мария;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;7E5C1A3B-4D6F-4B8C-AE2A-3F5B7D9C1E4A;81;103;74951234568;1
D1E2F3A4-B5C6-4D7E-8F9A-0B1C2D3E4F5A;5A6B7C8D-9E0F-4A1B-8C2D-3E4F5A6B7C9D;4;01.03.2024 10:50:00.000;01.03.2024 10:50:00.100;01.03.2024 10:50:09.300;1;2;1;89167778899;NULL;NULL;Главное меню;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;NULL;81;IVR;74951234567;0
F0E1D2C3-B4A5-4968-8776-655443322110;5A6B7C8D-9E0F-4A1B-8C2D-3E4F5A6B7C9D;5;01.03.2024 10:50:09.300;01.03.2024 10:50:14.000;NULL;1;NULL;NULL;89167778899;102;NULL;Сидоров Пётр;8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A;6D4B0F2A-3C5E-4A7B-9D1F-2E4A6C8B0D3F;81;102;74951234567;1
";

const SQLCMD: &str = "\
Id,IdChain,ConnectionType,TimeStart,TimeAnswer,TimeStop,AOutNumber,BOutNumber,ANumberDialed,AStr,BStr,ALineNum,BLineNum,ALineID,BLineID,ReasonStart,ReasonStop,StopSide,IsRecorded
--,-------,--------------,---------,----------,--------,----------,----------,-------------,----,----,--------,--------,-------,-------,-----------,----------,--------,----------
0F8FAD5B-D9CB-469F-A165-70867728950E,3F2504E0-4F89-41D3-9A0C-0305E82C3301,4,2024-03-01 10:15:00.123,2024-03-01 10:15:00.250,2024-03-01 10:15:21.480,89161234567,NULL,74951234567,Иванов Иван,Главное меню,81,IVR,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,NULL,1,2,1,0
7D444840-9DC0-41AB-B7A2-0F6F64E7F2B0,3F2504E0-4F89-41D3-9A0C-0305E82C3301,5,2024-03-01 10:15:21.480,2024-03-01 10:15:27.733,2024-03-01 10:18:32.901,89161234567,101,74951234567,Иванов Иван,Петрова Анна,81,101,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,5C3A9E1F-2B4D-4F6A-8C0E-1D3F5B7A9C2E,1,0,0,1
2C5EA4C0-4067-41FB-B4F8-B2B4A9D3C6E1,7C9E6679-7425-40DE-944B-E07FC1F90AE7,4,2024-03-01 10:20:10.007,NULL,2024-03-01 10:20:48.560,84997654321,NULL,74951234567,NULL,Главное меню,82,IVR,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,NULL,1,1,0,0
A8098C1A-F86E-41D5-B5F2-6E1C7B0A4D32,1B4E28BA-2FA1-41D2-883F-0016D3CCA427,1,2024-03-01 10:25:03.300,2024-03-01 10:25:15.040,2024-03-01 10:26:17.500,102,89035556677,89035556677,Сидоров Пётр,NULL,102,81,6D4B0F2A-3C5E-4A7B-9D1F-2E4A6C8B0D3F,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,1,0,1,1
6BA7B810-9DAD-41D1-80B4-00C04FD430C8,9B2E4F0C-5A1D-4E7B-8C3F-2D6A1E0B7F45,3,2024-03-01 10:30:00.000,2024-03-01 10:30:04.250,2024-03-01 10:31:10.100,101,103,103,Петрова Анна,Кузнецова Мария,101,103,5C3A9E1F-2B4D-4F6A-8C0E-1D3F5B7A9C2E,7E5C1A3B-4D6F-4B8C-AE2A-3F5B7D9C1E4A,1,0,0,1
4E1F5A2B-8C3D-4F6E-9A7B-1C2D3E4F5A6B,E4D2C1B0-8F7A-4C3D-9E2B-1A0F5D6C7B88,4,2024-03-01 10:40:00.500,2024-03-01 10:40:00.620,2024-03-01 10:40:12.900,89261112233,NULL,74951234568,ООО \"Ромашка\",Отдел продаж; линия 2,81,IVR,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,NULL,1,2,1,0
B1C2D3E4-F5A6-4B7C-8D9E-0F1A2B3C4D5E,E4D2C1B0-8F7A-4C3D-9E2B-1A0F5D6C7B88,5,2024-03-01 10:40:12.900,2024-03-01 10:40:18.000,2024-03-01 10:42:30.250,89261112233,101,74951234568,ООО \"Ромашка\",Петрова Анна,81,101,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,5C3A9E1F-2B4D-4F6A-8C0E-1D3F5B7A9C2E,1,5,1,1
C9D8E7F6-A5B4-4C3D-9E2F-1A0B9C8D7E6F,E4D2C1B0-8F7A-4C3D-9E2B-1A0F5D6C7B88,5,2024-03-01 10:42:30.250,2024-03-01 10:42:36.100,2024-03-01 10:47:01.999,89261112233,103,74951234568,ООО \"Ромашка\",Кузнецова Мария,81,103,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,7E5C1A3B-4D6F-4B8C-AE2A-3F5B7D9C1E4A,5,0,0,1
D1E2F3A4-B5C6-4D7E-8F9A-0B1C2D3E4F5A,5A6B7C8D-9E0F-4A1B-8C2D-3E4F5A6B7C9D,4,2024-03-01 10:50:00.000,2024-03-01 10:50:00.100,2024-03-01 10:50:09.300,89167778899,NULL,74951234567,NULL,Главное меню,81,IVR,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,NULL,1,2,1,0
F0E1D2C3-B4A5-4968-8776-655443322110,5A6B7C8D-9E0F-4A1B-8C2D-3E4F5A6B7C9D,5,2024-03-01 10:50:09.300,2024-03-01 10:50:14.000,NULL,89167778899,102,74951234567,NULL,Сидоров Пётр,81,102,8A1F3C5E-7B9D-4E2F-A1C3-5E7F9B1D3F5A,6D4B0F2A-3C5E-4A7B-9D1F-2E4A6C8B0D3F,1,NULL,NULL,1

(10 rows affected)
";

const C1: &str = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";
const C2: &str = "7C9E6679-7425-40DE-944B-E07FC1F90AE7";
const C3: &str = "1B4E28BA-2FA1-41D2-883F-0016D3CCA427";
const C4: &str = "9B2E4F0C-5A1D-4E7B-8C3F-2D6A1E0B7F45";
const C5: &str = "E4D2C1B0-8F7A-4C3D-9E2B-1A0F5D6C7B88";
const C6: &str = "5A6B7C8D-9E0F-4A1B-8C2D-3E4F5A6B7C9D";

fn parser() -> OktellParser {
    OktellParser::new(
        SourceContext {
            timezone: "Europe/Moscow".parse().unwrap(),
            fallback_charset: Charset::Cp1251,
            ..SourceContext::new("oktell-msk", "oktell1")
        },
        NumberNormalizer::new(NumberConfig {
            default_region: "RU".into(),
            ..NumberConfig::default()
        })
        .unwrap(),
        AgentResolver::new([
            ("101".to_string(), "petrova".to_string()),
            ("102".to_string(), "sidorov".to_string()),
            ("103".to_string(), "kuznetsova".to_string()),
        ]),
    )
}

/// Feeds `bytes` line by line as a file tailer would; every line must parse.
fn read(bytes: &[u8]) -> (Vec<OktellLeg>, Vec<Event>) {
    let mut p = parser();
    let (mut legs, mut events) = (Vec::new(), Vec::new());
    for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        match p.parse_line(line) {
            Ok(Some(leg)) => {
                if let Some(ev) = p.to_event(&leg) {
                    events.push(ev);
                }
                legs.push(leg);
            }
            Ok(None) => {}
            Err(e) => panic!("line {}: {e}", n + 1),
        }
    }
    p.finish().unwrap();
    (legs, events)
}

fn ssms_bytes() -> Vec<u8> {
    let text = SSMS_RU.replace('\n', "\r\n");
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&text);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the fixture must really be cp1251"
    );
    bytes.into_owned()
}

/// What one event must look like.
struct Want {
    chain: &'static str,
    direction: Direction,
    agent: Option<&'static str>,
    caller: &'static str,
    talk_s: Option<u32>,
    duration_s: u32,
    ts: &'static str,
    answered_at: Option<&'static str>,
    ended_at: &'static str,
}

const WANT: [Want; 9] = [
    Want {
        chain: C1,
        direction: Direction::Inbound,
        agent: None,
        caller: "+79161234567",
        talk_s: Some(21),
        duration_s: 21,
        ts: "2024-03-01T07:15:00.123Z",
        answered_at: Some("2024-03-01T07:15:00.250Z"),
        ended_at: "2024-03-01T07:15:21.480Z",
    },
    Want {
        chain: C1,
        direction: Direction::Inbound,
        agent: Some("petrova"),
        caller: "+79161234567",
        talk_s: Some(185),
        duration_s: 191,
        ts: "2024-03-01T07:15:21.480Z",
        answered_at: Some("2024-03-01T07:15:27.733Z"),
        ended_at: "2024-03-01T07:18:32.901Z",
    },
    Want {
        chain: C2,
        direction: Direction::Inbound,
        agent: None,
        caller: "+74997654321",
        talk_s: None,
        duration_s: 38,
        ts: "2024-03-01T07:20:10.007Z",
        answered_at: None,
        ended_at: "2024-03-01T07:20:48.560Z",
    },
    Want {
        chain: C3,
        direction: Direction::Outbound,
        agent: Some("sidorov"),
        caller: "102",
        talk_s: Some(62),
        duration_s: 74,
        ts: "2024-03-01T07:25:03.300Z",
        answered_at: Some("2024-03-01T07:25:15.040Z"),
        ended_at: "2024-03-01T07:26:17.500Z",
    },
    Want {
        chain: C4,
        direction: Direction::Internal,
        agent: Some("petrova"),
        caller: "101",
        talk_s: Some(65),
        duration_s: 70,
        ts: "2024-03-01T07:30:00Z",
        answered_at: Some("2024-03-01T07:30:04.250Z"),
        ended_at: "2024-03-01T07:31:10.100Z",
    },
    Want {
        chain: C5,
        direction: Direction::Inbound,
        agent: None,
        caller: "+79261112233",
        talk_s: Some(12),
        duration_s: 12,
        ts: "2024-03-01T07:40:00.500Z",
        answered_at: Some("2024-03-01T07:40:00.620Z"),
        ended_at: "2024-03-01T07:40:12.900Z",
    },
    Want {
        chain: C5,
        direction: Direction::Inbound,
        agent: Some("petrova"),
        caller: "+79261112233",
        talk_s: Some(132),
        duration_s: 137,
        ts: "2024-03-01T07:40:12.900Z",
        answered_at: Some("2024-03-01T07:40:18Z"),
        ended_at: "2024-03-01T07:42:30.250Z",
    },
    Want {
        chain: C5,
        direction: Direction::Inbound,
        agent: Some("kuznetsova"),
        caller: "+79261112233",
        talk_s: Some(265),
        duration_s: 271,
        ts: "2024-03-01T07:42:30.250Z",
        answered_at: Some("2024-03-01T07:42:36.100Z"),
        ended_at: "2024-03-01T07:47:01.999Z",
    },
    Want {
        chain: C6,
        direction: Direction::Inbound,
        agent: None,
        caller: "+79167778899",
        talk_s: Some(9),
        duration_s: 9,
        ts: "2024-03-01T07:50:00Z",
        answered_at: Some("2024-03-01T07:50:00.100Z"),
        ended_at: "2024-03-01T07:50:09.300Z",
    },
];

fn utc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The assertions both exports must pass.
fn check(legs: &[OktellLeg], events: &[Event]) {
    assert_eq!(legs.len(), 10);
    assert_eq!(events.len(), WANT.len());

    // the open leg: operator 102 still talking on C6, no event yet
    let open: Vec<&OktellLeg> = legs.iter().filter(|l| l.is_open()).collect();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].chain.as_str(), open[0].connection_type), (C6, 5));
    assert_eq!(open[0].agent_line(), Some("102"));
    assert!(open[0].answer.is_some());

    for (i, (e, w)) in events.iter().zip(WANT.iter()).enumerate() {
        let at = format!("event {i} ({})", e.call_id.as_deref().unwrap_or("?"));
        assert_eq!(e.kind.as_str(), "call_record", "{at}");
        assert_eq!(e.verb.as_ref(), "OKTELL", "{at}");
        assert_eq!(e.source.as_ref(), "oktell-msk", "{at}");
        assert_eq!(e.linked_id.as_deref(), Some(w.chain), "{at}");
        assert_eq!(e.call_id.as_deref(), Some(legs[i].id.as_str()), "{at}");
        assert_eq!(e.direction, Some(w.direction), "{at}");
        assert_eq!(e.agent.as_deref(), w.agent, "{at}");
        assert_eq!(e.caller.as_deref(), Some(w.caller), "{at}");
        assert_eq!(e.talk_s, w.talk_s, "{at}");
        assert_eq!(e.duration_s, Some(w.duration_s), "{at}");
        assert_eq!(utc(e.ts), w.ts, "{at}");
        assert_eq!(e.answered_at.map(utc).as_deref(), w.answered_at, "{at}");
        assert_eq!(e.ended_at.map(utc).as_deref(), Some(w.ended_at), "{at}");
        let disposition = if w.answered_at.is_some() {
            Disposition::Answered
        } else {
            Disposition::NoAnswer
        };
        assert_eq!(e.disposition, Some(disposition), "{at}");
        assert_eq!(e.queue, None, "{at}");
        assert_eq!(e.data.len(), 19, "{at}");
    }

    // C1: the IVR leg carries the DID and the cp1251 name; the operator leg the agent's line
    let (ivr, op) = (&events[0], &events[1]);
    assert_eq!(ivr.info.as_deref(), Some("74951234567"));
    assert_eq!(ivr.callee.as_deref(), Some("+74951234567"));
    assert_eq!(ivr.caller_name.as_deref(), Some("Иванов Иван"));
    assert_eq!(ivr.caller_raw.as_deref(), Some("89161234567"));
    assert_eq!(
        (op.agent_raw.as_deref(), op.callee.as_deref()),
        (Some("101"), Some("101"))
    );
    assert_eq!(op.info, None);
    // C3: outbound to a mobile, from extension 102
    assert_eq!(events[3].callee.as_deref(), Some("+79035556677"));
    assert_eq!(events[3].caller_name.as_deref(), Some("Сидоров Пётр"));
    // C4: internal, extension to extension
    assert_eq!(events[4].callee.as_deref(), Some("103"));
    // C5: the quoted company name, the second operator leg came back from FLASH
    assert_eq!(events[6].caller_name.as_deref(), Some("ООО \"Ромашка\""));
    assert_eq!(events[5].info.as_deref(), Some("74951234568"));
    assert_eq!(legs[5].b_str.as_deref(), Some("Отдел продаж; линия 2"));
    assert_eq!(
        (legs[6].reason_start, legs[6].reason_stop),
        (Some(1), Some(5))
    );
    assert_eq!(legs[7].reason_start, Some(5));

    // What a consumer sees per call: who answered the inbound chains.
    let mut answered_by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in events {
        let chain = e.linked_id.as_deref().unwrap_or_default();
        let entry = answered_by.entry(chain).or_default();
        if e.direction == Some(Direction::Inbound) && e.disposition == Some(Disposition::Answered) {
            entry.extend(e.agent.as_deref());
        }
    }
    assert_eq!(answered_by[C1], ["petrova"]);
    assert!(answered_by[C2].is_empty(), "C2 was abandoned");
    assert_eq!(answered_by[C5], ["petrova", "kuznetsova"]);
    assert!(
        answered_by[C6].is_empty(),
        "C6's operator leg is still open"
    );
}

#[test]
fn ssms_russian_locale_cp1251_export() {
    let (legs, events) = read(&ssms_bytes());
    check(&legs, &events);
    assert_eq!(events[1].data[12], "Петрова Анна");
    assert_eq!(events[0].data[4], "01.03.2024 10:15:00.250");
}

#[test]
fn sqlcmd_comma_export() {
    let (legs, events) = read(SQLCMD.as_bytes());
    check(&legs, &events);
    assert_eq!(events[0].data[3], "2024-03-01 10:15:00.123");
}

#[test]
fn both_exports_describe_the_same_legs() {
    let (ssms_legs, ssms_events) = read(&ssms_bytes());
    let (cmd_legs, cmd_events) = read(SQLCMD.as_bytes());
    for (a, b) in ssms_legs.iter().zip(&cmd_legs) {
        assert_eq!(a.fingerprint(), b.fingerprint(), "leg {}", a.id);
        let strip = |l: &OktellLeg| OktellLeg {
            fields: Vec::new(),
            ..l.clone()
        };
        assert_eq!(strip(a), strip(b));
    }
    for (a, b) in ssms_events.iter().zip(&cmd_events) {
        assert_eq!(
            Event {
                data: Vec::new(),
                ..a.clone()
            },
            Event {
                data: Vec::new(),
                ..b.clone()
            }
        );
    }
}

#[test]
fn a_re_read_sees_the_open_leg_close() {
    // The next export of the same window: C6's operator leg has ended.
    let later = SQLCMD.replace(
        "2024-03-01 10:50:14.000,NULL,89167778899",
        "2024-03-01 10:50:14.000,2024-03-01 10:53:44.020,89167778899",
    );
    let (before, _) = read(SQLCMD.as_bytes());
    let (after, events) = read(later.as_bytes());
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.fingerprint() != b.fingerprint())
        .map(|(_, b)| b.id.as_str())
        .collect();
    assert_eq!(changed, ["F0E1D2C3-B4A5-4968-8776-655443322110"]);
    let last = events.last().unwrap();
    assert_eq!(last.call_id.as_deref(), Some(changed[0]));
    assert_eq!(last.agent.as_deref(), Some("sidorov"));
    assert_eq!(last.talk_s, Some(210));
    assert_eq!(
        last.ended_at.map(utc).as_deref(),
        Some("2024-03-01T07:53:44.020Z")
    );
}
