//! Snapshot sources: files that are rewritten in place rather than appended
//! to — WinTariff DBF call tables ([`dbf`]) and Oktell
//! `A_Stat_Connections_1x1` exports ([`oktell`]).
//!
//! One thread per source. It wakes on a change notification for the file's
//! directory or every `poll_interval_ms`, `stat`s the file and, when the
//! size/times/inode changed (or a WinTariff grace deadline passed, or
//! `rescan_s` elapsed), reads a consistent copy ([`read`]) and hands it to
//! the source's [`Engine`]. The engine diffs it against the per-row state
//! (`snapshot_rows` in DuckDB, loaded at start) and returns a [`Delta`]: new
//! events, rejects and the changed row states, committed in ONE store
//! transaction ([`Store::commit_snapshot`]). Only after the commit does the
//! engine take the new states as its own ([`Engine::committed`]); a failed
//! commit is retried from a fresh read. Event ids are `<source>:rec:<row
//! id>:v<N>` (DBF) and `<source>:leg:<Id>:v<N>` (Oktell), and inserts ignore
//! known ids, so a crash between any two steps neither loses nor repeats an
//! event.
//!
//! With `--once` the current snapshot is read once, what is due is emitted,
//! and the thread ends. [`import_file`] does the same for one file, with
//! every incomplete WinTariff row treated as due (history has no grace).
//!
//! Snapshot sources ask no rules for actions yet (the missed-call email is
//! a queue_log rule).

pub mod dbf;
pub mod oktell;
pub mod read;

use crate::config::{Config, SnapshotOptions, SourceConfig};
use crate::ingest::IngestStats;
use crate::store::{RejectRow, RowState, Store, StoreError};
use anyhow::Context;
use calltrail_parsers::{
    AgentResolver, Charset, Event, NumberConfig, NumberNormalizer, SourceContext, SourceKind, Str,
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use read::{FileStat, Watch};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// True for the source kinds read as snapshots.
pub fn handles(kind: SourceKind) -> bool {
    matches!(kind, SourceKind::WintariffDbf | SourceKind::OktellCsv)
}

/// Why a snapshot could not be used at all (the next change is tried again).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the table does not fit the configuration: {0}")]
    Mapping(String),
}

/// What one snapshot changed: to be committed in one transaction.
#[derive(Debug, Default)]
pub struct Delta {
    pub events: Vec<Event>,
    pub rejects: Vec<RejectRow>,
    pub states: Vec<RowState>,
    /// Records / lines looked at, for the statistics.
    pub records: u64,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.rejects.is_empty() && self.states.is_empty()
    }
}

/// A source's diff logic over whole-file snapshots.
pub trait Engine {
    /// Diffs `bytes` against the committed state; does not change it.
    fn apply(&mut self, bytes: &[u8], now: DateTime<Utc>) -> Result<Delta, SnapshotError>;
    /// Takes the states of a committed delta as the new committed state.
    fn committed(&mut self, delta: &Delta);
    /// The earliest moment a row becomes due without the file changing.
    fn next_deadline(&self) -> Option<DateTime<Utc>>;
}

/// The parser context, number normalizer and agent resolver of a source.
pub fn context_for(
    cfg: &Config,
    src: &SourceConfig,
) -> anyhow::Result<(SourceContext, NumberNormalizer, AgentResolver)> {
    let tz: Tz = src
        .timezone
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown time zone {:?}", src.timezone))?;
    let ctx = SourceContext {
        source: Str::from(src.name.as_str()),
        pbx: Str::from(src.pbx.as_str()),
        timezone: tz,
        fallback_charset: Charset::from_name(&src.charset)
            .with_context(|| format!("unknown charset {:?}", src.charset))?,
    };
    let numbers = NumberNormalizer::new(NumberConfig {
        default_region: cfg.numbers.default_region.clone(),
        max_internal_len: cfg.numbers.max_internal_len,
        match_last_digits: cfg.numbers.match_last_digits,
    })?;
    let agents = AgentResolver::new(cfg.agents.aliases.clone());
    Ok((ctx, numbers, agents))
}

/// The options of `src` (`[snapshot.<name>]`, defaults when absent).
pub fn options_for(cfg: &Config, src: &SourceConfig) -> SnapshotOptions {
    cfg.snapshot.get(&src.name).cloned().unwrap_or_default()
}

/// Builds the engine for `src` with its committed state from `store`.
/// `history` makes every incomplete WinTariff row due at once (imports).
pub fn engine_for(
    cfg: &Config,
    src: &SourceConfig,
    store: &Store,
    history: bool,
) -> anyhow::Result<Box<dyn Engine + Send>> {
    store.ensure_snapshot_schema()?;
    let states = store
        .snapshot_rows(&src.name)
        .with_context(|| format!("loading the row states of source {}", src.name))?;
    let (ctx, numbers, agents) = context_for(cfg, src)?;
    let opts = options_for(cfg, src);
    Ok(match src.kind {
        SourceKind::WintariffDbf => {
            let mut e = dbf::DbfEngine::new(ctx, numbers, agents, &opts, states)?;
            if history {
                e.set_grace(chrono::Duration::zero());
            }
            Box::new(e)
        }
        SourceKind::OktellCsv => Box::new(oktell::OktellEngine::new(ctx, numbers, agents, states)),
        other => anyhow::bail!("{other} is not a snapshot source kind"),
    })
}

fn fnv_hex(bytes: &[u8]) -> String {
    format!("{:016x}", calltrail_parsers::hash::fnv1a64(bytes))
}

/// Commits a delta; on success the engine takes its states.
fn commit(
    store: &Store,
    source: &str,
    engine: &mut (dyn Engine + Send),
    delta: &Delta,
    stats: &mut IngestStats,
) -> Result<bool, StoreError> {
    if delta.is_empty() {
        stats.lines += delta.records;
        return Ok(false);
    }
    let c = store.commit_snapshot(source, &delta.events, &delta.rejects, &delta.states)?;
    engine.committed(delta);
    stats.lines += delta.records;
    stats.events += c.inserted as u64;
    stats.duplicates += c.duplicates as u64;
    stats.rejects += c.rejects as u64;
    Ok(c.inserted > 0)
}

/// Reads `path` once as a snapshot of source `src` and stores what it
/// holds (every row due: history has no grace). For `calltrail import`.
pub fn import_file(
    cfg: &Config,
    src: &SourceConfig,
    store: &Store,
    path: &Path,
) -> anyhow::Result<IngestStats> {
    let mut engine = engine_for(cfg, src, store, true)?;
    let snap = read::read_consistent(path)?
        .with_context(|| format!("{} does not exist", path.display()))?;
    let delta = engine
        .apply(&snap.bytes, Utc::now())
        .with_context(|| format!("reading {}", path.display()))?;
    let mut stats = IngestStats::default();
    commit(store, &src.name, engine.as_mut(), &delta, &mut stats)
        .with_context(|| format!("storing what {} holds", path.display()))?;
    Ok(stats)
}

/// Starts the thread that follows a snapshot source (see the module docs).
pub fn spawn(
    cfg: &Config,
    src: &SourceConfig,
    store: &Store,
    stop: Arc<AtomicBool>,
    once: bool,
    wakers: [Arc<Notify>; 3],
    status: Option<Arc<crate::tail::status::SourceStatus>>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<IngestStats>>> {
    let store = store.handle()?;
    let engine = engine_for(cfg, src, &store, false)?;
    let follower = Follower {
        name: src.name.clone(),
        path: src.path.clone(),
        poll: Duration::from_millis(src.poll_interval_ms),
        rescan: Duration::from_secs(options_for(cfg, src).rescan_s.max(1)),
        store,
        engine,
        wakers,
        stats: IngestStats::default(),
        status,
    };
    std::thread::Builder::new()
        .name(format!("snap-{}", src.name))
        .spawn(move || {
            let status = follower.status.clone();
            let r = follower.run(&stop, once);
            if let Some(s) = status {
                s.ended();
            }
            r
        })
        .context("starting a snapshot source thread")
}

struct Follower {
    name: String,
    path: std::path::PathBuf,
    poll: Duration,
    rescan: Duration,
    store: Store,
    engine: Box<dyn Engine + Send>,
    wakers: [Arc<Notify>; 3],
    stats: IngestStats,
    status: Option<Arc<crate::tail::status::SourceStatus>>,
}

/// How one cycle ended.
enum Cycle {
    /// Applied (and committed when there was anything).
    Applied(FileStat),
    /// Nothing to read (no file yet).
    Missing,
    /// Try again soon (unstable read, store error).
    Retry,
}

impl Follower {
    fn run(mut self, stop: &AtomicBool, once: bool) -> anyhow::Result<IngestStats> {
        let watch = Watch::new(&self.path);
        tracing::info!(source = %self.name, path = %self.path.display(), "following snapshot source");
        let mut seen: Option<FileStat> = None;
        let mut last_read: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        let mut once_tries = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let now = Utc::now();
            let current = match read::stat(&self.path) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(source = %self.name, error = %e, "cannot stat the file");
                    None
                }
            };
            if let Some(s) = &self.status {
                s.checked(current.is_some());
            }
            let due = self.engine.next_deadline().is_some_and(|d| d <= now);
            let stale = last_read.is_none_or(|t| t.elapsed() >= self.rescan);
            let changed = current.is_some() && current != seen;
            if changed || due || (current.is_some() && stale) {
                match self.cycle(once)? {
                    Cycle::Applied(st) => {
                        seen = Some(st);
                        last_read = Some(Instant::now());
                        backoff = Duration::from_millis(100);
                    }
                    Cycle::Missing => {}
                    Cycle::Retry => {
                        once_tries += 1;
                        if once && once_tries >= 20 {
                            anyhow::bail!(
                                "{}: no consistent snapshot could be read and stored",
                                self.path.display()
                            );
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                }
            }
            if once {
                break;
            }
            let mut wait = self.poll;
            if let Some(d) = self.engine.next_deadline() {
                let until = (d - Utc::now()).to_std().unwrap_or_default();
                wait = wait.min(until.max(Duration::from_millis(10)));
            }
            watch.wait(wait);
        }
        Ok(self.stats)
    }

    /// Reads, diffs and commits one snapshot.
    fn cycle(&mut self, once: bool) -> anyhow::Result<Cycle> {
        let snap = match read::read_consistent(&self.path) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Cycle::Missing),
            Err(e) => {
                tracing::warn!(source = %self.name, error = %e, "no consistent snapshot");
                return Ok(Cycle::Retry);
            }
        };
        let fp = fnv_hex(&snap.bytes);
        let delta = match self.engine.apply(&snap.bytes, Utc::now()) {
            Ok(d) => d,
            Err(e) if once => {
                return Err(e).with_context(|| format!("{} (snapshot {fp})", self.path.display()))
            }
            Err(e) => {
                // A configuration problem: wait for the next change.
                tracing::error!(source = %self.name, snapshot = %fp, error = %e, "snapshot not usable");
                return Ok(Cycle::Applied(snap.stat));
            }
        };
        let (events, rejects, states) =
            (delta.events.len(), delta.rejects.len(), delta.states.len());
        match commit(
            &self.store,
            &self.name,
            self.engine.as_mut(),
            &delta,
            &mut self.stats,
        ) {
            Ok(woke) => {
                if woke {
                    self.wakers.iter().for_each(|w| w.notify_one());
                }
                tracing::info!(source = %self.name, snapshot = %fp, bytes = snap.bytes.len(), records = delta.records, events, rejects, states, "snapshot applied");
                Ok(Cycle::Applied(snap.stat))
            }
            Err(e) if once => Err(e).context("storing a snapshot"),
            Err(e) => {
                if crate::store::health::Failure::of(&e).is_some() {
                    // The store's health logged it (once, then every minute).
                    tracing::debug!(source = %self.name, error = %e, "cannot store a snapshot; retrying");
                } else {
                    tracing::error!(source = %self.name, error = %e, "cannot store a snapshot; retrying");
                }
                Ok(Cycle::Retry)
            }
        }
    }
}

#[cfg(test)]
mod tests;
