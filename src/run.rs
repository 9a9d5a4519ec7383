//! `calltrail run`: tail every source, store, publish, act; stop cleanly on
//! SIGTERM/SIGINT (or, with `--once`, when every source is read to its end
//! and what it caused is published and done); reload rules and calendars on
//! SIGHUP ([`crate::reload`]).

use crate::actions::{self, ActionStats};
use crate::clock::Clock;
use crate::config::{Config, SourceConfig};
use crate::ingest::{Ingest, IngestStats};
use crate::lookup::Index;
use crate::publish::{self, Mode};
use crate::serve::{self, auth};
use crate::store::health::Failure;
use crate::store::Store;
use crate::tail::status::{SourceStatus, Statuses};
use crate::tail::{DevIno, Position, TailOptions, Tailer, Verdict};
use anyhow::Context;
use calltrail_sinks::{KafkaConfig, KafkaSink, Mailer, SmtpConfig, SmtpTls};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What a run did, for the closing summary.
#[derive(Debug, Default)]
pub struct RunReport {
    pub sources: Vec<(String, IngestStats)>,
    pub actions: ActionStats,
    pub mail_via: String,
    pub kafka: Option<String>,
}

/// Builds the mailer: SMTP when configured, else the outbox directory.
pub fn mailer(cfg: &Config) -> anyhow::Result<Mailer> {
    match &cfg.email.smtp {
        Some(s) => {
            let password = match (&s.password, &s.password_env) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(var)) => Some(
                    std::env::var(var)
                        .with_context(|| format!("email.smtp.password_env: {var} is not set"))?,
                ),
                (None, None) => None,
            };
            let tls = match s.tls.as_str() {
                "none" => SmtpTls::None,
                "tls" => SmtpTls::Tls,
                _ => SmtpTls::StartTls,
            };
            Ok(Mailer::smtp(&SmtpConfig {
                host: s.host.clone(),
                port: s.port,
                tls,
                username: s.username.clone(),
                password,
                timeout: Duration::from_secs(s.timeout_s),
                extra_root_cert_pem: s.ca_file.clone(),
                hello_name: None,
            })
            .with_context(|| format!("setting up SMTP to {}:{}", s.host, s.port))?)
        }
        None => Mailer::outbox(&cfg.email.outbox)
            .with_context(|| format!("creating the outbox {}", cfg.email.outbox.display())),
    }
}

fn kafka_sink(cfg: &Config) -> anyhow::Result<Option<KafkaSink>> {
    let Some(k) = &cfg.kafka else { return Ok(None) };
    let sink = KafkaSink::new(&KafkaConfig {
        brokers: k.brokers.clone(),
        topic: k.topic.clone(),
        client_id: k.client_id.clone(),
        properties: k.properties.clone(),
        delivery_timeout_ms: k.delivery_timeout_ms,
    })
    .with_context(|| format!("setting up the Kafka producer for {}", k.brokers))?;
    Ok(Some(sink))
}

fn spawn_tailer(
    cfg: &Config,
    src: &SourceConfig,
    store: &Store,
    stop: Arc<AtomicBool>,
    once: bool,
    wakers: [Arc<Notify>; 3],
    status: Option<Arc<SourceStatus>>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<IngestStats>>> {
    let mut ingest = Ingest::new(cfg, src, store.handle()?, true)?;
    let start = store.checkpoint(&src.name)?.and_then(|cp| {
        u64::from_str_radix(&cp.file_fp, 16)
            .ok()
            .map(|fp| Position {
                file_fp: fp,
                devino: (cp.inode != 0).then_some(DevIno {
                    dev: cp.dev,
                    ino: cp.inode,
                }),
                offset: cp.byte_offset,
                line_no: cp.line_no,
            })
    });
    let path = src.path.clone();
    let name = src.name.clone();
    let mut opts = TailOptions::new(
        &path,
        Duration::from_millis(src.poll_interval_ms),
        ingest.framing(),
    );
    if let Some(pats) = &src.rotated {
        opts.rotated = pats.clone();
    }
    opts.grace = Duration::from_secs(src.rotation_grace_s);
    let known_store = Arc::new(std::sync::Mutex::new(store.handle()?));
    let known_source = src.name.clone();
    opts.known = Some(Arc::new(move || {
        let s = known_store.lock().unwrap_or_else(|p| p.into_inner());
        s.stored_offsets(&known_source).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the stored offsets");
            Default::default()
        })
    }));
    if let Some(st) = &status {
        let st = st.clone();
        opts.on_poll = Some(Arc::new(move || st.polled()));
    }
    let since = store
        .checkpoint_time(&src.name)?
        .map(std::time::SystemTime::from);
    std::thread::Builder::new()
        .name(format!("tail-{name}"))
        .spawn(move || {
            let mut tailer = Tailer::new(&path, opts, start).with_checkpoint_time(since);
            let ended = status.clone();
            let r = tailer.run(&stop, once, |batch| match ingest.process(batch, true) {
                Ok(s) => {
                    if let Some(st) = &status {
                        st.committed(s.lines, s.events, s.rejects);
                    }
                    // [kafka, actions, state]: the action worker only when
                    // there is an action (its poll is a query).
                    let [kafka, actions, state] = &wakers;
                    if s.events > 0 {
                        kafka.notify_one();
                        state.notify_one();
                    }
                    if s.actions > 0 {
                        actions.notify_one();
                    }
                    tracing::debug!(source = %name, lines = s.lines, events = s.events, rejects = s.rejects, "batch committed");
                    Verdict::Committed
                }
                Err(e) => {
                    if Failure::of(&e).is_some() {
                        // The store's health logged it (once, then every minute).
                        tracing::debug!(source = %name, error = %e, "cannot store a batch; retrying");
                    } else {
                        tracing::error!(source = %name, error = %e, "cannot store a batch; retrying");
                    }
                    Verdict::Retry
                }
            });
            if let Some(st) = ended {
                st.ended();
            }
            r?;
            Ok(ingest.stats)
        })
        .context("starting a tailer thread")
}

/// Runs the daemon, deriving the state by `clock`. Refuses a config without
/// sources (nothing to follow); warns of a source whose path is not there
/// (yet: it is followed once it appears).
pub async fn run(cfg: &Config, once: bool, clock: Clock) -> anyhow::Result<RunReport> {
    if cfg.sources.is_empty() {
        anyhow::bail!(
            "{} has no [[sources]]: `run` has nothing to follow (import, query and rederive work without sources)",
            cfg.file.display()
        );
    }
    // First: SIGHUP's default action would end the daemon.
    let mut signals = if once {
        None
    } else {
        Some(crate::reload::Signals::install()?)
    };
    for src in &cfg.sources {
        if let Some(why) = crate::config::missing_path(&src.path) {
            tracing::warn!(source = %src.name, path = %src.path.display(), "the source's path {why}; it is read once it appears");
        }
    }
    let limits = cfg.store.limits();
    tracing::debug!(?limits, "[store] memory_budget shared out");
    let store = Store::open(&cfg.store.path)?
        .with_limits(Some(&limits.duckdb_memory_limit()), Some(limits.threads))?
        .with_durable_commits()?
        .with_state(cfg.state_config())
        .with_clock(clock);
    // [[rules]]: decided inside each state derivation's transaction (by
    // the set in force: a reload replaces it).
    let rules =
        Arc::new(crate::rules::live::LiveRules::new(cfg).context("[[rules]] in the config")?);
    store.act_on_state(rules.clone());
    // The local HTTP API (`calltrail query` while we hold the store, the
    // dialplan lookup, the directory's admin API) and FastAGI. Not with
    // --once: a batch run answers nothing and must not need a port.
    // What each source's reader is doing (the wallboard's "stale").
    let sources = Arc::new(Statuses(
        cfg.sources
            .iter()
            .map(|s| {
                Arc::new(SourceStatus::new(
                    &s.name,
                    s.path.clone(),
                    Duration::from_secs(s.stale_after_s),
                ))
            })
            .collect(),
    ));
    // Woken by the state deriver: the wallboard's feed recomputes.
    let wall_changed = Arc::new(Notify::new());
    let serving = !once && (cfg.http.enabled || cfg.agi.enabled);
    let index = if serving {
        Some(lookup_index(cfg, &store, clock, limits)?)
    } else {
        None
    };
    let http = match (&index, cfg.http.enabled) {
        (Some(index), true) => Some(
            crate::serve::start(
                &cfg.http.listen,
                &store,
                cfg.query.limits(),
                serve_options(cfg, index, clock, &sources, &wall_changed)?,
            )
            .await
            .context("starting the HTTP API ([http] in the config)")?,
        ),
        _ => None,
    };
    let agi = match (&index, cfg.agi.enabled) {
        (Some(index), true) => Some(
            crate::serve::agi::start(&cfg.agi.listen, &cfg.agi.allow, index.clone())
                .await
                .context("starting the FastAGI server ([agi] in the config)")?,
        ),
        _ => None,
    };
    let hits = match &index {
        Some(i) => Some(tokio::spawn(flush_hits(i.clone(), store.handle()?))),
        None => None,
    };
    let mailer = mailer(cfg)?;
    let mail_via = mailer.describe();
    let kafka = kafka_sink(cfg)?;
    let kafka_desc = cfg
        .kafka
        .as_ref()
        .map(|k| format!("{} topic {}", k.brokers, k.topic));
    tracing::info!(store = %cfg.store.path.display(), email = %mail_via, kafka = kafka_desc.as_deref().unwrap_or("off"), sources = cfg.sources.len(), "calltrail starting");

    let stop = Arc::new(AtomicBool::new(false));
    let kafka_wake = Arc::new(Notify::new());
    let action_wake = Arc::new(Notify::new());
    let mut employee = None;
    if let Some(index) = &index {
        let e = Arc::new(crate::rules::employee::EmployeeCallbacks::new(
            cfg,
            store.handle()?,
            action_wake.clone(),
        )?);
        index.set_hook(e.clone());
        employee = Some(e);
    }
    let (mode_tx, mode_rx) = watch::channel(Mode::Run);

    // Input events and derived state changes are published by two tasks,
    // each with its own checkpoint and its own producer (connection): the
    // state's batches (every ~0.1 s) never queue in front of input events.
    let state_pub_wake = Arc::new(Notify::new());
    // Heartbeats ride on the input events' producer, told by its publisher
    // how far it is (not with --once: a batch run has no one to reassure).
    let mut heartbeats = None;
    let publishers = match kafka {
        Some(sink) => {
            let sink = Arc::new(sink);
            let state_sink =
                Arc::new(kafka_sink(cfg)?.context("the Kafka config vanished while starting")?);
            let progress = Arc::new(publish::Progress::default());
            if let Some(hb) = crate::heartbeat::Heartbeats::new(cfg, &sources).filter(|_| !once) {
                heartbeats = Some(tokio::spawn(crate::heartbeat::run(
                    hb,
                    store.handle()?,
                    sink.clone(),
                    progress.clone(),
                    mode_rx.clone(),
                )));
            }
            vec![
                tokio::spawn(publish::run(
                    store.handle()?,
                    sink,
                    publish::EVENTS,
                    kafka_wake.clone(),
                    mode_rx.clone(),
                    Some(progress),
                )),
                tokio::spawn(publish::run(
                    store.handle()?,
                    state_sink,
                    publish::STATE_EVENTS,
                    state_pub_wake.clone(),
                    mode_rx.clone(),
                    None,
                )),
            ]
        }
        None => Vec::new(),
    };
    // What is set up for the rules' actions (a reload cannot add to it).
    let started = crate::config::reload::Started::of(cfg);
    let senders = actions::Senders {
        mailer,
        callbacks: {
            let mut c = cfg.callbacks.clone();
            c.resolve_owner().context("[callbacks] owner")?;
            c
        },
        ami: cfg.callbacks.ami_client().context("[callbacks.ami]")?,
        // The folder is created only when a rule sends SMS.
        sms: if started.sms {
            cfg.sms.gateway().context("[sms]")?
        } else {
            calltrail_sinks::sms::Gateway::Folder(calltrail_sinks::sms::FolderConfig::new(
                &cfg.sms.folder,
            ))
        },
    };
    let worker = tokio::spawn(actions::run(
        store.handle()?,
        senders,
        action_wake.clone(),
        mode_rx.clone(),
    ));

    let sweeper = tokio::spawn(sweep_state(
        store.handle()?,
        action_wake.clone(),
        mode_rx.clone(),
    ));
    // Scheduled report emails ([[reports.schedule]]), into the outbox.
    let reporter = match serve::reports::schedule::Scheduler::new(cfg, clock) {
        Some(s) if !once => Some(tokio::spawn(serve::reports::schedule::run(
            store.handle()?,
            s,
            action_wake.clone(),
        ))),
        _ => None,
    };
    if cfg.callbacks.method == "call_file" && started.callbacks {
        // A spool with no outgoing/ is not Asterisk's (it has both): create
        // them, so the embedded default works, and say so.
        for sub in ["outgoing", "outgoing_done"] {
            let d = cfg.callbacks.spool.join(sub);
            if !d.exists() {
                std::fs::create_dir_all(&d)
                    .with_context(|| format!("[callbacks] spool: cannot create {}", d.display()))?;
                tracing::warn!(dir = %d.display(), "created the callback spool directory (Asterisk reads <spool>/outgoing: is [callbacks] spool its spool?)");
            }
        }
    }
    let follower = if started.callbacks {
        Some(tokio::spawn(follow_callbacks(
            store.handle()?,
            cfg.callbacks.clone(),
        )))
    } else {
        None
    };
    // The derived state follows the stored events by `seq`, off the ingest
    // path (a line is in DuckDB as soon as its batch commits).
    let state_wake = Arc::new(Notify::new());
    let (state_mode_tx, state_mode_rx) = watch::channel(Mode::Run);
    let deriver = tokio::spawn(derive_state(
        store.handle()?,
        state_wake.clone(),
        state_pub_wake.clone(),
        [action_wake.clone(), wall_changed.clone()],
        state_mode_rx,
    ));

    let mut tailers = Vec::new();
    for src in &cfg.sources {
        let wakers = [kafka_wake.clone(), action_wake.clone(), state_wake.clone()];
        let status = sources.get(&src.name);
        let h = if crate::snapshot::handles(src.kind) {
            crate::snapshot::spawn(cfg, src, &store, stop.clone(), once, wakers, status)?
        } else {
            spawn_tailer(cfg, src, &store, stop.clone(), once, wakers, status)?
        };
        tailers.push((src.name.clone(), h));
    }

    if let Some(signals) = &mut signals {
        let mut reloader = crate::reload::Reloader::new(cfg, rules, employee);
        signals.until_stop(&mut reloader).await;
        tracing::info!("stopping: finishing the current batches");
        stop.store(true, Ordering::Relaxed);
    }
    if let Some(h) = heartbeats {
        h.abort();
    }
    if let Some(server) = agi {
        server.stop().await;
    }
    if let Some(server) = http {
        server.stop(Duration::from_secs(5)).await;
    }
    if let (Some(task), Some(index)) = (hits, &index) {
        task.abort();
        let store = store.handle()?;
        write_hits(index, &store);
    }
    let mut report = RunReport {
        mail_via,
        kafka: kafka_desc,
        ..RunReport::default()
    };
    for (name, h) in tailers {
        let stats = tokio::task::spawn_blocking(move || h.join())
            .await
            .context("joining a tailer")?
            .map_err(|_| anyhow::anyhow!("the tailer of {name} panicked"))?
            .with_context(|| format!("source {name}"))?;
        report.sources.push((name, stats));
    }
    // Publish and act on what was committed, then stop.
    // Derive the state of everything committed (its state changes are
    // published too), then publish and act on it all, then stop.
    let _ = state_mode_tx.send(Mode::Drain);
    match deriver.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the state deriver failed; it catches up on the next start")
        }
        Err(e) => tracing::error!(error = %e, "the state deriver panicked"),
    }
    kafka_wake.notify_one();
    let _ = mode_tx.send(Mode::Drain);
    let drain = if once {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(15)
    };
    for p in publishers {
        if tokio::time::timeout(drain, p).await.is_err() {
            tracing::warn!("Kafka did not catch up before the drain deadline; the rest is published on the next start");
        }
    }
    sweeper.abort();
    if let Some(r) = reporter {
        r.abort();
    }
    if let Some(f) = follower {
        f.abort();
    }
    match tokio::time::timeout(drain, worker).await {
        Ok(Ok(stats)) => report.actions = stats,
        Ok(Err(e)) => tracing::error!(error = %e, "the action worker failed"),
        Err(_) => tracing::warn!(
            "actions still running at the drain deadline; they resume on the next start"
        ),
    }
    Ok(report)
}

/// The dialplan lookup's index: kept current by the state deriver from
/// now on, and read from the store in the background (a long history takes
/// seconds; lookups meanwhile answer "not ready" and the dialplan routes
/// normally, while ingest goes on).
///
/// The index counts against `[store] memory_budget`: when it and the live
/// deriver's step do not fit beside DuckDB's share and the process's
/// reserve, DuckDB's limit is lowered by the excess (unless `[store]
/// memory_limit` is explicit). Judged once, when the index has loaded:
/// callers first seen later (~150 bytes each) count from the next start.
fn lookup_index(
    cfg: &Config,
    store: &Store,
    clock: Clock,
    limits: crate::config::budget::Limits,
) -> anyhow::Result<Arc<Index>> {
    let index = Arc::new(Index::new(cfg, clock).context("[lookup] in the config")?);
    store.observe_state(index.clone());
    let (i, s) = (index.clone(), store.handle()?);
    let explicit_limit = cfg.store.memory_limit.is_some();
    std::thread::Builder::new()
        .name("lookup-load".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let sizes = match i.load(&s) {
                Ok(sizes) => sizes,
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the lookup's index; lookups answer 503 until a restart");
                    return;
                }
            };
            // The load's transient heap (the rows read, the maps grown).
            crate::config::budget::trim_heap();
            tracing::info!(
                parties = sizes.parties,
                parties_mb = sizes.parties_bytes / 1_000_000,
                agents = sizes.agents,
                known_numbers = sizes.numbers,
                ms = started.elapsed().as_millis() as u64,
                "lookup index loaded"
            );
            // Beside the index, the rest holds the deriver's passes: up to
            // the live step's events (a catch-up after a restart).
            let deriving = DERIVE_BATCH as u64 * crate::config::budget::DERIVE_BYTES_PER_EVENT;
            let Some(shrunk) = limits.shrunk_for(sizes.parties_bytes + deriving) else {
                return;
            };
            if explicit_limit {
                tracing::warn!(
                    index_mb = sizes.parties_bytes / 1_000_000,
                    "the lookup's index and [store] memory_limit together exceed [store] memory_budget"
                );
                return;
            }
            match s.set_memory_limit(&shrunk.duckdb_memory_limit()) {
                Ok(()) => tracing::info!(
                    index_mb = sizes.parties_bytes / 1_000_000,
                    duckdb_limit_mb = shrunk.memory_limit / 1_000_000,
                    "DuckDB's memory limit lowered to keep the lookup's index within [store] memory_budget"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot lower DuckDB's memory limit"),
            }
        })
        .context("starting the lookup index loader")?;
    Ok(index)
}

/// The HTTP server's tokens, allow list, lookup and directory API.
fn serve_options(
    cfg: &Config,
    index: &Arc<Index>,
    clock: Clock,
    sources: &Arc<Statuses>,
    wall_changed: &Arc<Notify>,
) -> anyhow::Result<serve::Options> {
    let token = auth::read_token("CALLTRAIL_TOKEN", cfg.http.token_file.as_deref())
        .context("[http] token_file")?;
    let admin = match auth::read_token(
        "CALLTRAIL_ADMIN_TOKEN",
        cfg.http.admin_token_file.as_deref(),
    )
    .context("[http] admin_token_file")?
    {
        Some(t) => t,
        None => {
            let path = auth::admin_token_path(&cfg.store.path);
            let t = auth::generate_admin_token(&path)?;
            tracing::info!(file = %path.display(), "admin token written (calltrail numbers reads it)");
            t
        }
    };
    let logins = if cfg.http.has_logins() {
        let key =
            serve::login::session::load_key(cfg.http.session_key_file.as_deref(), &cfg.store.path)
                .context("[http] session_key_file")?;
        serve::login::Logins::new(&cfg.http, key, token.clone()).map(Arc::new)
    } else {
        None
    };
    let metrics = serve::metrics::MetricsSources {
        sources: sources.clone(),
        store_path: cfg.store.path.clone(),
        kafka: cfg.kafka.is_some(),
        line_sources: cfg
            .sources
            .iter()
            .filter(|s| !crate::snapshot::handles(s.kind))
            .map(|s| s.name.clone())
            .collect(),
    };
    Ok(serve::Options {
        metrics: Some(Arc::new(metrics)),
        logins,
        token,
        allow: cfg.http.allow.clone(),
        admin: Some(admin),
        lookup: Some(index.clone()),
        numbers: Some(Arc::new(serve::numbers::NumbersApi {
            cfg: cfg.clone(),
            clock,
            index: Some(index.clone()),
        })),
        wall: Some(Arc::new(serve::wall::WallConfig::new(
            cfg,
            sources.clone(),
            wall_changed.clone(),
        ))),
    })
}

/// Reads back what Asterisk made of placed callbacks, every few seconds.
async fn follow_callbacks(store: Store, cfg: crate::config::CallbacksSection) {
    let (store, cfg) = (Arc::new(store), Arc::new(cfg));
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let (s, c) = (store.clone(), cfg.clone());
        match tokio::task::spawn_blocking(move || {
            crate::rules::callback::follow(&s, &c)?;
            crate::rules::callback_ami::reconcile(&s)
        })
        .await
        {
            // The store's health logs a store that cannot be written.
            Ok(Err(e)) if Failure::of(&e).is_some() => {
                tracing::debug!(error = %e, "cannot follow placed callbacks")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot follow placed callbacks"),
            Err(e) => tracing::warn!(error = %e, "the callback follower failed"),
            Ok(Ok(_)) => {}
        }
    }
}

/// Adds the lookups' directory hits to the store every few seconds.
async fn flush_hits(index: Arc<Index>, store: Store) {
    let store = Arc::new(store);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let (i, s) = (index.clone(), store.clone());
        let _ = tokio::task::spawn_blocking(move || write_hits(&i, &s)).await;
    }
}

fn write_hits(index: &Index, store: &Store) {
    let hits = index.take_hits();
    if hits.is_empty() {
        return;
    }
    let n = hits.len();
    if let Err(e) = store.with_conn(|c| crate::store::directory::add_hits(c, &hits)) {
        if Failure::of(&e).is_some() {
            // The store's health logs a store that cannot be written.
            tracing::debug!(error = %e, entries = n, "cannot count the lookups' hits in known_numbers");
        } else {
            tracing::warn!(error = %e, entries = n, "cannot count the lookups' hits in known_numbers");
        }
    }
}

/// Keeps the derived tables up to date with the stored events: derives
/// what is new whenever woken (and at least every second), until drained.
/// After a pass that derived anything, `derived` are woken: the action
/// worker (the rules' actions are created in that pass, and a callback or
/// an SMS should not wait for its next poll) and the wallboard's feed.
async fn derive_state(
    store: Store,
    wake: Arc<Notify>,
    published: Arc<Notify>,
    derived: [Arc<Notify>; 2],
    mut mode: watch::Receiver<Mode>,
) -> anyhow::Result<()> {
    let store = Arc::new(store);
    // How long the last pass took: the next one waits at least twice that,
    // so that the deriver never takes more than about a third of a core
    // from ingest and publishing (a pass costs ~0.1 s on a fresh store and
    // ~0.5 s with a year of history, almost regardless of how many events
    // it takes).
    let mut last_pass = Duration::ZERO;
    loop {
        loop {
            let s = store.clone();
            let started = std::time::Instant::now();
            let r = tokio::task::spawn_blocking(move || s.derive_state(DERIVE_BATCH))
                .await
                .context("the state deriver task failed")?;
            let (n, recorded) = match r {
                Ok(v) => v,
                Err(e) if *mode.borrow() == Mode::Drain => {
                    return Err(e).context("deriving the state");
                }
                Err(e) => {
                    if Failure::of(&e).is_some() {
                        // The store's health logged it (once, then every minute).
                        tracing::debug!(error = %e, "cannot derive the state; retrying in 5 s");
                    } else {
                        tracing::error!(error = %e, "cannot derive the state; retrying in 5 s");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = mode.changed() => {}
                    }
                    continue;
                }
            };
            if recorded > 0 {
                published.notify_one();
            }
            if n > 0 {
                for w in &derived {
                    w.notify_one();
                }
                last_pass = started.elapsed();
                tracing::debug!(
                    events = n,
                    state_changes = recorded,
                    ms = started.elapsed().as_millis() as u64,
                    "state derived"
                );
            }
            // A full batch: more is waiting. Otherwise it caught up with what
            // was committed when it started, and the rest waits for the next
            // wake-up (coalesced below); when draining, only an empty pass
            // ends it.
            let draining = *mode.borrow() == Mode::Drain;
            if n == 0 || (n < DERIVE_BATCH && !draining) {
                break;
            }
        }
        if *mode.borrow() == Mode::Drain {
            return Ok(());
        }
        tokio::select! {
            _ = wake.notified() => {
                // Let more commits land first: one derivation per
                // STATE_COALESCE instead of one per committed batch keeps its
                // transactions (~0.1 s each) from competing with ingest and
                // publishing (the latency of input events) for DuckDB and
                // the CPU.
                let coalesce = (last_pass * 2).clamp(STATE_COALESCE, STATE_COALESCE_MAX);
                tokio::select! {
                    _ = tokio::time::sleep(coalesce) => {}
                    _ = mode.changed() => {}
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = mode.changed() => {}
        }
    }
}

/// Events per state-deriving transaction.
const DERIVE_BATCH: usize = crate::config::budget::LIVE_DERIVE_STEP;

/// How long the state deriver lets commits accumulate after a wake-up, at
/// least (twice its last pass, up to the maximum).
const STATE_COALESCE: Duration = Duration::from_millis(200);
const STATE_COALESCE_MAX: Duration = Duration::from_secs(5);

/// Settles the time-dependent state (missed-call episodes expiring, callers
/// waiting too long) every `[state] sweep_interval_s`, until the run drains.
/// A sweep's state changes may cause actions: the worker is woken.
async fn sweep_state(store: Store, actions: Arc<Notify>, mut mode: watch::Receiver<Mode>) {
    let store = Arc::new(store);
    let every = store.state_config().sweep_interval_s.max(1);
    let mut tick = tokio::time::interval(Duration::from_secs(u64::from(every)));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let s = store.clone();
                match tokio::task::spawn_blocking(move || s.sweep()).await {
                    Ok(Ok(n)) if n > 0 => {
                        tracing::info!(state_changes = n, "time-dependent state settled");
                        actions.notify_one();
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) if Failure::of(&e).is_some() => {
                        tracing::debug!(error = %e, "cannot sweep the state")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot sweep the state"),
                    Err(e) => tracing::warn!(error = %e, "the state sweep panicked"),
                }
            }
            r = mode.changed() => {
                if r.is_err() || *mode.borrow() == Mode::Drain {
                    return;
                }
            }
        }
    }
}
