//! Unit tests of the AMI client: the rendered Originate byte for byte, every
//! injection attempt refused, the framing rules, and the client against a
//! scripted TCP peer that replays what a real Asterisk 13 sent
//! (`shared/reference/asterisk-probes`: banner, login, Originate responses,
//! events interleaved with replies, `OriginateResponse` per reason).
//!
//! The peer has its own line reader and records every message it got, so
//! the tests can count what was sent (never twice, nothing re-sent after a
//! reconnect).

use super::frame::{FrameError, FrameReader};
use super::*;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------
// Rendering and validation
// ---------------------------------------------------------------------------

fn sample() -> Originate {
    Originate {
        action_id: "cb-42.1".into(),
        channel: "Local/201@from-internal/n".into(),
        context: "calltrail-callback".into(),
        exten: "s".into(),
        priority: 1,
        timeout_ms: 30_000,
        caller_id: Some(CallerId {
            name: "Иван Петров".into(),
            number: "+79161234567".into(),
        }),
        variables: vec![
            ("CT_EPISODE".into(), "ep42".into()),
            ("CT_NUMBER".into(), "+79161234567".into()),
        ],
        account: Some("callback".into()),
    }
}

fn with(f: impl FnOnce(&mut Originate)) -> Originate {
    let mut o = sample();
    f(&mut o);
    o
}

#[track_caller]
fn rejects(o: &Originate, field: Field, reason: Reason) {
    match o.render() {
        Err(AmiError::Invalid {
            field: f,
            reason: r,
        }) => assert_eq!((f, r), (field, reason), "{o:?}"),
        other => panic!("expected a rejection of {field}, got {other:?}"),
    }
}

/// Any rejection of `field`, whatever the reason.
#[track_caller]
fn rejects_field(o: &Originate, field: Field) {
    match o.render() {
        Err(AmiError::Invalid { field: f, .. }) => assert_eq!(f, field, "{o:?}"),
        other => panic!("expected a rejection of {field}, got {other:?}"),
    }
}

#[test]
fn renders_byte_for_byte() {
    let expected = "Action: Originate\r\n\
                    ActionID: cb-42.1\r\n\
                    Channel: Local/201@from-internal/n\r\n\
                    Context: calltrail-callback\r\n\
                    Exten: s\r\n\
                    Priority: 1\r\n\
                    Timeout: 30000\r\n\
                    CallerID: \"Иван Петров\" <+79161234567>\r\n\
                    Variable: CT_EPISODE=ep42\r\n\
                    Variable: CT_NUMBER=+79161234567\r\n\
                    Account: callback\r\n\
                    Async: true\r\n\
                    \r\n";
    assert_eq!(sample().render().expect("valid"), expected);
}

#[test]
fn renders_minimal_action() {
    let o = with(|o| {
        o.channel = "PJSIP/201".into();
        o.caller_id = Some(CallerId {
            name: String::new(),
            number: "201".into(),
        });
        o.variables.clear();
        o.account = None;
    });
    assert_eq!(
        o.render().expect("valid"),
        "Action: Originate\r\nActionID: cb-42.1\r\nChannel: PJSIP/201\r\n\
         Context: calltrail-callback\r\nExten: s\r\nPriority: 1\r\nTimeout: 30000\r\n\
         CallerID: <201>\r\nAsync: true\r\n\r\n"
    );
    let o = with(|o| {
        o.caller_id = None;
        o.variables.clear();
        o.account = None;
    });
    assert!(!o.render().expect("valid").contains("CallerID"));
}

#[test]
fn accepts_the_channel_shapes() {
    for channel in [
        "Local/201@from-internal/n",
        "Local/201@from-internal",
        "PJSIP/201",
        "PJSIP/79161234567@trunk",
        "SIP/201",
        "DAHDI/g1/79161234567",
        "IAX2/provider/79161234567",
    ] {
        let o = with(|o| o.channel = channel.into());
        assert!(o.render().is_ok(), "{channel}");
    }
}

#[test]
fn refuses_line_breaks_and_nul_in_every_field() {
    for bad in ["\r", "\n", "\r\n", "\0"] {
        let c = bad.chars().next().expect("one char");
        let cases: Vec<(Originate, Field)> = vec![
            (
                with(|o| o.action_id = format!("cb{bad}Action: Command")),
                Field::ActionId,
            ),
            (
                with(|o| o.channel = format!("PJSIP/201{bad}")),
                Field::Channel,
            ),
            (
                with(|o| o.context = format!("ctx{bad}Application: System")),
                Field::Context,
            ),
            (with(|o| o.exten = format!("s{bad}")), Field::Exten),
            (
                with(|o| {
                    o.caller_id = Some(CallerId {
                        name: format!("Ivan{bad}Variable: X=1"),
                        number: "201".into(),
                    })
                }),
                Field::CallerIdName,
            ),
            (
                with(|o| {
                    o.caller_id = Some(CallerId {
                        name: String::new(),
                        number: format!("201{bad}"),
                    })
                }),
                Field::CallerIdNum,
            ),
            (
                with(|o| o.variables = vec![(format!("CT{bad}"), "x".into())]),
                Field::VarName(0),
            ),
            (
                with(|o| o.variables = vec![("CT".into(), format!("x{bad}\r\nAction: Originate"))]),
                Field::VarValue("CT".into()),
            ),
            (
                with(|o| o.account = Some(format!("acc{bad}"))),
                Field::Account,
            ),
        ];
        for (o, field) in cases {
            rejects(&o, field, Reason::ControlChar(c));
        }
    }
}

#[test]
fn refuses_other_control_characters() {
    for c in ['\t', '\u{7f}', '\u{85}', '\u{2028}', '\u{1b}'] {
        rejects(
            &with(|o| o.variables = vec![("CT".into(), format!("a{c}b"))]),
            Field::VarValue("CT".into()),
            Reason::ControlChar(c),
        );
        rejects(
            &with(|o| {
                o.caller_id = Some(CallerId {
                    name: format!("a{c}b"),
                    number: "201".into(),
                })
            }),
            Field::CallerIdName,
            Reason::ControlChar(c),
        );
    }
}

#[test]
fn refuses_variable_value_separators_and_substitutions() {
    let var = |v: &str| with(|o| o.variables = vec![("CT_NAME".into(), v.into())]);
    let field = Field::VarValue("CT_NAME".into());
    for (value, c) in [
        ("a,CT_OTHER=1", ','),
        ("${SHELL(rm -rf /)}", '$'),
        ("$[1+1]", '$'),
        ("a\"b", '"'),
        ("a\\b", '\\'),
        ("[x", '['),
        ("x]", ']'),
        ("f(x", '('),
        ("x)", ')'),
        ("a;b", ';'),
        ("a|b", '|'),
        ("a&b", '&'),
    ] {
        rejects(&var(value), field.clone(), Reason::ForbiddenChar(c));
    }
    rejects(&var(" x"), field.clone(), Reason::Blank);
    rejects(&var("x "), field.clone(), Reason::Blank);
    rejects(
        &var(&"x".repeat(10 * 1024)),
        field.clone(),
        Reason::TooLong {
            len: 10 * 1024,
            max: MAX_VAR_VALUE_BYTES,
        },
    );
    // Printable text, `=` and non-ASCII are fine.
    assert!(var("Иван = VIP +7 916").render().is_ok());
    assert!(var("").render().is_ok());
}

#[test]
fn refuses_bad_variable_names() {
    let name = |n: &str| with(|o| o.variables = vec![(n.into(), "x".into())]);
    rejects(
        &name("HASH(resp,x)"),
        Field::VarName(0),
        Reason::FunctionWrite,
    );
    rejects(
        &name("SHELL(rm -rf /)"),
        Field::VarName(0),
        Reason::FunctionWrite,
    );
    rejects(&name("CT)"), Field::VarName(0), Reason::FunctionWrite);
    rejects(
        &name("HASH(resp"),
        Field::VarName(0),
        Reason::ForbiddenChar('('),
    );
    rejects(
        &name("ct_lower"),
        Field::VarName(0),
        Reason::ForbiddenChar('c'),
    );
    rejects(
        &name("_CT"),
        Field::VarName(0),
        Reason::Pattern("^[A-Z][A-Z0-9_]{0,63}$"),
    );
    rejects(
        &name("1CT"),
        Field::VarName(0),
        Reason::Pattern("^[A-Z][A-Z0-9_]{0,63}$"),
    );
    rejects(&name("CT-X"), Field::VarName(0), Reason::ForbiddenChar('-'));
    rejects(&name("CT=X"), Field::VarName(0), Reason::ForbiddenChar('='));
    rejects(&name("${X}"), Field::VarName(0), Reason::ForbiddenChar('$'));
    rejects(&name(""), Field::VarName(0), Reason::Empty);
    rejects(
        &name(&"A".repeat(65)),
        Field::VarName(0),
        Reason::TooLong { len: 65, max: 64 },
    );
    assert!(name(&"A".repeat(64)).render().is_ok());
    rejects(
        &with(|o| {
            o.variables = vec![("CT".into(), "1".into()), ("CT".into(), "2".into())];
        }),
        Field::VarName(1),
        Reason::Duplicate,
    );
    rejects(
        &with(|o| {
            o.variables = (0..=MAX_VARS)
                .map(|i| (format!("V{i}"), "x".into()))
                .collect();
        }),
        Field::Variables,
        Reason::TooMany {
            count: MAX_VARS + 1,
            max: MAX_VARS,
        },
    );
}

#[test]
fn refuses_bad_caller_ids() {
    let cid = |name: &str, number: &str| {
        with(|o| {
            o.caller_id = Some(CallerId {
                name: name.into(),
                number: number.into(),
            })
        })
    };
    for number in [
        "12",
        "+12",
        "123456789012345678901",
        "12a4",
        "++123",
        "123 456",
        "${CALLERID(num)}",
        "201&PJSIP/666",
        "201,tT",
    ] {
        rejects_field(&cid("", number), Field::CallerIdNum);
    }
    assert!(cid("", "+12345678901234567890").render().is_ok());
    rejects(&cid("", ""), Field::CallerIdNum, Reason::Empty);
    for (name, c) in [
        ("Ivan\" <666>", '"'),
        ("<666>", '<'),
        ("a>", '>'),
        ("a\\b", '\\'),
        ("${SHELL(rm -rf /)}", '$'),
        ("$[1+1]", '$'),
    ] {
        rejects(
            &cid(name, "201"),
            Field::CallerIdName,
            Reason::ForbiddenChar(c),
        );
    }
    rejects(&cid(" Ivan", "201"), Field::CallerIdName, Reason::Blank);
    rejects(
        &cid(&"я".repeat(41), "201"),
        Field::CallerIdName,
        Reason::TooLong { len: 82, max: 80 },
    );
    assert!(cid(&"я".repeat(40), "201").render().is_ok());
}

#[test]
fn refuses_bad_ids_channels_and_dialplan_names() {
    rejects(
        &with(|o| o.action_id.clear()),
        Field::ActionId,
        Reason::Empty,
    );
    rejects(
        &with(|o| o.action_id = "a".repeat(65)),
        Field::ActionId,
        Reason::TooLong { len: 65, max: 64 },
    );
    assert!(with(|o| o.action_id = "rule:cb:A.b_c-9".into())
        .render()
        .is_ok());
    for (id, c) in [("a b", ' '), ("a/b", '/'), ("a,b", ','), ("é", 'é')] {
        rejects(
            &with(|o| o.action_id = id.into()),
            Field::ActionId,
            Reason::ForbiddenChar(c),
        );
    }

    for channel in [
        "",
        "201",
        "Bogus/123",
        "PJSIP/201&PJSIP/666",
        "PJSIP/201,tT",
        "PJSIP/201|x",
        "PJSIP/${SHELL(id)}",
        "PJSIP/$[1+1]",
        "Local/201@ctx/nj",
        "Local/201",
        "Local/201@ctx@x",
        "PJSIP/a@b@c",
        "PJSIP/201 ",
        "PJSIP/",
        &format!("PJSIP/{}", "1".repeat(200)),
    ] {
        rejects_field(&with(|o| o.channel = channel.into()), Field::Channel);
    }

    for (value, c) in [
        ("from internal", ' '),
        ("ctx,1", ','),
        ("ctx(x)", '('),
        ("${X}", '$'),
        ("a@b", '@'),
        ("a/b", '/'),
    ] {
        rejects(
            &with(|o| o.context = value.into()),
            Field::Context,
            Reason::ForbiddenChar(c),
        );
        rejects(
            &with(|o| o.exten = value.into()),
            Field::Exten,
            Reason::ForbiddenChar(c),
        );
    }
    rejects(&with(|o| o.exten.clear()), Field::Exten, Reason::Empty);
    rejects(
        &with(|o| o.context = "c".repeat(80)),
        Field::Context,
        Reason::TooLong { len: 80, max: 79 },
    );

    for (account, c) in [("a b", ' '), ("a,b", ','), ("a+b", '+'), ("${X}", '$')] {
        rejects(
            &with(|o| o.account = Some(account.into())),
            Field::Account,
            Reason::ForbiddenChar(c),
        );
    }
    rejects(
        &with(|o| o.account = Some(String::new())),
        Field::Account,
        Reason::Empty,
    );
    assert!(with(|o| o.account = Some("a".repeat(80))).render().is_ok());
    rejects(
        &with(|o| o.account = Some("a".repeat(81))),
        Field::Account,
        Reason::TooLong { len: 81, max: 80 },
    );
}

#[test]
fn refuses_out_of_range_numbers() {
    rejects(
        &with(|o| o.priority = 0),
        Field::Priority,
        Reason::OutOfRange {
            value: 0,
            min: 1,
            max: i32::MAX as u64,
        },
    );
    rejects(
        &with(|o| o.priority = u32::MAX),
        Field::Priority,
        Reason::OutOfRange {
            value: u32::MAX.into(),
            min: 1,
            max: i32::MAX as u64,
        },
    );
    for timeout_ms in [0, 999, MAX_TIMEOUT_MS + 1, u64::MAX] {
        rejects(
            &with(|o| o.timeout_ms = timeout_ms),
            Field::Timeout,
            Reason::OutOfRange {
                value: timeout_ms,
                min: MIN_TIMEOUT_MS,
                max: MAX_TIMEOUT_MS,
            },
        );
    }
}

#[test]
fn long_lines_are_refused_whole() {
    // 32 variables of 512 bytes fit: each line is well under 1024 bytes.
    let o = with(|o| {
        o.variables = (0..MAX_VARS)
            .map(|i| (format!("V{i}"), "x".repeat(MAX_VAR_VALUE_BYTES)))
            .collect();
    });
    let text = o.render().expect("valid");
    assert!(text.split("\r\n").all(|l| l.len() + 2 <= MAX_LINE_BYTES));
    // A name and a value at their limits would still make a 1024-byte line
    // only with a longer value limit; the line check itself:
    let mut action = frame::ActionText::new("Originate");
    let long = "x".repeat(MAX_LINE_BYTES - "Variable: ".len() - 2 + 1);
    assert_eq!(
        action.header("Variable", &[&long]),
        Err(Reason::LineTooLong {
            len: MAX_LINE_BYTES + 1
        })
    );
    let fits = "x".repeat(MAX_LINE_BYTES - "Variable: ".len() - 2);
    assert_eq!(action.header("Variable", &[&fits]), Ok(()));
}

#[test]
fn errors_classify() {
    let invalid = with(|o| o.exten.clear()).render().expect_err("invalid");
    for (err, nothing_queued, transient) in [
        (AmiError::Connect("x".into()), true, true),
        (AmiError::Login("x".into()), true, false),
        (AmiError::Refused("x".into()), true, false),
        (invalid, true, false),
        (AmiError::InDoubt("x".into()), false, false),
        (AmiError::OutcomeLost("x".into()), false, false),
    ] {
        assert_eq!(err.nothing_queued(), nothing_queued, "{err}");
        assert_eq!(err.is_transient(), transient, "{err}");
    }
    assert_eq!(reason_text(4), "answered");
    assert_eq!(reason_text(2), "unknown");
}

#[test]
fn debug_redacts_the_secret() {
    let cfg = AmiConfig::new("127.0.0.1", "calltrail", "hunter2-very-secret");
    assert_eq!(cfg.port, DEFAULT_PORT);
    let shown = format!("{cfg:?} {:?}", AmiClient::new(cfg.clone()));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(shown.contains("calltrail"), "{shown}");
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

fn reader(bytes: &[u8]) -> FrameReader<&[u8]> {
    FrameReader::new(bytes)
}

#[tokio::test]
async fn frames_accept_crlf_and_lf_and_keep_the_first_duplicate() {
    let bytes = b"Asterisk Call Manager/13.0.0\r\n\
                  Response: Success\r\nActionID: a1\nMessage: first\r\nMessage: second\r\n\r\n\
                  \r\n\
                  Event: FullyBooted\nPrivilege: system,all\nStatus: Fully Booted\nAccountCode: \n\n";
    let mut r = reader(bytes);
    assert_eq!(
        r.read_banner().await.expect("banner").as_deref(),
        Some("Asterisk Call Manager/13.0.0")
    );
    let m = r.read_message().await.expect("read").expect("message");
    assert_eq!(m.get("response"), Some("Success"));
    assert_eq!(m.get("ActionID"), Some("a1"));
    assert_eq!(m.get("Message"), Some("first"));
    assert_eq!(m.len(), 4);
    let m = r.read_message().await.expect("read").expect("message");
    assert_eq!(m.get("Event"), Some("FullyBooted"));
    assert_eq!(m.get("Status"), Some("Fully Booted"));
    assert_eq!(m.get("AccountCode"), Some(""));
    assert!(r.read_message().await.expect("clean end").is_none());
}

#[tokio::test]
async fn an_over_long_line_discards_its_message_and_the_stream_goes_on() {
    let long = "x".repeat(MAX_LINE_BYTES + 1);
    let fits = "y".repeat(MAX_LINE_BYTES - "Data: ".len());
    let bytes = format!(
        "Event: Cdr\r\nUserField: {long}\r\nChannel: x\r\n\r\n\
         Event: Ok\r\nData: {fits}\r\n\r\n\
         Event: Last\n\n"
    );
    let mut r = reader(bytes.as_bytes());
    let err = r.read_message().await.expect_err("too long");
    assert!(matches!(err, FrameError::LineTooLong), "{err}");
    assert!(err.is_discard());
    let m = r.read_message().await.expect("read").expect("message");
    assert_eq!(m.get("Event"), Some("Ok"));
    assert_eq!(m.get("Data"), Some(fits.as_str()));
    let m = r.read_message().await.expect("read").expect("message");
    assert_eq!(m.get("Event"), Some("Last"));

    // A huge line without any line end is an error, not a panic or an
    // unbounded buffer.
    let endless = "z".repeat(1 << 20);
    let mut r = reader(endless.as_bytes());
    let err = r.read_message().await.expect_err("truncated");
    assert!(matches!(err, FrameError::Truncated), "{err}");
}

#[tokio::test]
async fn too_many_headers_discard_the_message() {
    let mut bytes = String::from("Event: Big\r\n");
    for i in 0..MAX_HEADERS {
        bytes.push_str(&format!("H{i}: v\r\n"));
    }
    bytes.push_str("\r\nEvent: Next\r\n\r\n");
    let mut max = String::from("Event: Max\r\n");
    for i in 1..MAX_HEADERS {
        max.push_str(&format!("H{i}: v\r\n"));
    }
    max.push_str("\r\n");
    bytes.push_str(&max);
    let mut r = reader(bytes.as_bytes());
    let err = r.read_message().await.expect_err("too many");
    assert!(matches!(err, FrameError::TooManyHeaders), "{err}");
    let m = r.read_message().await.expect("read").expect("message");
    assert_eq!(m.get("Event"), Some("Next"));
    let m = r.read_message().await.expect("read").expect("message");
    assert_eq!(m.len(), MAX_HEADERS);
}

#[tokio::test]
async fn a_message_cut_by_the_end_of_the_stream_is_an_error() {
    let mut r = reader(b"Response: Success\r\nActionID: a1\r\n");
    assert!(matches!(r.read_message().await, Err(FrameError::Truncated)));
    let mut r = reader(b"Response: Succ");
    assert!(matches!(r.read_message().await, Err(FrameError::Truncated)));
}

// ---------------------------------------------------------------------------
// The scripted Asterisk peer
// ---------------------------------------------------------------------------

/// What Asterisk 13 sent (asterisk-probes/report.txt, probe-events.jsonl).
const BANNER: &str = "Asterisk Call Manager/13.0.0\r\n";
const FULLY_BOOTED: &str = "Event: FullyBooted\r\nPrivilege: system,all\r\n\
    Timestamp: 1796321070.851192\r\nStatus: Fully Booted\r\nUptime: 0\r\nLastReload: 0\r\n\r\n";
const NEWCHANNEL: &str = "Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: 1796321105.198468\r\n\
    Channel: Local/ok@probe-0000001b;2\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n\
    CallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\n\
    ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: probe\r\nExten: ok\r\n\
    Priority: 1\r\nUniqueid: 1796321105.55\r\nLinkedid: 1796321105.54\r\n\r\n";
const NEWEXTEN: &str = "Event: Newexten\r\nPrivilege: dialplan,all\r\nTimestamp: 1796321105.198599\r\n\
    Channel: Local/ok@probe-0000001b;1\r\nChannelState: 0\r\nChannelStateDesc: Down\r\n\
    CallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\n\
    ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: probe\r\nExten: ok\r\n\
    Priority: 1\r\nUniqueid: 1796321105.54\r\nLinkedid: 1796321105.54\r\nExtension: ok\r\n\
    Application: AppDial2\r\nAppData: (Outgoing Line)\r\n\r\n";
const DIALBEGIN: &str = "Event: DialBegin\r\nPrivilege: call,all\r\nTimestamp: 1796321105.199920\r\n\
    DestChannel: Local/ok@probe-0000001b;1\r\nDestChannelState: 0\r\nDestChannelStateDesc: Down\r\n\
    DestCallerIDNum: <unknown>\r\nDestCallerIDName: <unknown>\r\nDestConnectedLineNum: <unknown>\r\n\
    DestConnectedLineName: <unknown>\r\nDestLanguage: en\r\nDestAccountCode: \r\nDestContext: probe\r\n\
    DestExten: ok\r\nDestPriority: 1\r\nDestUniqueid: 1796321105.54\r\nDestLinkedid: 1796321105.54\r\n\
    DialString: ok@probe/n\r\n\r\n";

fn login_ok(action_id: &str) -> String {
    format!(
        "Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n"
    )
}

fn login_failed(action_id: &str) -> String {
    format!("Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed\r\n\r\n")
}

fn queued(action_id: &str) -> String {
    format!(
        "Response: Success\r\nActionID: {action_id}\r\nMessage: Originate successfully queued\r\n\r\n"
    )
}

/// The `OriginateResponse` Asterisk sent for each probe, under `action_id`.
fn originate_response(action_id: &str, reason: u8) -> String {
    let (timestamp, response, channel, target, uniqueid) = match reason {
        4 => (
            "1796321105.200218",
            "Success",
            "Local/ok@probe-0000001b;1",
            "Context: probe\r\nExten: ok",
            "1796321105.54",
        ),
        5 => (
            "1796321109.209854",
            "Failure",
            "Local/busy@probe/n",
            "Application: Wait\r\nData: 1",
            "<unknown>",
        ),
        8 => (
            "1796321113.215462",
            "Failure",
            "Local/congested@probe/n",
            "Application: Wait\r\nData: 1",
            "<unknown>",
        ),
        3 => (
            "1796321120.225450",
            "Failure",
            "Local/noanswer@probe/n",
            "Application: Wait\r\nData: 1",
            "<unknown>",
        ),
        0 => (
            "1796321124.232636",
            "Failure",
            "Local/hangupnow@probe/n",
            "Application: Wait\r\nData: 1",
            "<unknown>",
        ),
        _ => unreachable!("no transcript for reason {reason}"),
    };
    format!(
        "Event: OriginateResponse\r\nPrivilege: call,all\r\nTimestamp: {timestamp}\r\n\
         ActionID: {action_id}\r\nResponse: {response}\r\nChannel: {channel}\r\n{target}\r\n\
         Reason: {reason}\r\nUniqueid: {uniqueid}\r\nCallerIDNum: <unknown>\r\n\
         CallerIDName: <unknown>\r\n\r\n"
    )
}

/// A received message: its headers in order.
type Headers = Vec<(String, String)>;

fn header<'a>(msg: &'a Headers, key: &str) -> &'a str {
    msg.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {msg:?}"))
}

/// Everything the peer saw.
#[derive(Default)]
struct Log {
    connections: usize,
    /// (connection index, message) in arrival order.
    messages: Vec<(usize, Headers)>,
}

struct Peer {
    addr: SocketAddr,
    log: Arc<StdMutex<Log>>,
}

impl Peer {
    fn connections(&self) -> usize {
        self.log.lock().expect("log").connections
    }

    /// The `Action:` of every message received, with its connection index
    /// and ActionID.
    fn actions(&self) -> Vec<(usize, String, String)> {
        self.log
            .lock()
            .expect("log")
            .messages
            .iter()
            .map(|(conn, m)| {
                (
                    *conn,
                    header(m, "Action").to_owned(),
                    header(m, "ActionID").to_owned(),
                )
            })
            .collect()
    }

    fn originates(&self) -> Vec<(usize, String)> {
        self.actions()
            .into_iter()
            .filter(|(_, action, _)| action == "Originate")
            .map(|(conn, _, id)| (conn, id))
            .collect()
    }

    fn config(&self) -> AmiConfig {
        AmiConfig {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            username: "calltrail".into(),
            secret: "s3cret".into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
        }
    }
}

/// One accepted connection, seen from the peer.
struct PeerConn {
    index: usize,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    log: Arc<StdMutex<Log>>,
}

impl PeerConn {
    async fn send(&mut self, text: &str) {
        // The client may already have gone; that is the test's business.
        let _ = self.writer.write_all(text.as_bytes()).await;
    }

    /// The next message (lines up to an empty one), logged; `None` at EOF.
    async fn recv(&mut self) -> Option<Headers> {
        let mut msg = Headers::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            assert!(
                line.ends_with("\r\n"),
                "client line not ended by CRLF: {line:?}"
            );
            let line = &line[..line.len() - 2];
            if line.is_empty() {
                if msg.is_empty() {
                    continue;
                }
                break;
            }
            let (k, v) = line.split_once(": ").expect("a `Key: Value` line");
            msg.push((k.to_owned(), v.to_owned()));
        }
        self.log
            .lock()
            .expect("log")
            .messages
            .push((self.index, msg.clone()));
        Some(msg)
    }

    /// Banner, then the Login checked and accepted as Asterisk does.
    async fn accept_login(&mut self) {
        self.send(BANNER).await;
        let login = self.recv().await.expect("login");
        assert_eq!(header(&login, "Action"), "Login");
        assert_eq!(header(&login, "Username"), "calltrail");
        assert_eq!(header(&login, "Secret"), "s3cret");
        assert_eq!(header(&login, "Events"), "call");
        let id = header(&login, "ActionID").to_owned();
        self.send(&login_ok(&id)).await;
        self.send(FULLY_BOOTED).await;
    }

    /// The next Originate, answered `Response: Success`; its ActionID.
    async fn queue_next(&mut self) -> String {
        let o = self.recv().await.expect("originate");
        assert_eq!(header(&o, "Action"), "Originate");
        assert_eq!(header(&o, "Async"), "true");
        let id = header(&o, "ActionID").to_owned();
        self.send(&queued(&id)).await;
        id
    }

    /// Reads until the client closes the connection.
    async fn drain(&mut self) {
        while self.recv().await.is_some() {}
    }
}

/// A peer on a loopback port running `script` for each connection.
async fn peer<F, Fut>(script: F) -> Peer
where
    F: Fn(PeerConn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Arc::new(StdMutex::new(Log::default()));
    let shared = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let index = {
                let mut log = shared.lock().expect("log");
                log.connections += 1;
                log.connections - 1
            };
            let (r, w) = stream.into_split();
            tokio::spawn(script(PeerConn {
                index,
                reader: BufReader::new(r),
                writer: w,
                log: shared.clone(),
            }));
        }
    });
    Peer { addr, log }
}

fn originate(action_id: &str) -> Originate {
    with(|o| o.action_id = action_id.into())
}

const DEADLINE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The client against the peer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn logs_in_and_places_a_callback() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let id = c.queue_next().await;
        c.send(NEWCHANNEL).await;
        c.send(&originate_response(&id, 4)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let queued = client.originate(&originate("cb-1")).await.expect("queued");
    assert_eq!(queued.action_id(), "cb-1");
    let outcome = queued.outcome(DEADLINE).await.expect("outcome");
    assert_eq!(
        outcome,
        OriginateOutcome {
            response_success: true,
            reason: 4,
            reason_text: "answered",
            channel: "Local/ok@probe-0000001b;1".into(),
            uniqueid: Some("1796321105.54".into()),
        }
    );
    // The Originate arrived exactly as rendered.
    let log = peer.log.lock().expect("log");
    let (_, sent) = &log.messages[1];
    let rendered: String = sent
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect::<String>()
        + "\r\n";
    assert_eq!(rendered, originate("cb-1").render().expect("valid"));
    assert_eq!(log.connections, 1);
}

#[tokio::test]
async fn maps_every_originate_response_reason() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        for reason in [4u8, 5, 8, 3, 0] {
            let id = c.queue_next().await;
            c.send(DIALBEGIN).await;
            c.send(&originate_response(&id, reason)).await;
        }
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let expected = [
        (
            true,
            4,
            "answered",
            "Local/ok@probe-0000001b;1",
            Some("1796321105.54"),
        ),
        (false, 5, "busy", "Local/busy@probe/n", None),
        (false, 8, "congestion", "Local/congested@probe/n", None),
        (
            false,
            3,
            "ringing-no-answer",
            "Local/noanswer@probe/n",
            None,
        ),
        (false, 0, "failure", "Local/hangupnow@probe/n", None),
    ];
    for (i, (success, reason, text, channel, uniqueid)) in expected.into_iter().enumerate() {
        let queued = client
            .originate(&originate(&format!("orig{i}")))
            .await
            .expect("queued");
        let outcome = queued.outcome(DEADLINE).await.expect("outcome");
        assert_eq!(outcome.response_success, success, "{outcome:?}");
        assert_eq!(outcome.reason, reason);
        assert_eq!(outcome.reason_text, text);
        assert_eq!(outcome.channel, channel);
        assert_eq!(outcome.uniqueid.as_deref(), uniqueid);
    }
    assert_eq!(peer.connections(), 1);
    assert_eq!(peer.originates().len(), 5);
}

#[tokio::test]
async fn events_interleaved_before_the_response_are_skipped() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let o = c.recv().await.expect("originate");
        let id = header(&o, "ActionID").to_owned();
        // Events first, the OriginateResponse (which also carries
        // `Response:` and the ActionID) even before the action's response,
        // another session's OriginateResponse, and the reply split in two
        // writes.
        c.send(NEWCHANNEL).await;
        c.send(NEWEXTEN).await;
        c.send(&originate_response("someone-else", 5)).await;
        c.send(&originate_response(&id, 8)).await;
        c.send(DIALBEGIN).await;
        let reply = queued(&id);
        let (a, b) = reply.split_at(10);
        c.send(a).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.send(b).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let queued = client.originate(&originate("cb-2")).await.expect("queued");
    let outcome = queued.outcome(DEADLINE).await.expect("outcome");
    assert_eq!((outcome.response_success, outcome.reason), (false, 8));
    assert_eq!(outcome.reason_text, "congestion");
}

#[tokio::test]
async fn concurrent_originates_are_matched_by_action_id() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let a = c.recv().await.expect("first");
        let b = c.recv().await.expect("second");
        let (a, b) = (
            header(&a, "ActionID").to_owned(),
            header(&b, "ActionID").to_owned(),
        );
        // Replies in the other order, outcomes in the first order.
        c.send(&queued(&b)).await;
        c.send(&queued(&a)).await;
        c.send(&originate_response(&a, 5)).await;
        c.send(&originate_response(&b, 4)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let (one, two) = (originate("cb-a"), originate("cb-b"));
    let (qa, qb) = tokio::join!(client.originate(&one), client.originate(&two));
    let (qa, qb) = (qa.expect("a queued"), qb.expect("b queued"));
    let (oa, ob) = tokio::join!(qa.outcome(DEADLINE), qb.outcome(DEADLINE));
    assert_eq!(oa.expect("a").reason, 5);
    assert_eq!(ob.expect("b").reason, 4);
}

#[tokio::test]
async fn login_failure_is_a_login_error_and_is_not_retried_at_once() {
    let peer = peer(|mut c| async move {
        c.send(BANNER).await;
        let login = c.recv().await.expect("login");
        let id = header(&login, "ActionID").to_owned();
        c.send(&login_failed(&id)).await;
        // Asterisk closes the session after a failed login.
    })
    .await;
    let client = AmiClient::new(peer.config());
    match client.originate(&originate("cb-3")).await {
        Err(AmiError::Login(msg)) => assert_eq!(msg, "Authentication failed"),
        other => panic!("expected a login error, got {other:?}"),
    }
    // The next call does not reconnect: it reports the same problem.
    match client.originate(&originate("cb-3")).await {
        Err(e @ AmiError::Login(_)) => {
            assert!(e.to_string().contains("Authentication failed"), "{e}");
            assert!(e.to_string().contains("next attempt in"), "{e}");
        }
        other => panic!("expected a login error, got {other:?}"),
    }
    assert_eq!(peer.connections(), 1);
    assert!(peer.originates().is_empty());
}

#[tokio::test]
async fn a_secret_that_cannot_be_sent_is_a_login_error_and_is_never_shown() {
    let peer = peer(|mut c| async move { c.drain().await }).await;
    let mut cfg = peer.config();
    cfg.secret = "s3cret\r\nAction: Originate".into();
    let client = AmiClient::new(cfg);
    match client.originate(&originate("cb-4")).await {
        Err(e @ AmiError::Login(_)) => assert!(!e.to_string().contains("s3cret"), "{e}"),
        other => panic!("expected a login error, got {other:?}"),
    }
    assert_eq!(peer.connections(), 0);
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut cfg = AmiConfig::new("127.0.0.1", "calltrail", "s3cret");
    cfg.port = addr.port();
    let client = AmiClient::new(cfg);
    let err = client
        .originate(&originate("cb-5"))
        .await
        .expect_err("refused");
    assert!(matches!(err, AmiError::Connect(_)), "{err:?}");
    assert!(err.nothing_queued());
    // Backing off: the next call fails at once with the same class.
    let err = client
        .originate(&originate("cb-5"))
        .await
        .expect_err("backoff");
    assert!(
        matches!(&err, AmiError::Connect(m) if m.contains("next attempt in")),
        "{err:?}"
    );
}

#[tokio::test]
async fn not_asterisk_or_no_banner_is_connect() {
    let peer = peer(|mut c| async move {
        c.send("SSH-2.0-OpenSSH_9.6\r\n").await;
        c.drain().await;
    })
    .await;
    let err = AmiClient::new(peer.config())
        .originate(&originate("cb-6"))
        .await
        .expect_err("not AMI");
    assert!(
        matches!(&err, AmiError::Connect(m) if m.contains("banner")),
        "{err:?}"
    );

    let silent = self::peer(|mut c| async move { c.drain().await }).await;
    let mut cfg = silent.config();
    cfg.connect_timeout = Duration::from_millis(200);
    let err = AmiClient::new(cfg)
        .originate(&originate("cb-6"))
        .await
        .expect_err("no banner");
    assert!(
        matches!(&err, AmiError::Connect(m) if m.contains("no banner")),
        "{err:?}"
    );
    assert!(silent.originates().is_empty());
}

#[tokio::test]
async fn refused_originate_is_refused() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let o = c.recv().await.expect("originate");
        let id = header(&o, "ActionID").to_owned();
        c.send(&format!(
            "Response: Error\r\nActionID: {id}\r\nMessage: Extension does not exist.\r\n\r\n"
        ))
        .await;
        // The connection stays usable.
        let id = c.queue_next().await;
        c.send(&originate_response(&id, 4)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let err = client
        .originate(&originate("cb-7"))
        .await
        .expect_err("refused");
    assert_eq!(err, AmiError::Refused("Extension does not exist.".into()));
    assert!(err.nothing_queued());
    let q = client.originate(&originate("cb-8")).await.expect("queued");
    assert!(q.outcome(DEADLINE).await.expect("outcome").response_success);
}

#[tokio::test]
async fn closed_after_the_originate_is_written_is_in_doubt() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let _ = c.recv().await.expect("originate");
        c.send(NEWCHANNEL).await;
        // Asterisk goes away before answering.
    })
    .await;
    let client = AmiClient::new(peer.config());
    let err = client
        .originate(&originate("cb-9"))
        .await
        .expect_err("in doubt");
    assert!(matches!(err, AmiError::InDoubt(_)), "{err:?}");
    assert!(!err.nothing_queued());
    assert_eq!(peer.originates(), vec![(0, "cb-9".to_owned())]);
}

#[tokio::test]
async fn no_response_in_time_is_in_doubt() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let _ = c.recv().await.expect("originate");
        c.drain().await;
    })
    .await;
    let mut cfg = peer.config();
    cfg.response_timeout = Duration::from_millis(500);
    let client = AmiClient::new(cfg);
    let err = client
        .originate(&originate("cb-10"))
        .await
        .expect_err("in doubt");
    assert!(
        matches!(&err, AmiError::InDoubt(m) if m.contains("no response")),
        "{err:?}"
    );
}

#[tokio::test]
async fn reconnects_after_a_drop_and_never_resends() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let id = c.queue_next().await;
        if c.index == 0 {
            return; // Queued, then the connection drops before OriginateResponse.
        }
        c.send(&originate_response(&id, 4)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let first = client.originate(&originate("cb-11")).await.expect("queued");
    let err = first.outcome(DEADLINE).await.expect_err("lost");
    assert!(matches!(err, AmiError::OutcomeLost(_)), "{err:?}");
    assert!(!err.nothing_queued());

    let second = client.originate(&originate("cb-12")).await.expect("queued");
    assert!(
        second
            .outcome(DEADLINE)
            .await
            .expect("outcome")
            .response_success
    );

    // One Originate each, on its own connection; nothing re-sent.
    assert_eq!(peer.connections(), 2);
    assert_eq!(
        peer.originates(),
        vec![(0, "cb-11".to_owned()), (1, "cb-12".to_owned())]
    );
    let logins = peer
        .actions()
        .into_iter()
        .filter(|(_, a, _)| a == "Login")
        .count();
    assert_eq!(logins, 2);
}

#[tokio::test]
async fn a_drop_between_calls_is_noticed_before_writing() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let id = c.queue_next().await;
        c.send(&originate_response(&id, 4)).await;
        if c.index == 0 {
            return; // Asterisk restarts while the client is idle.
        }
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let q = client.originate(&originate("cb-13")).await.expect("queued");
    assert_eq!(q.outcome(DEADLINE).await.expect("outcome").reason, 4);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let q = client.originate(&originate("cb-14")).await.expect("queued");
    assert_eq!(q.outcome(DEADLINE).await.expect("outcome").reason, 4);
    assert_eq!(
        peer.originates(),
        vec![(0, "cb-13".to_owned()), (1, "cb-14".to_owned())]
    );
}

#[tokio::test]
async fn an_idle_connection_that_fails_its_ping_is_replaced_before_writing() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        if c.index == 0 {
            let first = c.queue_next().await;
            c.send(&originate_response(&first, 4)).await;
            // Then silence: a ping goes unanswered and the client moves on.
            c.drain().await;
            return;
        }
        let id = c.queue_next().await;
        c.send(&originate_response(&id, 4)).await;
        c.drain().await;
    })
    .await;
    let mut cfg = peer.config();
    cfg.response_timeout = Duration::from_millis(500);
    let client = AmiClient::with_idle_ping(cfg, Duration::from_millis(100));
    let q = client.originate(&originate("cb-15")).await.expect("queued");
    q.outcome(DEADLINE).await.expect("outcome");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let q = client.originate(&originate("cb-16")).await.expect("queued");
    q.outcome(DEADLINE).await.expect("outcome");
    let actions = peer.actions();
    let on_first: Vec<&str> = actions
        .iter()
        .filter(|(conn, _, _)| *conn == 0)
        .map(|(_, a, _)| a.as_str())
        .collect();
    assert_eq!(on_first, ["Login", "Originate", "Ping"]);
    assert_eq!(
        peer.originates(),
        vec![(0, "cb-15".to_owned()), (1, "cb-16".to_owned())]
    );
}

#[tokio::test]
async fn an_idle_connection_that_answers_its_ping_is_kept() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let first = c.queue_next().await;
        c.send(&originate_response(&first, 4)).await;
        let ping = c.recv().await.expect("ping");
        assert_eq!(header(&ping, "Action"), "Ping");
        let id = header(&ping, "ActionID").to_owned();
        c.send(NEWCHANNEL).await;
        c.send(&format!(
            "Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1796321105.200000\r\n\r\n"
        ))
        .await;
        let second = c.queue_next().await;
        c.send(&originate_response(&second, 3)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::with_idle_ping(peer.config(), Duration::from_millis(100));
    let q = client.originate(&originate("cb-17")).await.expect("queued");
    q.outcome(DEADLINE).await.expect("outcome");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let q = client.originate(&originate("cb-18")).await.expect("queued");
    assert_eq!(q.outcome(DEADLINE).await.expect("outcome").reason, 3);
    assert_eq!(peer.connections(), 1);
}

#[tokio::test]
async fn outcome_deadline_is_outcome_lost_and_a_late_event_is_ignored() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let id = c.queue_next().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.send(&originate_response(&id, 4)).await;
        let id = c.queue_next().await;
        c.send(&originate_response(&id, 0)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let q = client.originate(&originate("cb-19")).await.expect("queued");
    let err = q
        .outcome(Duration::from_millis(100))
        .await
        .expect_err("deadline");
    assert!(
        matches!(&err, AmiError::OutcomeLost(m) if m.contains("within")),
        "{err:?}"
    );
    // The same client goes on; the late event for cb-19 is dropped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let q = client.originate(&originate("cb-20")).await.expect("queued");
    assert_eq!(q.outcome(DEADLINE).await.expect("outcome").reason, 0);
}

#[tokio::test]
async fn an_action_id_in_flight_is_not_sent_twice() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let id = c.queue_next().await;
        // The outcome comes only after the client tried the id again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.send(&originate_response(&id, 4)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let q = client.originate(&originate("cb-21")).await.expect("queued");
    let err = client
        .originate(&originate("cb-21"))
        .await
        .expect_err("in flight");
    assert_eq!(
        err,
        AmiError::Invalid {
            field: Field::ActionId,
            reason: Reason::InFlight
        }
    );
    assert!(q.outcome(DEADLINE).await.expect("outcome").response_success);
    assert_eq!(peer.originates().len(), 1);
}

#[tokio::test]
async fn an_invalid_originate_sends_nothing_and_does_not_connect() {
    let peer = peer(|mut c| async move { c.drain().await }).await;
    let client = AmiClient::new(peer.config());
    let err = client
        .originate(&with(|o| {
            o.variables = vec![("CT".into(), "${SHELL(rm -rf /)}".into())]
        }))
        .await
        .expect_err("invalid");
    assert!(matches!(err, AmiError::Invalid { .. }), "{err:?}");
    assert_eq!(peer.connections(), 0);
}

#[tokio::test]
async fn an_over_long_event_from_asterisk_is_skipped() {
    let peer = peer(|mut c| async move {
        c.accept_login().await;
        let o = c.recv().await.expect("originate");
        let id = header(&o, "ActionID").to_owned();
        let long = "x".repeat(4 * MAX_LINE_BYTES);
        c.send(&format!("Event: Cdr\r\nUserField: {long}\r\n\r\n"))
            .await;
        c.send(&queued(&id)).await;
        c.send(&originate_response(&id, 4)).await;
        c.drain().await;
    })
    .await;
    let client = AmiClient::new(peer.config());
    let q = client.originate(&originate("cb-22")).await.expect("queued");
    assert_eq!(q.outcome(DEADLINE).await.expect("outcome").reason, 4);
}
