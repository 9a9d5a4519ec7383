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
use super::StoreError;
use duckdb::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// A setting of the whole database, applied again after a reopen.
pub(crate) type Setup = Box<dyn Fn(&Connection) -> Result<(), duckdb::Error> + Send + Sync>;

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
        let loud = self.health.log_reopen();
        if loud {
            tracing::warn!(store = %self.path.display(), "DuckDB invalidated the store after a failed write; reopening it (again whenever that happens while the store cannot be written)");
        } else {
            tracing::debug!(store = %self.path.display(), "DuckDB invalidated the store again; reopening it");
        }
        let opened = (|| {
            let (raw, conn) = RawDb::open(&self.path)?;
            for s in lock(&self.setups).iter() {
                s(&conn).map_err(|source| StoreError::Db {
                    what: "applying the store's settings again",
                    source,
                })?;
            }
            fresh(&conn)?;
            Ok::<_, StoreError>((raw, conn))
        })();
        let (raw, conn) = match opened {
            Ok(v) => v,
            Err(e) => {
                retry.not_before = Some(Instant::now() + retry.backoff);
                retry.backoff = (retry.backoff * 2).min(MAX_BACKOFF);
                return Err(e);
            }
        };
        retry.not_before = None;
        retry.backoff = FIRST_BACKOFF;
        drop(conn);
        {
            let mut cur = lock(&self.current);
            *cur = raw;
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.health.reopened();
        // The idle connections move now, so that the old instance (and its
        // memory) goes as soon as the busy ones are done.
        let all: Vec<Arc<Mutex<Conn>>> = lock(&self.conns)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for c in all {
            if let Ok(mut g) = c.try_lock() {
                self.refresh(&mut g);
            }
        }
        if loud {
            tracing::info!(store = %self.path.display(), "store reopened");
        } else {
            tracing::debug!(store = %self.path.display(), "store reopened");
        }
        Ok(true)
    }
}
