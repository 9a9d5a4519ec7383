//! What each source's reader was last seen doing, shared with the HTTP
//! side: when it last found its file there and readable, when a line last
//! arrived, what it stored. The wallboard calls a source **stale** when its
//! reader has not found its file readable for longer than the source's
//! `stale_after_s` (the file gone or unreadable, the reader stuck or ended).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// One source's status.
#[derive(Debug)]
pub struct SourceStatus {
    pub name: String,
    path: PathBuf,
    pub stale_after: Duration,
    /// Since when it is followed (a source that never found its file is
    /// stale `stale_after` after the start).
    started: SystemTime,
    inner: Mutex<Inner>,
    pub lines: AtomicU64,
    pub events: AtomicU64,
    pub rejects: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// The last time the reader found its file readable.
    last_ok: Option<SystemTime>,
    /// The last time a batch of lines was stored.
    last_line: Option<SystemTime>,
    /// The reader's thread ended (an error, or the daemon stopping).
    ended: bool,
}

impl SourceStatus {
    pub fn new(name: &str, path: PathBuf, stale_after: Duration) -> SourceStatus {
        SourceStatus {
            name: name.to_string(),
            path,
            stale_after,
            started: SystemTime::now(),
            inner: Mutex::new(Inner::default()),
            lines: AtomicU64::new(0),
            events: AtomicU64::new(0),
            rejects: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file followed.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// When the daemon started following it.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// The reader polled: records whether its file is there and readable
    /// (access(2), not an open: opening it would wake the readers that
    /// watch its directory, every poll).
    pub fn polled(&self) {
        let readable = nix::unistd::access(&self.path, nix::unistd::AccessFlags::R_OK).is_ok()
            && self.path.is_file();
        self.checked(readable);
    }

    /// The reader found its file readable (`true`) or not.
    pub fn checked(&self, readable: bool) {
        if readable {
            self.lock().last_ok = Some(SystemTime::now());
        }
    }

    /// A batch was stored.
    pub fn committed(&self, lines: u64, events: u64, rejects: u64) {
        self.lines.fetch_add(lines, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        self.rejects.fetch_add(rejects, Ordering::Relaxed);
        let now = SystemTime::now();
        let mut i = self.lock();
        i.last_ok = Some(now);
        if lines > 0 {
            i.last_line = Some(now);
        }
    }

    /// The reader's thread ended.
    pub fn ended(&self) {
        self.lock().ended = true;
    }

    /// When the reader last found its file readable.
    pub fn last_ok(&self) -> Option<SystemTime> {
        self.lock().last_ok
    }

    /// When a line was last stored.
    pub fn last_line(&self) -> Option<SystemTime> {
        self.lock().last_line
    }

    /// Whether the source is stale at `now` (see the module's doc).
    pub fn stale(&self, now: SystemTime) -> bool {
        let i = self.lock();
        let since = i.last_ok.unwrap_or(self.started);
        i.ended || now.duration_since(since).unwrap_or_default() > self.stale_after
    }
}

/// Every source's status, in config order.
#[derive(Debug, Default)]
pub struct Statuses(pub Vec<Arc<SourceStatus>>);

impl Statuses {
    pub fn get(&self, name: &str) -> Option<Arc<SourceStatus>> {
        self.0.iter().find(|s| s.name == name).cloned()
    }

    /// The names of the sources stale at `now`.
    pub fn stale(&self, now: SystemTime) -> Vec<String> {
        self.0
            .iter()
            .filter(|s| s.stale(now))
            .map(|s| s.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_after_its_threshold_without_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue_log");
        let s = SourceStatus::new("q", path.clone(), Duration::from_secs(5));
        let t0 = SystemTime::now();
        assert!(!s.stale(t0));
        assert!(s.stale(t0 + Duration::from_secs(6)), "never found its file");
        std::fs::write(&path, "").unwrap();
        s.polled();
        assert!(!s.stale(SystemTime::now() + Duration::from_secs(4)));
        assert!(s.stale(SystemTime::now() + Duration::from_secs(6)));
        s.committed(3, 3, 0);
        assert_eq!(s.lines.load(Ordering::Relaxed), 3);
        assert!(s.last_line().is_some());
        s.ended();
        assert!(s.stale(SystemTime::now()));
    }
}
