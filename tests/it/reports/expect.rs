//! Every report's rows and summary computed from the simulated day's
//! ground truth (`sim::truth`), by walking what the simulator decided —
//! no SQL, no store code — per the definitions in docs/reports.md.

use crate::sim::expect_calls::is_missed;
use crate::sim::expect_party::{self, Expiry};
use crate::sim::truth::{AgentAct, Call, Day, Direction, EndKind, Stint, Ts};
use chrono::{TimeZone, Timelike};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub type Row = BTreeMap<&'static str, Value>;
/// A report's rows and summary.
pub type Expected = (Vec<Row>, Row);
/// Pauses `(start, end, reason)` (end `None`: still going on).
type Pauses = Vec<(Ts, Option<Ts>, Option<String>)>;
/// Per (agent, number called): calls, answered, talk, last call.
type Outbound<'a> = BTreeMap<(Option<&'a str>, Option<&'a str>), (i64, i64, i64, Ts)>;

pub const SHORT_ABANDON_S: i64 = 5;
pub const SLA_THRESHOLD_S: i64 = 20;

/// A report's range in UTC seconds, "now", and the PBX's zone.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub r0: Ts,
    pub r1: Ts,
    pub now: Ts,
    pub tz: chrono_tz::Tz,
}

impl Range {
    fn has(&self, t: Ts) -> bool {
        t >= self.r0 && t < self.r1
    }

    /// The local hour of `t`.
    fn hour(&self, t: Ts) -> i64 {
        let local = self.tz.timestamp_opt(t, 0).single().expect("instant");
        i64::from(local.hour())
    }

    /// The local start of the hour (or day) `t` falls in, epoch seconds.
    fn floor(&self, t: Ts, day: bool) -> Ts {
        let local = self
            .tz
            .timestamp_opt(t, 0)
            .single()
            .expect("instant")
            .naive_local();
        let start = if day {
            local.date().and_hms_opt(0, 0, 0)
        } else {
            local.date().and_hms_opt(local.hour(), 0, 0)
        }
        .expect("hour");
        // The first instant of that local time (or after a gap).
        (0..3)
            .find_map(|h| {
                self.tz
                    .from_local_datetime(&(start + chrono::Duration::hours(h)))
                    .earliest()
            })
            .expect("a local time")
            .timestamp()
    }
}

fn mean(v: &[i64]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v.iter().sum::<i64>() as f64 / v.len() as f64)
    }
}

fn rate(a: i64, b: i64) -> Value {
    if b > 0 {
        json!(a as f64 / b as f64)
    } else {
        Value::Null
    }
}

/// The counts of `call_counts.rs`, over queue stints.
#[derive(Default, Clone)]
struct Acc {
    offered: i64,
    answered: i64,
    unanswered: i64,
    abandoned: i64,
    short: i64,
    timeouts: i64,
    exit_empty: i64,
    exit_key: i64,
    waiting: i64,
    waits: Vec<i64>,
    talks: Vec<i64>,
}

impl Acc {
    fn add(&mut self, s: &Stint) {
        self.offered += 1;
        if let Some(x) = &s.connect {
            self.answered += 1;
            self.waits.push(x.hold);
            if let Some(e) = &s.end {
                self.talks.push(e.talk);
            }
        }
        match &s.end {
            None if s.connect.is_none() => self.waiting += 1,
            None => {}
            Some(e) => {
                if s.connect.is_none() {
                    self.unanswered += 1;
                }
                match e.kind {
                    EndKind::Abandon => {
                        self.abandoned += 1;
                        if e.wait < SHORT_ABANDON_S {
                            self.short += 1;
                        }
                    }
                    EndKind::Timeout => self.timeouts += 1,
                    EndKind::ExitEmpty => self.exit_empty += 1,
                    EndKind::ExitKey(_) => self.exit_key += 1,
                    _ => {}
                }
            }
        }
    }

    fn row(&self) -> Row {
        Row::from([
            ("offered", json!(self.offered)),
            ("answered", json!(self.answered)),
            ("unanswered", json!(self.unanswered)),
            ("abandoned", json!(self.abandoned)),
            ("short_abandoned", json!(self.short)),
            ("timeouts", json!(self.timeouts)),
            ("exit_empty", json!(self.exit_empty)),
            ("exit_key", json!(self.exit_key)),
            ("waiting", json!(self.waiting)),
            ("answer_rate", rate(self.answered, self.offered)),
            ("asa_s", mean(&self.waits)),
            ("avg_talk_s", mean(&self.talks)),
        ])
    }
}

fn stints(day: &Day) -> impl Iterator<Item = (&Call, &Stint)> {
    day.calls
        .iter()
        .flat_map(|c| c.stints.iter().map(move |s| (c, s)))
}

/// `calls_by_queue`: rows per queue and the summary.
pub fn calls_by_queue(day: &Day, r: &Range) -> Expected {
    let mut per: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut all = Acc::default();
    for (_, s) in stints(day).filter(|(_, s)| r.has(s.entered)) {
        per.entry(s.queue).or_default().add(s);
        all.add(s);
    }
    let rows = per
        .into_iter()
        .map(|(q, a)| {
            let mut row = a.row();
            row.insert("queue", json!(q));
            row
        })
        .collect();
    (rows, all.row())
}

/// `calls_by_hour`: every local hour 0–23.
pub fn calls_by_hour(day: &Day, r: &Range) -> Expected {
    let mut per: BTreeMap<i64, Acc> = (0..24).map(|h| (h, Acc::default())).collect();
    let mut all = Acc::default();
    for (_, s) in stints(day).filter(|(_, s)| r.has(s.entered)) {
        per.entry(r.hour(s.entered)).or_default().add(s);
        all.add(s);
    }
    let rows = per
        .into_iter()
        .map(|(h, a)| {
            let mut row = a.row();
            row.insert("hour", json!(h));
            row
        })
        .collect();
    (rows, all.row())
}

/// `calls_by_agent`.
pub fn calls_by_agent(day: &Day, r: &Range) -> Expected {
    #[derive(Default)]
    struct A {
        answered: i64,
        rna: i64,
        waits: Vec<i64>,
        talk: i64,
        talks: Vec<i64>,
        transferred: i64,
    }
    let mut per: BTreeMap<&str, A> = BTreeMap::new();
    for (_, s) in stints(day) {
        if r.has(s.entered) {
            if let Some(x) = &s.connect {
                let a = per.entry(day.agents[x.agent].id).or_default();
                a.answered += 1;
                a.waits.push(x.hold);
                if let Some(e) = &s.end {
                    a.talk += e.talk;
                    a.talks.push(e.talk);
                    if e.kind == EndKind::Transfer {
                        a.transferred += 1;
                    }
                }
            }
        }
        for n in s.rna.iter().filter(|n| r.has(n.at)) {
            per.entry(day.agents[n.agent].id).or_default().rna += 1;
        }
    }
    let (mut answered, mut rna, mut talk) = (0, 0, 0);
    let rows = per
        .into_iter()
        .map(|(id, a)| {
            answered += a.answered;
            rna += a.rna;
            talk += a.talk;
            Row::from([
                ("agent", json!(id)),
                ("offered", json!(a.answered + a.rna)),
                ("answered", json!(a.answered)),
                ("ring_no_answer", json!(a.rna)),
                ("answer_rate", rate(a.answered, a.answered + a.rna)),
                ("asa_s", mean(&a.waits)),
                ("talk_s", json!(a.talk)),
                ("avg_talk_s", mean(&a.talks)),
                ("transferred", json!(a.transferred)),
            ])
        })
        .collect();
    let summary = Row::from([
        ("offered", json!(answered + rna)),
        ("answered", json!(answered)),
        ("ring_no_answer", json!(rna)),
        ("answer_rate", rate(answered, answered + rna)),
        ("talk_s", json!(talk)),
    ]);
    (rows, summary)
}

/// Periods `[start, end)` (end `None`: still going on).
type Periods = Vec<(Ts, Option<Ts>)>;

/// An agent's logged-in periods and pauses `(start, end, reason)` from the
/// member, login and pause events.
fn agent_periods(day: &Day, a: usize) -> (Periods, Pauses) {
    let mut evs: Vec<_> = day.agent_events.iter().filter(|e| e.agent == a).collect();
    evs.sort_by_key(|e| e.at);
    let mut queues = BTreeSet::new();
    let mut login = false;
    let mut on = false;
    let mut sessions: Periods = Vec::new();
    let mut paused: Option<Option<String>> = None;
    let mut pauses: Pauses = Vec::new();
    for e in evs {
        let mut pause_to: Option<Option<Option<String>>> = None;
        match &e.act {
            AgentAct::Add { paused: p } => {
                queues.insert(e.queue.expect("queue"));
                if *p {
                    pause_to = Some(Some(None));
                }
            }
            AgentAct::Remove => {
                queues.remove(e.queue.expect("queue"));
            }
            AgentAct::Login => login = true,
            AgentAct::Logoff { .. } => login = false,
            AgentAct::Pause(r) | AgentAct::PauseAll(r) => pause_to = Some(Some(Some(r.clone()))),
            AgentAct::Unpause | AgentAct::UnpauseAll => pause_to = Some(None),
        }
        let now_on = !queues.is_empty() || login;
        if now_on != on {
            if now_on {
                sessions.push((e.at, None));
            } else if let Some(last) = sessions.last_mut() {
                last.1 = Some(e.at);
            }
            on = now_on;
        }
        if let Some(to) = pause_to {
            if to != paused {
                if let Some(last) = pauses
                    .last_mut()
                    .filter(|p| p.1.is_none() && paused.is_some())
                {
                    last.1 = Some(e.at);
                }
                if let Some(reason) = &to {
                    pauses.push((e.at, None, reason.clone()));
                }
                paused = to;
            }
        }
    }
    (sessions, pauses)
}

/// `agent_activity`.
pub fn agent_activity(day: &Day, r: &Range) -> Expected {
    let end = r.r1.min(r.now);
    let clip = |s: Ts, e: Option<Ts>| -> Option<(Ts, Ts)> {
        let (a, b) = (s.max(r.r0), e.unwrap_or(r.now).min(r.r1).min(end.max(r.r0)));
        (b > a).then_some((a, b))
    };
    let mut rows = Vec::new();
    let mut tot = (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
    for (a, def) in day.agents.iter().enumerate() {
        let (sessions, pauses) = agent_periods(day, a);
        let clipped: Vec<(Ts, Ts)> = sessions.iter().filter_map(|&(s, e)| clip(s, e)).collect();
        let logged: i64 = clipped.iter().map(|(s, e)| e - s).sum();
        let mut reasons: BTreeMap<Option<String>, (i64, i64)> = BTreeMap::new();
        for (s, e, reason) in &pauses {
            let pe = e.unwrap_or(r.now);
            let secs: i64 = clipped
                .iter()
                .map(|&(c0, c1)| (pe.min(c1) - (*s).max(c0)).max(0))
                .sum();
            if secs > 0 {
                let x = reasons.entry(reason.clone()).or_default();
                x.0 += 1;
                x.1 += secs;
            }
        }
        let (mut calls_in, mut calls_out, mut talk) = (0i64, 0i64, 0i64);
        let mut waits = Vec::new();
        for c in &day.calls {
            for s in &c.stints {
                if let Some(x) = s.connect.as_ref().filter(|x| x.agent == a && r.has(x.at)) {
                    calls_in += 1;
                    waits.push(x.hold);
                    talk += s.end.as_ref().map_or(0, |e| e.talk);
                }
            }
            if c.stints.is_empty() && c.cdr_agent == Some(a) {
                if let Some(cdr) = c.cdr.as_ref() {
                    if let Some(ans) = cdr.answer.filter(|t| r.has(*t)) {
                        if c.direction == Direction::Outbound {
                            calls_out += 1;
                        } else {
                            calls_in += 1;
                        }
                        talk += cdr.end - ans;
                    }
                }
            }
        }
        let pauses_n: i64 = reasons.values().map(|v| v.0).sum();
        let paused: i64 = reasons.values().map(|v| v.1).sum();
        if clipped.is_empty() && reasons.is_empty() && calls_in + calls_out == 0 {
            continue;
        }
        let list: Vec<Value> = reasons
            .iter()
            .map(|(k, v)| json!({"reason": k, "pauses": v.0, "paused_s": v.1}))
            .collect();
        tot.0 += clipped.len() as i64;
        tot.1 += logged;
        tot.2 += pauses_n;
        tot.3 += paused;
        tot.4 += calls_in + calls_out;
        tot.5 += talk;
        rows.push(Row::from([
            ("agent", json!(def.id)),
            ("sessions", json!(clipped.len())),
            ("logged_in_s", json!(logged)),
            ("pauses", json!(pauses_n)),
            ("paused_s", json!(paused)),
            ("pause_reasons", Value::Array(list)),
            ("calls", json!(calls_in + calls_out)),
            ("calls_in", json!(calls_in)),
            ("calls_out", json!(calls_out)),
            ("talk_s", json!(talk)),
            ("occupancy", rate(talk, logged - paused)),
            ("asa_s", mean(&waits)),
        ]));
    }
    let summary = Row::from([
        ("sessions", json!(tot.0)),
        ("logged_in_s", json!(tot.1)),
        ("pauses", json!(tot.2)),
        ("paused_s", json!(tot.3)),
        ("calls", json!(tot.4)),
        ("talk_s", json!(tot.5)),
        ("occupancy", rate(tot.5, tot.1 - tot.3)),
    ]);
    (rows, summary)
}

fn utc(s: &str) -> Option<Ts> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// The agent of a call's first answer (its first CONNECT, or the CDR's).
fn answering_agent<'a>(day: &'a Day, c: &Call) -> Option<&'a str> {
    if c.stints.is_empty() {
        return c
            .cdr
            .as_ref()
            .filter(|r| r.answer.is_some())
            .and(c.cdr_agent)
            .map(|a| day.agents[a].id);
    }
    c.stints
        .iter()
        .find_map(|s| s.connect.as_ref())
        .map(|x| day.agents[x.agent].id)
}

/// `missed`: the model's episodes (sim::expect_party) opened in the range.
pub fn missed(day: &Day, r: &Range, expiry: Expiry, names: &BTreeMap<&str, &str>) -> Expected {
    let model = expect_party::missed_calls(day, expiry);
    let by_id: BTreeMap<&str, &Call> = day.calls.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut rows = Vec::new();
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let (mut missed_n, mut waits) = (0i64, Vec::new());
    for m in &model.rows {
        let opened = utc(&m["opened_at"]).expect("opened_at");
        if !r.has(opened) {
            continue;
        }
        let text = |k: &str| -> Value {
            match m[k].as_str() {
                "NULL" => Value::Null,
                s => json!(s),
            }
        };
        let status = m["status"].clone();
        let resolved = utc(&m["resolved_at"]);
        let resolver = by_id
            .get(m["resolved_by"].as_str())
            .and_then(|c| answering_agent(day, c));
        let ttc = (status == "called_back").then(|| resolved.expect("resolved") - opened);
        if let Some(t) = ttc {
            waits.push(t);
        }
        *counts.entry(status.clone()).or_default() += 1;
        let count: i64 = m["missed_count"].parse().expect("count");
        missed_n += count;
        rows.push(Row::from([
            ("caller", text("caller")),
            (
                "caller_name",
                names
                    .get(m["caller"].as_str())
                    .map_or(Value::Null, |n| json!(n)),
            ),
            ("queue", text("queue")),
            ("opened_at", json!(opened)),
            ("last_missed_at", json!(utc(&m["last_missed_at"]))),
            ("missed_count", json!(count)),
            (
                "callback_attempts",
                json!(m["callback_attempts"].parse::<i64>().expect("attempts")),
            ),
            ("status", json!(status)),
            ("resolved_at", resolved.map_or(Value::Null, |t| json!(t))),
            ("resolved_by", text("resolved_by")),
            (
                "resolved_by_agent",
                resolver.map_or(Value::Null, |a| json!(a)),
            ),
            ("time_to_callback_s", ttc.map_or(Value::Null, |t| json!(t))),
        ]));
    }
    let n = rows.len() as i64;
    let c = |s: &str| counts.get(s).copied().unwrap_or(0);
    let summary = Row::from([
        ("episodes", json!(n)),
        ("missed_count", json!(missed_n)),
        ("open", json!(c("open"))),
        ("called_back", json!(c("called_back"))),
        ("returned", json!(c("returned"))),
        ("expired", json!(c("expired"))),
        ("not_called_back", json!(n - c("called_back"))),
        ("not_called_back_share", rate(n - c("called_back"), n)),
        ("avg_time_to_callback_s", mean(&waits)),
    ]);
    (rows, summary)
}

/// When a call entered (its first stint, or its CDR start) and first
/// answered.
fn entered_answered(c: &Call) -> (Ts, Option<Ts>) {
    if c.stints.is_empty() {
        let r = c.cdr.as_ref().expect("CDR");
        (r.start, r.answer)
    } else {
        (
            c.stints[0].entered,
            c.stints
                .iter()
                .find_map(|s| s.connect.as_ref().map(|x| x.at)),
        )
    }
}

/// `new_callers`: parties whose first inbound call came in the range.
pub fn new_callers(day: &Day, r: &Range, names: &BTreeMap<&str, &str>) -> Expected {
    let mut by_party: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for c in day
        .calls
        .iter()
        .filter(|c| c.direction == Direction::Inbound)
    {
        if let Some(p) = c.party() {
            by_party.entry(p).or_default().push(c);
        }
    }
    let mut rows = Vec::new();
    for (party, mut calls) in by_party {
        calls.sort_by_key(|c| (entered_answered(c).0, c.id.clone()));
        let first = calls[0];
        let (seen, first_answer) = entered_answered(first);
        if !r.has(seen) {
            continue;
        }
        let answered_at = calls.iter().filter_map(|c| entered_answered(c).1).min();
        rows.push(Row::from([
            ("caller", json!(party)),
            (
                "caller_name",
                names.get(party).map_or(Value::Null, |n| json!(n)),
            ),
            ("first_seen_at", json!(seen)),
            (
                "queue",
                first.stints.first().map_or(Value::Null, |s| json!(s.queue)),
            ),
            ("first_call_answered", json!(first_answer.is_some())),
            (
                "first_agent",
                answering_agent(day, first).map_or(Value::Null, |a| json!(a)),
            ),
            (
                "first_answered_at",
                answered_at.map_or(Value::Null, |t| json!(t)),
            ),
            (
                "answered_by_range_end",
                json!(answered_at.is_some_and(|t| t < r.r1)),
            ),
        ]));
    }
    let n = rows.len() as i64;
    let yes = |k: &str| rows.iter().filter(|x| x[k] == json!(true)).count() as i64;
    let first = yes("first_call_answered");
    let summary = Row::from([
        ("new_callers_count", json!(n)),
        ("first_call_answered", json!(first)),
        ("first_call_answered_share", rate(first, n)),
        ("answered_by_range_end", json!(yes("answered_by_range_end"))),
    ]);
    (rows, summary)
}

/// `outbound`: per agent and number called.
pub fn outbound(day: &Day, r: &Range, names: &BTreeMap<&str, &str>) -> Expected {
    let mut per: Outbound = BTreeMap::new();
    for c in day
        .calls
        .iter()
        .filter(|c| c.direction == Direction::Outbound && c.stints.is_empty())
    {
        let cdr = c.cdr.as_ref().expect("CDR");
        if !r.has(cdr.start) {
            continue;
        }
        let agent = c.cdr_agent.map(|a| day.agents[a].id);
        let e = per
            .entry((agent, c.callee.as_deref()))
            .or_insert((0, 0, 0, 0));
        e.0 += 1;
        if let Some(a) = cdr.answer {
            e.1 += 1;
            e.2 += cdr.end - a;
        }
        e.3 = e.3.max(cdr.start);
    }
    let mut tot = (0, 0, 0);
    let rows = per
        .into_iter()
        .map(|((agent, callee), (n, ans, talk, last))| {
            tot.0 += n;
            tot.1 += ans;
            tot.2 += talk;
            Row::from([
                ("agent", json!(agent)),
                ("callee", json!(callee)),
                (
                    "callee_name",
                    callee
                        .and_then(|c| names.get(c))
                        .map_or(Value::Null, |n| json!(n)),
                ),
                ("calls", json!(n)),
                ("answered", json!(ans)),
                ("talk_s", json!(talk)),
                ("last_at", json!(last)),
            ])
        })
        .collect();
    let summary = Row::from([
        ("calls", json!(tot.0)),
        ("answered", json!(tot.1)),
        ("talk_s", json!(tot.2)),
    ]);
    (rows, summary)
}

/// The six counts of a service level.
#[derive(Default, Clone, Copy)]
pub struct Sl {
    offered: i64,
    answered: i64,
    within: i64,
    abandoned: i64,
    short: i64,
    ab_within: i64,
}

impl Sl {
    /// Under a formula of docs/metrics.md, by name.
    pub fn level(&self, formula: &str) -> Value {
        let (n, d) = match formula {
            "default" => (self.within, self.offered - self.short),
            "abandons_ignored" => (self.within, self.offered - self.abandoned),
            "abandons_negative" => (self.within, self.offered),
            "abandons_positive" => (self.within + self.ab_within, self.offered),
            "asterisk_sl" => (self.within, self.answered),
            "asterisk_sl2" => (self.within + self.ab_within, self.answered + self.abandoned),
            other => panic!("no formula {other}"),
        };
        rate(n, d)
    }
}

/// `service_level`: per (interval start, queue), ended stints.
pub fn service_level(day: &Day, r: &Range, day_interval: bool, formula: &str) -> Expected {
    let mut per: BTreeMap<(Ts, &str), Sl> = BTreeMap::new();
    let mut all = Sl::default();
    for (_, s) in stints(day).filter(|(_, s)| r.has(s.entered)) {
        let Some(e) = &s.end else { continue };
        let k = per
            .entry((r.floor(s.entered, day_interval), s.queue))
            .or_default();
        for x in [&mut *k, &mut all] {
            x.offered += 1;
            if let Some(c) = &s.connect {
                x.answered += 1;
                if c.hold <= SLA_THRESHOLD_S {
                    x.within += 1;
                }
            }
            if e.kind == EndKind::Abandon {
                x.abandoned += 1;
                if e.wait < SHORT_ABANDON_S {
                    x.short += 1;
                }
                if e.wait <= SLA_THRESHOLD_S {
                    x.ab_within += 1;
                }
            }
        }
    }
    let rows = per
        .into_iter()
        .map(|((t, q), x)| {
            Row::from([
                ("interval_start", json!(t)),
                ("queue", json!(q)),
                ("offered", json!(x.offered)),
                ("answered", json!(x.answered)),
                ("answered_within", json!(x.within)),
                ("abandoned", json!(x.abandoned)),
                ("short_abandoned", json!(x.short)),
                ("abandoned_within", json!(x.ab_within)),
                ("service_level", x.level(formula)),
            ])
        })
        .collect();
    let summary = Row::from([
        ("offered", json!(all.offered)),
        ("answered", json!(all.answered)),
        ("answered_within", json!(all.within)),
        ("abandoned", json!(all.abandoned)),
        ("short_abandoned", json!(all.short)),
        ("abandoned_within", json!(all.ab_within)),
        ("service_level", all.level(formula)),
        ("sla_threshold_s", json!(SLA_THRESHOLD_S)),
    ]);
    (rows, summary)
}

/// Calls the sim counts as missed (for the test's coverage checks).
pub fn missed_calls(day: &Day) -> usize {
    day.calls.iter().filter(|c| is_missed(c)).count()
}
