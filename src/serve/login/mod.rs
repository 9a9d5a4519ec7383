//! Logins for the pages people and TVs look at (the wallboard, the
//! reports): `[[http.users]]` log in on `/login` and get a signed session
//! cookie; `[[http.tokens]]` (and the `[http]` API token) are brought as
//! `Authorization: Bearer …` or `?token=…`. With none configured, those
//! pages are served as the rest of the API is (loopback, `[http] allow`,
//! the API token). The admin API keeps its bearer tokens (an admin
//! `[[http.tokens]]` entry is one); cookies never reach it, so no other
//! site can make a browser change anything.
//!
//! - [`credentials`]: argon2 and SHA-256, new tokens (`calltrail passwd`);
//! - [`session`]: the signed cookie and its key;
//! - [`page`]: `GET`/`POST /login`, `POST /logout` (CSRF-checked);
//! - [`passwd`]: `calltrail passwd`.

pub mod credentials;
pub mod page;
pub mod passwd;
pub mod session;

use crate::config::{HttpSection, Role};
use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Key, SignedCookieJar};
use session::{Kind, Session};
use std::collections::HashMap;
use std::time::Duration;

/// One configured person.
struct User {
    role: Role,
    phc: String,
    fingerprint: String,
}

/// One configured token.
struct TokenEntry {
    name: String,
    role: Role,
    digest: [u8; 32],
    fingerprint: String,
}

/// Who is asking, once recognized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    /// Through a session cookie (`Some`: renew it) or a token.
    pub session: Option<Session>,
}

/// The configured logins and the session key.
pub struct Logins {
    users: HashMap<String, User>,
    tokens: Vec<TokenEntry>,
    /// The `[http]` API token, which also opens the pages.
    api_token: Option<super::auth::Token>,
    key: Key,
    ttl: Duration,
    /// Password checks running at once (argon2 costs memory and a core).
    pub(crate) checking: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Logins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logins")
            .field("users", &self.users.len())
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// A password hash no configured user has: checked for unknown names so
/// that they take as long as known ones.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| credentials::hash_password("calltrail decoy").unwrap_or_default())
}

impl Logins {
    /// The logins of `[http]` (`None`: no user and no token configured, the
    /// pages are served like the rest of the API).
    pub fn new(
        http: &HttpSection,
        key: Key,
        api_token: Option<super::auth::Token>,
    ) -> Option<Logins> {
        if !http.has_logins() {
            return None;
        }
        let users = http
            .users
            .iter()
            .map(|u| {
                (
                    u.name.clone(),
                    User {
                        role: u.role,
                        phc: u.password_hash.trim().to_string(),
                        fingerprint: session::fingerprint(&u.password_hash),
                    },
                )
            })
            .collect();
        let tokens = http
            .tokens
            .iter()
            .filter_map(|t| {
                Some(TokenEntry {
                    name: t.name.clone(),
                    role: t.role,
                    digest: credentials::parse_digest(&t.token_sha256)?,
                    fingerprint: session::fingerprint(&t.token_sha256.to_ascii_lowercase()),
                })
            })
            .collect();
        Some(Logins {
            users,
            tokens,
            api_token,
            key,
            ttl: Duration::from_secs(http.session_hours.max(1) * 3600),
            checking: tokio::sync::Semaphore::new(2),
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The configured token `given` is, if any (every entry compared, in
    /// constant time each).
    pub fn by_token(&self, given: &str) -> Option<Viewer> {
        let mut found = None;
        for t in &self.tokens {
            if credentials::token_matches(&t.digest, given) && found.is_none() {
                found = Some(Viewer {
                    name: t.name.clone(),
                    role: t.role,
                    session: None,
                });
            }
        }
        if found.is_none() && self.api_token.as_ref().is_some_and(|t| t.matches(given)) {
            found = Some(Viewer {
                name: "[http] token".into(),
                role: Role::Viewer,
                session: None,
            });
        }
        found
    }

    /// The admin token among `[[http.tokens]]` that `given` is, if any.
    pub fn admin_token(&self, given: &str) -> bool {
        self.by_token(given)
            .is_some_and(|v| v.role == Role::Admin && v.name != "[http] token")
    }

    /// The session a request's cookie holds, if it is signed by us, not
    /// expired, and its user or token is still configured unchanged.
    pub fn by_session(&self, headers: &HeaderMap, now: i64) -> Option<Viewer> {
        let jar = SignedCookieJar::from_headers(headers, self.key.clone());
        let s = Session::decode(jar.get(session::SESSION)?.value())?;
        if s.expires <= now {
            return None;
        }
        let (role, fp) = match s.kind {
            Kind::User => {
                let u = self.users.get(&s.name)?;
                (u.role, &u.fingerprint)
            }
            Kind::Token => {
                let t = self.tokens.iter().find(|t| t.name == s.name)?;
                (t.role, &t.fingerprint)
            }
        };
        if *fp != s.fingerprint {
            return None;
        }
        Some(Viewer {
            name: s.name.clone(),
            role,
            session: Some(s),
        })
    }

    /// A new session for `name` after a good password.
    pub fn session_for(&self, name: &str, now: i64) -> Option<Session> {
        let u = self.users.get(name)?;
        Some(Session {
            kind: Kind::User,
            name: name.to_string(),
            role: u.role,
            expires: now + self.ttl.as_secs() as i64,
            fingerprint: u.fingerprint.clone(),
        })
    }

    /// The session renewed when more than half of its time has passed.
    pub fn renewed(&self, s: &Session, now: i64) -> Option<Session> {
        let ttl = self.ttl.as_secs() as i64;
        (s.expires - now < ttl / 2).then(|| Session {
            expires: now + ttl,
            ..s.clone()
        })
    }

    /// Whether `password` is `name`'s (blocking: argon2 takes tens of
    /// milliseconds; an unknown name costs the same).
    pub fn check_password(&self, name: &str, password: &str) -> bool {
        match self.users.get(name) {
            Some(u) => credentials::verify_password(&u.phc, password),
            None => {
                let _ = credentials::verify_password(decoy(), password);
                false
            }
        }
    }

    /// The anti-forgery token of forms shown to a session (logout): bound
    /// to the session and to the key, so another site cannot know it.
    pub fn csrf_for(&self, s: &Session) -> String {
        let mut material = self.key.signing().to_vec();
        material.extend_from_slice(b"calltrail/csrf/");
        material.extend_from_slice(s.encode().as_bytes());
        credentials::hex(&credentials::sha256(&material)[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpToken, HttpUser};

    fn logins() -> (Logins, String) {
        let token = credentials::new_token().expect("token");
        let http = HttpSection {
            users: vec![HttpUser {
                name: "anna".into(),
                role: Role::Viewer,
                password_hash: credentials::hash_password("s3cret!").expect("hash"),
            }],
            tokens: vec![HttpToken {
                name: "tv".into(),
                role: Role::Admin,
                token_sha256: credentials::hex(&credentials::sha256(token.as_bytes())),
            }],
            ..HttpSection::default()
        };
        let key = Key::from(&[7u8; 64]);
        (Logins::new(&http, key, None).expect("logins"), token)
    }

    #[test]
    fn passwords_tokens_and_sessions() {
        let (l, token) = logins();
        assert!(l.check_password("anna", "s3cret!"));
        assert!(!l.check_password("anna", "S3cret!"));
        assert!(!l.check_password("bob", "s3cret!"));
        assert_eq!(l.by_token(&token).map(|v| v.role), Some(Role::Admin));
        assert!(l.admin_token(&token));
        assert!(l.by_token("nope").is_none());

        let s = l.session_for("anna", 1000).expect("session");
        let jar = SignedCookieJar::new(l.key().clone()).add(s.cookie());
        let mut headers = HeaderMap::new();
        let cookie = jar.get(session::SESSION).expect("signed cookie");
        // What the browser sends back: the signed value.
        let signed = axum::response::IntoResponse::into_response((jar, ()));
        let set = signed
            .headers()
            .get(axum::http::header::SET_COOKIE)
            .expect("set-cookie")
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_string();
        assert!(set.starts_with("calltrail_session="));
        assert_ne!(set, format!("calltrail_session={}", cookie.value()));
        headers.insert(axum::http::header::COOKIE, set.parse().expect("header"));
        let v = l.by_session(&headers, 1001).expect("valid session");
        assert_eq!(v.name, "anna");
        assert!(
            l.by_session(&headers, 1000 + 12 * 3600).is_none(),
            "expired"
        );
        // Forged: the same value unsigned.
        let mut forged = HeaderMap::new();
        forged.insert(
            axum::http::header::COOKIE,
            format!("calltrail_session={}", s.encode())
                .parse()
                .expect("header"),
        );
        assert!(l.by_session(&forged, 1001).is_none());
        assert!(l.renewed(&s, 1001).is_none());
        assert!(l.renewed(&s, 1000 + 7 * 3600).is_some());
        assert_eq!(l.csrf_for(&s).len(), 32);
    }
}
