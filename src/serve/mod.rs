//! What the daemon answers: its local HTTP API (axum), served by
//! `calltrail run` on `[http] listen`:
//!
//! - `GET /healthz` — `ok calltrail <version>` ([`health`]);
//! - `POST /api/query` — one read-only SQL statement, answered as JSON
//!   ([`query`]);
//! - `GET /dialplan/lookup`, `GET /api/lookup` — the dialplan lookup
//!   ([`lookup`]; [`hashcompat`] writes its `CURL()` answer);
//! - `/api/numbers…` — the directory's admin API ([`numbers`]);
//! - `/api/actions…` — the actions outbox's admin API ([`actions`]);
//! - `/wall`, `/api/wall`, `/api/wall/stream` — the wallboard ([`wall`]);
//! - `/login`, `/logout` — logins for the pages ([`login`]);
//! - `GET /metrics` — Prometheus figures ([`metrics`]);
//! - `GET /reports`, `GET /reports/<name>` — the supervisors' reports
//!   ([`reports`]).
//!
//! [`agi`] answers the same lookup over FastAGI on `[agi] listen`.
//! [`router`] wires the endpoints (one file each) to the shared state and
//! [`auth`] says who may call; [`client`] is the small blocking client
//! `calltrail query` and `calltrail numbers` use while the daemon holds the
//! store; [`lang`] picks a page's language and [`secure`] gives every page its
//! headers. Later endpoints go next to
//! these.

pub mod actions;
pub mod agi;
pub mod auth;
pub mod client;
pub mod hashcompat;
pub mod health;
pub mod lang;
pub mod login;
pub mod lookup;
pub mod metrics;
pub mod numbers;
pub mod query;
pub mod reports;
pub mod router;
pub mod secure;
pub mod status;
pub mod wall;

use crate::readonly::{self, Limits};
use crate::store::{Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("[http] listen = {listen:?} is not an IP address and port ({source})")]
    Address {
        listen: String,
        source: std::net::AddrParseError,
    },
    #[error("cannot listen on {addr}: {source}. Is another calltrail (or another program) using that port? Set [http] listen to a free address, or [http] enabled = false")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("preparing the store for queries: {0}")]
    Store(#[from] StoreError),
    #[error("turning off DuckDB's file access for queries: {0}")]
    LockDown(duckdb::Error),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
}

/// What the server serves besides queries, and to whom.
#[derive(Default)]
pub struct Options {
    /// `[http] token_file` / `CALLTRAIL_TOKEN`.
    pub token: Option<auth::Token>,
    /// `[http] allow`.
    pub allow: Vec<String>,
    /// The directory's admin token.
    pub admin: Option<auth::Token>,
    pub lookup: Option<Arc<crate::lookup::Index>>,
    pub numbers: Option<Arc<numbers::NumbersApi>>,
    pub wall: Option<Arc<wall::WallConfig>>,
    /// `[[http.users]]` / `[[http.tokens]]` (`None`: none configured).
    pub logins: Option<Arc<login::Logins>>,
    /// What `/metrics` reads besides the store.
    pub metrics: Option<Arc<metrics::MetricsSources>>,
}

/// A running server; [`Server::stop`] shuts it down.
pub struct Server {
    addr: SocketAddr,
    state: Arc<router::AppState>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Binds `listen` and serves the API on the current tokio runtime. Queries
/// run on connections cloned from `store`. This turns off DuckDB's file and
/// network access for the whole database (see [`readonly::lock_down`]).
pub async fn start(
    listen: &str,
    store: &Store,
    limits: Limits,
    opts: Options,
) -> Result<Server, HttpError> {
    let addr: SocketAddr = listen.trim().parse().map_err(|source| HttpError::Address {
        listen: listen.to_string(),
        source,
    })?;
    let access = auth::Access::new(
        "[http]",
        "[[http.users]] / [[http.tokens]], [http] token_file (or CALLTRAIL_TOKEN) or [http] allow",
        addr,
        opts.token,
        &opts.allow,
        opts.logins.is_some(),
    )?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let store = store.handle()?;
    // Again after the store is reopened (a failed write invalidated it).
    store
        .setup(Box::new(readonly::lock_down))
        .map_err(HttpError::LockDown)?;
    let mut state = router::AppState::new(store, limits);
    state.access = access;
    state.admin = opts.admin;
    state.lookup = opts.lookup;
    state.numbers = opts.numbers;
    state.logins = opts.logins;
    state.metrics = opts.metrics;
    if let Some(w) = &opts.wall {
        state.wall_feed = Some(wall::feed::Feed::start(
            state.store.handle()?,
            w.clone(),
            w.changed.clone(),
        ));
    }
    state.wall = opts.wall;
    let state = Arc::new(state);
    let app = router::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, logins = state.logins.is_some(), "HTTP API listening (GET /healthz, POST /api/query, GET /dialplan/lookup, GET /api/lookup, /api/numbers, /wall, /metrics)");
    Ok(Server {
        addr,
        state,
        shutdown,
        task,
    })
}

impl Server {
    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, interrupts running queries and waits up
    /// to `grace` for open requests to finish.
    pub async fn stop(self, grace: Duration) {
        let _ = self.shutdown.send(());
        self.state.interrupt_all();
        match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(Ok(()))) => tracing::info!("HTTP API stopped"),
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "the HTTP API failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "the HTTP API task panicked"),
            Err(_) => tracing::warn!("HTTP requests still open at the stop deadline; dropped"),
        }
    }
}
