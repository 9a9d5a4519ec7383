//! Sessions in signed cookies: who logged in, with which role, until when,
//! and a fingerprint of the credential used (a changed password or a
//! removed user ends the session). Signed with HMAC-SHA256 by
//! `axum-extra`'s `SignedCookieJar`; the key comes from `[http]
//! session_key_file` / `CALLTRAIL_SESSION_KEY`, else a random one is kept
//! in `<store>.session-key` (mode 0600) so sessions survive restarts.
//! Cookies are `HttpOnly`, `SameSite=Strict` and `Path=/`.

use crate::config::Role;
use axum_extra::extract::cookie::{Cookie, Key, SameSite};
use std::path::{Path, PathBuf};

/// The session cookie's name.
pub const SESSION: &str = "calltrail_session";
/// The login form's anti-forgery cookie (double submit).
pub const LOGIN_NONCE: &str = "calltrail_login";

/// Why the session key cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the session key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the session key in {0} is shorter than 64 bytes")]
    Short(String),
    #[error("cannot write the session key to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no randomness for the session key: {0}")]
    Random(String),
}

/// The signing key: `CALLTRAIL_SESSION_KEY`, else `file`, else the one
/// kept beside the store (made on first use).
pub fn load_key(file: Option<&Path>, store: &Path) -> Result<Key, KeyError> {
    if let Ok(v) = std::env::var("CALLTRAIL_SESSION_KEY") {
        if !v.trim().is_empty() {
            return key_of(v.trim().as_bytes(), "CALLTRAIL_SESSION_KEY");
        }
    }
    if let Some(path) = file {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        return key_of(bytes.trim_ascii(), &path.display().to_string());
    }
    let mut p = store.as_os_str().to_owned();
    p.push(".session-key");
    let path = PathBuf::from(p);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.trim_ascii().len() >= 64 => {
            return key_of(bytes.trim_ascii(), &path.display().to_string())
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(KeyError::Read { path, source }),
    }
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    let text = super::credentials::hex(&bytes);
    write_private(&path, text.as_bytes()).map_err(|source| KeyError::Write {
        path: path.clone(),
        source,
    })?;
    tracing::info!(file = %path.display(), "session key written (signs login cookies)");
    key_of(text.as_bytes(), &path.display().to_string())
}

fn key_of(bytes: &[u8], from: &str) -> Result<Key, KeyError> {
    if bytes.len() < 64 {
        return Err(KeyError::Short(from.to_string()));
    }
    // Any length from 64 bytes on, condensed into the 64 bytes `Key` takes
    // (the first 32 sign).
    let mut material = super::credentials::sha256(bytes).to_vec();
    material.extend_from_slice(&super::credentials::sha256(
        &[b"calltrail/enc/", bytes].concat(),
    ));
    Ok(Key::from(&material))
}

/// Writes `data` to `path` with mode 0600, atomically.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("session-key.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(data)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Who a session belongs to: a person (`/login`) or a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Token,
}

/// What a session cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub kind: Kind,
    pub name: String,
    pub role: Role,
    /// Unix seconds.
    pub expires: i64,
    /// The first 8 bytes (hex) of the SHA-256 of the credential's hash.
    pub fingerprint: String,
}

impl Session {
    /// The cookie's value: `v1.<u|t>.<hex name>.<role>.<expires>.<fp>`
    /// (signed by the jar).
    pub fn encode(&self) -> String {
        format!(
            "v1.{}.{}.{}.{}.{}",
            match self.kind {
                Kind::User => "u",
                Kind::Token => "t",
            },
            super::credentials::hex(self.name.as_bytes()),
            self.role.name(),
            self.expires,
            self.fingerprint
        )
    }

    /// The value back (`None`: not one of ours).
    pub fn decode(v: &str) -> Option<Session> {
        let mut it = v.split('.');
        if it.next()? != "v1" {
            return None;
        }
        let kind = match it.next()? {
            "u" => Kind::User,
            "t" => Kind::Token,
            _ => return None,
        };
        let hex = it.next()?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let name = String::from_utf8(bytes?).ok()?;
        let role = Role::from_name(it.next()?)?;
        let expires = it.next()?.parse().ok()?;
        let fingerprint = it.next()?.to_string();
        if it.next().is_some() {
            return None;
        }
        Some(Session {
            kind,
            name,
            role,
            expires,
            fingerprint,
        })
    }

    /// The cookie carrying this session.
    pub fn cookie(&self) -> Cookie<'static> {
        private_cookie(SESSION, self.encode())
    }
}

/// A cookie only this site's requests carry, invisible to scripts.
pub fn private_cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .build()
}

/// The fingerprint of a credential's stored form (PHC string or digest).
pub fn fingerprint(stored: &str) -> String {
    super::credentials::hex(&super::credentials::sha256(stored.trim().as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_round_trips_and_junk_does_not_decode() {
        let s = Session {
            kind: Kind::User,
            name: "anna.k@ops".into(),
            role: Role::Viewer,
            expires: 1_800_000_000,
            fingerprint: fingerprint("$argon2id$x"),
        };
        assert_eq!(Session::decode(&s.encode()), Some(s.clone()));
        assert!(Session::decode("v1.u.zz.viewer.1.ab").is_none());
        assert!(Session::decode("v2.u.61.viewer.1.ab").is_none());
        assert!(Session::decode("v1.u.61.root.1.ab").is_none());
        assert!(Session::decode("v1.u.61.viewer.1.ab.extra").is_none());
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("s.duckdb");
        let a = load_key(None, &store).expect("key");
        let b = load_key(None, &store).expect("key again");
        assert_eq!(a.master(), b.master());
        let text = std::fs::read_to_string(dir.path().join("s.duckdb.session-key")).expect("file");
        assert_eq!(text.trim().len(), 128);
        let short = dir.path().join("short");
        std::fs::write(&short, "0123").expect("write");
        assert!(matches!(
            load_key(Some(&short), &store),
            Err(KeyError::Short(_))
        ));
    }
}
