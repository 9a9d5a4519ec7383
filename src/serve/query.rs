//! `POST /api/query`: one read-only SQL statement.
//!
//! Request: the SQL as the body (`text/plain` or any type but JSON), or
//! `application/json` `{"sql": "…", "store": "/path/store.duckdb"}` (`store`
//! optional: when given and not the file this daemon serves, 409
//! `wrong_store`); at most 1 MiB.
//!
//! Response 200: `{"columns": ["name", …], "rows": [[value, …], …]}` with
//! values converted as `calltrail query` does ([`crate::query::to_json`]).
//! Errors: `{"error": "<message>", "kind": "<kind>"}` with 400 (`sql`:
//! DuckDB's message; `bad_request`), 403 (`refused`: not one reading
//! statement), 409 (`wrong_store`), 422 (`too_many_rows`, `timeout`: the
//! `[query]` limits), 503 (`stopping`: interrupted by the daemon's shutdown),
//! 500 (`internal`). The rules are [`crate::readonly`]'s, the same as when
//! `query` reads the file itself.

use super::router::AppState;
use crate::readonly::{self, QueryError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    sql: String,
    /// The store the client means (its `store.path`); refused with 409 when
    /// this daemon serves another file.
    store: Option<std::path::PathBuf>,
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        status,
        Json(serde_json::json!({ "error": message, "kind": kind })),
    )
        .into_response()
}

fn status_of(e: &QueryError) -> StatusCode {
    match e {
        QueryError::Sql(_) => StatusCode::BAD_REQUEST,
        QueryError::Refused(_) => StatusCode::FORBIDDEN,
        QueryError::TooManyRows(_) | QueryError::Timeout(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The statement (and the store it is meant for) in the request body.
fn request_of(headers: &HeaderMap, body: &[u8]) -> Result<JsonRequest, String> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if json {
        serde_json::from_slice::<JsonRequest>(body)
            .map_err(|e| format!("expected a JSON body {{\"sql\": \"…\"}}: {e}"))
    } else {
        String::from_utf8(body.to_vec())
            .map(|sql| JsonRequest { sql, store: None })
            .map_err(|_| "the SQL text is not UTF-8".to_string())
    }
}

/// Whether `asked` names the file this daemon serves.
fn same_store(served: &std::path::Path, asked: &std::path::Path) -> bool {
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(served) == canon(asked)
}

/// The handler.
pub async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (sql, asked) = match request_of(&headers, &body) {
        Ok(r) => (r.sql, r.store),
        Err(msg) => return error(StatusCode::BAD_REQUEST, "bad_request", msg),
    };
    if let Some(asked) = asked.filter(|a| !same_store(state.store.path(), a)) {
        return error(
            StatusCode::CONFLICT,
            "wrong_store",
            format!(
                "this daemon serves the store {}, not {}",
                state.store.path().display(),
                asked.display()
            ),
        );
    }
    let Ok(permit) = state.permits.clone().acquire_owned().await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal",
            "the daemon is stopping",
        );
    };
    // A handle of the store, not a bare connection: the store reopens
    // (and waits for) the connections it knows of.
    let store = match state.store.handle() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a query connection");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot open a connection to the store: {e}"),
            );
        }
    };
    let limits = state.limits;
    let running = state.track(store.with_conn(|c| c.interrupt_handle()));
    let started = std::time::Instant::now();
    let job = tokio::task::spawn_blocking(move || {
        let out = store.with_conn(|conn| readonly::execute(conn, &sql, limits));
        drop((running, permit));
        (sql, out)
    });
    match job.await {
        Ok((sql, Ok(rs))) => {
            tracing::debug!(rows = rs.rows.len(), elapsed = ?started.elapsed(), sql = %sql, "query answered");
            Json(serde_json::json!({ "columns": rs.columns, "rows": rs.rows })).into_response()
        }
        Ok((_, Err(_))) if state.stopping() => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the daemon is stopping and interrupted the statement: run it again once `calltrail run` is back (or stopped)",
        ),
        Ok((sql, Err(e))) => {
            tracing::debug!(error = %e, sql = %sql, "query failed");
            error(status_of(&e), e.kind(), e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "a query task panicked");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the query failed inside the daemon (see its log)",
            )
        }
    }
}
