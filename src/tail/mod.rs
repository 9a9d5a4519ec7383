//! Following a log file as it grows: notify for promptness, polling as the
//! fallback and the safety net, explicit offsets so nothing is read twice.
//!
//! The tailer reads with `pread` at an explicit offset and only advances its
//! position when the consumer says a batch was committed, so a failed commit
//! is simply retried. It holds a partial last line until its newline comes.
//! It follows rename+create rotation (the old file is read to its end before
//! switching), copytruncate (size below the offset), and delete+recreate.
//!
//! Not yet handled (issue 4): finding the checkpointed file among rotated
//! archives after a restart, and `.gz` archives.

mod identity;

pub use identity::{fnv1a, fp_hex, DevIno};

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Upper bound on one line; longer ones are cut into a reject-sized piece
/// instead of growing memory without bound.
pub const MAX_LINE: usize = calltrail_parsers::queue_log::MAX_LINE_LEN;
const READ_CHUNK: usize = 1 << 20;
const MAX_BATCH_LINES: usize = 20_000;

/// One complete line and where it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub offset: u64,
    pub line_no: u64,
    pub bytes: Vec<u8>,
}

/// Lines read from one file, and the position just after them.
#[derive(Debug, Clone)]
pub struct Batch {
    pub file_fp: u64,
    pub devino: DevIno,
    pub lines: Vec<Line>,
    pub end_offset: u64,
    pub end_line_no: u64,
}

/// Where to start reading.
#[derive(Debug, Clone)]
pub struct StartAt {
    pub file_fp: u64,
    pub offset: u64,
    pub line_no: u64,
}

/// What the consumer did with a batch.
pub enum Verdict {
    /// Committed: advance past it.
    Committed,
    /// Not committed (store error): the same lines are offered again later.
    Retry,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Open {
    file: File,
    devino: DevIno,
    fp: Option<u64>,
    offset: u64,
    line_no: u64,
    /// The path now names another file: what is left here, even without a
    /// final newline, is this file's last line.
    draining: bool,
}

/// Follows one path.
pub struct Tailer {
    path: PathBuf,
    poll: Duration,
    open: Option<Open>,
    start: Option<StartAt>,
    wake: Option<Receiver<()>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Tailer {
    /// `start` is the committed checkpoint, if any: it is honoured when the
    /// file at `path` still has the same first line, else reading starts at 0.
    pub fn new(path: &Path, poll: Duration, start: Option<StartAt>) -> Tailer {
        let (watcher, wake) = match watch_dir(path) {
            Ok((w, rx)) => (Some(w), Some(rx)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no change notifications; polling only");
                (None, None)
            }
        };
        Tailer {
            path: path.to_path_buf(),
            poll,
            open: None,
            start,
            wake,
            _watcher: watcher,
        }
    }

    /// Reads until `stop` is set, or, with `once`, until the file is read to
    /// its end. `consume` is called for every batch.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        once: bool,
        mut consume: impl FnMut(&Batch) -> Verdict,
    ) -> Result<(), TailError> {
        let mut backoff = Duration::from_millis(100);
        while !stop.load(Ordering::Relaxed) {
            match self.next_batch()? {
                Some(batch) => match consume(&batch) {
                    Verdict::Committed => {
                        self.advance(&batch);
                        backoff = Duration::from_millis(100);
                        continue;
                    }
                    Verdict::Retry => {
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
                None => {
                    if self.check_rotation()? {
                        continue;
                    }
                    if once {
                        return Ok(());
                    }
                    self.wait();
                }
            }
        }
        Ok(())
    }

    fn wait(&self) {
        match &self.wake {
            Some(rx) => match rx.recv_timeout(self.poll) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {
                    // Drain bursts of notifications into one wake-up.
                    while rx.try_recv().is_ok() {}
                }
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(self.poll),
            },
            None => std::thread::sleep(self.poll),
        }
    }

    fn io(&self, source: std::io::Error) -> TailError {
        TailError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens the file at `path` if nothing is open yet.
    fn ensure_open(&mut self) -> Result<bool, TailError> {
        if self.open.is_some() {
            return Ok(true);
        }
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.io(e)),
        };
        let meta = file.metadata().map_err(|e| self.io(e))?;
        let fp = read_first_line_fp(&file).map_err(|e| self.io(e))?;
        let mut o = Open {
            file,
            devino: DevIno::of(&meta),
            fp,
            offset: 0,
            line_no: 0,
            draining: false,
        };
        if let Some(start) = self.start.take() {
            match fp {
                Some(fp) if fp == start.file_fp && start.offset <= meta.len() => {
                    o.offset = start.offset;
                    o.line_no = start.line_no;
                }
                Some(_) | None => tracing::warn!(
                    path = %self.path.display(),
                    checkpoint_fp = %fp_hex(start.file_fp),
                    "the file was replaced since the checkpoint; reading it from the start \
                     (lines appended to the old file after the checkpoint are not recovered yet)"
                ),
            }
        }
        tracing::info!(path = %self.path.display(), offset = o.offset, "following file");
        self.open = Some(o);
        Ok(true)
    }

    /// Complete lines after the current offset, if any.
    fn next_batch(&mut self) -> Result<Option<Batch>, TailError> {
        if !self.ensure_open()? {
            return Ok(None);
        }
        let Some(o) = self.open.as_mut() else {
            return Ok(None);
        };
        let len = o.file.metadata().map(|m| m.len()).unwrap_or(0);
        if len <= o.offset {
            return Ok(None);
        }
        if o.fp.is_none() {
            o.fp = read_first_line_fp(&o.file).map_err(|source| TailError::Io {
                path: self.path.clone(),
                source,
            })?;
            if o.fp.is_none() {
                return Ok(None); // first line not complete yet
            }
        }
        let fp = o.fp.unwrap_or_default();
        let want = ((len - o.offset) as usize).min(READ_CHUNK.max(MAX_LINE + 1));
        let mut buf = vec![0u8; want];
        let n = read_full_at(&o.file, &mut buf, o.offset).map_err(|source| TailError::Io {
            path: self.path.clone(),
            source,
        })?;
        buf.truncate(n);
        let (lines, pos, line_no) =
            split_lines(&buf, o.offset, o.line_no, MAX_BATCH_LINES, o.draining);
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch {
            file_fp: fp,
            devino: o.devino,
            end_offset: o.offset + pos as u64,
            end_line_no: line_no,
            lines,
        }))
    }

    fn advance(&mut self, b: &Batch) {
        if let Some(o) = self.open.as_mut() {
            o.offset = b.end_offset;
            o.line_no = b.end_line_no;
        }
    }

    /// At the end of the open file: has it been rotated or truncated?
    /// Returns true when the tailer switched files or rewound.
    fn check_rotation(&mut self) -> Result<bool, TailError> {
        let Some(o) = self.open.as_mut() else {
            return Ok(false);
        };
        let open_len = o.file.metadata().map(|m| m.len()).unwrap_or(0);
        if open_len < o.offset {
            tracing::warn!(path = %self.path.display(), offset = o.offset, size = open_len, "file truncated; reading it again from the start");
            o.offset = 0;
            o.line_no = 0;
            o.fp = read_first_line_fp(&o.file).map_err(|source| TailError::Io {
                path: self.path.clone(),
                source,
            })?;
            return Ok(true);
        }
        let current = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(_) => return Ok(false), // gone for now; keep the old file until a new one appears
        };
        if DevIno::of(&current) != o.devino {
            if open_len > o.offset {
                // Finish the old file's unterminated last line first.
                o.draining = true;
                return Ok(true);
            }
            tracing::info!(path = %self.path.display(), "file rotated; switching to the new file");
            self.open = None;
            return Ok(true);
        }
        Ok(false)
    }
}

/// Splits the lines out of `buf`, which starts at file offset `base` after
/// `line_no` lines. A trailing piece without a newline is a line only when
/// `eof` says the file is finished, or when it is already longer than
/// [`MAX_LINE`] (it is handed on, to be rejected, rather than awaited
/// forever). Returns the lines, the bytes consumed and the last line number.
pub fn split_lines(
    buf: &[u8],
    base: u64,
    mut line_no: u64,
    max_lines: usize,
    eof: bool,
) -> (Vec<Line>, usize, u64) {
    let mut lines = Vec::new();
    let mut pos = 0usize;
    while lines.len() < max_lines && pos < buf.len() {
        let end = match memchr_nl(&buf[pos..]) {
            Some(i) => pos + i + 1,
            None if eof => buf.len(),
            None if buf.len() - pos > MAX_LINE => pos + MAX_LINE + 1,
            None => break,
        };
        line_no += 1;
        lines.push(Line {
            offset: base + pos as u64,
            line_no,
            bytes: buf[pos..end].to_vec(),
        });
        pos = end;
    }
    (lines, pos, line_no)
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn read_full_at(f: &File, buf: &mut [u8], mut off: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], off) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                off += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Fingerprint of the first complete line, or `None` while it is incomplete.
fn read_first_line_fp(f: &File) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0u8; 4096];
    let mut have = 0usize;
    loop {
        let n = read_full_at(f, &mut buf[have..], have as u64)?;
        if let Some(i) = memchr_nl(&buf[have..have + n]) {
            return Ok(Some(identity::first_line_fp(&buf[..have + i + 1])));
        }
        have += n;
        if n == 0 || have >= MAX_LINE {
            // No newline yet; or an absurd first line: fingerprint what exists
            // once it is that long, so the file is not stuck forever.
            return Ok((have >= MAX_LINE).then(|| identity::first_line_fp(&buf[..have])));
        }
        buf.resize(have + 4096, 0);
    }
}

/// Watches the directory (a file watch would follow the old inode after a rename).
fn watch_dir(path: &Path) -> notify::Result<(notify::RecommendedWatcher, Receiver<()>)> {
    use notify::{RecursiveMode, Watcher};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let name = path.file_name().map(|n| n.to_os_string());
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let ours = ev.paths.is_empty()
                || ev
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == name);
            if ours {
                let _ = tx.send(());
            }
        }
    })?;
    w.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok((w, rx))
}

/// Shared stop flag.
pub type StopFlag = Arc<AtomicBool>;
