//! `service_level`: per local hour (or day) and queue, the counts of
//! `sla_intervals` over the stints that entered then and have ended, and
//! the service level under `&formula=` (any of the config's formulas;
//! default the configured one; docs/metrics.md). The agent filter does not
//! apply.

use super::params::Interval;
use super::table::{col, read, Col, Kind, Report};
use super::{Ctx, BOUNDS};
use crate::state::sla::IntervalCounts;
use crate::store::StoreError;
use duckdb::Connection;
use serde_json::{json, Value};

const COLS: [Col; 9] = [
    col("interval_start", Kind::Time),
    col("queue", Kind::Pbx),
    col("offered", Kind::Int),
    col("answered", Kind::Int),
    col("answered_within", Kind::Int),
    col("abandoned", Kind::Int),
    col("short_abandoned", Kind::Int),
    col("abandoned_within", Kind::Int),
    col("service_level", Kind::Ratio),
];

fn counts_of(r: &[Value]) -> IntervalCounts {
    let g = |i: usize| r.get(i).and_then(Value::as_i64).unwrap_or(0);
    IntervalCounts {
        start: 0,
        offered: g(2),
        answered: g(3),
        answered_within: g(4),
        abandoned: g(5),
        short_abandoned: g(6),
        abandoned_within: g(7),
    }
}

pub fn build(conn: &Connection, ctx: &Ctx) -> Result<Report, StoreError> {
    let formula = ctx.p.formula.unwrap_or(ctx.configured);
    let (t, s) = (ctx.sla_threshold_s, ctx.short_abandon_s);
    // The interval's label: the start of its first hour with calls.
    let key = match ctx.p.interval {
        Interval::Hour => "h.day, h.hour",
        Interval::Day => "h.day",
    };
    let sql = format!(
        "WITH {BOUNDS}
         SELECT epoch_us(min(h.h_start)), c.queue,
           count(*)::BIGINT,
           count(*) FILTER (WHERE c.answered_at IS NOT NULL)::BIGINT,
           count(*) FILTER (WHERE c.answered_at IS NOT NULL AND coalesce(c.wait_s, 0) <= {t})::BIGINT,
           count(*) FILTER (WHERE c.outcome = 'abandoned')::BIGINT,
           count(*) FILTER (WHERE c.outcome = 'abandoned' AND coalesce(c.wait_s, 0) < {s})::BIGINT,
           count(*) FILTER (WHERE c.outcome = 'abandoned' AND coalesce(c.wait_s, 0) <= {t})::BIGINT,
           NULL::DOUBLE
         FROM calls c JOIN b ON b.pbx = c.pbx AND c.entered_at >= b.r0 AND c.entered_at < b.r1
         ASOF JOIN _rep_hours h ON h.pbx = c.pbx AND c.entered_at >= h.h_start
         WHERE c.queue IS NOT NULL AND c.outcome <> 'open'
           AND (?1::VARCHAR IS NULL OR c.queue = ?1::VARCHAR)
         GROUP BY {key}, c.queue
         ORDER BY {key}, c.queue"
    );
    let mut table = read(conn, &sql, &[&ctx.p.queue], &COLS, ctx.tz, "rows")?;
    // A day's label is its first hour's start: that is its midnight (or
    // the first hour after a DST gap) only when the day had calls from its
    // first hour, so take the day's own first hour.
    if ctx.p.interval == Interval::Day {
        let firsts: std::collections::BTreeMap<String, String> =
            super::params::hours(&ctx.zones[0].0, ctx.tz, ctx.p.from, ctx.p.to)
                .into_iter()
                .rev()
                .map(|h| (h.day.to_string(), h.local))
                .collect();
        for r in &mut table.rows {
            let day = r[0]
                .as_str()
                .and_then(|s| s.get(..10))
                .unwrap_or("")
                .to_string();
            if let Some(first) = firsts.get(&day) {
                r[0] = Value::String(first.clone());
            }
        }
    }
    let mut total = IntervalCounts::default();
    for r in &mut table.rows {
        let c = counts_of(r);
        r[8] = c.service_level(formula).map_or(Value::Null, Value::from);
        total.offered += c.offered;
        total.answered += c.answered;
        total.answered_within += c.answered_within;
        total.abandoned += c.abandoned;
        total.short_abandoned += c.short_abandoned;
        total.abandoned_within += c.abandoned_within;
    }
    let summary = vec![
        ("offered", Kind::Int, total.offered.into()),
        ("answered", Kind::Int, total.answered.into()),
        ("answered_within", Kind::Int, total.answered_within.into()),
        ("abandoned", Kind::Int, total.abandoned.into()),
        ("short_abandoned", Kind::Int, total.short_abandoned.into()),
        ("abandoned_within", Kind::Int, total.abandoned_within.into()),
        (
            "service_level",
            Kind::Ratio,
            total
                .service_level(formula)
                .map_or(Value::Null, Value::from),
        ),
        ("sla_threshold_s", Kind::Int, i64::from(t).into()),
    ];
    Ok(Report {
        name: "service_level",
        summary,
        tables: vec![table],
        extra: vec![
            ("formula", json!(formula.name())),
            ("interval", json!(ctx.p.interval.name())),
        ],
    })
}
