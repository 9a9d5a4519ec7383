//! The `[callbacks]` section: how a `callback` rule calls a missed caller
//! back through Asterisk: its spool (call files) or AMI `Originate`
//! (`[callbacks.ami]`), with its checks. docs/rules.md is the manual.

use super::Problem;
use serde::Deserialize;
use std::path::PathBuf;

/// `[callbacks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbacksSection {
    /// `call_file` (the spool) or `ami` (Originate, `[callbacks.ami]`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Asterisk's spool directory: calltrail writes `<spool>/tmp/` and
    /// renames into `<spool>/outgoing/`, and reads `<spool>/outgoing_done/`.
    /// Default `spool` beside the config (the embedded default: files to
    /// look at, no PBX needed).
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
    /// `agent_first` (ring the agent, or the queue, then dial the caller) or
    /// `caller_first` (dial the caller, then the queue).
    #[serde(default = "default_connect")]
    pub connect: String,
    /// The first leg when the caller's sticky agent is known (agent_first):
    /// `{agent}` is replaced by the agent id.
    #[serde(default = "default_agent_channel")]
    pub agent_channel: String,
    /// The first leg without a sticky agent (agent_first): `{queue}`.
    #[serde(default = "default_queue_channel")]
    pub queue_channel: String,
    /// The queue of a callback whose call named none (a direct call to the
    /// PBX's number) and whose caller has no sticky agent (agent_first):
    /// without it such a callback fails with the reason.
    #[serde(default)]
    pub default_queue: Option<String>,
    /// The owner call files are given (`asterisk`, `asterisk:asterisk`,
    /// `uid:gid`): Asterisk must own a call file to set its mtime between
    /// retries. Needs root or `CAP_CHOWN` unless it is calltrail's own user.
    #[serde(default)]
    pub owner: Option<String>,
    /// `owner` resolved (by `calltrail run`, [`CallbacksSection::resolve_owner`]).
    #[serde(skip)]
    pub owner_ids: Option<(u32, u32)>,
    /// At most this many callbacks placed per minute (0: no limit), so a
    /// night's misses due at the opening do not all ring at 09:00:00;
    /// callers who asked to be called back (`EXITWITHKEY`) go first, then
    /// the oldest.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// The first leg of caller_first: `{number}`.
    #[serde(default = "default_caller_channel")]
    pub caller_channel: String,
    /// The context the answered first leg enters (`s`, priority 1), with
    /// `CT_NUMBER`, `CT_QUEUE`, `CT_AGENT`, `CT_CALLBACK` set.
    #[serde(default = "default_context")]
    pub context: String,
    #[serde(default = "default_callerid_name")]
    pub callerid_name: String,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    #[serde(default = "default_retry_time_s")]
    pub retry_time_s: u32,
    #[serde(default = "default_wait_time_s")]
    pub wait_time_s: u32,
    /// `method = "ami"`: the Asterisk Manager Interface to Originate on.
    pub ami: Option<AmiSection>,
}

/// `[callbacks.ami]`: where and as whom calltrail logs in to AMI (an
/// account with `read = call`, `write = originate`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiSection {
    #[serde(default = "default_ami_host")]
    pub host: String,
    #[serde(default = "default_ami_port")]
    pub port: u16,
    pub username: String,
    /// `[callbacks.ami.secret]` env = "…" or file = "…".
    pub secret: super::SecretRef,
}

fn default_ami_host() -> String {
    "127.0.0.1".into()
}
fn default_ami_port() -> u16 {
    5038
}

impl CallbacksSection {
    /// The AMI client of `method = "ami"` (its secret read), else `None`.
    pub fn ami_client(&self) -> anyhow::Result<Option<calltrail_sinks::ami::AmiClient>> {
        if self.method != "ami" {
            return Ok(None);
        }
        let a = self
            .ami
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("[callbacks] method = \"ami\" needs [callbacks.ami]"))?;
        let mut cfg = calltrail_sinks::ami::AmiConfig::new(
            &a.host,
            &a.username,
            a.secret.read("callbacks.ami.secret")?,
        );
        cfg.port = a.port;
        Ok(Some(calltrail_sinks::ami::AmiClient::new(cfg)))
    }

    /// Resolves `owner` into `owner_ids`; an error when the user or group
    /// is unknown here or this process may not give files to them.
    pub fn resolve_owner(&mut self) -> anyhow::Result<()> {
        let Some(spec) = &self.owner else {
            return Ok(());
        };
        let (uid, gid) = super::owner::resolve(spec)?;
        if !super::owner::may_chown(uid, gid) {
            anyhow::bail!(
                "calltrail may not give call files to {spec:?} ({uid}:{gid}): run it as root, \
                 with CAP_CHOWN (systemd: AmbientCapabilities=CAP_CHOWN), or as that user"
            );
        }
        self.owner_ids = Some((uid, gid));
        Ok(())
    }

    pub(super) fn resolve_paths(&mut self, base: &std::path::Path) {
        if self.spool.is_relative() {
            self.spool = base.join(&self.spool);
        }
        if let Some(a) = &mut self.ami {
            a.secret.resolve(base);
        }
    }
}

impl Default for CallbacksSection {
    fn default() -> Self {
        CallbacksSection {
            method: default_method(),
            spool: default_spool(),
            connect: default_connect(),
            agent_channel: default_agent_channel(),
            queue_channel: default_queue_channel(),
            caller_channel: default_caller_channel(),
            default_queue: None,
            owner: None,
            owner_ids: None,
            per_minute: default_per_minute(),
            context: default_context(),
            callerid_name: default_callerid_name(),
            max_retries: default_max_retries(),
            retry_time_s: default_retry_time_s(),
            wait_time_s: default_wait_time_s(),
            ami: None,
        }
    }
}

fn default_method() -> String {
    "call_file".into()
}
fn default_spool() -> PathBuf {
    PathBuf::from("spool")
}
fn default_connect() -> String {
    "agent_first".into()
}
fn default_agent_channel() -> String {
    "PJSIP/{agent}".into()
}
fn default_queue_channel() -> String {
    "Local/{queue}@calltrail-queues/n".into()
}
fn default_caller_channel() -> String {
    "Local/{number}@from-internal/n".into()
}
fn default_context() -> String {
    "calltrail-callback".into()
}
fn default_callerid_name() -> String {
    "Callback".into()
}
fn default_max_retries() -> u32 {
    2
}
fn default_retry_time_s() -> u32 {
    300
}
fn default_wait_time_s() -> u32 {
    30
}
fn default_per_minute() -> u32 {
    6
}

impl CallbacksSection {
    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, expected: &str, found: String| {
            out.push(Problem {
                location: format!("callbacks.{key}"),
                expected: expected.into(),
                found,
            })
        };
        if !["call_file", "ami"].contains(&self.method.as_str()) {
            bad(
                "method",
                "\"call_file\" (Asterisk's spool) or \"ami\" (Originate)",
                format!("{:?}", self.method),
            );
        }
        match (&self.ami, self.method.as_str()) {
            (None, "ami") => bad(
                "ami",
                "a [callbacks.ami] section (host, port, username, secret)",
                "none".into(),
            ),
            (Some(a), _) => {
                if a.username.is_empty()
                    || a.username.contains(|c: char| c.is_control() || c == ':')
                {
                    bad(
                        "ami.username",
                        "the AMI account's name (manager.conf)",
                        format!("{:?}", a.username),
                    );
                }
                if !a.secret.is_set() {
                    bad(
                        "ami.secret",
                        "env = \"VAR\" or file = \"path\"",
                        "neither".into(),
                    );
                }
                if a.host.is_empty() || a.host.contains(|c: char| c.is_whitespace() || c == '/') {
                    bad(
                        "ami.host",
                        "a host name or address",
                        format!("{:?}", a.host),
                    );
                }
            }
            _ => {}
        }
        if !["agent_first", "caller_first"].contains(&self.connect.as_str()) {
            bad(
                "connect",
                "\"agent_first\" or \"caller_first\"",
                format!("{:?}", self.connect),
            );
        }
        for (key, v, hole) in [
            ("agent_channel", &self.agent_channel, "{agent}"),
            ("queue_channel", &self.queue_channel, "{queue}"),
            ("caller_channel", &self.caller_channel, "{number}"),
        ] {
            if !v.contains(hole) || !v.contains('/') {
                bad(
                    key,
                    "a channel Tech/resource with its placeholder, such as PJSIP/{agent}",
                    format!("{v:?}"),
                );
            }
        }
        if self.context.is_empty()
            || !self
                .context
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b))
        {
            bad(
                "context",
                "a dialplan context name",
                format!("{:?}", self.context),
            );
        }
        if let Some(q) = &self.default_queue {
            if q.is_empty()
                || q.len() > 40
                || !q
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            {
                bad(
                    "default_queue",
                    "a queue name (letters, digits, _ . -)",
                    format!("{q:?}"),
                );
            }
        }
        if let Some(o) = &self.owner {
            if let Err(e) = super::owner::resolve(o) {
                bad(
                    "owner",
                    "user, user:group, uid or uid:gid known here",
                    format!("{o:?}: {e}"),
                );
            }
        }
        if self.per_minute > 600 {
            bad(
                "per_minute",
                "at most 600 callbacks a minute (0: no limit)",
                self.per_minute.to_string(),
            );
        }
        for (key, v, max) in [
            ("max_retries", self.max_retries, 100),
            ("retry_time_s", self.retry_time_s, 86_400),
            ("wait_time_s", self.wait_time_s, 3_600),
        ] {
            if v > max || (key != "max_retries" && v == 0) {
                bad(
                    key,
                    "a number in Asterisk's range (see docs/rules.md)",
                    v.to_string(),
                );
            }
        }
        out
    }
}
