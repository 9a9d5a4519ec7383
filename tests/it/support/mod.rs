//! Test harness shared by calltrail's integration tests.
//!
//! The product talks to real services, so the tests run real ones on
//! 127.0.0.1, one instance per test:
//!
//! * [`broker::Broker`]: a Kafka-compatible broker (tansu, in-memory storage)
//!   plus an independent kafka-python client to read back what was published;
//! * [`smtp::SmtpServer`]: an aiosmtpd server that stores mail in a Maildir,
//!   optionally with STARTTLS / implicit TLS and AUTH;
//! * [`asterisk_curl`]: a model of what Asterisk makes of a `CURL()` body
//!   under `CURLOPT(hashcompat)` and `HASH()` (checked against a real one);
//! * [`tools`]: where those external tools live, free ports, running helper
//!   processes with a deadline.
//!
//! The tools are installed by `bash tests/setup.sh`; when they are missing the
//! tests fail (they never skip) and say so.

pub mod asterisk_agi;
pub mod asterisk_ami;
pub mod asterisk_callfile;
pub mod asterisk_curl;
pub mod broker;
pub mod chaos_writer;
pub mod kannel;
pub mod smtp;
pub mod tools;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// Calls `cond` every 50 ms until it returns `true` or `timeout` has passed.
/// Returns whether the condition was met (it is always tried at least once).
/// An HTTP client for a daemon's API: every status is an answer (not an
/// error), redirects are not followed (a test sees them), requests are
/// bounded by `timeout`.
pub fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a text file (lossy UTF-8), for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}
