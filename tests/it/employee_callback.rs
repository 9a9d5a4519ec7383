//! `employee_lookup`: an employee calls from their mobile, the dialplan
//! asks calltrail, and calltrail calls them back into the rule's context
//! within 2 s: one call file per call even when the dialplan asks twice,
//! none for a caller who is not an employee.

use crate::daemon::{calltrail, query_json, Daemon};
use crate::rules::daemon_config;
use crate::support::asterisk_callfile::parse;
use crate::support::wait_until;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

fn outgoing(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("spool/outgoing"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// GET `path` from the daemon's HTTP API; the body.
fn get(cfg: &Path, path: &str) -> String {
    let text = std::fs::read_to_string(cfg).expect("config");
    let listen = text
        .lines()
        .skip_while(|l| l.trim() != "[http]")
        .find_map(|l| l.trim().strip_prefix("listen = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("[http] listen")
        .to_string();
    let mut s = std::net::TcpStream::connect(&listen).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or(out)
}

#[test]
fn an_employee_who_calls_is_called_back_into_the_context_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["spool/outgoing", "spool/outgoing_done"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("spool");
    }
    let cfg = daemon_config(
        dir.path(),
        r#"
[callbacks]
spool = "spool"
[[rules]]
name = "staff"
when = "employee_lookup"
action = "callback"
context = "disa-staff"
"#,
    );
    let check = calltrail(&cfg, &["check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for (n, class) in [("89161112233", "employee"), ("89161114455", "vip")] {
        let out = calltrail(&cfg, &["numbers", "add", n, "--class", class]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let daemon = Daemon::start(&cfg, &dir.path().join("d.log"));
    daemon.wait_http();
    let ask = |q: &str| get(&cfg, &format!("/dialplan/lookup?{q}"));
    assert!(
        wait_until(Duration::from_secs(20), || ask("number=100")
            .contains("ok=1")),
        "{}",
        daemon.log()
    );
    // A VIP: no callback.
    assert!(ask("number=%2B79161114455&call=1796340000.11").contains("ok=1"));
    // The employee, asked twice for one call.
    let start = Instant::now();
    let answer = ask("number=89161112233&call=1796340000.12");
    assert!(answer.contains("ok=1"), "{answer}");
    ask("number=89161112233&call=1796340000.12");
    assert!(
        wait_until(Duration::from_secs(2), || outgoing(dir.path()).len() == 1),
        "{:?}\n{:?}\n{}",
        outgoing(dir.path()),
        query_json(&cfg, "SELECT action_id, status, last_error FROM actions"),
        daemon.log()
    );
    let took = start.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let files = outgoing(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let call = parse(&std::fs::read(&files[0]).expect("read")).expect("Asterisk reads it");
    assert_eq!(
        (call.tech.as_str(), call.dest.as_str()),
        ("Local", "+79161112233@from-internal/n")
    );
    assert_eq!(
        (call.context.as_str(), call.exten.as_str()),
        ("disa-staff", "s")
    );
    assert!(
        call.vars
            .iter()
            .any(|(k, v)| k == "CT_NUMBER" && v == "+79161112233"),
        "{call:?}"
    );
    let ids = query_json(&cfg, "SELECT action_id, status FROM actions");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        ids[0]["action_id"],
        "rule:staff:employee_lookup:1796340000.12"
    );
    eprintln!("employee lookup → call file in {took:?}");
    drop(daemon);
}
