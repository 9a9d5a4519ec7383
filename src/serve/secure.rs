//! The headers every page, export and asset the daemon serves carries: a
//! Content-Security-Policy that allows the daemon's own files alone (no
//! inline script runs, no CDN), `nosniff`, no referrer (a page's address
//! may carry a token), and its caching.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// The policy of every page: nothing but the daemon's own files.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `r` with its content type, the policy and `cache` (`Cache-Control`).
pub fn secured(mut r: Response, content_type: &'static str, cache: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The token may be in the page's address: never sent elsewhere.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}
