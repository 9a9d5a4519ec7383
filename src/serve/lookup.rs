//! The dialplan lookup over HTTP (docs/dialplan.md is the contract):
//!
//! - `GET /dialplan/lookup?number=NUM` — for `CURL()` with
//!   `CURLOPT(hashcompat)=yes`: `200 text/plain`, one line
//!   `action=…&name=…&agent=…&agent_interface=…&agent_state=…&first_call=0|1&missed_open=0|1&calls=N&ok=1`
//!   ([`super::hashcompat`] encodes it);
//! - `GET /api/lookup?number=NUM` — the same decision as JSON, with details.
//!
//! Both take `policy=` and `window=` to override `[lookup]`. A number that
//! is withheld, hostile or not one gets the well-formed unknown answer; only
//! a missing `number` or a bad `policy`/`window` is a 400 (no `ok=1`, so the
//! dialplan routes normally).

use super::hashcompat;
use super::router::AppState;
use crate::lookup::{Decision, Index, Policy, Window};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// A lookup's parameters, decoded leniently (invalid UTF-8 and bad `%`
/// escapes never fail the request).
struct Params {
    number: Option<String>,
    policy: Option<Policy>,
    window: Option<Window>,
    /// `call=${UNIQUEID}`: the call (one employee callback per call).
    call: Option<String>,
}

fn params(raw: Option<&str>) -> Result<Params, String> {
    let mut p = Params {
        number: None,
        policy: None,
        window: None,
        call: None,
    };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match &*k {
            "number" => p.number = Some(v.into_owned()),
            "call" => p.call = Some(v.into_owned()),
            "policy" => {
                p.policy = Some(Policy::parse(&v).ok_or_else(|| {
                    "policy must be last_agent, last_contact or first_agent".to_string()
                })?)
            }
            "window" => p.window = Some(Window::parse(&v).map_err(|e| format!("window: {e}"))?),
            _ => {}
        }
    }
    Ok(p)
}

/// The decision, or why the request is refused (status and message).
fn decide(index: Option<&Arc<Index>>, raw: Option<&str>) -> Result<Decision, (StatusCode, String)> {
    let p = params(raw).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    let Some(number) = p.number else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the number parameter is required (number=NUM)".into(),
        ));
    };
    let Some(index) = index else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the lookup is not running".into(),
        ));
    };
    let started = std::time::Instant::now();
    let d = index.lookup_call(&number, p.policy, p.window, p.call.as_deref());
    super::metrics::observe_lookup("http", started.elapsed());
    d.map_err(|e| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}: route normally and ask again in a few seconds"),
        )
    })
}

/// The hashcompat line of a decision, keys in the contract's order.
pub fn hashcompat_line(d: &Decision) -> String {
    let b = |x: bool| if x { "1" } else { "0" };
    let calls = d.calls.to_string();
    hashcompat::encode(&[
        ("action", d.action),
        ("name", &d.name),
        ("agent", &d.agent),
        ("agent_interface", &d.agent_interface),
        ("agent_state", d.agent_state),
        ("first_call", b(d.first_call)),
        ("missed_open", b(d.missed_open)),
        ("calls", &calls),
        ("ok", "1"),
    ])
}

/// `GET /dialplan/lookup`.
pub async fn dialplan(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    match decide(state.lookup.as_ref(), raw.as_deref()) {
        Ok(d) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            hashcompat_line(&d),
        )
            .into_response(),
        Err((status, msg)) => (status, msg + "\n").into_response(),
    }
}

/// `GET /api/lookup`.
pub async fn api(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    match decide(state.lookup.as_ref(), raw.as_deref()) {
        Ok(d) => Json(d).into_response(),
        Err((status, msg)) => (status, Json(serde_json::json!({ "error": msg }))).into_response(),
    }
}
