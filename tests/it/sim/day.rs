//! Generates the simulated call-center day (08:00–20:00 Europe/Moscow)
//! from a seed: agent shifts and pauses, inbound queue calls with every
//! outcome, transfers to another queue, direct-dial calls, agents calling
//! missed callers back, missed callers calling again, a few cold and
//! internal calls, and the calls still up at 20:00 (written as open).
//!
//! Agents never take two calls at once, are never asked to answer while
//! paused or outside their queues, and a caller never has two calls at
//! once, so the day is one a real PBX could have logged.

use super::cast::{self, AgentDef, Person, QUEUES};
use super::rng::Rng;
use super::truth::{
    AgentAct, AgentEvent, Call, CdrRow, Connect, Day, Direction, Disposition, End, EndKind,
    RingNoAnswer, Stint, Ts,
};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Seconds an agent needs between two calls.
const WRAP_S: i64 = 5;
/// Moscow is UTC+3 all year.
pub const MSK_OFFSET_S: i64 = 3 * 3600;

/// What a scheduled moment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Plan {
    /// An inbound call of any kind from a random caller.
    Any,
    /// A caller calling again after a miss, answered when possible.
    Return,
    /// A caller trying again soon after a miss, and giving up again.
    RetryMiss,
    /// An agent calls a missed caller back (attempt number).
    Callback(u32),
    Cold,
    Internal,
    /// A call answered at 19:52 and still going at 20:00.
    OpenTalk,
    /// A caller who entered at 19:59:30 and still waits at 20:00.
    OpenWait,
}

#[derive(Debug, Clone, Copy)]
enum Class {
    Answer,
    Transfer,
    Abandon,
    ShortAbandon,
    Timeout,
    ExitEmpty,
    ExitKey,
}

struct Gen {
    rng: Rng,
    start: Ts,
    cutoff: Ts,
    agents: Vec<AgentDef>,
    login: Vec<Ts>,
    logout: Vec<Option<Ts>>,
    busy: Vec<Vec<(Ts, Ts)>>,
    pauses: Vec<Vec<(Ts, Ts)>>,
    people: Vec<Person>,
    person_free: Vec<Ts>,
    uid: u64,
    calls: Vec<Call>,
    events: Vec<AgentEvent>,
    heap: BinaryHeap<Reverse<(Ts, u64, Plan, usize)>>,
    seq: u64,
}

/// Generates the day that starts at `start` (08:00 local, UTC epoch).
pub fn generate(seed: u64, start: Ts) -> Day {
    let mut rng = Rng::new(seed);
    let people = cast::callers(&mut rng, 240);
    let agents = cast::agents();
    let n = agents.len();
    let mut g = Gen {
        rng,
        start,
        cutoff: start + 12 * 3600,
        agents,
        login: vec![0; n],
        logout: vec![None; n],
        busy: vec![Vec::new(); n],
        pauses: vec![Vec::new(); n],
        person_free: vec![0; people.len()],
        people,
        uid: 1000,
        calls: Vec::new(),
        events: Vec::new(),
        heap: BinaryHeap::new(),
        seq: 0,
    };
    g.shifts();
    g.plan_arrivals();
    while let Some(Reverse((t, _, plan, person))) = g.heap.pop() {
        g.handle(t, plan, person);
    }
    g.truncate();
    Day {
        start: g.start,
        cutoff: g.cutoff,
        agents: g.agents,
        calls: g.calls,
        agent_events: g.events,
    }
}

impl Gen {
    fn push(&mut self, t: Ts, plan: Plan, person: usize) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, plan, person)));
    }

    fn uniqueid(&mut self, t: Ts) -> String {
        self.uid += 1;
        format!("{t}.{}", self.uid)
    }

    fn chan(&mut self, prefix: &str) -> String {
        self.uid += 1;
        format!("{prefix}-{:08x}", self.uid)
    }

    fn event(&mut self, at: Ts, agent: usize, queue: Option<&'static str>, act: AgentAct) {
        self.events.push(AgentEvent {
            at,
            agent,
            queue,
            act,
        });
    }

    /// Logins, logouts and pauses of every agent.
    fn shifts(&mut self) {
        for a in 0..self.agents.len() {
            let def = self.agents[a].clone();
            let login = self.start + def.login_min * 60 - 300 + self.rng.range(0, 240);
            let logout = def
                .logout_min
                .map(|m| self.start + m * 60 + self.rng.range(0, 300));
            self.login[a] = login;
            self.logout[a] = logout;
            let until = logout.unwrap_or(self.cutoff);
            if def.agent_login {
                self.event(login - 1, a, None, AgentAct::Login);
            }
            let paused_at_login = def.id == "208";
            for &q in def.queues {
                self.event(
                    login,
                    a,
                    Some(q),
                    AgentAct::Add {
                        paused: paused_at_login,
                    },
                );
            }
            if paused_at_login {
                let end = login + 300;
                self.pauses[a].push((login, end));
                for &q in def.queues {
                    self.event(end, a, Some(q), AgentAct::Unpause);
                }
            }
            let brk = login + 90 * 60 + self.rng.range(0, 1800);
            self.pause(a, brk, Some(brk + 600), "Break");
            let lunch = login + 200 * 60 + self.rng.range(0, 2400);
            if lunch + 1800 < until - 600 {
                self.pause(a, lunch, Some(lunch + 1800), "Обед");
            }
            if def.id == "207" {
                self.pause(a, self.cutoff - 1200, None, "Training");
            }
            if let Some(out) = logout {
                for &q in def.queues {
                    self.event(out, a, Some(q), AgentAct::Remove);
                }
                if def.agent_login {
                    let login_s = out + 1 - (login - 1);
                    self.event(out + 1, a, None, AgentAct::Logoff { login_s });
                }
            }
        }
    }

    /// A pause from `from` to `to` (None: not over at 20:00).
    fn pause(&mut self, a: usize, from: Ts, to: Option<Ts>, reason: &str) {
        self.pauses[a].push((from, to.unwrap_or(Ts::MAX)));
        let all = self.agents[a].id == "206";
        let queues = self.agents[a].queues;
        if all {
            self.event(from, a, None, AgentAct::PauseAll(reason.into()));
            if let Some(to) = to {
                self.event(to, a, None, AgentAct::UnpauseAll);
            }
            return;
        }
        for &q in queues {
            self.event(from, a, Some(q), AgentAct::Pause(reason.into()));
            if let Some(to) = to {
                self.event(to, a, Some(q), AgentAct::Unpause);
            }
        }
    }

    fn plan_arrivals(&mut self) {
        let last = self.cutoff - 120;
        let mut t = self.start as f64;
        loop {
            let h = (t as i64 - self.start) / 3600;
            let per_hour = match h {
                0..=1 => 22.0,
                2..=4 => 34.0,
                5..=8 => 30.0,
                _ => 20.0,
            };
            t += self.rng.exp(3600.0 / per_hour);
            if t as i64 > last {
                break;
            }
            self.push(t as i64, Plan::Any, usize::MAX);
        }
        for _ in 0..6 {
            let t = self.start + self.rng.range(1800, 11 * 3600);
            self.push(t, Plan::Cold, usize::MAX);
        }
        for _ in 0..3 {
            let t = self.start + self.rng.range(1800, 11 * 3600);
            self.push(t, Plan::Internal, usize::MAX);
        }
        let anonymous = self.people.len() - 1;
        for _ in 0..2 {
            let t = self.start + self.rng.range(1800, 11 * 3600);
            self.push(t, Plan::Any, anonymous);
        }
        self.push(self.cutoff - 480, Plan::OpenTalk, usize::MAX);
        self.push(self.cutoff - 30, Plan::OpenWait, usize::MAX);
    }

    /// A random caller who is not on a call at `t` (repeat callers are
    /// more likely: the first numbers of the pool call most).
    fn pick_person(&mut self, t: Ts) -> Option<usize> {
        let ru = self.people.len() - 3;
        for _ in 0..8 {
            let r = self.rng.f64();
            let p = if r < 0.006 {
                ru
            } else if r < 0.012 {
                ru + 1
            } else if r < 0.02 {
                ru + 2
            } else {
                (self.rng.f64().powf(1.7) * ru as f64) as usize
            };
            if self.person_free[p] <= t {
                return Some(p);
            }
        }
        None
    }

    fn handle(&mut self, t: Ts, plan: Plan, person: usize) {
        let person = if person == usize::MAX {
            match plan {
                Plan::Cold | Plan::Internal => usize::MAX,
                _ => match self.pick_person(t) {
                    Some(p) => p,
                    None => return,
                },
            }
        } else {
            person
        };
        match plan {
            Plan::Any => {
                if self.rng.chance(0.035) {
                    self.direct_call(t, person);
                    return;
                }
                let r = self.rng.f64();
                let class = if r < 0.65 {
                    Class::Answer
                } else if r < 0.68 {
                    Class::Transfer
                } else if r < 0.80 {
                    Class::Abandon
                } else if r < 0.84 {
                    Class::ShortAbandon
                } else if r < 0.90 {
                    Class::Timeout
                } else if r < 0.93 {
                    Class::ExitEmpty
                } else if r < 0.97 {
                    Class::ExitKey
                } else {
                    Class::Answer
                };
                self.queue_call(t, person, class, None);
            }
            Plan::Return => {
                if self.person_free[person] <= t {
                    self.queue_call(t, person, Class::Answer, None);
                }
            }
            Plan::RetryMiss => {
                if self.person_free[person] <= t {
                    self.queue_call(t, person, Class::Abandon, None);
                }
            }
            Plan::Callback(n) => self.callback(t, person, n),
            Plan::Cold => self.cold_call(t),
            Plan::Internal => self.internal_call(t),
            Plan::OpenTalk => {
                let p = self.pick_person(t).unwrap_or(0);
                let (from, to) = (t + 8, t + 8 + 1500);
                let queue = QUEUES
                    .into_iter()
                    .find(|q| (0..self.agents.len()).any(|a| self.can_answer(a, Some(q), from, to)))
                    .unwrap_or("sales");
                self.queue_call(t, p, Class::Answer, Some((queue, 8, 1500)));
            }
            Plan::OpenWait => {
                let p = self.pick_person(t).unwrap_or(1);
                self.queue_call(t, p, Class::Abandon, Some(("support", 60, 0)));
            }
        }
    }

    fn raw_of(&mut self, person: usize) -> String {
        let raws = &self.people[person].raws;
        raws[self.rng.index(raws.len())].clone()
    }

    fn clid(&self, person: usize, raw: &str) -> String {
        let p = &self.people[person];
        match (p.e164.is_none(), p.name) {
            (true, _) => format!("\"Anonymous\" <{raw}>"),
            (false, Some(name)) => format!("\"{name}\" <{raw}>"),
            (false, None) => format!("\"{raw}\" <{raw}>"),
        }
    }

    fn on_shift(&self, a: usize, from: Ts, to: Ts) -> bool {
        self.login[a] <= from && self.logout[a].is_none_or(|out| out >= to + WRAP_S)
    }

    fn paused_at(&self, a: usize, t: Ts) -> bool {
        self.pauses[a].iter().any(|&(f, e)| f <= t && t < e)
    }

    fn free(&self, a: usize, from: Ts, to: Ts) -> bool {
        self.busy[a]
            .iter()
            .all(|&(f, e)| e + WRAP_S < from || to + WRAP_S < f)
    }

    fn can_answer(&self, a: usize, queue: Option<&str>, from: Ts, to: Ts) -> bool {
        let member = match queue {
            Some(q) => self.agents[a].queues.contains(&q),
            None => self.agents[a].dials,
        };
        member && self.on_shift(a, from, to) && !self.paused_at(a, from) && self.free(a, from, to)
    }

    /// An agent who can take a call in `queue` (or, for `None`, a call of
    /// their own extension) over `from..=to`.
    fn pick_agent(
        &mut self,
        queue: Option<&str>,
        from: Ts,
        to: Ts,
        but: Option<usize>,
    ) -> Option<usize> {
        let ok: Vec<usize> = (0..self.agents.len())
            .filter(|&a| Some(a) != but && self.can_answer(a, queue, from, to))
            .collect();
        if ok.is_empty() {
            return None;
        }
        let a = ok[self.rng.index(ok.len())];
        self.busy[a].push((from, to));
        Some(a)
    }

    fn hold(&mut self) -> i64 {
        let r = self.rng.f64();
        if r < 0.04 {
            20
        } else if r < 0.07 {
            21
        } else if r < 0.09 {
            0
        } else if r < 0.60 {
            self.rng.range(1, 19)
        } else if r < 0.88 {
            self.rng.range(22, 60)
        } else {
            self.rng.range(61, 150)
        }
    }

    fn talk(&mut self) -> i64 {
        if self.rng.chance(0.1) {
            self.rng.range(421, 900)
        } else {
            self.rng.range(20, 420)
        }
    }

    /// A stint that a member answers `hold` seconds after `entered`, or
    /// `None` when nobody can.
    fn answered_stint(
        &mut self,
        queue: &'static str,
        entered: Ts,
        hold: i64,
        talk: i64,
        kind: EndKind,
    ) -> Option<Stint> {
        let at = entered + hold;
        let agent = self.pick_agent(Some(queue), at, at + talk, None)?;
        let member_uid = self.uniqueid(at);
        let mut stint = Stint {
            queue,
            entered,
            position: 1,
            connect: Some(Connect {
                at,
                agent,
                hold,
                ring_s: self.rng.range(2, 8).min(hold),
                member_uid,
            }),
            end: Some(End {
                at: at + talk,
                kind,
                wait: hold,
                talk,
                transfer_to: None,
            }),
            rna: Vec::new(),
        };
        if hold >= 17 && self.rng.chance(0.35) {
            self.ring_no_answer(&mut stint, Some(agent));
        }
        Some(stint)
    }

    fn unanswered_stint(
        &mut self,
        queue: &'static str,
        entered: Ts,
        kind: EndKind,
        wait: i64,
    ) -> Stint {
        let mut stint = Stint {
            queue,
            entered,
            position: self.rng.range(1, 4) as u32,
            connect: None,
            end: Some(End {
                at: entered + wait,
                kind,
                wait,
                talk: 0,
                transfer_to: None,
            }),
            rna: Vec::new(),
        };
        if wait >= 17 && self.rng.chance(0.35) {
            self.ring_no_answer(&mut stint, None);
        }
        stint
    }

    fn ring_no_answer(&mut self, stint: &mut Stint, but: Option<usize>) {
        let at = stint.entered + 15;
        let cands: Vec<usize> = (0..self.agents.len())
            .filter(|&a| Some(a) != but && self.agents[a].queues.contains(&stint.queue))
            .filter(|&a| self.on_shift(a, at, at) && !self.paused_at(a, at))
            .collect();
        if !cands.is_empty() {
            let agent = cands[self.rng.index(cands.len())];
            stint.rna.push(RingNoAnswer {
                at,
                agent,
                ring_ms: 15000,
            });
        }
    }

    fn timeout_of(queue: &str) -> i64 {
        match queue {
            "sales" => 180,
            "support" => 240,
            _ => 300,
        }
    }

    /// An inbound call into a queue. `fixed` = (queue, hold or wait, talk).
    fn queue_call(
        &mut self,
        t: Ts,
        person: usize,
        class: Class,
        fixed: Option<(&'static str, i64, i64)>,
    ) {
        let queue = match fixed {
            Some((q, _, _)) => q,
            None => {
                let r = self.rng.f64();
                if r < 0.45 {
                    "sales"
                } else if r < 0.8 {
                    "support"
                } else {
                    "billing"
                }
            }
        };
        let mut stints = Vec::new();
        match class {
            Class::Answer | Class::Transfer => {
                let (hold, talk) = match fixed {
                    Some((_, h, tk)) => (h, tk),
                    None => (self.hold(), self.talk()),
                };
                let kind = match class {
                    Class::Transfer => EndKind::Transfer,
                    _ if self.rng.chance(0.5) => EndKind::CompleteCaller,
                    _ => EndKind::CompleteAgent,
                };
                let talk = if matches!(kind, EndKind::Transfer) {
                    self.rng.range(40, 120)
                } else {
                    talk
                };
                match self.answered_stint(queue, t, hold, talk, kind) {
                    Some(mut s) => {
                        if kind == EndKind::Transfer {
                            let others: Vec<&'static str> =
                                QUEUES.iter().copied().filter(|q| *q != queue).collect();
                            let q2 = others[self.rng.index(others.len())];
                            let end = s.end.as_mut().expect("answered stint ends");
                            end.transfer_to = Some(cast::queue_exten(q2));
                            let entered2 = end.at + 1;
                            stints.push(s);
                            let (hold2, talk2) = (self.rng.range(3, 30), self.rng.range(60, 300));
                            let s2 = match self.answered_stint(
                                q2,
                                entered2,
                                hold2,
                                talk2,
                                EndKind::CompleteCaller,
                            ) {
                                Some(s2) => s2,
                                None => self.unanswered_stint(
                                    q2,
                                    entered2,
                                    EndKind::Abandon,
                                    hold2 + 20,
                                ),
                            };
                            stints.push(s2);
                        } else {
                            stints.push(s);
                        }
                    }
                    None => {
                        let wait = hold.max(5) + self.rng.range(5, 30);
                        stints.push(self.unanswered_stint(queue, t, EndKind::Abandon, wait));
                    }
                }
            }
            _ => {
                let (kind, wait) = match class {
                    Class::Abandon => {
                        let w = match fixed {
                            Some((_, w, _)) => w,
                            None if self.rng.chance(0.1) => 5,
                            None => self.rng.range(5, 150),
                        };
                        (EndKind::Abandon, w)
                    }
                    Class::ShortAbandon => (EndKind::Abandon, self.rng.range(1, 4)),
                    Class::Timeout => (EndKind::Timeout, Self::timeout_of(queue)),
                    Class::ExitEmpty => (EndKind::ExitEmpty, self.rng.range(0, 3)),
                    _ => {
                        let key = if self.rng.chance(0.5) { '0' } else { '1' };
                        (EndKind::ExitKey(key), self.rng.range(10, 90))
                    }
                };
                stints.push(self.unanswered_stint(queue, t, kind, wait));
            }
        }
        let end = stints
            .last()
            .and_then(|s| s.end.as_ref())
            .map_or(t, |e| e.at);
        self.person_free[person] = end + 1;
        let raw = self.raw_of(person);
        let id = self.uniqueid(t);
        let (did_raw, did) = cast::queue_did(queue);
        let first_connect = stints.iter().find_map(|s| s.connect.as_ref()).map(|c| c.at);
        let last_agent = stints
            .iter()
            .rev()
            .find_map(|s| s.connect.as_ref())
            .map(|c| c.agent);
        let dstchannel = match last_agent {
            Some(a) => {
                let prefix = self.agents[a].cdr_chan;
                self.chan(prefix)
            }
            None => String::new(),
        };
        let cdr = CdrRow {
            src: raw.clone(),
            dst: did_raw.into(),
            dcontext: "from-trunk",
            clid: self.clid(person, &raw),
            channel: self.chan("PJSIP/trunk"),
            dstchannel,
            lastapp: "Queue",
            lastdata: format!("{queue},r,,,{}", Self::timeout_of(queue)),
            start: t,
            answer: first_connect,
            end,
            disposition: if first_connect.is_some() {
                Disposition::Answered
            } else {
                Disposition::NoAnswer
            },
        };
        let call = Call {
            id,
            direction: Direction::Inbound,
            caller_raw: raw,
            caller: self.people[person].e164.clone(),
            callee: Some(did.into()),
            did_raw: Some(did_raw.into()),
            cdr_agent: None,
            stints,
            cdr: Some(cdr),
        };
        let missed = super::expect_calls::is_missed(&call);
        self.calls.push(call);
        if missed {
            self.follow_up(person, end);
        }
    }

    /// What a missed caller and the agents do next.
    fn follow_up(&mut self, person: usize, end: Ts) {
        if self.people[person].e164.is_none() {
            return;
        }
        let last = self.cutoff - 900;
        if self.rng.chance(0.45) {
            let t = end + self.rng.range(5, 90) * 60;
            if t < last {
                self.push(t, Plan::Callback(1), person);
            }
        }
        if self.rng.chance(0.35) {
            let t = end + self.rng.range(10, 180) * 60;
            if t < last {
                self.push(t, Plan::Return, person);
            }
        }
        if self.rng.chance(0.12) {
            let t = end + self.rng.range(2, 15) * 60;
            if t < last {
                self.push(t, Plan::RetryMiss, person);
            }
        }
    }

    /// A direct inbound call to an agent's extension (no queue).
    fn direct_call(&mut self, t: Ts, person: usize) {
        let cands: Vec<usize> = (0..self.agents.len())
            .filter(|&a| {
                self.agents[a].dials && self.on_shift(a, t, t + 300) && !self.paused_at(a, t)
            })
            .collect();
        if cands.is_empty() {
            return;
        }
        let a = cands[self.rng.index(cands.len())];
        let (answer, end, disp) = if !self.free(a, t, t + 30) {
            (None, t + 1, Disposition::Busy)
        } else if self.rng.chance(0.6) {
            let ring = self.rng.range(4, 15);
            let talk = self.rng.range(30, 240);
            if self.free(a, t, t + ring + talk) {
                self.busy[a].push((t, t + ring + talk));
                (Some(t + ring), t + ring + talk, Disposition::Answered)
            } else {
                (None, t + 25, Disposition::NoAnswer)
            }
        } else {
            (None, t + self.rng.range(20, 30), Disposition::NoAnswer)
        };
        let raw = self.raw_of(person);
        let id = self.uniqueid(t);
        let prefix = self.agents[a].cdr_chan;
        let cdr = CdrRow {
            src: raw.clone(),
            dst: cast::DIRECT_DID.0.into(),
            dcontext: "from-trunk",
            clid: self.clid(person, &raw),
            channel: self.chan("PJSIP/trunk"),
            dstchannel: self.chan(prefix),
            lastapp: "Dial",
            lastdata: format!("{prefix},30"),
            start: t,
            answer,
            end,
            disposition: disp,
        };
        self.person_free[person] = end + 1;
        let call = Call {
            id,
            direction: Direction::Inbound,
            caller_raw: raw,
            caller: self.people[person].e164.clone(),
            callee: Some(cast::DIRECT_DID.1.into()),
            did_raw: None,
            cdr_agent: Some(a),
            stints: Vec::new(),
            cdr: Some(cdr),
        };
        let missed = super::expect_calls::is_missed(&call);
        self.calls.push(call);
        if missed {
            self.follow_up(person, end);
        }
    }

    /// An outbound call from agent `a` to `dst` (CDR only).
    #[allow(clippy::too_many_arguments)]
    fn outbound(
        &mut self,
        t: Ts,
        a: usize,
        dst: String,
        callee: String,
        answer: Option<Ts>,
        end: Ts,
        disp: Disposition,
    ) {
        let id = self.uniqueid(t);
        let def = self.agents[a].clone();
        let cdr = CdrRow {
            src: def.id.into(),
            dst: dst.clone(),
            dcontext: "from-internal",
            clid: format!("\"{}\" <{}>", def.name, def.id),
            channel: self.chan(def.cdr_chan),
            dstchannel: self.chan("PJSIP/trunk"),
            lastapp: "Dial",
            lastdata: format!("PJSIP/{dst}@trunk,60"),
            start: t,
            answer,
            end,
            disposition: disp,
        };
        self.calls.push(Call {
            id,
            direction: Direction::Outbound,
            caller_raw: def.id.into(),
            caller: Some(def.id.into()),
            callee: Some(callee),
            did_raw: None,
            cdr_agent: Some(a),
            stints: Vec::new(),
            cdr: Some(cdr),
        });
    }

    fn callback(&mut self, t: Ts, person: usize, attempt: u32) {
        let r = self.rng.f64();
        let (ring, talk, disp) = if self.person_free[person] > t || r < 0.1 {
            (2, 0, Disposition::Busy)
        } else if r < 0.45 {
            (self.rng.range(25, 40), 0, Disposition::NoAnswer)
        } else {
            (
                self.rng.range(5, 25),
                self.rng.range(20, 300),
                Disposition::Answered,
            )
        };
        let end = t + ring + talk;
        let Some(a) = self.pick_agent(None, t, end, None) else {
            if attempt < 6 && t + 300 < self.cutoff - 900 {
                self.push(t + 300, Plan::Callback(attempt), person);
            }
            return;
        };
        let p = self.people[person].clone();
        let e164 = p.e164.expect("callbacks go to numbers");
        let dst = match e164.strip_prefix("+7") {
            Some(d) if self.rng.chance(0.6) => format!("8{d}"),
            Some(d) => format!("7{d}"),
            None => e164.clone(),
        };
        let answer = (disp == Disposition::Answered).then_some(t + ring);
        if answer.is_some() {
            self.person_free[person] = self.person_free[person].max(end + 1);
        }
        self.outbound(t, a, dst, e164, answer, end, disp);
        if answer.is_none() && attempt < 3 && self.rng.chance(0.5) {
            let next = end + self.rng.range(10, 60) * 60;
            if next < self.cutoff - 900 {
                self.push(next, Plan::Callback(attempt + 1), person);
            }
        }
    }

    fn cold_call(&mut self, t: Ts) {
        let d = cast::ru_mobile(&mut self.rng);
        let (ring, talk) = (self.rng.range(5, 20), self.rng.range(30, 200));
        if let Some(a) = self.pick_agent(None, t, t + ring + talk, None) {
            self.outbound(
                t,
                a,
                format!("8{d}"),
                format!("+7{d}"),
                Some(t + ring),
                t + ring + talk,
                Disposition::Answered,
            );
        }
    }

    fn internal_call(&mut self, t: Ts) {
        let (ring, talk) = (self.rng.range(3, 8), self.rng.range(30, 120));
        let end = t + ring + talk;
        let Some(a) = self.pick_agent(None, t, end, None) else {
            return;
        };
        let Some(b) = self.pick_agent(None, t, end, Some(a)) else {
            return;
        };
        let (da, db) = (self.agents[a].clone(), self.agents[b].clone());
        let id = self.uniqueid(t);
        let cdr = CdrRow {
            src: da.id.into(),
            dst: db.id.into(),
            dcontext: "from-internal",
            clid: format!("\"{}\" <{}>", da.name, da.id),
            channel: self.chan(da.cdr_chan),
            dstchannel: self.chan(db.cdr_chan),
            lastapp: "Dial",
            lastdata: format!("{},30", db.cdr_chan),
            start: t,
            answer: Some(t + ring),
            end,
            disposition: Disposition::Answered,
        };
        self.calls.push(Call {
            id,
            direction: Direction::Internal,
            caller_raw: da.id.into(),
            caller: Some(da.id.into()),
            callee: Some(db.id.into()),
            did_raw: None,
            cdr_agent: Some(a),
            stints: Vec::new(),
            cdr: Some(cdr),
        });
    }

    /// Keeps only what was written by 20:00: later events are not in the
    /// files, CDR rows of calls still up are not written yet.
    fn truncate(&mut self) {
        let cut = self.cutoff;
        self.events.retain(|e| e.at <= cut);
        self.calls
            .retain(|c| !c.stints.is_empty() || c.cdr.as_ref().is_some_and(|r| r.end <= cut));
        for c in &mut self.calls {
            if c.cdr.as_ref().is_some_and(|r| r.end > cut) {
                c.cdr = None;
            }
            c.stints.retain(|s| s.entered <= cut);
            for s in &mut c.stints {
                s.rna.retain(|r| r.at <= cut);
                if s.connect.as_ref().is_some_and(|x| x.at > cut) {
                    s.connect = None;
                }
                if s.end.as_ref().is_some_and(|x| x.at > cut) {
                    s.end = None;
                }
            }
        }
    }
}
