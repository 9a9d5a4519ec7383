//! The `calltrail` binary: parses the command line, sets up logging and
//! dispatches to the library's commands.

use anyhow::Context;
use calltrail::cli::{invocation, shell_word, Cli, Command};
use calltrail::clock::Clock;
use calltrail::import::ImportArgs;
use calltrail::{config, import, query, run};
use calltrail_parsers::SourceKind;
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    calltrail::config::budget::limit_malloc_arenas();
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str, format: calltrail::cli::LogFormat) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into());
    let _ = match format {
        calltrail::cli::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init(),
        calltrail::cli::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init(),
    };
}

fn load(cli: &Cli) -> anyhow::Result<config::Config> {
    config::load(&cli.config).map_err(anyhow::Error::from)
}

/// The derived state's clock: `CALLTRAIL_NOW` read once, at start.
fn clock() -> anyhow::Result<Clock> {
    let clock = Clock::from_env()?;
    if let Clock::Fixed(at) = clock {
        tracing::warn!(
            "clock fixed at {} ({}): the derived state takes that instant as now",
            at.to_rfc3339(),
            calltrail::clock::NOW_ENV
        );
    }
    Ok(clock)
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let clock = clock()?;
    match &cli.command {
        Command::CheckConfig => match config::load(&cli.config) {
            Ok(cfg) if !config::environment_problems(&cfg).is_empty() => {
                let problems = config::environment_problems(&cfg);
                eprintln!(
                    "{}",
                    config::ConfigError::Invalid {
                        path: cli.config.clone(),
                        problems
                    }
                );
                Ok(ExitCode::FAILURE)
            }
            Ok(cfg) => {
                for w in config::warnings(&cfg) {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: OK ({} source{}, store {}, kafka {}, email {}, http {})",
                    cli.config.display(),
                    cfg.sources.len(),
                    if cfg.sources.len() == 1 { "" } else { "s" },
                    cfg.store.path.display(),
                    cfg.kafka.as_ref().map_or("off".to_string(), |k| format!(
                        "{} topic {}",
                        k.brokers, k.topic
                    )),
                    cfg.email.smtp.as_ref().map_or(
                        format!("outbox {}", cfg.email.outbox.display()),
                        |s| format!("smtp {}:{}", s.host, s.port)
                    ),
                    if cfg.http.enabled {
                        cfg.http.listen.as_str()
                    } else {
                        "off"
                    },
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Run { once } => {
            let cfg = load(&cli)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let report = rt.block_on(run::run(&cfg, *once, clock))?;
            if *once {
                print_summary(&cfg, &report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            source,
            kind,
            pbx,
            timezone,
            no_state,
            no_nice,
            paths,
        } => {
            let cfg = load(&cli)?;
            if !*no_nice {
                calltrail::priority::lower_for_bulk();
            }
            let kind = match kind {
                Some(k) => Some(SourceKind::from_name(k).with_context(|| {
                    let names: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
                    format!("--kind {k:?}: expected one of {}", names.join(", "))
                })?),
                None => None,
            };
            let args = ImportArgs {
                source: source.clone(),
                kind,
                pbx: pbx.clone(),
                timezone: timezone.clone(),
                paths: paths.clone(),
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                skip_state: *no_state,
                clock,
            };
            let r = import::import(&cfg, &args)?;
            for f in &r.files {
                println!(
                    "  {} ({}): {} lines, {} new events, {} already stored, {} rejected",
                    f.path.display(),
                    f.source,
                    f.stats.lines,
                    f.stats.events,
                    f.stats.duplicates,
                    f.stats.rejects
                );
            }
            let s = r.totals;
            println!(
                "imported {} file(s): {} lines, {} new events, {} duplicates skipped, {} rejected, {} blank, in {:.2?} ({:.0} lines/s, {:.1} MB/s)",
                r.files.len(),
                s.lines,
                s.events,
                s.duplicates,
                s.rejects,
                s.blank,
                r.elapsed,
                r.rate(),
                r.bytes as f64 / 1e6 / r.elapsed.as_secs_f64().max(1e-9)
            );
            if *no_state {
                println!(
                    "  events stored at {:.0} lines/s; state not derived (--no-state): the next `run` or `calltrail rederive` derives it",
                    r.event_rate()
                );
            } else {
                println!(
                    "  events stored at {:.0} lines/s; state derived in {:.2?} ({} state changes recorded)",
                    r.event_rate(),
                    r.state_elapsed,
                    r.derived
                );
            }
            if s.rejects > 0 {
                println!(
                    "rejected lines are kept with their position and reason: {} --config {} query \"SELECT source, line_no, reason FROM rejects ORDER BY rejected_at DESC LIMIT 20\"",
                    invocation(),
                    shell_word(&cfg.file.to_string_lossy())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Calendar {
            calendar,
            at,
            timezone,
        } => {
            let cfg = load(&cli)?;
            let stdout = std::io::stdout();
            calltrail::calendar::check::run(
                &cfg,
                calendar,
                at.as_deref(),
                timezone.as_deref(),
                &mut stdout.lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Numbers { action } => {
            let cfg = load(&cli)?;
            let stdout = std::io::stdout();
            calltrail::numbers::run(&cfg, action, clock, &mut stdout.lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Actions { action } => {
            let cfg = load(&cli)?;
            let stdout = std::io::stdout();
            let all = calltrail::actions::cli::run(
                &cfg,
                action,
                &mut stdout.lock(),
                &mut std::io::stderr(),
            )?;
            Ok(if all {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Status => {
            let cfg = load(&cli)?;
            match calltrail::serve::status::run(&cfg) {
                Ok((text, ready)) => {
                    print!("{text}");
                    Ok(if ready {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    })
                }
                Err(e @ calltrail::serve::status::StatusError::NotRunning { .. }) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(3))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Passwd { token, name, role } => {
            let stdout = std::io::stdout();
            calltrail::serve::login::passwd::run(
                *token,
                name.as_deref(),
                role,
                &mut stdout.lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rederive { no_nice } => {
            let cfg = load(&cli)?;
            if !*no_nice {
                calltrail::priority::lower_for_bulk();
            }
            let limits = cfg.store.limits();
            tracing::debug!(?limits, "[store] memory_budget shared out");
            let store = calltrail::store::Store::open(&cfg.store.path)
                .context("opening the store (is `calltrail run` holding it?)")?
                .with_limits(Some(&limits.duckdb_memory_limit()), Some(limits.threads))?
                .with_state(cfg.state_config())
                .with_clock(clock);
            let started = std::time::Instant::now();
            store.reset_state()?;
            let bar = calltrail::import::state_bar(
                &calltrail::import::progress_bar(
                    std::io::IsTerminal::is_terminal(&std::io::stderr()),
                    0,
                ),
                store.underived()?,
            );
            let recorded =
                store.derive_all_in_steps(limits.derive_step, |n| bar.set_position(n))?;
            bar.finish_and_clear();
            println!(
                "derived state rebuilt from the stored events in {:.2?} ({recorded} new state changes recorded)",
                started.elapsed()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Query { format, sql } => {
            let cfg = load(&cli)?;
            let rs = query::run(&cfg, sql)?;
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            query::print(&rs, *format, &mut lock)?;
            lock.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_summary(cfg: &config::Config, r: &run::RunReport) {
    println!("calltrail run --once: done");
    for (name, s) in &r.sources {
        println!(
            "  source {name}: {} lines read, {} new events, {} already stored, {} rejected, {} blank, {} actions queued",
            s.lines, s.events, s.duplicates, s.rejects, s.blank, s.actions
        );
    }
    println!(
        "  actions: {} sent, {} already delivered, {} failed, {} to retry",
        r.actions.sent, r.actions.already_done, r.actions.failed, r.actions.retried
    );
    println!("  email:   {}", r.mail_via);
    println!(
        "  kafka:   {}",
        r.kafka.as_deref().unwrap_or("off (no [kafka] section)")
    );
    println!("  store:   {}", cfg.store.path.display());
    println!("Try:");
    println!(
        "  {} --config {} query \"SELECT kind, count(*) AS n FROM events GROUP BY ALL ORDER BY n DESC\"",
        invocation(),
        shell_word(&cfg.file.to_string_lossy())
    );
}
