//! Finding a followed file again after rotation. The rotated siblings of
//! `<path>` (by default `<path>.*` and `<path>-*`: `queue_log.1`,
//! `queue_log.2.gz`, `queue_log-20261121`, …) are matched by identity — the
//! fingerprint of the first line, device + inode as the tie-breaker — never
//! by name, so whatever logrotate or Asterisk's `logger rotate` renamed,
//! the file last read is found and finished, and the files rotated after it
//! are read in order before the live one.

use super::identity::{fp_hex, DevIno};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The default rotated-file patterns, relative to the followed path.
pub fn default_patterns(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy();
    let esc = glob::Pattern::escape(&p);
    vec![format!("{esc}.*"), format!("{esc}-*")]
}

/// A rotated sibling and what identifies it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub fp: u64,
    pub devino: DevIno,
    pub mtime: SystemTime,
    pub gz: bool,
}

/// A file to read, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub path: PathBuf,
    pub fp: u64,
    pub offset: u64,
    pub line_no: u64,
}

/// The regular files that match `patterns`, the live path excluded.
pub fn matching_paths(live: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pat in patterns {
        let Ok(paths) = glob::glob(pat) else {
            tracing::warn!(pattern = %pat, "invalid rotated-file pattern");
            continue;
        };
        for path in paths.flatten() {
            if path != live && !out.contains(&path) && path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// Older first: by modification time, then by rotation name (`.2` before
/// `.1`, `-20261120` before `-20261121`).
pub fn rotation_order(a: &Path, b: &Path) -> Ordering {
    rotation_key(a).cmp(&rotation_key(b))
}

/// `(rank, number)`: numbered suffixes sort by descending number, other
/// suffixes (dates) by name; the bare name (the live file) sorts last.
fn rotation_key(p: &Path) -> (u8, i64, String) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".gz").unwrap_or(&name);
    if let Some((_, n)) = stem.rsplit_once('.') {
        if let Ok(n) = n.parse::<i64>() {
            return (0, -n, String::new());
        }
    }
    if stem.contains('-') || stem.contains('.') {
        return (1, 0, stem.to_string());
    }
    (2, 0, stem.to_string())
}

/// The order in which to read files for a reader that stopped at `offset`
/// of the file fingerprinted `fp` (last seen at `devino`): that file from
/// `offset`, then every rotated file newer than it from the start. `live_fp`
/// is the fingerprint of the file now at the live path (not planned: the
/// caller reads it last). Returns `None` when the file is not among the
/// candidates.
pub fn plan(
    cands: &[Candidate],
    fp: u64,
    devino: Option<DevIno>,
    offset: u64,
    line_no: u64,
    live_fp: Option<u64>,
) -> Option<Vec<Planned>> {
    // The file itself: same fingerprint; prefer the same inode, then an
    // uncompressed copy (cheaper, and possibly still growing).
    let found = cands
        .iter()
        .filter(|c| c.fp == fp)
        .min_by_key(|c| (Some(c.devino) != devino, c.gz))?;
    // Newer than the file: modified later, or named as a later rotation.
    // Either alone can mislead (logrotate's compression gives an old
    // archive a new mtime; Asterisk's `sequential` strategy gives the newest
    // archive the highest number), so take both: reading an older file
    // again costs time, never correctness (event ids are deterministic).
    let mut newer: Vec<&Candidate> = cands
        .iter()
        .filter(|c| c.fp != fp && Some(c.fp) != live_fp)
        .filter(|c| {
            c.mtime >= found.mtime || rotation_order(&found.path, &c.path) == Ordering::Less
        })
        .collect();
    newer.sort_by(|a, b| {
        a.mtime
            .cmp(&b.mtime)
            .then_with(|| rotation_order(&a.path, &b.path))
    });
    // One entry per file content (`.1` and a half-written `.1.gz` are one).
    let mut seen = vec![fp];
    let mut out = vec![Planned {
        path: found.path.clone(),
        fp,
        offset,
        line_no,
    }];
    for c in newer {
        if seen.contains(&c.fp) {
            continue;
        }
        seen.push(c.fp);
        out.push(Planned {
            path: c.path.clone(),
            fp: c.fp,
            offset: 0,
            line_no: 0,
        });
    }
    tracing::info!(
        file = %found.path.display(),
        fp = %fp_hex(fp),
        then = out.len() - 1,
        "found the file last read among the rotated files"
    );
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cand(name: &str, fp: u64, ino: u64, secs: u64) -> Candidate {
        Candidate {
            path: PathBuf::from(name),
            fp,
            devino: DevIno { dev: 1, ino },
            mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            gz: name.ends_with(".gz"),
        }
    }

    #[test]
    fn order_of_rotated_names() {
        let mut v = vec![
            "q",
            "q.1",
            "q.3.gz",
            "q.2.gz",
            "q-20261121",
            "q-20261120.gz",
        ];
        v.sort_by(|a, b| rotation_order(Path::new(a), Path::new(b)));
        assert_eq!(
            v,
            vec![
                "q.3.gz",
                "q.2.gz",
                "q.1",
                "q-20261120.gz",
                "q-20261121",
                "q"
            ]
        );
    }

    #[test]
    fn plan_finishes_the_file_then_newer_ones() {
        let c = vec![
            cand("q.3.gz", 30, 3, 100),
            cand("q.2", 20, 2, 200),
            cand("q.1", 10, 1, 300),
        ];
        let p = plan(&c, 20, Some(DevIno { dev: 1, ino: 2 }), 55, 4, Some(99)).unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.path.to_str().unwrap(), p.offset))
            .collect();
        assert_eq!(names, vec![("q.2", 55), ("q.1", 0)]);
        assert!(plan(&c, 77, None, 0, 0, None).is_none());
    }

    #[test]
    fn plan_prefers_the_same_inode_and_skips_the_live_content() {
        let c = vec![
            cand("q.1.gz", 10, 9, 300),
            cand("q.1", 10, 1, 300),
            cand("q.0", 99, 5, 400),
        ];
        let p = plan(&c, 10, Some(DevIno { dev: 1, ino: 1 }), 5, 1, Some(99)).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, PathBuf::from("q.1"));
    }
}
