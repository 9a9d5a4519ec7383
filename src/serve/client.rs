//! The blocking client of `POST /api/query` that `calltrail query` uses
//! while a daemon holds the store (ureq, plain HTTP to a local address).

use crate::query::ResultSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Largest answer read (the daemon's `[query] max_rows` bounds it first).
const MAX_ANSWER: u64 = 1 << 30;

/// Why the daemon gave no result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered (connection refused, timeout, …).
    #[error("no answer from {url}: {source}")]
    Unreachable { url: String, source: ureq::Error },
    /// Something answered, but not as the calltrail API does.
    #[error("{url} answered, but not as calltrail's API: {what}")]
    Protocol { url: String, what: String },
    /// The daemon ran or refused the statement and said why; the message
    /// is the one `query` gives when it reads the file itself.
    #[error("{0}")]
    Query(String),
}

/// Sends `sql` to the daemon at `addr`, for the store at `store`, and waits
/// up to `timeout`.
pub fn query(
    addr: SocketAddr,
    store: &Path,
    sql: &str,
    timeout: Duration,
) -> Result<ResultSet, ClientError> {
    let url = format!("http://{addr}/api/query");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let store = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    let body = serde_json::json!({ "sql": sql, "store": store }).to_string();
    let mut res = agent
        .post(&url)
        .header("content-type", "application/json")
        .send(body.as_bytes())
        .map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let status = res.status();
    let protocol = |what: String| ClientError::Protocol {
        url: url.clone(),
        what,
    };
    let bytes = res
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| protocol(format!("reading the answer: {e}")))?;
    let answer: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        protocol(format!(
            "status {status}, body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ))
    })?;
    if !status.is_success() {
        let kind = answer.get("kind").and_then(|k| k.as_str());
        return match answer.get("error").and_then(|m| m.as_str()) {
            Some(msg) if kind == Some("wrong_store") => Err(protocol(msg.to_string())),
            Some(msg) => Err(ClientError::Query(msg.to_string())),
            None => Err(protocol(format!(
                "status {status} without an error message"
            ))),
        };
    }
    parse_result(answer).ok_or_else(|| protocol("no columns and rows in the answer".into()))
}

fn parse_result(mut answer: serde_json::Value) -> Option<ResultSet> {
    let columns = answer
        .get_mut("columns")?
        .as_array_mut()?
        .drain(..)
        .map(|c| match c {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        })
        .collect::<Option<Vec<String>>>()?;
    let rows = answer
        .get_mut("rows")?
        .as_array_mut()?
        .drain(..)
        .map(|r| match r {
            serde_json::Value::Array(vals) if vals.len() == columns.len() => Some(vals),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ResultSet { columns, rows })
}

/// A client of the daemon's admin API (`/api/numbers`, `/api/actions`):
/// its address, an agent, and the admin token as an `authorization` value
/// (`CALLTRAIL_ADMIN_TOKEN`, else `[http] admin_token_file`, else the
/// `<store>.admin-token` the daemon wrote).
pub struct Admin {
    pub agent: ureq::Agent,
    pub host: SocketAddr,
    pub auth: String,
}

impl Admin {
    /// The admin client of the daemon `cfg` names, with requests bounded
    /// by `timeout`.
    pub fn new(cfg: &crate::config::Config, timeout: Duration) -> anyhow::Result<Admin> {
        use anyhow::Context;
        let file = cfg
            .http
            .admin_token_file
            .clone()
            .unwrap_or_else(|| super::auth::admin_token_path(&cfg.store.path));
        let token = super::auth::read_token("CALLTRAIL_ADMIN_TOKEN", Some(&file))
            .with_context(|| {
                format!(
                    "no admin token: set CALLTRAIL_ADMIN_TOKEN, or run this as a user who can read {}",
                    file.display()
                )
            })?
            .context("no admin token")?;
        let listen = cfg.http.addr().context("[http] listen")?;
        let host = if listen.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
        } else {
            listen
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Ok(Admin {
            agent,
            host,
            auth: format!("Bearer {}", token.as_str()),
        })
    }
}
