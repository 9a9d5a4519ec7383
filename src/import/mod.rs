//! `calltrail import`: read whole files — plain or `.gz` rotated archives —
//! through the same parse → store path as `run`, oldest file first, with a
//! progress bar and a closing summary. Event ids come from content
//! (first-line fingerprint + offset, of the uncompressed text), so importing
//! the same file twice, a `.gz` of a file `run` already tailed, or a file
//! under another name adds nothing. Imports create no actions and move no
//! source checkpoint.

use crate::config::{Config, SourceConfig};
use crate::ingest::{framing_of, parser_for, span_of, BatchParser, IngestStats};
use crate::store::Store;
use crate::tail::{fp_hex, rotation_order, Batch, DevIno, MAX_LINE};
use anyhow::Context;
use calltrail_parsers::SourceKind;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use text::Text;

mod text;

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct ImportArgs {
    /// A configured source to import into.
    pub source: Option<String>,
    pub kind: Option<SourceKind>,
    pub pbx: Option<String>,
    pub timezone: Option<String>,
    pub paths: Vec<PathBuf>,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// Leave deriving the state of what was imported to the next `run` or
    /// `rederive` (`--no-state`).
    pub skip_state: bool,
    /// The derived state's clock (`CALLTRAIL_NOW`, else the system's).
    pub clock: crate::clock::Clock,
}

/// One imported file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    pub source: String,
    pub stats: IngestStats,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    pub totals: IngestStats,
    /// Derived state changes recorded (`state_events`).
    pub derived: u64,
    /// Of `elapsed`, the time spent deriving the state at the end.
    pub state_elapsed: Duration,
    /// Uncompressed bytes read.
    pub bytes: u64,
    pub elapsed: Duration,
}

impl ImportReport {
    /// Lines per second over the whole import.
    pub fn rate(&self) -> f64 {
        self.totals.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Lines per second of reading, parsing and storing the events (the
    /// state derivation at the end excluded).
    pub fn event_rate(&self) -> f64 {
        let t = self.elapsed.saturating_sub(self.state_elapsed);
        self.totals.lines as f64 / t.as_secs_f64().max(1e-9)
    }
}

/// The kind a file's name suggests: `queue_log*` → queue_log, `*.csv` → CDR.
fn kind_from_name(path: &Path) -> Option<SourceKind> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.contains("queue_log") {
        return Some(SourceKind::AsteriskQueueLog);
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    if stem.ends_with(".csv") || stem.ends_with("csv") {
        return Some(SourceKind::AsteriskCdrCsv);
    }
    if stem.ends_with(".dbf") {
        return Some(SourceKind::WintariffDbf);
    }
    None
}

/// The source settings a file is imported under: `--source`, else the
/// configured source of `--kind` (or of the kind the file name suggests),
/// and PBX when given, with the command line's overrides.
pub fn source_for(cfg: &Config, args: &ImportArgs, path: &Path) -> anyhow::Result<SourceConfig> {
    let mut src = if let Some(name) = &args.source {
        cfg.sources
            .iter()
            .find(|s| &s.name == name)
            .cloned()
            .with_context(|| {
                let names: Vec<&str> = cfg.sources.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "--source {name:?}: no such source (configured: {})",
                    names.join(", ")
                )
            })?
    } else {
        let line_sources: Vec<&SourceConfig> = cfg
            .sources
            .iter()
            .filter(|s| args.pbx.as_ref().is_none_or(|p| &s.pbx == p))
            .collect();
        let kind = match args.kind.or_else(|| kind_from_name(path)) {
            Some(k) => k,
            None => match line_sources.as_slice() {
                [only] => only.kind,
                _ => anyhow::bail!(
                    "cannot tell which source {} belongs to: give --source NAME or --kind KIND",
                    path.display()
                ),
            },
        };
        let same_kind = |k: SourceKind| {
            k == kind
                || matches!(
                    (k, kind),
                    (SourceKind::AsteriskCdrCsv, SourceKind::AsteriskCdrCustom)
                        | (SourceKind::AsteriskCdrCustom, SourceKind::AsteriskCdrCsv)
                )
        };
        match line_sources.iter().find(|s| same_kind(s.kind)) {
            Some(s) => (*s).clone(),
            None => {
                let pbx = args.pbx.clone().with_context(|| {
                    format!("no configured {kind} source: give --pbx (and --timezone)")
                })?;
                SourceConfig::new(format!("import-{pbx}-{kind}"), kind, pbx)
            }
        }
    };
    if let Some(tz) = &args.timezone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!("--timezone {tz:?}: not an IANA time zone (e.g. Europe/Moscow)")
        })?;
        src.timezone = tz.clone();
    }
    if let Some(pbx) = &args.pbx {
        src.pbx = pbx.clone();
    }
    Ok(src)
}

/// Imports every path, oldest rotated file first per source.
pub fn import(cfg: &Config, args: &ImportArgs) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    // Resolve every file's source before reading anything.
    let mut jobs: Vec<(SourceConfig, PathBuf, u64)> = Vec::new();
    for path in &args.paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!("{} is not a file", path.display());
        }
        jobs.push((source_for(cfg, args, path)?, path.clone(), meta.len()));
    }
    jobs.sort_by(|a, b| {
        a.0.name
            .cmp(&b.0.name)
            .then_with(|| rotation_order(&a.1, &b.1))
    });
    let total: u64 = jobs.iter().map(|j| j.2).sum();
    let bar = progress_bar(args.progress, total);
    let store = Store::open(&cfg.store.path)?
        .with_limits(cfg.store.memory_limit.as_deref(), cfg.store.threads)?
        .with_state(cfg.state_config())
        .with_clock(args.clock);
    let mut report = ImportReport::default();
    let mut parser: Option<BatchParser> = None;
    for (src, path, disk_len) in jobs {
        bar.set_message(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let stats = if framing_of(src.kind).is_none() {
            // Snapshot sources (DBF, Oktell): the whole table is one read.
            let stats = crate::snapshot::import_file(cfg, &src, &store, &path)
                .with_context(|| format!("importing {}", path.display()))?;
            bar.inc(disk_len);
            report.bytes += disk_len;
            stats
        } else {
            if parser.as_ref().is_none_or(|p| p.source() != src.name) {
                parser = Some(BatchParser::new(&src.name, parser_for(cfg, &src)?));
            }
            let Some(p) = parser.as_mut() else { continue };
            let (stats, bytes) = import_file(p, &store, &path, &bar)
                .with_context(|| format!("importing {}", path.display()))?;
            report.bytes += bytes;
            stats
        };
        report.totals.add(&stats);
        report.files.push(FileReport {
            path,
            source: src.name.clone(),
            stats,
        });
    }
    // The derived state of everything stored and not derived yet.
    if !args.skip_state {
        let state_started = Instant::now();
        let bar = state_bar(&bar, store.underived()?);
        report.derived = store.derive_all_with(|n| bar.set_position(n))? as u64;
        report.state_elapsed = state_started.elapsed();
    }
    bar.finish_and_clear();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A progress bar on stderr over `total` bytes (hidden unless `enabled`).
pub fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg:20!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The progress bar turned to the state derivation: `events` to derive.
pub fn state_bar(bar: &ProgressBar, events: u64) -> ProgressBar {
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg:20!} [{bar:30}] {human_pos}/{human_len} events, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_length(events);
    bar.reset();
    bar.set_message("deriving state");
    bar.clone()
}

/// Lines per batch of an import (one transaction each): two of DuckDB's row
/// groups, so that a transaction's rows are merged into the table as the
/// row groups DuckDB wrote while inserting them (a transaction of less than
/// one row group is re-appended row by row at commit: 100,000 lines per
/// batch took 1.4x as long), and so that DuckDB's two threads each take one.
const IMPORT_BATCH: usize = 2 * crate::store::ROW_GROUP_ROWS;

/// Reads one file: a thread reads, splits and parses while this one stores.
/// Returns the file's totals and the uncompressed bytes read.
fn import_file(
    parser: &mut BatchParser,
    store: &Store,
    path: &Path,
    bar: &ProgressBar,
) -> anyhow::Result<(IngestStats, u64)> {
    let meta = std::fs::metadata(path)?;
    let devino = DevIno {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    let disk_read = Arc::new(AtomicU64::new(0));
    let mut text = Text::open(path, disk_read.clone())?;
    let first_end = text.first_line_end()?;
    let head = Arc::new(text.buf[..first_end.min(MAX_LINE)].to_vec());
    let fp = crate::tail::fnv1a(&text.buf[..first_end]);
    let framing = parser.framing();
    let source = parser.source().to_string();
    // What is already stored of this file (when anything is): its records
    // are parsed (to be counted) but not stored again.
    let stored = if store.covered(&source, &fp_hex(fp))?.is_empty() {
        crate::store::StoredOffsets::default()
    } else {
        store.stored_offsets_of(&source, &fp_hex(fp))?
    };
    let mut stats = IngestStats::default();
    let total = std::thread::scope(|scope| -> anyhow::Result<u64> {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let producer = scope.spawn(move || -> std::io::Result<u64> {
            text.batches(framing, IMPORT_BATCH, |lines, end, line_no| {
                let n = lines.len() as u64;
                let batch = Batch::new(fp, devino, head.clone(), lines, end, line_no);
                let Some(span) = span_of(&batch) else {
                    return true;
                };
                let parsed = Box::new(parser.parse_any_columns(&batch, &stored));
                let on_disk = disk_read.load(Ordering::Relaxed);
                // A failed send: the store side failed, stop reading.
                tx.send((parsed, span, n, on_disk)).is_ok()
            })
        });
        let mut shown = 0u64;
        for (parsed, span, n, on_disk) in rx {
            let p = *parsed;
            let (rejects, blank, dups) = (p.rejects.len(), p.blank, p.duplicates);
            let mut c = store.commit_import_columns(&source, p.columns, &p.rejects, &span)?;
            c.duplicates = dups as usize;
            stats.add(&IngestStats {
                lines: n,
                blank,
                events: c.inserted as u64,
                duplicates: c.duplicates as u64,
                rejects: rejects as u64,
                actions: 0,
            });
            // Progress in on-disk bytes (compressed for .gz).
            bar.inc(on_disk.saturating_sub(shown));
            shown = on_disk;
        }
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("the parser thread panicked"))?
            .context("reading the file")
    })?;
    Ok((stats, total))
}
