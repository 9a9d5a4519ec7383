//! `calltrail actions` through a running daemon's admin API
//! (`serve/actions.rs`), with the admin token: `CALLTRAIL_ADMIN_TOKEN`,
//! else `[http] admin_token_file`, else the one the daemon wrote next to
//! the store (`<store>.admin-token`).

use super::ops::{Change, ListQuery};
use crate::config::Config;
use crate::query::ResultSet;
use anyhow::Context;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::time::Duration;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The daemon's admin API, ready to ask.
pub struct Daemon {
    agent: ureq::Agent,
    host: std::net::SocketAddr,
    auth: String,
}

/// A daemon's answer that is not calltrail's JSON, or a refusal of the
/// request itself (no valid token): the command cannot go on.
fn answer(
    host: std::net::SocketAddr,
    status: ureq::http::StatusCode,
    body: &[u8],
) -> anyhow::Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(body).with_context(|| {
        format!(
            "http://{host} answered {status}, not as calltrail's API: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })?;
    if status == ureq::http::StatusCode::UNAUTHORIZED {
        anyhow::bail!("{}", message(&v));
    }
    Ok(v)
}

fn message(v: &serde_json::Value) -> String {
    v.get("error")
        .and_then(|m| m.as_str())
        .unwrap_or("no error message")
        .to_string()
}

impl Daemon {
    /// The daemon `cfg` names, with the admin token.
    pub fn new(cfg: &Config) -> anyhow::Result<Daemon> {
        let a = crate::serve::client::Admin::new(cfg, TIMEOUT)?;
        Ok(Daemon {
            agent: a.agent,
            host: a.host,
            auth: a.auth,
        })
    }

    fn read(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<(ureq::http::StatusCode, serde_json::Value)> {
        let host = self.host;
        let mut res = res.with_context(|| format!("no answer from the daemon at http://{host}"))?;
        let status = res.status();
        let body = res
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .context("reading the daemon's answer")?;
        Ok((status, answer(host, status, &body)?))
    }

    /// `GET /api/actions`.
    pub fn list(&self, q: &ListQuery) -> anyhow::Result<ResultSet> {
        let url = format!("http://{}/api/actions?{}", self.host, q.to_query_string());
        let (status, v) = self.read(
            self.agent
                .get(&url)
                .header("authorization", &self.auth)
                .call(),
        )?;
        if !status.is_success() {
            anyhow::bail!("{}", message(&v));
        }
        let columns: Vec<String> = serde_json::from_value(v["columns"].clone())
            .context("the daemon's list has no columns")?;
        let rows: Vec<Vec<serde_json::Value>> =
            serde_json::from_value(v["rows"].clone()).context("the daemon's list has no rows")?;
        Ok(ResultSet { columns, rows })
    }

    /// `POST /api/actions/{id}/retry|cancel`: `Ok(Ok(line))` done,
    /// `Ok(Err(why))` refused for this id, `Err` the daemon not usable.
    pub fn change(&self, change: Change, id: &str) -> anyhow::Result<Result<String, String>> {
        if id.is_empty() {
            return Ok(Err(format!(
                "cannot {} {id}: there is no action with this id",
                change.verb()
            )));
        }
        let url = format!(
            "http://{}/api/actions/{}/{}",
            self.host,
            utf8_percent_encode(id, NON_ALPHANUMERIC),
            change.verb()
        );
        let (status, v) = self.read(
            self.agent
                .post(&url)
                .header("authorization", &self.auth)
                .header("x-calltrail-actor", crate::numbers::actor())
                .send_empty(),
        )?;
        if !status.is_success() {
            return Ok(Err(message(&v)));
        }
        Ok(Ok(v
            .get("output")
            .and_then(|o| o.as_str())
            .context("the daemon's answer has no output")?
            .to_string()))
    }
}
