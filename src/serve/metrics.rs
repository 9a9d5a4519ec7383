//! `GET /metrics`: the daemon's figures in the Prometheus/OpenMetrics text
//! format (the `prometheus-client` crate; names, units and labels by
//! Prometheus' conventions, docs/metrics.md "Operating figures"). Figures
//! kept as the daemon works (lookup and HTTP latency histograms) live here
//! as process-wide histograms; the rest is read at each scrape: each
//! source's reader ([`crate::tail::status`]), the checkpoints of the
//! sources, the sinks and the state deriver, the actions outbox, the
//! store's files.

use super::router::AppState;
use crate::tail::status::Statuses;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViaLabel {
    via: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
    method: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Lookups take tens of microseconds: buckets from 25 µs to 1 s.
fn lookup_histogram() -> Histogram {
    Histogram::new([
        0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1,
        1.0,
    ])
}

/// HTTP requests (queries can take seconds): 0.5 ms to 30 s.
fn http_histogram() -> Histogram {
    Histogram::new([
        0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        30.0,
    ])
}

static LOOKUPS: LazyLock<Histograms<ViaLabel>> =
    LazyLock::new(|| Family::new_with_constructor(lookup_histogram));
static REQUESTS: LazyLock<Histograms<RouteLabel>> =
    LazyLock::new(|| Family::new_with_constructor(http_histogram));

/// Config reloads (SIGHUP) by result, both shown from the start.
static RELOADS: LazyLock<Family<ResultLabel, Counter>> = LazyLock::new(|| {
    let f = Family::<ResultLabel, Counter>::default();
    for r in ["ok", "error"] {
        let _ = f.get_or_create(&ResultLabel { result: r.into() });
    }
    f
});

/// Counts one config reload: `ok` (the file was valid: what could be
/// applied live was) or `error` (refused: the running config stays).
pub fn count_reload(ok: bool) {
    let result = if ok { "ok" } else { "error" };
    RELOADS
        .get_or_create(&ResultLabel {
            result: result.into(),
        })
        .inc();
}

/// Records one dialplan lookup's decision time (`via`: `http` or `agi`).
pub fn observe_lookup(via: &str, took: Duration) {
    LOOKUPS
        .get_or_create(&ViaLabel { via: via.into() })
        .observe(took.as_secs_f64());
}

/// Middleware: every request's time to its response's head, by route.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    REQUESTS
        .get_or_create(&RouteLabel { route, method })
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// What `/metrics` reads besides the store.
#[derive(Debug)]
pub struct MetricsSources {
    pub sources: Arc<Statuses>,
    /// The store's file (its size, with the WAL's).
    pub store_path: PathBuf,
    /// Whether the Kafka publisher runs (its sinks then have a lag).
    pub kafka: bool,
    /// The sources read line by line (a lag in bytes); snapshot sources
    /// (DBF, Oktell) are re-read whole and have none.
    pub line_sources: std::collections::HashSet<String>,
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let Some(src) = state.metrics.clone() else {
        return (StatusCode::NOT_FOUND, "no metrics here\n").into_response();
    };
    let store = match state.store.handle() {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let r = tokio::task::spawn_blocking(move || {
        store.with_conn(|c| gather(c, &src, store.health(), SystemTime::now()))
    })
    .await;
    match r {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "cannot gather the metrics");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("cannot gather the metrics: {e}\n"),
    )
        .into_response()
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error("encoding: {0}")]
    Encode(#[from] std::fmt::Error),
}

fn gauge_f64() -> Gauge<f64, AtomicU64> {
    Gauge::default()
}

/// Every figure, encoded.
fn gather(
    c: &duckdb::Connection,
    src: &MetricsSources,
    health: &crate::store::health::Health,
    now: SystemTime,
) -> Result<String, GatherError> {
    let mut reg = Registry::default();

    let lines = Family::<SourceLabel, Counter>::default();
    let events = Family::<SourceLabel, Counter>::default();
    let rejects = Family::<SourceLabel, Counter>::default();
    let lag = Family::<SourceLabel, Gauge>::default();
    let age = Family::<SourceLabel, Gauge<f64, AtomicU64>>::new_with_constructor(gauge_f64);
    let stale = Family::<SourceLabel, Gauge>::default();
    for s in &src.sources.0 {
        let l = SourceLabel {
            source: s.name.clone(),
        };
        lines
            .get_or_create(&l)
            .inc_by(s.lines.load(Ordering::Relaxed));
        events
            .get_or_create(&l)
            .inc_by(s.events.load(Ordering::Relaxed));
        rejects
            .get_or_create(&l)
            .inc_by(s.rejects.load(Ordering::Relaxed));
        let since = s.last_line().unwrap_or(s.started());
        age.get_or_create(&l)
            .set(now.duration_since(since).unwrap_or_default().as_secs_f64());
        stale.get_or_create(&l).set(i64::from(s.stale(now)));
        if !src.line_sources.contains(&s.name) {
            continue;
        }
        if let Some(behind) = readable(bytes_behind(c, &s.name, s.path())).flatten() {
            lag.get_or_create(&l)
                .set(i64::try_from(behind).unwrap_or(i64::MAX));
        }
    }
    reg.register(
        "calltrail_source_lines",
        "Lines read from the source and stored or rejected, since the daemon started",
        lines,
    );
    reg.register(
        "calltrail_source_events",
        "Events stored from the source's lines, since the daemon started",
        events,
    );
    reg.register(
        "calltrail_source_rejects",
        "Lines of the source rejected (quarantined with a reason), since the daemon started",
        rejects,
    );
    reg.register_with_unit(
        "calltrail_source_lag",
        "Bytes of the source's file not yet read (file size minus the committed offset)",
        Unit::Bytes,
        lag,
    );
    reg.register_with_unit(
        "calltrail_source_last_line_age",
        "Seconds since a line of the source was last stored (since the start when none was)",
        Unit::Seconds,
        age,
    );
    reg.register(
        "calltrail_source_stale",
        "1 when the source's file has not been found readable for longer than its stale_after_s",
        stale,
    );

    let sinks = Family::<SinkLabel, Gauge>::default();
    if src.kafka {
        for (sink, table) in [
            (crate::publish::SINK, "events"),
            (crate::publish::STATE_SINK, "state_events"),
        ] {
            if let Some(n) = readable(behind(c, table, sink)) {
                sinks.get_or_create(&SinkLabel { sink: sink.into() }).set(n);
            }
        }
    }
    reg.register_with_unit(
        "calltrail_sink_lag",
        "Stored events not yet acknowledged by the sink",
        Unit::Other("events".into()),
        sinks,
    );
    if let Some(n) = readable(behind(c, "events", crate::store::STATE_SINK)) {
        let deriver = Gauge::<i64>::default();
        deriver.set(n);
        reg.register_with_unit(
            "calltrail_deriver_lag",
            "Stored events the state deriver has not yet taken into the derived tables",
            Unit::Other("events".into()),
            deriver,
        );
    }

    let actions = Family::<ActionLabel, Gauge>::default();
    let counts = (|| -> Result<Vec<(String, String, i64)>, duckdb::Error> {
        let mut stmt =
            c.prepare("SELECT kind, status, count(*) FROM actions GROUP BY ALL ORDER BY ALL")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.collect()
    })();
    for (kind, status, n) in readable(counts).unwrap_or_default() {
        actions.get_or_create(&ActionLabel { kind, status }).set(n);
    }
    reg.register(
        "calltrail_actions",
        "Actions in the outbox (emails, webhooks, callbacks, SMS) by kind and status",
        actions,
    );

    let store = Gauge::<i64>::default();
    let mut wal = src.store_path.as_os_str().to_owned();
    wal.push(".wal");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    store.set(i64::try_from(size(&src.store_path) + size(&PathBuf::from(wal))).unwrap_or(i64::MAX));
    reg.register_with_unit(
        "calltrail_store",
        "Size of the DuckDB store on disk (the file and its write-ahead log)",
        Unit::Bytes,
        store,
    );
    let write_errors = Counter::<u64>::default();
    write_errors.inc_by(health.write_errors());
    reg.register(
        "calltrail_store_write_errors",
        "Writes to the store that failed (a full or failing disk; each retried until it succeeds), since the daemon started",
        write_errors,
    );
    let writable = Gauge::<i64>::default();
    writable.set(i64::from(health.not_writable().is_none()));
    reg.register(
        "calltrail_store_writable",
        "0 while the store cannot be written (the last retried write failed), else 1",
        writable,
    );
    let reopens = Counter::<u64>::default();
    reopens.inc_by(health.reopens());
    reg.register(
        "calltrail_store_reopens",
        "Times the store was reopened after DuckDB invalidated it (a failed write), since the daemon started",
        reopens,
    );

    reg.register(
        "calltrail_config_reloads",
        "Reloads of the config file (SIGHUP) since the daemon started: ok, or error (refused, the running config kept)",
        RELOADS.clone(),
    );
    reg.register_with_unit(
        "calltrail_lookup_duration",
        "Time to decide one dialplan lookup (HTTP or FastAGI), from the number to the answer",
        Unit::Seconds,
        LOOKUPS.clone(),
    );
    reg.register_with_unit(
        "calltrail_http_request_duration",
        "Time from an HTTP request to its response's head, by route",
        Unit::Seconds,
        REQUESTS.clone(),
    );

    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg)?;
    Ok(out)
}

/// A figure read from the store, or `None` when the store cannot be read
/// (DuckDB invalidated it after a failed write, until it is reopened): the
/// scrape goes on without it (`calltrail_store_writable` says why).
fn readable<T>(r: Result<T, duckdb::Error>) -> Option<T> {
    r.map_err(|e| tracing::debug!(error = %e, "a figure cannot be read from the store"))
        .ok()
}

/// Rows of `table` after the checkpoint of `sink`.
pub(crate) fn behind(
    c: &duckdb::Connection,
    table: &str,
    sink: &str,
) -> Result<i64, duckdb::Error> {
    c.query_row(
        &format!(
            "SELECT count(*) FROM {table} WHERE seq > \
             (SELECT coalesce(max(seq), 0) FROM sink_checkpoints WHERE sink = ?)"
        ),
        [sink],
        |r| r.get(0),
    )
}

/// Bytes of the source's file past its committed offset (`None`: not a
/// followed file, or none there). A file other than the checkpoint's (it
/// rotated) is behind by its whole size.
pub(crate) fn bytes_behind(
    c: &duckdb::Connection,
    source: &str,
    path: &std::path::Path,
) -> Result<Option<u64>, duckdb::Error> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let cp: Option<(u64, u64, i64)> = {
        let mut stmt =
            c.prepare("SELECT dev, inode, byte_offset FROM checkpoints WHERE source = ?")?;
        let mut rows = stmt.query([source])?;
        match rows.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?, r.get(2)?)),
            None => None,
        }
    };
    Ok(Some(match cp {
        Some((dev, inode, offset)) if dev == meta.dev() && inode == meta.ino() => {
            meta.len().saturating_sub(offset.max(0) as u64)
        }
        _ => meta.len(),
    }))
}
