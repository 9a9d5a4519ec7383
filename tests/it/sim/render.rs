//! Writes the simulated day the way Asterisk writes it: `queue_log` lines
//! (`epoch|callid|queue|agent|EVENT|data…`, FORMATS.md §a) in the order
//! they were logged, and `Master.csv` rows (cdr_csv, 18 columns, local
//! time, written at hangup, FORMATS.md §b.1).

use super::day::MSK_OFFSET_S;
use super::truth::{AgentAct, Call, CdrRow, Day, EndKind, Ts};

/// One written line with the time it was written (for shuffling tests).
#[derive(Debug, Clone)]
pub struct Line {
    pub at: Ts,
    pub text: String,
}

/// The day's two files, line by line, in write order.
#[derive(Debug, Clone)]
pub struct Files {
    pub queue_log: Vec<Line>,
    pub master_csv: Vec<Line>,
}

pub fn render(day: &Day) -> Files {
    let mut ql: Vec<(Ts, usize, String)> = Vec::new();
    let mut push = |at: Ts, text: String| {
        let n = ql.len();
        ql.push((at, n, text));
    };
    push(
        day.start - 3600,
        format!("{}|NONE|NONE|NONE|QUEUESTART|", day.start - 3600),
    );
    for e in &day.agent_events {
        let a = &day.agents[e.agent];
        let q = e.queue.unwrap_or("NONE");
        let t = e.at;
        let line = match &e.act {
            AgentAct::Add { paused } => format!(
                "{t}|MANAGER|{q}|{}|ADDMEMBER|{}",
                a.iface,
                if *paused { "PAUSED" } else { "" }
            ),
            AgentAct::Remove => format!("{t}|MANAGER|{q}|{}|REMOVEMEMBER|", a.iface),
            AgentAct::Pause(r) => format!("{t}|NONE|{q}|{}|PAUSE|{r}", a.member),
            AgentAct::Unpause => format!("{t}|NONE|{q}|{}|UNPAUSE|", a.member),
            AgentAct::PauseAll(r) => format!("{t}|NONE|NONE|{}|PAUSEALL|{r}", a.member),
            AgentAct::UnpauseAll => format!("{t}|NONE|NONE|{}|UNPAUSEALL|", a.member),
            AgentAct::Login => format!(
                "{t}|NONE|NONE|{}|AGENTLOGIN|PJSIP/3{}-0000001f",
                a.member,
                &a.id[2..]
            ),
            AgentAct::Logoff { login_s } => format!(
                "{t}|NONE|NONE|{}|AGENTLOGOFF|PJSIP/3{}-0000001f|{login_s}",
                a.member,
                &a.id[2..]
            ),
        };
        push(t, line);
    }
    for c in &day.calls {
        queue_log_of(day, c, &mut push);
    }
    ql.sort_by_key(|(at, n, _)| (*at, *n));
    let mut cdr: Vec<(Ts, usize, String)> = day
        .calls
        .iter()
        .filter_map(|c| c.cdr.as_ref().map(|r| (c, r)))
        .enumerate()
        .map(|(n, (c, r))| (r.end, n, cdr_line(&c.id, r)))
        .collect();
    cdr.sort_by_key(|(at, n, _)| (*at, *n));
    Files {
        queue_log: ql
            .into_iter()
            .map(|(at, _, text)| Line { at, text })
            .collect(),
        master_csv: cdr
            .into_iter()
            .map(|(at, _, text)| Line { at, text })
            .collect(),
    }
}

fn queue_log_of(day: &Day, c: &Call, push: &mut impl FnMut(Ts, String)) {
    let id = &c.id;
    for (i, s) in c.stints.iter().enumerate() {
        let q = s.queue;
        let t = s.entered;
        if i == 0 {
            if let Some(did) = &c.did_raw {
                push(t, format!("{t}|{id}|{q}|NONE|DID|{did}"));
            }
        }
        push(
            t,
            format!(
                "{t}|{id}|{q}|NONE|ENTERQUEUE||{}|{}",
                c.caller_raw, s.position
            ),
        );
        for r in &s.rna {
            let m = day.agents[r.agent].member;
            push(
                r.at,
                format!("{}|{id}|{q}|{m}|RINGNOANSWER|{}", r.at, r.ring_ms),
            );
        }
        if let Some(x) = &s.connect {
            let m = day.agents[x.agent].member;
            push(
                x.at,
                format!(
                    "{}|{id}|{q}|{m}|CONNECT|{}|{}|{}",
                    x.at, x.hold, x.member_uid, x.ring_s
                ),
            );
        }
        let Some(e) = &s.end else { continue };
        let member = s
            .connect
            .as_ref()
            .map_or("NONE", |x| day.agents[x.agent].member);
        let (t, pos) = (e.at, s.position);
        let line = match e.kind {
            EndKind::CompleteCaller => format!(
                "{t}|{id}|{q}|{member}|COMPLETECALLER|{}|{}|{pos}",
                e.wait, e.talk
            ),
            EndKind::CompleteAgent => format!(
                "{t}|{id}|{q}|{member}|COMPLETEAGENT|{}|{}|{pos}",
                e.wait, e.talk
            ),
            EndKind::Transfer => format!(
                "{t}|{id}|{q}|{member}|BLINDTRANSFER|{}|from-internal|{}|{}|{pos}",
                e.transfer_to.unwrap_or("5001"),
                e.wait,
                e.talk
            ),
            EndKind::Abandon => format!("{t}|{id}|{q}|NONE|ABANDON|{pos}|{pos}|{}", e.wait),
            EndKind::Timeout => format!("{t}|{id}|{q}|NONE|EXITWITHTIMEOUT|{pos}|{pos}|{}", e.wait),
            EndKind::ExitEmpty => format!("{t}|{id}|{q}|NONE|EXITEMPTY|{pos}|{pos}|{}", e.wait),
            EndKind::ExitKey(k) => {
                format!("{t}|{id}|{q}|NONE|EXITWITHKEY|{k}|{pos}|{pos}|{}", e.wait)
            }
        };
        push(t, line);
    }
}

/// Local (Europe/Moscow) `YYYY-MM-DD HH:MM:SS`, as cdr_csv writes without
/// `usegmtime`.
pub fn local_time(t: Ts) -> String {
    chrono::DateTime::from_timestamp(t + MSK_OFFSET_S, 0)
        .expect("valid time")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One cdr_csv record (18 columns: loguniqueid and loguserfield on).
fn cdr_line(uniqueid: &str, r: &CdrRow) -> String {
    let answer = r.answer.map(|a| quoted(&local_time(a))).unwrap_or_default();
    let billsec = r.answer.map_or(0, |a| r.end - a);
    [
        quoted(""),
        quoted(&r.src),
        quoted(&r.dst),
        quoted(r.dcontext),
        quoted(&r.clid),
        quoted(&r.channel),
        quoted(&r.dstchannel),
        quoted(r.lastapp),
        quoted(&r.lastdata),
        quoted(&local_time(r.start)),
        answer,
        quoted(&local_time(r.end)),
        (r.end - r.start).to_string(),
        billsec.to_string(),
        quoted(r.disposition.cdr()),
        quoted("DOCUMENTATION"),
        quoted(uniqueid),
        quoted(""),
    ]
    .join(",")
}
