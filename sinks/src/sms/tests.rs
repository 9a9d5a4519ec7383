//! Unit tests of the SMS gateways: a scripted HTTP server on 127.0.0.1 (a
//! std `TcpListener` thread) answers as each gateway's documentation says
//! and records the exact bytes it received, which the tests decode the way
//! the gateway would.

use super::*;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

// ---------------------------------------------------------------------------
// The scripted server.

/// What the server does with one connection.
#[derive(Debug, Clone)]
enum Act {
    /// Read the request, answer this status and body, close.
    Reply(u16, &'static str, String),
    /// Read the request, then close without a word.
    Close,
    /// Read the request, then say nothing for this long.
    Hang(Duration),
    /// Read a TLS record (the ClientHello), answer a fatal
    /// handshake_failure alert.
    TlsAlert,
}

fn reply(status: u16, body: &str) -> Act {
    Act::Reply(status, "text/html", body.to_string())
}

fn json(body: &str) -> Act {
    Act::Reply(200, "application/json", body.to_string())
}

/// One request as received.
#[derive(Debug, Clone, Default)]
struct Got {
    method: String,
    path: String,
    /// The raw query string (after `?`), as sent.
    query: Vec<u8>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Server {
    fn start(script: Vec<Act>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = got.clone();
        std::thread::spawn(move || {
            for act in script {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                if let Act::TlsAlert = act {
                    let hello = read_tls_record(&mut stream);
                    record.lock().expect("lock").push(Got {
                        method: "TLS".into(),
                        body: hello,
                        ..Got::default()
                    });
                    let _ = stream.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
                    let _ = stream.flush();
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                let Some(req) = read_request(&mut stream) else {
                    continue;
                };
                record.lock().expect("lock").push(req);
                match act {
                    Act::Reply(status, content_type, body) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(body.as_bytes());
                        let _ = stream.flush();
                    }
                    Act::Close => {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    Act::Hang(d) => std::thread::sleep(d),
                    Act::TlsAlert => unreachable!(),
                }
            }
        });
        Self { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far.
    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }

    /// The only request received.
    fn one(&self) -> Got {
        let got = self.got();
        assert_eq!(got.len(), 1, "{got:#?}");
        got.into_iter().next().expect("one")
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Got> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let request_line = lines.next().expect("request line");
    let mut parts = request_line.split(' ');
    let method = parts.next().expect("method").to_string();
    let target = parts.next().expect("target");
    assert_eq!(parts.next(), Some("HTTP/1.1"));
    assert_eq!(parts.next(), None, "one request line: {request_line:?}");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.as_bytes().to_vec()),
        None => (target.to_string(), Vec::new()),
    };
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().expect("length"));
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(body.len(), len, "no bytes after the body");
    Some(Got {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn read_tls_record(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).expect("record header");
    let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
    let mut rest = vec![0u8; len];
    stream.read_exact(&mut rest).expect("record");
    let mut all = head.to_vec();
    all.extend(rest);
    all
}

/// `k=v&…` decoded the way PHP and Kannel do (`+` is a blank, `%XX` a
/// byte), values as raw bytes.
fn pairs(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    raw.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &p[p.len()..]),
            };
            let dec = |s: &[u8]| -> Vec<u8> {
                let plus: Vec<u8> = s
                    .iter()
                    .map(|&b| if b == b'+' { b' ' } else { b })
                    .collect();
                percent_encoding::percent_decode(&plus).collect()
            };
            (String::from_utf8(dec(k)).expect("key"), dec(v))
        })
        .collect()
}

/// The same, values as UTF-8, through `form_urlencoded` (an independent
/// decoder).
fn utf8_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn keys(p: &[(String, String)]) -> Vec<&str> {
    p.iter().map(|(k, _)| k.as_str()).collect()
}

/// The only value of `key`.
fn one<'a>(p: &'a [(String, String)], key: &str) -> &'a str {
    let v: Vec<_> = p.iter().filter(|(k, _)| k == key).collect();
    assert_eq!(v.len(), 1, "exactly one {key} in {p:?}");
    &v[0].1
}

fn sms(text: &str) -> Sms {
    Sms {
        id: "rule:missed:sms:+79161234567".into(),
        to: "+79161234567".into(),
        text: text.into(),
        sender: None,
    }
}

const PRIVET: &str = "Привет";
const PRIVET_UTF8: &str = "%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82";

fn kannel(server: &Server) -> Gateway {
    let mut c = KannelConfig::new("tester", "foo&bar=baz");
    c.url = server.url("/cgi-bin/sendsms");
    c.timeout = Duration::from_secs(5);
    Gateway::Kannel(c)
}

fn smsru(server: &Server) -> Gateway {
    let mut c = SmsRuConfig::new("KEY-1&x=2");
    c.url = server.url("/sms/send");
    c.timeout = Duration::from_secs(5);
    Gateway::SmsRu(c)
}

fn smsc(server: &Server) -> Gateway {
    let mut c = SmscConfig::new("me", "p@ss&w=rd");
    c.url = server.url("/sys/send.php");
    c.status_url = server.url("/sys/status.php");
    c.timeout = Duration::from_secs(5);
    Gateway::Smsc(c)
}

fn http_json(server: &Server) -> Gateway {
    let mut c = HttpConfig::new(server.url("/api/v1/send?account=7"));
    c.body = Some(r#"{"to":"{to}","text":"{text}","sender":"{sender}","ref":"{id}"}"#.into());
    c.content_type = Some("application/json".into());
    c.headers
        .insert("Authorization".into(), "Bearer {secret}".into());
    c.headers.insert("Idempotency-Key".into(), "{id}".into());
    c.foreign_id_regex = Some(r#""message_id":\s*"([^"]+)""#.into());
    c.secret = Some("t0k3n+/=".into());
    c.timeout = Duration::from_secs(5);
    Gateway::Http(c)
}

fn http_get(server: &Server) -> Gateway {
    let mut c = HttpConfig::new(
        server
            .url("/send?to={to}&digits={to_digits}&msg={text}&from={sender}&ref={id}&key={secret}"),
    );
    c.method = HttpMethod::Get;
    c.secret = Some("k&y=1".into());
    c.timeout = Duration::from_secs(5);
    Gateway::Http(c)
}

/// A scripted reply and what the gateway must make of it.
type Case = (Act, fn(Result<Accepted, SmsError>));

/// A change that makes an [`HttpConfig`] unusable.
type Change = Box<dyn Fn(&mut HttpConfig)>;

fn assert_invalid(r: Result<Accepted, SmsError>) {
    assert!(matches!(r, Err(SmsError::Invalid { .. })), "{r:?}");
}

fn assert_unavailable(r: Result<Accepted, SmsError>) {
    assert!(matches!(r, Err(SmsError::Unavailable { .. })), "{r:?}");
}

fn assert_rejected(r: Result<Accepted, SmsError>) {
    assert!(matches!(r, Err(SmsError::Rejected { .. })), "{r:?}");
}

fn assert_in_doubt(r: Result<Accepted, SmsError>) {
    assert!(matches!(r, Err(SmsError::InDoubt { .. })), "{r:?}");
}

// ---------------------------------------------------------------------------
// Length and validation.

#[test]
fn parts_gsm7_and_ucs2() {
    assert_eq!(parts("hello"), 1);
    assert_eq!(parts(&"a".repeat(160)), 1);
    assert_eq!(parts(&"a".repeat(161)), 2);
    assert_eq!(parts(&"a".repeat(306)), 2);
    assert_eq!(parts(&"a".repeat(307)), 3);
    assert_eq!(parts(&"Ж".repeat(70)), 1);
    assert_eq!(parts(&"Ж".repeat(71)), 2);
    assert_eq!(parts(&"Ж".repeat(134)), 2);
    assert_eq!(parts(&"Ж".repeat(135)), 3);
    // One Cyrillic letter makes the whole text UCS-2.
    assert_eq!(parts(&format!("{}Ж", "a".repeat(70))), 2);
    // The extension table goes as UCS-2 too.
    assert!(!is_gsm7("a{b}"));
    assert!(!is_gsm7("5€"));
    assert!(is_gsm7(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà"
    ));
    // An emoji is two UTF-16 units.
    assert_eq!(parts(&"👋".repeat(35)), 1);
    assert_eq!(parts(&"👋".repeat(36)), 2);
}

#[test]
fn numbers_senders_ids_texts() {
    for good in ["+79161234567", "79161234567", "112", &"1".repeat(20)] {
        assert!(check_number(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "+",
        "12",
        "++79161234567",
        "+7 916",
        "7916\n",
        "7916&to=1",
        "+７９１６",
        &"1".repeat(21),
        "7916,7917",
        "7916;7917",
    ] {
        assert!(check_number(bad).is_err(), "{bad:?}");
    }
    for good in [
        "Shop",
        "My Shop",
        "a.b_c-d",
        "ABCDEFGHIJK",
        "+79161234567",
        "123",
    ] {
        assert!(check_sender(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        " Shop",
        "Shop ",
        "ABCDEFGHIJKL",
        "Shop\r\n",
        "Shop&x",
        "Магазин",
        "a;b",
        "a,b",
        "a|b",
        "${X}",
        "+1234567890123456",
    ] {
        assert!(check_sender(bad).is_err(), "{bad:?}");
    }
    assert!(check_id("rule:a:sms:+7916/../x").is_ok());
    assert!(check_id("").is_err());
    assert!(check_id("a\nb").is_err());
    assert!(check_id("a\u{2028}b").is_err());
    assert!(check_id(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
    assert!(check_text("hi", 1).is_ok());
    assert!(check_text(" \n\t", 6).is_err());
    assert!(check_text("a\0b", 6).is_err());
    assert!(check_text(&"Ж".repeat(67 * 6), 6).is_ok());
    let e = check_text(&"Ж".repeat(67 * 6 + 1), 6).expect_err("7 parts");
    assert!(e.reason().contains("7 SMS"), "{e}");
}

#[test]
fn invalid_messages_are_refused_before_sending() {
    // No server at all: Invalid is decided before any connection.
    let gw = Gateway::Kannel(KannelConfig {
        url: "http://127.0.0.1:9/cgi-bin/sendsms".into(),
        ..KannelConfig::new("u", "p")
    });
    let mut m = sms("hi");
    m.to = "+7916\r\nX: y".into();
    assert_invalid(gw.send(&m));
    let mut m = sms("hi");
    m.sender = Some("Bad\nSender".into());
    assert_invalid(gw.send(&m));
    assert_invalid(gw.send(&sms("")));
    assert_invalid(gw.send(&sms(&"a".repeat(153 * 6 + 1))));
    let mut m = sms("hi");
    m.id = "a\r\nb".into();
    assert_invalid(gw.send(&m));
    // A bad default sender in the config is a configuration problem.
    let mut c = KannelConfig::new("u", "p");
    c.from = Some("Far too long a sender".into());
    assert!(Gateway::Kannel(c.clone()).check().is_err());
    assert_unavailable(Gateway::Kannel(c).send(&sms("hi")));
}

#[test]
fn errors_are_retryable_only_when_nothing_was_sent() {
    let e = |f: fn(String) -> SmsError| f("x".into());
    assert!(e(|reason| SmsError::Unavailable { reason }).is_retryable());
    assert!(!e(|reason| SmsError::Invalid { reason }).is_retryable());
    assert!(!e(|reason| SmsError::Rejected { reason }).is_retryable());
    assert!(!e(|reason| SmsError::InDoubt { reason }).is_retryable());
}

// ---------------------------------------------------------------------------
// Folder.

fn folder(dir: &Path) -> Gateway {
    Gateway::Folder(FolderConfig::new(dir))
}

fn sms_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sms"))
        .collect();
    names.sort();
    names
}

#[test]
fn folder_writes_once_and_reconciles() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gw = folder(tmp.path());
    let mut m = sms("Перезвоним вам.\nДо связи!");
    m.sender = Some("Shop".into());
    assert_eq!(gw.reconcile(&m), Reconciled::NotSent);

    let first = gw.send(&m).expect("send");
    assert!(!first.already);
    let name = FolderConfig::file_name(&m.id);
    assert_eq!(first.foreign_id.as_deref(), Some(name.as_str()));
    assert!(
        name.ends_with(".sms") && !name.contains(':') && !name.contains('+'),
        "{name}"
    );
    let content = std::fs::read_to_string(tmp.path().join(&name)).expect("read");
    assert_eq!(
        content,
        "To: +79161234567\nFrom: Shop\nId: rule:missed:sms:+79161234567\n\nПерезвоним вам.\nДо связи!\n"
    );

    // The same id again: nothing rewritten, even with another text.
    let mut again = m.clone();
    again.text = "other".into();
    let second = gw.send(&again).expect("send");
    assert!(second.already, "{second:?}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join(&name)).expect("read"),
        content
    );
    match gw.reconcile(&m) {
        Reconciled::Sent(acc) => assert!(acc.already),
        other => panic!("{other:?}"),
    }
    assert_eq!(sms_files(tmp.path()), vec![name.clone()]);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("tmp"))
            .expect("tmp")
            .count(),
        0,
        "no temporary file left"
    );

    // A consumer moved it to done/: still found.
    std::fs::create_dir(tmp.path().join("done")).expect("done");
    std::fs::rename(tmp.path().join(&name), tmp.path().join("done").join(&name)).expect("mv");
    assert!(gw.send(&m).expect("send").already);
    assert!(matches!(gw.reconcile(&m), Reconciled::Sent(_)));

    // No sender: no From line.
    let mut plain = sms("hi");
    plain.id = "2".into();
    gw.send(&plain).expect("send");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("2.sms")).expect("read"),
        "To: +79161234567\nId: 2\n\nhi\n"
    );
}

#[test]
fn folder_names_are_safe_and_distinct() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("out");
    std::fs::create_dir(&dir).expect("mkdir");
    let gw = folder(&dir);
    for id in ["../../etc/passwd", "a/b", "a:b", ".hidden", "x y", "звонок"] {
        let mut m = sms("hi");
        m.id = id.into();
        let acc = gw.send(&m).expect("send");
        assert!(!acc.already, "{id}");
    }
    let names = sms_files(&dir);
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names
        .iter()
        .all(|n| !n.starts_with('.') && !n.contains('/') && n.is_ascii()));
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        1,
        "nothing outside the folder"
    );
}

#[test]
fn folder_concurrent_sends_write_one_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gw = Arc::new(folder(tmp.path()));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let gw = gw.clone();
            std::thread::spawn(move || gw.send(&sms(&format!("writer {i}"))).expect("send"))
        })
        .collect();
    let fresh = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .filter(|a| !a.already)
        .count();
    assert_eq!(fresh, 1);
    assert_eq!(sms_files(tmp.path()).len(), 1);
}

#[test]
fn folder_missing_dir_is_unavailable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gw = folder(&tmp.path().join("missing"));
    assert_unavailable(gw.send(&sms("hi")));
    assert!(!tmp.path().join("missing").exists(), "not created");
    assert_eq!(gw.reconcile(&sms("hi")), Reconciled::NotSent);
}

// ---------------------------------------------------------------------------
// Kannel.

#[test]
fn kannel_latin_request_is_plain() {
    let server = Server::start(vec![reply(202, "0: Accepted for delivery")]);
    let mut m = sms("Call us back: 5 min & 10% off");
    m.sender = Some("Shop".into());
    let acc = kannel(&server).send(&m).expect("accepted");
    assert_eq!(
        acc,
        Accepted {
            foreign_id: None,
            answer: "0: Accepted for delivery".into(),
            already: false
        }
    );
    let got = server.one();
    assert_eq!(got.method, "GET");
    assert_eq!(got.path, "/cgi-bin/sendsms");
    assert!(got.body.is_empty());
    let q = utf8_pairs(&got.query);
    assert_eq!(keys(&q), ["username", "password", "to", "text", "from"]);
    assert_eq!(one(&q, "username"), "tester");
    assert_eq!(one(&q, "password"), "foo&bar=baz");
    assert_eq!(one(&q, "to"), "+79161234567");
    assert_eq!(one(&q, "text"), m.text);
    assert_eq!(one(&q, "from"), "Shop");
    let raw = String::from_utf8(got.query).expect("ASCII");
    assert!(raw.contains("to=%2B79161234567&"), "{raw}");
    assert!(!raw.contains('+'), "no bare + (a blank to Kannel): {raw}");
}

#[test]
fn kannel_cyrillic_is_ucs2_with_utf8_charset() {
    let server = Server::start(vec![reply(202, "3: Queued for later delivery")]);
    let mut c = match kannel(&server) {
        Gateway::Kannel(c) => c,
        _ => unreachable!(),
    };
    c.smsc = Some("FAKE".into());
    c.dlr_url = Some("http://127.0.0.1:8080/dlr?id={id}&st=%d".into());
    let mut m = sms(PRIVET);
    m.id = "a:1".into();
    let acc = Gateway::Kannel(c).send(&m).expect("queued is accepted");
    assert_eq!(acc.answer, "3: Queued for later delivery");
    let got = server.one();
    let raw = String::from_utf8(got.query.clone()).expect("ASCII");
    assert!(raw.contains(&format!("&text={PRIVET_UTF8}&")), "{raw}");
    assert!(raw.contains("&to=%2B79161234567&"), "{raw}");
    let q = utf8_pairs(&got.query);
    assert_eq!(
        keys(&q),
        [
            "username", "password", "to", "text", "smsc", "coding", "charset", "dlr-mask",
            "dlr-url"
        ]
    );
    assert_eq!(one(&q, "text"), PRIVET);
    assert_eq!(one(&q, "coding"), "2");
    assert_eq!(one(&q, "charset"), "UTF-8");
    assert_eq!(one(&q, "smsc"), "FAKE");
    assert_eq!(one(&q, "dlr-mask"), "31");
    // Kannel decodes the value once and expands %d itself; the id is hex.
    assert_eq!(
        one(&q, "dlr-url"),
        "http://127.0.0.1:8080/dlr?id=613a31&st=%d"
    );
}

#[test]
fn kannel_greek_and_extension_characters_go_as_ucs2() {
    let server = Server::start(vec![reply(202, "0: Accepted for delivery"); 3]);
    let gw = kannel(&server);
    for text in ["ΔΣ", "a{b}", "5€"] {
        gw.send(&sms(text)).expect("accepted");
    }
    for got in server.got() {
        let q = utf8_pairs(&got.query);
        assert_eq!(one(&q, "coding"), "2");
    }
    let server = Server::start(vec![reply(202, "0: Accepted for delivery")]);
    kannel(&server)
        .send(&sms("Ça va? 5£, à l'été è ñ ü"))
        .expect("ok");
    let q = utf8_pairs(&server.one().query);
    assert!(
        !keys(&q).contains(&"coding"),
        "Latin-1 GSM letters go plain"
    );
}

#[test]
fn kannel_reply_table() {
    let cases: Vec<Case> = vec![
        (
            reply(403, "Authorization failed for sendsms"),
            assert_rejected,
        ),
        (
            reply(400, "Missing receiver number, rejected"),
            assert_rejected,
        ),
        (
            reply(
                400,
                "Number(s) has/have been denied by white- and/or black-lists.",
            ),
            assert_rejected,
        ),
        (
            reply(400, "Sender missing and no global set, rejected"),
            assert_rejected,
        ),
        (
            reply(403, "Not routable. Do not try again."),
            assert_rejected,
        ),
        (
            reply(503, "Temporal failure, try again later."),
            assert_unavailable,
        ),
        (reply(429, "slow down"), assert_unavailable),
        (reply(500, "oops"), assert_in_doubt),
        (reply(502, "Bad Gateway"), assert_in_doubt),
        (reply(200, "OK"), assert_in_doubt),
        (reply(302, ""), assert_in_doubt),
    ];
    let server = Server::start(cases.iter().map(|(a, _)| a.clone()).collect());
    let gw = kannel(&server);
    for (act, check) in &cases {
        let r = gw.send(&sms("hi"));
        if let Err(e) = &r {
            assert!(!e.reason().contains("foo&bar"), "no password in {e}");
        }
        eprintln!("{act:?} -> {r:?}");
        check(r);
    }
}

// ---------------------------------------------------------------------------
// SMS.ru.

const SMSRU_OK: &str = r#"{"status":"OK","status_code":100,"sms":{"79161234567":{"status":"OK","status_code":100,"sms_id":"000000-10000000"}},"balance":4122.56}"#;

#[test]
fn smsru_request_and_accept() {
    let server = Server::start(vec![json(SMSRU_OK)]);
    let mut m = sms(PRIVET);
    m.sender = Some("Shop".into());
    let acc = smsru(&server).send(&m).expect("accepted");
    assert_eq!(acc.foreign_id.as_deref(), Some("000000-10000000"));
    assert!(!acc.already);
    assert!(acc.answer.contains("4122.56") && acc.answer.chars().count() <= MAX_ANSWER_CHARS);
    let got = server.one();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/sms/send");
    assert!(got.query.is_empty());
    assert_eq!(
        got.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let f = utf8_pairs(&got.body);
    assert_eq!(keys(&f), ["api_id", "to", "msg", "json", "from"]);
    assert_eq!(one(&f, "api_id"), "KEY-1&x=2");
    assert_eq!(one(&f, "to"), "79161234567");
    assert_eq!(one(&f, "msg"), PRIVET);
    assert_eq!(one(&f, "json"), "1");
    assert_eq!(one(&f, "from"), "Shop");
    let raw = String::from_utf8(got.body).expect("ASCII");
    assert!(raw.contains(&format!("&msg={PRIVET_UTF8}&")), "{raw}");
}

fn smsru_error(code: u16, text: &str) -> Act {
    json(&format!(
        r#"{{"status":"ERROR","status_code":{code},"status_text":"{text}"}}"#
    ))
}

fn smsru_number_error(code: u16) -> Act {
    json(&format!(
        r#"{{"status":"OK","status_code":100,"sms":{{"79161234567":{{"status":"ERROR","status_code":{code},"status_text":"x"}}}},"balance":1}}"#
    ))
}

#[test]
fn smsru_reply_table() {
    let cases: Vec<Case> = vec![
        (smsru_error(200, "Неправильный api_id"), assert_rejected),
        (smsru_error(201, "Не хватает средств"), assert_rejected),
        (smsru_number_error(202), assert_rejected),
        (smsru_number_error(207), assert_rejected),
        (smsru_error(212, "UTF-8"), assert_rejected),
        (
            smsru_error(220, "Сервис временно недоступен"),
            assert_unavailable,
        ),
        (smsru_number_error(220), assert_unavailable),
        (smsru_number_error(230), assert_rejected),
        (smsru_number_error(231), assert_in_doubt),
        (smsru_number_error(232), assert_in_doubt),
        (smsru_error(301, "bad login"), assert_rejected),
        (smsru_error(999, "new"), assert_rejected),
        (
            json(r#"{"status":"OK","status_code":100,"sms":{},"balance":1}"#),
            assert_in_doubt,
        ),
        (json("100\n000000-10000000\nbalance=1"), assert_in_doubt),
        (reply(500, "Internal Server Error"), assert_in_doubt),
        (reply(404, "Not Found"), assert_rejected),
        (reply(429, ""), assert_unavailable),
    ];
    let server = Server::start(cases.iter().map(|(a, _)| a.clone()).collect());
    let gw = smsru(&server);
    for (act, check) in &cases {
        let r = gw.send(&sms("hi"));
        eprintln!("{act:?} -> {r:?}");
        check(r);
    }
    // 231 says what the gateway said.
    let server = Server::start(vec![smsru_number_error(231)]);
    let e = smsru(&server).send(&sms("hi")).expect_err("231");
    assert!(e.reason().contains("identical text"), "{e}");
    // The number SMS.ru normalised is still found when it is the only one.
    let server = Server::start(vec![json(
        r#"{"status":"OK","status_code":"100","sms":{"89161234567":{"status":"OK","status_code":"100","sms_id":"1-2"}}}"#,
    )]);
    let acc = smsru(&server).send(&sms("hi")).expect("accepted");
    assert_eq!(acc.foreign_id.as_deref(), Some("1-2"));
}

// ---------------------------------------------------------------------------
// SMSC.ru.

#[test]
fn smsc_client_ids() {
    assert_eq!(smsc_client_id(""), "ct6c62272e07bb014262b821756295c58d");
    let a = smsc_client_id("rule:missed:sms:+79161234567");
    assert_eq!(a, smsc_client_id("rule:missed:sms:+79161234567"));
    assert_ne!(a, smsc_client_id("rule:missed:sms:+79161234568"));
    assert_eq!(a.len(), 34);
    assert!(a
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
}

#[test]
fn smsc_request_and_accept() {
    let cid = smsc_client_id("rule:missed:sms:+79161234567");
    let server = Server::start(vec![json(&format!(r#"{{"id":"{cid}","cnt":1}}"#))]);
    let mut m = sms(PRIVET);
    m.sender = Some("Shop".into());
    let acc = smsc(&server).send(&m).expect("accepted");
    assert_eq!(acc.foreign_id.as_deref(), Some(cid.as_str()));
    let got = server.one();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/sys/send.php");
    let f = utf8_pairs(&got.body);
    assert_eq!(
        keys(&f),
        ["login", "psw", "phones", "mes", "charset", "fmt", "id", "sender"]
    );
    assert_eq!(one(&f, "login"), "me");
    assert_eq!(one(&f, "psw"), "p@ss&w=rd");
    assert_eq!(one(&f, "phones"), "+79161234567");
    assert_eq!(one(&f, "mes"), PRIVET);
    assert_eq!(one(&f, "charset"), "utf-8");
    assert_eq!(one(&f, "fmt"), "3");
    assert_eq!(one(&f, "id"), cid);
    assert_eq!(one(&f, "sender"), "Shop");
    let raw = String::from_utf8(got.body).expect("ASCII");
    assert!(raw.contains("phones=%2B79161234567&"), "{raw}");
    assert!(raw.contains(&format!("mes={PRIVET_UTF8}&")), "{raw}");
    // A numeric id comes back as a number.
    let server = Server::start(vec![json(r#"{"id": 1234, "cnt": 2}"#)]);
    let acc = smsc(&server).send(&sms("hi")).expect("accepted");
    assert_eq!(acc.foreign_id.as_deref(), Some("1234"));
}

fn smsc_error(code: u16) -> Act {
    json(&format!(r#"{{"error":"описание","error_code":{code}}}"#))
}

#[test]
fn smsc_reply_table() {
    let cases: Vec<Case> = vec![
        (smsc_error(1), assert_rejected),
        (smsc_error(2), assert_rejected),
        (smsc_error(3), assert_rejected),
        (smsc_error(4), assert_unavailable),
        (smsc_error(5), assert_rejected),
        (smsc_error(6), assert_rejected),
        (smsc_error(7), assert_rejected),
        (smsc_error(8), assert_rejected),
        (smsc_error(42), assert_rejected),
        (json(r#"{"cnt":1}"#), assert_in_doubt),
        (json("OK - 1 SMS, ID - 1"), assert_in_doubt),
        (reply(500, ""), assert_in_doubt),
        (reply(403, "Forbidden"), assert_rejected),
    ];
    let server = Server::start(cases.iter().map(|(a, _)| a.clone()).collect());
    let gw = smsc(&server);
    for (act, check) in &cases {
        let r = gw.send(&sms("hi"));
        if let Err(e) = &r {
            assert!(!e.reason().contains("p@ss"), "no password in {e}");
        }
        eprintln!("{act:?} -> {r:?}");
        check(r);
    }
    let server = Server::start(vec![smsc_error(4)]);
    let e = smsc(&server).send(&sms("hi")).expect_err("4");
    assert!(e.reason().contains("minute"), "{e}");
}

#[test]
fn smsc_duplicate_asks_the_status() {
    let m = sms("hi");
    let cid = smsc_client_id(&m.id);
    // 9, then the status knows our id: already sent.
    let server = Server::start(vec![
        smsc_error(9),
        json(r#"{"status":1,"last_date":"28.12.2024 19:53:11","last_timestamp":1735404791}"#),
    ]);
    let acc = smsc(&server).send(&m).expect("already");
    assert!(acc.already);
    assert_eq!(acc.foreign_id.as_deref(), Some(cid.as_str()));
    let got = server.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].path, "/sys/status.php");
    let f = utf8_pairs(&got[1].body);
    assert_eq!(keys(&f), ["login", "psw", "phone", "id", "fmt", "charset"]);
    assert_eq!(one(&f, "phone"), "+79161234567");
    assert_eq!(one(&f, "id"), cid);
    assert_eq!(one(&f, "fmt"), "3");
    // 9, status not found (yet): in doubt, never "not sent".
    let server = Server::start(vec![smsc_error(9), json(r#"{"status":-3}"#)]);
    assert_in_doubt(smsc(&server).send(&m));
    // 9, status call dropped: in doubt.
    let server = Server::start(vec![smsc_error(9), Act::Close]);
    assert_in_doubt(smsc(&server).send(&m));
}

#[test]
fn smsc_reconcile() {
    let m = sms("hi");
    let server = Server::start(vec![
        json(r#"{"status":1,"last_date":"28.12.2024 19:53:11","last_timestamp":1735404791}"#),
        json(r#"{"status":-3}"#),
        json(r#"{"error":"message not found","error_code":3}"#),
        json(r#"{"error":"bad login","error_code":2}"#),
        json("garbage"),
        reply(500, ""),
    ]);
    let gw = smsc(&server);
    match gw.reconcile(&m) {
        Reconciled::Sent(acc) => {
            assert!(acc.already);
            assert_eq!(acc.foreign_id, Some(smsc_client_id(&m.id)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(gw.reconcile(&m), Reconciled::NotSent);
    assert_eq!(gw.reconcile(&m), Reconciled::NotSent);
    for _ in 0..3 {
        assert!(matches!(gw.reconcile(&m), Reconciled::Unknown(_)));
    }
    // The server is gone: unknown, not "not sent".
    assert!(matches!(gw.reconcile(&m), Reconciled::Unknown(_)));
    for got in server.got() {
        assert_eq!(got.path, "/sys/status.php");
        let f = utf8_pairs(&got.body);
        assert_eq!(one(&f, "id"), smsc_client_id(&m.id));
        assert_eq!(one(&f, "phone"), "+79161234567");
    }
}

#[test]
fn others_cannot_reconcile() {
    let server = Server::start(vec![]);
    for gw in [kannel(&server), smsru(&server), http_get(&server)] {
        assert!(matches!(gw.reconcile(&sms("hi")), Reconciled::Unknown(_)));
    }
    assert!(server.got().is_empty());
}

// ---------------------------------------------------------------------------
// The HTTP template gateway.

#[test]
fn http_get_template() {
    let server = Server::start(vec![reply(200, "queued")]);
    let mut m = sms(PRIVET);
    m.sender = Some("Shop".into());
    let acc = http_get(&server).send(&m).expect("accepted");
    assert_eq!(acc.answer, "queued");
    assert_eq!(acc.foreign_id, None);
    let got = server.one();
    assert_eq!(got.method, "GET");
    assert_eq!(got.path, "/send");
    let q = utf8_pairs(&got.query);
    assert_eq!(keys(&q), ["to", "digits", "msg", "from", "ref", "key"]);
    assert_eq!(one(&q, "to"), "+79161234567");
    assert_eq!(one(&q, "digits"), "79161234567");
    assert_eq!(one(&q, "msg"), PRIVET);
    assert_eq!(one(&q, "from"), "Shop");
    assert_eq!(one(&q, "ref"), m.id);
    assert_eq!(one(&q, "key"), "k&y=1");
    let raw = String::from_utf8(got.query).expect("ASCII");
    assert!(raw.starts_with("to=%2B79161234567&"), "{raw}");
}

#[test]
fn http_json_template() {
    let server = Server::start(vec![Act::Reply(
        201,
        "application/json",
        r#"{"ok":true,"message_id": "m-42"}"#.into(),
    )]);
    let mut m = sms("Привет \"друг\" \\ {text} \n");
    m.sender = Some("Shop".into());
    let acc = http_json(&server).send(&m).expect("accepted");
    assert_eq!(acc.foreign_id.as_deref(), Some("m-42"));
    let got = server.one();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/api/v1/send");
    assert_eq!(got.query, b"account=7");
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("authorization"), Some("Bearer t0k3n+/="));
    assert_eq!(
        got.header("idempotency-key"),
        Some("rule%3Amissed%3Asms%3A%2B79161234567")
    );
    let v: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 4);
    assert_eq!(v["to"], "+79161234567");
    assert_eq!(v["text"], m.text.as_str());
    assert_eq!(v["sender"], "Shop");
    assert_eq!(v["ref"], m.id.as_str());
}

#[test]
fn http_form_windows_1251() {
    let server = Server::start(vec![reply(200, "OK id=77")]);
    let mut c = HttpConfig::new(server.url("/gw"));
    c.body = Some("phone={to_digits}&text={text}&ref={id}".into());
    c.charset = HttpCharset::Windows1251;
    c.success_regex = Some("^OK".into());
    c.foreign_id_regex = Some(r"id=(\d+)".into());
    c.timeout = Duration::from_secs(5);
    let m = sms("Привет, мир! №1 & =");
    let acc = Gateway::Http(c.clone()).send(&m).expect("accepted");
    assert_eq!(acc.foreign_id.as_deref(), Some("77"));
    let got = server.one();
    assert_eq!(
        got.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let raw = String::from_utf8(got.body.clone()).expect("ASCII");
    assert!(raw.contains("text=%CF%F0%E8%E2%E5%F2%2C%20"), "{raw}");
    let f = pairs(&got.body);
    assert_eq!(
        f.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["phone", "text", "ref"]
    );
    let (text, _, bad) = encoding_rs::WINDOWS_1251.decode(&f[1].1);
    assert!(!bad);
    assert_eq!(text, m.text);
    // A character windows-1251 lacks: refused, nothing sent.
    assert_invalid(Gateway::Http(c).send(&sms("hi 👋")));
    assert_eq!(server.got().len(), 1);
}

#[test]
fn http_reply_rules() {
    let mut c = HttpConfig::new(String::new());
    c.success_regex = Some(r#""status":\s*"ok""#.into());
    c.permfail_regex = Some("INVALID_NUMBER|NO_FUNDS".into());
    c.tempfail_regex = Some("THROTTLED".into());
    c.timeout = Duration::from_secs(5);
    let cases: Vec<Case> = vec![
        (json(r#"{"status": "ok"}"#), |r| assert!(r.is_ok(), "{r:?}")),
        (json(r#"{"status": "queued"}"#), assert_in_doubt),
        (
            json(r#"{"status": "error", "code": "NO_FUNDS"}"#),
            assert_rejected,
        ),
        (reply(400, "INVALID_NUMBER"), assert_rejected),
        (
            json(r#"{"status": "ok", "warning": "THROTTLED"}"#),
            assert_unavailable,
        ),
        (reply(503, "THROTTLED"), assert_unavailable),
        (reply(503, "down"), assert_in_doubt),
        (reply(500, ""), assert_in_doubt),
        (reply(401, "who?"), assert_rejected),
        (reply(204, ""), assert_in_doubt),
    ];
    let server = Server::start(cases.iter().map(|(a, _)| a.clone()).collect());
    c.url = server.url("/x");
    let gw = Gateway::Http(c);
    for (act, check) in &cases {
        let r = gw.send(&sms("hi"));
        eprintln!("{act:?} -> {r:?}");
        check(r);
    }
}

#[test]
fn http_check_refuses_bad_templates() {
    let ok = {
        let mut c = HttpConfig::new("https://gw.example/send?key={secret}");
        c.body =
            Some(r#"{"to":"{to}","text":"{text}","n":1,"nested":{"a":[1,{"b":"{id}"}]}}"#.into());
        c.content_type = Some("application/json; charset=utf-8".into());
        c.headers.insert("X-Key".into(), "{secret}".into());
        c
    };
    assert_eq!(ok.check(), Ok(()));
    let bad: Vec<(&str, Change)> = vec![
        (
            "unknown placeholder",
            Box::new(|c| c.url = "https://x/{phone}".into()),
        ),
        ("ftp", Box::new(|c| c.url = "ftp://x/{to}".into())),
        ("no scheme", Box::new(|c| c.url = "x/{to}".into())),
        ("blank", Box::new(|c| c.url = "https://x/a b".into())),
        (
            "bad regex",
            Box::new(|c| c.success_regex = Some("(".into())),
        ),
        (
            "no group",
            Box::new(|c| c.foreign_id_regex = Some("id=\\d+".into())),
        ),
        ("GET body", Box::new(|c| c.method = HttpMethod::Get)),
        (
            "outside a string",
            Box::new(|c| c.body = Some(r#"{"to":{to}}"#.into())),
        ),
        ("not JSON", Box::new(|c| c.body = Some("to={to}".into()))),
        (
            "text/plain",
            Box::new(|c| c.content_type = Some("text/plain".into())),
        ),
        (
            "1251 JSON",
            Box::new(|c| c.charset = HttpCharset::Windows1251),
        ),
        (
            "text in a header",
            Box::new(|c| {
                c.headers.insert("X-Text".into(), "{text}".into());
            }),
        ),
        (
            "reserved header",
            Box::new(|c| {
                c.headers.insert("Content-Length".into(), "5".into());
            }),
        ),
        (
            "bad header name",
            Box::new(|c| {
                c.headers.insert("X Bad".into(), "1".into());
            }),
        ),
        ("no statuses", Box::new(|c| c.success_status.clear())),
        ("bad status", Box::new(|c| c.success_status = vec![99])),
        ("bad sender", Box::new(|c| c.sender = Some("a\nb".into()))),
        ("max_parts", Box::new(|c| c.max_parts = 0)),
        ("timeout", Box::new(|c| c.timeout = Duration::ZERO)),
    ];
    for (what, change) in bad {
        let mut c = ok.clone();
        change(&mut c);
        assert!(c.check().is_err(), "{what}: {c:?}");
        // Unusable at send time too, and nothing is sent.
        assert_unavailable(Gateway::Http(c).send(&sms("hi")));
    }
    // A template using {secret} without one set: nothing sent.
    assert_unavailable(Gateway::Http(ok).send(&sms("hi")));
}

#[test]
fn http_config_from_toml_like_json() {
    let c: HttpConfig = serde_json::from_value(serde_json::json!({
        "method": "GET",
        "url": "https://gw.example/send?to={to}&text={text}",
        "charset": "windows-1251",
        "success_status": [200],
        "success_regex": "^OK"
    }))
    .expect("parse");
    assert_eq!(c.method, HttpMethod::Get);
    assert_eq!(c.charset, HttpCharset::Windows1251);
    assert_eq!(c.max_parts, DEFAULT_MAX_PARTS);
    assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    assert_eq!(c.check(), Ok(()));
    for field in ["secret", "timeout_s", "sender", "nonsense"] {
        let r = serde_json::from_value::<HttpConfig>(serde_json::json!({
            "url": "https://gw.example/", field: "x"
        }));
        assert!(r.is_err(), "{field} is not read from [sms.http]");
    }
    let k: KannelConfig = serde_json::from_value(serde_json::json!({
        "username": "u", "password": "p", "timeout_s": 2.5
    }))
    .expect("kannel");
    assert_eq!(k.timeout, Duration::from_millis(2500));
    assert_eq!(k.url, "http://127.0.0.1:13013/cgi-bin/sendsms");
    assert!(serde_json::from_value::<SmsRuConfig>(serde_json::json!({
        "api_id": "k", "timeout": 3
    }))
    .is_err());
}

// ---------------------------------------------------------------------------
// Before or after sending.

fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

/// Each HTTP gateway pointed at `base` (no trailing slash).
fn all_http(base: &str, timeout: Duration) -> Vec<Gateway> {
    let mut k = KannelConfig::new("u", "p");
    k.url = format!("{base}/cgi-bin/sendsms");
    k.timeout = timeout;
    let mut r = SmsRuConfig::new("k");
    r.url = format!("{base}/sms/send");
    r.timeout = timeout;
    let mut s = SmscConfig::new("l", "p");
    s.url = format!("{base}/sys/send.php");
    s.status_url = format!("{base}/sys/status.php");
    s.timeout = timeout;
    let mut h = HttpConfig::new(format!("{base}/send?to={{to}}"));
    h.timeout = timeout;
    vec![
        Gateway::Kannel(k),
        Gateway::SmsRu(r),
        Gateway::Smsc(s),
        Gateway::Http(h),
    ]
}

#[test]
fn connection_refused_is_unavailable() {
    for gw in all_http(&refused_url(), Duration::from_secs(5)) {
        let r = gw.send(&sms("hi"));
        eprintln!("{} -> {r:?}", gw.name());
        assert_unavailable(r);
    }
}

#[test]
fn unknown_host_is_unavailable() {
    for gw in all_http("http://calltrail-test.invalid", Duration::from_secs(2)) {
        let r = gw.send(&sms("hi"));
        eprintln!("{} -> {r:?}", gw.name());
        assert_unavailable(r);
    }
}

#[test]
fn connection_dropped_after_the_request_is_in_doubt() {
    let server = Server::start(vec![Act::Close; 4]);
    let base = format!("http://{}", server.addr);
    for gw in all_http(&base, Duration::from_secs(5)) {
        let r = gw.send(&sms("hi"));
        eprintln!("{} -> {r:?}", gw.name());
        assert_in_doubt(r);
    }
    assert_eq!(server.got().len(), 4, "each request arrived whole");
}

#[test]
fn no_answer_after_the_request_is_in_doubt() {
    let server = Server::start(vec![Act::Hang(Duration::from_secs(2)); 4]);
    let base = format!("http://{}", server.addr);
    for gw in all_http(&base, Duration::from_millis(300)) {
        let start = Instant::now();
        let r = gw.send(&sms("hi"));
        eprintln!("{} -> {r:?}", gw.name());
        assert_in_doubt(r);
        assert!(start.elapsed() < Duration::from_millis(1500));
    }
}

#[test]
fn https_speaks_tls_and_a_refused_handshake_is_unavailable() {
    let server = Server::start(vec![Act::TlsAlert; 4]);
    let base = format!("https://localhost:{}", server.addr.port());
    for gw in all_http(&base, Duration::from_secs(5)) {
        let r = gw.send(&sms("hi"));
        eprintln!("{} -> {r:?}", gw.name());
        assert_unavailable(r);
    }
    let got = server.got();
    assert_eq!(got.len(), 4);
    for hello in got {
        // A TLS handshake record holding a ClientHello for "localhost".
        assert_eq!(&hello.body[..2], &[0x16, 0x03]);
        assert_eq!(hello.body[5], 0x01, "ClientHello");
        assert!(hello.body.windows(9).any(|w| w == b"localhost"), "SNI");
    }
}

// ---------------------------------------------------------------------------
// Injection: nothing a caller writes changes the request's structure.

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = [
        "line1\nline2",
        "a\r\nX-Injected: 1\r\n\r\nGET / HTTP/1.1",
        "a\rb",
        "a&to=+70000000000&password=x",
        "x=y",
        "a;b",
        "a|b",
        "a,b,+79990000000",
        "\"double\" 'single' `back`",
        "${SHELL(rm -rf /)}",
        "$[1+1]",
        "<script>alert(1)</script>",
        "%0d%0aX: y%00",
        "+ plus + space ",
        "Привет, мир! 👋",
        "\\ back\\slash \\\" \\u0000",
        "#hash ?q=1 /path",
        "{to}{text}{secret}{id}",
        "\u{2028}\u{2029}\u{85}\u{7f}\t",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    texts.push("A".repeat(10 * 1024));
    texts.push("Ж&=\n".repeat(2560));
    texts
}

fn roomy(gw: Gateway) -> Gateway {
    match gw {
        Gateway::Kannel(mut c) => {
            c.max_parts = 1000;
            Gateway::Kannel(c)
        }
        Gateway::SmsRu(mut c) => {
            c.max_parts = 1000;
            Gateway::SmsRu(c)
        }
        Gateway::Smsc(mut c) => {
            c.max_parts = 1000;
            Gateway::Smsc(c)
        }
        Gateway::Http(mut c) => {
            c.max_parts = 1000;
            Gateway::Http(c)
        }
        Gateway::Folder(mut c) => {
            c.max_parts = 1000;
            Gateway::Folder(c)
        }
    }
}

#[test]
fn injection_corpus_keeps_every_request_whole() {
    let texts = corpus();
    let n = texts.len();
    let cid = smsc_client_id(&sms("x").id);

    let k = Server::start(vec![reply(202, "0: Accepted for delivery"); n]);
    let r = Server::start(vec![json(SMSRU_OK); n]);
    let s = Server::start(vec![json(&format!(r#"{{"id":"{cid}","cnt":1}}"#)); n]);
    let hj = Server::start(vec![json(r#"{"message_id":"1"}"#); n]);
    let hg = Server::start(vec![reply(200, "ok"); n]);
    let gateways = [
        roomy(kannel(&k)),
        roomy(smsru(&r)),
        roomy(smsc(&s)),
        roomy(http_json(&hj)),
        roomy(http_get(&hg)),
    ];
    for text in &texts {
        for gw in &gateways {
            gw.send(&sms(text))
                .unwrap_or_else(|e| panic!("{} {text:?}: {e}", gw.name()));
        }
    }

    for (i, text) in texts.iter().enumerate() {
        let q = utf8_pairs(&k.got()[i].query);
        assert_eq!(&keys(&q)[..4], ["username", "password", "to", "text"]);
        assert!(keys(&q)[4..]
            .iter()
            .all(|k| ["coding", "charset"].contains(k)));
        assert_eq!(one(&q, "to"), "+79161234567");
        assert_eq!(one(&q, "password"), "foo&bar=baz");
        assert_eq!(one(&q, "text").as_bytes(), text.as_bytes());

        let f = utf8_pairs(&r.got()[i].body);
        assert_eq!(keys(&f), ["api_id", "to", "msg", "json"]);
        assert_eq!(one(&f, "to"), "79161234567");
        assert_eq!(one(&f, "msg").as_bytes(), text.as_bytes());

        let f = utf8_pairs(&s.got()[i].body);
        assert_eq!(
            keys(&f),
            ["login", "psw", "phones", "mes", "charset", "fmt", "id"]
        );
        assert_eq!(one(&f, "phones"), "+79161234567");
        assert_eq!(one(&f, "mes").as_bytes(), text.as_bytes());

        let got = &hj.got()[i];
        assert_eq!(got.path, "/api/v1/send");
        assert_eq!(got.query, b"account=7");
        assert_eq!(
            got.headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .filter(|k| k.starts_with("x-"))
                .count(),
            0,
            "no header added"
        );
        let v: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON");
        assert_eq!(v.as_object().expect("object").len(), 4);
        assert_eq!(v["to"], "+79161234567");
        assert_eq!(
            v["text"].as_str().expect("text").as_bytes(),
            text.as_bytes()
        );

        let got = &hg.got()[i];
        assert_eq!(got.path, "/send");
        let q = utf8_pairs(&got.query);
        assert_eq!(keys(&q), ["to", "digits", "msg", "from", "ref", "key"]);
        assert_eq!(one(&q, "to"), "+79161234567");
        assert_eq!(one(&q, "msg").as_bytes(), text.as_bytes());
        assert_eq!(one(&q, "key"), "k&y=1");
    }

    // The folder keeps the text byte-exact after its one blank line.
    let tmp = tempfile::tempdir().expect("tempdir");
    let gw = roomy(folder(tmp.path()));
    for (i, text) in texts.iter().enumerate() {
        let mut m = sms(text);
        m.id = format!("c{i}");
        gw.send(&m).expect("folder");
        let content = std::fs::read(tmp.path().join(format!("c{i}.sms"))).expect("read");
        let header = b"To: +79161234567\nId: c".len();
        let sep = content
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("blank line");
        assert!(sep < header + 4, "the first blank line ends the header");
        assert_eq!(&content[sep + 2..content.len() - 1], text.as_bytes());
    }
}

#[test]
fn hostile_numbers_senders_and_ids_never_reach_a_gateway() {
    let server = Server::start(vec![]);
    let gateways = [
        kannel(&server),
        smsru(&server),
        smsc(&server),
        http_json(&server),
    ];
    for gw in &gateways {
        for to in [
            "+7916\r\nX: y",
            "7916&to=1",
            "7916,7917",
            "7916 7917",
            "+7916;1",
            "${X}",
        ] {
            let mut m = sms("hi");
            m.to = to.into();
            assert_invalid(gw.send(&m));
        }
        for sender in [
            "A\r\nB",
            "A&from=B",
            "A=B",
            "${SHELL(x)}",
            "<b>",
            "A,B",
            "A|B",
            "A;B",
        ] {
            let mut m = sms("hi");
            m.sender = Some(sender.into());
            assert_invalid(gw.send(&m));
        }
    }
    assert!(server.got().is_empty());
}

#[test]
fn secrets_stay_out_of_debug_and_describe() {
    let mut k = KannelConfig::new("tester", "S3CRET-K");
    k.url = "http://127.0.0.1:13013/cgi-bin/sendsms?x=S3CRET-Q".into();
    let mut r = SmsRuConfig::new("S3CRET-R");
    r.url = "https://user:S3CRET-U@sms.ru/sms/send".into();
    let s = SmscConfig::new("me", "S3CRET-C");
    let mut h = HttpConfig::new("https://gw.example/send?key=S3CRET-H");
    h.secret = Some("S3CRET-S".into());
    h.body = Some("pw=S3CRET-B&t={text}".into());
    h.headers.insert("X-Key".into(), "S3CRET-X".into());
    for gw in [
        Gateway::Kannel(k),
        Gateway::SmsRu(r),
        Gateway::Smsc(s),
        Gateway::Http(h),
        Gateway::Folder(FolderConfig::new("/var/spool/sms")),
    ] {
        let shown = format!("{gw:?} {}", gw.describe());
        assert!(!shown.contains("S3CRET"), "{shown}");
        eprintln!("{}", gw.describe());
    }
}
