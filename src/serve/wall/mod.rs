//! The wallboard's data: `GET /api/wall[?queues=a,b]`, the JSON the `/wall`
//! page shows (docs/http.md has its fields; docs/metrics.md, "Wallboard",
//! its formulas). Behind the same access as the rest of the API.

pub mod figures;

use super::router::AppState;
use crate::state::ServiceLevel;
use crate::tail::status::Statuses;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// What the wallboard needs from the config and the running sources.
#[derive(Debug)]
pub struct WallConfig {
    /// Each PBX and its time zone (of its first source).
    pub zones: Vec<(String, chrono_tz::Tz)>,
    pub service_level: ServiceLevel,
    pub formula_name: String,
    pub sla_threshold_s: i32,
    pub short_abandon_s: i32,
    pub sources: Arc<Statuses>,
}

impl WallConfig {
    pub fn new(cfg: &crate::config::Config, sources: Arc<Statuses>) -> WallConfig {
        let mut zones: Vec<(String, chrono_tz::Tz)> = Vec::new();
        for s in &cfg.sources {
            if zones.iter().all(|(p, _)| *p != s.pbx) {
                zones.push((s.pbx.clone(), s.timezone.parse().unwrap_or(chrono_tz::UTC)));
            }
        }
        let st = cfg.state_config();
        WallConfig {
            zones,
            service_level: st.service_level,
            formula_name: st.service_level.name().to_string(),
            sla_threshold_s: st.sla_threshold_s,
            short_abandon_s: st.short_abandon_s,
            sources,
        }
    }

    /// The PBXes and their zones.
    pub fn pbx_zones(&self) -> impl Iterator<Item = (&str, chrono_tz::Tz)> {
        self.zones.iter().map(|(p, z)| (p.as_str(), *z))
    }
}

/// `GET /api/wall`.
pub async fn api(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let Some(cfg) = state.wall.clone() else {
        return (StatusCode::NOT_FOUND, "no wallboard here\n").into_response();
    };
    let only: Vec<String> = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "queues")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    let store = match state.store.handle() {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let r = tokio::task::spawn_blocking(move || {
        store.with_conn(|c| figures::read(c, &cfg, chrono::Utc::now(), &only))
    })
    .await;
    match r {
        Ok(Ok(w)) => Json(w).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "cannot read the wallboard's figures");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({ "error": e.to_string(), "kind": "internal" })),
    )
        .into_response()
}
