//! Tests against real servers: tansu (Kafka-compatible broker) and an
//! aiosmtpd SMTP server. A missing server FAILS the test (with the fix:
//! `bash tests/setup.sh`): a test that quietly skips could never fail.
//!
//! Lookup: `CALLTRAIL_TANSU` (tansu binary) and `CALLTRAIL_PYTHON` (a Python
//! with aiosmtpd), else `$HOME/.cache/calltrail/venv`.

mod kafka_tansu;
mod smtp_aiosmtpd;

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The project's venv, if present.
fn venv() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("HOME")?).join(".cache/calltrail/venv");
    dir.is_dir().then_some(dir)
}

/// An executable from an env var, else from the venv via `in_venv`.
/// Panics when it is not installed.
fn find_tool(env: &str, in_venv: impl FnOnce(&Path) -> Option<PathBuf>) -> Option<PathBuf> {
    let found = match std::env::var_os(env) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => venv().and_then(|v| in_venv(&v)).filter(|p| p.is_file()),
    };
    assert!(
        found.is_some(),
        "test tool not found (${env} or ~/.cache/calltrail/venv): run `bash tests/setup.sh` first"
    );
    found
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A child process killed (by its own handle) when the test ends.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Spawn `cmd` with stdout/stderr to `log` and wait until `port` accepts
    /// TCP connections.
    fn start(mut cmd: Command, log: PathBuf, port: u16) -> Self {
        let out = File::create(&log).expect("server log");
        let err = out.try_clone().expect("server log");
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn server");
        let mut server = Self { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited early ({status}):\n{}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "server not listening on {port}:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
