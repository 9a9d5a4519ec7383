//! The folder "gateway": one file per message, for a human or a script (or
//! a test) to pick up.
//!
//! # The file
//!
//! `<dir>/<name>.sms`, where `<name>` is the message id made a safe file
//! name (only `[A-Za-z0-9._-]` kept, anything else `_`, at most 100 bytes;
//! when anything changed, `-` and a 16-hex-digit hash of the id follow, so
//! distinct ids stay distinct). Its content, UTF-8:
//!
//! ```text
//! To: +79161234567
//! From: Shop
//! Id: rule:missed:sms:+79161234567
//!
//! Перезвоним вам в течение часа.
//! ```
//!
//! Header lines `Name: value` (`From:` only when there is a sender), an
//! empty line, then the text exactly as given, followed by one `\n` that is
//! not part of it. The number, sender and id are validated (no control
//! character can reach a header line); the text may hold anything, newlines
//! included — everything after the first empty line up to the last byte,
//! minus that final `\n`, is the text.
//!
//! # Exactly once
//!
//! The file is written as `<dir>/tmp/<name>.<pid>.<n>.tmp` (the `tmp/`
//! directory is created when missing; `dir` itself must exist), fsynced, then
//! published under its final name with a hard link, which never replaces an
//! existing file (where hard links are unsupported: a rename after an
//! existence check), and `dir` is fsynced. A second send of the same id
//! finds the file and answers `already: true`, also when a consumer moved
//! the file into `<dir>/done/`. A reader should only take `*.sms` files
//! from `dir`: a file appears there whole, at once.
//!
//! | outcome | result |
//! |---|---|
//! | written | Accepted, `foreign_id` = the file name |
//! | `<name>.sms` already in `dir` or `dir/done` | Accepted, `already: true` |
//! | `dir` missing, temporary file not written | Unavailable (nothing published) |
//! | published, but `dir` could not be fsynced | InDoubt |
//!
//! Reconcile: the file exists (in `dir` or `dir/done`) → Sent, else NotSent.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use super::{check_limits, de, one_line, validate, Accepted, Reconciled, SmsError};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `[sms] folder`: a directory receiving one file per message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// The directory; must exist.
    pub dir: PathBuf,
    /// Most SMS parts a text may take.
    #[serde(default = "de::max_parts")]
    pub max_parts: u32,
}

/// Where a published file may be.
enum Found {
    Nowhere,
    At(PathBuf),
}

impl FolderConfig {
    /// `dir` with the default `max_parts`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_parts: super::DEFAULT_MAX_PARTS,
        }
    }

    /// `max_parts` (the directory is looked at when sending).
    pub fn check(&self) -> Result<(), String> {
        check_limits(self.max_parts, super::DEFAULT_TIMEOUT)
    }

    /// The file name `sms_id` is written under, `<name>.sms`.
    pub fn file_name(sms_id: &str) -> String {
        format!("{}.sms", crate::sanitize::id_token(sms_id))
    }

    fn find(&self, name: &str) -> io::Result<Found> {
        for path in [self.dir.join(name), self.dir.join("done").join(name)] {
            match fs::symlink_metadata(&path) {
                Ok(_) => return Ok(Found::At(path)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Found::Nowhere)
    }

    pub(super) fn send(&self, sms: &super::Sms) -> Result<Accepted, SmsError> {
        let sender = validate(sms, self.max_parts, None)?;
        let name = Self::file_name(&sms.id);
        let unavailable = |what: &str, path: &Path, e: io::Error| SmsError::Unavailable {
            reason: format!("folder: {what} {}: {e} (nothing written)", path.display()),
        };
        match fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(unavailable(
                    "not a directory:",
                    &self.dir,
                    io::Error::from(io::ErrorKind::NotADirectory),
                ))
            }
            Err(e) => return Err(unavailable("cannot use", &self.dir, e)),
        }
        match self.find(&name) {
            Ok(Found::At(path)) => return Ok(already(&path)),
            Ok(Found::Nowhere) => {}
            Err(e) => return Err(unavailable("cannot look for", &self.dir.join(&name), e)),
        }

        let mut content = format!("To: {}\n", sms.to);
        if let Some(s) = sender {
            content.push_str(&format!("From: {s}\n"));
        }
        content.push_str(&format!("Id: {}\n\n{}\n", sms.id, sms.text));

        let tmp_dir = self.dir.join("tmp");
        match fs::create_dir(&tmp_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tmp_dir.is_dir() => {}
            Err(e) => return Err(unavailable("cannot create", &tmp_dir, e)),
        }
        let tmp = tmp_dir.join(format!(
            "{name}.{}.{}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let target = self.dir.join(&name);
        let written = write_tmp(&tmp, content.as_bytes())
            .map_err(|e| unavailable("cannot write", &tmp, e))
            .and_then(|()| {
                publish(&tmp, &target).map_err(|e| unavailable("cannot publish", &target, e))
            });
        // After a hard link the temporary name is a second name of the
        // target; after a rename it is gone; after a failure it is garbage.
        let _ = fs::remove_file(&tmp);
        if !written? {
            return Ok(already(&target));
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SmsError::InDoubt {
                reason: format!(
                    "folder: {} was written but {} could not be fsynced: {e}",
                    target.display(),
                    self.dir.display()
                ),
            })?;
        Ok(Accepted {
            foreign_id: Some(name),
            answer: one_line(&format!("written {}", target.display())),
            already: false,
        })
    }

    pub(super) fn reconcile(&self, sms: &super::Sms) -> Reconciled {
        let name = Self::file_name(&sms.id);
        match self.find(&name) {
            Ok(Found::At(path)) => Reconciled::Sent(already(&path)),
            Ok(Found::Nowhere) => Reconciled::NotSent,
            Err(e) => Reconciled::Unknown(format!(
                "folder: cannot look for {}: {e}",
                self.dir.join(&name).display()
            )),
        }
    }
}

fn already(path: &Path) -> Accepted {
    Accepted {
        foreign_id: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        answer: one_line(&format!("already in {}", path.display())),
        already: true,
    }
}

fn write_tmp(tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Publishes `tmp` as `target` unless `target` exists: `Ok(true)` when
/// published, `Ok(false)` when it was already there.
fn publish(tmp: &Path, target: &Path) -> io::Result<bool> {
    match fs::hard_link(tmp, target) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            tracing::debug!(error = %e, "hard link failed, falling back to rename");
            if fs::symlink_metadata(target).is_ok() {
                return Ok(false);
            }
            fs::rename(tmp, target)?;
            Ok(true)
        }
    }
}
