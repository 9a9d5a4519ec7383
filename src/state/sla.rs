//! Service level per queue and interval (SQL over `calls`), and breach
//! episodes with hysteresis (a sweep over the intervals and the calls of a
//! queue). Formulas: `docs/metrics.md`.

use super::{ServiceLevel, StateConfig};

/// The SQL expression of the configured service level over the columns of
/// `sla_intervals` (or sums of them).
pub fn service_level_sql(f: ServiceLevel) -> &'static str {
    match f {
        ServiceLevel::Default => "answered_within::DOUBLE / nullif(offered - short_abandoned, 0)",
        ServiceLevel::AbandonsIgnored => "answered_within::DOUBLE / nullif(offered - abandoned, 0)",
        ServiceLevel::AbandonsNegative => "answered_within::DOUBLE / nullif(offered, 0)",
        ServiceLevel::AbandonsPositive => {
            "(answered_within + abandoned_within)::DOUBLE / nullif(offered, 0)"
        }
        ServiceLevel::AsteriskSl => "answered_within::DOUBLE / nullif(answered, 0)",
        ServiceLevel::AsteriskSl2 => {
            "(answered_within + abandoned_within)::DOUBLE / nullif(answered + abandoned, 0)"
        }
    }
}

/// Recomputes the intervals listed in the temp table `_aff_int(queue,
/// interval_start)`.
pub fn intervals_sql(cfg: &StateConfig) -> String {
    let t = cfg.sla_threshold_s;
    let s = cfg.short_abandon_s;
    let m = cfg.interval_minutes;
    format!(
        "INSERT INTO sla_intervals
         SELECT queue, interval_start, offered, answered, answered_within, abandoned,
                short_abandoned, abandoned_within, timeouts, exits,
                {sl} AS service_level, asa_s, aht_s
         FROM (
           SELECT c.queue, time_bucket(INTERVAL '{m} minutes', c.entered_at) AS interval_start,
             count(*)::INTEGER AS offered,
             count(*) FILTER (WHERE c.answered_at IS NOT NULL)::INTEGER AS answered,
             count(*) FILTER (WHERE c.answered_at IS NOT NULL AND coalesce(c.wait_s, 0) <= {t})::INTEGER AS answered_within,
             count(*) FILTER (WHERE c.outcome = 'abandoned')::INTEGER AS abandoned,
             count(*) FILTER (WHERE c.outcome = 'abandoned' AND coalesce(c.wait_s, 0) < {s})::INTEGER AS short_abandoned,
             count(*) FILTER (WHERE c.outcome = 'abandoned' AND coalesce(c.wait_s, 0) <= {t})::INTEGER AS abandoned_within,
             count(*) FILTER (WHERE c.outcome = 'timeout')::INTEGER AS timeouts,
             count(*) FILTER (WHERE c.outcome IN ('exit_empty', 'exit_key'))::INTEGER AS exits,
             avg(c.wait_s) FILTER (WHERE c.answered_at IS NOT NULL) AS asa_s,
             avg(c.talk_s) FILTER (WHERE c.answered_at IS NOT NULL AND c.talk_s IS NOT NULL) AS aht_s
           FROM calls c
           JOIN _aff_int a ON a.queue = c.queue
             AND a.interval_start = time_bucket(INTERVAL '{m} minutes', c.entered_at)
           WHERE c.outcome <> 'open' AND c.entered_at >= $1 AND c.entered_at < $2
           GROUP BY ALL
         )",
        sl = service_level_sql(cfg.service_level),
    )
}

/// One interval's counts, for the rolling window.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntervalCounts {
    pub start: i64,
    pub offered: i64,
    pub answered: i64,
    pub answered_within: i64,
    pub abandoned: i64,
    pub short_abandoned: i64,
    pub abandoned_within: i64,
}

impl IntervalCounts {
    fn add(&mut self, o: &IntervalCounts) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_within += o.answered_within;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.abandoned_within += o.abandoned_within;
    }

    fn sub(&mut self, o: &IntervalCounts) {
        self.offered -= o.offered;
        self.answered -= o.answered;
        self.answered_within -= o.answered_within;
        self.abandoned -= o.abandoned;
        self.short_abandoned -= o.short_abandoned;
        self.abandoned_within -= o.abandoned_within;
    }

    /// The service level of these counts under formula `f`.
    pub fn service_level(&self, f: ServiceLevel) -> Option<f64> {
        let (num, den) = match f {
            ServiceLevel::Default => (self.answered_within, self.offered - self.short_abandoned),
            ServiceLevel::AbandonsIgnored => (self.answered_within, self.offered - self.abandoned),
            ServiceLevel::AbandonsNegative => (self.answered_within, self.offered),
            ServiceLevel::AbandonsPositive => {
                (self.answered_within + self.abandoned_within, self.offered)
            }
            ServiceLevel::AsteriskSl => (self.answered_within, self.answered),
            ServiceLevel::AsteriskSl2 => (
                self.answered_within + self.abandoned_within,
                self.answered + self.abandoned,
            ),
        };
        (den > 0).then(|| num as f64 / den as f64)
    }
}

/// A breach episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub kind: &'static str,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub value: f64,
    pub threshold: f64,
}

const US: i64 = 1_000_000;

/// Service-level breaches over sorted intervals (sparse: missing intervals
/// had no calls). Evaluated at every interval boundary from the first to
/// `until` (µs), the window being the `window` µs before the boundary.
pub fn service_level_breaches(
    intervals: &[IntervalCounts],
    cfg: &StateConfig,
    until: i64,
) -> Vec<Breach> {
    let b = &cfg.breach;
    let step = cfg.interval_minutes as i64 * 60 * US;
    let window = b.window_minutes as i64 * 60 * US;
    let Some(first) = intervals.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cur: Option<Breach> = None;
    let mut sum = IntervalCounts::default();
    let (mut head, mut tail) = (0usize, 0usize);
    let last_start = intervals.last().map_or(first.start, |i| i.start);
    let mut boundary = first.start + step;
    // Evaluate until the last interval has left the window (or `until`).
    let end = (last_start + step + window).min(until.max(first.start + step));
    while boundary <= end {
        while head < intervals.len() && intervals[head].start < boundary {
            sum.add(&intervals[head]);
            head += 1;
        }
        while tail < head && intervals[tail].start < boundary - window {
            sum.sub(&intervals[tail]);
            tail += 1;
        }
        // Windows with fewer than `min_calls` offered are not judged: they
        // neither start, worsen nor end a breach; an empty window ends one.
        let judged = sum.offered >= b.min_calls as i64;
        let sl = sum.service_level(cfg.service_level).filter(|_| judged);
        match (&mut cur, sl) {
            (None, Some(v)) if v < b.service_level_min => {
                cur = Some(Breach {
                    kind: "service_level",
                    started_at: boundary,
                    ended_at: None,
                    value: v,
                    threshold: b.service_level_min,
                });
            }
            (Some(br), Some(v)) => {
                br.value = br.value.min(v);
                if v >= b.service_level_min + b.service_level_hysteresis {
                    br.ended_at = Some(boundary);
                }
            }
            (Some(br), None) if sum.offered == 0 => br.ended_at = Some(boundary),
            _ => {}
        }
        if cur.as_ref().is_some_and(|c| c.ended_at.is_some()) {
            out.extend(cur.take());
        }
        boundary += step;
    }
    out.extend(cur);
    out
}

/// One caller's time in queue: `[entered, wait_end)`, `wait_end` = answer
/// or end, `None` while still waiting.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub entered: i64,
    pub end: Option<i64>,
}

/// `max_wait` breaches: periods during which some caller has waited longer
/// than the limit, merged when closer than `gap_s`.
pub fn max_wait_breaches(waits: &[Wait], cfg: &StateConfig, now: i64) -> Vec<Breach> {
    let b = &cfg.breach;
    let limit = b.max_wait_s as i64 * US;
    let gap = b.gap_s as i64 * US;
    let mut spans: Vec<(i64, Option<i64>, i64)> = waits
        .iter()
        .filter_map(|w| {
            let end = w.end.unwrap_or(now);
            (end - w.entered > limit).then(|| (w.entered + limit, w.end, end - w.entered))
        })
        .collect();
    spans.sort_by_key(|s| s.0);
    let mut out: Vec<Breach> = Vec::new();
    for (start, end, wait) in spans {
        if let Some(last) = out.last_mut() {
            let open_or_close = match last.ended_at {
                None => true,
                Some(e) => start <= e + gap,
            };
            if open_or_close {
                last.ended_at = match (last.ended_at, end) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(a.max(b)),
                };
                last.value = last.value.max(wait as f64 / US as f64);
                continue;
            }
        }
        out.push(Breach {
            kind: "max_wait",
            started_at: start,
            ended_at: end,
            value: wait as f64 / US as f64,
            threshold: b.max_wait_s as f64,
        });
    }
    out
}

/// `waiting_calls` breaches: more than `max_waiting` callers at once; ends
/// at `max_waiting - waiting_hysteresis` or fewer.
pub fn waiting_breaches(waits: &[Wait], cfg: &StateConfig) -> Vec<Breach> {
    let b = &cfg.breach;
    let mut pts: Vec<(i64, i32)> = Vec::with_capacity(waits.len() * 2);
    for w in waits {
        pts.push((w.entered, 1));
        if let Some(e) = w.end {
            pts.push((e, -1));
        }
    }
    // Leaving before entering at the same instant.
    pts.sort();
    let mut n = 0i64;
    let mut out = Vec::new();
    let mut cur: Option<Breach> = None;
    let low = b.max_waiting as i64 - b.waiting_hysteresis as i64;
    for (t, d) in pts {
        n += d as i64;
        match &mut cur {
            None if n > b.max_waiting as i64 => {
                cur = Some(Breach {
                    kind: "waiting_calls",
                    started_at: t,
                    ended_at: None,
                    value: n as f64,
                    threshold: b.max_waiting as f64,
                })
            }
            Some(br) => {
                br.value = br.value.max(n as f64);
                if n <= low {
                    br.ended_at = Some(t);
                    out.extend(cur.take());
                }
            }
            None => {}
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(min: i64, offered: i64, within: i64) -> IntervalCounts {
        IntervalCounts {
            start: min * 60 * US,
            offered,
            answered: within,
            answered_within: within,
            ..IntervalCounts::default()
        }
    }

    #[test]
    fn one_bad_hour_is_one_breach() {
        let cfg = StateConfig::default();
        // Good, then four bad quarters, then good again.
        let mut ivs = vec![iv(0, 10, 10), iv(15, 10, 10)];
        for q in 2..6 {
            ivs.push(iv(q * 15, 10, 5));
        }
        for q in 6..14 {
            ivs.push(iv(q * 15, 10, 10));
        }
        let br = service_level_breaches(&ivs, &cfg, i64::MAX);
        assert_eq!(br.len(), 1, "{br:?}");
        // At 60 min the hour holds 30 of 40 within: 0.75 < 0.8.
        assert_eq!(br[0].started_at, 60 * 60 * US);
        // At 135 min: 35 of 40 = 0.875 >= 0.85 ends it.
        assert_eq!(br[0].ended_at, Some(135 * 60 * US));
        assert!(br[0].ended_at.is_some());
        assert!(br[0].value <= 0.5 + 1e-9);
    }

    #[test]
    fn waits() {
        let cfg = StateConfig::default();
        let w = |a: i64, b: Option<i64>| Wait {
            entered: a * US,
            end: b.map(|b| b * US),
        };
        let br = max_wait_breaches(
            &[w(0, Some(200)), w(100, Some(260)), w(1000, Some(1050))],
            &cfg,
            2000 * US,
        );
        assert_eq!(br.len(), 1);
        assert_eq!(
            (br[0].started_at, br[0].ended_at),
            (120 * US, Some(260 * US))
        );
        assert_eq!(br[0].value, 200.0);
        let many: Vec<Wait> = (0..12).map(|i| w(i, Some(100 + i))).collect();
        let br = waiting_breaches(&many, &cfg);
        assert_eq!(br.len(), 1);
        assert_eq!((br[0].started_at, br[0].value), (10 * US, 12.0));
        assert_eq!(br[0].ended_at, Some(103 * US)); // 8 left waiting
    }
}
