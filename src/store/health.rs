//! Whether the store can be written: the failures of the writes that are
//! retried until they succeed (a source's batch, the state deriver's pass,
//! the sweep, a sink's checkpoint, an action's outcome), told apart from
//! other errors by what DuckDB said (an I/O error such as a full disk, or a
//! database DuckDB invalidated after one). Shared by every handle of a store.
//!
//! The store is not writable while a writer is held up (its last write
//! failed and it retries it): a nearly full disk takes a checkpoint's row
//! and refuses a batch, and the source is still stopped. A failure is
//! logged as an error when it starts, reminded every [`REMINDER`] while it
//! lasts — never more than one such line a minute, however often writes go
//! through between failures — and its end is logged with how long it took;
//! `/readyz` gives the cause as its reason and `/metrics` counts the failed
//! writes (`calltrail_store_write_errors_total`).

use super::StoreError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How often a failure that goes on is logged again.
pub const REMINDER: Duration = Duration::from_secs(60);

/// What kind of write failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An I/O error (no space left, a read-only or failing disk): the write
    /// was rolled back, the database is still usable; retrying succeeds
    /// once the cause is gone.
    Io,
    /// DuckDB invalidated the database (a checkpoint or a rollback that
    /// failed on the disk): every connection fails until it is reopened.
    Invalidated,
}

impl Failure {
    /// The failure `e` is, if it is one (`None`: any other error, such as
    /// a malformed row, which retrying does not cure).
    pub fn of(e: &StoreError) -> Option<Failure> {
        let text = e.to_string();
        if INVALIDATED.iter().any(|m| text.contains(m)) {
            Some(Failure::Invalidated)
        } else if IO.iter().any(|m| text.contains(m)) {
            Some(Failure::Io)
        } else {
            None
        }
    }
}

/// DuckDB's words for a database that must be reopened.
const INVALIDATED: [&str; 4] = [
    "database has been invalidated",
    "has been invalidated because",
    "Reopen the database instance",
    "FATAL Error",
];

/// DuckDB's words (and the system's) for a write the disk refused.
const IO: [&str; 6] = [
    "IO Error",
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Input/output error",
    "File too large",
];

/// The system's reasons, as `/readyz` and the log give them.
const CAUSES: [&str; 5] = [
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Input/output error",
    "File too large",
];

/// The store's writability, shared by its handles.
#[derive(Debug, Default)]
pub struct Health {
    /// Writes that failed since the start.
    errors: AtomicU64,
    /// Times the database was reopened after DuckDB invalidated it.
    reopens: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The writers whose last write failed (each retries it), by name: a
    /// source's batches, the deriver, a sink's checkpoint, the action
    /// worker. A nearly full disk takes a small write (a checkpoint's row)
    /// while it refuses a batch: the source is still stopped.
    writers: std::collections::BTreeMap<String, Writer>,
    /// Since a writer failed while none was failing, until none is.
    episode: Option<Episode>,
    /// When a failure was last logged as an error (its start or a
    /// reminder): at most one such line per [`REMINDER`], however often a
    /// nearly full disk lets writes through between failures.
    last_loud: Option<Instant>,
    /// When a reopen was last logged as a warning (same rule).
    last_reopen_log: Option<Instant>,
}

#[derive(Debug)]
struct Writer {
    cause: String,
    error: String,
    at: Instant,
}

#[derive(Debug)]
struct Episode {
    since: SystemTime,
    started: Instant,
    /// Writes that failed during it.
    count: u64,
    /// It was logged as an error (then its end is logged too).
    loud: bool,
}

/// Why the store cannot be written (for `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotWritable {
    /// The system's reason when there is one ("No space left on device"),
    /// else DuckDB's message (of the latest failure).
    pub cause: String,
    /// DuckDB's message of the latest failed write (on one line).
    pub error: String,
    /// The writers held up (`storing a batch of q`, `deriving the state`, …).
    pub writers: Vec<String>,
    pub since: SystemTime,
    /// Writes that failed since it began.
    pub failures: u64,
}

/// What a failure is called: the system's reason, else the first line of
/// DuckDB's message (cut at 300 bytes).
fn cause_of(failure: Failure, text: &str) -> String {
    if let Some(c) = CAUSES.iter().find(|c| text.contains(*c)) {
        return (*c).to_string();
    }
    if failure == Failure::Invalidated {
        return "DuckDB invalidated the database after a failed write (it is reopened)".into();
    }
    cut(text.lines().next().unwrap_or_default(), 300)
}

/// `text` on one line (DuckDB's messages go on with the original error on
/// lines of their own), cut at 600 bytes.
fn one_line(text: &str) -> String {
    let joined: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    cut(&joined.join(" "), 600)
}

fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Whether a line logged at `last` may be followed by another now.
fn due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|t| now.duration_since(t) >= REMINDER)
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer `what` failed with `e`, a [`Failure`] (it retries the
    /// write): counted; logged as an error when none was for [`REMINDER`]
    /// (the start of a failure, or a reminder while it lasts).
    pub fn failed(&self, what: &str, e: &StoreError, failure: Failure) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text = e.to_string();
        let error = one_line(&text);
        let cause = cause_of(failure, &text);
        let now = Instant::now();
        let mut st = self.lock();
        let loud = due(st.last_loud, now);
        if loud {
            st.last_loud = Some(now);
        }
        st.writers.insert(
            what.to_string(),
            Writer {
                cause: cause.clone(),
                error: error.clone(),
                at: now,
            },
        );
        match st.episode.as_mut() {
            None => {
                if loud {
                    tracing::error!(
                        during = what,
                        error = %error,
                        "store not writable: {cause}; ingest stops where the last stored batch left it and is retried until the store can be written (nothing read is lost)"
                    );
                } else {
                    // Writable again for a moment (a nearly full disk):
                    // the next reminder tells if it goes on.
                    tracing::debug!(during = what, error = %error, "store not writable again: {cause}");
                }
                st.episode = Some(Episode {
                    since: SystemTime::now(),
                    started: now,
                    count: 1,
                    loud,
                });
            }
            Some(g) => {
                g.count += 1;
                if loud {
                    g.loud = true;
                    tracing::error!(
                        during = what,
                        error = %error,
                        for_s = g.started.elapsed().as_secs(),
                        failed_writes = g.count,
                        "store still not writable: {cause}; retrying"
                    );
                } else {
                    tracing::debug!(during = what, error = %error, "store still not writable");
                }
            }
        }
    }

    /// The writer `what` succeeded (a commit, or nothing left to write):
    /// it is no longer held up; the store is writable again when no
    /// writer is.
    pub fn written(&self, what: &str) {
        let mut st = self.lock();
        if st.episode.is_none() || st.writers.remove(what).is_none() || !st.writers.is_empty() {
            return;
        }
        let Some(g) = st.episode.take() else {
            return;
        };
        if g.loud {
            tracing::info!(
                after_s = g.started.elapsed().as_secs(),
                failed_writes = g.count,
                "store writable again; ingest resumed from where it stopped"
            );
        } else {
            tracing::debug!(
                after_s = g.started.elapsed().as_secs(),
                failed_writes = g.count,
                "store writable again"
            );
        }
    }

    /// Why the store cannot be written, while a writer is held up.
    pub fn not_writable(&self) -> Option<NotWritable> {
        let st = self.lock();
        let g = st.episode.as_ref()?;
        let last = st.writers.values().max_by_key(|w| w.at)?;
        Some(NotWritable {
            cause: last.cause.clone(),
            error: last.error.clone(),
            writers: st.writers.keys().cloned().collect(),
            since: g.since,
            failures: g.count,
        })
    }

    /// Writes that failed since the start.
    pub fn write_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Times the database was reopened since the start.
    pub fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Relaxed)
    }

    pub(super) fn reopened(&self) {
        self.reopens.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a reopen is worth a line in the log: at most one per
    /// [`REMINDER`] (a full disk can make DuckDB invalidate the database at
    /// every checkpoint it tries).
    pub(super) fn log_reopen(&self) -> bool {
        let now = Instant::now();
        let mut st = self.lock();
        let loud = due(st.last_reopen_log, now);
        if loud {
            st.last_reopen_log = Some(now);
        }
        loud
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(msg: &str) -> StoreError {
        StoreError::Native {
            what: "committing the batch",
            message: msg.into(),
        }
    }

    #[test]
    fn failures_are_told_apart_from_other_errors() {
        let full = io("IO Error: Could not write all bytes to file \"/s/s.duckdb.wal\": wanted=4096 wrote=0 (No space left on device)");
        assert_eq!(Failure::of(&full), Some(Failure::Io));
        let gone = io("Failed: database has been invalidated because of a previous fatal error. The database must be restarted prior to being used again.");
        assert_eq!(Failure::of(&gone), Some(Failure::Invalidated));
        let fatal = io("FATAL Error: Failed to create checkpoint because of error: Could not write file: No space left on device");
        assert_eq!(Failure::of(&fatal), Some(Failure::Invalidated));
        assert_eq!(Failure::of(&io("Constraint Error: duplicate key")), None);
        assert_eq!(
            Failure::of(&StoreError::Malformed("a bad row".into())),
            None
        );
        assert_eq!(
            cause_of(Failure::Invalidated, &fatal.to_string()),
            "No space left on device"
        );
        assert!(cause_of(Failure::Invalidated, &gone.to_string()).contains("invalidated"));
    }

    #[test]
    fn a_failure_lasts_until_every_writer_held_up_succeeds() {
        let h = Health::default();
        assert_eq!(h.not_writable(), None);
        let full = io("IO Error: Could not write file: No space left on device");
        h.failed("storing a batch of q", &full, Failure::Io);
        h.failed("deriving the state", &full, Failure::Io);
        h.failed("storing a batch of q", &full, Failure::Io);
        let nw = h.not_writable().expect("not writable");
        assert_eq!(nw.cause, "No space left on device");
        assert_eq!(nw.failures, 3);
        assert_eq!(nw.writers, ["deriving the state", "storing a batch of q"]);
        assert_eq!(h.write_errors(), 3);
        // A small write that goes through does not make the batch go.
        h.written("writing the kafka checkpoint");
        h.written("deriving the state");
        assert_eq!(
            h.not_writable().expect("still").writers,
            ["storing a batch of q"]
        );
        h.written("storing a batch of q");
        assert_eq!(h.not_writable(), None);
        assert_eq!(h.write_errors(), 3, "the counter counts on");
        // Failing again at once (a nearly full disk): not writable again,
        // but not logged as an error before the reminder is due.
        h.failed("storing a batch of q", &full, Failure::Io);
        assert!(h.not_writable().is_some());
        assert!(!h.lock().episode.as_ref().expect("failing").loud);
        assert!(h.log_reopen());
        assert!(!h.log_reopen(), "one reopen logged per minute");
    }
}
