//! `calltrail numbers` through a running daemon's admin API
//! (`serve/numbers.rs`), with the admin token: `CALLTRAIL_ADMIN_TOKEN`,
//! else `[http] admin_token_file`, else the one the daemon wrote next to
//! the store (`<store>.admin-token`).

use super::ops::{Op, Reply};
use crate::config::Config;
use crate::query::ResultSet;
use anyhow::Context;
use std::time::Duration;

/// How long a change through the daemon may take (an import of a large
/// file included).
const TIMEOUT: Duration = Duration::from_secs(120);

/// Sends `op` to the daemon `cfg` names and returns its reply.
pub fn send(cfg: &Config, op: &Op) -> anyhow::Result<Reply> {
    let crate::serve::client::Admin {
        agent,
        host,
        auth: auth_header,
    } = crate::serve::client::Admin::new(cfg, TIMEOUT)?;
    let url = |p: &str| format!("http://{host}{p}");
    let request = match op {
        Op::List => agent
            .get(url("/api/numbers"))
            .header("authorization", &auth_header)
            .call(),
        Op::Export => agent
            .get(url("/api/numbers/export"))
            .header("authorization", &auth_header)
            .call(),
        _ => agent
            .post(url("/api/numbers"))
            .header("authorization", &auth_header)
            .header("content-type", "application/json")
            .header("x-calltrail-actor", super::actor())
            .send(serde_json::to_vec(op)?.as_slice()),
    };
    let mut res = request.with_context(|| format!("no answer from the daemon at http://{host}"))?;
    let status = res.status();
    let body = res
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .context("reading the daemon's answer")?;
    if matches!(op, Op::Export) && status.is_success() {
        return Ok(Reply::Csv(String::from_utf8_lossy(&body).into_owned()));
    }
    let answer: serde_json::Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "http://{host} answered {status}, not as calltrail's API: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })?;
    if !status.is_success() {
        let msg = answer
            .get("error")
            .and_then(|m| m.as_str())
            .unwrap_or("no error message");
        anyhow::bail!("{msg}");
    }
    if let Some(line) = answer.get("output").and_then(|o| o.as_str()) {
        return Ok(Reply::Done(line.to_string()));
    }
    let columns: Vec<String> = serde_json::from_value(answer["columns"].clone())
        .context("the daemon's list has no columns")?;
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_value(answer["rows"].clone()).context("the daemon's list has no rows")?;
    Ok(Reply::List(ResultSet { columns, rows }))
}
