//! Generates the simulated call-center day (08:00–20:00 Europe/Moscow)
//! from a seed: agent shifts and pauses, inbound queue calls with every
//! outcome, transfers to another queue, direct-dial calls, agents calling
//! missed callers back, missed callers calling again, a few cold and
//! internal calls, and the calls still up at 20:00 (written as open).
//!
//! Agents never take two calls at once, are never asked to answer while
//! paused or outside their queues, and a caller never has two calls at
//! once, so the day is one a real PBX could have logged.

mod cdr_only;
mod queue;

use super::cast::{self, AgentDef, Person, QUEUES};
use super::rng::Rng;
use super::truth::{AgentAct, AgentEvent, Call, Day, Ts};
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
