//! File delivery of emails: one RFC 5322 `.eml` file per action id, written
//! atomically and never overwritten, so a crash-and-replay of the same action
//! yields exactly one file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::email::SendOutcome;
use crate::error::SinkError;

/// Prefix of in-progress files; never ends in `.eml`, and is hidden.
const TMP_PREFIX: &str = ".calltrail-tmp-";

/// Temp files older than this are leftovers of a crashed writer.
const STALE_TMP_AGE: Duration = Duration::from_secs(600);

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory receiving one `<token>.eml` file per message.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Create the directory (and parents) and sweep stale temp files.
    pub(crate) fn create(dir: PathBuf) -> Result<Self, SinkError> {
        fs::create_dir_all(&dir).map_err(|source| SinkError::Outbox {
            path: dir.clone(),
            source,
        })?;
        let outbox = Self { dir };
        outbox.sweep_stale_temp_files();
        Ok(outbox)
    }

    /// The outbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the file for a sanitized id token.
    pub(crate) fn path_for(&self, token: &str) -> PathBuf {
        self.dir.join(format!("{token}.eml"))
    }

    /// Write `bytes` to `<token>.eml` unless that file already exists.
    pub(crate) async fn deliver(
        &self,
        token: String,
        bytes: Vec<u8>,
    ) -> Result<SendOutcome, SinkError> {
        let dir = self.dir.clone();
        let target = self.path_for(&token);
        let join_target = target.clone();
        tokio::task::spawn_blocking(move || write_once(&dir, &token, &target, &bytes))
            .await
            .map_err(|join| SinkError::Outbox {
                path: join_target,
                source: io::Error::other(join.to_string()),
            })?
    }

    fn sweep_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                continue;
            }
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= STALE_TMP_AGE);
            if stale {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed stale outbox temp file")
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove stale outbox temp file")
                    }
                }
            }
        }
    }
}

/// Blocking part of [`Outbox::deliver`]: temp file + fsync, then a
/// no-clobber publish (hard link; rename after an existence check where the
/// filesystem has no hard links), then fsync of the directory.
fn write_once(
    dir: &Path,
    token: &str,
    target: &Path,
    bytes: &[u8],
) -> Result<SendOutcome, SinkError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SinkError::Outbox { path, source }
    };
    if fs::symlink_metadata(target).is_ok() {
        return Ok(SendOutcome::AlreadyInOutbox);
    }
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{token}-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_and_publish(&tmp, target, bytes).map_err(io_err(target));
    // Whatever happened, the temp name must not linger (after a successful
    // hard link it is a second name of the target; after a rename it is gone).
    let _ = fs::remove_file(&tmp);
    let outcome = result?;
    if outcome == SendOutcome::Sent {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(outcome)
}

fn write_and_publish(tmp: &Path, target: &Path, bytes: &[u8]) -> io::Result<SendOutcome> {
    {
        let mut file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    match fs::hard_link(tmp, target) {
        Ok(()) => Ok(SendOutcome::Sent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(SendOutcome::AlreadyInOutbox),
        Err(e) => {
            // E.g. a filesystem without hard links: best effort no-clobber.
            tracing::debug!(error = %e, "hard link failed, falling back to rename");
            if fs::symlink_metadata(target).is_ok() {
                return Ok(SendOutcome::AlreadyInOutbox);
            }
            fs::rename(tmp, target)?;
            Ok(SendOutcome::Sent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_once_and_reports_existing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::create(tmp.path().join("a/b")).expect("create");
        let first = outbox
            .deliver("id1".into(), b"one".to_vec())
            .await
            .expect("deliver");
        assert_eq!(first, SendOutcome::Sent);
        let second = outbox
            .deliver("id1".into(), b"two".to_vec())
            .await
            .expect("deliver");
        assert_eq!(second, SendOutcome::AlreadyInOutbox);
        assert_eq!(fs::read(outbox.path_for("id1")).expect("read"), b"one");
        let names: Vec<_> = fs::read_dir(outbox.dir())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("id1.eml")]);
    }

    #[tokio::test]
    async fn concurrent_writers_produce_one_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::create(tmp.path().to_path_buf()).expect("create");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    outbox
                        .deliver("same".into(), format!("writer {i}").into_bytes())
                        .await
                })
            })
            .collect();
        let mut sent = 0;
        for t in tasks {
            if t.await.expect("join").expect("deliver") == SendOutcome::Sent {
                sent += 1;
            }
        }
        assert_eq!(sent, 1);
        assert_eq!(fs::read_dir(outbox.dir()).expect("ls").count(), 1);
    }

    #[test]
    fn sweeps_only_stale_temp_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stale = tmp.path().join(format!("{TMP_PREFIX}x-1-1"));
        let fresh = tmp.path().join(format!("{TMP_PREFIX}x-1-2"));
        let other = tmp.path().join("keep.eml");
        for p in [&stale, &fresh, &other] {
            fs::write(p, b"x").expect("write");
        }
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&stale)
            .and_then(|f| f.set_modified(old))
            .expect("set mtime");
        Outbox::create(tmp.path().to_path_buf()).expect("create");
        assert!(!stale.exists());
        assert!(fresh.exists());
        assert!(other.exists());
    }

    #[test]
    fn create_fails_on_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("f");
        fs::write(&file, b"x").expect("write");
        let err = Outbox::create(file).expect_err("not a dir");
        assert!(matches!(err, SinkError::Outbox { .. }));
    }
}
