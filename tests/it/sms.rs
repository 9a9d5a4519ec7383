//! `sms` rules on a running daemon: the embedded default (a folder of
//! files), mobile numbers only, one first-call SMS per number ever, at most
//! N a day, Cyrillic text byte-exact; a gateway that takes the request and
//! never answers leaves the SMS `in_doubt`, and a restart does not send it
//! again; Kannel (the real gateway, with its fake SMSC) receives exactly
//! one message per due SMS with the text as written.

use crate::daemon::{append, calltrail, query_json, Daemon};
use crate::rules::daemon_config;
use crate::support::kannel::Kannel;
use crate::support::wait_until;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The `*.sms` files of the folder gateway, parsed: (to, text).
fn folder(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "sms"))
                .map(|e| {
                    let s = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let (head, text) = s.split_once("\n\n").unwrap_or((&s, ""));
                    let to = head
                        .lines()
                        .find_map(|l| l.strip_prefix("To: "))
                        .unwrap_or("")
                        .to_string();
                    (to, text.strip_suffix('\n').unwrap_or(text).to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn answered(id: &str, caller: &str, at: i64) -> String {
    format!(
        "{at}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|PJSIP/201|CONNECT|2|{id}.2|1\n{}|{id}|support|PJSIP/201|COMPLETECALLER|2|20|1\n",
        at + 2,
        at + 22
    )
}

fn lost(id: &str, caller: &str, at: i64) -> String {
    format!(
        "{at}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|NONE|ABANDON|1|1|30\n",
        at + 30
    )
}

fn statuses(cfg: &Path) -> Vec<(String, String, String)> {
    query_json(
        cfg,
        "SELECT action_id, status, coalesce(last_error, '') AS e FROM actions ORDER BY 1",
    )
    .iter()
    .map(|r| {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        (s("action_id"), s("status"), s("e"))
    })
    .collect()
}

const WELCOME: &str = "Спасибо, что позвонили! Наш адрес: ул. Ленина, 1; тел. +7 495 123-45-67";

#[test]
fn sms_rules_send_to_mobiles_once_within_their_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[sms]
sender = "Shop"

[[rules]]
name = "welcome"
when = "first_call"
action = "sms"
once_per_number = true
text = "{WELCOME}"

[[rules]]
name = "sorry"
when = "missed_opened"
action = "sms"
per_number_per_day = 1
text = "Мы пропустили ваш звонок в {{{{ queue }}}} и перезвоним."
"#
        ),
    );
    let check = calltrail(&cfg, &["check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    let t = chrono::Utc::now().timestamp() - 3000;
    // M: a mobile, answered twice (one welcome); L: a Moscow landline,
    // answered (no SMS: not a mobile); N: a mobile lost, answered (its
    // first call was lost: no welcome), lost again after that episode
    // closed (a second "sorry" the same day: over the limit).
    let log = answered("m1", "89161110001", t)
        + &answered("m2", "89161110001", t + 100)
        + &answered("l1", "84951234567", t + 200)
        + &lost("n1", "89161110002", t + 300)
        + &answered("n2", "89161110002", t + 400)
        + &lost("n3", "89161110002", t + 500);
    append(&dir.path().join("queue_log"), log.as_bytes());
    let sms_dir = dir.path().join("sms");
    assert!(
        wait_until(Duration::from_secs(30), || folder(&sms_dir).len() == 2),
        "{:?}\n{:?}\n{}",
        folder(&sms_dir),
        statuses(&cfg),
        daemon.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let got = folder(&sms_dir);
    assert_eq!(
        got,
        [
            ("+79161110001".to_string(), WELCOME.to_string()),
            (
                "+79161110002".to_string(),
                "Мы пропустили ваш звонок в support и перезвоним.".to_string()
            ),
        ]
    );
    let st = statuses(&cfg);
    let find = |prefix: &str| -> Vec<&(String, String, String)> {
        st.iter().filter(|r| r.0.starts_with(prefix)).collect()
    };
    // The landline's welcome is recorded as skipped, with the reason.
    let l = find("rule:welcome:sms:+74951234567");
    assert_eq!(l.len(), 1, "{st:?}");
    assert_eq!(l[0].1, "skipped");
    assert!(l[0].2.contains("fixed_line"), "{st:?}");
    // N's second episode the same day: skipped by the daily limit.
    let n = find("rule:sorry:sms:+79161110002:");
    assert_eq!(n.len(), 2, "{st:?}");
    assert_eq!(n.iter().filter(|r| r.1 == "done").count(), 1, "{st:?}");
    let limited: Vec<_> = n.iter().filter(|r| r.1 == "skipped").collect();
    assert_eq!(limited.len(), 1, "{st:?}");
    assert!(limited[0].2.contains("per_number_per_day = 1"), "{st:?}");
    // What the gateway answered is kept.
    let r = query_json(
        &cfg,
        "SELECT result FROM actions WHERE action_id = 'rule:welcome:sms:+79161110001'",
    );
    assert!(
        r[0]["result"]
            .as_str()
            .is_some_and(|s| s.ends_with(".sms") || s.contains(".sms")),
        "{r:?}"
    );
    // A restart and a rederive send nothing again.
    let before = statuses(&cfg);
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    let out = calltrail(&cfg, &["rederive"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d2.log"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(statuses(&cfg), before);
    assert_eq!(folder(&sms_dir).len(), 2);
    drop(daemon);
}

/// A gateway that reads each request and closes without answering.
fn black_hole() -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/send", l.local_addr().expect("addr"));
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            seen.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (url, n)
}

#[test]
fn an_sms_whose_outcome_is_unknown_is_never_sent_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, requests) = black_hole();
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[sms]
gateway = "http"
timeout_s = 2
[sms.http]
method = "POST"
url = "{url}"
body = "to={{to}}&text={{text}}"
content_type = "application/x-www-form-urlencoded"

[[rules]]
name = "sorry"
when = "missed_opened"
action = "sms"
text = "We missed your call"
"#
        ),
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    daemon.wait_http();
    let t = chrono::Utc::now().timestamp() - 600;
    append(
        &dir.path().join("queue_log"),
        lost("x1", "89161110005", t).as_bytes(),
    );
    assert!(
        wait_until(Duration::from_secs(30), || statuses(&cfg)
            .iter()
            .any(|r| r.1 == "in_doubt")),
        "{:?}\n{}",
        statuses(&cfg),
        daemon.log()
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    let st = statuses(&cfg);
    assert!(st[0].2.contains("may have been sent"), "{st:?}");
    // A restart does not resend it.
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    let daemon = Daemon::start(&cfg, &dir.path().join("d2.log"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert_eq!(statuses(&cfg)[0].1, "in_doubt");
    drop(daemon);
}

#[test]
fn kannel_receives_each_due_sms_once_with_its_cyrillic_text() {
    let kannel = Kannel::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kannel.pass"), kannel.password()).expect("password");
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[sms]
gateway = "kannel"
sender = "Shop"
[sms.kannel]
url = "{url}"
username = "{user}"
password = {{ file = "kannel.pass" }}

[[rules]]
name = "sorry"
when = "missed_opened"
action = "sms"
text = "Мы пропустили ваш звонок ({{{{ caller }}}}). Перезвоним!"
"#,
            url = kannel.sendsms_url(),
            user = kannel.username(),
        ),
    );
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    let t = chrono::Utc::now().timestamp() - 600;
    append(
        &dir.path().join("queue_log"),
        (lost("k1", "89161110006", t) + &lost("k2", "89161110007", t + 10)).as_bytes(),
    );
    let got = kannel.wait_received(2, Duration::from_secs(30));
    assert_eq!(got.len(), 2, "{got:?}\n{}", daemon.log());
    let mut pairs: Vec<(String, String)> =
        got.iter().map(|m| (m.to.clone(), m.text.clone())).collect();
    pairs.sort();
    let want = |n: &str| {
        (
            n.trim_start_matches('+').to_string(),
            format!("Мы пропустили ваш звонок ({n}). Перезвоним!"),
        )
    };
    let norm = |p: &(String, String)| (p.0.trim_start_matches('+').to_string(), p.1.clone());
    assert_eq!(
        pairs.iter().map(norm).collect::<Vec<_>>(),
        [want("+79161110006"), want("+79161110007")]
    );
    assert!(wait_until(Duration::from_secs(10), || statuses(&cfg)
        .iter()
        .all(|r| r.1 == "done")));
    // A restart sends nothing more.
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    let daemon = Daemon::start(&cfg, &dir.path().join("d2.log"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(kannel.received().len(), 2);
    drop(daemon);
}

/// The README's second quick start: `samples/actions.toml` on the samples
/// writes one call file per missed caller still waiting and the SMS, each
/// once, and a second run adds nothing.
#[test]
fn the_actions_sample_writes_call_files_and_sms_once() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["actions.toml", "queue_log", "Master.csv"] {
        std::fs::copy(samples.join(f), dir.path().join(f)).expect("copy sample");
    }
    let cfg = dir.path().join("actions.toml");
    let files = |sub: &str, ext: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.path().join(sub))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(ext))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    for round in 0..2 {
        let out = calltrail(&cfg, &["run", "--once"]);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = files("out/spool/outgoing", ".call");
        assert_eq!(calls.len(), 3, "round {round}: {calls:?}");
        let sms = files("out/sms", ".sms");
        assert_eq!(sms.len(), 5, "round {round}: {sms:?}");
        assert!(sms
            .iter()
            .any(|n| n.starts_with("rule_welcome_sms__79161234567-")));
    }
    let call = std::fs::read_to_string(
        dir.path().join("out/spool/outgoing").join(
            files("out/spool/outgoing", ".call")
                .into_iter()
                .find(|n| n.contains("79161234567"))
                .expect("the call file of +79161234567"),
        ),
    )
    .expect("read");
    assert!(call.starts_with("Channel: PJSIP/201\n"), "{call}");
    assert!(call.contains("Set: CT_NUMBER=+79161234567\n"), "{call}");
}
