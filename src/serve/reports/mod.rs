//! The supervisors' reports: `GET /reports` (the index and its GET form)
//! and `GET /reports/<name>?from=YYYY-MM-DD&to=YYYY-MM-DD[&queue=…]
//! [&agent=…][&format=csv|json]` — HTML (a table, a chart where one helps),
//! CSV or JSON. docs/reports.md is the manual: every report, its columns
//! and formulas.
//!
//! Days are calendar days in each PBX's time zone (its first source's
//! `timezone`, as the wallboard takes it): the range's hours are written to
//! a temp table (`_rep_hours`) on the request's own connection, and every
//! report's SQL joins it, so a DST day has its 23 or 25 hours. The SQL runs
//! over the store's tables (`calls`, `missed_calls`, `callers`, `events`,
//! `known_numbers`) with bound parameters only, on a connection cloned from
//! the store handle, in `spawn_blocking`, one of the API's query permits.

pub mod agent_activity;
pub mod call_counts;
pub mod calls_by_agent;
pub mod calls_by_hour;
pub mod calls_by_queue;
pub mod labels;
pub mod missed;
pub mod new_callers;
pub mod outbound;
pub mod params;
pub mod render;
pub mod schedule;
pub mod service_level;
pub mod table;

use super::router::AppState;
use super::wall::WallConfig;
use crate::state::ServiceLevel;
use crate::store::StoreError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use duckdb::Connection;
use params::{BadParam, Format, Params};
use std::sync::Arc;
use table::Report;

/// What every report's SQL needs besides the connection.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub p: Params,
    /// Each PBX and its zone.
    pub zones: Vec<(String, chrono_tz::Tz)>,
    /// The zone times are written in (the first PBX's).
    pub tz: chrono_tz::Tz,
    /// The derived state's clock (`CALLTRAIL_NOW` in tests): periods still
    /// going on end here.
    pub now: DateTime<Utc>,
    pub sla_threshold_s: i32,
    pub short_abandon_s: i32,
    /// `[state] service_level`.
    pub configured: ServiceLevel,
}

/// The bounds of the range per PBX (`b`: `pbx`, `r0`, `r1`), for a `WITH`.
pub const BOUNDS: &str =
    "b AS (SELECT pbx, min(h_start) AS r0, max(h_end) AS r1 FROM _rep_hours GROUP BY pbx)";

/// A directory name for the number in `expr` (`known_numbers`, whatever
/// its validity: a report shows who the number is).
pub fn name_of(expr: &str) -> String {
    format!("(SELECT coalesce(k.name, k.company) FROM known_numbers k WHERE k.number = {expr})")
}

fn db(what: &'static str) -> impl Fn(duckdb::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// Writes the range's hours of every PBX to `_rep_hours`.
fn prepare_hours(conn: &Connection, ctx: &Ctx) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE OR REPLACE TEMP TABLE _rep_hours (pbx VARCHAR, h_start TIMESTAMP,
           h_end TIMESTAMP, day VARCHAR, hour INTEGER)",
    )
    .map_err(db("preparing the report's hours"))?;
    let mut app = conn
        .appender_to_catalog_and_db("_rep_hours", "temp", "main")
        .map_err(db("writing the report's hours"))?;
    for (pbx, tz) in &ctx.zones {
        for h in params::hours(pbx, *tz, ctx.p.from, ctx.p.to) {
            app.append_row(duckdb::params![
                h.pbx,
                crate::store::ts(h.start),
                crate::store::ts(h.end),
                h.day.to_string(),
                i32::try_from(h.hour).unwrap_or(0),
            ])
            .map_err(db("writing the report's hours"))?;
        }
    }
    app.flush().map_err(db("writing the report's hours"))?;
    Ok(())
}

/// Builds report `name` on `conn`.
pub fn build(conn: &Connection, name: &str, ctx: &Ctx) -> Result<Report, StoreError> {
    prepare_hours(conn, ctx)?;
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(db("starting the report's transaction"))?;
    let r = match name {
        "calls_by_queue" => calls_by_queue::build(conn, ctx),
        "calls_by_agent" => calls_by_agent::build(conn, ctx),
        "calls_by_hour" => calls_by_hour::build(conn, ctx),
        "agent_activity" => agent_activity::build(conn, ctx),
        "missed" => missed::build(conn, ctx),
        "new_callers" => new_callers::build(conn, ctx),
        "outbound" => outbound::build(conn, ctx),
        _ => service_level::build(conn, ctx),
    };
    let _ = conn.execute_batch("ROLLBACK");
    r
}

/// The format a request asked for, read leniently (to answer a bad
/// request in it).
fn format_of(q: &str) -> Format {
    match form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "format") {
        Some((_, v)) if v == "json" => Format::Json,
        Some((_, v)) if v == "csv" => Format::Csv,
        _ => Format::Html,
    }
}

fn context(state: &AppState, cfg: &WallConfig, p: Params) -> Ctx {
    let now = state
        .numbers
        .as_ref()
        .map_or_else(Utc::now, |n| n.clock.now());
    let zones = if cfg.zones.is_empty() {
        vec![("".to_string(), chrono_tz::UTC)]
    } else {
        cfg.zones.clone()
    };
    Ctx {
        tz: zones[0].1,
        zones,
        now,
        p,
        sla_threshold_s: cfg.sla_threshold_s,
        short_abandon_s: cfg.short_abandon_s,
        configured: cfg.service_level,
    }
}

/// Today in the first PBX's zone.
fn today(state: &AppState, cfg: &WallConfig) -> chrono::NaiveDate {
    let now = state
        .numbers
        .as_ref()
        .map_or_else(Utc::now, |n| n.clock.now());
    let tz = cfg.zones.first().map_or(chrono_tz::UTC, |z| z.1);
    now.with_timezone(&tz).date_naive()
}

/// `GET /reports`.
pub async fn index(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    viewer: Option<axum::Extension<super::login::Viewer>>,
    RawQuery(q): RawQuery,
) -> Response {
    // Logged in with a password: who, and the logout form's token.
    let session = viewer.and_then(|v| {
        let s = v.0.session.as_ref()?;
        let csrf = state.logins.as_ref()?.csrf_for(s);
        Some((v.0.name.clone(), csrf))
    });
    let Some(cfg) = state.wall.clone() else {
        return (StatusCode::NOT_FOUND, "no reports here\n").into_response();
    };
    let ru = super::wall::page::language(&cfg, &headers) == "ru";
    let q = q.unwrap_or_default();
    match Params::parse(&q, today(&state, &cfg)) {
        Ok(p) => render::index(&p, ru, cfg.service_level.name(), session),
        Err(BadParam(m)) => {
            render::error(StatusCode::BAD_REQUEST, "bad_request", &m, Format::Html, ru)
        }
    }
}

/// `GET /reports/{name}`.
pub async fn report(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(cfg) = state.wall.clone() else {
        return (StatusCode::NOT_FOUND, "no reports here\n").into_response();
    };
    let ru = super::wall::page::language(&cfg, &headers) == "ru";
    let q = q.unwrap_or_default();
    let format = format_of(&q);
    let Some(name) = render::NAMES.iter().copied().find(|n| *n == name) else {
        let m = format!(
            "no report is called {name:?}: the reports are {}",
            render::NAMES.join(", ")
        );
        return render::error(StatusCode::NOT_FOUND, "not_found", &m, format, ru);
    };
    let p = match Params::parse(&q, today(&state, &cfg)) {
        Ok(p) => p,
        Err(BadParam(m)) => {
            return render::error(StatusCode::BAD_REQUEST, "bad_request", &m, format, ru)
        }
    };
    let ctx = context(&state, &cfg, p);
    let Ok(_permit) = state.permits.clone().acquire_owned().await else {
        return render::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "stopping",
            format,
            ru,
        );
    };
    let store = match state.store.handle() {
        Ok(s) => s,
        Err(e) => return internal(e, format, ru),
    };
    let c2 = ctx.clone();
    let built = tokio::task::spawn_blocking(move || store.with_conn(|c| build(c, name, &c2))).await;
    let report = match built {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return internal(e, format, ru),
        Err(e) => return internal(e, format, ru),
    };
    let tz = ctx.tz.name();
    match ctx.p.format {
        Format::Json => render::secured(
            axum::Json(render::json_value(&report, &ctx.p, tz)).into_response(),
            "application/json",
            "no-store",
        ),
        Format::Csv => render::csv_response(&report, &ctx.p),
        Format::Html => render::page(&report, &ctx.p, ru, tz, cfg.service_level.name()),
    }
}

fn internal(e: impl std::fmt::Display, format: Format, ru: bool) -> Response {
    tracing::error!(error = %e, "cannot build a report");
    render::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        &format!("the report could not be read from the store: {e}"),
        format,
        ru,
    )
}

const JS: &str = include_str!("assets/reports.js");
const CSS: &str = include_str!("assets/reports.css");
/// uPlot 1.6.32 (MIT, Leon Sorokin; npm `uplot`, `dist/uPlot.iife.min.js`
/// and `dist/uPlot.min.css`; licence in `assets/uPlot.LICENSE`).
const UPLOT_JS: &str = include_str!("assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("assets/uPlot.min.css");

/// `GET /reports/assets/{file}`: the pages' script, styles and chart library.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "reports.js" => (JS, "text/javascript; charset=utf-8"),
        "reports.css" => (CSS, "text/css; charset=utf-8"),
        "uPlot.iife.min.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uPlot.min.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    };
    render::secured(body.into_response(), ct, "max-age=300")
}

/// The routes behind the viewers' access (`open` in the router).
pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/reports", axum::routing::get(index))
        .route("/reports/{name}", axum::routing::get(report))
}
