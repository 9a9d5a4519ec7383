//! Chaos for actions (issue 13, must show 2): missed calls and first calls
//! flow while `calltrail run` is SIGKILLed at random points and the SMS
//! gateway (a real Kannel: its `smsbox`, or its SMSC link), the SMTP server
//! (aiosmtpd) and the AMI endpoint (the Asterisk-like peer) go down and come
//! back. "Asterisk" here is the test: every Originate the peer accepted gets
//! its CDR row (with the callback's accountcode) in the CDR file calltrail
//! tails, as a real Asterisk would write it.
//!
//! At the end, counted at the receivers:
//! * every open missed-call episode of `support` was called back through
//!   AMI exactly once and mailed exactly once (one Message-ID; a resend
//!   after a crash between the server's answer and the `done` mark reuses
//!   it, and is counted and shown);
//! * every answered first call got its SMS at Kannel exactly once;
//! * an episode closed before its callback was due was never called back;
//! * the `night` queue, whose rules' calendar is shut (`outside_hours =
//!   "drop"`), caused nothing at any receiver;
//! * an action a crash left `in_doubt` was never resent by calltrail: the
//!   test then plays the operator (`calltrail actions retry` when the
//!   receiver never got it, `cancel` when it did), and only then are the
//!   counts exact.
//!
//! Environment: `CALLTRAIL_ACTIONS_CHAOS_CYCLES` (default 8),
//! `CALLTRAIL_ACTIONS_CHAOS_SEED` (default: from the clock; printed).

use crate::chaos::Rng;
use crate::daemon::{append, calltrail, query_json, Daemon};
use crate::rules::daemon_config;
use crate::support::asterisk_ami::{AmiOptions, AmiPeer, DEFAULT_SECRET, DEFAULT_USERNAME};
use crate::support::kannel::Kannel;
use crate::support::smtp::SmtpServer;
use crate::support::wait_until;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The callers of one kind, as written (8…) and as stored (+7…).
#[derive(Default)]
struct Callers {
    missed: Vec<String>,
    closed: Vec<String>,
    first: Vec<String>,
    night: Vec<String>,
}

fn e164(n: &str) -> String {
    format!("+7{}", &n[1..])
}

fn lost(id: &str, queue: &str, caller: &str, at: i64) -> String {
    format!(
        "{at}|{id}|{queue}|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|{queue}|NONE|ABANDON|1|1|30\n",
        at + 30
    )
}

fn answered(id: &str, caller: &str, at: i64) -> String {
    format!(
        "{at}|{id}|support|NONE|ENTERQUEUE||{caller}|1\n{}|{id}|support|PJSIP/201|CONNECT|2|{id}.2|1\n{}|{id}|support|PJSIP/201|COMPLETECALLER|2|20|1\n",
        at + 2,
        at + 22
    )
}

/// The CDR row Asterisk writes for an originated callback: the
/// accountcode first (Master.csv's column order).
fn cdr_row(account: &str, n: usize) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    format!(
        "\"{account}\",\"\",\"s\",\"calltrail-callback\",\"\",\"Local/support@calltrail-queues-{n:08x};1\",\"\",\"Queue\",\"support\",\"{now}\",\"{now}\",\"{now}\",10,9,\"ANSWERED\",\"DOCUMENTATION\",\"1796400000.{n}\",\"\"\n"
    )
}

fn var<'a>(o: &'a crate::support::asterisk_ami::Originate, k: &str) -> Option<&'a str> {
    o.variables
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
}

/// Originates per number (CT_NUMBER).
fn originates(peer: &AmiPeer) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for o in peer.originates() {
        if let Some(n) = var(&o, "CT_NUMBER") {
            *m.entry(n.to_string()).or_default() += 1;
        }
    }
    m
}

/// Messages per number at the fake SMSC (`+` dropped or not, as Kannel
/// passes it on).
fn texts(kannel: &Kannel) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in kannel.received() {
        let to = format!("+{}", s.to.trim_start_matches('+'));
        *m.entry(to).or_default() += 1;
    }
    m
}

/// Mails per number in the subject: (distinct Message-IDs, copies).
fn mails(smtp: &SmtpServer) -> BTreeMap<String, (BTreeSet<String>, usize)> {
    let mut m: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
    for mail in smtp.messages() {
        let subject = mail.header("Subject").unwrap_or_default();
        let Some(n) = subject.split_whitespace().find(|w| w.starts_with("+7")) else {
            continue;
        };
        let e = m.entry(n.to_string()).or_default();
        e.0.insert(mail.header("Message-ID").unwrap_or_default());
        e.1 += 1;
    }
    m
}

/// "Asterisk": the CDR row of every Originate not yet written.
fn write_cdrs(peer: &AmiPeer, cdr: &Path, written: &mut BTreeSet<String>) {
    let mut rows = String::new();
    for o in peer.originates() {
        if !o.account.is_empty() && written.insert(o.account.clone()) {
            rows += &cdr_row(&o.account, written.len());
        }
    }
    if !rows.is_empty() {
        append(cdr, rows.as_bytes());
    }
}

#[test]
fn every_due_action_is_made_exactly_once_through_kills_and_outages() {
    let cycles = std::env::var("CALLTRAIL_ACTIONS_CHAOS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8u64);
    let seed = std::env::var("CALLTRAIL_ACTIONS_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("actions chaos: seed {seed} (CALLTRAIL_ACTIONS_CHAOS_SEED), {cycles} cycles");
    let mut rng = Rng(seed);
    let kannel = Kannel::start();
    let mut smtp = SmtpServer::start();
    let peer = AmiPeer::start(AmiOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kannel.pass"), kannel.password()).expect("password");
    let cdr = dir.path().join("Master.csv");
    std::fs::write(&cdr, "").expect("cdr");
    let d = chrono::Utc::now().date_naive();
    let day = |n: i64| {
        (d + chrono::Duration::days(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    let cfg = daemon_config(
        dir.path(),
        &format!(
            r#"
[[sources]]
name = "cdr"
kind = "asterisk_cdr_csv"
path = "Master.csv"
pbx = "pbx1"
timezone = "UTC"
poll_interval_ms = 50

[email.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout_s = 5

[sms]
gateway = "kannel"
[sms.kannel]
url = "{kannel_url}"
username = "{kannel_user}"
password = {{ file = "kannel.pass" }}

[callbacks]
method = "ami"
per_minute = 0
max_retries = 0
wait_time_s = 5
[callbacks.ami]
port = {ami_port}
username = "{DEFAULT_USERNAME}"
secret = {{ env = "CT_TEST_AMI_SECRET" }}

[calendars.shut]
timezone = "UTC"
hours = ["*"]
holidays = ["{d0}", "{d1}", "{d2}"]

[[rules]]
name = "cb"
when = "missed_opened"
queues = ["support"]
action = "callback"

[[rules]]
name = "mail"
when = "missed_opened"
queues = ["support"]
action = "email"
to = ["sup@pbx.example"]
subject = "Lost {{{{ caller }}}} in {{{{ queue }}}}"

[[rules]]
name = "welcome"
when = "first_call"
action = "sms"
text = "Спасибо за звонок, {{{{ caller }}}}!"

[[rules]]
name = "night-cb"
when = "missed_opened"
queues = ["night"]
calendar = "shut"
outside_hours = "drop"
action = "callback"

[[rules]]
name = "night-mail"
when = "missed_opened"
queues = ["night"]
calendar = "shut"
outside_hours = "drop"
action = "email"
to = ["sup@pbx.example"]
subject = "Lost {{{{ caller }}}} in {{{{ queue }}}}"

[[rules]]
name = "night-sms"
when = "missed_opened"
queues = ["night"]
calendar = "shut"
outside_hours = "drop"
action = "sms"
text = "Night {{{{ caller }}}}"
"#,
            smtp_port = smtp.port(),
            kannel_url = kannel.sendsms_url(),
            kannel_user = kannel.username(),
            ami_port = peer.port(),
            d0 = day(0),
            d1 = day(1),
            d2 = day(2),
        ),
    );
    let env = [("CT_TEST_AMI_SECRET", DEFAULT_SECRET)];
    let queue_log = dir.path().join("queue_log");
    let mut callers = Callers::default();
    let mut cdrs = BTreeSet::new();
    let (mut kills, mut outages) = (0usize, Vec::new());
    let (mut sms_down, mut smsc_down, mut smtp_down, mut ami_down) = (false, false, false, false);
    let started = Instant::now();
    let mut log_n = 0;
    let start = |log_n: &mut usize| {
        *log_n += 1;
        Daemon::start_env(&cfg, &dir.path().join(format!("d{log_n}.log")), &env)
    };
    let mut daemon = start(&mut log_n);
    for cycle in 0..cycles {
        // This cycle's traffic, in one write: two lost callers, one lost
        // and through at once (closed), one answered first call, one lost
        // at night.
        let t = chrono::Utc::now().timestamp() - 120;
        let mut lines = String::new();
        for k in 0..2 {
            let n = format!("891620{cycle:03}{k:02}");
            lines += &lost(&format!("m{cycle}-{k}"), "support", &n, t);
            callers.missed.push(n);
        }
        let c = format!("891630{cycle:03}00");
        lines += &lost(&format!("c{cycle}"), "support", &c, t);
        lines += &answered(&format!("c{cycle}b"), &c, t + 40);
        callers.closed.push(c);
        let f = format!("891640{cycle:03}00");
        lines += &answered(&format!("f{cycle}"), &f, t);
        callers.first.push(f);
        let nn = format!("891650{cycle:03}00");
        lines += &lost(&format!("n{cycle}"), "night", &nn, t);
        callers.night.push(nn);
        append(&queue_log, lines.as_bytes());
        // A receiver goes down or comes back.
        match rng.below(5) {
            0 => {
                if sms_down {
                    kannel.start_smsbox();
                } else {
                    kannel.stop_smsbox();
                }
                sms_down = !sms_down;
                outages.push(format!(
                    "{cycle}: smsbox {}",
                    if sms_down { "down" } else { "up" }
                ));
            }
            1 => {
                if smsc_down {
                    kannel.start_fakesmsc();
                } else {
                    kannel.stop_fakesmsc();
                }
                smsc_down = !smsc_down;
                outages.push(format!(
                    "{cycle}: SMSC link {}",
                    if smsc_down { "down" } else { "up" }
                ));
            }
            2 => {
                if smtp_down {
                    smtp.restart();
                } else {
                    smtp.stop();
                }
                smtp_down = !smtp_down;
                outages.push(format!(
                    "{cycle}: SMTP {}",
                    if smtp_down { "down" } else { "up" }
                ));
            }
            3 => {
                if ami_down {
                    peer.restart();
                } else {
                    peer.stop();
                }
                ami_down = !ami_down;
                outages.push(format!(
                    "{cycle}: AMI {}",
                    if ami_down { "down" } else { "up" }
                ));
            }
            _ => {}
        }
        // Half the kills land in the first moments after the lines, while
        // the deriver and the sends are busy with them.
        std::thread::sleep(if rng.chance(0.5) {
            rng.ms(0, 600)
        } else {
            rng.ms(200, 3000)
        });
        write_cdrs(&peer, &cdr, &mut cdrs);
        // SIGKILL at a random point, and start again.
        drop(daemon);
        kills += 1;
        daemon = start(&mut log_n);
    }
    // Everything comes back.
    if sms_down {
        kannel.start_smsbox();
    }
    if smsc_down {
        kannel.start_fakesmsc();
    }
    if smtp_down {
        smtp.restart();
    }
    if ami_down {
        peer.restart();
    }
    let unsettled = || {
        query_json(
            &cfg,
            "SELECT count(*) AS n FROM actions WHERE status IN ('pending', 'sending')",
        )[0]["n"]
            .as_i64()
            .unwrap_or(-1)
    };
    // Retries back off (an SMS at least a minute), so settling takes a while.
    let settle = |daemon: &Daemon, cdrs: &mut BTreeSet<String>| {
        assert!(
            wait_until(Duration::from_secs(300), || {
                write_cdrs(&peer, &cdr, cdrs);
                std::thread::sleep(Duration::from_millis(500));
                unsettled() == 0
            }),
            "actions still pending: {:?}\n{}",
            query_json(
                &cfg,
                "SELECT action_id, status, attempts, next_attempt_at, last_error FROM actions WHERE status IN ('pending', 'sending')"
            ),
            daemon.log()
        );
    };
    settle(&daemon, &mut cdrs);
    // Wait for the CDRs of the last Originates to settle their callbacks.
    std::thread::sleep(Duration::from_secs(2));
    write_cdrs(&peer, &cdr, &mut cdrs);
    std::thread::sleep(Duration::from_secs(6));
    // The operator: every in_doubt action checked at its receiver.
    let doubts = query_json(
        &cfg,
        "SELECT action_id, kind, payload FROM actions WHERE status = 'in_doubt' ORDER BY 1",
    );
    let (sent_before, made_before) = (texts(&kannel), originates(&peer));
    let mut retried = Vec::new();
    for r in &doubts {
        let id = r["action_id"].as_str().expect("id").to_string();
        let p: serde_json::Value =
            serde_json::from_str(r["payload"].as_str().expect("payload")).expect("json");
        let arrived = match r["kind"].as_str() {
            Some("sms") => sent_before.contains_key(p["to"].as_str().unwrap_or("")),
            Some("callback") => made_before.contains_key(p["caller"].as_str().unwrap_or("")),
            k => panic!("an in_doubt {k:?} action: {r:?}"),
        };
        let verb = if arrived { "cancel" } else { "retry" };
        let out = calltrail(&cfg, &["actions", verb, &id]);
        assert!(out.status.success(), "actions {verb} {id}: {out:?}");
        if !arrived {
            retried.push(id);
        }
    }
    settle(&daemon, &mut cdrs);
    std::thread::sleep(Duration::from_secs(3));
    write_cdrs(&peer, &cdr, &mut cdrs);

    // Counted at the receivers.
    let (made, sent, mailed) = (originates(&peer), texts(&kannel), mails(&smtp));
    let mut problems = Vec::new();
    for n in &callers.missed {
        let n = e164(n);
        if made.get(&n) != Some(&1) {
            problems.push(format!("{n}: {:?} callbacks, want 1", made.get(&n)));
        }
        match mailed.get(&n) {
            Some((ids, _)) if ids.len() == 1 => {}
            m => problems.push(format!("{n}: mails {m:?}, want one Message-ID")),
        }
        if sent.contains_key(&n) {
            problems.push(format!("{n}: an SMS for a lost caller"));
        }
    }
    for n in &callers.closed {
        let n = e164(n);
        if made.contains_key(&n) {
            problems.push(format!("{n}: called back after the episode closed"));
        }
    }
    for n in &callers.first {
        let n = e164(n);
        if sent.get(&n) != Some(&1) {
            problems.push(format!("{n}: {:?} SMS, want 1", sent.get(&n)));
        }
        if made.contains_key(&n) || mailed.contains_key(&n) {
            problems.push(format!("{n}: a first caller who got through was acted on"));
        }
    }
    for n in &callers.night {
        let n = e164(n);
        if made.contains_key(&n) || sent.contains_key(&n) || mailed.contains_key(&n) {
            problems.push(format!("{n}: acted on outside business hours"));
        }
    }
    let night_skipped = query_json(
        &cfg,
        "SELECT count(*) AS n FROM actions WHERE action_id LIKE 'rule:night-%' AND status = 'skipped'",
    )[0]["n"]
        .as_i64()
        .unwrap_or(0);
    if night_skipped != 3 * callers.night.len() as i64 {
        problems.push(format!(
            "{night_skipped} night actions recorded skipped, want {}",
            3 * callers.night.len()
        ));
    }
    let resent_mail: usize = mailed
        .values()
        .map(|(ids, copies)| copies - ids.len())
        .sum();
    eprintln!(
        "actions chaos: {cycles} cycles, {kills} SIGKILLs, outages [{}], {:.0} s; at the receivers: \
         {} callbacks, {} SMS, {} mails ({resent_mail} resent with the same Message-ID); \
         {} in_doubt settled by the operator ({} retried), {} CDR rows",
        outages.join(", "),
        started.elapsed().as_secs_f64(),
        made.values().sum::<usize>(),
        sent.values().sum::<usize>(),
        mailed.values().map(|m| m.1).sum::<usize>(),
        doubts.len(),
        retried.len(),
        cdrs.len(),
    );
    assert!(
        problems.is_empty(),
        "seed {seed}: {problems:#?}\nactions: {:?}\ncallbacks: {:?}\n{}",
        query_json(
            &cfg,
            "SELECT action_id, status, attempts, last_error FROM actions ORDER BY 1"
        ),
        query_json(&cfg, "SELECT * FROM callbacks ORDER BY 1"),
        daemon.log()
    );
    drop(daemon);
}
