//! `calltrail status`: the running daemon at a glance — ready or why not
//! (`GET /readyz`), and from `GET /metrics` each source's lines, events,
//! rejects, bytes behind and last line, the deriver's and the sinks' lag,
//! the actions by kind and status, the store's size. Asked over the
//! daemon's HTTP API on this host (with the `[http]` token when one is
//! configured).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// Why no status could be shown.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("calltrail is not running at {addr} ([http] listen): {why}")]
    NotRunning { addr: SocketAddr, why: String },
    #[error("{addr} answered {what}")]
    Answer { addr: SocketAddr, what: String },
    #[error("[http] listen: {0}")]
    Listen(std::net::AddrParseError),
    #[error(transparent)]
    Token(#[from] super::auth::AuthError),
}

/// One sample of the metrics text: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of an OpenMetrics text as calltrail writes it (`name{k="v",…} value`).
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((head, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => {
                let mut labels = BTreeMap::new();
                for pair in rest.trim_end_matches('}').split("\",") {
                    if let Some((k, v)) = pair.split_once("=\"") {
                        labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                    }
                }
                (n.to_string(), labels)
            }
            None => (head.to_string(), BTreeMap::new()),
        };
        out.push((name, labels, value));
    }
    out
}

fn bytes(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

/// The status of the daemon `cfg` names, as text; `Ok((text, ready))`.
pub fn run(cfg: &crate::config::Config) -> Result<(String, bool), StatusError> {
    let listen = cfg.http.addr().map_err(StatusError::Listen)?;
    let addr = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    let token = super::auth::read_token("CALLTRAIL_TOKEN", cfg.http.token_file.as_deref())?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let get = |path: &str| -> Result<(u16, String), StatusError> {
        let mut req = agent.get(&format!("http://{addr}{path}"));
        if let Some(t) = &token {
            req = req.header("authorization", &format!("Bearer {}", t.as_str()));
        }
        let mut r = req.call().map_err(|e| StatusError::NotRunning {
            addr,
            why: e.to_string(),
        })?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .read_to_string()
            .map_err(|e| StatusError::Answer {
                addr,
                what: e.to_string(),
            })?;
        Ok((status, body))
    };
    let (code, ready) = get("/readyz")?;
    let (mcode, metrics) = get("/metrics")?;
    if mcode != 200 || !(code == 200 || code == 503) {
        return Err(StatusError::Answer {
            addr,
            what: format!("{code} to /readyz and {mcode} to /metrics: is this calltrail?"),
        });
    }
    let m = samples(&metrics);
    let one = |name: &str, key: &str, val: &str| {
        m.iter()
            .find(|(n, l, _)| n == name && l.get(key).is_some_and(|v| v == val))
            .map(|s| s.2)
    };
    let plain = |name: &str| {
        m.iter()
            .find(|(n, l, _)| n == name && l.is_empty())
            .map(|s| s.2)
    };
    let mut out = String::new();
    let is_ready = code == 200;
    let _ = writeln!(
        out,
        "calltrail at {addr}: {}",
        if is_ready { "ready" } else { "NOT READY" }
    );
    for line in ready.lines().skip(1) {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "\n{:<20} {:>10} {:>10} {:>8} {:>10} {:>12} {:>6}",
        "source", "lines", "events", "rejects", "behind", "last line", "stale"
    );
    for s in &cfg.sources {
        let n = s.name.as_str();
        let f = |name: &str| one(name, "source", n);
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10} {:>8} {:>10} {:>12} {:>6}",
            n,
            f("calltrail_source_lines_total").map_or("-".into(), |v| format!("{v:.0}")),
            f("calltrail_source_events_total").map_or("-".into(), |v| format!("{v:.0}")),
            f("calltrail_source_rejects_total").map_or("-".into(), |v| format!("{v:.0}")),
            f("calltrail_source_lag_bytes").map_or("-".into(), bytes),
            f("calltrail_source_last_line_age_seconds")
                .map_or("-".into(), |v| format!("{v:.0} s ago")),
            match f("calltrail_source_stale") {
                Some(v) if v > 0.0 => "STALE",
                Some(_) => "no",
                None => "-",
            }
        );
    }
    let _ = writeln!(
        out,
        "\nderiver: {} events behind",
        plain("calltrail_deriver_lag_events").map_or("-".into(), |v| format!("{v:.0}"))
    );
    let sinks: Vec<String> = m
        .iter()
        .filter(|(n, _, _)| n == "calltrail_sink_lag_events")
        .map(|(_, l, v)| format!("{} {v:.0} events behind", l.get("sink").map_or("?", |s| s)))
        .collect();
    if !sinks.is_empty() {
        let _ = writeln!(out, "sinks: {}", sinks.join(", "));
    }
    let actions: Vec<String> = m
        .iter()
        .filter(|(n, _, _)| n == "calltrail_actions")
        .map(|(_, l, v)| {
            format!(
                "{} {} {v:.0}",
                l.get("kind").map_or("?", |s| s),
                l.get("status").map_or("?", |s| s)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "actions: {}",
        if actions.is_empty() {
            "none".to_string()
        } else {
            actions.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "store: {}",
        plain("calltrail_store_bytes").map_or("-".into(), bytes)
    );
    Ok((out, is_ready))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_calltrails_own_text() {
        let s = samples(
            "# TYPE x counter\nx_total{source=\"q\"} 11\ny 2.5\nz{kind=\"sms\",status=\"done\"} 3\n# EOF\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].0, "x_total");
        assert_eq!(s[0].1["source"], "q");
        assert_eq!(s[1].2, 2.5);
        assert_eq!(s[2].1["status"], "done");
    }
}
