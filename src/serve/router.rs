//! The routes of the HTTP API, who may call them, and the state the
//! endpoints share.

use super::auth::{Access, Token};
use crate::lookup::Index;
use crate::readonly::Limits;
use crate::store::Store;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use duckdb::InterruptHandle;
use std::collections::HashMap;
use std::net::SocketAddr;
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
    /// Who may call (loopback always; others by `[http]` allow / token).
    pub access: Access,
    /// The directory's admin token (`None`: the admin API is refused).
    pub admin: Option<Token>,
    /// The dialplan lookup (`None`: not running).
    pub lookup: Option<Arc<Index>>,
    /// The directory's admin API's own settings.
    pub numbers: Option<Arc<super::numbers::NumbersApi>>,
    /// The wallboard's settings (`None`: not served).
    pub wall: Option<Arc<super::wall::WallConfig>>,
    /// `[[http.users]]` / `[[http.tokens]]`: the pages need one of them
    /// (`None`: none configured, the pages are served like the API).
    pub logins: Option<Arc<super::login::Logins>>,
    /// What `/metrics` reads besides the store (`None`: not served).
    pub metrics: Option<Arc<super::metrics::MetricsSources>>,
    /// The wallboard's live feed (with `wall`).
    pub wall_feed: Option<Arc<super::wall::feed::Feed>>,
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
            access: Access::default(),
            admin: None,
            lookup: None,
            numbers: None,
            wall: None,
            logins: None,
            metrics: None,
            wall_feed: None,
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

/// Every route of the API: `/healthz`, the login page and the pages'
/// static assets for anyone, the admin API with an admin token, the pages
/// (wallboard, reports) with a login or a token when logins are
/// configured, the rest as `[http]` allows.
pub fn router(state: Arc<AppState>) -> Router {
    let admin = super::numbers::routes()
        .merge(super::actions::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let open = Router::new()
        .route("/api/query", post(super::query::query))
        .route("/dialplan/lookup", get(super::lookup::dialplan))
        .route("/api/lookup", get(super::lookup::api))
        .route("/metrics", get(super::metrics::metrics))
        .route("/readyz", get(super::health::readyz))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_access,
        ));
    let viewer = Router::new()
        .route("/api/wall", get(super::wall::api))
        .route("/api/wall/stream", get(super::wall::stream))
        .route("/wall", get(super::wall::page))
        .merge(super::reports::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_viewer,
        ));
    Router::new()
        .route("/healthz", get(super::health::healthz))
        .route("/wall/wall.js", get(super::wall::page::js))
        .route("/wall/wall.css", get(super::wall::page::css))
        .route(
            "/login",
            get(super::login::page::form).post(super::login::page::submit),
        )
        .route("/logout", post(super::login::page::logout))
        .route("/login/login.css", get(super::login::page::css))
        .route("/reports/assets/{file}", get(super::reports::asset))
        .merge(open)
        .merge(viewer)
        .merge(admin)
        .layer(middleware::from_fn(super::metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The token a request brings: `Authorization: Bearer T`, else `token=T`
/// in the query string.
fn token_of(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        return v.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

fn peer(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

async fn require_access(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(ip) = peer(&req) else {
        return (StatusCode::FORBIDDEN, "unknown client\n").into_response();
    };
    if state.access.permits(ip, token_of(&req).as_deref()) {
        next.run(req).await
    } else {
        tracing::warn!(client = %ip, path = %req.uri().path(), "HTTP request refused: client not allowed or no valid token");
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "not authorized: this client needs [http] allow or the token\n",
        )
            .into_response()
    }
}

/// The pages: with logins configured, a session cookie or a token
/// (`[[http.tokens]]`, the `[http]` token) — from loopback too; a browser
/// without either is sent to `/login`, an API client gets 401. Without
/// logins, as the API ([`require_access`]).
async fn require_viewer(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(logins) = state.logins.clone() else {
        return require_access(State(state), req, next).await;
    };
    let now = chrono::Utc::now().timestamp();
    if let Some(v) = token_of(&req).and_then(|t| logins.by_token(&t)) {
        req.extensions_mut().insert(v);
        return next.run(req).await;
    }
    if let Some(v) = logins.by_session(req.headers(), now) {
        let renewed = v.session.as_ref().and_then(|s| logins.renewed(s, now));
        req.extensions_mut().insert(v);
        let resp = next.run(req).await;
        return match renewed {
            Some(s) => (
                axum_extra::extract::cookie::SignedCookieJar::new(logins.key().clone())
                    .add(s.cookie()),
                resp,
            )
                .into_response(),
            None => resp,
        };
    }
    let path = req.uri().path().to_string();
    tracing::debug!(path = %path, "page request without a login");
    if path.starts_with("/api/") {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({
                "error": "this needs a login or a token ([[http.tokens]]: Authorization: Bearer <token> or ?token=)",
                "kind": "unauthorized"
            })),
        )
            .into_response();
    }
    // Back here after logging in (without a wrong token in the address).
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .filter(|(k, _)| k != "token"),
        )
        .finish();
    let back = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let to = format!(
        "/login?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &back)
            .finish()
    );
    axum::response::Redirect::to(&to).into_response()
}

async fn require_admin(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let given = token_of(&req);
    let ok = match (&state.admin, given.as_deref()) {
        (Some(t), Some(g)) => t.matches(g),
        _ => false,
    } || given
        .as_deref()
        .zip(state.logins.as_ref())
        .is_some_and(|(g, l)| l.admin_token(g));
    if ok && peer(&req).is_some_and(|ip| state.access.listed(ip)) {
        next.run(req).await
    } else {
        tracing::warn!(path = %req.uri().path(), "admin request refused: no valid admin token");
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({
                "error": "the admin API needs the admin token (Authorization: Bearer <token>)",
                "kind": "unauthorized"
            })),
        )
            .into_response()
    }
}
