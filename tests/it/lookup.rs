//! The dialplan lookup of a running daemon, over real HTTP and real TCP:
//!
//! - on a real Asterisk's files (asterisk-live-r1), every policy and window
//!   for every number, against expectations computed here from its
//!   `truth.json` (Asterisk's own AMI events), never from calltrail's code;
//!   the hashcompat answer decoded by the independent model of func_curl +
//!   HASH() and the FastAGI answer read by the independent model of
//!   Asterisk's res_agi give the same decision as the JSON;
//! - the directory: VIP with a preferred agent, blacklist, employee, expiry,
//!   changes through `calltrail numbers` while the daemon runs (its admin
//!   API) seen by the next lookup, a CSV import with one bad row applying
//!   nothing, hits counted; the admin API refused without its token;
//! - hostile and unparseable numbers answered with the well-formed unknown
//!   answer; FastAGI hangups and half-closed sockets;
//! - freshness: a CONNECT appended to the queue_log shows in the lookup.

use crate::asterisk_live::{setup, Cdr};
use crate::daemon::{append, query_i64, Daemon};
use crate::sim::expect_lookup::{pick as expected, Want};
use crate::support::asterisk_agi::{run_agi, AgiCall};
use crate::support::asterisk_curl::{hash_from_body, Mode};
use crate::support::tools::free_port;
use crate::support::wait_until;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The clock of these daemons: an hour after the middle of the sample's
/// ten minutes, so that a `1h` window cuts through them.
const NOW: &str = "2026-12-03T19:10:50Z";
const NOW_S: i64 = 1_796_325_050;

/// `[http]` (unless `extra` has its own) and `[agi]` on free ports,
/// appended to `cfg` with `extra`; the addresses to reach them at.
fn listen(cfg: &Path, extra: &str) -> (SocketAddr, SocketAddr) {
    let agi: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    const ANY: &str = "listen = \"0.0.0.0:";
    let (http, section) = match extra.find(ANY) {
        Some(i) => {
            let port: String = extra[i + ANY.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (format!("127.0.0.1:{port}"), String::new())
        }
        None => {
            let http = format!("127.0.0.1:{}", free_port());
            let section = format!("[http]\nlisten = \"{http}\"\n");
            (http, section)
        }
    };
    append(
        cfg,
        format!("\n{section}[agi]\nlisten = \"{agi}\"\n{extra}\n").as_bytes(),
    );
    (http.parse().expect("addr"), agi)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// `GET http://addr{path}`: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut res = agent()
        .get(format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = res.status().as_u16();
    let body = res.body_mut().read_to_vec().expect("body");
    (status, body)
}

/// Whether the daemon answers `/healthz` (it is up).
fn up(addr: SocketAddr) -> bool {
    agent()
        .get(format!("http://{addr}/healthz"))
        .call()
        .is_ok_and(|r| r.status() == 200)
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/api/lookup` for `number` with `extra` parameters.
fn api(addr: SocketAddr, number: &str, extra: &str) -> Value {
    let (status, body) = get(addr, &format!("/api/lookup?number={}{extra}", enc(number)));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

/// What the dialplan sees: `${HASH(ct,<key>)}` for every public key.
fn dialplan(addr: SocketAddr, number: &str, extra: &str) -> BTreeMap<String, String> {
    let (status, body) = get(
        addr,
        &format!("/dialplan/lookup?number={}{extra}", enc(number)),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let hash = hash_from_body("ct", &body, Mode::Yes).expect("a body");
    assert_eq!(
        hash.keys(),
        "ok,calls,missed_open,first_call,agent_state,agent_interface,agent,name,action",
        "keys in order, ok=1 last: {}",
        String::from_utf8_lossy(&body)
    );
    KEYS.iter().map(|k| (k.to_string(), hash.get(k))).collect()
}

const KEYS: [&str; 9] = [
    "action",
    "name",
    "agent",
    "agent_interface",
    "agent_state",
    "first_call",
    "missed_open",
    "calls",
    "ok",
];

/// The public keys of a JSON answer as the dialplan would see them.
fn public(v: &Value) -> BTreeMap<String, String> {
    KEYS.iter()
        .map(|k| {
            let s = match &v[*k] {
                Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("{k}: {other}"),
            };
            (k.to_string(), s)
        })
        .collect()
}

/// What a FastAGI session sets, keys lower-cased without the prefix.
fn agi(addr: SocketAddr, call: &AgiCall) -> BTreeMap<String, String> {
    let out = run_agi(addr, call, Duration::from_secs(5));
    assert_eq!(out.status, "SUCCESS", "{out:?}");
    let vars: Vec<&str> = out.variables.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<String> = KEYS
        .iter()
        .map(|k| format!("CALLTRAIL_{}", k.to_uppercase()))
        .collect();
    assert_eq!(vars, want, "variables in order, CALLTRAIL_OK last");
    out.variables
        .iter()
        .map(|(n, v)| (n["CALLTRAIL_".len()..].to_lowercase(), v.clone()))
        .collect()
}

/// Waits until the daemon has derived every stored event.
fn settle(cfg: &Path, events: i64) {
    let ok = wait_until(Duration::from_secs(90), || {
        query_i64(cfg, "SELECT count(*) FROM events") >= events
            && query_i64(
                cfg,
                "SELECT (SELECT coalesce(max(seq), 0) FROM events)
                      - (SELECT coalesce(max(seq), 0) FROM sink_checkpoints WHERE sink = 'state')",
            ) == 0
    });
    assert!(ok, "the daemon did not derive its events in time");
}

fn epoch(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// Per number, from truth.json alone; the numbers with an open episode.
fn truth() -> (BTreeMap<String, Want>, BTreeSet<String>, Value) {
    let path = crate::asterisk_live::sample().join("truth.json");
    let t: Value = serde_json::from_slice(&std::fs::read(path).expect("truth")).expect("json");
    let mut out: BTreeMap<String, Want> = BTreeMap::new();
    for c in t["calls"].as_object().expect("calls").values() {
        let w = out
            .entry(c["caller"].as_str().expect("caller").into())
            .or_default();
        w.calls += 1;
        w.ended += 1;
        if let (Some(at), Some(agent)) = (epoch(&c["connect_at"]), c["agent"].as_str()) {
            w.answered.push((at, agent.into()));
            w.contacts.push((at, agent.into()));
        }
    }
    for o in t["outbound"].as_array().expect("outbound") {
        let w = out
            .entry(o["caller"].as_str().expect("caller").into())
            .or_default();
        let agent = o["agent"].as_str().expect("agent").to_string();
        let start = epoch(&o["start"]).expect("start");
        match epoch(&o["answer"]) {
            Some(at) => {
                w.answered.push((at, agent.clone()));
                w.contacts.push((at, agent));
            }
            None => w.contacts.push((start, agent)),
        }
    }
    let open: BTreeSet<String> = t["missed"]
        .as_array()
        .expect("missed")
        .iter()
        .filter(|m| m["status"] == "open")
        .map(|m| m["caller"].as_str().expect("caller").to_string())
        .collect();
    for w in out.values_mut() {
        w.answered.sort();
        w.contacts.sort();
    }
    (out, open, t)
}

#[test]
fn every_policy_and_window_on_a_real_asterisks_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = setup(tmp.path(), Cdr::Csv, true);
    let (http, agi_addr) = listen(&cfg, "");
    let daemon = Daemon::start_env(
        &cfg,
        &tmp.path().join("daemon.log"),
        &[("CALLTRAIL_NOW", NOW)],
    );
    let n_events = {
        // Every line of both files is an event or a blank; wait for the
        // derived state of all that was stored.
        assert!(
            wait_until(Duration::from_secs(60), || up(http)
                && daemon.log().contains("lookup index loaded")),
            "{}",
            daemon.log()
        );
        assert!(wait_until(Duration::from_secs(60), || {
            query_i64(&cfg, "SELECT count(*) FROM events") > 100
        }));
        std::thread::sleep(Duration::from_secs(2));
        query_i64(&cfg, "SELECT count(*) FROM events")
    };
    settle(&cfg, n_events);
    let (want, open, t) = truth();
    // The truth's own last agents agree with the ones computed here.
    for (caller, la) in t["last_agent"].as_object().expect("last_agent") {
        let w = &want[caller];
        assert_eq!(
            expected(w, "last_agent", None),
            (
                la["agent"].as_str().expect("agent").to_string(),
                epoch(&la["at"])
            ),
            "{caller}"
        );
    }
    let mut numbers: BTreeSet<String> = want.keys().cloned().collect();
    numbers.insert("+79990001122".into()); // never seen
    let windows: [(&str, Option<i64>); 5] = [
        ("all", None),
        ("1h", Some(NOW_S - 3600)),
        ("30m", None), // refused below: not a window
        ("1d", Some(NOW_S - 86_400)),
        ("this_week", Some(1_796_342_400 - 4 * 86_400)), // Monday 2026-11-30 00:00 UTC
    ];
    let mut diffs = Vec::new();
    let mut checked = 0;
    for policy in ["last_agent", "last_contact", "first_agent"] {
        for (window, start) in windows {
            let extra = format!("&policy={policy}&window={window}");
            if window == "30m" {
                let (status, _) = get(http, &format!("/api/lookup?number=1{extra}"));
                assert_eq!(status, 400);
                continue;
            }
            for n in &numbers {
                let empty = Want::default();
                let w = want.get(n).unwrap_or(&empty);
                let got = api(http, n, &extra);
                let (agent, at) = expected(w, policy, start);
                let want_row = (
                    agent.clone(),
                    at,
                    w.calls,
                    w.ended == 0,
                    open.contains(n),
                    if agent.is_empty() {
                        None
                    } else {
                        Some("policy")
                    },
                );
                let got_row = (
                    got["agent"].as_str().unwrap_or("?").to_string(),
                    got["agent_contact_at"].as_str().map(|s| {
                        chrono::DateTime::parse_from_rfc3339(s)
                            .expect("time")
                            .timestamp()
                    }),
                    got["calls"].as_i64().unwrap_or(-1),
                    got["first_call"] == true,
                    got["missed_open"] == true,
                    got["agent_source"].as_str(),
                );
                if want_row != got_row {
                    diffs.push(format!(
                        "{n} {policy} {window}: want {want_row:?}, got {got_row:?}"
                    ));
                }
                assert_eq!(
                    (got["action"].as_str(), got["ok"].as_bool()),
                    (Some("none"), Some(true))
                );
                assert_eq!(got["matched"].as_str(), Some(n.as_str()));
                checked += 1;
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {checked} lookups differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    // The three ways in give one decision (a sample of numbers: each AGI
    // session is a connection of its own).
    for n in numbers.iter().take(25) {
        let json = public(&api(http, n, ""));
        assert_eq!(dialplan(http, n, ""), json, "{n}: hashcompat vs JSON");
        let mut call = AgiCall::new("lookup");
        call.args = vec![n.clone()];
        assert_eq!(
            agi(agi_addr, &call),
            json,
            "{n}: FastAGI (agi_arg_1) vs JSON"
        );
        let mut call = AgiCall::new(&format!("lookup?number={}", enc(n)));
        call.callerid = Some("+70000000000".into());
        assert_eq!(
            agi(agi_addr, &call),
            json,
            "{n}: FastAGI (script query) vs JSON"
        );
        let mut call = AgiCall::new("lookup");
        call.callerid = Some(n.clone());
        assert_eq!(
            agi(agi_addr, &call),
            json,
            "{n}: FastAGI (agi_callerid) vs JSON"
        );
    }
    // The sample's agents are FreePBX-style static members
    // `Local/20x@from-queue/n` that ring no device (their legs run Wait()),
    // and no line logs them in: the interface is the member's, the state
    // unknown unless on a call.
    let some = want
        .iter()
        .find(|(_, w)| !w.answered.is_empty())
        .map(|(n, _)| n.clone())
        .expect("an answered caller");
    let got = api(http, &some, "&window=all");
    let agent = got["agent"].as_str().expect("agent");
    assert_eq!(
        got["agent_interface"],
        format!("Local/{agent}@from-queue/n"),
        "{got}"
    );
    assert_eq!(got["agent_state"], "unknown", "{got}");
    drop(daemon);
}

/// A daemon over an empty queue_log, on the real clock.
struct Live {
    dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
    http: SocketAddr,
    agi: SocketAddr,
    daemon: Daemon,
}

impl Live {
    fn start(extra: &str) -> Live {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("c.toml");
        std::fs::write(dir.path().join("queue_log"), "").expect("queue_log");
        std::fs::write(
            &cfg,
            r#"
[store]
path = "s.duckdb"
[numbers]
default_region = "RU"
[email]
outbox = "outbox"
[rules.missed_call_email]
enabled = false
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "Europe/Moscow"
poll_interval_ms = 50
"#,
        )
        .expect("config");
        let (http, agi) = listen(&cfg, extra);
        let daemon = Daemon::start(&cfg, &dir.path().join("daemon.log"));
        assert!(
            wait_until(Duration::from_secs(60), || up(http)
                && daemon.log().contains("lookup index loaded")),
            "{}",
            daemon.log()
        );
        Live {
            dir,
            cfg,
            http,
            agi,
            daemon,
        }
    }

    fn log_lines(&self, lines: &str) {
        append(&self.dir.path().join("queue_log"), lines.as_bytes());
    }

    fn numbers(&self, args: &[&str]) -> String {
        let mut all = vec!["numbers"];
        all.extend_from_slice(args);
        let out = crate::daemon::calltrail(&self.cfg, &all);
        assert!(
            out.status.success(),
            "numbers {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An answered queue call of `caller` with `agent`'s phone, `ago` seconds
/// ago; `end` adds its COMPLETECALLER.
fn answered(id: &str, caller: &str, agent: &str, ago: i64, end: bool) -> String {
    let t = now_s() - ago;
    let mut s = format!(
        "{t}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|PJSIP/{agent}|CONNECT|2|{id}.2|2\n",
        t + 2
    );
    if end {
        s += &format!(
            "{}|{id}|support|PJSIP/{agent}|COMPLETECALLER|2|5|1\n",
            t + 7
        );
    }
    s
}

#[test]
fn the_directory_comes_first_and_every_change_shows_at_once() {
    let live = Live::start("");
    let t = now_s() - 600;
    live.log_lines(&format!(
        "{t}|NONE|support|PJSIP/201|ADDMEMBER|\n{t}|NONE|support|PJSIP/202|ADDMEMBER|\n"
    ));
    live.log_lines(&answered("c1", "89161234567", "201", 500, true));
    let api_of = |n: &str| api(live.http, n, "");
    assert!(wait_until(Duration::from_secs(20), || api_of(
        "+79161234567"
    )["agent"]
        == "201"));
    let d = api_of("89161234567");
    assert_eq!(
        (
            d["action"].as_str(),
            d["agent_interface"].as_str(),
            d["agent_state"].as_str()
        ),
        (Some("none"), Some("PJSIP/201"), Some("available")),
        "{d}"
    );
    assert_eq!(
        (d["calls"].as_i64(), d["first_call"].as_bool()),
        (Some(1), Some(false))
    );

    // A VIP with a preferred agent: the entry decides, at once.
    let name = "Иван Петров, ООО (VIP) & Co";
    live.numbers(&[
        "add",
        "+79161234567",
        "--class",
        "vip",
        "--name",
        name,
        "--agent",
        "202",
    ]);
    let d = api_of("+79161234567");
    assert_eq!(
        (
            d["action"].as_str(),
            d["name"].as_str(),
            d["agent"].as_str(),
            d["agent_source"].as_str()
        ),
        (Some("vip"), Some(name), Some("202"), Some("known_number")),
        "{d}"
    );
    let hash = dialplan(live.http, "+79161234567", "");
    assert_eq!(
        hash,
        public(&d),
        "the dialplan sees the same, name included"
    );
    // The preferred agent cleared: back to the sticky agent.
    live.numbers(&["set", "+79161234567", "--agent", ""]);
    assert_eq!(api_of("+79161234567")["agent"], "201");
    // Blacklist (never an agent), employee, an expired entry.
    live.log_lines(&answered("c2", "89160000002", "202", 400, true));
    live.numbers(&[
        "add",
        "89160000002",
        "--class",
        "blacklist",
        "--agent",
        "201",
    ]);
    live.numbers(&[
        "add",
        "89160000003",
        "--class",
        "employee",
        "--name",
        "Olga",
    ]);
    live.numbers(&[
        "add",
        "89160000004",
        "--class",
        "vip",
        "--until",
        "2020-01-02",
    ]);
    assert!(wait_until(Duration::from_secs(20), || api_of(
        "+79160000002"
    )["calls"]
        == 1));
    let d = api_of("+79160000002");
    assert_eq!(
        (
            d["action"].as_str(),
            d["agent"].as_str(),
            d["agent_interface"].as_str()
        ),
        (Some("blacklist"), Some(""), Some(""))
    );
    let d = api_of("+79160000003");
    assert_eq!(
        (
            d["action"].as_str(),
            d["name"].as_str(),
            d["first_call"].as_bool()
        ),
        (Some("employee"), Some("Olga"), Some(true))
    );
    let d = api_of("+79160000004");
    assert_eq!(
        (d["action"].as_str(), d["known"].is_null()),
        (Some("none"), true),
        "expired: {d}"
    );
    // Removed: gone for the next lookup.
    live.numbers(&["remove", "89160000003"]);
    assert_eq!(api_of("+79160000003")["action"], "none");
    // Hits are counted in the store.
    assert!(
        wait_until(Duration::from_secs(20), || {
            query_i64(
                &live.cfg,
                "SELECT coalesce(max(hits), 0) FROM known_numbers WHERE number = '+79160000002'",
            ) > 0
        }),
        "hits never counted"
    );

    // The admin API needs its token.
    for (method, path) in [
        ("GET", "/api/numbers"),
        ("GET", "/api/numbers/export"),
        ("POST", "/api/numbers"),
        ("DELETE", "/api/numbers/+79160000002"),
    ] {
        let a = agent();
        let url = format!("http://{}{path}", live.http);
        let res = match method {
            "GET" => a.get(&url).call(),
            "DELETE" => a.delete(&url).call(),
            _ => a
                .post(&url)
                .send(r#"{"op":"remove","number":"+79160000002"}"#),
        }
        .expect("answer");
        assert_eq!(res.status().as_u16(), 401, "{method} {path}");
        let res = match method {
            "GET" => a
                .get(&url)
                .header("authorization", "Bearer 0123456789abcdef0123")
                .call(),
            _ => a
                .delete(&url)
                .header("authorization", "Bearer 0123456789abcdef0123")
                .call(),
        }
        .expect("answer");
        assert_eq!(
            res.status().as_u16(),
            401,
            "{method} {path} with a wrong token"
        );
    }
    assert_eq!(api_of("+79160000002")["action"], "blacklist", "still there");

    // Hostile and unparseable numbers: the well-formed unknown answer.
    let long = "7".repeat(4096);
    for n in [
        "1;DROP TABLE known_numbers;--",
        "\r\nX-Injected: 1",
        "+7916\u{0}1234567",
        long.as_str(),
        "anonymous",
        "",
        "<script>alert(1)</script>",
        "+",
        "Иван",
    ] {
        let d = api_of(n);
        assert_eq!(
            (
                d["action"].as_str(),
                d["ok"].as_bool(),
                d["matched"].is_null(),
                d["agent"].as_str()
            ),
            (Some("none"), Some(true), true, Some("")),
            "{n:?}: {d}"
        );
        assert!(d["reason"].is_string(), "{d}");
        let h = dialplan(live.http, n, "");
        assert_eq!(
            (h["ok"].as_str(), h["action"].as_str(), h["calls"].as_str()),
            ("1", "none", "0")
        );
        let mut call = AgiCall::new("lookup");
        call.args = vec![n.replace(['\r', '\n', '\0'], "x")];
        assert_eq!(agi(live.agi, &call)["action"], "none");
    }
    // A raw %0d%0a and a broken escape in the query string.
    for q in [
        "number=%0d%0a",
        "number=%ZZ12",
        "number=%2",
        "number=1%00%ff",
    ] {
        let (status, body) = get(live.http, &format!("/dialplan/lookup?{q}"));
        assert_eq!(status, 200, "{q}");
        let h = hash_from_body("ct", &body, Mode::Yes).expect("body");
        assert_eq!(
            (h.get("ok"), h.get("action")),
            ("1".to_string(), "none".to_string()),
            "{q}"
        );
    }
    // No number at all, or a bad policy: a 400 without ok=1 (the dialplan
    // routes normally).
    for q in [
        "",
        "?num=1",
        "?number=1&policy=sticky",
        "?number=1&window=7w",
    ] {
        let (status, body) = get(live.http, &format!("/dialplan/lookup{q}"));
        assert_eq!(status, 400, "{q}");
        let h = hash_from_body("ct", &body, Mode::Yes);
        assert!(h.is_none_or(|h| h.get("ok").is_empty()), "{q}");
    }
    assert_eq!(
        query_i64(&live.cfg, "SELECT count(*) FROM known_numbers"),
        3
    );

    // Freshness: a CONNECT appended is in the next lookups within a second
    // or so (bench/lookup.sh measures it); the call going on is no earlier
    // call, and its agent is on a call.
    let started = Instant::now();
    live.log_lines(&answered("c9", "89165550000", "202", 3, false));
    let fresh = wait_until(Duration::from_secs(10), || {
        api_of("+79165550000")["agent"] == "202"
    });
    let took = started.elapsed();
    assert!(fresh, "the CONNECT never showed: {}", live.daemon.log());
    eprintln!("CONNECT appended → lookup answers with its agent: {took:?}");
    let d = api_of("+79165550000");
    assert_eq!(
        (
            d["first_call"].as_bool(),
            d["agent_state"].as_str(),
            d["calls"].as_i64()
        ),
        (Some(true), Some("on_call"), Some(1)),
        "{d}"
    );
}

#[test]
fn fastagi_sessions_as_asterisk_runs_them() {
    let live = Live::start("");
    live.log_lines(&answered("c1", "89161234567", "201", 100, true));
    assert!(wait_until(Duration::from_secs(20), || api(
        live.http,
        "+79161234567",
        ""
    )["agent"]
        == "201"));
    let json = public(&api(live.http, "+79161234567", ""));
    let base = || {
        let mut c = AgiCall::new("lookup");
        c.callerid = Some("+79161234567".into());
        c.calleridname_raw = Some(b"\xc8\xe2\xe0\xed \"x\" \\".to_vec()); // cp1251, quotes
        c
    };
    // The channel hung up right after the environment: SET VARIABLE still
    // runs on a dead channel (dead-ok), so every variable is set.
    let mut c = base();
    c.hangup_after_env = true;
    let out = run_agi(live.agi, &c, Duration::from_secs(5));
    assert_eq!(out.status, "HANGUP", "{out:?}");
    assert_eq!(out.var("CALLTRAIL_OK"), Some("1"));
    assert_eq!(out.var("CALLTRAIL_AGENT"), Some(json["agent"].as_str()));
    // A HANGUP between a command and its reply is skipped.
    let mut c = base();
    c.hangup_between = Some(2);
    let out = run_agi(live.agi, &c, Duration::from_secs(5));
    assert_eq!(out.variables.len(), 9, "{out:?}");
    // AGIEXITONHANGUP=yes: Asterisk stops at the hangup; the server sees the
    // end of the stream and stops too (no hanging session).
    let mut c = base();
    c.hangup_between = Some(1);
    c.exit_on_hangup = true;
    let started = Instant::now();
    let out = run_agi(live.agi, &c, Duration::from_secs(5));
    assert_ne!(out.status, "TIMEOUT", "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Half-closed right after the environment: the server still answers
    // what it can and closes.
    let mut c = base();
    c.close_after_env = true;
    let out = run_agi(live.agi, &c, Duration::from_secs(5));
    assert_ne!(out.status, "TIMEOUT", "{out:?}");
    // A script calltrail does not serve: closed without a command.
    let out = run_agi(live.agi, &AgiCall::new("other?x=1"), Duration::from_secs(5));
    assert_eq!(
        (out.status.as_str(), out.commands.len()),
        ("SUCCESS", 0),
        "{out:?}"
    );
    // A withheld caller id ("unknown" in agi_callerid).
    let out = run_agi(live.agi, &AgiCall::new("lookup"), Duration::from_secs(5));
    assert_eq!(
        (
            out.var("CALLTRAIL_ACTION"),
            out.var("CALLTRAIL_AGENT_STATE"),
            out.var("CALLTRAIL_OK")
        ),
        (Some("none"), Some("unknown"), Some("1"))
    );
    // The policy from the script's query string.
    let mut c = AgiCall::new("lookup?policy=first_agent&window=all");
    c.args = vec!["+79161234567".into()];
    assert_eq!(agi(live.agi, &c)["agent"], "201");
    // Many sessions at once.
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let addr = live.agi;
            let c = base();
            std::thread::spawn(move || run_agi(addr, &c, Duration::from_secs(10)))
        })
        .collect();
    for h in handles {
        let out = h.join().expect("thread");
        assert_eq!(
            (out.status.as_str(), out.var("CALLTRAIL_OK")),
            ("SUCCESS", Some("1"))
        );
    }
}

/// An address of this machine that is not loopback (the one a packet to
/// the outside would leave from), if it has one.
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn refused_to_start(extra: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\npath = \"s.duckdb\"\n[[sources]]\nname = \"q\"\nkind = \"asterisk_queue_log\"\npath = \"queue_log\"\npbx = \"p\"\n{extra}"
        ),
    )
    .expect("config");
    let check = crate::daemon::calltrail(&cfg, &["check-config"]);
    assert!(!check.status.success(), "{extra}: check-config passed it");
    let out = crate::daemon::calltrail(&cfg, &["run"]);
    assert!(!out.status.success(), "{extra}: started");
    format!(
        "{}\ncheck-config: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&check.stdout) + String::from_utf8_lossy(&check.stderr)
    )
}

#[test]
fn beyond_loopback_only_with_a_token_or_an_allow_list() {
    let e = refused_to_start(&format!(
        "[http]\nlisten = \"0.0.0.0:{}\"\n[agi]\nenabled = false\n",
        free_port()
    ));
    assert!(
        e.contains("not a loopback address") && e.contains("token_file"),
        "{e}"
    );
    assert!(
        e.contains("check-config: ") && e.contains("http.listen"),
        "{e}"
    );
    let e = refused_to_start(&format!(
        "[http]\nlisten = \"127.0.0.1:{}\"\n[agi]\nlisten = \"0.0.0.0:{}\"\n",
        free_port(),
        free_port()
    ));
    assert!(e.contains("[agi] allow") && e.contains("agi.listen"), "{e}");

    // With a token: loopback clients need none, others must bring it.
    let token = "s3cret-token-0123456789";
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token");
    let port = free_port();
    let _live = Live::start(&format!(
        "[http]\nlisten = \"0.0.0.0:{port}\"\ntoken_file = \"{}\"\n",
        token_file.display()
    ));
    let Some(ip) = outside_address() else {
        panic!("this machine has no non-loopback address to test a remote client from");
    };
    let remote = SocketAddr::new(ip, port);
    let a = agent();
    let url = format!("http://{remote}/api/lookup?number=%2B79161234567");
    assert_eq!(a.get(&url).call().expect("answer").status().as_u16(), 401);
    let with_header = a
        .get(&url)
        .header("authorization", format!("Bearer {token}"))
        .call()
        .expect("answer");
    assert_eq!(with_header.status().as_u16(), 200);
    let with_query = a
        .get(format!("{url}&token={token}"))
        .call()
        .expect("answer");
    assert_eq!(with_query.status().as_u16(), 200);
    assert_eq!(
        a.get(format!("http://{remote}/healthz"))
            .call()
            .expect("answer")
            .status()
            .as_u16(),
        200
    );
    let local = SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port);
    assert_eq!(
        a.get(format!("http://{local}/api/lookup?number=1"))
            .call()
            .expect("answer")
            .status()
            .as_u16(),
        200
    );
}
