//! The AMI connection: connect, check the banner, log in, then one reader
//! task that hands each `Response` to the request waiting for its ActionID
//! and each `Event: OriginateResponse` to whoever waits for that Originate's
//! outcome; every other event is read and dropped.
//!
//! Rules that keep a callback from being placed twice:
//!
//! * a request is registered as waiting **before** its bytes are written, so
//!   a fast reply (or an `OriginateResponse` arriving before the
//!   `Response`) is never lost;
//! * nothing is ever queued for sending and nothing is re-sent: a reconnect
//!   only serves the next call, and waiters of a dropped connection learn
//!   that it dropped ([`AmiError::InDoubt`], [`AmiError::OutcomeLost`]);
//! * a write that fails or times out closes the connection at once, so the
//!   partial action can never be completed by later bytes (Asterisk acts on
//!   an action only at its closing empty line);
//! * a response that does not come in time closes the connection too: the
//!   next call reconnects and fails cleanly ([`AmiError::Connect`], nothing
//!   sent) if Asterisk is gone, instead of writing more Originates into a
//!   dead socket;
//! * a connection idle for a while is pinged (`Action: Ping`) before an
//!   Originate is written on it; if the ping fails, the client reconnects
//!   first.
//!
//! The client connects lazily (on the first call) and after a drop
//! reconnects on the next call. A failed connect or login makes it wait
//! before the next attempt (see [`AmiError::Connect`], [`AmiError::Login`]);
//! calls meanwhile fail at once with the last error.

use super::frame::{ActionText, FrameReader, Message};
use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError, Weak};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Mutex};
use tokio::time::{timeout, Instant};

/// What the banner line starts with.
const BANNER_PREFIX: &str = "Asterisk Call Manager/";

/// First wait after a failed connect; doubles up to [`CONNECT_BACKOFF_MAX`].
const CONNECT_BACKOFF_START: Duration = Duration::from_secs(1);
const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// First wait after a refused login; doubles up to [`LOGIN_BACKOFF_MAX`].
const LOGIN_BACKOFF_START: Duration = Duration::from_secs(30);
const LOGIN_BACKOFF_MAX: Duration = Duration::from_secs(600);

/// A connection from which nothing was heard for this long is pinged before
/// an Originate is written on it.
const IDLE_PING_AFTER: Duration = Duration::from_secs(20);

/// A handle on one AMI session to Asterisk; cheap to clone (the clones share
/// the connection).
#[derive(Clone)]
pub struct AmiClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: AmiConfig,
    slot: Mutex<Slot>,
    /// Numbers the client's own ActionIDs (login, ping) and outcome waiters.
    seq: AtomicU64,
    idle_ping_after: Duration,
}

/// The current connection, and the backoff after failed attempts.
#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    connections: u64,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<AmiError>,
}

/// One logged-in connection.
struct Conn {
    id: u64,
    /// `None` once closed by a failed write.
    writer: Mutex<Option<OwnedWriteHalf>>,
    dispatch: Arc<Dispatch>,
    reader: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Who waits for what on one connection; shared with the reader task.
struct Dispatch {
    waiters: StdMutex<Waiters>,
}

struct Waiters {
    /// False once the connection is closed: nothing more is registered.
    open: bool,
    /// When Asterisk was last heard from (any message).
    last_heard: Instant,
    /// ActionID → the request waiting for its `Response`.
    responses: HashMap<String, oneshot::Sender<Message>>,
    /// ActionID → (waiter number, who waits for its `OriginateResponse`).
    outcomes: HashMap<String, (u64, oneshot::Sender<Message>)>,
}

/// Why a request could not be registered.
enum Register {
    /// The connection closed.
    Closed,
    /// The ActionID is already waited for.
    InFlight,
}

impl Dispatch {
    fn new() -> Self {
        Self {
            waiters: StdMutex::new(Waiters {
                open: true,
                last_heard: Instant::now(),
                responses: HashMap::new(),
                outcomes: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_open(&self) -> bool {
        self.lock().open
    }

    fn idle_for(&self) -> Duration {
        self.lock().last_heard.elapsed()
    }

    /// Registers a waiter for the `Response` to `id`.
    fn expect_response(&self, id: &str) -> Result<oneshot::Receiver<Message>, Register> {
        let mut w = self.lock();
        if !w.open {
            return Err(Register::Closed);
        }
        if w.responses.contains_key(id) || w.outcomes.contains_key(id) {
            return Err(Register::InFlight);
        }
        let (tx, rx) = oneshot::channel();
        w.responses.insert(id.to_owned(), tx);
        Ok(rx)
    }

    /// Registers waiters for the `Response` to the Originate `id` and for
    /// its `OriginateResponse`, both before anything is written.
    fn expect_originate(
        &self,
        id: &str,
        serial: u64,
    ) -> Result<(oneshot::Receiver<Message>, oneshot::Receiver<Message>), Register> {
        let mut w = self.lock();
        if !w.open {
            return Err(Register::Closed);
        }
        if w.responses.contains_key(id) || w.outcomes.contains_key(id) {
            return Err(Register::InFlight);
        }
        let (resp_tx, resp_rx) = oneshot::channel();
        let (out_tx, out_rx) = oneshot::channel();
        w.responses.insert(id.to_owned(), resp_tx);
        w.outcomes.insert(id.to_owned(), (serial, out_tx));
        Ok((resp_rx, out_rx))
    }

    fn forget_response(&self, id: &str) {
        self.lock().responses.remove(id);
    }

    /// Drops the outcome waiter `serial` of `id` (not a later one).
    fn forget_outcome(&self, id: &str, serial: u64) {
        let mut w = self.lock();
        if w.outcomes.get(id).is_some_and(|(s, _)| *s == serial) {
            w.outcomes.remove(id);
        }
    }

    /// Hands a received message to its waiter, if any.
    fn deliver(&self, msg: Message) {
        let mut w = self.lock();
        w.last_heard = Instant::now();
        if let Some(event) = msg.get("Event") {
            // Checked first: an OriginateResponse also has `Response:`.
            if !event.eq_ignore_ascii_case("OriginateResponse") {
                return;
            }
            let waiter = msg.get("ActionID").and_then(|id| w.outcomes.remove(id));
            match waiter {
                Some((_, tx)) => {
                    let _ = tx.send(msg);
                }
                None => tracing::debug!(
                    action_id = msg.get("ActionID").unwrap_or(""),
                    "AMI OriginateResponse for no waiting Originate ignored"
                ),
            }
            return;
        }
        if msg.get("Response").is_none() {
            return;
        }
        let waiter = msg.get("ActionID").and_then(|id| w.responses.remove(id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => tracing::debug!(
                action_id = msg.get("ActionID").unwrap_or(""),
                "AMI response to no waiting request ignored"
            ),
        }
    }

    /// Marks the connection closed and drops every waiter (they see the
    /// drop). Returns how many there were, `None` if it was closed already.
    fn close(&self) -> Option<usize> {
        let mut w = self.lock();
        if !w.open {
            return None;
        }
        w.open = false;
        let n = w.responses.len() + w.outcomes.len();
        w.responses.clear();
        w.outcomes.clear();
        Some(n)
    }
}

impl Conn {
    /// Writes `text` whole. On failure or timeout the connection is closed
    /// at once, so a partial action is never completed by later bytes.
    async fn write(&self, text: &str, limit: Duration) -> Result<(), String> {
        let mut writer = self.writer.lock().await;
        let Some(stream) = writer.as_mut() else {
            return Err("the connection is closed".into());
        };
        let why = match timeout(limit, stream.write_all(text.as_bytes())).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("write timed out after {limit:?}"),
        };
        *writer = None;
        drop(writer);
        self.close(&why);
        Err(why)
    }

    /// Closes the connection: the reader stops, every waiter is dropped.
    fn close(&self, why: &str) {
        self.reader.abort();
        // Shut the socket now unless a write holds it (that write ends,
        // failing, within its own timeout).
        if let Ok(mut writer) = self.writer.try_lock() {
            *writer = None;
        }
        if let Some(pending) = self.dispatch.close() {
            tracing::warn!(conn = self.id, pending, why, "AMI connection closed");
        }
    }
}

/// Reads messages until the connection ends, then closes `dispatch`.
async fn read_loop(mut reader: FrameReader<OwnedReadHalf>, dispatch: Arc<Dispatch>, conn: u64) {
    loop {
        match reader.read_message().await {
            Ok(Some(msg)) => dispatch.deliver(msg),
            Ok(None) => {
                tracing::info!(conn, "AMI connection closed by Asterisk");
                break;
            }
            Err(e) if e.is_discard() => {
                tracing::warn!(conn, error = %e, "AMI message from Asterisk discarded");
            }
            Err(e) => {
                tracing::warn!(conn, error = %e, "AMI connection lost");
                break;
            }
        }
    }
    if let Some(pending @ 1..) = dispatch.close() {
        tracing::warn!(
            conn,
            pending,
            "AMI connection ended with requests or outcomes still pending"
        );
    }
}

/// Waits for the [`Queued::outcome`] of one Originate; removes its waiter
/// when dropped.
struct OutcomeGuard {
    action_id: String,
    serial: u64,
    dispatch: Weak<Dispatch>,
}

impl Drop for OutcomeGuard {
    fn drop(&mut self) {
        if let Some(dispatch) = self.dispatch.upgrade() {
            dispatch.forget_outcome(&self.action_id, self.serial);
        }
    }
}

/// An Originate Asterisk has queued (`Response: Success`, `Message:
/// Originate successfully queued`); its `OriginateResponse` is awaited with
/// [`outcome`](Self::outcome). Dropping it stops waiting.
pub struct Queued {
    rx: oneshot::Receiver<Message>,
    guard: OutcomeGuard,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("action_id", &self.guard.action_id)
            .finish_non_exhaustive()
    }
}

impl Queued {
    /// The Originate's ActionID.
    pub fn action_id(&self) -> &str {
        &self.guard.action_id
    }

    /// Waits at most `deadline` for the `Event: OriginateResponse` of this
    /// Originate (Asterisk sends it when the dialled leg answers or fails,
    /// so a deadline a little longer than the Originate's `timeout_ms`
    /// suffices). Every answer Asterisk can give is an `Ok`: a failed call
    /// is `response_success == false` with its reason. The only error is
    /// [`AmiError::OutcomeLost`]: the connection dropped, the deadline
    /// passed, or the event was unreadable.
    pub async fn outcome(self, deadline: Duration) -> Result<OriginateOutcome, AmiError> {
        let id = &self.guard.action_id;
        let msg = match timeout(deadline, self.rx).await {
            Ok(Ok(msg)) => msg,
            Ok(Err(_)) => {
                tracing::warn!(action_id = %id, "AMI connection dropped before OriginateResponse");
                return Err(AmiError::OutcomeLost(
                    "the AMI connection closed before OriginateResponse arrived".into(),
                ));
            }
            Err(_) => {
                tracing::warn!(action_id = %id, ?deadline, "no OriginateResponse in time");
                return Err(AmiError::OutcomeLost(format!(
                    "no OriginateResponse within {deadline:?}"
                )));
            }
        };
        let outcome = parse_outcome(&msg)?;
        tracing::info!(
            action_id = %id,
            success = outcome.response_success,
            reason = outcome.reason,
            reason_text = outcome.reason_text,
            channel = %outcome.channel,
            uniqueid = outcome.uniqueid.as_deref().unwrap_or(""),
            "AMI OriginateResponse"
        );
        Ok(outcome)
    }
}

/// An `Event: OriginateResponse` as an [`OriginateOutcome`]; a missing or
/// unreadable `Response`/`Reason` is an [`AmiError::OutcomeLost`], never
/// guessed.
fn parse_outcome(msg: &Message) -> Result<OriginateOutcome, AmiError> {
    let response_success = match msg.get("Response") {
        Some(r) if r.eq_ignore_ascii_case("Success") => true,
        Some(r) if r.eq_ignore_ascii_case("Failure") => false,
        other => {
            return Err(AmiError::OutcomeLost(format!(
                "OriginateResponse with an unexpected Response {other:?}"
            )))
        }
    };
    let reason: u8 = match msg.get("Reason").map(|r| r.trim().parse()) {
        Some(Ok(reason)) => reason,
        _ => {
            return Err(AmiError::OutcomeLost(format!(
                "OriginateResponse with an unreadable Reason {:?}",
                msg.get("Reason")
            )))
        }
    };
    Ok(OriginateOutcome {
        response_success,
        reason,
        reason_text: reason_text(reason),
        channel: msg.get("Channel").unwrap_or_default().to_owned(),
        uniqueid: msg
            .get("Uniqueid")
            .filter(|u| !u.is_empty() && *u != "<unknown>")
            .map(str::to_owned),
    })
}

impl std::fmt::Debug for AmiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmiClient")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl AmiClient {
    /// A client for `cfg`. Cheap: nothing is connected until the first
    /// [`originate`](Self::originate).
    pub fn new(cfg: AmiConfig) -> AmiClient {
        Self::with_idle_ping(cfg, IDLE_PING_AFTER)
    }

    /// A client that pings a connection idle for `idle_ping_after`.
    pub(crate) fn with_idle_ping(cfg: AmiConfig, idle_ping_after: Duration) -> AmiClient {
        AmiClient {
            inner: Arc::new(Inner {
                cfg,
                slot: Mutex::new(Slot::default()),
                seq: AtomicU64::new(1),
                idle_ping_after,
            }),
        }
    }

    /// Places one callback: validates and writes `Action: Originate` with
    /// `Async: true` once, and waits (at most `response_timeout`) for its
    /// immediate response.
    ///
    /// * `Ok(Queued)`: `Response: Success` — Asterisk queued the call; await
    ///   [`Queued::outcome`] for how it went.
    /// * [`AmiError::Invalid`], [`AmiError::Connect`], [`AmiError::Login`],
    ///   [`AmiError::Refused`]: nothing was queued.
    /// * [`AmiError::InDoubt`]: it may have been queued; never resend it
    ///   blindly.
    ///
    /// An ActionID whose earlier Originate still waits for its response or
    /// outcome on the current connection is refused ([`Reason::InFlight`]).
    pub async fn originate(&self, o: &Originate) -> Result<Queued, AmiError> {
        let text = o.render()?;
        let conn = self.connection().await?;
        let id = o.action_id.as_str();
        let serial = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let (resp_rx, outcome_rx) = match conn.dispatch.expect_originate(id, serial) {
            Ok(rxs) => rxs,
            Err(Register::InFlight) => return Err(invalid(Field::ActionId, Reason::InFlight)),
            Err(Register::Closed) => {
                return Err(AmiError::Connect(
                    "the AMI connection closed before the Originate was written".into(),
                ))
            }
        };
        let guard = OutcomeGuard {
            action_id: o.action_id.clone(),
            serial,
            dispatch: Arc::downgrade(&conn.dispatch),
        };
        let limit = self.inner.cfg.response_timeout;
        if let Err(why) = conn.write(&text, limit).await {
            return Err(AmiError::Connect(format!(
                "the Originate could not be written whole ({why}); the connection was closed, \
                 so Asterisk cannot act on it"
            )));
        }
        tracing::debug!(
            conn = conn.id,
            action_id = %id,
            channel = %o.channel,
            "AMI Originate written"
        );
        let response = match timeout(limit, resp_rx).await {
            Ok(Ok(msg)) => msg,
            Ok(Err(_)) => return Err(AmiError::InDoubt(
                "the AMI connection closed after the Originate was written, before its response"
                    .into(),
            )),
            Err(_) => {
                conn.dispatch.forget_response(id);
                conn.close("no response to an Originate in time");
                return Err(AmiError::InDoubt(format!(
                    "no response to the Originate within {limit:?} (the connection was closed)"
                )));
            }
        };
        let message = response.get("Message").unwrap_or_default();
        match response.get("Response") {
            Some(r) if r.eq_ignore_ascii_case("Success") => {
                tracing::info!(
                    conn = conn.id,
                    action_id = %id,
                    channel = %o.channel,
                    "AMI Originate queued"
                );
                Ok(Queued {
                    rx: outcome_rx,
                    guard,
                })
            }
            Some(r) if r.eq_ignore_ascii_case("Error") => {
                tracing::warn!(action_id = %id, message, "AMI Originate refused");
                Err(AmiError::Refused(if message.is_empty() {
                    "Response: Error without a Message".into()
                } else {
                    message.to_owned()
                }))
            }
            other => Err(AmiError::InDoubt(format!(
                "unexpected response {other:?} ({message:?}) to the Originate"
            ))),
        }
    }

    /// The logged-in connection: the current one if it is alive (pinged
    /// first when idle), else a new one unless the backoff says wait.
    async fn connection(&self) -> Result<Arc<Conn>, AmiError> {
        let mut slot = self.inner.slot.lock().await;
        if let Some(conn) = slot.conn.clone() {
            if conn.dispatch.is_open() {
                if conn.dispatch.idle_for() < self.inner.idle_ping_after {
                    return Ok(conn);
                }
                match self.ping(&conn).await {
                    Ok(()) => return Ok(conn),
                    Err(why) => conn.close(&format!("idle connection failed a ping: {why}")),
                }
            }
            slot.conn = None;
        }
        if let (Some(at), Some(err)) = (slot.retry_at, &slot.last_error) {
            let now = Instant::now();
            if now < at {
                return Err(deferred(err, at - now));
            }
        }
        slot.connections += 1;
        let id = slot.connections;
        match self.establish(id).await {
            Ok(conn) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.last_error = None;
                slot.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(err) => {
                slot.failures = slot.failures.saturating_add(1);
                let wait = backoff(&err, slot.failures);
                slot.retry_at = Some(Instant::now() + wait);
                slot.last_error = Some(err.clone());
                let cfg = &self.inner.cfg;
                tracing::warn!(
                    host = %cfg.host,
                    port = cfg.port,
                    error = %err,
                    retry_in = ?wait,
                    "AMI connection failed"
                );
                Err(err)
            }
        }
    }

    /// `Action: Ping`, answered in time.
    async fn ping(&self, conn: &Conn) -> Result<(), String> {
        let id = format!(
            "calltrail-ping-{}",
            self.inner.seq.fetch_add(1, Ordering::Relaxed)
        );
        let rx = conn
            .dispatch
            .expect_response(&id)
            .map_err(|_| "the connection is closed".to_owned())?;
        let mut action = ActionText::new("Ping");
        action
            .header("ActionID", &[&id])
            .map_err(|r| r.to_string())?;
        let limit = self.inner.cfg.response_timeout;
        conn.write(&action.finish(), limit).await?;
        match timeout(limit, rx).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("the connection closed".into()),
            Err(_) => {
                conn.dispatch.forget_response(&id);
                Err(format!("no answer within {limit:?}"))
            }
        }
    }

    /// Connects, checks the banner, logs in and starts the reader.
    async fn establish(&self, conn_id: u64) -> Result<Arc<Conn>, AmiError> {
        let cfg = &self.inner.cfg;
        let login = self.login_action()?;
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let stream = match timeout(cfg.connect_timeout, TcpStream::connect(&addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(AmiError::Connect(format!("connect to {addr}: {e}"))),
            Err(_) => {
                return Err(AmiError::Connect(format!(
                    "connect to {addr}: no connection within {:?}",
                    cfg.connect_timeout
                )))
            }
        };
        let _ = stream.set_nodelay(true);
        let (read_half, mut write_half) = stream.into_split();
        let mut reader = FrameReader::new(read_half);

        let banner = match timeout(cfg.connect_timeout, reader.read_banner()).await {
            Ok(Ok(Some(line))) if line.starts_with(BANNER_PREFIX) => line,
            Ok(Ok(Some(line))) => {
                return Err(AmiError::Connect(format!(
                    "{addr} is not an Asterisk manager: banner {:?}",
                    line.chars().take(80).collect::<String>()
                )))
            }
            Ok(Ok(None)) => {
                return Err(AmiError::Connect(format!(
                    "{addr} closed the connection before its banner"
                )))
            }
            Ok(Err(e)) => return Err(AmiError::Connect(format!("{addr}: banner: {e}"))),
            Err(_) => {
                return Err(AmiError::Connect(format!(
                    "{addr}: no banner within {:?}",
                    cfg.connect_timeout
                )))
            }
        };

        let (action_id, text) = login;
        match timeout(cfg.response_timeout, write_half.write_all(text.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(AmiError::Connect(format!("{addr}: sending Login: {e}"))),
            Err(_) => {
                return Err(AmiError::Connect(format!(
                    "{addr}: sending Login timed out"
                )))
            }
        }
        let response = match timeout(
            cfg.response_timeout,
            login_response(&mut reader, &action_id),
        )
        .await
        {
            Ok(Ok(msg)) => msg,
            Ok(Err(why)) => return Err(AmiError::Connect(format!("{addr}: login: {why}"))),
            Err(_) => {
                return Err(AmiError::Connect(format!(
                    "{addr}: no login response within {:?}",
                    cfg.response_timeout
                )))
            }
        };
        let message = response.get("Message").unwrap_or_default();
        match response.get("Response") {
            Some(r) if r.eq_ignore_ascii_case("Success") => {}
            Some(r) if r.eq_ignore_ascii_case("Error") => {
                tracing::error!(
                    host = %cfg.host,
                    port = cfg.port,
                    username = %cfg.username,
                    message,
                    "AMI login refused: check the manager.conf user and secret"
                );
                return Err(AmiError::Login(if message.is_empty() {
                    "Response: Error without a Message".into()
                } else {
                    message.to_owned()
                }));
            }
            other => {
                return Err(AmiError::Connect(format!(
                    "{addr}: unexpected login response {other:?} ({message:?})"
                )))
            }
        }

        let dispatch = Arc::new(Dispatch::new());
        let task = tokio::spawn(read_loop(reader, dispatch.clone(), conn_id));
        tracing::info!(
            conn = conn_id,
            host = %cfg.host,
            port = cfg.port,
            username = %cfg.username,
            banner = %banner,
            "AMI logged in"
        );
        Ok(Arc::new(Conn {
            id: conn_id,
            writer: Mutex::new(Some(write_half)),
            dispatch,
            reader: task.abort_handle(),
        }))
    }

    /// `Action: Login` with its ActionID; a username or secret that cannot
    /// be sent is an [`AmiError::Login`] (the secret itself is never shown).
    fn login_action(&self) -> Result<(String, String), AmiError> {
        let cfg = &self.inner.cfg;
        if cfg.username.is_empty() {
            return Err(AmiError::Login("the configured username is empty".into()));
        }
        let bad = |what: &str, value: &str| {
            value.chars().any(|c| c.is_control()).then(|| {
                AmiError::Login(format!(
                    "the configured {what} contains a control character"
                ))
            })
        };
        if let Some(err) = bad("username", &cfg.username).or_else(|| bad("secret", &cfg.secret)) {
            return Err(err);
        }
        let id = format!(
            "calltrail-login-{}",
            self.inner.seq.fetch_add(1, Ordering::Relaxed)
        );
        let mut action = ActionText::new("Login");
        let fail = |what: &str, reason: Reason| {
            AmiError::Login(format!("the configured {what} cannot be sent: {reason}"))
        };
        action
            .header("ActionID", &[&id])
            .map_err(|r| fail("ActionID", r))?;
        action
            .header("Username", &[&cfg.username])
            .map_err(|r| fail("username", r))?;
        action
            .header("Secret", &[&cfg.secret])
            .map_err(|r| fail("secret", r))?;
        action
            .header("Events", &["call"])
            .map_err(|r| fail("event mask", r))?;
        Ok((id, action.finish()))
    }
}

/// The response to the Login `action_id` (events before it are skipped).
async fn login_response(
    reader: &mut FrameReader<OwnedReadHalf>,
    action_id: &str,
) -> Result<Message, String> {
    loop {
        match reader.read_message().await {
            Ok(Some(msg)) => {
                if msg.get("Event").is_some() || msg.get("Response").is_none() {
                    continue;
                }
                if msg.get("ActionID").is_none_or(|id| id == action_id) {
                    return Ok(msg);
                }
            }
            Ok(None) => return Err("closed before the login response".into()),
            Err(e) if e.is_discard() => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// How long to wait before the next attempt after `failures` failures in a
/// row, the last being `err`.
fn backoff(err: &AmiError, failures: u32) -> Duration {
    let (start, max) = match err {
        AmiError::Login(_) => (LOGIN_BACKOFF_START, LOGIN_BACKOFF_MAX),
        _ => (CONNECT_BACKOFF_START, CONNECT_BACKOFF_MAX),
    };
    let doublings = failures.saturating_sub(1).min(16);
    start.saturating_mul(1u32 << doublings).min(max)
}

/// The last connect/login error, told again while the client waits.
fn deferred(err: &AmiError, wait: Duration) -> AmiError {
    let note = |m: &str| format!("{m} (next attempt in {:.1}s)", wait.as_secs_f64());
    match err {
        AmiError::Login(m) => AmiError::Login(note(m)),
        AmiError::Connect(m) => AmiError::Connect(note(m)),
        other => other.clone(),
    }
}
