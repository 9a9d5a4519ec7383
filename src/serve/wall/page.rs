//! The wallboard page (`GET /wall[?queues=…][&token=…]`) and its two
//! assets, embedded in the binary (no CDN: the PBX host is often offline).
//! The page is a template with its labels (English or Russian) and colour
//! thresholds as JSON in `data-` attributes (escaped like any attribute); `wall.js` follows the board's
//! server-sent events and draws it with `textContent` only. A
//! Content-Security-Policy allows scripts and styles from the daemon alone
//! (no inline script runs).

use super::WallConfig;
use crate::serve::secure::secured;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const TEMPLATE: &str = include_str!("assets/wall.html");
const JS: &str = include_str!("assets/wall.js");
const CSS: &str = include_str!("assets/wall.css");

/// Labels of the page, per language.
fn labels(lang: &str) -> serde_json::Value {
    let ru = lang == "ru";
    let pick = |en: &str, r: &str| if ru { r.to_string() } else { en.to_string() };
    serde_json::json!({
        "title": pick("Call center", "Колл-центр"),
        "connecting": pick("connecting…", "подключение…"),
        "live": pick("live", "в эфире"),
        "stale": pick("DATA IS STALE", "ДАННЫЕ УСТАРЕЛИ"),
        "daemon": pick("no connection to calltrail", "нет связи с calltrail"),
        "agents": pick("Agents", "Операторы"),
        "agent": pick("Agent", "Оператор"),
        "state": pick("State", "Состояние"),
        "since": pick("For", "Сколько"),
        "calls": pick("Calls", "Звонков"),
        "talk": pick("Talk", "Разговор"),
        "waiting": pick("waiting", "ждут"),
        "longest_wait_s": pick("longest wait", "дольше всех ждёт"),
        "service_level_today": pick("service level today", "уровень сервиса за день"),
        "service_level_hour": pick("service level, last hour", "уровень сервиса за час"),
        "agents_available": pick("available / logged in", "свободны / в системе"),
        "agents_on_call": pick("on a call", "говорят"),
        "agents_paused": pick("paused", "на паузе"),
        "offered_today": pick("calls today", "звонков за день"),
        "answered_today": pick("answered", "отвечено"),
        "abandoned_today": pick("abandoned", "потеряно"),
        "asa_s": pick("avg. answer", "ср. ожидание ответа"),
        "missed_open": pick("to call back", "перезвонить"),
        "callbacks_pending": pick("callbacks queued", "перезвонов в очереди"),
        "paused_for": pick("paused:", "пауза:"),
        "no_reason": pick("no reason", "без причины"),
        "state_available": pick("available", "свободен"),
        "state_on_call": pick("on a call", "говорит"),
        "state_paused": pick("paused", "пауза"),
        "state_logged_out": pick("logged out", "не в системе"),
        "state_unknown": pick("—", "—"),
        "formula": pick("service level formula", "формула уровня сервиса"),
        "updated": pick("updated", "обновлено"),
        "h": pick("h", "ч"),
        "m": pick("m", "м"),
    })
}

/// The language of a request: the config's, else the browser's first
/// choice of the two.
pub fn language(cfg: &WallConfig, headers: &HeaderMap) -> &'static str {
    crate::serve::lang::choose(&cfg.language, headers)
}

/// `GET /wall`: the page; `query` is the request's own query string (its
/// `queues` and `token` go to the stream's address).
pub fn page(cfg: &WallConfig, headers: &HeaderMap, query: &str) -> Response {
    let lang = language(cfg, headers);
    let kept: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "queues" || k == "token"),
        )
        .finish();
    let stream = if kept.is_empty() {
        "/api/wall/stream".to_string()
    } else {
        format!("/api/wall/stream?{kept}")
    };
    let l = labels(lang);
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let html = env.template_from_str(TEMPLATE).and_then(|t| {
        t.render(minijinja::context! {
            lang => lang,
            t => &l,
            stream => stream,
            stale_after_ms => cfg.page_stale_after_s * 1000,
            labels_json => l.to_string(),
            thresholds_json => cfg.thresholds.to_string(),
        })
    });
    match html {
        Ok(h) => secured(h.into_response(), "text/html; charset=utf-8", "no-store"),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the wallboard page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render the page\n",
            )
                .into_response()
        }
    }
}

/// `GET /wall/wall.js`.
pub async fn js() -> Response {
    secured(
        JS.into_response(),
        "text/javascript; charset=utf-8",
        "max-age=300",
    )
}

/// `GET /wall/wall.css`.
pub async fn css() -> Response {
    secured(
        CSS.into_response(),
        "text/css; charset=utf-8",
        "max-age=300",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::secure::CSP;
    use axum::http::{header, HeaderValue};

    #[test]
    fn the_browser_chooses_when_the_config_does_not() {
        let cfg = WallConfig::for_tests();
        let mut h = HeaderMap::new();
        assert_eq!(language(&cfg, &h), "en");
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("ru-RU,ru;q=0.9,en;q=0.8"),
        );
        assert_eq!(language(&cfg, &h), "ru");
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de, en-GB;q=0.7, ru;q=0.5"),
        );
        assert_eq!(language(&cfg, &h), "en");
    }

    #[test]
    fn the_page_escapes_and_keeps_only_queues_and_token() {
        let cfg = WallConfig::for_tests();
        let r = page(&cfg, &HeaderMap::new(), "queues=a%22%3E%3Cb&token=t&x=1");
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        let body =
            futures_util::FutureExt::now_or_never(axum::body::to_bytes(r.into_body(), 1 << 20))
                .expect("ready")
                .expect("body");
        let html = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(
            // minijinja escapes `/` too; the browser reads the attribute back.
            html.contains(
                "data-stream=\"&#x2f;api&#x2f;wall&#x2f;stream?queues=a%22%3E%3Cb&amp;token=t\""
            ),
            "{html}"
        );
        assert!(!html.contains("x=1"));
        assert!(!html.contains("<script>"), "no inline script");
    }
}
