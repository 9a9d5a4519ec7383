//! Following a log file as it grows: notify for promptness, polling as the
//! fallback and the safety net, explicit offsets so nothing is read twice.
//!
//! The tailer reads with `pread` at explicit offsets and only advances when
//! the consumer says a batch was committed, so a failed commit is simply
//! retried. It holds a partial last record until its newline comes. Each
//! batch carries the checkpoint to commit with it: the oldest position not
//! yet fully read, so after a crash reading resumes there (at worst some
//! lines are read again, and their deterministic ids make that a no-op).
//!
//! Files are identified by the fingerprint of their first line (with device
//! + inode as tie-breaker), never by name. Rotation handling:
//! - **rename + create** (logrotate `create`, Asterisk `logger rotate`): the
//!   old file is read to its end, then kept open for a grace period for late
//!   writes (Asterisk writes to its open fd until `logger reload`), while
//!   the new file is read; files rotated in between are found by identity.
//! - **copytruncate / truncate / rewrite** (size below the offset, or the
//!   first line changed): the rest of the old content is read from the copy
//!   when one is among the rotated files, then the file from the start.
//! - **delete + recreate, inode reuse**: the new content has a new identity.
//! - **restart after rotation**: the checkpointed file is found among the
//!   rotated files (`<path>.*`, `<path>-*`, `.gz` included), finished, and
//!   the files rotated after it are read before the live one.
//! - **rotations that leave no trace at the path** (a file copytruncated
//!   before its first line was read, two rotations between two looks): the
//!   rotated siblings are swept for content never read (`sweep`).

mod identity;
mod reader;
mod rotated;
mod split;
pub mod status;
mod sweep;

pub use identity::{fnv1a, fp_hex, DevIno};
pub use reader::{is_gz, Reader};
pub use rotated::{default_patterns, rotation_order};
pub use split::{memchr_nl, split_records, Framing, Line, Split};

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Upper bound on one record; longer ones are cut into a reject-sized piece
/// instead of growing memory without bound.
pub const MAX_LINE: usize = calltrail_parsers::queue_log::MAX_LINE_LEN;
const READ_CHUNK: usize = 1 << 20;
const MAX_BATCH_LINES: usize = 20_000;

/// A read position in an identified file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub file_fp: u64,
    pub devino: Option<DevIno>,
    pub offset: u64,
    pub line_no: u64,
}

/// Records read from one file, and the position just after them.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Fingerprint of the file the records come from (part of event ids).
    pub file_fp: u64,
    pub devino: DevIno,
    /// The file's first line (CSV sources with a header row need it when
    /// reading starts in the middle).
    pub head: Arc<Vec<u8>>,
    pub lines: Vec<Line>,
    pub end_offset: u64,
    pub end_line_no: u64,
    /// What to store as the source's checkpoint when this batch commits.
    pub checkpoint: Position,
    origin: Origin,
}

/// Which open file a batch was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The file being followed (live, or a queued rotated one).
    Followed,
    /// The file rotated away last, still watched for late writes.
    Previous,
    /// A rotated file found by the sweep.
    Orphan(DevIno),
}

impl Batch {
    /// A batch of `lines` read from a whole file (imports): its checkpoint
    /// is the end of the batch.
    pub fn new(
        file_fp: u64,
        devino: DevIno,
        head: Arc<Vec<u8>>,
        lines: Vec<Line>,
        end_offset: u64,
        end_line_no: u64,
    ) -> Batch {
        Batch {
            file_fp,
            devino,
            head,
            lines,
            end_offset,
            end_line_no,
            checkpoint: Position {
                file_fp,
                devino: Some(devino),
                offset: end_offset,
                line_no: end_line_no,
            },
            origin: Origin::Followed,
        }
    }
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

/// How a source is followed.
#[derive(Clone)]
pub struct TailOptions {
    /// Re-check interval when no change notification arrives.
    pub poll: Duration,
    pub framing: Framing,
    /// Glob patterns of rotated files (see [`default_patterns`]).
    pub rotated: Vec<String>,
    /// How long a rotated-away file is still watched for late writes.
    pub grace: Duration,
    /// What the store already holds: per file fingerprint, the offset of the
    /// last record stored. Asked only when the file last read is gone, to
    /// read every rotated file from where its stored records end.
    pub known: Option<KnownFiles>,
    /// Called after every poll that did not fail (the source's status).
    pub on_poll: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// See [`TailOptions::known`].
pub type KnownFiles = Arc<dyn Fn() -> std::collections::HashMap<u64, u64> + Send + Sync>;

impl TailOptions {
    pub fn new(path: &Path, poll: Duration, framing: Framing) -> TailOptions {
        TailOptions {
            poll,
            framing,
            rotated: default_patterns(path),
            grace: Duration::from_secs(30),
            known: None,
            on_poll: None,
        }
    }
}

struct Open {
    reader: Reader,
    path: PathBuf,
    /// The file at the followed path (not a rotated one being finished).
    live: bool,
    devino: DevIno,
    fp: Option<u64>,
    head: Arc<Vec<u8>>,
    offset: u64,
    line_no: u64,
    /// Nothing more will be written: a trailing record without its newline
    /// is complete.
    draining: bool,
}

impl Open {
    fn position(&self) -> Position {
        Position {
            file_fp: self.fp.unwrap_or_default(),
            devino: Some(self.devino),
            offset: self.offset,
            line_no: self.line_no,
        }
    }
}

/// Follows one path.
pub struct Tailer {
    path: PathBuf,
    opts: TailOptions,
    open: Option<Open>,
    /// Rotated files still to read before the live one, opened when the
    /// plan was made (a rename meanwhile changes nothing).
    queue: VecDeque<Open>,
    /// The file that was at the path when the plan was made, and where to
    /// start in it.
    live_next: Option<Open>,
    /// Files last modified before this were read (or are history that
    /// `import` is for): a rotated file the store has never seen is only
    /// read when it changed after it.
    seen_until: Option<std::time::SystemTime>,
    /// The file rotated away last, watched for late writes until the deadline.
    previous: Option<(Open, Instant)>,
    /// Rotated files found by the sweep, read next to the followed one.
    orphans: Vec<Open>,
    sweep: sweep::Sweep,
    /// The checkpoint last committed (or started from).
    committed: Option<Position>,
    start: Option<Position>,
    /// Wakes on changes in the directory; `true` for a rotated sibling.
    wake: Option<Receiver<bool>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TailError + '_ {
    move |source| TailError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Tailer {
    /// `start` is the committed checkpoint, if any. Without one, the live
    /// file is read from its start (history in rotated files is `import`'s job).
    pub fn new(path: &Path, opts: TailOptions, start: Option<Position>) -> Tailer {
        let (watcher, wake) = match watch_dir(path) {
            Ok((w, rx)) => (Some(w), Some(rx)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no change notifications; polling only");
                (None, None)
            }
        };
        Tailer {
            path: path.to_path_buf(),
            opts,
            open: None,
            queue: VecDeque::new(),
            live_next: None,
            seen_until: None,
            previous: None,
            orphans: Vec::new(),
            sweep: sweep::Sweep::new(std::time::SystemTime::now()),
            committed: start,
            start,
            wake,
            _watcher: watcher,
        }
    }

    /// When the checkpoint was written (see `seen_until`), less the margin
    /// of [`Tailer::recently`]: the checkpoint's time moves with every
    /// commit, also while a file rotated away is still followed, so a file
    /// changed shortly before it may never have been read. (Reading one
    /// that was cannot double anything: the store skips what it holds.)
    pub fn with_checkpoint_time(mut self, at: Option<std::time::SystemTime>) -> Tailer {
        let margin = self.margin();
        self.seen_until = at.map(|t| t.checked_sub(margin).unwrap_or(std::time::UNIX_EPOCH));
        if let Some(t) = self.seen_until {
            self.sweep.set_horizon(t);
        }
        self
    }

    /// Reads until `stop` is set, or, with `once`, until everything is read
    /// to its end. `consume` is called for every batch.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        once: bool,
        mut consume: impl FnMut(&Batch) -> Verdict,
    ) -> Result<(), TailError> {
        let mut backoff = Duration::from_millis(100);
        while !stop.load(Ordering::Relaxed) {
            match self.next_batch(once)? {
                Some(batch) => match consume(&batch) {
                    Verdict::Committed => {
                        self.advance(&batch);
                        backoff = Duration::from_millis(100);
                    }
                    Verdict::Retry => {
                        // A stop does not wait for the backoff to end.
                        let until = Instant::now() + backoff;
                        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                },
                None => {
                    if let Some(f) = &self.opts.on_poll {
                        f();
                    }
                    if self.check_rotation()? || self.sweep(once) {
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

    fn wait(&mut self) {
        let mut timeout = self.opts.poll;
        if let Some((_, deadline)) = &self.previous {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        match &self.wake {
            Some(rx) => match rx.recv_timeout(timeout) {
                Ok(mut sibling) => {
                    // Drain bursts of notifications into one wake-up.
                    while let Ok(s) = rx.try_recv() {
                        sibling |= s;
                    }
                    self.sweep.due |= sibling;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
            },
            None => std::thread::sleep(timeout),
        }
    }

    /// Opens the next file to read, if nothing is open: a queued rotated
    /// file, else the live one (after planning from the start checkpoint).
    fn ensure_open(&mut self) -> Result<bool, TailError> {
        if self.open.is_some() {
            return Ok(true);
        }
        if let Some(start) = self.start.take() {
            self.replan(start, true)?;
        }
        if let Some(o) = self.queue.pop_front() {
            tracing::info!(path = %o.path.display(), offset = o.offset, "reading a rotated file");
            self.open = Some(o);
            return Ok(true);
        }
        let mut o = match self.live_next.take() {
            Some(o) => o,
            None => match open_file(&self.path).map_err(io_err(&self.path))? {
                Some(o) => o,
                None => return Ok(false),
            },
        };
        o.live = true;
        tracing::info!(path = %self.path.display(), offset = o.offset, "following file");
        self.open = Some(o);
        Ok(true)
    }

    /// Decides what to read for a reader that stopped at `start`: the live
    /// file from there when it is still that file, else the file among the
    /// rotated ones and every file rotated after it, then the live file.
    fn replan(&mut self, start: Position, report_missing: bool) -> Result<(), TailError> {
        self.queue.clear();
        self.live_next = None;
        let mut live = match open_file(&self.path) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the live file");
                None
            }
        };
        let live_fp = live.as_ref().and_then(|o| o.fp);
        if let Some(o) = live.as_mut() {
            let len = o.reader.size().unwrap_or(0);
            if o.fp == Some(start.file_fp) && len >= start.offset {
                o.offset = start.offset;
                o.line_no = start.line_no;
                self.live_next = live;
                return Ok(());
            }
        }
        let mut opened = open_candidates(&self.path, &self.opts.rotated);
        let cands: Vec<rotated::Candidate> = opened.iter().map(|(c, _)| c.clone()).collect();
        match rotated::plan(
            &cands,
            start.file_fp,
            start.devino,
            start.offset,
            start.line_no,
            live_fp,
        ) {
            Some(plan) => {
                for p in plan {
                    if let Some(i) = opened.iter().position(|(c, _)| c.path == p.path) {
                        let (_, mut o) = opened.swap_remove(i);
                        o.offset = p.offset;
                        o.line_no = p.line_no;
                        self.queue.push_back(o);
                    }
                }
            }
            None => {
                // The file last read is gone (deleted, or truncated without
                // a copy). Whatever it held past the checkpoint is lost, but
                // files rotated since must not be: read every rotated file
                // and the live one from where the store's records end.
                let known = self.opts.known.as_ref().map(|k| k());
                if report_missing || known.is_some() {
                    tracing::warn!(
                        path = %self.path.display(),
                        checkpoint_fp = %fp_hex(start.file_fp),
                        offset = start.offset,
                        patterns = ?self.opts.rotated,
                        "the file last read is neither at the path nor among the rotated files: \
                         reading every rotated file from where the stored records end (anything \
                         written to the lost file after the checkpoint cannot be recovered)"
                    );
                }
                if let Some(known) = known {
                    let mut order: Vec<&rotated::Candidate> = cands.iter().collect();
                    order.sort_by(|a, b| {
                        a.mtime
                            .cmp(&b.mtime)
                            .then_with(|| rotation_order(&a.path, &b.path))
                    });
                    let mut seen = Vec::new();
                    for c in order {
                        if Some(c.fp) == live_fp || seen.contains(&c.fp) {
                            continue;
                        }
                        seen.push(c.fp);
                        let from = match known.get(&c.fp) {
                            Some(&from) => from,
                            // Never seen, and older than what was read:
                            // history, not something missed.
                            None if self.seen_until.is_some_and(|t| c.mtime < t) => continue,
                            None => 0,
                        };
                        if let Some(i) = opened.iter().position(|(x, _)| x.path == c.path) {
                            let (_, mut o) = opened.swap_remove(i);
                            if from > 0 {
                                o.line_no = count_lines(&o.reader, from).unwrap_or(0);
                            }
                            o.offset = from;
                            self.queue.push_back(o);
                        }
                    }
                    if let (Some(o), Some(fp)) = (live.as_mut(), live_fp) {
                        if let Some(&from) = known.get(&fp) {
                            o.line_no = count_lines(&o.reader, from).unwrap_or(0);
                            o.offset = from;
                        }
                    }
                }
            }
        }
        self.live_next = live;
        // What the plan reads from its start needs no orphan next to it.
        let planned: Vec<u64> = self.queue.iter().filter_map(|o| o.fp).collect();
        self.orphans
            .retain(|o| !o.fp.is_some_and(|fp| planned.contains(&fp)));
        Ok(())
    }

    /// How far before a moment known to be read up to a file may still have
    /// been written unread: a rotated file's grace, twice, a poll and a
    /// minute.
    fn margin(&self) -> Duration {
        self.opts.grace * 2 + self.opts.poll + Duration::from_secs(60)
    }

    /// A moment safely before anything not read yet was written (for
    /// replans while running: the file in hand was read up to now).
    fn recently(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
            .checked_sub(self.margin())
            .unwrap_or(std::time::UNIX_EPOCH)
    }

    /// Complete records after the current offset, if any: late lines of
    /// the file rotated away first, then the current file.
    fn next_batch(&mut self, once: bool) -> Result<Option<Batch>, TailError> {
        if let Some(b) = self.previous_batch(once)? {
            return Ok(Some(b));
        }
        if let Some(b) = self.orphan_batch(once) {
            return Ok(Some(b));
        }
        if !self.ensure_open()? {
            return Ok(None);
        }
        let prev_pos = self.previous.as_ref().map(|(p, _)| p.position());
        let Some(o) = self.open.as_mut() else {
            return Ok(None);
        };
        let Some(mut b) = read_batch(o, self.opts.framing)? else {
            return Ok(None);
        };
        // While the previous file may still get lines, the checkpoint stays
        // there: a crash then re-reads (harmlessly) rather than loses.
        if let Some(p) = prev_pos {
            b.checkpoint = p;
        }
        Ok(Some(b))
    }

    fn previous_batch(&mut self, once: bool) -> Result<Option<Batch>, TailError> {
        let Some((p, deadline)) = self.previous.as_mut() else {
            return Ok(None);
        };
        let expired = once || Instant::now() >= *deadline;
        p.draining = expired;
        if let Some(mut b) = read_batch(p, self.opts.framing)? {
            b.origin = Origin::Previous;
            return Ok(Some(b));
        }
        if expired {
            tracing::debug!(path = %p.path.display(), "done with the rotated file");
            self.sweep.finished(p.fp);
            self.previous = None;
        }
        Ok(None)
    }

    fn advance(&mut self, b: &Batch) {
        self.committed = Some(b.checkpoint);
        let target = match b.origin {
            Origin::Previous => self.previous.as_mut().map(|(p, _)| p),
            Origin::Followed => self.open.as_mut(),
            Origin::Orphan(id) => self.orphans.iter_mut().find(|o| o.devino == id),
        };
        if let Some(o) = target {
            o.offset = b.end_offset;
            o.line_no = b.end_line_no;
        }
    }

    /// At the end of the open file: was it rotated, truncated or rewritten?
    /// Returns true when the tailer switched files, rewound, or has more
    /// to read.
    fn check_rotation(&mut self) -> Result<bool, TailError> {
        let Some(o) = self.open.as_mut() else {
            return Ok(false);
        };
        if !o.live {
            // A rotated file read to its end: flush a trailing partial
            // record, then go on with the next file.
            if !o.draining {
                o.draining = true;
                return Ok(true);
            }
            tracing::info!(path = %o.path.display(), "finished a rotated file");
            self.sweep.finished(o.fp);
            self.open = None;
            return Ok(true);
        }
        let len = o.reader.size().map_err(io_err(&self.path))?;
        let head_now = if len < o.offset {
            None
        } else {
            o.reader
                .first_line_fp(MAX_LINE)
                .map_err(io_err(&self.path))?
        };
        if len < o.offset || (o.fp.is_some() && head_now.is_some() && head_now != o.fp) {
            tracing::warn!(path = %self.path.display(), offset = o.offset, size = len,
                "file truncated or rewritten; finishing the old content from a copy if one was kept, then reading it from the start");
            let start = o.position();
            self.open = None;
            self.seen_until = Some(self.recently());
            self.replan(start, false)?;
            return Ok(true);
        }
        let current = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(_) => return Ok(false), // gone for now; keep the old file until a new one appears
        };
        if DevIno::of(&current) == o.devino {
            return Ok(false);
        }
        // Every complete record of the old file is read (next_batch found
        // none); a trailing partial one is flushed when the grace period ends.
        tracing::info!(path = %self.path.display(), "file rotated; switching to the new file");
        let Some(old) = self.open.take() else {
            return Ok(false);
        };
        let start = old.position();
        if old.fp.is_some() {
            self.previous = Some((old, Instant::now() + self.opts.grace));
        }
        self.seen_until = Some(self.recently());
        self.replan(start, false)?;
        // The old file is followed as `previous`; don't read it again by name.
        if let Some(front) = self.queue.front() {
            if front.fp == Some(start.file_fp) {
                self.queue.pop_front();
            }
        }
        Ok(true)
    }
}

/// Opens `path` with its identity; `Ok(None)` when it does not exist.
fn open_file(path: &Path) -> std::io::Result<Option<Open>> {
    Ok(open_meta(path, false)?.map(|(o, _)| o))
}

/// Lines (newlines) before `offset`.
fn count_lines(r: &Reader, offset: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut pos, mut n) = (0u64, 0u64);
    while pos < offset {
        let want = ((offset - pos) as usize).min(buf.len());
        let got = r.read_at(&mut buf[..want], pos)?;
        if got == 0 {
            break;
        }
        n += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
        pos += got as u64;
    }
    Ok(n)
}

/// Opens `path` and reads its identity, all from one file descriptor (a
/// rename meanwhile cannot mix two files); also returns its mtime.
fn open_meta(path: &Path, lazy_gz: bool) -> std::io::Result<Option<(Open, std::time::SystemTime)>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    let (reader, (fp, head)) = if is_gz(path) && lazy_gz {
        let head = Reader::gz_head(&file, MAX_LINE)?;
        (Reader::Gz(file, std::sync::OnceLock::new()), head)
    } else if is_gz(path) {
        let r = Reader::Gz(file, std::sync::OnceLock::new());
        let head = read_head(&r)?;
        (r, head)
    } else {
        let r = Reader::File(file);
        let head = read_head(&r)?;
        (r, head)
    };
    Ok(Some((
        Open {
            reader,
            path: path.to_path_buf(),
            live: false,
            devino: DevIno::of(&meta),
            fp,
            head: Arc::new(head),
            offset: 0,
            line_no: 0,
            draining: false,
        },
        mtime,
    )))
}

/// The rotated siblings, opened: identity and content come from the same
/// descriptor, so a file renamed during planning is still the file planned.
fn open_candidates(live: &Path, patterns: &[String]) -> Vec<(rotated::Candidate, Open)> {
    let mut out = Vec::new();
    for path in rotated::matching_paths(live, patterns) {
        match open_meta(&path, true) {
            Ok(Some((o, mtime))) => {
                if let Some(fp) = o.fp {
                    let c = rotated::Candidate {
                        gz: is_gz(&path),
                        devino: o.devino,
                        mtime,
                        fp,
                        path,
                    };
                    out.push((c, o));
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a rotated file")
            }
        }
    }
    out
}

/// The first complete line and its fingerprint (`None` while incomplete).
fn read_head(r: &Reader) -> std::io::Result<(Option<u64>, Vec<u8>)> {
    let mut buf = vec![0u8; 4096];
    let mut have = 0usize;
    loop {
        let n = r.read_at(&mut buf[have..], have as u64)?;
        if let Some(i) = memchr_nl(&buf[have..have + n]) {
            buf.truncate(have + i + 1);
            return Ok((Some(identity::first_line_fp(&buf)), buf));
        }
        have += n;
        if n == 0 || have >= MAX_LINE {
            buf.truncate(have);
            let fp = (have >= MAX_LINE).then(|| identity::first_line_fp(&buf));
            return Ok((fp, buf));
        }
        buf.resize(have + 4096, 0);
    }
}

/// The complete records after `o.offset`, if any.
fn read_batch(o: &mut Open, framing: Framing) -> Result<Option<Batch>, TailError> {
    let len = o.reader.size().unwrap_or(0);
    if len <= o.offset {
        return Ok(None);
    }
    if o.fp.is_none() {
        let (fp, head) = read_head(&o.reader).map_err(io_err(&o.path))?;
        if fp.is_none() && !o.draining {
            return Ok(None); // first line not complete yet
        }
        o.fp = Some(fp.unwrap_or_else(|| identity::first_line_fp(&head)));
        o.head = Arc::new(head);
    }
    let fp = o.fp.unwrap_or_default();
    let want = ((len - o.offset) as usize).min(READ_CHUNK.max(MAX_LINE + 1));
    let mut buf = vec![0u8; want];
    let n = o
        .reader
        .read_at(&mut buf, o.offset)
        .map_err(io_err(&o.path))?;
    buf.truncate(n);
    if o.fp.is_some() && matches!(o.reader, Reader::File(_)) {
        // Truncated (copytruncate) or rewritten while we were behind: these
        // bytes may be new content at an old offset. For the live file,
        // check_rotation finishes the old content from the copy; a rotated
        // file overwritten in place (`cp f f.1` onto an old `f.1`) is no
        // longer the content it was opened as, and the sweep meets the new
        // content as a changed file.
        let (now_fp, _) = read_head(&o.reader).map_err(io_err(&o.path))?;
        if now_fp != o.fp {
            return Ok(None);
        }
    }
    let eof = o.draining && o.offset + n as u64 >= len;
    let s = split_records(
        &buf,
        o.offset,
        o.line_no,
        MAX_BATCH_LINES,
        MAX_LINE,
        framing,
        eof,
    );
    if s.lines.is_empty() {
        return Ok(None);
    }
    let end_offset = o.offset + s.used as u64;
    Ok(Some(Batch {
        file_fp: fp,
        devino: o.devino,
        head: o.head.clone(),
        lines: s.lines,
        end_offset,
        end_line_no: s.line_no,
        checkpoint: Position {
            file_fp: fp,
            devino: Some(o.devino),
            offset: end_offset,
            line_no: s.line_no,
        },
        origin: Origin::Followed,
    }))
}

/// Watches the directory (a file watch would follow the old inode after a
/// rename); wakes on any change to `path` or a sibling whose name starts
/// with it (rotated copies).
/// Sends `true` when the change was not to `path` itself.
pub fn watch_dir(path: &Path) -> notify::Result<(notify::RecommendedWatcher, Receiver<bool>)> {
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
            // Opening or closing a file changes nothing in it; reacting to
            // it wakes the reader on its own opens (a busy loop).
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            let ours = ev.paths.is_empty()
                || ev.paths.iter().any(|p| {
                    p.file_name().zip(name.as_ref()).is_some_and(|(n, ours)| {
                        n.as_encoded_bytes().starts_with(ours.as_encoded_bytes())
                    })
                });
            if ours {
                let sibling = ev.paths.is_empty()
                    || ev.paths.iter().any(|p| p.file_name() != name.as_deref());
                let _ = tx.send(sibling);
            }
        }
    })?;
    w.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok((w, rx))
}

/// Shared stop flag.
pub type StopFlag = Arc<AtomicBool>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn reading_the_file_wakes_no_one_writing_it_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue_log");
        std::fs::write(&path, "a\n").expect("write");
        let (_w, rx) = watch_dir(&path).expect("watch");
        while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
        // Opening and reading it (as a status check or a reader does):
        // nothing changed, nothing to wake for.
        for _ in 0..3 {
            let mut s = String::new();
            std::fs::File::open(&path)
                .and_then(|mut f| f.read_to_string(&mut s))
                .expect("read");
        }
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "an open or a read woke the watcher (a reader would spin on its own reads)"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"b\n"))
            .expect("append");
        assert!(
            rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "an append must wake it"
        );
    }
}
