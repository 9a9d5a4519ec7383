//! The directory's admin API (always behind the admin token, see
//! [`super::auth`]); `calltrail numbers` uses it while the daemon holds the
//! store, and a CRM can too:
//!
//! - `GET /api/numbers` — every entry: `{"columns": [...], "rows": [[...]]}`
//!   (the columns of `numbers list`);
//! - `GET /api/numbers/export` — the CSV `numbers import` reads;
//! - `POST /api/numbers` — one change as JSON, tagged by `op`:
//!   `{"op": "add", "number": "+7916…", "class": "vip", "name": "…",
//!   "company", "agent", "from", "until", "note"}`, `{"op": "set", …}` (the
//!   fields given change; `""` clears one), `{"op": "remove", "number"}`,
//!   `{"op": "import", "name": "clients.csv", "csv": "<the file's text>"}`
//!   (every row checked first; one bad row and nothing is applied);
//!   answers `{"output": "added +7916…"}`;
//! - `DELETE /api/numbers/{number}` — the same as `op: remove`.
//!
//! Errors: `{"error", "kind"}` with 400 (`invalid`: a field, a CSV line as
//! `NAME:LINE`), 404 (`missing`), 409 (`exists`), 500 (`internal`). A change
//! is seen by the next lookup.

use super::router::AppState;
use crate::clock::Clock;
use crate::config::Config;
use crate::lookup::Index;
use crate::numbers::{self, Op, OpError, Reply};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::Utc;
use std::sync::Arc;

/// What the admin API needs besides the store.
pub struct NumbersApi {
    pub cfg: Config,
    pub clock: Clock,
    /// Told of every change (the lookup's copy of the directory).
    pub index: Option<Arc<Index>>,
}

/// The admin API's routes (the router adds the admin check).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/numbers", get(list).post(change))
        .route("/api/numbers/export", get(export))
        .route("/api/numbers/{number}", delete(remove))
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": message.into(), "kind": kind })),
    )
        .into_response()
}

/// Runs `op` on a connection of its own, off the async threads.
async fn run(state: Arc<AppState>, op: Op, by: String) -> Response {
    let Some(api) = state.numbers.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal",
            "the directory API is not running",
        );
    };
    // A handle of the store, not a bare connection: the store reopens
    // (and waits for) the connections it knows of.
    let store = match state.store.handle() {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot open a connection to the store: {e}"),
            )
        }
    };
    let job = tokio::task::spawn_blocking(move || {
        store.with_conn(|conn| {
        let mut checker = numbers::checker(&api.cfg).map_err(|e| OpError::Write(e.to_string()))?;
        let hint = numbers::hinter(&api.cfg);
        let now = if op.writes() {
            Utc::now()
        } else {
            api.clock.now()
        };
        let reply = numbers::execute(conn, &mut checker, &op, &by, now, &hint)?;
        if op.writes() {
            if let Some(index) = &api.index {
                index.load_directory(conn)?;
            }
            tracing::info!(by = %by, op = ?std::mem::discriminant(&op), "directory changed through the admin API");
        }
        Ok::<_, OpError>(reply)
    })
    });
    match job.await {
        Ok(Ok(Reply::Done(line))) => Json(serde_json::json!({ "output": line })).into_response(),
        Ok(Ok(Reply::List(rs))) => {
            Json(serde_json::json!({ "columns": rs.columns, "rows": rs.rows })).into_response()
        }
        Ok(Ok(Reply::Csv(text))) => {
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response()
        }
        Ok(Err(e)) => {
            let (status, kind) = match &e {
                OpError::Exists { .. } => (StatusCode::CONFLICT, "exists"),
                OpError::Missing { .. } => (StatusCode::NOT_FOUND, "missing"),
                OpError::Field(_) | OpError::Csv(_) => (StatusCode::BAD_REQUEST, "invalid"),
                OpError::Store(_) | OpError::Write(_) => {
                    tracing::error!(error = %e, "a directory change failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                }
            };
            error(status, kind, e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "a directory task panicked");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the change failed inside the daemon (see its log)",
            )
        }
    }
}

/// Who a change is recorded as: `api:<X-Calltrail-Actor>` (the CLI sends
/// `cli:<USER>`), else `api`.
fn actor(headers: &axum::http::HeaderMap) -> String {
    let given = headers
        .get("x-calltrail-actor")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::numbers::text_field(v.trim()));
    match given {
        Some(a) => format!("api:{}", a.chars().take(64).collect::<String>()),
        None => "api".into(),
    }
}

async fn list(State(state): State<Arc<AppState>>) -> Response {
    run(state, Op::List, String::new()).await
}

async fn export(State(state): State<Arc<AppState>>) -> Response {
    run(state, Op::Export, String::new()).await
}

async fn remove(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    Path(number): Path<String>,
) -> Response {
    let by = actor(&headers);
    run(state, Op::Remove { number }, by).await
}

async fn change(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let op: Op = match serde_json::from_slice(&body) {
        Ok(op) => op,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("expected a JSON object with \"op\": add, set, remove or import: {e}"),
            )
        }
    };
    if !op.writes() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "list and export are GET /api/numbers and GET /api/numbers/export",
        );
    }
    let by = actor(&headers);
    run(state, op, by).await
}
