//! The command line (clap): `calltrail [--config FILE] <command>`, and how
//! to type this program again in the hints it prints ([`invocation`]).

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
    /// Log lines as text (for people) or JSON (one object per line, for
    /// log collectors).
    #[arg(long, global = true, value_enum, env = "CALLTRAIL_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
        /// Keep the priority `import` was started with (by default it
        /// raises its niceness by 10 and takes the lowest best-effort IO
        /// priority, so that the PBX beside it comes first).
        #[arg(long)]
        no_nice: bool,
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
    /// The directory of known numbers (names, companies, VIP / blacklist /
    /// employee, preferred agent), kept in the store; through the running
    /// daemon's admin API while `run` holds it.
    Numbers {
        #[command(subcommand)]
        action: NumbersCommand,
    },
    /// The actions outbox (emails, webhooks, callbacks, SMS that rules
    /// queued): list them with their status and last error; retry or
    /// cancel one by hand. Through the running daemon's admin API while
    /// `run` holds the store. See docs/actions.md.
    Actions {
        #[command(subcommand)]
        action: ActionsCommand,
    },
    /// Is a calendar (`[calendars.NAME]`) or an Asterisk time spec
    /// ("09:00-17:59,mon-fri,*,*") open at an instant, and when does it
    /// open or close next (like Asterisk's TESTTIME).
    Calendar {
        /// A configured calendar's name, or a time spec.
        calendar: String,
        /// The instant (RFC 3339, e.g. 2026-12-05T03:00:00+03:00; default: now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The zone of a time spec (default: the sources' zone, else UTC).
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
    },
    /// The running daemon at a glance: ready or why not, each source's
    /// lines, rejects, bytes behind and last line, lags, actions, store
    /// size (from its /readyz and /metrics). Exit code 0 ready, 1 not
    /// ready, 3 not running.
    Status,
    /// Print a password hash for [[http.users]] (the password is read from
    /// the terminal without echo, or from the first line of standard
    /// input), or with --token a new random token and the SHA-256 for
    /// [[http.tokens]].
    Passwd {
        /// Make a token for a TV or a script instead of hashing a password.
        #[arg(long)]
        token: bool,
        /// The name to print in the config snippet.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The role to print in the config snippet: viewer or admin.
        #[arg(long, value_name = "ROLE", default_value = "viewer")]
        role: String,
    },
    /// Rebuild every derived table (calls, callers, missed_calls, SLA, …)
    /// from the stored events, e.g. after changing [state] settings. Needs
    /// the store to itself (stop `run` first).
    Rederive {
        /// Keep the priority `rederive` was started with (by default it
        /// raises its niceness by 10 and takes the lowest best-effort IO
        /// priority, so that the PBX beside it comes first).
        #[arg(long)]
        no_nice: bool,
    },
}

/// `calltrail numbers …`.
#[derive(Debug, Subcommand)]
pub enum NumbersCommand {
    /// Add a number; refuses one already there (see `numbers set`).
    Add {
        /// The number, in any form a caller id takes (normalized with [numbers]).
        number: String,
        #[command(flatten)]
        fields: EntryArgs,
    },
    /// Change the given fields of a number already there (an empty value
    /// clears a field).
    Set {
        number: String,
        #[command(flatten)]
        fields: EntryArgs,
    },
    /// Remove a number.
    Remove { number: String },
    /// Every entry with every column, and whether it is valid now.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Add or replace the entries of a CSV file (header row: number, and
    /// any of name, company, class, agent, valid_from, valid_until, note).
    /// Every row is checked first: one bad row and nothing is applied.
    Import {
        #[arg(value_name = "FILE.csv")]
        path: PathBuf,
    },
    /// Every entry as CSV on stdout, in the form `numbers import` reads.
    Export,
}

/// `calltrail actions …`.
#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// The newest actions (id, kind, status, attempts, when, last error).
    ///
    /// Statuses: pending (waiting for its time), sending (being sent now),
    /// in_doubt (may have been sent: needs an operator), done, failed
    /// (gave up: see last_error), skipped (never run), cancelled.
    #[command(
        after_help = "Examples:\n  calltrail actions list --status failed --status in_doubt\n  calltrail actions list --kind sms --since 24h --format json\n  calltrail actions list --due"
    )]
    List {
        /// Only this status (repeat the flag, or comma-separate, for several).
        #[arg(
            long = "status",
            value_name = "STATUS",
            value_delimiter = ',',
            value_parser = clap::builder::PossibleValuesParser::new(crate::store::action_admin::STATUSES)
        )]
        statuses: Vec<String>,
        /// Only this kind (email, webhook, callback, sms, …).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// Only actions created since: an age (90m, 12h, 7d), a UTC day or
        /// time (2026-11-20, "2026-11-20 06:00") or an RFC 3339 instant.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only ids starting with this (e.g. `rule:vip-sms:`).
        #[arg(long, value_name = "PREFIX")]
        id: Option<String>,
        /// Only pending actions whose time has come (what the worker runs next).
        #[arg(long)]
        due: bool,
        /// At most this many rows, the newest.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        /// Output format (the table cuts last_error short; CSV and JSON
        /// have every column, payload and result included).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Put actions back to pending, due now: a failed one (after fixing
    /// its cause), a cancelled one, or one in_doubt that you checked was
    /// NOT carried out (an SMS the phone never got, a callback that never
    /// rang) — it is then sent again. Refused for done, skipped, pending
    /// and sending actions.
    Retry {
        /// Action ids, as `actions list` shows them.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Cancel actions so they are never run (again): pending, in_doubt
    /// (you checked it was carried out, or it no longer matters) or
    /// failed. Refused for done, skipped, cancelled and sending actions.
    Cancel {
        /// Action ids, as `actions list` shows them.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

/// The fields `numbers add` / `numbers set` take. DATE: `YYYY-MM-DD` (a
/// whole day: --from its start, --until its end) or an RFC 3339 instant.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryArgs {
    /// vip, blacklist or employee.
    #[arg(long, value_name = "CLASS")]
    pub class: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[arg(long, value_name = "COMPANY")]
    pub company: Option<String>,
    /// Preferred agent id.
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<String>,
    /// Valid from (DATE).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Valid until (DATE, exclusive: a day counts whole).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// This program as the user can type it again, for the hints it prints:
/// `cargo run --` (`--release`, `--profile P`) when it runs from a cargo
/// target directory (a `cargo run` user has no `calltrail` on PATH), else
/// the program as it was invoked (argv[0]: a path, or a name PATH found).
pub fn invocation() -> String {
    let argv0 = std::env::args_os()
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    invocation_of(std::env::current_exe().ok().as_deref(), &argv0)
}

/// [`invocation`] for the executable `exe` started as `argv0`.
pub fn invocation_of(exe: Option<&std::path::Path>, argv0: &str) -> String {
    match exe.and_then(cargo_profile_dir) {
        Some(dir) if dir == "debug" => "cargo run --".to_string(),
        Some(dir) if dir == "release" => "cargo run --release --".to_string(),
        Some(dir) => format!("cargo run --profile {} --", shell_word(&dir)),
        None if argv0.is_empty() => "calltrail".to_string(),
        None => shell_word(argv0),
    }
}

/// The profile directory (`debug`, `release`, …) when `exe` lies in a cargo
/// target directory (`target/<profile>/` or `target/<triple>/<profile>/`,
/// recognised by the `CACHEDIR.TAG` cargo writes at its top).
fn cargo_profile_dir(exe: &std::path::Path) -> Option<String> {
    let dir = exe.parent()?;
    let profile = dir.file_name()?.to_str()?.to_string();
    dir.ancestors()
        .skip(1)
        .take(2)
        .any(|t| t.join("CACHEDIR.TAG").is_file())
        .then_some(profile)
}

/// `s` as one word for a POSIX shell (quoted only when it must be).
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cargo_built_binary_is_run_with_cargo() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        for sub in ["debug", "release", "x86_64-unknown-linux-gnu/release", "ci"] {
            std::fs::create_dir_all(target.join(sub)).unwrap();
        }
        std::fs::write(
            target.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        let exe = |sub: &str| target.join(sub).join("calltrail");
        let argv0 = "target/debug/calltrail";
        assert_eq!(invocation_of(Some(&exe("debug")), argv0), "cargo run --");
        assert_eq!(
            invocation_of(Some(&exe("release")), argv0),
            "cargo run --release --"
        );
        assert_eq!(
            invocation_of(Some(&exe("x86_64-unknown-linux-gnu/release")), argv0),
            "cargo run --release --"
        );
        assert_eq!(
            invocation_of(Some(&exe("ci")), argv0),
            "cargo run --profile ci --"
        );
    }

    #[test]
    fn an_installed_binary_is_run_as_invoked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let exe = dir.path().join("bin/calltrail");
        assert_eq!(invocation_of(Some(&exe), "calltrail"), "calltrail");
        assert_eq!(
            invocation_of(Some(&exe), "/opt/call trail/bin/calltrail"),
            "'/opt/call trail/bin/calltrail'"
        );
        assert_eq!(invocation_of(None, "./calltrail"), "./calltrail");
        assert_eq!(invocation_of(None, ""), "calltrail");
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_word("samples/calltrail.toml"),
            "samples/calltrail.toml"
        );
        assert_eq!(shell_word("my config.toml"), "'my config.toml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
