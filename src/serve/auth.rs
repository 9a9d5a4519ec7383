//! Who may ask: loopback clients always may (lookups, queries); others
//! only when `[http]` names them (`allow`) and/or they bring the token
//! (`token_file` / `CALLTRAIL_TOKEN`), and a daemon bound beyond loopback
//! without either refuses to start. The directory's admin API always needs
//! the admin token (`admin_token_file` / `CALLTRAIL_ADMIN_TOKEN`, else one
//! generated into `<store>.admin-token`).

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// An allow-list entry: an address or a network.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Why the configured access cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{what} listens on {addr}, which is not a loopback address, and no client is authorized: set {how}, or listen on 127.0.0.1")]
    Open {
        what: &'static str,
        addr: SocketAddr,
        how: &'static str,
    },
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token in {0} is empty or shorter than 16 characters")]
    Weak(String),
    #[error("cannot write the admin token to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no randomness for the admin token: {0}")]
    Random(String),
}

/// A secret compared in constant time; never printed.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    fn new(s: &str, from: &str) -> Result<Token, AuthError> {
        let s = s.trim();
        if s.len() < 16 {
            return Err(AuthError::Weak(from.to_string()));
        }
        Ok(Token(s.to_string()))
    }

    /// Whether `given` is this token.
    pub fn matches(&self, given: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The token from the environment variable `var`, else from `file`.
pub fn read_token(var: &str, file: Option<&Path>) -> Result<Option<Token>, AuthError> {
    if let Ok(v) = std::env::var(var) {
        if !v.trim().is_empty() {
            return Token::new(&v, var).map(Some);
        }
    }
    let Some(path) = file else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Token::new(&text, &path.display().to_string()).map(Some)
}

/// Where `run` keeps the admin token it generates for the store `store`.
pub fn admin_token_path(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".admin-token");
    PathBuf::from(p)
}

/// A new random admin token written to `path` (mode 0600, replacing an
/// older one atomically).
pub fn generate_admin_token(path: &Path) -> Result<Token, AuthError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension("admin-token.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| AuthError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Token(token))
}

/// Who may use a listener.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub token: Option<Token>,
    pub allow: Vec<IpNet>,
}

impl Access {
    /// The access for a listener on `addr`; refuses one beyond loopback
    /// that authorizes nobody (`logins`: the pages have their own logins;
    /// the API then still answers loopback clients only).
    pub fn new(
        what: &'static str,
        how: &'static str,
        addr: SocketAddr,
        token: Option<Token>,
        allow: &[String],
        logins: bool,
    ) -> Result<Access, AuthError> {
        let allow: Vec<IpNet> = allow.iter().filter_map(|a| parse_net(a)).collect();
        if !addr.ip().is_loopback() && token.is_none() && allow.is_empty() && !logins {
            return Err(AuthError::Open { what, addr, how });
        }
        Ok(Access { token, allow })
    }

    /// Whether `peer` is loopback or on the allow list (an empty list lists
    /// everyone): the admin API's own check besides its token.
    pub fn listed(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        peer.is_loopback() || self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&peer))
    }

    /// Whether a request from `peer` bringing `token` may be served.
    pub fn permits(&self, peer: IpAddr, token: Option<&str>) -> bool {
        if peer.is_loopback() || peer.to_canonical().is_loopback() {
            return true;
        }
        let listed =
            self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&peer.to_canonical()));
        let tokened = match &self.token {
            Some(t) => token.is_some_and(|g| t.matches(g)),
            None => true,
        };
        // At least one of the two is configured (checked by `new`).
        listed && tokened && (self.token.is_some() || !self.allow.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn beyond_loopback_needs_something() {
        assert!(Access::new("x", "y", addr("0.0.0.0:1"), None, &[], false).is_err());
        assert!(Access::new("x", "y", addr("127.0.0.1:1"), None, &[], false).is_ok());
        let a = Access::new(
            "x",
            "y",
            addr("0.0.0.0:1"),
            None,
            &["10.1.0.0/16".into()],
            false,
        )
        .unwrap();
        assert!(a.permits("10.1.2.3".parse().unwrap(), None));
        assert!(!a.permits("10.2.0.1".parse().unwrap(), None));
        assert!(a.permits("::1".parse().unwrap(), None));
        let t = Token::new("0123456789abcdef", "t").unwrap();
        let a = Access::new("x", "y", addr("0.0.0.0:1"), Some(t), &[], false).unwrap();
        assert!(a.permits("192.0.2.1".parse().unwrap(), Some("0123456789abcdef")));
        assert!(!a.permits("192.0.2.1".parse().unwrap(), Some("0123456789abcdeX")));
        assert!(!a.permits("192.0.2.1".parse().unwrap(), None));
        assert!(Token::new("short", "t").is_err());
        // Logins open the pages; the API still answers loopback only.
        let a = Access::new("x", "y", addr("0.0.0.0:1"), None, &[], true).unwrap();
        assert!(!a.permits("192.0.2.1".parse().unwrap(), None));
        assert!(a.permits("127.0.0.1".parse().unwrap(), None));
        assert!(parse_net("192.0.2.10").is_some() && parse_net("nope").is_none());
    }
}
