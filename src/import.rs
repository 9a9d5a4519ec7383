//! `calltrail import`: read whole files through the same parse → store path
//! as `run`. Event ids come from content (first-line fingerprint + offset),
//! so importing the same file twice, or a file `run` already tailed under
//! the same source, adds nothing. Imports create no actions.
//!
//! (Issue 4 brings `.gz` archives, ordering of rotated sets and a progress bar.)

use crate::config::{Config, SourceConfig};
use crate::ingest::{Ingest, IngestStats};
use crate::store::Store;
use crate::tail::{fnv1a, split_lines, Batch, DevIno};
use anyhow::Context;
use calltrail_parsers::SourceKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct ImportArgs {
    pub kind: Option<SourceKind>,
    pub pbx: Option<String>,
    pub timezone: Option<String>,
    pub paths: Vec<PathBuf>,
}

/// The source settings an import runs under: the configured source of that
/// kind (and PBX, when given), with the command line's overrides.
pub fn source_for(cfg: &Config, args: &ImportArgs) -> anyhow::Result<SourceConfig> {
    let kind = args.kind.unwrap_or(SourceKind::AsteriskQueueLog);
    if kind != SourceKind::AsteriskQueueLog {
        anyhow::bail!("--kind {kind}: only asterisk_queue_log can be imported in this version");
    }
    let base = cfg
        .sources
        .iter()
        .find(|s| s.kind == kind && args.pbx.as_ref().is_none_or(|p| &s.pbx == p));
    let mut src = match base {
        Some(s) => s.clone(),
        None => {
            let pbx = args
                .pbx
                .clone()
                .context("no configured source of that kind: give --pbx")?;
            SourceConfig {
                name: format!("import-{pbx}"),
                kind,
                path: PathBuf::new(),
                pbx,
                timezone: "UTC".into(),
                charset: "cp1251".into(),
                poll_interval_ms: 500,
            }
        }
    };
    if let Some(tz) = &args.timezone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!("--timezone {tz:?}: not an IANA time zone (e.g. Europe/Moscow)")
        })?;
        src.timezone = tz.clone();
    }
    Ok(src)
}

/// Imports every path; returns totals.
pub fn import(cfg: &Config, args: &ImportArgs) -> anyhow::Result<IngestStats> {
    let src = source_for(cfg, args)?;
    let store = Store::open(&cfg.store.path)?;
    let mut ingest = Ingest::new(cfg, &src, store, false)?;
    for path in &args.paths {
        import_file(&mut ingest, path).with_context(|| format!("importing {}", path.display()))?;
    }
    Ok(ingest.stats)
}

fn import_file(ingest: &mut Ingest, path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)?;
    let meta = std::fs::metadata(path)?;
    let first_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| i + 1);
    let fp = fnv1a(&bytes[..first_end]);
    let devino = DevIno {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    let (mut pos, mut line_no) = (0usize, 0u64);
    while pos < bytes.len() {
        let (lines, used, last) = split_lines(&bytes[pos..], pos as u64, line_no, 20_000, true);
        pos += used;
        line_no = last;
        let batch = Batch {
            file_fp: fp,
            devino,
            end_offset: pos as u64,
            end_line_no: line_no,
            lines,
        };
        ingest.process(&batch, false)?;
    }
    Ok(())
}
