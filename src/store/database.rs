//! The one DuckDB database every handle of a store connects to, and its
//! reopening. DuckDB invalidates a database when a write fails where it
//! cannot roll back (a checkpoint that the disk refused): from then on
//! every statement of every connection fails until the database is opened
//! again. [`Database::reopen`] opens it anew (DuckDB replays its WAL, so
//! whatever was committed is there), applies the settings it was given
//! ([`Database::setup`]: memory limit, threads, the query lock-down), and
//! counts a generation; each handle's connection ([`Conn`]) notices the
//! new generation the next time it is used (idle ones at once) and
//! connects to the new database. The old instance is left to close with
//! its last connection; DuckDB neither checkpoints nor writes an
//! invalidated database.

use super::health::Health;
use super::native::RawDb;
use super::{Setup, StoreError};
use duckdb::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// One handle's connection, with the database it belongs to.
pub(crate) struct Conn {
    /// Declared first: closed before its database is let go.
    conn: Connection,
    raw: Arc<RawDb>,
    generation: u64,
}

impl Conn {
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(crate) fn get(&self) -> &Connection {
        &self.conn
    }

    /// Which opening of the database it is connected to.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

/// The database of a store and everything needed to open it again.
pub(crate) struct Database {
    path: PathBuf,
    current: Mutex<Arc<RawDb>>,
    generation: AtomicU64,
    setups: Mutex<Vec<Setup>>,
    /// Every handle's connection, to move the idle ones to a reopened
    /// database at once (their old instance then closes).
    conns: Mutex<Vec<Weak<Mutex<Conn>>>>,
    retry: Mutex<Retry>,
    pub health: Health,
}

struct Retry {
    not_before: Option<Instant>,
    backoff: Duration,
}

/// How long a reopen waits for every connection to be idle.
const QUIESCE: Duration = Duration::from_secs(10);

/// The first wait after a reopen failed; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here is left half-changed by a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Database {
    /// The database `raw` (opened at `path`) and its first connection.
    pub(crate) fn new(
        path: &Path,
        raw: Arc<RawDb>,
        conn: Connection,
    ) -> (Arc<Database>, Arc<Mutex<Conn>>) {
        let db = Arc::new(Database {
            path: path.to_path_buf(),
            current: Mutex::new(raw.clone()),
            generation: AtomicU64::new(0),
            setups: Mutex::default(),
            conns: Mutex::default(),
            retry: Mutex::new(Retry {
                not_before: None,
                backoff: FIRST_BACKOFF,
            }),
            health: Health::default(),
        });
        let conn = db.adopt(Conn {
            conn,
            raw,
            generation: 0,
        });
        (db, conn)
    }

    fn adopt(&self, conn: Conn) -> Arc<Mutex<Conn>> {
        let conn = Arc::new(Mutex::new(conn));
        let mut all = lock(&self.conns);
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&conn));
        conn
    }

    /// The database as opened now.
    pub(crate) fn raw(&self) -> Arc<RawDb> {
        lock(&self.current).clone()
    }

    /// Another connection to the database.
    pub(crate) fn connect(&self) -> Result<Arc<Mutex<Conn>>, StoreError> {
        let (raw, generation) = {
            let cur = lock(&self.current);
            (cur.clone(), self.generation.load(Ordering::Acquire))
        };
        let conn = raw.connection()?;
        Ok(self.adopt(Conn {
            conn,
            raw,
            generation,
        }))
    }

    /// Moves `c` to the database as opened now, if it was reopened since
    /// `c` connected (when that fails, `c` stays as it is and fails as
    /// the old database does; the next use tries again).
    pub(crate) fn refresh(&self, c: &mut Conn) {
        if c.generation == self.generation.load(Ordering::Acquire) {
            return;
        }
        let (raw, generation) = {
            let cur = lock(&self.current);
            (cur.clone(), self.generation.load(Ordering::Acquire))
        };
        match raw.connection() {
            Ok(conn) => {
                // The old connection closes before its database is let go.
                c.conn = conn;
                c.raw = raw;
                c.generation = generation;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to the reopened store; trying again on the next use")
            }
        }
    }

    /// Applies `setup` through `conn` now and after every reopen.
    pub(crate) fn setup(&self, conn: &Connection, setup: Setup) -> Result<(), duckdb::Error> {
        setup(conn)?;
        lock(&self.setups).push(setup);
        Ok(())
    }

    /// Opens the database again, unless it was reopened since the
    /// connection that failed connected (`seen`) or the last attempt failed
    /// too recently. `Ok(true)`: reopened now; then `fresh` ran on a
    /// connection to the new database (the handles' shared caches are
    /// reset there).
    pub(crate) fn reopen(
        &self,
        seen: u64,
        fresh: impl FnOnce(&Connection) -> Result<(), StoreError>,
    ) -> Result<bool, StoreError> {
        let mut retry = lock(&self.retry);
        if self.generation.load(Ordering::Acquire) != seen {
            return Ok(false);
        }
        if retry.not_before.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        let r = self.reopen_now(fresh);
        match &r {
            Ok(()) => {
                retry.not_before = None;
                retry.backoff = FIRST_BACKOFF;
            }
            Err(_) => {
                retry.not_before = Some(Instant::now() + retry.backoff);
                retry.backoff = (retry.backoff * 2).min(MAX_BACKOFF);
            }
        }
        r.map(|()| true)
    }

    fn reopen_now(
        &self,
        fresh: impl FnOnce(&Connection) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let loud = self.health.log_reopen();
        if loud {
            tracing::warn!(store = %self.path.display(), "DuckDB invalidated the store after a failed write; reopening it (again whenever that happens while the store cannot be written)");
        } else {
            tracing::debug!(store = %self.path.display(), "DuckDB invalidated the store again; reopening it");
        }
        // No connection is made meanwhile (`connect` waits), and every one
        // there is is held idle: the old instance must not be in the middle
        // of anything (a commit that passed DuckDB's validity check before
        // the invalidation still writes its WAL record) while the new one
        // replays the WAL and appends to it.
        let mut current = lock(&self.current);
        let all: Vec<Arc<Mutex<Conn>>> =
            lock(&self.conns).iter().filter_map(Weak::upgrade).collect();
        let mut held = Vec::with_capacity(all.len());
        let deadline = Instant::now() + QUIESCE;
        for c in &all {
            loop {
                match c.try_lock() {
                    Ok(g) => break held.push(g),
                    Err(std::sync::TryLockError::Poisoned(p)) => break held.push(p.into_inner()),
                    Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(std::sync::TryLockError::WouldBlock) => {
                        return Err(StoreError::Native {
                            what: "reopening the store",
                            message: format!(
                                "a connection stayed busy for {} s; trying again later",
                                QUIESCE.as_secs()
                            ),
                        });
                    }
                }
            }
        }
        let (raw, conn) = RawDb::open(&self.path)?;
        for s in lock(&self.setups).iter() {
            s(&conn).map_err(|source| StoreError::Db {
                what: "applying the store's settings again",
                source,
            })?;
        }
        fresh(&conn)?;
        drop(conn);
        *current = raw;
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(current);
        self.health.reopened();
        // Every connection moves to the new database now; the old one
        // closes with the last of them (DuckDB neither checkpoints nor
        // writes a database it invalidated).
        for g in &mut held {
            self.refresh(g);
        }
        drop(held);
        if loud {
            tracing::info!(store = %self.path.display(), "store reopened");
        } else {
            tracing::debug!(store = %self.path.display(), "store reopened");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use calltrail_parsers::{Event, EventKind, SourceKind, Str};

    fn events(ids: std::ops::Range<u64>) -> Vec<Event> {
        ids.map(|i| {
            let mut e = Event::new(
                SourceKind::AsteriskQueueLog,
                Str::from("q"),
                Str::from("pbx1"),
                chrono::Utc::now(),
                EventKind::EnterQueue,
                Str::from("ENTERQUEUE"),
            );
            e.event_id = format!("q:00000000000000aa:{}", i * 10);
            e.call_id = Some(format!("c{i}"));
            e
        })
        .collect()
    }

    fn span(ids: std::ops::Range<u64>) -> super::super::Span {
        super::super::Span {
            file_fp: "00000000000000aa".into(),
            start: ids.start * 10,
            end: ids.end * 10,
            last: (ids.end - 1) * 10,
        }
    }

    fn count(s: &Store, sql: &str) -> i64 {
        s.with_conn(|c| c.query_row(sql, [], |r| r.get(0))).unwrap()
    }

    /// A commit that fails where DuckDB cannot roll it back (as a
    /// checkpoint the disk refuses does) invalidates the database: the
    /// next retried write of any handle reopens it, every handle goes on
    /// with the new one and its settings, and the batch retried is stored
    /// once, after the events stored before it.
    #[test]
    fn an_invalidated_store_is_reopened_for_every_handle() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.duckdb"))
            .unwrap()
            .with_limits(Some("300MB"), Some(1))
            .unwrap()
            .with_durable_commits()
            .unwrap();
        let other = store.handle().unwrap();
        let idle = store.handle().unwrap();
        store
            .commit_batch("q", &events(0..10), &[], &[], None, Some(&span(0..10)))
            .unwrap();
        store
            .with_conn(|c| {
                c.execute_batch(
                    "SET debug_force_commit_failure = true;
                     SET debug_force_commit_revert_failure = true;",
                )
            })
            .unwrap();
        let batch = events(10..20);
        assert!(store
            .commit_batch("q", &batch, &[], &[], None, Some(&span(10..20)))
            .is_err());
        // Every handle fails now; the first retried write reopens it.
        let e = other.set_sink_checkpoint("test", 1).unwrap_err();
        assert!(
            matches!(
                super::super::health::Failure::of(&e),
                Some(super::super::health::Failure::Invalidated)
            ),
            "{e}"
        );
        assert_eq!(store.health().reopens(), 1);
        assert!(store.health().not_writable().is_some());
        other.set_sink_checkpoint("test", 1).unwrap();
        assert!(store.health().not_writable().is_none(), "written again");
        store
            .commit_batch("q", &batch, &[], &[], None, Some(&span(10..20)))
            .unwrap();
        // Again (a retry after a commit that was durable after all): nothing doubled.
        let again = store
            .commit_batch("q", &batch, &[], &[], None, Some(&span(10..20)))
            .unwrap();
        assert_eq!(again.inserted, 0);
        for s in [&store, &other, &idle] {
            assert_eq!(count(s, "SELECT count(*) FROM events"), 20);
            assert_eq!(count(s, "SELECT count(DISTINCT seq) FROM events"), 20);
            assert_eq!(count(s, "SELECT max(seq) FROM events"), 20);
            let limit: String = s
                .with_conn(|c| {
                    c.query_row("SELECT current_setting('memory_limit')::VARCHAR", [], |r| {
                        r.get(0)
                    })
                })
                .unwrap();
            assert_eq!(
                limit, "286.1 MiB",
                "the settings apply to the reopened store"
            );
            let skip: String = s
                .with_conn(|c| {
                    c.query_row(
                        "SELECT current_setting('auto_checkpoint_skip_wal_threshold')::VARCHAR",
                        [],
                        |r| r.get(0),
                    )
                })
                .unwrap();
            assert_eq!(skip, u64::MAX.to_string());
        }
        // A handle made from a reopened store is connected to it.
        let late = other.handle().unwrap();
        assert_eq!(count(&late, "SELECT count(*) FROM events"), 20);
    }
}
