//! The `[lookup]` section (the dialplan lookup's sticky-agent policy and
//! window) and the `[agi]` section (the FastAGI server), with their checks.
//! The decision itself is `crate::lookup`; docs/dialplan.md is the manual.

use super::Problem;
use crate::lookup::{Policy, Window};
use serde::Deserialize;
use std::net::SocketAddr;

/// `[lookup]`: how the dialplan lookup picks the sticky agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupSection {
    /// `last_agent`, `last_contact` or `first_agent`.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// `Nd`, `Nh`, `this_week` or `all`, measured back from now.
    #[serde(default = "default_window")]
    pub window: String,
    /// IANA zone `this_week` starts in (Monday 00:00); default: the zone
    /// every configured source agrees on, else UTC.
    pub timezone: Option<String>,
}

impl Default for LookupSection {
    fn default() -> Self {
        LookupSection {
            policy: default_policy(),
            window: default_window(),
            timezone: None,
        }
    }
}

fn default_policy() -> String {
    "last_agent".into()
}
fn default_window() -> String {
    "90d".into()
}

impl LookupSection {
    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if Policy::parse(&self.policy).is_none() {
            out.push(Problem {
                location: "lookup.policy".into(),
                expected: "\"last_agent\", \"last_contact\" or \"first_agent\"".into(),
                found: format!("{:?}", self.policy),
            });
        }
        if let Err(e) = Window::parse(&self.window) {
            out.push(Problem {
                location: "lookup.window".into(),
                expected:
                    "a window such as \"1d\", \"7d\", \"90d\", \"12h\", \"this_week\" or \"all\""
                        .into(),
                found: format!("{:?} ({e})", self.window),
            });
        }
        if let Some(tz) = &self.timezone {
            if tz.parse::<chrono_tz::Tz>().is_err() {
                out.push(Problem {
                    location: "lookup.timezone".into(),
                    expected: "an IANA time zone such as \"Europe/Moscow\"".into(),
                    found: format!("{tz:?}"),
                });
            }
        }
        out
    }
}

/// `[agi]`: the FastAGI server `calltrail run` serves (script `lookup`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgiSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `IP:port`; Asterisk's FastAGI default port is 4573.
    #[serde(default = "default_agi_listen")]
    pub listen: String,
    /// Client addresses (`192.0.2.10`, `10.1.0.0/16`) allowed to connect;
    /// required when `listen` is not a loopback address.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl Default for AgiSection {
    fn default() -> Self {
        AgiSection {
            enabled: true,
            listen: default_agi_listen(),
            allow: Vec::new(),
        }
    }
}

/// The default `[agi] listen`.
pub const DEFAULT_AGI_LISTEN: &str = "127.0.0.1:4573";

fn default_agi_listen() -> String {
    DEFAULT_AGI_LISTEN.into()
}
fn yes() -> bool {
    true
}

impl AgiSection {
    /// The parsed `listen` address (validated at load time).
    pub fn addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.trim().parse()
    }

    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Err(e) = self.addr() {
            out.push(Problem {
                location: "agi.listen".into(),
                expected: "an IP address and port such as 127.0.0.1:4573 (no host names)".into(),
                found: format!("{:?} ({e})", self.listen),
            });
        }
        out.extend(super::http::allow_problems("agi.allow", &self.allow));
        out
    }
}
