//! The DuckDB store: events, rejects, per-source checkpoints, per-sink
//! publication checkpoints and the action outbox.
//!
//! Invariant: a batch's events, rejects, actions, the byte range of the file
//! they came from (`covered`) and the source checkpoint are committed in ONE
//! transaction, so after any crash the checkpoint says exactly which input
//! is already accounted for. A batch re-read from a range already covered
//! (an import run twice, a replay) adds nothing; snapshot sources skip ids
//! already stored. `events` has no key: it is appended to in columnar form.

pub mod action_admin;
pub mod actions;
pub mod arrow_stage;
pub mod callbacks;
mod covered;
mod database;
mod derive_fresh;
pub mod digests;
pub mod directory;
mod events;
pub mod health;
mod native;
mod recent;
mod schema;
mod snapshot;

pub use covered::{offset_of, Covered, Span, StoredOffsets};
pub use native::ROW_GROUP_ROWS;
pub use snapshot::{RowState, SNAPSHOT_DDL};

use crate::clock::Clock;
use crate::state::{StateConfig, Touched};
use calltrail_parsers::Event;
use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use duckdb::{params, Connection, OptionalExt};
use health::Failure;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the DuckDB store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: duckdb::Error,
    },
    #[error("{what}: {source}")]
    Db {
        what: &'static str,
        source: duckdb::Error,
    },
    #[error("store row is malformed ({0})")]
    Malformed(String),
    #[error("{what}: {message}")]
    Native { what: &'static str, message: String },
    #[error("cannot open the DuckDB store {}: {message}", path.display())]
    OpenNative { path: PathBuf, message: String },
}

fn db(what: &'static str) -> impl FnOnce(duckdb::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// Where a source has read up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub file_fp: String,
    pub dev: u64,
    pub inode: u64,
    pub byte_offset: u64,
    pub line_no: u64,
}

/// A line that did not parse, kept with its position and the reason.
#[derive(Debug, Clone)]
pub struct RejectRow {
    pub reject_id: String,
    pub file_fp: String,
    pub byte_offset: u64,
    pub line_no: u64,
    pub raw: Vec<u8>,
    pub reason: String,
}

/// An action to run later (outbox row).
#[derive(Debug, Clone)]
pub struct NewAction {
    pub action_id: String,
    pub kind: String,
    pub event_id: String,
    pub payload: String,
    /// Not before this instant (a calendar's next opening); `None`: now.
    pub due_at: Option<DateTime<Utc>>,
    /// Recorded, never run, for this reason (outside business hours with
    /// a rule that drops such actions).
    pub skipped: Option<String>,
    /// Run before lower ones due at the same time (an employee's callback:
    /// [`URGENT`], never paced; a callback the caller asked for with
    /// `EXITWITHKEY`: 1; anything else 0).
    pub priority: i32,
}

/// The priority of an action someone is waiting for (an employee's
/// callback): first, and never held back by callback pacing.
pub const URGENT: i32 = 2;

/// A pending action as handed to the worker.
#[derive(Debug, Clone)]
pub struct PendingAction {
    pub action_id: String,
    pub kind: String,
    pub attempts: u32,
    pub payload: String,
    pub priority: i32,
}

/// The calling party of a call, as its entering event recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerInfo {
    pub caller: Option<String>,
    pub caller_raw: Option<String>,
    pub caller_name: Option<String>,
}

impl CallerInfo {
    /// The caller fields of `ev`, when it has any.
    pub fn of(ev: &calltrail_parsers::Event) -> Option<CallerInfo> {
        (ev.caller.is_some() || ev.caller_raw.is_some()).then(|| CallerInfo {
            caller: ev.caller.clone(),
            caller_raw: ev.caller_raw.clone(),
            caller_name: ev.caller_name.clone(),
        })
    }
}

/// What one committed batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub inserted: usize,
    pub duplicates: usize,
    pub rejects: usize,
    pub actions: usize,
}

/// One DuckDB connection behind a mutex. Clone a `Store` handle with
/// [`Store::handle`] to get another connection to the same database (for the
/// publisher and the action worker, so they never wait on the ingest writer).
///
/// The writes that their callers retry until they succeed (a batch, a
/// state derivation, the sweep, a sink checkpoint, an action's outcome)
/// tell the store's [`health`] how they went: `/readyz` and `/metrics` say
/// whether the store can be written, and a database that DuckDB
/// invalidated after a failed write is reopened for every handle
/// ([`database`]).
pub struct Store {
    /// This handle's connection (moved to the database as reopened, see
    /// [`database`]; it keeps its database alive).
    conn: Arc<Mutex<database::Conn>>,
    path: PathBuf,
    state: Arc<StateConfig>,
    /// "Now" for the derived state (expiries, breaches still going on):
    /// the system clock unless fixed (`CALLTRAIL_NOW`, see [`crate::clock`]).
    clock: Clock,
    /// Shared by every handle: commits are serialized, so event `seq`s
    /// become visible in increasing order and a reader that follows `seq`
    /// (the Kafka publisher) never skips one committed late.
    commit_lock: Arc<Mutex<()>>,
    /// Serializes the state deriver and the sweep (writers of the derived
    /// tables and `state_events`), apart from ingest so that deriving never
    /// delays a line reaching `events`.
    state_lock: Arc<Mutex<()>>,
    /// The `seq` of the next event appended (taken under `commit_lock`).
    next_seq: Arc<Mutex<i64>>,
    /// A commit failed: it may have been durable all the same (DuckDB
    /// reports a failed checkpoint after a commit as the commit's error),
    /// so the next commit reads `next_seq` back from the store.
    seq_unsure: Arc<AtomicBool>,
    /// `covered` ranges of the files written to lately, as committed (read
    /// and replaced under `commit_lock`): saves a query per batch.
    covered_cache: Arc<Mutex<HashMap<(String, String), Covered>>>,
    /// The events committed lately, for the publisher (see [`recent`]).
    recent: Arc<Mutex<recent::Recent>>,
    /// The bulk import's C-API connection (see [`native`]), made on first use.
    bulk: Arc<Mutex<Option<native::RawConn>>>,
    /// Told what each state derivation changed, once committed (set by
    /// `run` for the lookup's index; shared by every handle).
    observer: Arc<std::sync::OnceLock<Arc<dyn crate::state::StateObserver>>>,
    /// Decides the actions each state derivation causes (set by `run`).
    state_actions: Arc<std::sync::OnceLock<Arc<dyn actions::StateActions>>>,
    /// The clock of this handle's last committed sweep (see
    /// [`Store::sweep`]).
    swept: Mutex<Option<DateTime<Utc>>>,
    /// The database, its settings and its health.
    db: Arc<database::Database>,
}

/// A setting of the whole database (see [`Store::setup`]).
pub type Setup = Box<dyn Fn(&Connection) -> Result<(), duckdb::Error> + Send + Sync>;

/// A handle's connection, locked (see [`Store::lock`]).
pub(crate) struct ConnGuard<'a>(MutexGuard<'a, database::Conn>);

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0.get()
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.0.connection()
    }
}

/// Inserts rejects (ignoring ids already stored); returns how many were new.
pub(super) fn insert_rejects(
    conn: &Connection,
    source: &str,
    rejects: &[RejectRow],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if rejects.is_empty() {
        return Ok(0);
    }
    let mut ins = conn
        .prepare_cached("INSERT OR IGNORE INTO rejects VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .map_err(db("preparing the reject insert"))?;
    let mut n = 0;
    for r in rejects {
        n += ins
            .execute(params![
                r.reject_id,
                source,
                r.file_fp,
                r.byte_offset as i64,
                r.line_no as i64,
                r.raw,
                r.reason,
                ts(now)
            ])
            .map_err(db("inserting a reject"))?;
    }
    Ok(n)
}

/// Events per step of [`Store::derive_all`]. A step re-reads the calls of
/// every party it touched (a scan of `calls`) and rewrites their rows, so a
/// bulk derivation pays that once per step: bigger steps than the daemon's.
/// Within one step, only the last change of a caller's last agent is
/// recorded as a state change (docs/schema.md).
pub const BULK_DERIVE_STEP: usize = 200_000;

/// A derivation from scratch (`derive_fresh.rs`) holds the events of the
/// calls not complete yet for up to this many steps' worth of events (an
/// event held costs about 600 bytes, a tenth of its share of a step), and
/// at most [`FRESH_WINDOW_MAX`].
const FRESH_WINDOW_STEPS: usize = 2;

/// See [`FRESH_WINDOW_STEPS`].
const FRESH_WINDOW_MAX: usize = 100_000;

/// The smallest step [`Store::derive_all`] falls back to when DuckDB runs
/// out of memory (the daemon's own step).
const MIN_DERIVE_STEP: usize = 20_000;

/// WAL size that triggers a checkpoint during [`Store::derive_all`], at
/// most: what a step changes stays in DuckDB's memory until the next
/// checkpoint (the derived tables' new row groups, their deletions, their
/// indexes), so the threshold is also held to [`BULK_CHECKPOINT_SHARE`] of
/// DuckDB's `memory_limit`. With the default budget's 205 MB and a fixed
/// 1 GB, `rederive` of 10 M events ran out of memory after 1.4 M.
const BULK_CHECKPOINT_WAL: u64 = 1_000_000_000;

/// The WAL threshold of a bulk derivation as a share of DuckDB's memory
/// limit (1 / this).
const BULK_CHECKPOINT_SHARE: u64 = 4;

/// DuckDB's own WAL threshold, below which a bulk derivation never goes.
const MIN_CHECKPOINT_WAL: u64 = 16_000_000;

/// The `sink_checkpoints` row of the state deriver: the last event `seq`
/// whose effect on the derived tables is committed.
pub const STATE_SINK: &str = "state";

pub(crate) fn ts(t: DateTime<Utc>) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, t.timestamp_micros())
}

/// The writer name of the action worker's writes (see [`health`]).
const ACTION_WORKER: &str = "recording the actions' outcomes";
/// The writer name of a reopen (see [`health`]).
const REOPENING: &str = "reopening the store";

/// The `seq` the next event appended gets, as the store holds them.
fn next_seq_of(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT coalesce(max(seq), 0) + 1 FROM events", [], |r| {
        r.get(0)
    })
    .map_err(db("reading the last event seq"))
}

/// Makes a new store whole or not at all: the schema is applied to a
/// sibling file (`<store>.creating`), checkpointed and closed, then renamed
/// into place. An import killed while creating the store (the schema is
/// some twenty statements) left a file without `events`, which every later
/// reader (`calltrail query`) took for a broken store.
fn create_atomically(path: &Path) -> Result<(), StoreError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".creating");
    let tmp = path.with_file_name(name);
    let mut wal = tmp.clone().into_os_string();
    wal.push(".wal");
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&wal);
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    {
        let conn = Connection::open(&tmp).map_err(open_err)?;
        apply_schema(&conn, path)?;
        conn.execute_batch("CHECKPOINT")
            .map_err(db("writing the new store"))?;
    }
    let _ = std::fs::remove_file(&wal);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::OpenNative {
        path: path.to_path_buf(),
        message: format!("moving the new store into place: {e}"),
    })
}

/// Creates what is missing of the schema and migrates what is old; every
/// statement is idempotent.
fn apply_schema(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(schema::DDL)
        .map_err(db("creating the schema"))?;
    conn.execute_batch(&schema::events_ddl())
        .map_err(db("creating the events table"))?;
    conn.execute_batch(&schema::state_events_ddl())
        .map_err(db("creating the state_events table"))?;
    let keyed: i64 = conn
        .query_row(schema::STATE_EVENTS_KEYED, [], |r| r.get(0))
        .map_err(db("inspecting the state_events table"))?;
    if keyed > 0 {
        conn.execute_batch(&schema::migrate_state_events())
            .map_err(db("migrating the state_events table"))?;
        tracing::info!("state_events migrated: its key on event_id dropped (same rows, same seqs)");
    }
    let old_keys: i64 = conn
        .query_row(crate::state::schema::HAS_OLD_KEYS, [], |r| r.get(0))
        .map_err(db("inspecting the state tables"))?;
    if old_keys > 0 {
        conn.execute_batch(&format!(
            "BEGIN TRANSACTION; {} {} {} COMMIT;",
            crate::state::schema::migrate_keys(),
            crate::state::schema::DDL,
            crate::state::schema::migrate_keys_copy()
        ))
        .map_err(db("migrating the state tables"))?;
        tracing::info!("state tables migrated: the tables that grow with history lost their keys and indexes (they held memory DuckDB could not give back)");
    }
    conn.execute_batch(crate::state::schema::DDL)
        .map_err(db("creating the state tables"))?;
    conn.execute_batch(crate::state::schema::DROP_INDEXES)
        .map_err(db("dropping the state tables' old indexes"))?;
    let keyed = crate::state::schema::add_party_keys(conn)
        .map_err(db("giving the state tables their party_key column"))?;
    if keyed > 0 {
        tracing::info!(tables = keyed, "state tables migrated: party_key added and filled (the deriver finds a party's rows by it)");
    }
    conn.execute_batch(actions::ACTIONS_DDL)
        .map_err(db("adding the actions' result column"))?;
    conn.execute_batch(digests::DIGESTS_DDL)
        .map_err(db("creating the digest_items table"))?;
    let per_action: i64 = conn
        .query_row(callbacks::IS_PER_ACTION, [], |r| r.get(0))
        .map_err(db("inspecting the callbacks table"))?;
    if per_action > 0 {
        conn.execute_batch(&format!(
            "BEGIN; {} COMMIT;",
            callbacks::migrate_per_action()
        ))
        .map_err(db("giving each callback attempt its row"))?;
    }
    conn.execute_batch(&callbacks::ddl())
        .map_err(db("creating the callbacks table"))?;
    conn.execute_batch(directory::DIRECTORY_DDL)
        .map_err(db("creating the known_numbers table"))?;
    let v1: i64 = conn
        .query_row(schema::IS_V1, [], |r| r.get(0))
        .map_err(db("checking the events layout"))?;
    if v1 > 0 {
        tracing::info!(store = %path.display(), "rewriting the events table of calltrail 0.1 without its key (once)");
        conn.execute_batch(&format!("BEGIN; {} COMMIT;", schema::MIGRATE_V1))
            .map_err(db("migrating the events table"))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store and applies the schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A missing directory gives DuckDB's less helpful error; create it.
            let _ = std::fs::create_dir_all(dir);
        }
        let created = !path.exists();
        if created {
            create_atomically(path)?;
        }
        // Between the new store's rename and this open, anyone may open it:
        // a `calltrail query` then holds it read-only for a moment (the
        // daemon's first start lost that race in tests/it/query_live.rs).
        // A store made here is waited for; any other lock fails at once
        // (`rederive` beside a running daemon).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let opened = loop {
            match native::RawDb::open(path) {
                Err(StoreError::Native { message, .. })
                    if created
                        && message.contains("Could not set lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                r => break r,
            }
        };
        let (raw, conn) = opened.map_err(|e| match e {
            StoreError::Native { message, .. } => StoreError::OpenNative {
                path: path.to_path_buf(),
                message,
            },
            e => e,
        })?;
        apply_schema(&conn, path)?;
        let next = next_seq_of(&conn)?;
        let (db, conn) = database::Database::new(path, raw, conn);
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            state: Arc::new(StateConfig::default()),
            clock: Clock::System,
            commit_lock: Arc::new(Mutex::new(())),
            state_lock: Arc::new(Mutex::new(())),
            next_seq: Arc::new(Mutex::new(next)),
            seq_unsure: Arc::default(),
            covered_cache: Arc::default(),
            recent: Arc::new(Mutex::new(recent::Recent::new(next))),
            bulk: Arc::default(),
            observer: Arc::default(),
            state_actions: Arc::default(),
            swept: Mutex::new(None),
            db,
        })
    }

    /// Uses `cfg` for the derived state (thresholds, intervals, formulas).
    pub fn with_state(mut self, cfg: StateConfig) -> Store {
        self.state = Arc::new(cfg);
        self
    }

    /// Uses `clock` for the derived state's "now" (handles inherit it).
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// Tells `observer` what every later state derivation changed, after
    /// its commit (this handle and every other; set once).
    pub fn observe_state(&self, observer: Arc<dyn crate::state::StateObserver>) {
        // Under the deriver's lock: no derivation straddles the moment, so
        // every commit is either before it (in what a later read of the
        // tables sees) or told to the observer.
        let _serial = self.state_guard();
        let _ = self.observer.set(observer);
    }

    /// Lets `rules` decide, inside every later state derivation's
    /// transaction, the actions its events cause (set once).
    pub fn act_on_state(&self, rules: Arc<dyn actions::StateActions>) {
        let _ = self.state_actions.set(rules);
    }

    /// The clock of the derived state.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Applies `[store] memory_limit` and `threads` (DuckDB settings of the
    /// whole database; `None` keeps DuckDB's defaults). The values are
    /// checked by the config (`is_memory_size`) before they get here.
    pub fn with_limits(
        self,
        memory_limit: Option<&str>,
        threads: Option<u32>,
    ) -> Result<Store, StoreError> {
        if let Some(m) = memory_limit {
            self.set_memory_limit(m)?;
        }
        if let Some(t) = threads {
            let sql = format!("SET threads = {}", t.max(1));
            self.setup(Box::new(move |c: &Connection| c.execute_batch(&sql)))
                .map_err(db("setting the thread count"))?;
        }
        Ok(self)
    }

    /// Sets DuckDB's `memory_limit` for the whole database (kept across
    /// reopens; a later call wins).
    pub fn set_memory_limit(&self, memory_limit: &str) -> Result<(), StoreError> {
        let sql = format!(
            "SET memory_limit = '{}'",
            memory_limit.trim().replace('\'', "''")
        );
        self.setup(Box::new(move |c: &Connection| c.execute_batch(&sql)))
            .map_err(db("setting the memory limit"))
    }

    /// Makes every commit durable before anyone sees it (`run`, where
    /// readers act on what they see: the publisher, the action worker).
    /// DuckDB otherwise commits a big transaction that is due to
    /// checkpoint without writing it to the WAL, visible at once, and
    /// checkpoints it; when that checkpoint fails (a full disk), the
    /// transaction is gone once the invalidated database is reopened, after
    /// others may have published or acted on it. Written to the WAL first,
    /// it survives the failed checkpoint (DuckDB then reports it "durable,
    /// but the autocheckpoint failed", and its retry adds nothing).
    pub fn with_durable_commits(self) -> Result<Store, StoreError> {
        self.setup(Box::new(|c: &Connection| {
            c.execute_batch(&format!(
                "SET auto_checkpoint_skip_wal_threshold = {}",
                u64::MAX
            ))
        }))
        .map_err(db("making every commit go through the WAL"))?;
        Ok(self)
    }

    /// Applies a setting of the whole database now, and again whenever the
    /// database is reopened (see [`database`]).
    pub fn setup(&self, setup: Setup) -> Result<(), duckdb::Error> {
        self.db.setup(&self.lock(), setup)
    }

    /// Whether the store can be written, as the last retried write found.
    pub fn health(&self) -> &health::Health {
        &self.db.health
    }

    /// The derived-state settings in use.
    pub fn state_config(&self) -> &StateConfig {
        &self.state
    }

    /// Opens an existing store without writing to it.
    pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
        let cfg = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .map_err(db("configuring read-only access"))?;
        Connection::open_with_flags(path, cfg).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another connection to the same database.
    pub fn handle(&self) -> Result<Store, StoreError> {
        let conn = self.db.connect()?;
        Ok(Store {
            conn,
            path: self.path.clone(),
            state: self.state.clone(),
            clock: self.clock,
            commit_lock: self.commit_lock.clone(),
            state_lock: self.state_lock.clone(),
            next_seq: self.next_seq.clone(),
            seq_unsure: self.seq_unsure.clone(),
            covered_cache: self.covered_cache.clone(),
            recent: self.recent.clone(),
            bulk: self.bulk.clone(),
            observer: self.observer.clone(),
            state_actions: self.state_actions.clone(),
            swept: Mutex::new(None),
            db: self.db.clone(),
        })
    }

    /// Events were committed without passing through [`recent`].
    fn recent_forget(&self) {
        let next = self.peek_seq();
        self.recent().forget(next);
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, recent::Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `limit` events after `seq` from memory, when all of them are
    /// still held there (else `None`: read them with [`Store::events_after`]).
    pub fn recent_after(&self, seq: i64, limit: usize) -> Option<Vec<(i64, Event)>> {
        self.recent().after(seq, limit)
    }

    /// The committed `covered` ranges of a file (from the cache, else the
    /// table); call with the commit guard held.
    fn covered_of(
        &self,
        conn: &Connection,
        source: &str,
        file_fp: &str,
    ) -> Result<Covered, StoreError> {
        let key = (source.to_string(), file_fp.to_string());
        let cache = self.covered_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        drop(cache);
        Covered::load(conn, source, file_fp)
    }

    /// Remembers a file's ranges once the transaction that wrote them has
    /// committed (a rolled-back range must never be believed).
    fn remember_covered(&self, source: &str, file_fp: &str, covered: Covered) {
        let mut cache = self.covered_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert((source.to_string(), file_fp.to_string()), covered);
    }

    /// The `seq` the next appended event gets; call with the commit guard
    /// held, and [`Store::advance_seq`] once the transaction committed.
    pub(crate) fn peek_seq(&self) -> i64 {
        *self.next_seq.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn advance_seq(&self, by: usize) {
        *self.next_seq.lock().unwrap_or_else(|p| p.into_inner()) += by as i64;
    }

    /// Held for the whole of a writing transaction (see `commit_lock`).
    pub(crate) fn commit_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.commit_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Held for the whole of a transaction on the derived tables.
    fn state_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.state_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This handle's connection, moved to the database as reopened first
    /// if it was (see [`database`]).
    fn lock(&self) -> ConnGuard<'_> {
        // A panic while holding the lock cannot leave DuckDB half-written
        // (transactions roll back), so a poisoned lock is safe to reuse.
        let mut g = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.db.refresh(&mut g);
        ConnGuard(g)
    }

    /// Tells the store's [`health`] how a write its caller (the writer
    /// `what`) retries went: a success means that writer is no longer held
    /// up; a failed write (an I/O error, an invalidated database) is counted
    /// and logged (at most once a minute), and an invalidated database is
    /// reopened.
    fn noted<T>(&self, what: &str, r: Result<T, StoreError>) -> Result<T, StoreError> {
        match &r {
            Ok(_) => self.db.health.written(what),
            Err(e) => {
                if let Some(f) = Failure::of(e) {
                    self.db.health.failed(what, e, f);
                    if f == Failure::Invalidated {
                        self.reopen();
                    }
                }
            }
        }
        r
    }

    /// Reopens the database DuckDB invalidated (unless another handle just
    /// did, or the last attempt failed moments ago), and starts the
    /// handles' shared memory of it afresh: the next `seq`, the events
    /// held for the publisher, the covered ranges, the bulk connection.
    fn reopen(&self) {
        let seen = {
            let g = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            g.generation()
        };
        let _serial = self.commit_guard();
        let r = self.db.reopen(seen, |c| {
            let next = next_seq_of(c)?;
            *self.next_seq.lock().unwrap_or_else(|p| p.into_inner()) = next;
            self.seq_unsure.store(false, Ordering::SeqCst);
            self.recent().forget(next);
            self.covered_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            *self.bulk.lock().unwrap_or_else(|p| p.into_inner()) = None;
            Ok(())
        });
        match r {
            Ok(true) => self.db.health.written(REOPENING),
            Ok(false) => {}
            Err(e) => self
                .db
                .health
                .failed(REOPENING, &e, Failure::of(&e).unwrap_or(Failure::Io)),
        }
    }

    /// Call with the commit guard held, before taking `seq`s: after a
    /// failed commit, reads the next `seq` back from the store (the commit
    /// may have been durable) and forgets what the publisher's memory holds.
    fn settle_seq(&self, conn: &Connection) -> Result<(), StoreError> {
        if !self.seq_unsure.load(Ordering::SeqCst) {
            return Ok(());
        }
        let next = next_seq_of(conn)?;
        *self.next_seq.lock().unwrap_or_else(|p| p.into_inner()) = next;
        self.recent().forget(next);
        self.seq_unsure.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// A commit failed: what the handles remember of the store may be
    /// behind it (see `seq_unsure`).
    fn commit_failed(&self) {
        self.seq_unsure.store(true, Ordering::SeqCst);
        self.covered_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The committed checkpoint of `source`, if any.
    pub fn checkpoint(&self, source: &str) -> Result<Option<Checkpoint>, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT file_fp, dev, inode, byte_offset, line_no FROM checkpoints WHERE source = ?",
            params![source],
            |r| {
                Ok(Checkpoint {
                    file_fp: r.get(0)?,
                    dev: r.get(1)?,
                    inode: r.get(2)?,
                    byte_offset: r.get::<_, i64>(3)? as u64,
                    line_no: r.get::<_, i64>(4)? as u64,
                })
            },
        )
        .optional()
        .map_err(db("reading the checkpoint"))
    }

    /// When the checkpoint of `source` was last written.
    pub fn checkpoint_time(&self, source: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.lock();
        let us: Option<i64> = conn
            .query_row(
                "SELECT epoch_us(updated_at) FROM checkpoints WHERE source = ?",
                params![source],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("reading the checkpoint time"))?;
        Ok(us.and_then(DateTime::from_timestamp_micros))
    }

    /// Per file fingerprint, the offset of the last record of `source`
    /// stored (as event, reject or blank line): what the tailer needs when
    /// the file it was reading is gone.
    pub fn stored_offsets(&self, source: &str) -> Result<HashMap<u64, u64>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT file_fp, arg_max(last_offset, end_offset) FROM covered
                 WHERE source = ? GROUP BY file_fp",
            )
            .map_err(db("preparing the stored-offsets scan"))?;
        let rows = stmt
            .query_map(params![source], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db("scanning stored offsets"))?;
        let mut out = HashMap::new();
        for r in rows {
            let (fp, off) = r.map_err(db("reading a stored offset"))?;
            if let Ok(fp) = u64::from_str_radix(&fp, 16) {
                out.insert(fp, u64::try_from(off).unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// Commits a batch atomically: events, rejects, actions, the span of
    /// the file they were read from and (when given) the source checkpoint.
    /// Records whose offset lies in a range of the file already stored are
    /// dropped (counted as duplicates).
    pub fn commit_batch(
        &self,
        source: &str,
        events: &[Event],
        rejects: &[RejectRow],
        actions: &[NewAction],
        checkpoint: Option<&Checkpoint>,
        span: Option<&Span>,
    ) -> Result<CommitStats, StoreError> {
        let r = self.commit_batch_now(source, events, rejects, actions, checkpoint, span);
        if r.is_err() {
            self.commit_failed();
        }
        self.noted(&format!("storing a batch of {source}"), r)
    }

    fn commit_batch_now(
        &self,
        source: &str,
        events: &[Event],
        rejects: &[RejectRow],
        actions: &[NewAction],
        checkpoint: Option<&Checkpoint>,
        span: Option<&Span>,
    ) -> Result<CommitStats, StoreError> {
        let now = Utc::now();
        let _serial = self.commit_guard();
        let mut conn = self.lock();
        self.settle_seq(&conn)?;
        let t0 = std::time::Instant::now();
        let tx = conn.transaction().map_err(db("starting a transaction"))?;
        let mut covered = match span {
            Some(sp) => self.covered_of(&tx, source, &sp.file_fp)?,
            None => Covered::default(),
        };
        // Only a batch overlapping what is stored of its file (a re-read:
        // rare) is checked record by record, against the exact offsets.
        let stored = match span {
            Some(sp) if covered.overlaps(sp.start, sp.end) => {
                Some(StoredOffsets::load(&tx, source, &sp.file_fp)?)
            }
            _ => None,
        };
        let seen = |off: Option<u64>| match (&stored, off) {
            (Some(st), Some(o)) => st.contains(o),
            _ => false,
        };
        let fresh: Vec<&Event> = events
            .iter()
            .filter(|e| !seen(offset_of(&e.event_id)))
            .collect();
        let fresh_rejects: Vec<RejectRow> = rejects
            .iter()
            .filter(|r| !seen(Some(r.byte_offset)))
            .cloned()
            .collect();
        let first = self.peek_seq();
        let batch = arrow_stage::events_batch(&fresh, now, first)
            .map_err(|e| StoreError::Malformed(format!("building the event batch: {e}")))?;
        let t_loaded = t0.elapsed();
        let inserted = events::append(&tx, batch)?;
        let t_appended = t0.elapsed();
        let mut stats = CommitStats {
            inserted,
            duplicates: events.len() - inserted,
            rejects: insert_rejects(&tx, source, &fresh_rejects, now)?,
            actions: 0,
        };
        stats.actions = actions::insert(&tx, actions, now)?;
        let t_actions = t0.elapsed();
        if let Some(sp) = span {
            covered.record(&tx, source, sp)?;
        }
        let t_covered = t0.elapsed();
        if let Some(cp) = checkpoint {
            // An UPDATE in place costs a third of INSERT OR REPLACE (which
            // deletes and re-inserts the keyed row).
            let values = params![
                cp.file_fp,
                cp.dev,
                cp.inode,
                cp.byte_offset as i64,
                cp.line_no as i64,
                ts(now),
                source
            ];
            let updated = tx
                .prepare_cached(
                    "UPDATE checkpoints SET file_fp = ?, dev = ?, inode = ?, byte_offset = ?,
                     line_no = ?, updated_at = ? WHERE source = ?",
                )
                .and_then(|mut st| st.execute(values))
                .map_err(db("writing the checkpoint"))?;
            if updated == 0 {
                tx.execute(
                    "INSERT INTO checkpoints (file_fp, dev, inode, byte_offset, line_no, updated_at, source)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
                .map_err(db("writing the checkpoint"))?;
            }
        }
        let t_cp = t0.elapsed();
        tx.commit().map_err(db("committing the batch"))?;
        self.advance_seq(stats.inserted);
        self.recent().push(first, fresh.iter().copied());
        if let Some(sp) = span {
            self.remember_covered(source, &sp.file_fp, covered);
        }
        tracing::debug!(
            events = stats.inserted,
            duplicates = stats.duplicates,
            load_us = t_loaded.as_micros() as u64,
            append_us = (t_appended - t_loaded).as_micros() as u64,
            actions_us = (t_actions - t_appended).as_micros() as u64,
            covered_us = (t_covered - t_actions).as_micros() as u64,
            cp_us = (t_cp - t_covered).as_micros() as u64,
            commit_us = (t0.elapsed() - t_cp).as_micros() as u64,
            commit_ms = t0.elapsed().as_millis() as u64,
            "events stored"
        );
        Ok(stats)
    }

    /// The ranges of `file_fp` already stored for `source`.
    pub fn covered(&self, source: &str, file_fp: &str) -> Result<Covered, StoreError> {
        Covered::load(&self.lock(), source, file_fp)
    }

    /// The offsets at which records of `file_fp` are stored for `source`
    /// (an import of a file the store already holds in part skips them).
    pub fn stored_offsets_of(
        &self,
        source: &str,
        file_fp: &str,
    ) -> Result<StoredOffsets, StoreError> {
        StoredOffsets::load(&self.lock(), source, file_fp)
    }

    /// Commits a bulk import's events given as columns (the import path
    /// builds them straight from the parser's zero-copy events, leaving out
    /// records [`Store::stored_offsets_of`] holds), its rejects and the span
    /// they were read from. An import is the only writer of its store (DuckDB allows
    /// one process), so what it read of `covered` stays true. No actions, no
    /// source checkpoint: an import is idempotent instead.
    pub fn commit_import_columns(
        &self,
        source: &str,
        columns: arrow_stage::EventColumns,
        rejects: &[RejectRow],
        span: &Span,
    ) -> Result<CommitStats, StoreError> {
        let now = Utc::now();
        let _serial = self.commit_guard();
        self.settle_seq(&self.lock())?;
        let first = self.peek_seq();
        let batch = columns
            .finish(now, first)
            .map_err(|e| StoreError::Malformed(format!("building the event batch: {e}")))?;
        // The caller left out what was stored when it started; the span is
        // stored whole once this commits. One transaction on the bulk
        // connection: events (through DuckDB's Arrow scan), rejects,
        // the covered range.
        let mut covered = self.covered_of(&self.lock(), source, &span.file_fp)?;
        let range_sql = covered.record_sql(source, span);
        let rejects = arrow_stage::rejects_batch(source, rejects, now)
            .map_err(|e| StoreError::Malformed(format!("building the reject batch: {e}")))?;
        let mut bulk = self.bulk.lock().unwrap_or_else(|p| p.into_inner());
        if bulk.is_none() {
            let home: String = self
                .lock()
                .query_row("SELECT current_database()", [], |r| r.get(0))
                .map_err(db("naming the store's catalog"))?;
            let mut raw = self.db.raw().connect()?;
            raw.enable_staging(&home)?;
            *bulk = Some(raw);
        }
        let raw = bulk
            .as_ref()
            .ok_or_else(|| StoreError::Malformed("no bulk connection".into()))?;
        // The events go in through DuckDB's Arrow scan, in row-group slices
        // (zero-copy) that DuckDB's threads convert and write in parallel.
        let n = batch.num_rows();
        let slices = (0..n)
            .step_by(native::ROW_GROUP_ROWS)
            .map(|o| batch.slice(o, native::ROW_GROUP_ROWS.min(n - o)))
            .collect();
        let staged = raw.stage_arrow(slices)?;
        raw.exec("BEGIN TRANSACTION")?;
        let stored = (|| -> Result<CommitStats, StoreError> {
            let stats = CommitStats {
                inserted: staged.insert_into("events")?,
                rejects: raw.append("rejects", &rejects)?,
                ..CommitStats::default()
            };
            for sql in &range_sql {
                raw.exec(sql)?;
            }
            raw.exec("COMMIT")?;
            Ok(stats)
        })();
        let stats = match stored {
            Ok(s) => s,
            Err(e) => {
                let _ = raw.exec("ROLLBACK");
                return Err(e);
            }
        };
        self.advance_seq(stats.inserted);
        self.recent_forget();
        self.remember_covered(source, &span.file_fp, covered);
        Ok(stats)
    }

    /// Derives the state of up to `limit` stored events after the state
    /// checkpoint (`sink_checkpoints` row `state`), in one transaction with
    /// the derived rows, the state changes they produce (`state_events`) and
    /// the advanced checkpoint. Returns how many events were taken (0 =
    /// caught up) and how many state changes were recorded.
    pub fn derive_state(&self, limit: usize) -> Result<(usize, usize), StoreError> {
        let r = self.derive_state_now(limit);
        self.noted("deriving the state", r)
    }

    fn derive_state_now(&self, limit: usize) -> Result<(usize, usize), StoreError> {
        // The state is derived as of the store's clock; when it was stored
        // is the real time.
        let now = self.clock.now();
        let stored_at = Utc::now();
        let t_start = std::time::Instant::now();
        let _serial = self.state_guard();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db("starting a transaction"))?;
        Store::abandon_fresh(&tx)?;
        let after: i64 = tx
            .query_row(
                "SELECT coalesce(max(seq), 0) FROM sink_checkpoints WHERE sink = ?",
                params![STATE_SINK],
                |r| r.get(0),
            )
            .map_err(db("reading the state checkpoint"))?;
        let sql = events::SELECT_AFTER.replace("{table}", "events");
        let mut evs: Vec<Event> = Vec::new();
        let mut last = after;
        {
            let mut stmt = tx
                .prepare_cached(&sql)
                .map_err(db("preparing the event scan"))?;
            let rows = stmt
                .query_map(params![after, limit as i64], events::read_row)
                .map_err(db("scanning events"))?;
            for r in rows {
                let (seq, ev) = r.map_err(db("reading an event"))?;
                last = last.max(seq);
                match ev {
                    Ok(ev) => evs.push(ev),
                    Err(e) => {
                        tracing::warn!(seq, error = %e, "an unreadable event is left out of the state")
                    }
                }
            }
        }
        if last == after {
            return Ok((0, 0));
        }
        let t_read = std::time::Instant::now();
        let observer = self.observer.get();
        let mut changes = observer.map(|_| crate::state::Changes::default());
        let derived = crate::state::refresh(
            &tx,
            &Touched::from_events(&evs),
            &self.state,
            now,
            changes.as_mut(),
        )
        .map_err(db("updating the derived state"))?;
        if let Some(ch) = &mut changes {
            ch.interfaces.extend(evs.iter().filter_map(|e| {
                let (iface, device) = crate::state::interface_of(e)?;
                Some((
                    e.agent.as_deref()?.to_string(),
                    iface,
                    device,
                    e.ts.timestamp_micros(),
                ))
            }));
        }
        let mut recorded = 0;
        if !derived.is_empty() {
            events::stage(&tx, &derived, stored_at, 0)?;
            recorded = events::insert_staged_into(&tx, "state_events")?;
        }
        if let Some(rules) = self.state_actions.get() {
            let acts = rules.actions(&tx, &evs, &derived, stored_at)?;
            let n = actions::insert(&tx, &acts, stored_at)?;
            if n > 0 {
                tracing::debug!(actions = n, "rules queued actions");
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO sink_checkpoints VALUES (?, ?, ?)",
            params![STATE_SINK, last, ts(stored_at)],
        )
        .map_err(db("writing the state checkpoint"))?;
        // DuckDB's memory by tag (duckdb_memory()), for `state step` at
        // debug level only: it is a query.
        let mem: String = if tracing::enabled!(tracing::Level::DEBUG) {
            tx.query_row(
                "SELECT string_agg(tag || '=' || (memory_usage_bytes // 1000000)::VARCHAR || 'MB', ' ')
                 FROM duckdb_memory() WHERE memory_usage_bytes > 1000000",
                [],
                |r| r.get(0),
            )
            .unwrap_or_default()
        } else {
            String::new()
        };
        let t_commit = std::time::Instant::now();
        tx.commit().map_err(db("committing the derived state"))?;
        // One line per pass: what it took and where the time went
        // (bench/footprint.sh reads these).
        tracing::debug!(
            mem,
            events = evs.len(),
            recorded,
            read_ms = (t_read - t_start).as_millis() as u64,
            derive_ms = (t_commit - t_read).as_millis() as u64,
            commit_ms = t_commit.elapsed().as_millis() as u64,
            "state step"
        );
        if let (Some(o), Some(ch)) = (observer, changes) {
            o.committed(ch);
        }
        Ok((evs.len().max(1), recorded))
    }

    /// Forgets every derived table (not `state_events`, whose ids a new
    /// derivation reproduces) and rewinds the deriver to the first event, in
    /// one transaction; [`Store::derive_all`] then rebuilds it all (after a
    /// change of `[state]` settings, or to check a store).
    pub fn reset_state(&self) -> Result<(), StoreError> {
        let _serial = self.state_guard();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db("starting a transaction"))?;
        derive_fresh::clear_derived(&tx)?;
        tx.commit().map_err(db("committing the reset"))?;
        Ok(())
    }

    /// Derives the state of every stored event not derived yet (`import`,
    /// `rederive`), in steps of [`BULK_DERIVE_STEP`] events and with DuckDB's
    /// automatic checkpoint held back to every `BULK_CHECKPOINT_WAL` of
    /// WAL (restored after): every step deletes and rewrites rows all over
    /// the derived tables, and a checkpoint at DuckDB's default 16 MB of WAL
    /// rewrote their row groups after nearly every step. 10 M events: 719 s
    /// in steps of 50,000 with the default; 452 s with a 4 GB threshold;
    /// 271 s in steps of 200,000 with 1 GB (233 s once events were read in
    /// `seq`-bounded pages, see `events::SELECT_AFTER`).
    pub fn derive_all(&self) -> Result<usize, StoreError> {
        self.derive_all_with(|_| {})
    }

    /// [`Store::derive_all`], calling `progress` with the events derived so
    /// far after every step.
    pub fn derive_all_with(&self, progress: impl FnMut(u64)) -> Result<usize, StoreError> {
        self.derive_all_in_steps(BULK_DERIVE_STEP, progress)
    }

    /// [`Store::derive_all_with`] in steps of at most `step` events (the
    /// `[store] memory_budget`'s, `config::budget`); from scratch
    /// (`derive_fresh.rs`) when nothing is derived yet.
    pub fn derive_all_in_steps(
        &self,
        step: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<usize, StoreError> {
        {
            let conn = self.lock();
            let limit: String = conn
                .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
                .map_err(db("reading DuckDB's memory limit"))?;
            let wal = crate::config::budget::parse_size(&limit)
                .map_or(BULK_CHECKPOINT_WAL, |m| m / BULK_CHECKPOINT_SHARE)
                .clamp(MIN_CHECKPOINT_WAL, BULK_CHECKPOINT_WAL);
            tracing::debug!(memory_limit = %limit, checkpoint_wal = wal, "bulk derivation");
            conn.execute_batch(&format!("SET checkpoint_threshold = '{wal}B'"))
                .map_err(db("holding back checkpoints"))?;
        }
        let derived = (|| {
            let (mut recorded, mut taken) = (0, 0u64);
            if self.fresh_derivation_due()? {
                let window = (step.max(1) * FRESH_WINDOW_STEPS).min(FRESH_WINDOW_MAX) as u64;
                match self.derive_fresh(window, &mut progress) {
                    Ok(r) => recorded = r,
                    // A budget too small for it: the steps adapt theirs.
                    Err(e) if e.to_string().contains("Out of Memory") => {
                        tracing::warn!(error = %e, "DuckDB ran out of memory deriving the state from scratch; deriving it step by step (see [store] memory_limit)");
                        self.reset_state()?;
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut step = step.max(1);
            loop {
                let (n, r) = match self.derive_state(step) {
                    Ok(done) => done,
                    // Under a tight `[store] memory_limit` a big step may
                    // not fit: it was rolled back whole; take smaller ones.
                    Err(e) if step > MIN_DERIVE_STEP && e.to_string().contains("Out of Memory") => {
                        step = (step / 4).max(MIN_DERIVE_STEP);
                        tracing::warn!(step, "DuckDB ran out of memory deriving the state; going on in smaller steps (see [store] memory_limit)");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                recorded += r;
                if n == 0 {
                    return Ok(recorded);
                }
                // The step's rows and maps, freed, go back to the system.
                crate::config::budget::trim_heap();
                taken += n as u64;
                progress(taken);
            }
        })();
        let restored = self
            .lock()
            .execute_batch("RESET checkpoint_threshold")
            .map_err(db("restoring the checkpoint threshold"));
        let recorded = derived?;
        restored?;
        Ok(recorded)
    }

    /// How many stored events the state has not been derived from yet.
    pub fn underived(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .lock()
            .query_row(
                "SELECT count(*) FROM events WHERE seq >
                    (SELECT coalesce(max(seq), 0) FROM sink_checkpoints WHERE sink = ?)",
                params![STATE_SINK],
                |r| r.get(0),
            )
            .map_err(db("counting the events to derive"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Events with `seq > after`, oldest first.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<(i64, Event)>, StoreError> {
        self.events_after_in("events", after, limit)
    }

    /// Rows of `table` (`events` or `state_events`) with `seq > after`.
    pub fn events_after_in(
        &self,
        table: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        let table = if table == "state_events" {
            "state_events"
        } else {
            "events"
        };
        let sql = events::SELECT_AFTER.replace("{table}", table);
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(db("preparing the event scan"))?;
        let rows = stmt
            .query_map(params![after, limit as i64], events::read_row)
            .map_err(db("scanning events"))?;
        let mut out = Vec::new();
        for r in rows {
            let (seq, ev) = r.map_err(db("reading an event"))?;
            out.push((seq, ev?));
        }
        Ok(out)
    }

    /// The highest `seq` a sink has acknowledged (0 when none).
    pub fn sink_checkpoint(&self, sink: &str) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT seq FROM sink_checkpoints WHERE sink = ?",
            params![sink],
            |r| r.get(0),
        )
        .optional()
        .map(|v| v.unwrap_or(0))
        .map_err(db("reading a sink checkpoint"))
    }

    pub fn set_sink_checkpoint(&self, sink: &str, seq: i64) -> Result<(), StoreError> {
        let r = self
            .lock()
            .execute(
                "INSERT OR REPLACE INTO sink_checkpoints VALUES (?, ?, ?)",
                params![sink, seq, ts(Utc::now())],
            )
            .map(drop)
            .map_err(db("writing a sink checkpoint"));
        self.noted(&format!("writing the {sink} checkpoint"), r)
    }

    /// The highest event `seq` (0 for an empty store).
    pub fn max_seq(&self) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(db("reading the last event"))
    }

    /// Who called: the caller fields of the latest `enter_queue` (or record)
    /// event of `call_id` from `source`. Lines such as ABANDON carry no caller.
    pub fn caller_of_call(
        &self,
        source: &str,
        call_id: &str,
    ) -> Result<Option<CallerInfo>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT caller, caller_raw, caller_name FROM events
                 WHERE source = ? AND call_id = ? AND (caller IS NOT NULL OR caller_raw IS NOT NULL)
                 ORDER BY ts DESC, seq DESC LIMIT 1",
            )
            .map_err(db("preparing the caller lookup"))?;
        stmt.query_row(params![source, call_id], |r| {
            Ok(CallerInfo {
                caller: r.get(0)?,
                caller_raw: r.get(1)?,
                caller_name: r.get(2)?,
            })
        })
        .optional()
        .map_err(db("looking up a call's caller"))
    }

    /// Pending actions whose time has come, highest priority first, then
    /// oldest; without those of kind `except` below [`URGENT`] (callbacks
    /// held back by pacing).
    pub fn due_actions(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        except: Option<&str>,
    ) -> Result<Vec<PendingAction>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT action_id, kind, attempts, payload, coalesce(priority, 0) FROM actions
                 WHERE status = 'pending' AND next_attempt_at <= ?
                   AND (kind IS DISTINCT FROM ? OR coalesce(priority, 0) >= ?)
                 ORDER BY coalesce(priority, 0) DESC, created_at, action_id LIMIT ?",
            )
            .map_err(db("preparing the action scan"))?;
        let rows = stmt
            .query_map(params![ts(now), except, URGENT, limit as i64], |r| {
                Ok(PendingAction {
                    action_id: r.get(0)?,
                    kind: r.get(1)?,
                    attempts: r.get::<_, i32>(2)?.max(0) as u32,
                    payload: r.get(3)?,
                    priority: r.get(4)?,
                })
            })
            .map_err(db("scanning actions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db("reading an action"))
    }

    /// Count of actions still pending (due or not).
    pub fn pending_actions(&self) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT count(*) FROM actions WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .map_err(db("counting actions"))
    }

    /// Marks an action done (`status = 'done'`) or failed for good.
    pub fn finish_action(
        &self,
        action_id: &str,
        ok: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = self
            .lock()
            .execute(
                "UPDATE actions SET status = ?, attempts = attempts + 1, done_at = ?, last_error = ?
             WHERE action_id = ?",
                params![
                    if ok { "done" } else { "failed" },
                    ts(Utc::now()),
                    error,
                    action_id
                ],
            )
            .map(drop)
            .map_err(db("finishing an action"));
        self.noted(ACTION_WORKER, r)
    }

    /// Records a transient failure and when to try again.
    pub fn retry_action(
        &self,
        action_id: &str,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let r = self
            .lock()
            .execute(
                "UPDATE actions SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
             WHERE action_id = ?",
                params![error, ts(next), action_id],
            )
            .map(drop)
            .map_err(db("rescheduling an action"));
        self.noted(ACTION_WORKER, r)
    }

    /// Marks an action `skipped` with the reason (it is not to be done any
    /// more: a callback whose episode closed meanwhile).
    pub fn skip_action(&self, action_id: &str, reason: &str) -> Result<(), StoreError> {
        let r = self
            .lock()
            .execute(
                "UPDATE actions SET status = 'skipped', done_at = ?, last_error = ? WHERE action_id = ?",
                params![ts(Utc::now()), reason, action_id],
            )
            .map(drop)
            .map_err(db("skipping an action"));
        self.noted(ACTION_WORKER, r)
    }

    /// Settles time-dependent state (expired missed-call episodes, breaches
    /// the clock moves: callers still waiting, breaches going on, service
    /// levels judged at boundaries passed since this handle's last sweep)
    /// as of the store's clock.
    pub fn sweep(&self) -> Result<usize, StoreError> {
        let r = self.sweep_now();
        self.noted("sweeping the state", r)
    }

    fn sweep_now(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let stored_at = Utc::now();
        let _serial = self.state_guard();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db("starting a transaction"))?;
        let since = *self.swept.lock().unwrap_or_else(|e| e.into_inner());
        let closed =
            crate::state::sweep(&tx, &self.state, now, since).map_err(db("sweeping the state"))?;
        if !closed.is_empty() {
            events::stage(&tx, &closed, stored_at, 0)?;
            events::insert_staged_into(&tx, "state_events")?;
        }
        tx.commit().map_err(db("committing the sweep"))?;
        *self.swept.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        Ok(closed.len())
    }

    /// Runs `f` with the connection (for queries and summaries).
    pub fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(&self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltrail_parsers::{
        AgentResolver, NumberConfig, NumberNormalizer, QueueLogParser, SourceContext,
    };

    fn queue_log_parser() -> QueueLogParser {
        QueueLogParser::new(
            SourceContext::new("q", "pbx1"),
            NumberNormalizer::new(NumberConfig::default()).unwrap(),
            AgentResolver::default(),
        )
    }

    /// Parses `lines` (queue_log) and commits them as one batch, their event
    /// ids numbered from `first`; returns the next number.
    fn commit_lines(
        store: &Store,
        parser: &mut QueueLogParser,
        lines: &[String],
        first: usize,
    ) -> usize {
        let events: Vec<Event> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut e = parser.parse_line(l.as_bytes()).unwrap().unwrap();
                e.event_id = format!("q:00000000000000aa:{}", first + i);
                e
            })
            .collect();
        store
            .commit_batch("q", &events, &[], &[], None, None)
            .unwrap();
        first + lines.len()
    }

    /// A bulk derivation holds DuckDB's checkpoints back while it runs and
    /// gives the setting back (the daemon shares the database instance).
    #[test]
    fn derive_all_restores_the_checkpoint_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.duckdb")).unwrap();
        let setting = |s: &Store| -> String {
            s.lock()
                .query_row("SELECT current_setting('checkpoint_threshold')", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        let before = setting(&store);
        store.derive_all().unwrap();
        assert_eq!(setting(&store), before);
    }

    /// Deriving in small live steps, with a late batch of old lines (an
    /// agent first seen long ago, an agent whose latest call ends before
    /// the others'), gives the very state a whole rederive gives: the
    /// deriver's shortcuts (agents' ends read after a bound, parties read
    /// by row id, old state read by the deletes) change nothing.
    #[test]
    fn live_steps_with_late_old_lines_equal_a_rederive() {
        use chrono::TimeZone;
        let dir = tempfile::tempdir().unwrap();
        let t0 = 1_764_000_000; // 2025-11-24
        let store = Store::open(&dir.path().join("s.duckdb"))
            .unwrap()
            .with_clock(Clock::Fixed(Utc.timestamp_opt(t0 + 40 * 3600, 0).unwrap()));
        let mut parser = queue_log_parser();
        // A call: entered at t, answered by `agent` after 10 s (or lost),
        // `talk` seconds long; the callers repeat every 7 calls.
        let call = |i: i64, t: i64, agent: Option<&str>, talk: i64| -> Vec<String> {
            let id = format!("{t}.{i}");
            // One caller of the seven is no number (an endpoint name, so
            // its calls are internal): its `party_key` is a hash, its calls
            // are read by name (state::party_key).
            let caller = match i % 7 {
                3 => "alice".to_string(),
                n => format!("8916{n:07}"),
            };
            let mut l = vec![format!("{t}|{id}|sales|NONE|ENTERQUEUE||{caller}|1")];
            match agent {
                Some(a) => {
                    l.push(format!("{}|{id}|sales|{a}|CONNECT|10|{id}.1|2", t + 10));
                    l.push(format!(
                        "{}|{id}|sales|{a}|COMPLETECALLER|10|{talk}|1",
                        t + 10 + talk
                    ));
                }
                None => l.push(format!("{}|{id}|sales|NONE|ABANDON|1|1|30", t + 30)),
            }
            l
        };
        let mut batches: Vec<Vec<String>> = Vec::new();
        for b in 0..6 {
            let mut lines = Vec::new();
            for k in 0..5 {
                let i = b * 5 + k;
                let t = t0 + 3600 * (10 + i);
                let agent = ["Agent/201", "Agent/202", "Agent/203"]
                    .get((i % 4) as usize)
                    .copied();
                lines.extend(call(i, t, agent, 60 + i));
            }
            // A call whose lines come in three batches: a derivation from
            // scratch with a small window builds it more than once.
            let spread = t0 + 3600 * 10 + 100;
            match b {
                0 => lines.push(format!(
                    "{spread}|spread.1|sales|NONE|ENTERQUEUE||89165550000|1"
                )),
                3 => lines.push(format!(
                    "{}|spread.1|sales|Agent/202|CONNECT|20|spread.1.1|2",
                    spread + 20
                )),
                5 => lines.push(format!(
                    "{}|spread.1|sales|Agent/202|COMPLETEAGENT|20|40|1",
                    spread + 60
                )),
                _ => {}
            }
            // An open call of 203's (answered, not ended) in the third batch.
            if b == 2 {
                let t = t0 + 3600 * 25;
                lines.push(format!("{t}|open.1|sales|NONE|ENTERQUEUE||89169999999|1"));
                lines.push(format!("{}|open.1|sales|Agent/203|CONNECT|5|x.1|1", t + 5));
            }
            batches.push(lines);
        }
        // Late: lines of long ago, for a new agent and for 201.
        batches.push(
            [
                call(100, t0, Some("Agent/299"), 30),
                call(101, t0 + 60, Some("Agent/201"), 30),
            ]
            .concat(),
        );
        let mut n = 1;
        for lines in &batches {
            n = commit_lines(&store, &mut parser, lines, n);
            while store.derive_state(7).unwrap().0 > 0 {}
        }
        let dump = |s: &Store| -> Vec<String> {
            [
                "SELECT * FROM agent_status ORDER BY ALL",
                "SELECT * EXCLUDE (updated_at) FROM calls ORDER BY ALL",
                "SELECT * FROM callers ORDER BY ALL",
                "SELECT * FROM last_agent ORDER BY ALL",
                "SELECT * FROM missed_calls ORDER BY ALL",
                "SELECT * FROM sla_intervals ORDER BY ALL",
                "SELECT * FROM sla_breaches ORDER BY ALL",
                "SELECT * FROM agent_facts ORDER BY ALL",
                "SELECT * FROM call_attempts ORDER BY ALL",
            ]
            .iter()
            .map(|q| {
                s.with_conn(|c| {
                    let mut st = c
                        .prepare(&format!("SELECT CAST(t AS VARCHAR) FROM ({q}) t"))
                        .unwrap();
                    let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
                    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
                })
            })
            .collect()
        };
        let live = dump(&store);
        assert!(
            live[0].contains("Agent/299") || live[0].contains("299"),
            "{}",
            live[0]
        );
        assert!(live[0].contains("open.1"), "203 is on a call: {}", live[0]);
        assert!(
            live[1].contains("'call_id': spread.1, 'stint': 1, 'direction': inbound, 'queue': sales, 'caller': +79165550000")
                && live[1].contains("'ended_at': '2025-11-25 02:02:40', 'outcome': answered"),
            "{}",
            live[1]
        );
        let hashed: i64 = store.with_conn(|c| {
            c.query_row(
                "SELECT count(DISTINCT party_key) FROM calls
                 WHERE party = 'alice' AND party_key >= 9223372036854775808::UBIGINT",
                [],
                |r| r.get(0),
            )
            .unwrap()
        });
        assert_eq!(hashed, 1, "{}", live[1]);
        assert!(live[2].contains("+7916"), "{}", live[2]);
        // From scratch (`derive_fresh.rs`), and again with so small a window
        // that nearly every call is met again and built a second time.
        store.reset_state().unwrap();
        assert!(store.fresh_derivation_due().unwrap());
        store.derive_all().unwrap();
        assert_eq!(dump(&store), live);
        store.reset_state().unwrap();
        store.derive_all_in_steps(1, |_| {}).unwrap();
        assert_eq!(dump(&store), live);
        assert!(!store.fresh_derivation_due().unwrap());

        // Killed between its commits: partial rows and the mark. The live
        // deriver throws them away and derives every event again; so does
        // `derive_all`.
        let mark = |s: &Store| {
            s.with_conn(|c| {
                c.execute_batch(
                    "DELETE FROM callers; DELETE FROM sla_intervals;
                     INSERT INTO sink_checkpoints VALUES ('state_fresh', 1, now());
                     UPDATE sink_checkpoints SET seq = 0 WHERE sink = 'state'",
                )
                .unwrap()
            })
        };
        mark(&store);
        while store.derive_state(7).unwrap().0 > 0 {}
        assert_eq!(dump(&store), live);
        mark(&store);
        assert!(store.fresh_derivation_due().unwrap());
        store.derive_all().unwrap();
        assert_eq!(dump(&store), live);
    }

    /// The deriver and the sweep decide time-dependent state by the store's
    /// clock, not the system's: one miss in 2020 and one in 2099 are both
    /// `open` an hour after the first (the system clock would have expired
    /// the first), and both `expired` eight days after the second (the
    /// system clock would leave the second open).
    #[test]
    fn the_derived_state_follows_the_store_clock() {
        use chrono::TimeZone;
        let dir = tempfile::tempdir().unwrap();
        let past = 1_577_836_800; // 2020-01-01T00:00:00Z
        let future = 4_070_908_800; // 2099-01-01T00:00:00Z
        let at = |t: i64| Clock::Fixed(Utc.timestamp_opt(t, 0).unwrap());
        let store = Store::open(&dir.path().join("s.duckdb"))
            .unwrap()
            .with_clock(at(past + 3600));
        assert_eq!(store.clock(), at(past + 3600));
        let mut parser = queue_log_parser();
        let lines = [
            format!("{past}|c1|sales|NONE|ENTERQUEUE||89161234567|1"),
            format!("{}|c1|sales|NONE|ABANDON|1|1|30", past + 30),
            format!("{future}|c2|sales|NONE|ENTERQUEUE||89167654321|1"),
            format!("{}|c2|sales|NONE|ABANDON|1|1|30", future + 30),
        ];
        commit_lines(&store, &mut parser, &lines, 0);
        store.derive_state(100).unwrap();
        let statuses = |s: &Store| -> Vec<String> {
            s.with_conn(|c| {
                let mut st = c
                    .prepare("SELECT status FROM missed_calls ORDER BY last_missed_at")
                    .unwrap();
                let rows = st.query_map([], |r| r.get(0)).unwrap();
                rows.map(Result::unwrap).collect()
            })
        };
        assert_eq!(statuses(&store), ["open", "open"]);
        // A handle keeps the clock; another clock is the handle's own.
        assert_eq!(store.handle().unwrap().clock(), store.clock());
        let later = store.handle().unwrap().with_clock(at(future + 8 * 86_400));
        assert_eq!(later.sweep().unwrap(), 2);
        assert_eq!(statuses(&store), ["expired", "expired"]);
    }

    /// `[store] memory_limit` and `threads` reach DuckDB.
    #[test]
    fn limits_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.duckdb"))
            .unwrap()
            .with_limits(Some("300MB"), Some(1))
            .unwrap();
        let get = |name: &str| -> String {
            store
                .lock()
                .query_row(
                    &format!("SELECT current_setting('{name}')::VARCHAR"),
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(get("memory_limit"), "286.1 MiB");
        assert_eq!(get("threads"), "1");
    }

    /// `underived` counts what the deriver has not taken yet, and the
    /// progress of a bulk derivation ends there.
    #[test]
    fn a_bulk_derivation_reports_its_progress() {
        use calltrail_parsers::{EventKind, SourceKind, Str};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.duckdb")).unwrap();
        let now = Utc::now();
        let events: Vec<Event> = (0..1_000)
            .map(|i| {
                let mut e = Event::new(
                    SourceKind::AsteriskQueueLog,
                    Str::from("q"),
                    Str::from("pbx1"),
                    now,
                    EventKind::EnterQueue,
                    Str::from("ENTERQUEUE"),
                );
                e.event_id = format!("q:00000000000000aa:{i}");
                e.call_id = Some(format!("c{i}"));
                e.queue = Some(Str::from("sales"));
                e
            })
            .collect();
        store
            .commit_batch("q", &events, &[], &[], None, None)
            .unwrap();
        assert_eq!(store.underived().unwrap(), 1_000);
        let mut seen = Vec::new();
        store.derive_all_with(|n| seen.push(n)).unwrap();
        assert_eq!(seen.last(), Some(&1_000));
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(store.underived().unwrap(), 0);
    }
}
