//! The routes of the HTTP API and the state the endpoints share.

use crate::readonly::Limits;
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use duckdb::InterruptHandle;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Queries run at once; more wait for a turn.
const CONCURRENT_QUERIES: usize = 2;
/// Largest request body (the SQL text).
const MAX_BODY: usize = 1024 * 1024;

/// What every endpoint can reach.
pub struct AppState {
    /// A store handle used only to clone a connection per query.
    pub store: Store,
    pub limits: Limits,
    /// Bounds the queries running at once (memory, cores).
    pub permits: Arc<tokio::sync::Semaphore>,
    running: Mutex<HashMap<u64, Arc<InterruptHandle>>>,
    next_id: AtomicU64,
    stopping: AtomicBool,
}

impl AppState {
    pub fn new(store: Store, limits: Limits) -> AppState {
        AppState {
            store,
            limits,
            permits: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_QUERIES)),
            running: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Registers a running query so that [`AppState::interrupt_all`] can
    /// stop it; unregistered when the guard drops.
    pub fn track(self: &Arc<Self>, handle: Arc<InterruptHandle>) -> Running {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, handle);
        Running {
            state: self.clone(),
            id,
        }
    }

    /// Interrupts every running query (shutdown).
    pub fn interrupt_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for h in self.lock().values() {
            h.interrupt();
        }
    }

    /// Whether the daemon is shutting down (queries were interrupted).
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<InterruptHandle>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A query registered with [`AppState::track`].
pub struct Running {
    state: Arc<AppState>,
    id: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.state.lock().remove(&self.id);
    }
}

/// Every route of the API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(super::health::healthz))
        .route("/api/query", post(super::query::query))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
