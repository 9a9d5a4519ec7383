//! `GET /login` (the form), `POST /login` (a password checked, a session
//! cookie given, back to where the visitor was going) and `POST /logout`.
//! Both forms carry an anti-forgery token: the login form's matches a
//! signed cookie set with the form (double submit), the logout form's is
//! bound to the session ([`super::Logins::csrf_for`]); a request whose
//! `Origin` is another site is refused too. A failed login waits a second
//! before it is answered, and at most two passwords are checked at once.

use super::session::{self, private_cookie};
use crate::serve::router::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SignedCookieJar};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

const TEMPLATE: &str = include_str!("assets/login.html");
const CSS: &str = include_str!("assets/login.css");

fn labels(lang: &str) -> serde_json::Value {
    let ru = lang == "ru";
    let pick = |en: &str, r: &str| if ru { r.to_string() } else { en.to_string() };
    serde_json::json!({
        "title": pick("calltrail: log in", "calltrail: вход"),
        "user": pick("User name", "Имя пользователя"),
        "password": pick("Password", "Пароль"),
        "submit": pick("Log in", "Войти"),
        "hint": pick(
            "A TV can open the wallboard with its token: /wall?token=…",
            "Телевизор открывает табло по своему токену: /wall?token=…"),
        "bad": pick("Wrong user name or password.", "Неверное имя пользователя или пароль."),
        "expired": pick(
            "The form has expired or came from another site. Please try again.",
            "Форма устарела или пришла с другого сайта. Попробуйте ещё раз."),
    })
}

/// Where to go after logging in: a path of this site only.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/wall".to_string(),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn language(state: &AppState, headers: &HeaderMap) -> &'static str {
    let setting = state
        .wall
        .as_ref()
        .map(|w| w.language.as_str())
        .unwrap_or("auto");
    crate::serve::lang::choose(setting, headers)
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    jar: SignedCookieJar,
    next: &str,
    user: &str,
    error: Option<&str>,
) -> Response {
    let lang = language(state, headers);
    let t = labels(lang);
    let nonce = match super::credentials::new_token() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for the login form");
            return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness\n").into_response();
        }
    };
    let error = error.map(|k| t[k].as_str().unwrap_or_default().to_string());
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let html = env.template_from_str(TEMPLATE).and_then(|tpl| {
        tpl.render(minijinja::context! {
            lang => lang, t => &t, csrf => &nonce, next => next, user => user, error => error,
        })
    });
    match html {
        Ok(h) => {
            let jar = jar.add(private_cookie(session::LOGIN_NONCE, nonce));
            let mut r = crate::serve::secure::secured(
                (status, jar, h).into_response(),
                "text/html; charset=utf-8",
                "no-store",
            );
            // No token in this page's address: the form's request may say
            // where it comes from (its Origin is then checked).
            r.headers_mut().insert(
                header::REFERRER_POLICY,
                axum::http::HeaderValue::from_static("same-origin"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render the login page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render the page\n",
            )
                .into_response()
        }
    }
}

/// `GET /login[?next=/path]`.
pub async fn form(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Response {
    let q = form_fields(uri.query().unwrap_or("").as_bytes());
    let Some(logins) = state.logins.as_ref() else {
        return Redirect::to(&safe_next(q.get("next").map(String::as_str))).into_response();
    };
    let jar = SignedCookieJar::from_headers(&headers, logins.key().clone());
    let next = safe_next(q.get("next").map(String::as_str));
    render(&state, &headers, StatusCode::OK, jar, &next, "", None)
}

/// Whether `Origin`, when the browser sent one, is this site. A page
/// whose referrer policy is `no-referrer` (the wallboard's and the
/// reports', whose addresses may carry a token) makes the browser send
/// `Origin: null`: the anti-forgery token alone decides then.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == "null" {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let o = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    o.is_some_and(|o| o.eq_ignore_ascii_case(host))
}

fn form_fields(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `POST /login` (`user`, `password`, `csrf`, `next`).
pub async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(logins) = state.logins.clone() else {
        return Redirect::to("/wall").into_response();
    };
    let f = form_fields(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let next = safe_next(Some(get("next")));
    let user = get("user").trim().to_string();
    let jar = SignedCookieJar::from_headers(&headers, logins.key().clone());
    let nonce_ok = jar.get(session::LOGIN_NONCE).is_some_and(|c| {
        !c.value().is_empty() && bool::from(c.value().as_bytes().ct_eq(get("csrf").as_bytes()))
    });
    if !nonce_ok || !same_origin(&headers) {
        tracing::warn!("login refused: the form's anti-forgery token or origin does not match");
        return render(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            jar,
            &next,
            &user,
            Some("expired"),
        );
    }
    let password = get("password").to_string();
    let ok = {
        let _turn = logins.checking.acquire().await;
        let (l, u) = (logins.clone(), user.clone());
        tokio::task::spawn_blocking(move || l.check_password(&u, &password))
            .await
            .unwrap_or(false)
    };
    if !ok {
        tracing::warn!(user = ?user, "login failed");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return render(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            jar,
            &next,
            &user,
            Some("bad"),
        );
    }
    let Some(s) = logins.session_for(&user, now()) else {
        return render(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            jar,
            &next,
            &user,
            Some("bad"),
        );
    };
    tracing::info!(user = ?user, role = s.role.name(), "logged in");
    let jar = jar
        .remove(Cookie::build(session::LOGIN_NONCE).path("/"))
        .add(s.cookie());
    (jar, Redirect::to(&next)).into_response()
}

/// `POST /logout` (`csrf`).
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(logins) = state.logins.as_ref() else {
        return Redirect::to("/wall").into_response();
    };
    let jar = SignedCookieJar::from_headers(&headers, logins.key().clone());
    let f = form_fields(&body);
    let given = f.get("csrf").map(String::as_str).unwrap_or("");
    let ok = logins.by_session(&headers, now()).is_some_and(|v| {
        v.session
            .as_ref()
            .is_some_and(|s| bool::from(logins.csrf_for(s).as_bytes().ct_eq(given.as_bytes())))
    });
    if !ok || !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "logout refused: the form does not match this session\n",
        )
            .into_response();
    }
    let jar = jar.remove(Cookie::build(session::SESSION).path("/"));
    (jar, Redirect::to("/login")).into_response()
}

/// `GET /login/login.css`.
pub async fn css() -> Response {
    crate::serve::secure::secured(
        CSS.into_response(),
        "text/css; charset=utf-8",
        "max-age=300",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/reports/missed?from=2026-01-01")),
            "/reports/missed?from=2026-01-01"
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "wall",
            "/a\r\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/wall", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/wall");
    }

    #[test]
    fn another_sites_origin_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8479".parse().expect("host"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            "http://127.0.0.1:8479".parse().expect("origin"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            "http://evil.example".parse().expect("origin"),
        );
        assert!(!same_origin(&h));
    }
}
