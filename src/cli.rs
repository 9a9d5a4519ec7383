//! The command line (clap): `calltrail [--config FILE] <command>`.

use crate::query::Format;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// calltrail: PBX logs in, normalized call events, state and actions out.
#[derive(Debug, Parser)]
#[command(
    name = "calltrail",
    version,
    about,
    long_about = None,
    after_help = "Environment: CALLTRAIL_NOW=<RFC 3339 instant, e.g. 2026-11-20T10:00:00Z> fixes the clock of the derived state (episode expiry, breaches going on) at that instant, for tests."
)]
pub struct Cli {
    /// Config file (TOML). Relative paths inside it are relative to its directory.
    #[arg(
        short,
        long,
        global = true,
        env = "CALLTRAIL_CONFIG",
        default_value = "calltrail.toml"
    )]
    pub config: PathBuf,
    /// Log filter, e.g. `info`, `debug`, `calltrail=debug` (RUST_LOG also works).
    #[arg(long, global = true, env = "CALLTRAIL_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tail every configured source: store events, publish them, run actions.
    /// Stops cleanly on SIGTERM / Ctrl-C.
    Run {
        /// Read every source to its current end, finish publishing and
        /// actions, print a summary and exit.
        #[arg(long)]
        once: bool,
    },
    /// Read whole log files (history, rotated archives) into the store.
    /// Importing the same file again adds nothing.
    Import {
        /// The source the files belong to (default: the configured source of
        /// the kind given by --kind or suggested by the file name:
        /// `queue_log*` → asterisk_queue_log, `*.csv` → CDR). When the config
        /// has no source of that kind, the name to store them under (default
        /// `import-<pbx>-<kind>`; give the name the live source will have).
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// Source kind of the files, when the file name does not tell it.
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// PBX name the events belong to (default: the configured source's;
        /// without one, the configured sources' PBX when they all name one,
        /// else `default`).
        #[arg(long, value_name = "NAME")]
        pbx: Option<String>,
        /// Time zone of timestamps written without one (default: the
        /// source's; without a configured source, the zone of the PBX's
        /// configured sources when they agree, else UTC).
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
        /// Store the events only; the derived state (calls, missed calls,
        /// last agent …) follows on the next `run` or `calltrail rederive`.
        /// For bulk backfills: deriving runs at its own pace afterwards.
        #[arg(long)]
        no_state: bool,
        /// Files to import (plain or .gz); rotated sets are read oldest first
        /// (`queue_log.2.gz`, `queue_log.1`, `queue_log`).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Run one read-only SQL statement against the store: on the file, or
    /// through the daemon's HTTP API ([http] listen) while `run` holds it.
    Query {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The SQL statement, e.g. "SELECT kind, count(*) FROM events GROUP BY ALL".
        sql: String,
    },
    /// Check the config file and explain every problem found.
    CheckConfig,
    /// Rebuild every derived table (calls, callers, missed_calls, SLA, …)
    /// from the stored events, e.g. after changing [state] settings. Needs
    /// the store to itself (stop `run` first).
    Rederive,
}
