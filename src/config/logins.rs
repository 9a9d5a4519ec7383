//! `[[http.users]]` and `[[http.tokens]]`: who may see the wallboard and
//! the reports (role `viewer`) and who may also use the admin API (role
//! `admin`), with their checks. People log in with a name and a password
//! (an argon2 PHC string, printed by `calltrail passwd`); TVs and scripts
//! bring a token whose SHA-256 the config holds (`calltrail passwd
//! --token`). docs/http.md ("Access") is the manual.

use super::Problem;
use serde::Deserialize;
use std::collections::HashSet;

/// What a login may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The wallboard and the reports.
    Viewer,
    /// Those, and the admin API (numbers, actions) with a token.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One `[[http.users]]` entry: a person who logs in on `/login`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpUser {
    pub name: String,
    pub role: Role,
    /// An argon2 PHC string (`$argon2id$v=19$m=…`), never the password.
    pub password_hash: String,
}

/// One `[[http.tokens]]` entry: a TV or a script (`/wall?token=…` or
/// `Authorization: Bearer …`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToken {
    pub name: String,
    pub role: Role,
    /// The token's SHA-256, 64 hexadecimal digits (the token itself is
    /// never in the config).
    pub token_sha256: String,
}

/// Problems of the users and tokens lists.
pub(super) fn problems(users: &[HttpUser], tokens: &[HttpToken]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, u) in users.iter().enumerate() {
        let at = format!("http.users[{i}]");
        if !valid_name(&u.name) {
            out.push(Problem {
                location: format!("{at}.name"),
                expected: "1 to 64 letters, digits, '.', '_', '-' or '@'".into(),
                found: format!("{:?}", u.name),
            });
        } else if !names.insert(u.name.clone()) {
            out.push(Problem {
                location: format!("{at}.name"),
                expected: "a name no other user has".into(),
                found: format!("{:?} twice", u.name),
            });
        }
        if let Err(why) = crate::serve::login::credentials::check_phc(&u.password_hash) {
            out.push(Problem {
                location: format!("{at}.password_hash"),
                expected: "an argon2 PHC string as `calltrail passwd` prints it ($argon2id$v=19$m=…,t=…,p=…$salt$hash)".into(),
                found: why,
            });
        }
    }
    let mut names = HashSet::new();
    let mut digests = HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        let at = format!("http.tokens[{i}]");
        if !valid_name(&t.name) {
            out.push(Problem {
                location: format!("{at}.name"),
                expected: "1 to 64 letters, digits, '.', '_', '-' or '@'".into(),
                found: format!("{:?}", t.name),
            });
        } else if !names.insert(t.name.clone()) {
            out.push(Problem {
                location: format!("{at}.name"),
                expected: "a name no other token has".into(),
                found: format!("{:?} twice", t.name),
            });
        }
        let hex = t.token_sha256.trim().to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push(Problem {
                location: format!("{at}.token_sha256"),
                expected: "the token's SHA-256 as 64 hexadecimal digits (`calltrail passwd --token` prints it; or `printf %s TOKEN | sha256sum`)".into(),
                found: format!("{} characters", t.token_sha256.len()),
            });
        } else if !digests.insert(hex) {
            out.push(Problem {
                location: format!("{at}.token_sha256"),
                expected: "a token no other entry has".into(),
                found: "the same digest twice".into(),
            });
        }
    }
    out
}

/// A user or token name: short, printable, safe in logs and cookies.
fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}
