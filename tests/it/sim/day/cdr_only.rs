//! Calls of the simulated day that only the CDR shows: direct dials to an
//! agent's extension, agents calling missed callers back, cold calls and
//! internal calls.

use super::{Gen, Plan};
use crate::sim::cast;
use crate::sim::truth::{Call, CdrRow, Direction, Disposition, Ts};

impl Gen {
    /// A direct inbound call to an agent's extension (no queue).
    pub(super) fn direct_call(&mut self, t: Ts, person: usize) {
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
        let missed = crate::sim::expect_calls::is_missed(&call);
        self.calls.push(call);
        if missed {
            self.follow_up(person, end);
        }
    }

    /// An outbound call from agent `a` to `dst` (CDR only).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn outbound(
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

    pub(super) fn callback(&mut self, t: Ts, person: usize, attempt: u32) {
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

    pub(super) fn cold_call(&mut self, t: Ts) {
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

    pub(super) fn internal_call(&mut self, t: Ts) {
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
}
