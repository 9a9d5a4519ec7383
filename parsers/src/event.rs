//! The normalized call event: one envelope for every PBX source.
//!
//! This is the public contract of the Kafka stream and of the DuckDB `events`
//! table (documented in `docs/events.md`). Fields that do not apply to an
//! event are `None` and are left out of the JSON form.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Shared immutable string, used for values repeated on many events
/// (source, PBX, queue, agent) so that cloning them costs no allocation.
pub type Str = Arc<str>;

/// Which kind of log an event was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    AsteriskQueueLog,
    AsteriskCdrCsv,
    AsteriskCdrCustom,
    WintariffDbf,
    OktellCsv,
    /// State changes calltrail derives (missed-call episodes, breaches, …);
    /// not a configurable source, so not in [`SourceKind::ALL`].
    Derived,
}

impl SourceKind {
    /// All kinds, in the order they are documented.
    pub const ALL: [SourceKind; 5] = [
        SourceKind::AsteriskQueueLog,
        SourceKind::AsteriskCdrCsv,
        SourceKind::AsteriskCdrCustom,
        SourceKind::WintariffDbf,
        SourceKind::OktellCsv,
    ];

    /// The name used in config files, JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::AsteriskQueueLog => "asterisk_queue_log",
            SourceKind::AsteriskCdrCsv => "asterisk_cdr_csv",
            SourceKind::AsteriskCdrCustom => "asterisk_cdr_custom",
            SourceKind::WintariffDbf => "wintariff_dbf",
            SourceKind::OktellCsv => "oktell_csv",
            SourceKind::Derived => "derived",
        }
    }

    /// Parses the config/JSON name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Direction of a call as seen from the PBX.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
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

/// Final disposition of a call record (CDR-style sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    NoAnswer,
    Busy,
    Failed,
    Congestion,
    Cancel,
    Unknown,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Failed => "failed",
            Disposition::Congestion => "congestion",
            Disposition::Cancel => "cancel",
            Disposition::Unknown => "unknown",
        }
    }

    /// Asterisk's `ast_cdr_disp2str` spelling (`ANSWERED`, `NO ANSWER`, …).
    pub fn from_asterisk(s: &str) -> Disposition {
        match s.trim().to_ascii_uppercase().as_str() {
            "ANSWERED" => Disposition::Answered,
            "NO ANSWER" | "NOANSWER" | "NO_ANSWER" => Disposition::NoAnswer,
            "BUSY" => Disposition::Busy,
            "FAILED" => Disposition::Failed,
            "CONGESTION" => Disposition::Congestion,
            "CANCEL" => Disposition::Cancel,
            _ => Disposition::Unknown,
        }
    }
}

/// What happened. Queue events follow Asterisk's queue_log verbs; record
/// sources (CDR, DBF, Oktell) produce `call_record`. Verbs calltrail does not
/// know are kept as `other`, with the raw verb in [`Event::verb`] and the raw
/// fields in [`Event::data`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    QueueStart,
    ConfigReload,
    /// `DID`, written by FreePBX/Issabel dialplans before ENTERQUEUE.
    Did,
    EnterQueue,
    RingNoAnswer,
    RingCanceled,
    /// `CONNECT`: an agent answered.
    Answered,
    CompletedByCaller,
    CompletedByAgent,
    /// `TRANSFER`, `BLINDTRANSFER`, `ATTENDEDTRANSFER`.
    Transferred,
    Abandoned,
    /// `EXITWITHTIMEOUT`.
    Timeout,
    ExitEmpty,
    ExitWithKey,
    /// `WITHDRAW` (AMI QueueWithdrawCaller).
    Withdrawn,
    AgentDump,
    SysCompat,
    /// `AGENTLOGIN`, `AGENTCALLBACKLOGIN`.
    AgentLogin,
    /// `AGENTLOGOFF`, `AGENTCALLBACKLOGOFF`.
    AgentLogoff,
    /// `ADDMEMBER`.
    MemberAdded,
    /// `REMOVEMEMBER`.
    MemberRemoved,
    Paused,
    Unpaused,
    PausedAll,
    UnpausedAll,
    Penalty,
    RingInUse,
    /// `OUTCALL` (QueueUpdate app, 15+).
    OutCall,
    /// One call record: a CDR row, a WinTariff row, an Oktell leg.
    CallRecord,
    /// Anything else: kept with its raw verb and fields, never dropped.
    Other,
    /// Derived: a missed-call episode opened for `caller`.
    MissedOpened,
    /// Derived: an episode closed (`info` = called_back, returned, expired).
    MissedClosed,
    /// Derived: a queue entered an SLA breach (`info` = kind and value).
    SlaBreachStarted,
    /// Derived: a breach ended.
    SlaBreachEnded,
    /// Derived: a caller's first inbound call.
    FirstCall,
    /// Derived: the agent of a caller's latest answered conversation changed.
    LastAgentChanged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::QueueStart => "queue_start",
            EventKind::ConfigReload => "config_reload",
            EventKind::Did => "did",
            EventKind::EnterQueue => "enter_queue",
            EventKind::RingNoAnswer => "ring_no_answer",
            EventKind::RingCanceled => "ring_canceled",
            EventKind::Answered => "answered",
            EventKind::CompletedByCaller => "completed_by_caller",
            EventKind::CompletedByAgent => "completed_by_agent",
            EventKind::Transferred => "transferred",
            EventKind::Abandoned => "abandoned",
            EventKind::Timeout => "timeout",
            EventKind::ExitEmpty => "exit_empty",
            EventKind::ExitWithKey => "exit_with_key",
            EventKind::Withdrawn => "withdrawn",
            EventKind::AgentDump => "agent_dump",
            EventKind::SysCompat => "sys_compat",
            EventKind::AgentLogin => "agent_login",
            EventKind::AgentLogoff => "agent_logoff",
            EventKind::MemberAdded => "member_added",
            EventKind::MemberRemoved => "member_removed",
            EventKind::Paused => "paused",
            EventKind::Unpaused => "unpaused",
            EventKind::PausedAll => "paused_all",
            EventKind::UnpausedAll => "unpaused_all",
            EventKind::Penalty => "penalty",
            EventKind::RingInUse => "ring_in_use",
            EventKind::OutCall => "out_call",
            EventKind::CallRecord => "call_record",
            EventKind::Other => "other",
            EventKind::MissedOpened => "missed_opened",
            EventKind::MissedClosed => "missed_closed",
            EventKind::SlaBreachStarted => "sla_breach_started",
            EventKind::SlaBreachEnded => "sla_breach_ended",
            EventKind::FirstCall => "first_call",
            EventKind::LastAgentChanged => "last_agent_changed",
        }
    }

    /// True for the caller leaving a queue without being answered.
    pub fn is_missed(self) -> bool {
        matches!(
            self,
            EventKind::Abandoned
                | EventKind::Timeout
                | EventKind::ExitEmpty
                | EventKind::ExitWithKey
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One normalized call event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Deterministic id: the same input position always yields the same id,
    /// so stores and consumers can de-duplicate. Set by the ingest layer.
    pub event_id: String,
    pub source_kind: SourceKind,
    /// Configured source name.
    pub source: Str,
    pub pbx: Str,
    /// When it happened, UTC.
    pub ts: DateTime<Utc>,
    pub kind: EventKind,
    /// The PBX's own name for the event (`ENTERQUEUE`, `CDR`, …), upper-case as written.
    pub verb: Str,
    /// The call this belongs to (Asterisk uniqueid, Oktell leg id, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Id shared by all legs of one call (Asterisk linkedid, Oktell IdChain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_id: Option<String>,
    /// The other channel's id (the member's uniqueid on CONNECT, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_call_id: Option<String>,
    /// The PBX channel a call record is about, as written (CDR `channel`:
    /// `PJSIP/trunk-00000001`, `Local/201@from-queue-0000004a;2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The channel it dialled or was bridged to, as written (CDR
    /// `dstchannel`); with [`Event::channel`] it ties the legs of one call
    /// (a Local channel's `;2` half is the leg of whoever dialled its `;1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Str>,
    /// Resolved agent id (see `AgentResolver`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Str>,
    /// The agent exactly as the PBX wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_raw: Option<Str>,
    /// Calling party, E.164 when it could be normalized (see `NumberNormalizer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee_raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Seconds the caller waited in queue (holdtime / waittime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_s: Option<u32>,
    /// Seconds of conversation (calltime / billsec / IDURATION).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_s: Option<u32>,
    /// Ring time in milliseconds (RINGNOANSWER, RINGCANCELED; CONNECT's ringtime × 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_ms: Option<u64>,
    /// Total duration of a call record in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    /// Position in queue when the caller left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Position in queue when the caller entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_position: Option<u32>,
    /// Answer time of a call record, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    /// End time of a call record, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Kind-specific text: pause reason, exit key, transfer target, DID, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// The raw data fields as written, after the fixed ones (queue_log's data1…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<String>,
}

/// The JSON Schema of the event as published to Kafka (`docs/events.schema.json`).
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(Event)
}

impl Event {
    /// An event with only the envelope filled in.
    pub fn new(
        source_kind: SourceKind,
        source: Str,
        pbx: Str,
        ts: DateTime<Utc>,
        kind: EventKind,
        verb: Str,
    ) -> Self {
        Event {
            event_id: String::new(),
            source_kind,
            source,
            pbx,
            ts,
            kind,
            verb,
            call_id: None,
            linked_id: None,
            peer_call_id: None,
            channel: None,
            dst_channel: None,
            queue: None,
            agent: None,
            agent_raw: None,
            caller: None,
            caller_raw: None,
            caller_name: None,
            callee: None,
            callee_raw: None,
            direction: None,
            disposition: None,
            wait_s: None,
            talk_s: None,
            ring_ms: None,
            duration_s: None,
            position: None,
            orig_position: None,
            answered_at: None,
            ended_at: None,
            info: None,
            data: Vec::new(),
        }
    }

    /// The Kafka message key: the call id, or for call-less events (agent
    /// logins, QUEUESTART) the agent or the PBX, so related events share a partition.
    pub fn partition_key(&self) -> &str {
        self.call_id
            .as_deref()
            .or(self.agent.as_deref())
            .unwrap_or(&self.pbx)
    }
}
