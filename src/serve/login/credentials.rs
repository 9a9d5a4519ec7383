//! Passwords and tokens: argon2 PHC strings for people (hashed by
//! `calltrail passwd`, verified at `/login`), SHA-256 digests for tokens
//! (compared in constant time), and new random tokens.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a password could not be hashed or a token made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("no randomness for a token: {0}")]
    Random(String),
}

/// Why a configured `password_hash` cannot be used (for check-config).
pub fn check_phc(phc: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc.trim()).map_err(|e| format!("not a PHC string ({e})"))?;
    let alg = h.algorithm.as_str();
    if !matches!(alg, "argon2id" | "argon2i" | "argon2d") {
        return Err(format!("the algorithm is {alg:?}, not argon2"));
    }
    if h.hash.is_none() || h.salt.is_none() {
        return Err("it has no salt or no hash".into());
    }
    Ok(())
}

/// The PHC string of `password` (Argon2id, the crate's defaults, a random
/// salt).
pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hash(e.to_string()))
}

/// Whether `password` is the one `phc` was made from (argon2's own
/// parameters from the string; a malformed string matches nothing).
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc.trim()) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// The SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = Sha256::digest(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A configured `token_sha256` as bytes (`None`: not 64 hex digits).
pub fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether `given` hashes to `digest`, in constant time.
pub fn token_matches(digest: &[u8; 32], given: &str) -> bool {
    bool::from(sha256(given.trim().as_bytes()).ct_eq(digest))
}

/// A new random token: 32 bytes as 64 hexadecimal digits.
pub fn new_token() -> Result<String, CredentialError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CredentialError::Random(e.to_string()))?;
    Ok(hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_and_another_does_not() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(check_phc(&phc).is_ok());
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horse "));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_phc(
            "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$J1uKq5FGWZBRpiQ4Rmx5w4ieQw2WyJ9H5l5UEb2rLZc"
        )
        .is_err());
        assert!(check_phc("plain text").is_err());
    }

    #[test]
    fn tokens_match_by_their_digest() {
        let t = new_token().expect("token");
        assert_eq!(t.len(), 64);
        let d = parse_digest(&hex(&sha256(t.as_bytes()))).expect("digest");
        assert!(token_matches(&d, &t));
        assert!(!token_matches(&d, &t[1..]));
        // `printf %s abc | sha256sum`
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(parse_digest("zz").is_none());
    }
}
