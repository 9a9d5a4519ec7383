//! Expected `sla_intervals`: per queue and 15-minute interval of stint
//! entry, over the stints that have ended, with the default thresholds
//! (answered within 20 s, short abandon under 5 s) and the default
//! service level `answered_within / (offered - short_abandoned)`.

use super::expect_calls::SHORT_ABANDON_S;
use super::table::{float, soft, ts, Expected, Row};
use super::truth::{Day, EndKind, Ts};
use std::collections::BTreeMap;

pub const INTERVAL_S: i64 = 15 * 60;
pub const SLA_THRESHOLD_S: i64 = 20;

#[derive(Default)]
struct Acc {
    offered: i64,
    answered: i64,
    within: i64,
    abandoned: i64,
    short: i64,
    timeouts: i64,
    exits: i64,
    waits: Vec<i64>,
    talks: Vec<i64>,
    /// Holds a transferred stint (counted as answered: see the report).
    transferred: bool,
}

fn avg(v: &[i64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<i64>() as f64 / v.len() as f64)
}

pub fn expected(day: &Day) -> Expected {
    let mut acc: BTreeMap<(&'static str, Ts), Acc> = BTreeMap::new();
    for c in &day.calls {
        for s in &c.stints {
            let Some(e) = &s.end else { continue };
            let a = acc
                .entry((s.queue, s.entered - s.entered.rem_euclid(INTERVAL_S)))
                .or_default();
            a.offered += 1;
            match e.kind {
                k if k.answered() => {
                    a.answered += 1;
                    if e.wait <= SLA_THRESHOLD_S {
                        a.within += 1;
                    }
                    a.waits.push(e.wait);
                    a.talks.push(e.talk);
                    a.transferred |= k == EndKind::Transfer;
                }
                EndKind::Abandon => {
                    a.abandoned += 1;
                    if e.wait < SHORT_ABANDON_S {
                        a.short += 1;
                    }
                }
                EndKind::Timeout => a.timeouts += 1,
                _ => a.exits += 1,
            }
        }
    }
    let rows = acc
        .into_iter()
        .map(|((queue, start), a)| {
            let maybe = |v: String| if a.transferred { soft(v) } else { v };
            let denom = a.offered - a.short;
            let mut r = Row::new();
            r.insert("queue", queue.into());
            r.insert("interval_start", ts(Some(start)));
            r.insert("offered", a.offered.to_string());
            r.insert("answered", maybe(a.answered.to_string()));
            r.insert("answered_within", maybe(a.within.to_string()));
            r.insert("abandoned", a.abandoned.to_string());
            r.insert("short_abandoned", a.short.to_string());
            r.insert("timeouts", a.timeouts.to_string());
            r.insert("exits", a.exits.to_string());
            r.insert(
                "service_level",
                maybe(float((denom > 0).then(|| a.within as f64 / denom as f64))),
            );
            r.insert("asa_s", maybe(float(avg(&a.waits))));
            r.insert("aht_s", maybe(float(avg(&a.talks))));
            r
        })
        .collect();
    Expected {
        name: "sla_intervals",
        key: &["queue", "interval_start"],
        sql: "SELECT queue, epoch(interval_start)::BIGINT AS interval_start, offered::BIGINT AS offered, \
              answered::BIGINT AS answered, answered_within::BIGINT AS answered_within, \
              abandoned::BIGINT AS abandoned, short_abandoned::BIGINT AS short_abandoned, \
              timeouts::BIGINT AS timeouts, exits::BIGINT AS exits, service_level::DOUBLE AS service_level, \
              asa_s::DOUBLE AS asa_s, aht_s::DOUBLE AS aht_s FROM sla_intervals",
        rows,
        soft: false,
    }
}
