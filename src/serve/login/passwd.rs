//! `calltrail passwd`: a password hash for `[[http.users]]`, or a new token
//! and its SHA-256 for `[[http.tokens]]`, printed as a config snippet.
//! The password comes from the terminal (asked twice, no echo) or from the
//! first line of standard input (scripts); it is never printed or logged.

use super::credentials::{self, CredentialError};
use std::io::{BufRead, IsTerminal, Write};

/// Why `passwd` printed nothing.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("--role must be viewer or admin, not {0:?}")]
    Role(String),
    #[error("the name {0:?} is not usable: 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    Name(String),
    #[error("reading the password: {0}")]
    Read(std::io::Error),
    #[error("the password is empty")]
    Empty,
    #[error("the two passwords differ")]
    Differ,
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("writing: {0}")]
    Write(std::io::Error),
}

/// Runs `calltrail passwd [--token] [--name N] [--role R]`.
pub fn run(
    token: bool,
    name: Option<&str>,
    role: &str,
    out: &mut dyn Write,
) -> Result<(), PasswdError> {
    if crate::config::Role::from_name(role).is_none() {
        return Err(PasswdError::Role(role.to_string()));
    }
    let name = name.unwrap_or(if token { "tv" } else { "supervisor" });
    let ok_name = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok_name {
        return Err(PasswdError::Name(name.to_string()));
    }
    let w =
        |out: &mut dyn Write, s: String| out.write_all(s.as_bytes()).map_err(PasswdError::Write);
    if token {
        let t = credentials::new_token()?;
        let digest = credentials::hex(&credentials::sha256(t.as_bytes()));
        w(
            out,
            format!(
                "# The token (give it to the TV or script; it is not kept anywhere):\n\
                 #   {t}\n\
                 # e.g. http://<host>:8479/wall?token={t}\n\
                 [[http.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_sha256 = \"{digest}\"\n"
            ),
        )?;
        return Ok(());
    }
    let password = read_password()?;
    if password.chars().count() < 10 {
        eprintln!(
            "calltrail passwd: warning: a password shorter than 10 characters is easy to guess"
        );
    }
    let phc = credentials::hash_password(&password)?;
    w(
        out,
        format!(
            "[[http.users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{phc}\"\n"
        ),
    )
}

fn read_password() -> Result<String, PasswdError> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let a = rpassword::prompt_password("Password: ").map_err(PasswdError::Read)?;
        let b = rpassword::prompt_password("Again: ").map_err(PasswdError::Read)?;
        if a != b {
            return Err(PasswdError::Differ);
        }
        a
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(PasswdError::Read)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        return Err(PasswdError::Empty);
    }
    Ok(password)
}
