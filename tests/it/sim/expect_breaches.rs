//! Expected `sla_breaches`, under the most natural reading of
//! docs/schema.md (the doc leaves the exact start and end instants open,
//! so the whole table is compared softly: differences are reported, not
//! failed):
//!
//! - `max_wait`: each stint that waited longer than 120 s is over the
//!   threshold from `entered + 120` until it stopped waiting; periods less
//!   than 60 s apart are one breach; `value` = the longest wait in it.
//! - `service_level`: evaluated at every interval boundary over the 60
//!   minutes before it, when at least 10 stints were offered; starts below
//!   0.8, ends at or above 0.85; `value` = the worst level seen.
//! - `waiting_calls`: never more than 10 callers wait at once in this day.

use super::expect_calls::SHORT_ABANDON_S;
use super::expect_sla::{INTERVAL_S, SLA_THRESHOLD_S};
use super::table::{float, ts, Expected, Row};
use super::truth::{Day, EndKind, Ts};
use std::collections::BTreeMap;

const MAX_WAIT_S: i64 = 120;
const GAP_S: i64 = 60;
const WINDOW_S: i64 = 3600;
const MIN_CALLS: i64 = 10;
const SL_MIN: f64 = 0.8;
const SL_HYSTERESIS: f64 = 0.05;

fn row(queue: &str, kind: &str, start: Ts, end: Option<Ts>, value: f64, threshold: f64) -> Row {
    let mut r = Row::new();
    r.insert("queue", queue.into());
    r.insert("kind", kind.into());
    r.insert("started_at", ts(Some(start)));
    r.insert("ended_at", ts(end));
    r.insert("value", float(Some(value)));
    r.insert("threshold", float(Some(threshold)));
    r
}

pub fn expected(day: &Day) -> Expected {
    let mut rows = Vec::new();
    // (queue) → periods over max wait: (from, to, wait)
    let mut waits: BTreeMap<&str, Vec<(Ts, Ts, i64)>> = BTreeMap::new();
    // (queue, interval) → (offered, short, within)
    let mut ivals: BTreeMap<&str, BTreeMap<Ts, (i64, i64, i64)>> = BTreeMap::new();
    for s in day.calls.iter().flat_map(|c| c.stints.iter()) {
        let Some(e) = &s.end else { continue };
        if e.wait > MAX_WAIT_S {
            waits.entry(s.queue).or_default().push((
                s.entered + MAX_WAIT_S,
                s.entered + e.wait,
                e.wait,
            ));
        }
        let i = ivals
            .entry(s.queue)
            .or_default()
            .entry(s.entered - s.entered.rem_euclid(INTERVAL_S))
            .or_default();
        i.0 += 1;
        if e.kind == EndKind::Abandon && e.wait < SHORT_ABANDON_S {
            i.1 += 1;
        }
        if e.kind.answered() && e.wait <= SLA_THRESHOLD_S {
            i.2 += 1;
        }
    }
    for (queue, mut periods) in waits {
        periods.sort();
        let mut cur: Option<(Ts, Ts, i64)> = None;
        for p in periods {
            cur = match cur {
                Some(c) if p.0 - c.1 < GAP_S => Some((c.0, c.1.max(p.1), c.2.max(p.2))),
                Some(c) => {
                    rows.push(row(
                        queue,
                        "max_wait",
                        c.0,
                        Some(c.1),
                        c.2 as f64,
                        MAX_WAIT_S as f64,
                    ));
                    Some(p)
                }
                None => Some(p),
            };
        }
        if let Some(c) = cur {
            rows.push(row(
                queue,
                "max_wait",
                c.0,
                Some(c.1),
                c.2 as f64,
                MAX_WAIT_S as f64,
            ));
        }
    }
    for (queue, iv) in ivals {
        let (Some(first), Some(last)) = (iv.keys().next().copied(), iv.keys().last().copied())
        else {
            continue;
        };
        let mut breach: Option<(Ts, f64)> = None;
        let mut b = first + INTERVAL_S;
        while b <= last + INTERVAL_S + WINDOW_S {
            let (mut offered, mut short, mut within) = (0, 0, 0);
            for (_, v) in iv.range(b - WINDOW_S..b) {
                offered += v.0;
                short += v.1;
                within += v.2;
            }
            if offered >= MIN_CALLS && offered > short {
                let sl = within as f64 / (offered - short) as f64;
                breach = match breach {
                    None if sl < SL_MIN => Some((b, sl)),
                    Some((start, worst)) if sl >= SL_MIN + SL_HYSTERESIS => {
                        rows.push(row(queue, "service_level", start, Some(b), worst, SL_MIN));
                        None
                    }
                    Some((start, worst)) => Some((start, worst.min(sl))),
                    None => None,
                };
            }
            b += INTERVAL_S;
        }
        if let Some((start, worst)) = breach {
            rows.push(row(queue, "service_level", start, None, worst, SL_MIN));
        }
    }
    for r in &mut rows {
        for (k, v) in r.iter_mut() {
            if !matches!(*k, "queue" | "kind" | "started_at") {
                *v = format!("~{v}");
            }
        }
    }
    Expected {
        name: "sla_breaches",
        key: &["queue", "kind", "started_at"],
        sql: "SELECT queue, kind, epoch(started_at)::BIGINT AS started_at, \
              epoch(ended_at)::BIGINT AS ended_at, value::DOUBLE AS value, \
              threshold::DOUBLE AS threshold FROM sla_breaches",
        rows,
        soft: true,
    }
}
