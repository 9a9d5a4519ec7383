//! The simulator's ground truth: what happened during the day, as the
//! simulator decided it (not as calltrail reads it back). The files are
//! rendered from it and the expected tables are computed from it.

/// UTC epoch seconds.
pub type Ts = i64;

/// How a queue stint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    CompleteCaller,
    CompleteAgent,
    /// Blind transfer to another queue's extension (a second stint follows).
    Transfer,
    Abandon,
    Timeout,
    ExitEmpty,
    ExitKey(char),
}

impl EndKind {
    /// Was the stint answered (CONNECT) before it ended this way?
    pub fn answered(self) -> bool {
        matches!(
            self,
            EndKind::CompleteCaller | EndKind::CompleteAgent | EndKind::Transfer
        )
    }
}

/// CONNECT: a member answered.
#[derive(Debug, Clone)]
pub struct Connect {
    pub at: Ts,
    /// Index into [`Day::agents`].
    pub agent: usize,
    /// Seconds the caller waited (CONNECT's holdtime).
    pub hold: i64,
    pub ring_s: i64,
    pub member_uid: String,
}

/// The final event of a stint.
#[derive(Debug, Clone)]
pub struct End {
    pub at: Ts,
    pub kind: EndKind,
    /// holdtime (answered) or waittime (not answered).
    pub wait: i64,
    /// calltime (answered), else 0.
    pub talk: i64,
    /// Target extension of a transfer.
    pub transfer_to: Option<&'static str>,
}

/// RINGNOANSWER of a member while the caller waited.
#[derive(Debug, Clone)]
pub struct RingNoAnswer {
    pub at: Ts,
    pub agent: usize,
    pub ring_ms: i64,
}

/// One queue stint of a call.
#[derive(Debug, Clone)]
pub struct Stint {
    pub queue: &'static str,
    pub entered: Ts,
    pub position: u32,
    pub connect: Option<Connect>,
    /// `None` while the stint has not ended (at the end of the day).
    pub end: Option<End>,
    pub rna: Vec<RingNoAnswer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Answered,
    NoAnswer,
    Busy,
}

impl Disposition {
    pub fn cdr(self) -> &'static str {
        match self {
            Disposition::Answered => "ANSWERED",
            Disposition::NoAnswer => "NO ANSWER",
            Disposition::Busy => "BUSY",
        }
    }
}

/// The call's Master.csv row (cdr_csv, 18 columns), written at hangup.
#[derive(Debug, Clone)]
pub struct CdrRow {
    pub src: String,
    pub dst: String,
    pub dcontext: &'static str,
    pub clid: String,
    pub channel: String,
    pub dstchannel: String,
    pub lastapp: &'static str,
    pub lastdata: String,
    pub start: Ts,
    pub answer: Option<Ts>,
    pub end: Ts,
    pub disposition: Disposition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }
}

/// One call (one Asterisk uniqueid).
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub direction: Direction,
    /// The calling number as written (ENTERQUEUE's cid / CDR src).
    pub caller_raw: String,
    /// The calling number as the model expects it: E.164, an extension, or
    /// `None` (anonymous). Computed by the simulator, not by calltrail.
    pub caller: Option<String>,
    /// The called number as expected (normalized DID, extension, E.164).
    pub callee: Option<String>,
    /// DID the call came in on, as written in queue_log (`DID` line).
    pub did_raw: Option<String>,
    /// The CDR's agent for calls outside queues (index into agents).
    pub cdr_agent: Option<usize>,
    /// Queue stints in order; empty for a call outside queues.
    pub stints: Vec<Stint>,
    /// `None` when not (yet) written: the call was still up at the end.
    pub cdr: Option<CdrRow>,
}

impl Call {
    /// The outside party per-caller state is keyed on.
    pub fn party(&self) -> Option<&str> {
        match self.direction {
            Direction::Outbound => self.callee.as_deref(),
            _ => self.caller.as_deref(),
        }
    }
}

/// Agent membership and pause changes (queue_log member events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAct {
    Add { paused: bool },
    Remove,
    Pause(String),
    Unpause,
    PauseAll(String),
    UnpauseAll,
    Login,
    Logoff { login_s: i64 },
}

#[derive(Debug, Clone)]
pub struct AgentEvent {
    pub at: Ts,
    pub agent: usize,
    /// `None` for queue-less events (PAUSEALL, AGENTLOGIN, …).
    pub queue: Option<&'static str>,
    pub act: AgentAct,
}

/// Everything the simulated day produced.
#[derive(Debug, Clone)]
pub struct Day {
    /// 08:00 local.
    pub start: Ts,
    /// 20:00 local: nothing after it is written.
    pub cutoff: Ts,
    pub agents: Vec<super::cast::AgentDef>,
    pub calls: Vec<Call>,
    pub agent_events: Vec<AgentEvent>,
}
