//! Driving `tests/support/chaos_writer.py` (a separate process that appends
//! realistic queue_log/CDR lines and rotates the files) and reading back its
//! ground truth: every line it wrote, where, and every rotation.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use super::tools;

/// How long the writer may take to answer a command.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of one writer run.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub seed: u64,
    /// queue_log lines per second.
    pub rate: u32,
    /// Mean seconds between two rotations of one file.
    pub rotate_mean_s: f64,
    /// Also write Master.csv (cdr_csv) records.
    pub cdr: bool,
    /// Rotation modes to pick from (comma-separated; empty: never rotate);
    /// `None`: all of them.
    pub modes: Option<String>,
}

/// The running writer; killed on drop.
pub struct ChaosWriter {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    stderr: PathBuf,
}

impl ChaosWriter {
    /// Starts the writer on directory `dir`, logging to `truth`; returns
    /// once it printed `ready`.
    pub fn start(dir: &Path, truth: &Path, opts: &WriterOptions) -> ChaosWriter {
        let stderr = truth.with_extension("stderr");
        let mut child = Command::new(tools::python())
            .arg(tools::support_script("chaos_writer.py"))
            .arg("--dir")
            .arg(dir)
            .arg("--truth")
            .arg(truth)
            .args(["--seed", &opts.seed.to_string()])
            .args(["--rate", &opts.rate.to_string()])
            .args(["--rotate-mean-s", &opts.rotate_mean_s.to_string()])
            .args(if opts.cdr { &["--cdr"][..] } else { &[][..] })
            .args(
                opts.modes
                    .as_ref()
                    .map(|m| ["--modes", m.as_str()])
                    .iter()
                    .flatten(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("writer stderr file"))
            .spawn()
            .expect("cannot start chaos_writer.py");
        let stdin = child.stdin.take().expect("stdin piped");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut w = ChaosWriter {
            child,
            stdin,
            replies,
            stderr,
        };
        w.expect_reply("ready");
        w
    }

    fn expect_reply(&mut self, prefix: &str) -> String {
        match self.replies.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) if line.starts_with(prefix) => line[prefix.len()..].trim().to_owned(),
            other => panic!(
                "chaos_writer.py: expected {prefix:?}, got {other:?}; stderr:\n{}",
                super::tail(&self.stderr, 40)
            ),
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| {
                panic!(
                    "chaos_writer.py is gone ({e}); stderr:\n{}",
                    super::tail(&self.stderr, 40)
                )
            });
    }

    /// Stops writing; returns the state of the current files.
    pub fn pause(&mut self) -> WriterState {
        self.send("pause");
        let rest = self.expect_reply("paused");
        let (lines, json) = rest.split_once(' ').expect("paused <n> <json>");
        WriterState {
            lines: lines.parse().expect("line count"),
            files: serde_json::from_str(json).expect("paused state JSON"),
        }
    }

    /// Continues writing after [`ChaosWriter::pause`].
    pub fn resume(&mut self) {
        self.send("resume");
        self.expect_reply("resumed");
    }

    /// While paused: destroys the current files in `mode`
    /// (`truncate_rewrite`, `delete_recreate`, `inode_reuse`), then resumes.
    /// Returns the writer's detail (JSON) of what it did.
    pub fn destroy(&mut self, mode: &str) -> String {
        self.send(&format!("destroy {mode}"));
        self.expect_reply(&format!("destroyed {mode}"))
    }

    /// Stops the writer for good; returns the number of lines written.
    pub fn stop(mut self) -> u64 {
        self.send("stop");
        let n = self.expect_reply("stopped");
        let _ = self.child.wait();
        n.parse().expect("stopped <n>")
    }
}

impl Drop for ChaosWriter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The writer's files at a pause.
#[derive(Debug, Clone)]
pub struct WriterState {
    pub lines: u64,
    /// stream name (`queue_log`, `cdr`) → file state.
    pub files: HashMap<String, FileState>,
}

/// One stream's current file, as the writer knows it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct FileState {
    pub path: String,
    pub gen: u64,
    /// Fingerprint of its first line (None while it is empty).
    pub fp: Option<String>,
    pub size: u64,
    pub missing: bool,
}

/// One line the writer wrote.
#[derive(Debug, Clone)]
pub struct TruthLine {
    pub stream: String,
    pub gen: u64,
    pub fp: String,
    pub off: u64,
    pub call: String,
    pub verb: String,
    /// The epoch written in the line.
    pub epoch: Option<i64>,
    /// Written to a file that had already been renamed (before the reload).
    pub late: bool,
    pub split: bool,
    pub wall: f64,
}

/// A rotation or destruction.
#[derive(Debug, Clone)]
pub struct TruthOp {
    pub stream: String,
    pub mode: String,
    /// The generation (file) the operation moved away or destroyed.
    pub gen: u64,
    pub wall: f64,
    pub detail: serde_json::Value,
}

/// Everything the writer logged.
#[derive(Debug, Default)]
pub struct Truth {
    pub lines: Vec<TruthLine>,
    pub ops: Vec<TruthOp>,
    /// (stream, generation) → what created that file.
    pub created_by: HashMap<(String, u64), String>,
}

impl Truth {
    pub fn read(path: &Path) -> Truth {
        let text = std::fs::read_to_string(path).expect("read the writer's truth log");
        let mut t = Truth::default();
        for (i, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("truth line {}: {e}: {line}", i + 1));
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            let n = |k: &str| v[k].as_u64().unwrap_or_default();
            match v["t"].as_str() {
                Some("line") => t.lines.push(TruthLine {
                    stream: s("stream"),
                    gen: n("gen"),
                    fp: s("fp"),
                    off: n("off"),
                    call: s("call"),
                    verb: s("verb"),
                    epoch: v["epoch"].as_i64(),
                    late: v["late"].as_bool().unwrap_or(false),
                    split: v["split"].as_bool().unwrap_or(false),
                    wall: v["wall"].as_f64().unwrap_or_default(),
                }),
                Some("op") => t.ops.push(TruthOp {
                    stream: s("stream"),
                    mode: s("mode"),
                    gen: n("gen"),
                    wall: v["wall"].as_f64().unwrap_or_default(),
                    detail: v["detail"].clone(),
                }),
                Some("gen") => {
                    t.created_by.insert((s("stream"), n("gen")), s("by"));
                }
                _ => {}
            }
        }
        t
    }
}
