//! `GET /healthz`: 200 `ok calltrail <version>` while the daemon runs.
//! `GET /readyz`: 200 `ready` when calltrail is doing its job — every
//! source's file read recently (none stale), the store writable (the last
//! write retried by ingest, the deriver, a sink or the action worker did
//! not fail, see `store::health`) with room on its filesystem, the state
//! deriver and the Kafka sinks within their lag budget — else 503 with one
//! line per reason (docs/metrics.md, "Readiness").

use super::router::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::SystemTime;

/// Events the deriver or a sink may be behind and still be ready.
pub const MAX_LAG_EVENTS: i64 = 50_000;
/// Free space the store's filesystem must keep.
pub const MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

/// The health check.
pub async fn healthz() -> String {
    format!("ok calltrail {}\n", env!("CARGO_PKG_VERSION"))
}

/// The readiness check.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let Some(src) = state.metrics.clone() else {
        return (StatusCode::OK, "ready\n").into_response();
    };
    let store = match state.store.handle() {
        Ok(s) => s,
        Err(e) => return not_ready(vec![format!("the store cannot be read: {e}")]),
    };
    let r = tokio::task::spawn_blocking(move || {
        let mut why = Vec::new();
        let now = SystemTime::now();
        if let Some(nw) = store.health().not_writable() {
            why.push(format!(
                "store not writable: {} (for {} s, {} failed writes; held up: {}; last error: {})",
                nw.cause,
                now.duration_since(nw.since).unwrap_or_default().as_secs(),
                nw.failures,
                nw.writers.join(", "),
                nw.error
            ));
        }
        for s in &src.sources.0 {
            if s.stale(now) {
                let since = s.last_ok().unwrap_or(s.started());
                why.push(format!(
                    "source {:?}: its file {} has not been readable for {} s (stale_after_s {})",
                    s.name,
                    s.path().display(),
                    now.duration_since(since).unwrap_or_default().as_secs(),
                    s.stale_after.as_secs()
                ));
            }
        }
        let dir = src
            .store_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        match nix::sys::statvfs::statvfs(dir) {
            Ok(v) => {
                // Their C types differ between platforms (u32 on some).
                #[allow(clippy::unnecessary_cast)]
                let free = v.blocks_available() as u64 * v.fragment_size() as u64;
                if free < MIN_FREE_BYTES {
                    why.push(format!(
                        "the store's filesystem ({}) has {} MiB free (at least {} MiB wanted)",
                        dir.display(),
                        free / (1024 * 1024),
                        MIN_FREE_BYTES / (1024 * 1024)
                    ));
                }
            }
            Err(e) => why.push(format!("the store's directory {}: {e}", dir.display())),
        }
        store.with_conn(|c| {
            let mut lags = vec![("the state deriver", "events", crate::store::STATE_SINK)];
            if src.kafka {
                lags.push(("the Kafka sink", "events", crate::publish::SINK));
                lags.push((
                    "the Kafka state sink",
                    "state_events",
                    crate::publish::STATE_SINK,
                ));
            }
            for (what, table, sink) in lags {
                match super::metrics::behind(c, table, sink) {
                    Ok(n) if n > MAX_LAG_EVENTS => why.push(format!(
                        "{what} is {n} events behind (at most {MAX_LAG_EVENTS})"
                    )),
                    Ok(_) => {}
                    Err(e) => why.push(format!("{what}'s lag cannot be read: {e}")),
                }
            }
        });
        why
    })
    .await;
    match r {
        Ok(why) if why.is_empty() => (StatusCode::OK, "ready\n").into_response(),
        Ok(why) => not_ready(why),
        Err(e) => not_ready(vec![format!("the check failed: {e}")]),
    }
}

fn not_ready(why: Vec<String>) -> Response {
    let mut body = String::from("not ready\n");
    for w in &why {
        body.push_str("- ");
        body.push_str(w);
        body.push('\n');
    }
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}
