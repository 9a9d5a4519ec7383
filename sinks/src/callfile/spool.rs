//! The spool: queueing a call file atomically (`tmp/` → `outgoing/`),
//! reading back what Asterisk made of it (`outgoing_done/`), cancelling it.

use super::render::check_file_name;
use super::*;

/// Whether `path` exists (as anything, a dangling symlink included).
fn exists(path: &Path) -> Result<bool, CallFileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), CallFileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Queue `file` as `<spool>/outgoing/<name>`: written in `<spool>/tmp/<name>`
/// (the directory is created if missing), fsynced, with mtime `not_before`
/// (when given: a future mtime makes Asterisk wait until then) and owner
/// `(uid, gid)` (when given: Asterisk must own the file to set its mtime
/// between retries), then renamed into `outgoing/`, whose directory entry is
/// fsynced. Returns the queued path.
///
/// Fails with [`CallFileError::AlreadyThere`] when `outgoing/<name>` or
/// `outgoing_done/<name>` exists (checked in that order, so a file Asterisk
/// moves between the two checks is still seen), and with
/// [`CallFileError::Invalid`] before touching the disk when `name` is not
/// `^[A-Za-z0-9_.-]{1,100}\.call$` (or starts with a dot) or `file` does not
/// [`render`](CallFile::render). `outgoing/` must exist (Asterisk creates
/// it); nothing but the renamed file is ever created in it.
///
/// An [`CallFileError::Io`] from the final directory fsync comes after the
/// rename: the call may be queued, and a retry then reports
/// [`CallFileError::AlreadyThere`]. Any other error leaves nothing behind.
///
/// Writers in one process are serialised; two processes writing the same
/// name at the same moment are not (the caller's own claim on the attempt,
/// e.g. a database row, must cover that). With `archive: false` a finished
/// call leaves no file, so the guard only covers queued calls.
pub fn write(
    spool: &Path,
    name: &str,
    file: &CallFile,
    not_before: Option<SystemTime>,
    owner: Option<(u32, u32)>,
) -> Result<PathBuf, CallFileError> {
    check_file_name(name)?;
    let body = file.render()?;
    let outgoing = spool.join("outgoing");
    let done = spool.join("outgoing_done");
    let tmp_dir = spool.join("tmp");
    let target = outgoing.join(name);
    let tmp = tmp_dir.join(name);

    let meta = fs::metadata(&outgoing).map_err(io_err("stat spool directory", &outgoing))?;
    if !meta.is_dir() {
        return Err(io_err("stat spool directory", &outgoing)(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }

    let _guard = WRITE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    for existing in [&target, &done.join(name)] {
        if exists(existing)? {
            return Err(CallFileError::AlreadyThere {
                path: existing.clone(),
            });
        }
    }

    match fs::DirBuilder::new().mode(TMP_DIR_MODE).create(&tmp_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tmp_dir.is_dir() => {}
        Err(e) => return Err(io_err("create directory", &tmp_dir)(e)),
    }
    // A leftover of a crashed writer (or anything planted there) goes; the
    // file is then created exclusively, so a symlink is never followed.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove stale temporary file", &tmp)(e)),
    }
    let result = write_tmp(&tmp, body.as_bytes(), not_before, owner)
        .and_then(|()| publish(&tmp, &target, &outgoing));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

fn write_tmp(
    tmp: &Path,
    body: &[u8],
    not_before: Option<SystemTime>,
    owner: Option<(u32, u32)>,
) -> Result<(), CallFileError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(tmp)
        .map_err(io_err("create", tmp))?;
    f.write_all(body).map_err(io_err("write", tmp))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io_err("chown", tmp))?;
    }
    // After the last write, which would move the mtime again.
    if let Some(when) = not_before {
        f.set_times(FileTimes::new().set_modified(when))
            .map_err(io_err("set mtime", tmp))?;
    }
    f.sync_all().map_err(io_err("fsync", tmp))
}

fn publish(tmp: &Path, target: &Path, outgoing: &Path) -> Result<(), CallFileError> {
    fs::rename(tmp, target).map_err(|e| {
        if e.kind() == io::ErrorKind::CrossesDevices {
            CallFileError::CrossDevice {
                from: tmp.to_path_buf(),
                to: target.to_path_buf(),
            }
        } else {
            io_err("rename into the spool", target)(e)
        }
    })?;
    sync_dir(outgoing)
}

/// How a call file ended, as `Status:` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// The dialled (`Channel:`) leg answered; the call has ended.
    Completed,
    /// Every attempt failed (busy, no answer, congestion...).
    Expired,
    /// Asterisk could not read the file or found it invalid.
    Failed,
}

/// A progress line Asterisk appends to a queued file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressTag {
    /// An attempt was launched.
    StartRetry,
    /// An attempt failed and another one is due.
    EndRetry,
    /// The file was due while this Asterisk was still dialling it.
    DelayedRetry,
    /// Another Asterisk process had started an attempt and is presumed gone.
    AbortRetry,
}

impl ProgressTag {
    const ALL: [(ProgressTag, &'static str); 4] = [
        (ProgressTag::StartRetry, "StartRetry"),
        (ProgressTag::EndRetry, "EndRetry"),
        (ProgressTag::DelayedRetry, "DelayedRetry"),
        (ProgressTag::AbortRetry, "AbortRetry"),
    ];
}

/// One `<Tag>: <pid> <retries> (<unix time>)` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressLine {
    /// Which event.
    pub tag: ProgressTag,
    /// The Asterisk process id.
    pub pid: u64,
    /// Asterisk's retry counter at that point (the attempt number on
    /// `StartRetry`).
    pub retries: i64,
    /// Unix time written with the line. For `StartRetry` it is the launch
    /// time **plus** `RetryTime` (Asterisk's next due time), not the launch
    /// time; for the others, the time of the event.
    pub unix_time: i64,
}

/// What Asterisk has appended to a file not yet finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The progress lines, in file order.
    pub lines: Vec<ProgressLine>,
    /// The file is already in `outgoing_done/` but its `Status:` line is not
    /// written yet (Asterisk renames first, appends second).
    pub archiving: bool,
}

impl Progress {
    fn count(&self, tag: ProgressTag) -> u32 {
        let n = self.lines.iter().filter(|l| l.tag == tag).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Attempts launched (`StartRetry` lines).
    pub fn started(&self) -> u32 {
        self.count(ProgressTag::StartRetry)
    }

    /// Attempts that failed with another one due (`EndRetry` lines).
    pub fn failed(&self) -> u32 {
        self.count(ProgressTag::EndRetry)
    }
}

/// Where a call file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFileOutcome {
    /// Queued or being dialled (in `outgoing/`), or archived without its
    /// `Status:` line yet.
    Pending(Progress),
    /// Finished and archived in `outgoing_done/` with its `Status:` line.
    Done {
        /// The `Status:` line's value.
        status: CallStatus,
        /// Attempts launched (`StartRetry` lines).
        attempts: u32,
    },
    /// In neither directory: cancelled, or finished without `Archive: yes`.
    Missing,
}

/// Read back where `<spool>/outgoing/<name>` stands.
///
/// `outgoing/` is looked at first, then `outgoing_done/`: Asterisk renames
/// from the first to the second, so a file moving meanwhile is still found.
/// A last line without its newline is being appended and is ignored.
pub fn outcome(spool: &Path, name: &str) -> Result<CallFileOutcome, CallFileError> {
    check_file_name(name)?;
    let queued = spool.join("outgoing").join(name);
    if let Some(bytes) = read_if_exists(&queued)? {
        let (lines, _) = parse_appended(&queued, &bytes)?;
        return Ok(CallFileOutcome::Pending(Progress {
            lines,
            archiving: false,
        }));
    }
    let archived = spool.join("outgoing_done").join(name);
    let Some(bytes) = read_if_exists(&archived)? else {
        return Ok(CallFileOutcome::Missing);
    };
    let (lines, status) = parse_appended(&archived, &bytes)?;
    let progress = Progress {
        lines,
        archiving: true,
    };
    Ok(match status {
        Some(status) => CallFileOutcome::Done {
            status,
            attempts: progress.started(),
        },
        None => CallFileOutcome::Pending(progress),
    })
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, CallFileError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// The progress lines and the last `Status:` of a call file. Lines that
/// start with neither are the file's own keys and are skipped; a line that
/// starts like one but does not parse is an error.
fn parse_appended(
    path: &Path,
    bytes: &[u8],
) -> Result<(Vec<ProgressLine>, Option<CallStatus>), CallFileError> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    let malformed = |line: &[u8]| CallFileError::Malformed {
        path: path.to_path_buf(),
        line: String::from_utf8_lossy(line).into_owned(),
    };
    let mut lines = Vec::new();
    let mut status = None;
    for line in complete.split(|&b| b == b'\n') {
        if let Some(value) = line.strip_prefix(b"Status: ") {
            status = Some(match value {
                b"Completed" => CallStatus::Completed,
                b"Expired" => CallStatus::Expired,
                b"Failed" => CallStatus::Failed,
                _ => return Err(malformed(line)),
            });
            continue;
        }
        for (tag, word) in ProgressTag::ALL {
            if let Some(rest) = line
                .strip_prefix(word.as_bytes())
                .and_then(|r| r.strip_prefix(b": "))
            {
                let parsed = parse_progress(tag, rest).ok_or_else(|| malformed(line))?;
                lines.push(parsed);
            }
        }
    }
    Ok((lines, status))
}

/// `<pid> <retries> (<unix time>)`, as `safe_append` prints
/// `"%ld %d (%ld)"`.
fn parse_progress(tag: ProgressTag, rest: &[u8]) -> Option<ProgressLine> {
    let rest = std::str::from_utf8(rest).ok()?;
    let (pid, rest) = rest.split_once(' ')?;
    let (retries, rest) = rest.split_once(' ')?;
    let time = rest.strip_prefix('(')?.strip_suffix(')')?;
    let int = |s: &str| -> Option<i64> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ProgressLine {
        tag,
        pid: pid.parse().ok()?,
        retries: int(retries)?,
        unix_time: int(time)?,
    })
}

/// Remove `<spool>/outgoing/<name>` if it is still queued; returns whether it
/// was. A call being dialled is not hung up (Asterisk already read the file),
/// but it is not retried. A file already archived is left alone.
pub fn cancel(spool: &Path, name: &str) -> Result<bool, CallFileError> {
    check_file_name(name)?;
    let outgoing = spool.join("outgoing");
    let path = outgoing.join(name);
    match fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(&outgoing)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", &path)(e)),
    }
}
