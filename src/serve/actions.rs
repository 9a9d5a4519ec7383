//! The actions outbox's admin API (always behind the admin token, see
//! [`super::auth`]); `calltrail actions` uses it while the daemon holds the
//! store, and a monitoring or ticketing tool can too (docs/actions.md):
//!
//! - `GET /api/actions?status=&kind=&since=&id=&due=&limit=` — the newest
//!   actions, `{"columns": [...], "rows": [[...]]}` (the columns of
//!   `actions list --format json`); `status` repeated or comma-separated,
//!   `since` an age (`12h`), a UTC day or an RFC 3339 instant, `id` a
//!   prefix, `due=true` only pending ones whose time has come, `limit`
//!   default 50;
//! - `POST /api/actions/{id}/retry` — back to `pending`, due now (from
//!   `failed`, `in_doubt`, `cancelled`);
//! - `POST /api/actions/{id}/cancel` — `cancelled` (from `pending`,
//!   `in_doubt`, `failed`).
//!
//! A change answers `{"output": "retried …", "action": {row}}`. Errors:
//! `{"error", "kind"}` with 400 (`invalid`: a list parameter), 404
//! (`missing`: no such id), 409 (`refused`: the status does not allow it;
//! `conflict`: the row changed meanwhile, nothing written; both with
//! `status`, the row's status), 500 (`internal`). The `{id}` is
//! percent-encoded. The action worker polls for due actions every second,
//! so a retry is run within about a second.

use super::router::AppState;
use crate::actions::cli::ops::{self, Change, ListQuery, OpError};
use crate::store::action_admin::AdminError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use std::sync::Arc;

/// The actions API's routes (the router adds the admin check).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/actions", get(list))
        .route("/api/actions/{id}/retry", post(retry))
        .route("/api/actions/{id}/cancel", post(cancel))
}

fn error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn internal(message: impl Into<String>) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        serde_json::json!({ "error": message.into(), "kind": "internal" }),
    )
}

fn refusal(e: OpError) -> Response {
    let message = e.to_string();
    match e {
        OpError::Invalid(_) => error(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": message, "kind": "invalid" }),
        ),
        OpError::Change { why, .. } => match *why {
            AdminError::Unknown(_) => error(
                StatusCode::NOT_FOUND,
                serde_json::json!({ "error": message, "kind": "missing" }),
            ),
            AdminError::Refused { status, .. } => error(
                StatusCode::CONFLICT,
                serde_json::json!({ "error": message, "kind": "refused", "status": status }),
            ),
            AdminError::Raced { found, .. } => error(
                StatusCode::CONFLICT,
                serde_json::json!({ "error": message, "kind": "conflict", "status": found }),
            ),
            AdminError::Store(_) => {
                tracing::error!(error = %message, "an action change failed");
                internal(message)
            }
        },
        OpError::Store(_) => {
            tracing::error!(error = %message, "an actions request failed");
            internal(message)
        }
    }
}

/// Runs `f` on a connection of its own, off the async threads.
async fn on_conn<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&duckdb::Connection) -> Result<T, OpError> + Send + 'static,
) -> Result<T, Response> {
    // A handle of the store, not a bare connection: the store reopens
    // (and waits for) the connections it knows of.
    let store = state
        .store
        .handle()
        .map_err(|e| internal(format!("cannot open a connection to the store: {e}")))?;
    match tokio::task::spawn_blocking(move || store.with_conn(f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(refusal(e)),
        Err(e) => {
            tracing::error!(error = %e, "an actions task panicked");
            Err(internal(
                "the request failed inside the daemon (see its log)",
            ))
        }
    }
}

async fn list(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let q = match ListQuery::from_query_string(q.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return refusal(e),
    };
    match on_conn(&state, move |conn| ops::list(conn, &q, Utc::now())).await {
        Ok(rs) => {
            Json(serde_json::json!({ "columns": rs.columns, "rows": rs.rows })).into_response()
        }
        Err(r) => r,
    }
}

/// Who asked: the CLI sends `cli:<USER>` as `X-Calltrail-Actor`.
fn actor(headers: &HeaderMap) -> String {
    let given = headers
        .get("x-calltrail-actor")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::numbers::text_field(v.trim()));
    match given {
        Some(a) => format!("api:{}", a.chars().take(64).collect::<String>()),
        None => "api".into(),
    }
}

async fn apply(state: Arc<AppState>, headers: HeaderMap, change: Change, id: String) -> Response {
    let by = actor(&headers);
    let target = id.clone();
    match on_conn(&state, move |conn| {
        ops::change(conn, change, &target, Utc::now())
    })
    .await
    {
        Ok((line, row)) => {
            tracing::info!(action = %id, by = %by, change = change.verb(), status = %row.status, "action changed by an operator through the admin API");
            Json(serde_json::json!({ "output": line, "action": ops::object(&row) })).into_response()
        }
        Err(r) => r,
    }
}

async fn retry(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    apply(state, headers, Change::Retry, id).await
}

async fn cancel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    apply(state, headers, Change::Cancel, id).await
}
