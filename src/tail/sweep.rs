//! Rotated files that hold lines the tailer never read, found by looking.
//!
//! Following the live path sees rotation only through that path: a new
//! inode there, or a size below the offset. Some rotations leave no such
//! trace: a file copytruncated before its first line was read (the live
//! file is empty before and after), two rotations between two looks, a
//! restart after a rotation scheme mixed numbered and dated names. So the
//! rotated siblings are also swept: at start, every poll interval, and
//! whenever the directory watch reports a change to one. A sibling not seen
//! before (by device + inode, size and mtime), changed after the run's
//! horizon, whose content is neither what is being read nor what was read
//! to its end in this run, is an *orphan*: it is read from where the
//! store's records of it end (or from its start), next to the live file.
//! Reading something already stored costs time, never correctness: the
//! store drops records it holds.
//!
//! An orphan's batches carry the checkpoint of the file being followed,
//! never their own: a restart finds the orphan again by the same sweep
//! (it changed after the checkpoint's horizon).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::{count_lines, fp_hex, open_meta, read_batch, rotated, Batch, DevIno, Open, Origin};
use super::{Position, Tailer};

/// What the sweep has looked at.
pub(super) struct Sweep {
    /// The rotated files present at the last sweep, by identity: size,
    /// mtime and whether the name says gzip (a `.gz.tmp` renamed to `.gz`
    /// is read differently) when looked at. Unchanged ones are not opened
    /// again.
    scanned: HashMap<DevIno, (u64, SystemTime, bool)>,
    /// A file first met that last changed before this is history (read
    /// before the checkpoint, or `import`'s job).
    horizon: SystemTime,
    last: Option<Instant>,
    /// A sibling changed (directory watch): sweep at the next idle moment.
    pub due: bool,
    /// Contents read to their end in this run.
    done: HashSet<u64>,
}

/// Forget finished contents beyond this many (each is a u64).
const DONE_CAP: usize = 100_000;

impl Sweep {
    pub fn new(horizon: SystemTime) -> Sweep {
        Sweep {
            scanned: HashMap::new(),
            horizon,
            last: None,
            due: true,
            done: HashSet::new(),
        }
    }

    pub fn set_horizon(&mut self, at: SystemTime) {
        self.horizon = at;
    }

    /// The content `fp` was read to its end (nothing to do without one).
    pub fn finished(&mut self, fp: Option<u64>) {
        let Some(fp) = fp else { return };
        if self.done.len() >= DONE_CAP {
            self.done.clear();
        }
        self.done.insert(fp);
    }
}

impl Tailer {
    /// Looks for orphans when due (`force`: now). Returns true when it
    /// found one.
    pub(super) fn sweep(&mut self, force: bool) -> bool {
        let poll_due = self
            .sweep
            .last
            .is_none_or(|t| t.elapsed() >= self.opts.poll);
        if !(force || self.sweep.due || poll_due) {
            return false;
        }
        self.sweep.due = false;
        self.sweep.last = Some(Instant::now());
        let mut seen = HashMap::new();
        let mut changed: Vec<(PathBuf, DevIno)> = Vec::new();
        for path in rotated::matching_paths(&self.path, &self.opts.rotated) {
            let Ok(m) = std::fs::metadata(&path) else {
                continue;
            };
            let id = DevIno::of(&m);
            let stamp = (
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                super::is_gz(&path),
            );
            let before = self.sweep.scanned.get(&id).copied();
            seen.insert(id, stamp);
            if before == Some(stamp) || (before.is_none() && stamp.1 < self.sweep.horizon) {
                continue;
            }
            changed.push((path, id));
        }
        self.sweep.scanned = seen;
        if changed.is_empty() {
            return false;
        }
        let mut reading: HashSet<u64> = self.queue.iter().filter_map(|o| o.fp).collect();
        reading.extend(self.open.as_ref().and_then(|o| o.fp));
        reading.extend(self.live_next.as_ref().and_then(|o| o.fp));
        reading.extend(self.previous.as_ref().and_then(|(o, _)| o.fp));
        reading.extend(self.orphans.iter().filter_map(|o| o.fp));
        let mut known: Option<HashMap<u64, u64>> = None;
        let mut found = false;
        for (path, id) in changed {
            let o = match open_meta(&path, true) {
                Ok(Some((o, _))) => o,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read a rotated file");
                    continue;
                }
            };
            let Some(fp) = o.fp else {
                // First line not complete yet: look again when it changes.
                self.sweep.scanned.remove(&id);
                continue;
            };
            if reading.contains(&fp) || self.sweep.done.contains(&fp) {
                continue;
            }
            if !o.reader.is_gz() && o.head.starts_with(&[0x1f, 0x8b]) {
                // gzip data under another name: an archive being written
                // (`queue_log.1.gz.tmp`); the finished `.gz` is read.
                continue;
            }
            if known.is_none() {
                known = Some(self.opts.known.as_ref().map(|k| k()).unwrap_or_default());
            }
            let from = known
                .as_ref()
                .and_then(|k| k.get(&fp).copied())
                .unwrap_or(0);
            let mut o = o;
            if from > 0 {
                match count_lines(&o.reader, from) {
                    Ok(n) => o.line_no = n,
                    Err(e) => {
                        // A `.gz` still being written: looked at again
                        // when it changes.
                        tracing::warn!(path = %path.display(), error = %e, "cannot read a rotated file");
                        continue;
                    }
                }
            }
            o.offset = from;
            if from == 0 {
                tracing::warn!(path = %path.display(), fp = %fp_hex(fp),
                    "a rotated file holds lines that were never read (rotated before the tailer got to them): reading it");
            } else {
                // Usual after a restart: a file rotated shortly before the
                // checkpoint; most often nothing after `from` is new.
                tracing::info!(path = %path.display(), fp = %fp_hex(fp), from,
                    "reading a rotated file from where its stored records end");
            }
            reading.insert(fp);
            self.orphans.push(o);
            found = true;
        }
        found
    }

    /// The next complete records of an orphan, if any; orphans that were
    /// left alone for the grace period (or all of them, with `once`) are
    /// finished, a trailing partial record included.
    pub(super) fn orphan_batch(&mut self, once: bool) -> Option<Batch> {
        let mut i = 0;
        while i < self.orphans.len() {
            let o = &mut self.orphans[i];
            let read = match read_batch(o, self.opts.framing) {
                Ok(read) => read,
                Err(e) => {
                    // Not the followed file: a broken archive must not stop
                    // the source. Looked at again when it changes.
                    tracing::warn!(error = %e, "giving up a rotated file found by the sweep");
                    self.orphans.swap_remove(i);
                    continue;
                }
            };
            if let Some(mut b) = read {
                b.origin = Origin::Orphan(o.devino);
                b.checkpoint = self
                    .committed
                    .or_else(|| self.followed_position())
                    .unwrap_or(b.checkpoint);
                return Some(b);
            }
            if o.draining {
                let o = self.orphans.swap_remove(i);
                tracing::info!(path = %o.path.display(), "finished a rotated file found by the sweep");
                self.sweep.finished(o.fp);
                continue;
            }
            if once || settled(o, self.opts.grace) {
                o.draining = true;
                continue;
            }
            i += 1;
        }
        None
    }

    /// Where the file being followed stands, when nothing was committed
    /// yet in this run (an orphan's batch commits the checkpoint unchanged).
    fn followed_position(&self) -> Option<Position> {
        self.previous
            .as_ref()
            .map(|(p, _)| p)
            .or(self.open.as_ref())
            .or(self.queue.front())
            .or(self.live_next.as_ref())
            .filter(|o| o.fp.is_some())
            .map(|o| o.position())
    }
}

/// Not written to for `grace`: nothing more is coming.
fn settled(o: &Open, grace: Duration) -> bool {
    o.reader
        .modified()
        .is_none_or(|t| t.elapsed().is_ok_and(|e| e >= grace))
}
