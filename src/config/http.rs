//! The `[http]` section (the daemon's local HTTP API) and the `[query]`
//! section (limits of one `calltrail query` statement), with their checks.

use super::Problem;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[http]`: the local HTTP API `calltrail run` serves (`calltrail query`
/// uses it while the daemon holds the store).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Serve the API (`calltrail query` then cannot read the store while
    /// the daemon runs when this is false).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `IP:port` to listen on. Loopback by default; any other address needs
    /// `token_file` (or `CALLTRAIL_TOKEN`) or `allow`, or `run` refuses to
    /// start.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the token clients other than loopback ones must send
    /// (`Authorization: Bearer <token>` or `?token=`); the environment
    /// variable `CALLTRAIL_TOKEN` overrides it.
    pub token_file: Option<PathBuf>,
    /// Client addresses (`192.0.2.10`, `10.1.0.0/16`) allowed besides
    /// loopback ones; with a token too, both must match.
    #[serde(default)]
    pub allow: Vec<String>,
    /// A file holding the admin token (the directory's API); the
    /// environment variable `CALLTRAIL_ADMIN_TOKEN` overrides it. Without
    /// either, `run` writes a random one to `<store path>.admin-token`
    /// (mode 0600), which `calltrail numbers` reads.
    pub admin_token_file: Option<PathBuf>,
    /// People who log in to the wallboard and the reports. With any user
    /// or token configured, those pages need a login or a token, from
    /// loopback too.
    #[serde(default)]
    pub users: Vec<super::logins::HttpUser>,
    /// Tokens of TVs and scripts (viewer) and of admin scripts.
    #[serde(default)]
    pub tokens: Vec<super::logins::HttpToken>,
    /// A file holding the key that signs session cookies (at least 64
    /// bytes); the environment variable `CALLTRAIL_SESSION_KEY` overrides
    /// it. Without either, `run` writes a random one to
    /// `<store path>.session-key` (mode 0600), so sessions survive restarts.
    pub session_key_file: Option<PathBuf>,
    /// How long a login lasts without being used, in hours (each request
    /// in its second half renews it).
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            listen: default_listen(),
            token_file: None,
            allow: Vec::new(),
            admin_token_file: None,
            users: Vec::new(),
            tokens: Vec::new(),
            session_key_file: None,
            session_hours: default_session_hours(),
        }
    }
}

/// The default `[http] listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8479";

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}
fn default_session_hours() -> u64 {
    12
}
fn yes() -> bool {
    true
}

impl HttpSection {
    /// The parsed `listen` address (validated at load time).
    pub fn addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.trim().parse()
    }

    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        match self.addr() {
            Err(e) => out.push(Problem {
                location: "http.listen".into(),
                expected:
                    "an IP address and port such as 127.0.0.1:8479 or [::1]:8479 (no host names)"
                        .into(),
                found: format!("{:?} ({e})", self.listen),
            }),
            Ok(a) if a.port() == 0 => out.push(Problem {
                location: "http.listen".into(),
                expected: "a fixed port (`calltrail query` must know where to connect)".into(),
                found: format!("{:?}", self.listen),
            }),
            Ok(_) => {}
        }
        out.extend(allow_problems("http.allow", &self.allow));
        out.extend(super::logins::problems(&self.users, &self.tokens));
        if !(1..=24 * 90).contains(&self.session_hours) {
            out.push(Problem {
                location: "http.session_hours".into(),
                expected: "1 to 2160 hours".into(),
                found: self.session_hours.to_string(),
            });
        }
        out
    }

    /// Whether logins (users or tokens) are configured: the wallboard and
    /// reports then need one, and the listener may face the network.
    pub fn has_logins(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }
}

/// Problems of an allow list: every entry an IP address or a CIDR network.
pub(super) fn allow_problems(location: &str, allow: &[String]) -> Vec<Problem> {
    allow
        .iter()
        .enumerate()
        .filter(|(_, a)| crate::serve::auth::parse_net(a).is_none())
        .map(|(i, a)| Problem {
            location: format!("{location}[{i}]"),
            expected: "an IP address (192.0.2.10) or a network (10.1.0.0/16)".into(),
            found: format!("{a:?}"),
        })
        .collect()
}

/// `[query]`: limits of one statement run by `calltrail query`, applied the
/// same way when `query` reads the file itself and when the daemon answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySection {
    /// A result with more rows than this is an error (never truncated).
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// A statement running longer than this is interrupted.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
}

impl Default for QuerySection {
    fn default() -> Self {
        QuerySection {
            max_rows: default_max_rows(),
            timeout_s: default_timeout_s(),
        }
    }
}

fn default_max_rows() -> usize {
    100_000
}
fn default_timeout_s() -> u64 {
    60
}

impl QuerySection {
    /// The limits as [`crate::readonly::Limits`].
    pub fn limits(&self) -> crate::readonly::Limits {
        crate::readonly::Limits {
            max_rows: self.max_rows,
            timeout: std::time::Duration::from_secs(self.timeout_s),
        }
    }

    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !(1..=10_000_000).contains(&self.max_rows) {
            out.push(Problem {
                location: "query.max_rows".into(),
                expected: "1 to 10000000 rows".into(),
                found: self.max_rows.to_string(),
            });
        }
        if !(1..=3600).contains(&self.timeout_s) {
            out.push(Problem {
                location: "query.timeout_s".into(),
                expected: "1 to 3600 seconds".into(),
                found: self.timeout_s.to_string(),
            });
        }
        out
    }
}
