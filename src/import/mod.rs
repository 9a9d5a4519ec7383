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
use std::collections::BTreeSet;
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

/// The PBX name of an import into a source the config does not have, when
/// neither `--pbx` nor the configured sources give one.
pub const DEFAULT_PBX: &str = "default";

/// The source a file is imported under, and how it was chosen.
#[derive(Debug, Clone)]
pub struct ImportSource {
    pub config: SourceConfig,
    /// Not a configured source: made from the command line and defaults.
    pub unconfigured: bool,
    /// The time zone is UTC by default, not by `--timezone` or the config.
    pub timezone_assumed: bool,
}

/// The source settings a file is imported under: `--source` when it is a
/// configured source, else the configured source of `--kind` (or of the
/// kind the file name suggests) for `--pbx` when given, with the command
/// line's overrides. When the config has no source of that kind (an import
/// of history before the live sources are configured, or a config with only
/// `[store]`), the source is made from the command line: the name is
/// `--source` (default `import-<pbx>-<kind>`), the PBX `--pbx` (default: the
/// PBX of the configured sources when they all name one, else
/// [`DEFAULT_PBX`]), the time zone `--timezone` (default: the zone of that
/// PBX's configured sources when they agree on one, else UTC), every other
/// setting its default.
pub fn source_for(cfg: &Config, args: &ImportArgs, path: &Path) -> anyhow::Result<ImportSource> {
    let configured = args
        .source
        .as_ref()
        .and_then(|name| cfg.sources.iter().find(|s| &s.name == name));
    let (mut src, unconfigured) = if let Some(s) = configured {
        (s.clone(), false)
    } else {
        let line_sources: Vec<&SourceConfig> = cfg
            .sources
            .iter()
            .filter(|s| args.pbx.as_ref().is_none_or(|p| &s.pbx == p))
            .collect();
        let kind = match args.kind.or_else(|| kind_from_name(path)) {
            Some(k) => k,
            None => match line_sources.as_slice() {
                [only] if args.source.is_none() => only.kind,
                _ => {
                    let names: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
                    anyhow::bail!(
                        "cannot tell what kind of log {} is: give --kind KIND (one of {}){}",
                        path.display(),
                        names.join(", "),
                        if cfg.sources.is_empty() {
                            ""
                        } else {
                            " or --source NAME"
                        }
                    )
                }
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
        match (&args.source, line_sources.iter().find(|s| same_kind(s.kind))) {
            (None, Some(s)) => ((*s).clone(), false),
            // Lines stored under two names are two copies (event ids and
            // the de-duplication are per source): a name that is not
            // configured, next to a configured source of the same log, is
            // far more likely a typo.
            (Some(name), Some(s)) => anyhow::bail!(
                "--source {name:?}: no such source in {}; the configured {kind} source{} is {:?} (give --source {}, or --pbx for another PBX)",
                cfg.file.display(),
                args.pbx
                    .as_ref()
                    .map_or(String::new(), |p| format!(" of PBX {p:?}")),
                s.name,
                s.name
            ),
            (name, None) => (new_source(cfg, args, kind, name.as_deref())?, true),
        }
    };
    let mut timezone_assumed = false;
    if let Some(tz) = &args.timezone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!("--timezone {tz:?}: not an IANA time zone (e.g. Europe/Moscow)")
        })?;
        src.timezone = tz.clone();
    } else if unconfigured {
        match agreed_timezone(cfg, Some(&src.pbx)) {
            Some(tz) => src.timezone = tz.to_string(),
            None => timezone_assumed = true,
        }
    }
    if let Some(pbx) = &args.pbx {
        src.pbx = pbx.clone();
    }
    Ok(ImportSource {
        config: src,
        unconfigured,
        timezone_assumed,
    })
}

/// The time zone every configured source (of `pbx`, when given) agrees
/// on; `None` when they name several, or there are none.
pub fn agreed_timezone<'a>(cfg: &'a Config, pbx: Option<&str>) -> Option<&'a str> {
    let zones: BTreeSet<&str> = cfg
        .sources
        .iter()
        .filter(|s| pbx.is_none_or(|p| s.pbx == p))
        .map(|s| s.timezone.as_str())
        .collect();
    match zones.into_iter().collect::<Vec<_>>().as_slice() {
        [tz] => Some(tz),
        _ => None,
    }
}

/// A source of `kind` the config does not have, from the command line and
/// the defaults (see [`source_for`]).
fn new_source(
    cfg: &Config,
    args: &ImportArgs,
    kind: SourceKind,
    name: Option<&str>,
) -> anyhow::Result<SourceConfig> {
    let pbx = match &args.pbx {
        Some(p) => p.clone(),
        None => {
            let pbxes: BTreeSet<&str> = cfg.sources.iter().map(|s| s.pbx.as_str()).collect();
            match pbxes.into_iter().collect::<Vec<_>>().as_slice() {
                [] => DEFAULT_PBX.to_string(),
                [one] => (*one).to_string(),
                several => anyhow::bail!(
                    "no configured {kind} source, and the configured sources belong to several PBXes ({}): give --pbx NAME",
                    several.join(", ")
                ),
            }
        }
    };
    if pbx.trim().is_empty() {
        anyhow::bail!("--pbx: give a PBX name, not an empty string");
    }
    let name = name.map_or_else(|| format!("import-{pbx}-{kind}"), str::to_string);
    if !crate::config::is_source_name(&name) {
        anyhow::bail!(
            "source name {name:?}: use letters, digits, '-', '_' or '.' (give --source NAME)"
        );
    }
    Ok(SourceConfig::new(name, kind, pbx))
}

/// Imports every path, oldest rotated file first per source.
pub fn import(cfg: &Config, args: &ImportArgs) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    // Resolve every file's source before reading anything.
    let mut jobs: Vec<(SourceConfig, PathBuf, u64)> = Vec::new();
    let mut announced = BTreeSet::new();
    for path in &args.paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!("{} is not a file", path.display());
        }
        let src = source_for(cfg, args, path)?;
        if src.unconfigured && announced.insert(src.config.name.clone()) {
            let s = &src.config;
            tracing::info!(source = %s.name, kind = %s.kind, pbx = %s.pbx, timezone = %s.timezone, "importing into a source the config does not have (its settings come from the command line and the defaults)");
            if src.timezone_assumed {
                tracing::warn!(source = %s.name, "timestamps written without a zone are taken as UTC: give --timezone TZ if the PBX clock is not UTC");
            }
        }
        jobs.push((src.config, path.clone(), meta.len()));
    }
    jobs.sort_by(|a, b| {
        a.0.name
            .cmp(&b.0.name)
            .then_with(|| rotation_order(&a.1, &b.1))
    });
    let total: u64 = jobs.iter().map(|j| j.2).sum();
    let bar = progress_bar(args.progress, total);
    let limits = cfg.store.limits();
    tracing::debug!(?limits, "[store] memory_budget shared out");
    let store = Store::open(&cfg.store.path)?
        .with_limits(Some(&limits.duckdb_memory_limit()), Some(limits.threads))?
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
            let (stats, bytes) = import_file(p, &store, &path, &bar, limits.import_batch)
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
        // The derivation gets a DuckDB instance of its own: the reading's
        // (its caches of the blocks it wrote) is closed first, so that the
        // two phases' peaks do not add up (a 10 M-line import with state
        // peaked at 579 MB in one instance, its derivation alone at 526).
        drop(store);
        crate::config::budget::trim_heap();
        let store = Store::open(&cfg.store.path)?
            .with_limits(Some(&limits.duckdb_memory_limit()), Some(limits.threads))?
            .with_state(cfg.state_config())
            .with_clock(args.clock);
        let state_started = Instant::now();
        let bar = state_bar(&bar, store.underived()?);
        report.derived =
            store.derive_all_in_steps(limits.derive_step, |n| bar.set_position(n))? as u64;
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

/// Reads one file: a thread reads, splits and parses while this one stores,
/// in batches of `batch_lines` lines (one transaction each; the budget's,
/// `config::budget::MAX_IMPORT_BATCH` at most). Returns the file's totals
/// and the uncompressed bytes read.
fn import_file(
    parser: &mut BatchParser,
    store: &Store,
    path: &Path,
    bar: &ProgressBar,
    batch_lines: usize,
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
            text.batches(framing, batch_lines, |lines, end, line_no| {
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
            // What the batch's parsing and insert freed goes back to the
            // system (a 10 M-line import peaked at 602 MB without, 525 MB
            // with; the cost is a few ms a batch).
            crate::config::budget::trim_heap();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sources: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("[store]\npath = \"s.duckdb\"\n{sources}");
        crate::config::parse(&text, &dir.path().join("c.toml")).unwrap()
    }

    fn source(name: &str, kind: &str, pbx: &str, tz: &str) -> String {
        format!(
            "[[sources]]\nname = \"{name}\"\nkind = \"{kind}\"\npath = \"{name}.log\"\npbx = \"{pbx}\"\ntimezone = \"{tz}\"\n"
        )
    }

    fn args(source: Option<&str>, kind: Option<SourceKind>, pbx: Option<&str>) -> ImportArgs {
        ImportArgs {
            source: source.map(str::to_string),
            kind,
            pbx: pbx.map(str::to_string),
            ..ImportArgs::default()
        }
    }

    fn resolve(cfg: &Config, a: &ImportArgs, file: &str) -> anyhow::Result<ImportSource> {
        source_for(cfg, a, Path::new(file))
    }

    #[test]
    fn without_sources_the_command_line_and_the_defaults_make_one() {
        let cfg = config("");
        let s = resolve(&cfg, &args(None, None, None), "/h/queue_log.1").unwrap();
        assert!(s.unconfigured && s.timezone_assumed);
        assert_eq!(s.config.name, "import-default-asterisk_queue_log");
        assert_eq!(s.config.pbx, DEFAULT_PBX);
        assert_eq!(s.config.timezone, "UTC");
        let a = ImportArgs {
            timezone: Some("Europe/Moscow".into()),
            ..args(
                Some("pbx1-cdr"),
                Some(SourceKind::AsteriskCdrCsv),
                Some("pbx1"),
            )
        };
        let s = resolve(&cfg, &a, "/h/cdr-2025.txt").unwrap();
        assert!(s.unconfigured && !s.timezone_assumed);
        assert_eq!(
            (s.config.name.as_str(), s.config.kind, s.config.pbx.as_str()),
            ("pbx1-cdr", SourceKind::AsteriskCdrCsv, "pbx1")
        );
        assert_eq!(s.config.timezone, "Europe/Moscow");
        // What cannot be told.
        let e = resolve(&cfg, &args(None, None, None), "/h/history.txt").unwrap_err();
        assert!(e.to_string().contains("give --kind KIND"), "{e}");
        let e = resolve(&cfg, &args(Some("a b"), None, None), "/h/queue_log").unwrap_err();
        assert!(e.to_string().contains("use letters, digits"), "{e}");
    }

    #[test]
    fn a_new_source_takes_the_pbx_and_zone_the_config_agrees_on() {
        let cfg = config(&source("q", "asterisk_queue_log", "pbx1", "Europe/Moscow"));
        // The configured source of the kind.
        let s = resolve(&cfg, &args(None, None, None), "/h/queue_log").unwrap();
        assert!(!s.unconfigured);
        assert_eq!(s.config.name, "q");
        // A kind the config does not have: its PBX and zone.
        let s = resolve(&cfg, &args(None, None, None), "/h/Master.csv").unwrap();
        assert!(s.unconfigured && !s.timezone_assumed);
        assert_eq!(s.config.name, "import-pbx1-asterisk_cdr_csv");
        assert_eq!(s.config.timezone, "Europe/Moscow");
        // Another PBX: a new source, zone unknown.
        let s = resolve(&cfg, &args(None, None, Some("pbx2")), "/h/queue_log").unwrap();
        assert_eq!(s.config.name, "import-pbx2-asterisk_queue_log");
        assert!(s.timezone_assumed);
        // A new name beside the configured source of the same log.
        let e = resolve(&cfg, &args(Some("qq"), None, None), "/h/queue_log").unwrap_err();
        assert!(e.to_string().contains("is \"q\""), "{e}");
    }

    #[test]
    fn several_pbxes_need_pbx() {
        let cfg = config(&format!(
            "{}{}",
            source("a", "asterisk_queue_log", "pbx1", "UTC"),
            source("b", "asterisk_queue_log", "pbx2", "UTC")
        ));
        let e = resolve(&cfg, &args(None, None, None), "/h/Master.csv").unwrap_err();
        assert!(e.to_string().contains("give --pbx NAME"), "{e}");
        let s = resolve(&cfg, &args(None, None, Some("pbx2")), "/h/Master.csv").unwrap();
        assert_eq!(s.config.pbx, "pbx2");
        assert_eq!(s.config.timezone, "UTC");
        assert!(!s.timezone_assumed);
    }
}
