//! Where the external test tools are, and small process/network helpers.
//!
//! `bash tests/setup.sh` installs a Python venv (aiosmtpd, kafka-python) and
//! the tansu broker under `$CALLTRAIL_TOOLS` (default `~/.cache/calltrail`).
//! Each tool can be overridden by an environment variable:
//!
//! | tool   | variable           | default                     |
//! |--------|--------------------|-----------------------------|
//! | tansu  | `CALLTRAIL_TANSU`  | `$CALLTRAIL_TOOLS/bin/tansu` |
//! | python | `CALLTRAIL_PYTHON` | `$CALLTRAIL_TOOLS/venv/bin/python` |
//! | chromium | `CALLTRAIL_CHROMIUM` | `/usr/bin/chromium` (Debian's `chromium`) |
//! | chromedriver | `CALLTRAIL_CHROMEDRIVER` | `/usr/bin/chromedriver` (`chromium-driver`) |
//! | cargo-deb | `CALLTRAIL_CARGO_DEB` | `$CALLTRAIL_TOOLS/bin/cargo-deb` |
//!
//! A missing tool is a test failure with a hint, never a silent skip.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What to tell a developer whose machine lacks the test tools.
pub const SETUP_HINT: &str = "run `bash tests/setup.sh` first";

/// The repository root (the directory of the top-level `Cargo.toml`).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$CALLTRAIL_TOOLS`, else `$HOME/.cache/calltrail`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = env_path("CALLTRAIL_TOOLS") {
        return dir;
    }
    let home = env_path("HOME").expect("neither CALLTRAIL_TOOLS nor HOME is set");
    home.join(".cache").join("calltrail")
}

fn existing_tool(var: &str, default: PathBuf, what: &str) -> PathBuf {
    let (path, origin) = match env_path(var) {
        Some(p) => (p, format!("from ${var}")),
        None => (default, format!("default; override with ${var}")),
    };
    assert!(
        path.is_file(),
        "{what} not found at {} ({origin}): {SETUP_HINT}",
        path.display()
    );
    path
}

/// The tansu broker binary.
pub fn tansu() -> PathBuf {
    existing_tool(
        "CALLTRAIL_TANSU",
        tools_dir().join("bin").join("tansu"),
        "tansu (Kafka-compatible test broker)",
    )
}

/// The Python of the test venv (has aiosmtpd and kafka-python).
pub fn python() -> PathBuf {
    existing_tool(
        "CALLTRAIL_PYTHON",
        tools_dir().join("venv").join("bin").join("python"),
        "the test venv's python",
    )
}

/// The Chromium the browser tests drive (Debian's package).
pub fn chromium() -> PathBuf {
    existing_tool(
        "CALLTRAIL_CHROMIUM",
        PathBuf::from("/usr/bin/chromium"),
        "Chromium (apt-get install chromium)",
    )
}

/// The ChromeDriver matching [`chromium`].
pub fn chromedriver() -> PathBuf {
    existing_tool(
        "CALLTRAIL_CHROMEDRIVER",
        PathBuf::from("/usr/bin/chromedriver"),
        "ChromeDriver (apt-get install chromium-driver)",
    )
}

/// cargo-deb, which packs the `.deb` (tests/setup.sh installs the pinned
/// version).
pub fn cargo_deb() -> PathBuf {
    existing_tool(
        "CALLTRAIL_CARGO_DEB",
        tools_dir().join("bin").join("cargo-deb"),
        "cargo-deb",
    )
}

/// A helper script from `tests/support/` (e.g. `"smtp_server.py"`).
pub fn support_script(name: &str) -> PathBuf {
    let path = repo_root().join("tests").join("support").join(name);
    assert!(path.is_file(), "missing test helper {}", path.display());
    path
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read
/// the port, close). Another process may grab it before it is used, so
/// servers started on it should retry with a new port if binding fails.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("cannot bind 127.0.0.1:0")
        .port()
}

/// Result of [`run`].
#[derive(Debug)]
pub struct CmdOutput {
    /// Exit code; `None` if killed by a signal (including the deadline).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The process was killed because it outlived its deadline.
    pub timed_out: bool,
}

impl CmdOutput {
    /// Exited by itself with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// Runs `cmd` to completion (stdin closed, stdout/stderr captured), killing it
/// if it runs longer than `limit`. Panics only if it cannot be started.
pub fn run(cmd: &mut Command, limit: Duration) -> CmdOutput {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout piped")));
    let err = reader(Box::new(child.stderr.take().expect("stderr piped")));
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        thread::sleep(Duration::from_millis(20));
    };
    CmdOutput {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    }
}
