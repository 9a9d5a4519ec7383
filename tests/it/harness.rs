//! Smoke tests of the test harness itself (`support`): the broker, the
//! independent Kafka client, the SMTP server with and without TLS/AUTH.
//! If these fail, fix the harness (or run `bash tests/setup.sh`) before
//! reading anything into the product's test failures.

use std::process::Command;
use std::time::Duration;

use crate::support::broker::Broker;
use crate::support::smtp::{ReceivedMail, SmtpOptions, SmtpServer, SmtpTls};
use crate::support::{tools, wait_until};

const T: Duration = Duration::from_secs(20);

#[test]
fn tools_are_installed_and_ports_are_free() {
    let version = tools::run(
        Command::new(tools::tansu()).arg("--version"),
        Duration::from_secs(20),
    );
    assert!(version.success(), "tansu --version: {version:?}");
    assert!(version.stdout.contains("tansu"), "{version:?}");

    let py = tools::run(
        Command::new(tools::python()).args(["-c", "import aiosmtpd, kafka; print('ok')"]),
        Duration::from_secs(20),
    );
    assert!(
        py.success() && py.stdout.trim() == "ok",
        "venv python: {py:?}"
    );

    assert!(tools::repo_root().join("Cargo.toml").is_file());
    assert!(tools::tools_dir().is_absolute());

    let port = tools::free_port();
    assert_ne!(port, 0);
    // The port can be bound again right away.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("free_port gave a busy port");

    let mut calls = 0;
    assert!(wait_until(Duration::from_secs(2), || {
        calls += 1;
        calls == 3
    }));
    assert!(!wait_until(Duration::from_millis(100), || false));
}

#[test]
fn broker_round_trip_on_an_auto_created_topic() {
    let broker = Broker::start();
    assert_eq!(broker.bootstrap(), format!("127.0.0.1:{}", broker.port()));

    broker.produce("smoke", Some("call-1"), &["hello", "wörld"]);
    let got = broker.consume("smoke", 2, T);
    assert_eq!(got.len(), 2, "{got:#?}");
    // Same key, so same partition and in order.
    assert_eq!(got[0].partition, got[1].partition);
    assert_eq!((got[0].offset, got[1].offset), (0, 1));
    assert_eq!(got[0].key.as_deref(), Some("call-1"));
    assert_eq!(got[0].value, "hello");
    assert_eq!(got[1].value, "wörld");
    assert!(got[0].headers.is_empty());
    assert!(broker.topics().contains(&"smoke".to_owned()));
    let log = broker.log_tail(20);
    assert!(!log.contains("panicked") && !log.contains("ERROR"), "{log}");
}

#[test]
fn broker_explicit_topic_exact_count_and_missing_topic() {
    let broker = Broker::start();
    broker.create_topic("one", 1);
    broker.create_topic("one", 1); // idempotent
    broker.produce("one", None, &["a", "b", "c"]);

    let got = broker.consume_settled("one", 3, T, Duration::from_millis(500));
    let summary: Vec<_> = got
        .iter()
        .map(|m| (m.key.clone(), m.value.as_str(), m.partition, m.offset))
        .collect();
    assert_eq!(
        summary,
        [(None, "a", 0, 0), (None, "b", 0, 1), (None, "c", 0, 2)]
    );

    // Reading a topic nobody wrote to must fail loudly, not return nothing.
    let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        broker.consume("never-written", 1, Duration::from_secs(1))
    }));
    let message = missing
        .err()
        .and_then(|p| p.downcast::<String>().ok())
        .expect("consume of a missing topic should panic with a message");
    assert!(message.contains("does not exist"), "{message}");
    assert!(!broker.topics().contains(&"never-written".to_owned()));
}

/// Sends one mail with Python's smtplib. `Ok(())` if delivered, else
/// `Err((code, text))` of the refusing reply.
fn send_mail(
    server: &SmtpServer,
    starttls: bool,
    auth: Option<(&str, &str)>,
    subject: &str,
) -> Result<(), (u16, String)> {
    const SEND: &str = r#"
import smtplib, ssl, sys
port, mode, user, password, ca, subject = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca) if ca else None
msg = ("From: Calltrail <alerts@pbx.test>\r\nTo: ops@example.test\r\n"
       f"Subject: {subject}\r\n\r\nline one\r\n.line with a dot\r\n")
try:
    if mode == "implicit":
        s = smtplib.SMTP_SSL("127.0.0.1", int(port), context=ctx, timeout=10)
    else:
        s = smtplib.SMTP("127.0.0.1", int(port), timeout=10)
    with s:
        if mode == "starttls":
            s.starttls(context=ctx)
        if user:
            s.login(user, password)
        s.sendmail("alerts@pbx.test", ["ops@example.test", "boss@example.test"], msg)
    print("DELIVERED")
except smtplib.SMTPResponseException as e:
    print("REFUSED", e.smtp_code, e.smtp_error.decode(errors="replace"))
    sys.exit(2)
"#;
    let mode = match server.options().tls {
        SmtpTls::Implicit => "implicit",
        _ if starttls => "starttls",
        _ => "plain",
    };
    let (user, password) = auth.unwrap_or(("", ""));
    let ca = server
        .ca_cert_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let out = tools::run(
        Command::new(tools::python()).args([
            "-c",
            SEND,
            &server.port().to_string(),
            mode,
            user,
            password,
            &ca,
            subject,
        ]),
        Duration::from_secs(30),
    );
    match out.code {
        Some(0) => Ok(()),
        Some(2) => {
            let line = out.stdout.trim();
            let mut parts = line.splitn(3, ' ');
            assert_eq!(parts.next(), Some("REFUSED"), "{out:?}");
            let code = parts.next().and_then(|c| c.parse().ok()).expect("code");
            Err((code, parts.next().unwrap_or_default().to_owned()))
        }
        _ => panic!(
            "smtplib client crashed: {out:?}\nserver log:\n{}",
            server.log_tail(30)
        ),
    }
}

fn assert_smoke_mail(mail: &ReceivedMail, subject: &str) {
    assert_eq!(mail.envelope_from, "alerts@pbx.test");
    assert_eq!(mail.envelope_to, ["ops@example.test", "boss@example.test"]);
    assert_eq!(mail.header("subject").as_deref(), Some(subject));
    assert_eq!(
        mail.header("From").as_deref(),
        Some("Calltrail <alerts@pbx.test>")
    );
    assert_eq!(mail.body(), "line one\r\n.line with a dot\r\n");
}

#[test]
fn smtp_plain_delivers_to_the_maildir() {
    let server = SmtpServer::start();
    assert!(server.ca_cert_path().is_none());
    assert!(server.messages().is_empty());

    send_mail(&server, false, None, "first").expect("plain delivery");
    send_mail(&server, false, None, "second").expect("plain delivery");
    let mails = server.wait_for_messages(2, T);
    assert_eq!(mails.len(), 2);
    assert_smoke_mail(&mails[0], "first");
    assert_smoke_mail(&mails[1], "second");
    assert!(!mails[0].tls);
    assert_eq!(mails[0].auth_login, None);
    assert!(server.maildir().join("new").is_dir());
}

#[test]
fn smtp_starttls_with_auth() {
    let server = SmtpServer::start_with(SmtpOptions::starttls().with_auth("alice", "s3cret"));
    let ca = server.ca_cert_path().expect("TLS server has a CA");
    let pem = std::fs::read_to_string(&ca).expect("read CA");
    assert!(pem.contains("BEGIN CERTIFICATE"));

    // No STARTTLS: refused before anything is accepted.
    let err = send_mail(&server, false, None, "clear").expect_err("needs STARTTLS");
    assert_eq!(err.0, 530, "{err:?}");
    // Wrong password: a proper 535.
    let err = send_mail(&server, true, Some(("alice", "wrong")), "bad").expect_err("bad password");
    assert_eq!(err.0, 535, "{err:?}");
    // TLS without AUTH: refused.
    let err = send_mail(&server, true, None, "anon").expect_err("needs AUTH");
    assert_eq!(err.0, 530, "{err:?}");
    assert!(server.messages().is_empty());

    send_mail(&server, true, Some(("alice", "s3cret")), "secure").expect("delivery");
    let mails = server.wait_for_messages(1, T);
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_smoke_mail(&mails[0], "secure");
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth_login.as_deref(), Some("alice"));
}

#[test]
fn smtp_implicit_tls_with_auth() {
    let server = SmtpServer::start_with(SmtpOptions::implicit_tls().with_auth("bob", "pw"));
    let err = send_mail(&server, false, Some(("bob", "nope")), "bad").expect_err("bad password");
    assert_eq!(err.0, 535, "{err:?}");
    send_mail(&server, false, Some(("bob", "pw")), "smtps").expect("delivery");
    let mails = server.wait_for_messages(1, T);
    assert_smoke_mail(&mails[0], "smtps");
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth_login.as_deref(), Some("bob"));
}

#[test]
fn smtp_clear_text_auth() {
    let server = SmtpServer::start_with(SmtpOptions::plain().with_auth("carol", "pw"));
    let err = send_mail(&server, false, None, "anon").expect_err("needs AUTH");
    assert_eq!(err.0, 530, "{err:?}");
    send_mail(&server, false, Some(("carol", "pw")), "plain auth").expect("delivery");
    let mails = server.wait_for_messages(1, T);
    assert!(!mails[0].tls);
    assert_eq!(mails[0].auth_login.as_deref(), Some("carol"));
}
