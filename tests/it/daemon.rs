//! Driving the real `calltrail` binary from tests: write a config, start
//! `run` in the background, stop it with SIGTERM, run one-shot commands.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of the binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_calltrail")
}

/// Runs `calltrail --config CFG ARGS…` to completion.
pub fn calltrail(config: &Path, args: &[&str]) -> Output {
    calltrail_env(config, args, &[])
}

/// [`calltrail`] with variables added to its environment (such as
/// `CALLTRAIL_NOW`, which fixes the derived state's clock).
pub fn calltrail_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CALLTRAIL_NOW")
        .envs(env.iter().copied())
        .output()
        .expect("cannot start calltrail")
}

/// Runs a query and returns the JSON rows.
pub fn query_json(config: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = calltrail(config, &["query", "--format", "json", sql]);
    assert!(
        out.status.success(),
        "query {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(serde_json::Value::Array(rows)) => rows,
        other => panic!("query output is not a JSON array: {other:?}"),
    }
}

/// A single number from a query such as `SELECT count(*) AS n FROM …`.
pub fn query_i64(config: &Path, sql: &str) -> i64 {
    let rows = query_json(config, sql);
    rows.first()
        .and_then(|r| r.as_object())
        .and_then(|o| o.values().next())
        .and_then(|v| v.as_i64())
        .unwrap_or_else(|| panic!("{sql:?} gave no number: {rows:?}"))
}

/// A `calltrail run` in the background; killed on drop if still running.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `calltrail run`. A config without an `[http]` (`[agi]`)
    /// section gets one on a free port, so that daemons of parallel tests do
    /// not all want the default ports.
    pub fn start(config: &Path, log: &Path) -> Daemon {
        Daemon::start_env(config, log, &[])
    }

    /// [`Daemon::start`] with variables added to its environment.
    pub fn start_env(config: &Path, log: &Path, env: &[(&str, &str)]) -> Daemon {
        let text = std::fs::read_to_string(config).expect("read config");
        if !text.lines().any(|l| l.trim() == "[http]") {
            let port = crate::support::tools::free_port();
            append(
                config,
                format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n").as_bytes(),
            );
        }
        if !text.lines().any(|l| l.trim() == "[agi]") {
            let port = crate::support::tools::free_port();
            append(
                config,
                format!("\n[agi]\nlisten = \"127.0.0.1:{port}\"\n").as_bytes(),
            );
        }
        let file = std::fs::File::create(log).expect("log file");
        let child = Command::new(bin())
            .arg("--config")
            .arg(config)
            .args(["--log", "calltrail=debug,info", "run"])
            .env_remove("RUST_LOG")
            .env_remove("CALLTRAIL_NOW")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("cannot start calltrail run");
        Daemon {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Waits until the HTTP API listens (queries can go through it).
    pub fn wait_http(&self) {
        assert!(
            crate::support::wait_until(Duration::from_secs(30), || self
                .log()
                .contains("HTTP API listening")),
            "the daemon's HTTP API did not start:\n{}",
            self.log()
        );
    }

    /// The daemon's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "calltrail did not stop within {timeout:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Appends bytes to a file the way Asterisk does (open, append, flush).
pub fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).expect("append");
    f.flush().expect("flush");
}
