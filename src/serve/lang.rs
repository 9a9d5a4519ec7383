//! The language of a page: the config's (`en`, `ru`), else the browser's
//! first choice of the two (`Accept-Language`), else English.

use axum::http::{header, HeaderMap};

/// `setting` is `en`, `ru` or `auto`.
pub fn choose(setting: &str, headers: &HeaderMap) -> &'static str {
    match setting {
        "ru" => "ru",
        "en" => "en",
        _ => {
            let accept = headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let first = accept
                .split(',')
                .map(|l| {
                    l.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .find(|l| l.starts_with("ru") || l.starts_with("en"));
            if first.is_some_and(|l| l.starts_with("ru")) {
                "ru"
            } else {
                "en"
            }
        }
    }
}
