//! `GET /healthz`: 200 `ok calltrail <version>` while the daemon runs.

/// The health check.
pub async fn healthz() -> String {
    format!("ok calltrail {}\n", env!("CARGO_PKG_VERSION"))
}
