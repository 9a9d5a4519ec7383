//! Reading a whole file that another program rewrites in place, and waking
//! up when it changes.
//!
//! WinTariff rewrites its `.dbf` while running and an Oktell export may be
//! re-saved at any time, so a read can catch a half-written file. The file
//! is read fully into memory between two `stat`s; when size, mtime, ctime
//! or inode moved during the read (or the bytes read disagree with the
//! size), the read is retried. Only a snapshot that was stable for the whole
//! read is handed on; the live file is never parsed in place.

use crate::tail::watch_dir;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// What `stat` says about the file: equal stats mean "unchanged" (modulo
/// coarse timestamps, for which the source also re-reads periodically).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub len: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub dev: u64,
    pub ino: u64,
}

impl FileStat {
    fn of(m: &std::fs::Metadata) -> FileStat {
        FileStat {
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// A consistent copy of the file.
#[derive(Debug)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub stat: FileStat,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} kept changing while it was read ({attempts} attempts); trying again later", path.display())]
    Unstable { path: PathBuf, attempts: u32 },
}

/// Attempts at a stable read before giving up for this cycle.
const ATTEMPTS: u32 = 5;

/// `stat` of `path`; `None` when it does not exist.
pub fn stat(path: &Path) -> Result<Option<FileStat>, ReadError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(FileStat::of(&m))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReadError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the whole file, retrying while it changes under the read.
/// `Ok(None)` when the file does not exist.
pub fn read_consistent(path: &Path) -> Result<Option<Snapshot>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    for attempt in 0..ATTEMPTS {
        let Some(before) = stat(path)? else {
            return Ok(None);
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let after = stat(path)?;
        if after == Some(before) && bytes.len() as u64 == before.len {
            return Ok(Some(Snapshot {
                bytes,
                stat: before,
            }));
        }
        tracing::debug!(path = %path.display(), attempt, "file changed while being read; reading again");
        std::thread::sleep(Duration::from_millis(20 * (u64::from(attempt) + 1)));
    }
    Err(ReadError::Unstable {
        path: path.to_path_buf(),
        attempts: ATTEMPTS,
    })
}

/// Change notifications for one file, by watching its directory (a watch on
/// the file would follow the old inode after a rename-into-place).
pub struct Watch {
    rx: Option<Receiver<bool>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Watch {
    pub fn new(path: &Path) -> Watch {
        match watch_dir(path) {
            Ok((w, rx)) => Watch {
                rx: Some(rx),
                _watcher: Some(w),
            },
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no change notifications; polling only");
                Watch {
                    rx: None,
                    _watcher: None,
                }
            }
        }
    }

    /// Waits for a notification or `timeout`, whichever comes first.
    pub fn wait(&self, timeout: Duration) {
        match &self.rx {
            Some(rx) => match rx.recv_timeout(timeout) {
                Ok(_) | Err(RecvTimeoutError::Timeout) => while rx.try_recv().is_ok() {},
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
            },
            None => std::thread::sleep(timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stable_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.dbf");
        assert!(read_consistent(&p).unwrap().is_none());
        std::fs::write(&p, b"abc").unwrap();
        let s = read_consistent(&p).unwrap().unwrap();
        assert_eq!(s.bytes, b"abc");
        assert_eq!(s.stat.len, 3);
        assert_eq!(stat(&p).unwrap(), Some(s.stat));
    }
}
