//! The wallboard's data: `GET /api/wall[?queues=a,b]`, the JSON the `/wall`
//! page shows (docs/http.md has its fields; docs/metrics.md, "Wallboard",
//! its formulas). Behind the same access as the rest of the API.

pub mod feed;
pub mod figures;
pub mod page;

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
    /// `[wall] language`.
    pub language: String,
    pub page_stale_after_s: u64,
    /// The colour thresholds as the page reads them.
    pub thresholds: serde_json::Value,
    /// Notified by the state deriver after each pass (the live feed).
    pub changed: Arc<tokio::sync::Notify>,
}

impl WallConfig {
    pub fn new(
        cfg: &crate::config::Config,
        sources: Arc<Statuses>,
        changed: Arc<tokio::sync::Notify>,
    ) -> WallConfig {
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
            language: cfg.wall.language.clone(),
            page_stale_after_s: cfg.wall.page_stale_after_s,
            thresholds: cfg.wall.thresholds_json(),
            changed,
        }
    }

    #[cfg(test)]
    pub fn for_tests() -> WallConfig {
        let cfg: crate::config::Config = toml::from_str("").expect("empty config");
        WallConfig::new(&cfg, Arc::default(), Arc::default())
    }

    /// The PBXes and their zones.
    pub fn pbx_zones(&self) -> impl Iterator<Item = (&str, chrono_tz::Tz)> {
        self.zones.iter().map(|(p, z)| (p.as_str(), *z))
    }
}

fn queues_of(q: &str) -> Vec<String> {
    form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == "queues")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `GET /wall`: the page.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match &state.wall {
        Some(cfg) => page::page(cfg, &headers, &q.unwrap_or_default()),
        None => (StatusCode::NOT_FOUND, "no wallboard here\n").into_response(),
    }
}

/// `GET /api/wall/stream`: the live board.
pub async fn stream(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    match &state.wall_feed {
        Some(feed) => feed::stream(feed, queues_of(&q.unwrap_or_default())),
        None => (StatusCode::NOT_FOUND, "no wallboard here\n").into_response(),
    }
}

/// `GET /api/wall`.
pub async fn api(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let Some(cfg) = state.wall.clone() else {
        return (StatusCode::NOT_FOUND, "no wallboard here\n").into_response();
    };
    let only = queues_of(&q.unwrap_or_default());
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
