//! `Mailer::smtp` against a real aiosmtpd server: plain + AUTH, STARTTLS and
//! implicit TLS with a self-signed certificate, and the transient/permanent
//! classification of 4xx/5xx replies and refused connections.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{find_tool, free_port, Server};
use crate::{EmailMessage, Mailer, SendOutcome, SmtpConfig, SmtpTls};

const SERVER_PY: &str = include_str!("smtp_server.py");

fn python() -> Option<PathBuf> {
    let python = find_tool("CALLTRAIL_PYTHON", |venv| Some(venv.join("bin/python")))?;
    let ok = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// Self-signed (non-CA) certificate for 127.0.0.1 via the openssl CLI.
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=calltrail-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // `req -x509` marks the certificate CA:TRUE by default, and webpki
        // refuses a CA certificate as the server's own (CaUsedAsEndEntity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    status.status.success().then_some((cert, key))
}

struct Smtp {
    _server: Server,
    port: u16,
    out: PathBuf,
}

fn start(dir: &Path, mode: &str, tls_files: Option<&(PathBuf, PathBuf)>) -> Option<Smtp> {
    let Some(python) = python() else {
        eprintln!("SKIP: no python with aiosmtpd (set CALLTRAIL_PYTHON)");
        return None;
    };
    let script = dir.join("smtp_server.py");
    std::fs::write(&script, SERVER_PY).expect("write server script");
    let out = dir.join(format!("out-{mode}"));
    std::fs::create_dir_all(&out).expect("out dir");
    let port = free_port();
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(mode).arg(port.to_string()).arg(&out);
    if let Some((cert, key)) = tls_files {
        cmd.arg(cert).arg(key);
    }
    let server = Server::start(cmd, dir.join(format!("smtp-{mode}.log")), port);
    Some(Smtp {
        _server: server,
        port,
        out,
    })
}

fn config(port: u16, tls: SmtpTls) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls,
        username: Some("alerts".to_owned()),
        password: Some("s3cret".to_owned()),
        timeout: Duration::from_secs(10),
        extra_root_cert_pem: None,
        hello_name: Some("calltrail-test.local".to_owned()),
    }
}

fn message(id: &str, to: &str) -> EmailMessage {
    EmailMessage {
        id: id.to_owned(),
        from: "CallTrail <calltrail@example.com>".to_owned(),
        to: vec![to.to_owned()],
        subject: "Пропущенный звонок\r\nBcc: victim@evil.example".to_owned(),
        text_body: "Звонок от Иван Петров\n.\nконец".to_owned(),
    }
}

/// The JSON the server stored for its `n`-th accepted message.
fn stored(out: &Path, n: usize) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join(format!("{n:04}.json"))).expect("stored message");
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn plain_with_auth_and_reply_classification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(smtp) = start(dir.path(), "plain", None) else {
        return;
    };
    let mailer = Mailer::smtp(&config(smtp.port, SmtpTls::None)).expect("mailer");
    assert_eq!(
        mailer.describe(),
        format!("smtp://127.0.0.1:{} (plain)", smtp.port)
    );

    let outcome = mailer
        .send(&message("call-1/missed", "ops@example.com"))
        .await
        .expect("sent");
    assert_eq!(outcome, SendOutcome::Sent);
    let m = stored(&smtp.out, 1);
    assert_eq!(m["mail_from"], "calltrail@example.com");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["ops@example.com"]));
    assert_eq!(m["login"], "alerts");
    assert_eq!(m["tls"], false);
    assert_eq!(m["bcc"], false);
    assert_eq!(m["subject"], "Пропущенный звонок Bcc: victim@evil.example");
    assert_eq!(m["from"], "CallTrail <calltrail@example.com>");
    let message_id = m["message_id"].as_str().expect("message id");
    assert!(
        message_id.starts_with("<call-1_missed-") && message_id.ends_with("@calltrail>"),
        "{message_id}"
    );
    assert_eq!(
        m["body"]
            .as_str()
            .map(|b| b.replace("\r\n", "\n").trim_end().to_owned()),
        Some("Звонок от Иван Петров\n.\nконец".to_owned())
    );

    let err = mailer
        .send(&message("call-2", "tempfail@example.com"))
        .await
        .expect_err("451");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.smtp_code().as_deref(), Some("451"));

    let err = mailer
        .send(&message("call-3", "reject@example.com"))
        .await
        .expect_err("550");
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(err.smtp_code().as_deref(), Some("550"));

    let mut bad_auth = config(smtp.port, SmtpTls::None);
    bad_auth.password = Some("wrong".to_owned());
    let err = Mailer::smtp(&bad_auth)
        .expect("mailer")
        .send(&message("call-4", "ops@example.com"))
        .await
        .expect_err("535");
    assert!(!err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let port = free_port();
    let mut cfg = config(port, SmtpTls::None);
    cfg.timeout = Duration::from_secs(2);
    let mailer = Mailer::smtp(&cfg).expect("mailer");
    let err = mailer
        .send(&message("call-5", "ops@example.com"))
        .await
        .expect_err("nothing listens");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.smtp_code(), None);
}

async fn tls_roundtrip(mode: &str, tls: SmtpTls) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(files) = self_signed(dir.path()) else {
        eprintln!("SKIP: openssl CLI not available");
        return;
    };
    let Some(smtp) = start(dir.path(), mode, Some(&files)) else {
        return;
    };

    // Without the extra root the self-signed certificate is refused.
    let untrusted = Mailer::smtp(&config(smtp.port, tls)).expect("mailer");
    let err = untrusted
        .send(&message("call-6", "ops@example.com"))
        .await
        .expect_err("untrusted certificate");
    assert!(err.to_string().contains("SMTP"), "{err}");

    let mut cfg = config(smtp.port, tls);
    cfg.extra_root_cert_pem = Some(files.0.clone());
    let mailer = Mailer::smtp(&cfg).expect("mailer");
    let outcome = mailer
        .send(&message("call-7", "ops@example.com"))
        .await
        .expect("sent over TLS");
    assert_eq!(outcome, SendOutcome::Sent);
    let m = stored(&smtp.out, 1);
    assert_eq!(m["tls"], true);
    assert_eq!(m["login"], "alerts");
    assert_eq!(m["subject"], "Пропущенный звонок Bcc: victim@evil.example");
}

#[tokio::test]
async fn starttls_with_extra_root() {
    tls_roundtrip("starttls", SmtpTls::StartTls).await;
}

#[tokio::test]
async fn implicit_tls_with_extra_root() {
    tls_roundtrip("tls", SmtpTls::Tls).await;
}

#[tokio::test]
async fn silent_server_times_out_transiently() {
    // Accepts connections and never says a word (no 220 greeting).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock);
        }
    });
    let mut cfg = config(port, SmtpTls::None);
    cfg.timeout = Duration::from_millis(500);
    let mailer = Mailer::smtp(&cfg).expect("mailer");
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        mailer.send(&message("call-8", "ops@example.com")),
    )
    .await
    .expect("send must give up on its own")
    .expect_err("no greeting");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    hold.abort();
}
