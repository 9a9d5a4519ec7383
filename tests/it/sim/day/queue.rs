//! Inbound queue calls of the simulated day: stints answered, transferred
//! or given up in every way Asterisk logs, and what a missed caller and
//! the agents do next.

use super::{Class, Gen, Plan};
use crate::sim::cast::{self, QUEUES};
use crate::sim::truth::{
    Call, CdrRow, Connect, Direction, Disposition, End, EndKind, RingNoAnswer, Stint, Ts,
};

impl Gen {
    pub(super) fn hold(&mut self) -> i64 {
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

    pub(super) fn talk(&mut self) -> i64 {
        if self.rng.chance(0.1) {
            self.rng.range(421, 900)
        } else {
            self.rng.range(20, 420)
        }
    }

    /// A stint that a member answers `hold` seconds after `entered`, or
    /// `None` when nobody can.
    pub(super) fn answered_stint(
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

    pub(super) fn unanswered_stint(
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

    pub(super) fn ring_no_answer(&mut self, stint: &mut Stint, but: Option<usize>) {
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

    pub(super) fn timeout_of(queue: &str) -> i64 {
        match queue {
            "sales" => 180,
            "support" => 240,
            _ => 300,
        }
    }

    /// An inbound call into a queue. `fixed` = (queue, hold or wait, talk).
    pub(super) fn queue_call(
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
        let missed = crate::sim::expect_calls::is_missed(&call);
        self.calls.push(call);
        if missed {
            self.follow_up(person, end);
        }
    }

    /// What a missed caller and the agents do next.
    pub(super) fn follow_up(&mut self, person: usize, end: Ts) {
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
}
