//! `calltrail actions list|retry|cancel`: an operator's view of the actions
//! outbox (docs/actions.md) — what was sent, what failed and why, what is
//! in doubt — and the two hand moves: `retry` (back to `pending`, due now)
//! and `cancel`.
//!
//! On the store file when it can be opened; while a running `calltrail run`
//! holds it, through the daemon's admin API ([`remote`], admin token);
//! either way the same [`ops`] do it, so both print the same. A retry made
//! through the daemon is picked up by its action worker within a second
//! (the worker polls for due actions).

pub mod ops;
mod remote;

use crate::cli::{invocation, shell_word, ActionsCommand};
use crate::config::Config;
use crate::query::{self, Format, ResultSet};
use crate::store::Store;
use anyhow::Context;
use chrono::Utc;
use ops::{Change, ListQuery, OpError};
use std::io::Write;

/// Characters of `last_error` shown in the table (JSON and CSV have all).
const ERROR_WIDTH: usize = 60;

/// Where the command works: the store file, or the daemon holding it.
enum Target {
    File(Store),
    Daemon(remote::Daemon),
}

fn target(cfg: &Config) -> anyhow::Result<Target> {
    let path = &cfg.store.path;
    if !path.exists() {
        anyhow::bail!(
            "no store at {}: nothing has run yet (store.path in {})",
            path.display(),
            cfg.file.display()
        );
    }
    match Store::open(path) {
        Ok(store) => Ok(Target::File(store)),
        Err(e) if e.to_string().contains("lock") => {
            if !cfg.http.enabled {
                anyhow::bail!(
                    "the store {} is held by another process ({e}), and [http] enabled = false in {}, so there is no daemon to ask. Stop the process holding the store, or enable [http] in the daemon's config",
                    path.display(),
                    cfg.file.display()
                );
            }
            tracing::debug!(store = %path.display(), "the store is held (a running `calltrail run`): through its admin API");
            Ok(Target::Daemon(remote::Daemon::new(cfg)?))
        }
        Err(e) => Err(e).with_context(|| format!("opening the store {}", path.display())),
    }
}

/// Runs one `actions` command: results to `out`, refusals to `err`.
/// `Ok(false)` when an id was unknown or its change refused (the others
/// were still done); `Err` when the command could not run at all.
pub fn run(
    cfg: &Config,
    cmd: &ActionsCommand,
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<bool> {
    match cmd {
        ActionsCommand::List {
            statuses,
            kind,
            since,
            id,
            due,
            limit,
            format,
        } => {
            let q = ListQuery {
                statuses: statuses.clone(),
                kind: kind.clone(),
                since: since.clone(),
                id: id.clone(),
                due: *due,
                limit: Some(*limit),
            };
            // Checked here too, so a bad flag reads the same either way.
            q.filter(Utc::now())?;
            let rs = match target(cfg)? {
                Target::File(store) => store.with_conn(|conn| ops::list(conn, &q, Utc::now()))?,
                Target::Daemon(d) => d.list(&q)?,
            };
            print(&rs, *format, *limit, out)?;
            Ok(true)
        }
        ActionsCommand::Retry { ids } => change(cfg, Change::Retry, ids, out, err),
        ActionsCommand::Cancel { ids } => change(cfg, Change::Cancel, ids, out, err),
    }
}

fn change(
    cfg: &Config,
    change: Change,
    ids: &[String],
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<bool> {
    let target = target(cfg)?;
    let mut refused = 0;
    for id in ids {
        let done = match &target {
            Target::File(store) => {
                match store.with_conn(|conn| ops::change(conn, change, id, Utc::now())) {
                    Ok((line, _)) => Ok(line),
                    Err(e @ OpError::Change { .. }) => Err(e.to_string()),
                    Err(e) => return Err(e.into()),
                }
            }
            Target::Daemon(d) => d.change(change, id)?,
        };
        match done {
            Ok(line) => writeln!(out, "{line}")?,
            Err(why) => {
                refused += 1;
                writeln!(err, "error: {why}")?;
            }
        }
    }
    if refused > 0 {
        if ids.len() > 1 {
            writeln!(
                err,
                "{refused} of {} actions not changed; see them with: {} --config {} actions list --id PREFIX --format json",
                ids.len(),
                invocation(),
                shell_word(&cfg.file.to_string_lossy())
            )?;
        }
        return Ok(false);
    }
    Ok(true)
}

/// The list in `format`: JSON and CSV every column, whole; the table the
/// columns an operator scans, the error cut short.
fn print(rs: &ResultSet, format: Format, limit: usize, out: &mut impl Write) -> anyhow::Result<()> {
    if format != Format::Table {
        return query::print(rs, format, out);
    }
    let col = |name: &str| rs.columns.iter().position(|c| c == name);
    let cell = |row: &[serde_json::Value], name: &str| -> String {
        match col(name).and_then(|i| row.get(i)) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }
    };
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "id",
        "kind",
        "status",
        "attempts",
        "created (UTC)",
        "next/done",
        "last_error",
    ]);
    for r in &rs.rows {
        let status = cell(r, "status");
        // A pending row shows when it is due; the others when they ended
        // (in_doubt: when its outcome became unknown).
        let when = if status == crate::store::actions::status::PENDING {
            cell(r, "next_attempt_at")
        } else {
            cell(r, "done_at")
        };
        t.add_row([
            cell(r, "action_id"),
            cell(r, "kind"),
            status,
            cell(r, "attempts"),
            cell(r, "created_at"),
            when,
            shorten(&cell(r, "last_error"), ERROR_WIDTH),
        ]);
    }
    writeln!(out, "{t}")?;
    let n = rs.rows.len();
    if n >= limit {
        writeln!(
            out,
            "({n} rows, the newest; --limit shows more, --format json shows every column)"
        )?;
    } else {
        writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })?;
    }
    Ok(())
}

/// `s` on one line, at most `width` characters (`…` marks a cut).
fn shorten(s: &str, width: usize) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= width {
        return line;
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_cut_to_one_short_line() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }
}
