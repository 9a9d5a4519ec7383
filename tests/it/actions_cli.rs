//! `calltrail actions list|retry|cancel` on the real binary: a store with
//! an action in every status, listed and filtered as a table, CSV and JSON;
//! every allowed retry/cancel done with its message, every refused one
//! named with its reason and a non-zero exit, the row left as it was; and
//! the same through a running daemon (`run` holding the store) with the
//! admin token it wrote — the same output as on the file, a retried email
//! sent by the daemon's worker — and refused without the token.

use crate::daemon::{append, calltrail_env, Daemon};
use crate::support::wait_until;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const EMAIL: &str = r#"{"from":"calltrail@example.com","to":["ops@example.com"],"subject":"Missed +79161110001","body":"call back"}"#;
const HOOK: &str = r#"{"url":"http://127.0.0.1:9/hook","body":{"caller":"+79161110001"}}"#;
const SMS: &str = r#"{"to":"+79161110001","text":"We missed your call"}"#;
const CALLBACK: &str = r#"{"caller":"+79161110001"}"#;

/// A long error, cut short in the table and whole elsewhere.
fn long_error() -> String {
    format!("the webhook answered 410 Gone: {}END", "x".repeat(150))
}

/// One stored action.
struct Row {
    id: &'static str,
    kind: &'static str,
    status: &'static str,
    /// Created at 09:MM:00 UTC on 2026-11-20.
    minute: u32,
    attempts: i32,
    next: &'static str,
    done: Option<&'static str>,
    error: Option<String>,
    payload: &'static str,
    result: Option<&'static str>,
}

/// One action in every status (and a second failed one whose id has a
/// `/`), created a minute apart from 09:00 UTC, oldest first.
fn rows() -> Vec<Row> {
    let r = |id, kind, status, minute, attempts, next, done, error: Option<&str>, payload| Row {
        id,
        kind,
        status,
        minute,
        attempts,
        next,
        done,
        error: error.map(String::from),
        payload,
        result: None,
    };
    vec![
        r(
            "rule:mail:later",
            "email",
            "pending",
            0,
            0,
            "2099-01-01 00:00:00",
            None,
            None,
            EMAIL,
        ),
        r(
            "rule:mail:due",
            "email",
            "pending",
            1,
            0,
            "2026-11-20 09:01:30",
            None,
            None,
            EMAIL,
        ),
        r(
            "rule:sms:doubt",
            "sms",
            "in_doubt",
            2,
            1,
            "2026-11-20 09:02:30",
            None,
            Some("no answer from the gateway after the send"),
            SMS,
        ),
        r(
            "rule:mail:failed",
            "email",
            "failed",
            3,
            20,
            "2026-11-20 09:03:30",
            Some("2026-11-20 09:03:30"),
            Some("550 mailbox unavailable"),
            EMAIL,
        ),
        r(
            "rule:mail:done",
            "email",
            "done",
            4,
            1,
            "2026-11-20 09:04:30",
            Some("2026-11-20 09:04:30"),
            None,
            EMAIL,
        ),
        r(
            "rule:cb:skipped",
            "callback",
            "skipped",
            5,
            0,
            "2026-11-20 09:05:30",
            Some("2026-11-20 09:05:30"),
            Some("the episode closed first"),
            CALLBACK,
        ),
        r(
            "rule:sms:sending",
            "sms",
            "sending",
            6,
            1,
            "2026-11-20 09:06:30",
            None,
            None,
            SMS,
        ),
        r(
            "rule:mail:cancelled",
            "email",
            "cancelled",
            7,
            0,
            "2026-11-20 09:07:30",
            Some("2026-11-20 09:07:30"),
            Some("cancelled by an operator"),
            EMAIL,
        ),
        Row {
            result: Some("410"),
            error: Some(long_error()),
            ..r(
                "rule:hook:src/x:1",
                "webhook",
                "failed",
                8,
                3,
                "2026-11-20 09:08:30",
                Some("2026-11-20 09:08:30"),
                None,
                HOOK,
            )
        },
    ]
}

/// A config of a store (`s.duckdb`) and one idle source, the store filled
/// with `rows` (by id); an email outbox for a daemon's worker.
fn setup(dir: &Path, only: &[&str]) -> PathBuf {
    let cfg = dir.join("s.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
path = "s.duckdb"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
[email]
outbox = "outbox"
"#,
    )
    .expect("config");
    std::fs::write(dir.join("queue_log"), "").expect("queue_log");
    let store = calltrail::store::Store::open(&dir.join("s.duckdb")).expect("store");
    store.with_conn(|c| {
        for a in rows() {
            if !only.is_empty() && !only.contains(&a.id) {
                continue;
            }
            c.execute(
                "INSERT INTO actions (action_id, kind, event_id, created_at, status, attempts,
                     next_attempt_at, done_at, last_error, payload, result)
                 VALUES (?, ?, ?, ?::TIMESTAMP, ?, ?, ?::TIMESTAMP, ?::TIMESTAMP, ?, ?, ?)",
                duckdb::params![
                    a.id,
                    a.kind,
                    format!("ev-{}", a.minute),
                    format!("2026-11-20 09:{:02}:00", a.minute),
                    a.status,
                    a.attempts,
                    a.next,
                    a.done,
                    a.error,
                    a.payload,
                    a.result
                ],
            )
            .expect("insert an action");
        }
    });
    drop(store);
    cfg
}

/// `calltrail actions ARGS…` as user `tester`: (exit code, stdout, stderr).
fn actions_env(cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut all = vec!["actions"];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(("USER", "tester"));
    let out = calltrail_env(cfg, &all, &env);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn actions(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    actions_env(cfg, args, &[])
}

fn ok(cfg: &Path, args: &[&str]) -> String {
    let (code, out, err) = actions(cfg, args);
    assert_eq!(code, 0, "actions {args:?}: {err}");
    out
}

/// A refused command: its stderr (exit code 1, nothing on stdout).
fn refused(cfg: &Path, args: &[&str]) -> String {
    let (code, out, err) = actions(cfg, args);
    assert_eq!(code, 1, "actions {args:?} gave {code}: {out}{err}");
    assert_eq!(out, "", "actions {args:?}");
    err
}

/// `actions list --format json ARGS…`.
fn list(cfg: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["list", "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(cfg, &all)).expect("JSON")
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["action_id"].as_str().expect("id").to_string())
        .collect()
}

/// The row of `id` (every column), as `list` shows it.
fn row(cfg: &Path, id: &str) -> Value {
    list(cfg, &["--id", id, "--limit", "100"])
        .into_iter()
        .find(|r| r["action_id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed"))
}

#[test]
fn list_filters_and_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(dir.path(), &[]);
    let all = list(&cfg, &[]);
    assert_eq!(
        ids(&all),
        [
            "rule:hook:src/x:1",
            "rule:mail:cancelled",
            "rule:sms:sending",
            "rule:cb:skipped",
            "rule:mail:done",
            "rule:mail:failed",
            "rule:sms:doubt",
            "rule:mail:due",
            "rule:mail:later",
        ]
    );
    // JSON: every column, whole; the payload as JSON, the result.
    let hook = &all[0];
    let keys: Vec<&str> = hook
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "action_id",
        "kind",
        "event_id",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "done_at",
        "last_error",
        "payload",
        "result",
    ];
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(hook["kind"], "webhook");
    assert_eq!(hook["event_id"], "ev-8");
    assert_eq!(hook["status"], "failed");
    assert_eq!(hook["attempts"], 3);
    assert_eq!(hook["created_at"], "2026-11-20 09:08:00");
    assert_eq!(hook["done_at"], "2026-11-20 09:08:30");
    assert_eq!(hook["last_error"], long_error().as_str());
    assert_eq!(hook["payload"]["url"], "http://127.0.0.1:9/hook");
    assert_eq!(hook["payload"]["body"]["caller"], "+79161110001");
    assert_eq!(hook["result"], "410");
    assert_eq!(all[8]["done_at"], Value::Null);
    assert_eq!(all[8]["next_attempt_at"], "2099-01-01 00:00:00");

    // The table: the operator's columns, the error cut short.
    let table = ok(&cfg, &["list"]);
    for h in [
        "id",
        "kind",
        "status",
        "attempts",
        "created (UTC)",
        "next/done",
        "last_error",
    ] {
        assert!(table.contains(h), "{h}: {table}");
    }
    assert!(table.contains("rule:hook:src/x:1"), "{table}");
    assert!(
        table.contains("the webhook answered 410 Gone: xxx"),
        "{table}"
    );
    assert!(table.contains('…') && !table.contains("END"), "{table}");
    // Waiting rows show when they are due, finished ones when they ended.
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id}: {table}"))
            .to_string()
    };
    assert!(line("rule:mail:later").contains("2099-01-01 00:00:00"));
    assert!(line("rule:mail:done").contains("2026-11-20 09:04:30"));
    assert!(!line("rule:sms:sending").contains("09:06:30"), "{table}");
    assert!(table.ends_with("(9 rows)\n"), "{table}");

    // CSV: every column, whole.
    let csv = ok(&cfg, &["list", "--format", "csv", "--kind", "webhook"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("action_id,kind,event_id,status,attempts,created_at,next_attempt_at,done_at,last_error,payload,result")
    );
    let hook_line = lines.next().expect("a row");
    assert!(hook_line.starts_with("rule:hook:src/x:1,webhook,ev-8,failed,3,"));
    assert!(hook_line.contains(&long_error()), "{hook_line}");
    assert!(hook_line.ends_with(",410"), "{hook_line}");
    assert_eq!(lines.next(), None);

    // Filters.
    let by = |args: &[&str]| ids(&list(&cfg, args));
    assert_eq!(
        by(&["--status", "failed", "--status", "in_doubt"]),
        ["rule:hook:src/x:1", "rule:mail:failed", "rule:sms:doubt"]
    );
    assert_eq!(
        by(&["--status", "failed,in_doubt"]),
        by(&["--status", "in_doubt", "--status", "failed"])
    );
    assert_eq!(
        by(&["--kind", "sms"]),
        ["rule:sms:sending", "rule:sms:doubt"]
    );
    assert_eq!(by(&["--kind", "fax"]), Vec::<String>::new());
    assert_eq!(
        by(&["--id", "rule:mail:d"]),
        ["rule:mail:done", "rule:mail:due"]
    );
    assert_eq!(
        by(&["--since", "2026-11-20T12:07:00+03:00"]),
        ["rule:hook:src/x:1", "rule:mail:cancelled"]
    );
    assert_eq!(by(&["--since", "2026-11-20 09:08"]), ["rule:hook:src/x:1"]);
    assert_eq!(by(&["--since", "1h"]), Vec::<String>::new());
    assert_eq!(by(&["--due"]), ["rule:mail:due"]);
    assert_eq!(
        by(&["--limit", "2"]),
        ["rule:hook:src/x:1", "rule:mail:cancelled"]
    );
    let table = ok(&cfg, &["list", "--limit", "2"]);
    assert!(
        table.contains("(2 rows, the newest; --limit shows more"),
        "{table}"
    );

    // Bad flags are named.
    let (code, _, err) = actions(&cfg, &["list", "--status", "sent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sent") && err.contains("in_doubt"), "{err}");
    let (code, _, err) = actions(&cfg, &["list", "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("since \"yesterday\"") && err.contains("7d"),
        "{err}"
    );
    let (code, _, err) = actions(&cfg, &["list", "--limit", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("limit 0"), "{err}");

    // No store: said so, none created.
    std::fs::remove_file(dir.path().join("s.duckdb")).expect("rm");
    let (code, _, err) = actions(&cfg, &["list"]);
    assert_eq!(code, 1);
    assert!(err.contains("no store at"), "{err}");
    assert!(!dir.path().join("s.duckdb").exists());
}

#[test]
fn retry_and_cancel_on_the_store_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(dir.path(), &[]);
    let before = list(&cfg, &[]);

    // Refused, each with its reason; nothing changes.
    let cases: [(&str, &str, &str); 9] = [
        ("retry", "rule:mail:done", "cannot retry rule:mail:done: it was already carried out (done at 2026-11-20 09:04:30 UTC); retrying would do it twice"),
        ("retry", "rule:cb:skipped", "cannot retry rule:cb:skipped: it was skipped (the episode closed first) and is never run"),
        ("retry", "rule:mail:later", "cannot retry rule:mail:later: it is already pending, due at 2099-01-01 00:00:00 UTC: the worker runs it then"),
        ("retry", "rule:sms:sending", "cannot retry rule:sms:sending: it is being sent right now: wait for its outcome (done, failed or in_doubt)"),
        ("cancel", "rule:mail:done", "cannot cancel rule:mail:done: it was already carried out (done at 2026-11-20 09:04:30 UTC)"),
        ("cancel", "rule:cb:skipped", "cannot cancel rule:cb:skipped: it was skipped (the episode closed first) and is never run: nothing to cancel"),
        ("cancel", "rule:mail:cancelled", "cannot cancel rule:mail:cancelled: it is already cancelled (at 2026-11-20 09:07:30 UTC)"),
        ("cancel", "rule:sms:sending", "cannot cancel rule:sms:sending: it is being sent right now and cannot be stopped"),
        ("retry", "rule:nope", "cannot retry rule:nope: there is no action with this id"),
    ];
    for (verb, id, want) in cases {
        let err = refused(&cfg, &[verb, id]);
        assert!(
            err.starts_with(&format!("error: {want}")),
            "{verb} {id}: {err}"
        );
        assert!(!err.contains("not changed"), "one id, no summary: {err}");
    }
    assert_eq!(list(&cfg, &[]), before, "a refusal changed something");

    // Allowed retries: pending, due now, the old error kept in the note.
    let out = ok(&cfg, &["retry", "rule:sms:doubt"]);
    assert_eq!(
        out,
        "retried rule:sms:doubt (was in_doubt): pending, due now; it will be carried out again\n"
    );
    let r = row(&cfg, "rule:sms:doubt");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["attempts"], 1);
    assert_eq!(r["done_at"], Value::Null);
    assert_eq!(
        r["last_error"],
        "retried by an operator (was in_doubt: no answer from the gateway after the send)"
    );
    let next = r["next_attempt_at"].as_str().expect("next").to_string();
    assert!(next.as_str() > "2026-11-20 10:00:00", "due now: {next}");
    assert!(ids(&list(&cfg, &["--due"])).contains(&"rule:sms:doubt".to_string()));

    let out = ok(&cfg, &["retry", "rule:mail:failed", "rule:mail:cancelled"]);
    assert_eq!(
        out,
        "retried rule:mail:failed (was failed): pending, due now\n\
         retried rule:mail:cancelled (was cancelled): pending, due now\n"
    );
    let r = row(&cfg, "rule:mail:failed");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["attempts"], 20, "the tally of tries is kept");
    assert_eq!(r["done_at"], Value::Null);
    assert_eq!(
        r["last_error"],
        "retried by an operator (was failed: 550 mailbox unavailable)"
    );
    assert_eq!(
        row(&cfg, "rule:mail:cancelled")["last_error"],
        "retried by an operator (was cancelled: cancelled by an operator)"
    );

    // Allowed cancels: pending, in_doubt (via a fresh one), failed.
    let out = ok(&cfg, &["cancel", "rule:mail:later", "rule:hook:src/x:1"]);
    assert_eq!(
        out,
        "cancelled rule:mail:later (was pending)\ncancelled rule:hook:src/x:1 (was failed)\n"
    );
    for id in ["rule:mail:later", "rule:hook:src/x:1"] {
        let r = row(&cfg, id);
        assert_eq!(r["status"], "cancelled", "{id}");
        assert_eq!(r["last_error"], "cancelled by an operator", "{id}");
        assert!(
            r["done_at"]
                .as_str()
                .is_some_and(|d| d > "2026-11-20 10:00"),
            "{id}: {r}"
        );
    }
    // The retried in_doubt one is pending now: cancel it too.
    assert_eq!(
        ok(&cfg, &["cancel", "rule:sms:doubt"]),
        "cancelled rule:sms:doubt (was pending)\n"
    );
    // A cancelled one cannot be cancelled again, but can be retried.
    let err = refused(&cfg, &["cancel", "rule:mail:later"]);
    assert!(err.contains("it is already cancelled"), "{err}");

    // Several ids: the good ones done, each bad one named, exit 1.
    let (code, out, err) = actions(
        &cfg,
        &["retry", "rule:mail:done", "rule:mail:later", "rule:nope"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "retried rule:mail:later (was cancelled): pending, due now\n"
    );
    assert!(
        err.contains("error: cannot retry rule:mail:done: it was already carried out"),
        "{err}"
    );
    assert!(
        err.contains("error: cannot retry rule:nope: there is no action with this id"),
        "{err}"
    );
    assert!(err.contains("2 of 3 actions not changed"), "{err}");
    assert_eq!(row(&cfg, "rule:mail:done")["status"], "done");

    // An in_doubt action can be cancelled directly.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let cfg2 = setup(dir2.path(), &["rule:sms:doubt"]);
    assert_eq!(
        ok(&cfg2, &["cancel", "rule:sms:doubt"]),
        "cancelled rule:sms:doubt (was in_doubt)\n"
    );
    // The help names the statuses.
    let (_, help, _) = actions(&cfg, &["list", "--help"]);
    assert!(
        help.contains("in_doubt") && help.contains("--since"),
        "{help}"
    );
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A request to the daemon's API: (status, JSON body).
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = format!("http://{addr}{path}");
    let a = agent();
    let res = match (method, token) {
        ("GET", Some(t)) => a
            .get(&url)
            .header("authorization", format!("Bearer {t}"))
            .call(),
        ("GET", None) => a.get(&url).call(),
        (_, Some(t)) => a
            .post(&url)
            .header("authorization", format!("Bearer {t}"))
            .send_empty(),
        (_, None) => a.post(&url).send_empty(),
    };
    let mut res = res.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    let body = res.body_mut().read_to_vec().expect("body");
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, v)
}

#[test]
fn while_run_holds_the_store_the_commands_go_through_its_admin_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No `sending` row (a start reconciles those) and nothing due (the
    // worker would run it): the daemon changes nothing by itself.
    let cfg = setup(
        dir.path(),
        &[
            "rule:mail:later",
            "rule:sms:doubt",
            "rule:mail:failed",
            "rule:mail:done",
            "rule:cb:skipped",
            "rule:mail:cancelled",
            "rule:hook:src/x:1",
        ],
    );
    let port = crate::support::tools::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    append(&cfg, format!("\n[http]\nlisten = \"{addr}\"\n").as_bytes());
    // What the file says, before the daemon holds it.
    let on_file = ok(&cfg, &["list", "--format", "json"]);
    let table_on_file = ok(&cfg, &["list"]);
    let done_refusal = refused(&cfg, &["retry", "rule:mail:done"]);

    let daemon = Daemon::start(&cfg, &dir.path().join("daemon.log"));
    assert!(
        wait_until(Duration::from_secs(30), || daemon
            .log()
            .contains("HTTP API listening")),
        "daemon did not start: {}",
        daemon.log()
    );
    let token = std::fs::read_to_string(dir.path().join("s.duckdb.admin-token"))
        .expect("the admin token the daemon wrote")
        .trim()
        .to_string();

    // The same answers as on the file.
    assert_eq!(ok(&cfg, &["list", "--format", "json"]), on_file);
    assert_eq!(ok(&cfg, &["list"]), table_on_file);
    assert_eq!(refused(&cfg, &["retry", "rule:mail:done"]), done_refusal);
    assert_eq!(
        ids(&list(
            &cfg,
            &["--status", "failed,in_doubt", "--kind", "email"]
        )),
        ["rule:mail:failed"]
    );

    // A retried email is sent by the daemon's worker.
    assert_eq!(
        ok(&cfg, &["retry", "rule:mail:failed"]),
        "retried rule:mail:failed (was failed): pending, due now\n"
    );
    assert!(
        wait_until(Duration::from_secs(20), || row(&cfg, "rule:mail:failed")
            ["status"]
            == "done"),
        "the worker did not send the retried email: {}\n{}",
        row(&cfg, "rule:mail:failed"),
        daemon.log()
    );
    let sent = std::fs::read_dir(dir.path().join("outbox"))
        .expect("outbox")
        .count();
    assert_eq!(sent, 1);

    // Cancels, an id with a `/` included; refusals named; exit codes.
    assert_eq!(
        ok(&cfg, &["cancel", "rule:sms:doubt", "rule:hook:src/x:1"]),
        "cancelled rule:sms:doubt (was in_doubt)\ncancelled rule:hook:src/x:1 (was failed)\n"
    );
    assert_eq!(row(&cfg, "rule:hook:src/x:1")["status"], "cancelled");
    let err = refused(&cfg, &["cancel", "rule:cb:skipped"]);
    assert!(
        err.contains("cannot cancel rule:cb:skipped: it was skipped"),
        "{err}"
    );
    let (code, out, err) = actions(&cfg, &["retry", "rule:mail:cancelled", "rule:nope"]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "retried rule:mail:cancelled (was cancelled): pending, due now\n"
    );
    assert!(
        err.contains("cannot retry rule:nope: there is no action with this id"),
        "{err}"
    );
    assert!(err.contains("1 of 2 actions not changed"), "{err}");
    assert!(
        wait_until(Duration::from_secs(20), || row(&cfg, "rule:mail:cancelled")
            ["status"]
            == "done"),
        "the worker did not send the retried email: {}",
        row(&cfg, "rule:mail:cancelled")
    );
    let (code, _, err) = actions(&cfg, &["list", "--since", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("since \"soon\""), "{err}");

    // Without the right token: refused, nothing changed.
    let wrong = [("CALLTRAIL_ADMIN_TOKEN", "0123456789abcdef-wrong")];
    let (code, _, err) = actions_env(&cfg, &["cancel", "rule:mail:later"], &wrong);
    assert_eq!(code, 1);
    assert!(err.contains("admin token"), "{err}");
    let (code, _, err) = actions_env(&cfg, &["list"], &wrong);
    assert_eq!(code, 1);
    assert!(err.contains("admin token"), "{err}");
    assert_eq!(row(&cfg, "rule:mail:later")["status"], "pending");
    for (method, path) in [
        ("GET", "/api/actions"),
        ("POST", "/api/actions/rule:mail:later/cancel"),
    ] {
        let (status, v) = http(addr, method, path, None);
        assert_eq!(status, 401, "{method} {path}: {v}");
        assert_eq!(v["kind"], "unauthorized");
    }
    assert_eq!(row(&cfg, "rule:mail:later")["status"], "pending");

    // The API itself.
    let (status, v) = http(
        addr,
        "GET",
        "/api/actions?status=done&limit=5",
        Some(&token),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["columns"][0], "action_id");
    let listed: Vec<&str> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[0].as_str().expect("id"))
        .collect();
    assert_eq!(
        listed,
        ["rule:mail:cancelled", "rule:mail:done", "rule:mail:failed"]
    );
    let (status, v) = http(addr, "GET", "/api/actions?colour=red", Some(&token));
    assert_eq!((status, v["kind"].as_str()), (400, Some("invalid")), "{v}");
    let (status, v) = http(
        addr,
        "POST",
        "/api/actions/rule%3Amail%3Alater/cancel",
        Some(&token),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["output"], "cancelled rule:mail:later (was pending)");
    assert_eq!(v["action"]["status"], "cancelled");
    assert_eq!(v["action"]["payload"]["to"][0], "ops@example.com");
    let (status, v) = http(
        addr,
        "POST",
        "/api/actions/rule:mail:done/retry",
        Some(&token),
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["status"].as_str()),
        (Some("refused"), Some("done"))
    );
    let (status, v) = http(addr, "POST", "/api/actions/rule:nope/cancel", Some(&token));
    assert_eq!((status, v["kind"].as_str()), (404, Some("missing")), "{v}");
    assert!(
        daemon
            .log()
            .contains("action changed by an operator through the admin API"),
        "{}",
        daemon.log()
    );

    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    // The changes are in the file.
    let after = list(&cfg, &[]);
    let status_of = |id: &str| {
        after
            .iter()
            .find(|r| r["action_id"] == id)
            .map(|r| r["status"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(status_of("rule:mail:failed").as_deref(), Some("done"));
    assert_eq!(status_of("rule:sms:doubt").as_deref(), Some("cancelled"));
    assert_eq!(status_of("rule:mail:later").as_deref(), Some("cancelled"));
}
