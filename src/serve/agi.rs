//! The dialplan lookup over FastAGI on `[agi] listen` (default
//! `127.0.0.1:4573`): `AGI(agi://127.0.0.1:4573/lookup[,NUMBER])`.
//!
//! Asterisk connects, sends its `agi_*: value` lines and an empty line
//! (INTEGRATIONS.md §2.1); the number is `agi_arg_1` when given, else
//! `number=` in the script's query string, else `agi_callerid`. We answer
//! with one `SET VARIABLE CALLTRAIL_<KEY> "<value>"` per key of the
//! lookup (the hashcompat keys upper-cased, `CALLTRAIL_OK` last), read the
//! reply to each (skipping the unsolicited `HANGUP` lines Asterisk sends
//! when the caller hangs up; stopping at a `5xx` or end of stream), then
//! close: Asterisk sets `AGISTATUS=SUCCESS` and the dialplan goes on.
//! Asterisk never times out waiting for us, so every read here has a
//! deadline and a session never outlives [`SESSION_DEADLINE`].

use super::auth::Access;
use crate::lookup::{Decision, Index, Policy, Window};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

/// The longest a session may last, start to close.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(10);
/// Sessions served at once; more wait for a turn.
const CONCURRENT: usize = 512;
/// Limits on the environment block (Asterisk sends ~25 short lines).
const MAX_ENV_LINES: usize = 200;
const MAX_LINE: usize = 8192;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum AgiError {
    #[error("[agi] listen = {listen:?} is not an IP address and port ({source})")]
    Address {
        listen: String,
        source: std::net::AddrParseError,
    },
    #[error("cannot listen on {addr} for FastAGI: {source}. Set [agi] listen to a free address, or [agi] enabled = false")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
}

/// A running FastAGI server.
pub struct AgiServer {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AgiServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; sessions under way finish within their deadline.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
        tracing::info!("FastAGI server stopped");
    }
}

/// Binds `listen` and serves the `lookup` script.
pub async fn start(
    listen: &str,
    allow: &[String],
    index: Arc<Index>,
) -> Result<AgiServer, AgiError> {
    let addr: SocketAddr = listen.trim().parse().map_err(|source| AgiError::Address {
        listen: listen.to_string(),
        source,
    })?;
    let access = Access::new("[agi]", "[agi] allow", addr, None, allow, false)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AgiError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| AgiError::Bind { addr, source })?;
    let (shutdown, mut stopped) = oneshot::channel::<()>();
    let permits = Arc::new(Semaphore::new(CONCURRENT));
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut stopped => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "FastAGI accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            if !access.permits(peer.ip(), None) {
                tracing::warn!(client = %peer, "FastAGI connection refused: not in [agi] allow");
                drop(stream);
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let index = index.clone();
            tokio::spawn(async move {
                let r = tokio::time::timeout(SESSION_DEADLINE, session(stream, &index)).await;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(client = %peer, error = %e, "FastAGI session ended early")
                    }
                    Err(_) => {
                        tracing::warn!(client = %peer, "FastAGI session over its deadline; closed")
                    }
                }
                drop(permit);
            });
        }
    });
    tracing::info!(%addr, "FastAGI listening (script lookup)");
    Ok(AgiServer {
        addr,
        shutdown,
        task,
    })
}

/// The `agi_*` lines of a session that matter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Env {
    pub script: Option<String>,
    pub callerid: Option<String>,
    pub arg1: Option<String>,
    /// `agi_uniqueid`: the call (one employee callback per call).
    pub uniqueid: Option<String>,
}

/// Reads one line (without `\n` / `\r\n`), at most [`MAX_LINE`] bytes;
/// `None` at end of stream.
async fn line(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "an AGI line over 8 KB",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(buf))
}

/// Parses one `key: value` environment line into `env`.
pub fn env_line(env: &mut Env, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let Some((k, v)) = text.split_once(": ").or_else(|| text.split_once(':')) else {
        return;
    };
    let v = v.to_string();
    match k {
        "agi_network_script" => env.script = Some(v),
        "agi_callerid" => env.callerid = Some(v),
        "agi_arg_1" => env.arg1 = Some(v),
        "agi_uniqueid" => env.uniqueid = Some(v),
        _ => {}
    }
}

/// What the session asks: the number, and policy/window overrides from
/// the script's query string. `Err` names a script we do not serve.
pub fn request(env: &Env) -> Result<(String, Option<Policy>, Option<Window>), String> {
    let script = env.script.as_deref().unwrap_or("");
    let (path, query) = script.split_once('?').unwrap_or((script, ""));
    if path.trim_matches('/') != "lookup" {
        return Err(format!(
            "unknown script {path:?} (calltrail serves `lookup`)"
        ));
    }
    let mut number = None;
    let (mut policy, mut window) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "number" => number = Some(v.into_owned()),
            "policy" => policy = Policy::parse(&v),
            "window" => window = Window::parse(&v).ok(),
            _ => {}
        }
    }
    let number = env
        .arg1
        .clone()
        .or(number)
        .or_else(|| env.callerid.clone())
        .unwrap_or_default();
    // Asterisk writes "unknown" for a missing caller id.
    let number = if number == "unknown" {
        String::new()
    } else {
        number
    };
    Ok((number, policy, window))
}

/// The `SET VARIABLE` commands of a decision, in order, `CALLTRAIL_OK`
/// last. Values are quoted for res_agi's argument parser: `"` and `\`
/// escaped with `\`, control characters (a newline would end the command)
/// dropped.
pub fn commands(d: &Decision) -> Vec<String> {
    let b = |x: bool| if x { "1" } else { "0" };
    let calls = d.calls.to_string();
    [
        ("ACTION", d.action),
        ("NAME", d.name.as_str()),
        ("AGENT", d.agent.as_str()),
        ("AGENT_INTERFACE", d.agent_interface.as_str()),
        ("AGENT_STATE", d.agent_state),
        ("FIRST_CALL", b(d.first_call)),
        ("MISSED_OPEN", b(d.missed_open)),
        ("CALLS", calls.as_str()),
        ("OK", "1"),
    ]
    .iter()
    .map(|(k, v)| format!("SET VARIABLE CALLTRAIL_{k} \"{}\"\n", quote(v)))
    .collect()
}

fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars().filter(|c| !c.is_control()).take(200) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn session(stream: TcpStream, index: &Index) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut env = Env::default();
    let mut lines = 0;
    loop {
        let Some(l) = line(&mut r).await? else {
            // Closed before the environment ended: nothing to answer.
            return Ok(());
        };
        if l.is_empty() {
            break;
        }
        lines += 1;
        if lines > MAX_ENV_LINES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "over 200 environment lines",
            ));
        }
        env_line(&mut env, &l);
    }
    let (number, policy, window) = match request(&env) {
        Ok(x) => x,
        Err(why) => {
            tracing::warn!(script = ?env.script, "FastAGI: {why}");
            w.shutdown().await?;
            return Ok(());
        }
    };
    let started = std::time::Instant::now();
    let d = index.lookup_call(&number, policy, window, env.uniqueid.as_deref());
    super::metrics::observe_lookup("agi", started.elapsed());
    let Ok(d) = d else {
        // Still loading: no variable set, CALLTRAIL_OK stays empty and the
        // dialplan routes normally.
        tracing::debug!("FastAGI lookup while the index loads: closed without an answer");
        w.shutdown().await?;
        return Ok(());
    };
    for cmd in commands(&d) {
        w.write_all(cmd.as_bytes()).await?;
        // The reply: skip unsolicited HANGUP lines; a 5xx or the end of
        // the stream ends the session.
        loop {
            let Some(l) = line(&mut r).await? else {
                return Ok(());
            };
            if l == b"HANGUP" {
                continue;
            }
            if l.starts_with(b"200") {
                break;
            }
            // 510/511/520 (and the lines of a multi-line 520): stop.
            if l.first().is_some_and(|b| *b == b'5') {
                tracing::debug!(reply = %String::from_utf8_lossy(&l), "FastAGI: Asterisk refused a command; closing");
                w.shutdown().await?;
                return Ok(());
            }
        }
    }
    w.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let mut env = Env::default();
        for l in [
            "agi_network: yes",
            "agi_network_script: lookup?number=%2B79161234567",
            "agi_callerid: +79990000000",
        ] {
            env_line(&mut env, l.as_bytes());
        }
        assert_eq!(request(&env).unwrap().0, "+79161234567");
        env.arg1 = Some("201".into());
        assert_eq!(request(&env).unwrap().0, "201");
        env.arg1 = None;
        env.script = Some("lookup".into());
        assert_eq!(request(&env).unwrap().0, "+79990000000");
        env.callerid = Some("unknown".into());
        assert_eq!(request(&env).unwrap().0, "");
        env.script = Some("other".into());
        assert!(request(&env).is_err());
        assert_eq!(quote("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ cd");
    }
}
