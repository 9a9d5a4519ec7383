//! Scheduled report emails (`[[reports.schedule]]`): at `at` local time,
//! yesterday's (daily) or last week's (weekly, on Mondays) summary per
//! queue and the list of missed callers nobody called back, as an email
//! action in the outbox under `report:<name>:<first day>` — inserted once
//! per schedule and period (a restart, a second pass, never a second one)
//! and sent by the actions worker through the configured email sink.

use super::params::{Format, Interval, Params};
use super::table::Report;
use super::{build, Ctx};
use crate::clock::Clock;
use crate::config::{Config, ReportSchedule};
use crate::rules::EmailPayload;
use crate::state::sla::IntervalCounts;
use crate::state::ServiceLevel;
use crate::store::{NewAction, Store, StoreError};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use duckdb::Connection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use tokio::sync::Notify;

/// How often the schedules are looked at.
const EVERY_S: u64 = 30;
/// The first look waits this long after the start, so that a backlog the
/// sources are still reading does not cut a report short.
const FIRST_AFTER_S: u64 = 30;
/// At most this many missed callers are listed in a mail.
const MAX_LISTED: usize = 500;

/// The schedules and what their reports need.
#[derive(Debug, Clone)]
pub struct Scheduler {
    schedules: Vec<(ReportSchedule, chrono_tz::Tz)>,
    zones: Vec<(String, chrono_tz::Tz)>,
    from: String,
    sla_threshold_s: i32,
    short_abandon_s: i32,
    formula: ServiceLevel,
    ru: bool,
    clock: Clock,
}

impl Scheduler {
    /// `None` when the config schedules nothing.
    pub fn new(cfg: &Config, clock: Clock) -> Option<Scheduler> {
        if cfg.reports.schedule.is_empty() {
            return None;
        }
        let mut zones: Vec<(String, chrono_tz::Tz)> = Vec::new();
        for s in &cfg.sources {
            if zones.iter().all(|(p, _)| *p != s.pbx) {
                zones.push((s.pbx.clone(), s.timezone.parse().unwrap_or(chrono_tz::UTC)));
            }
        }
        if zones.is_empty() {
            zones.push((String::new(), chrono_tz::UTC));
        }
        let first = zones[0].1;
        let st = cfg.state_config();
        Some(Scheduler {
            schedules: cfg
                .reports
                .schedule
                .iter()
                .map(|s| {
                    let tz = s
                        .timezone
                        .as_deref()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(first);
                    (s.clone(), tz)
                })
                .collect(),
            zones,
            from: cfg.email.from.clone(),
            sla_threshold_s: st.sla_threshold_s,
            short_abandon_s: st.short_abandon_s,
            formula: st.service_level,
            ru: cfg.wall.language == "ru",
            clock,
        })
    }
}

/// The first instant of local `d` `h:m` (after a DST gap, the first after it).
fn local(tz: chrono_tz::Tz, d: NaiveDate, (h, m): (u32, u32)) -> Option<DateTime<Utc>> {
    let t = d.and_hms_opt(h, m, 0)?;
    (0..3)
        .find_map(|x| tz.from_local_datetime(&(t + Duration::hours(x))).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// The latest send due by `now`: `(first day, last day)` of its period.
pub fn latest_due(
    s: &ReportSchedule,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<(NaiveDate, NaiveDate)> {
    let at = s.at_hm()?;
    let mut d = now.with_timezone(&tz).date_naive();
    let weekly = s.every == "weekly";
    for _ in 0..9 {
        let due_day = !weekly || d.weekday() == Weekday::Mon;
        if due_day && local(tz, d, at)? <= now {
            return Some(if weekly {
                (d - Duration::days(7), d - Duration::days(1))
            } else {
                (d - Duration::days(1), d - Duration::days(1))
            });
        }
        d -= Duration::days(1);
    }
    None
}

/// Text from the PBX or the directory, fit for one line of a mail.
fn clean(v: &Value) -> String {
    let s = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars().filter(|c| !c.is_control()).take(60).collect()
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |f| format!("{:.1} %", f * 100.0))
}

fn l(key: &str, ru: bool) -> String {
    super::labels::label(key, ru)
}

/// The mail's text from the period's reports, for `queues` (all when empty).
fn body(
    s: &ReportSchedule,
    tz: chrono_tz::Tz,
    (from, to): (NaiveDate, NaiveDate),
    [calls, sl, missed]: [&Report; 3],
    formula: ServiceLevel,
    ru: bool,
) -> String {
    let keep = |q: &Value| {
        s.queues.is_empty() || q.as_str().is_some_and(|q| s.queues.iter().any(|x| x == q))
    };
    let mut out = String::new();
    let period = if from == to {
        from.to_string()
    } else {
        format!("{from} - {to}")
    };
    let _ = writeln!(
        out,
        "calltrail: {} \"{}\", {period} ({})\n",
        l("reports", ru),
        s.name,
        tz.name()
    );
    // Service level per queue: the day intervals summed.
    let mut levels: BTreeMap<String, IntervalCounts> = BTreeMap::new();
    if let Some(t) = sl.tables.first() {
        for r in &t.rows {
            if !keep(t.get(r, "queue")) {
                continue;
            }
            let e = levels.entry(clean(t.get(r, "queue"))).or_default();
            let g = |k: &str| t.get(r, k).as_i64().unwrap_or(0);
            e.offered += g("offered");
            e.answered += g("answered");
            e.answered_within += g("answered_within");
            e.abandoned += g("abandoned");
            e.short_abandoned += g("short_abandoned");
            e.abandoned_within += g("abandoned_within");
        }
    }
    let _ = writeln!(out, "{}", l("calls_by_queue", ru));
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8}",
        l("queue", ru),
        l("offered", ru),
        l("answered", ru),
        l("unanswered", ru),
        "%",
        "ASA s",
        "SL"
    );
    let (mut off, mut ans, mut un) = (0, 0, 0);
    let mut all = IntervalCounts::default();
    if let Some(t) = calls.tables.first() {
        for r in &t.rows {
            if !keep(t.get(r, "queue")) {
                continue;
            }
            let q = clean(t.get(r, "queue"));
            let g = |k: &str| t.get(r, k).as_i64().unwrap_or(0);
            off += g("offered");
            ans += g("answered");
            un += g("unanswered");
            let c = levels.get(&q).copied().unwrap_or_default();
            all.offered += c.offered;
            all.answered += c.answered;
            all.answered_within += c.answered_within;
            all.abandoned += c.abandoned;
            all.short_abandoned += c.short_abandoned;
            all.abandoned_within += c.abandoned_within;
            let _ = writeln!(
                out,
                "{:<20} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8}",
                q,
                g("offered"),
                g("answered"),
                g("unanswered"),
                pct(t.get(r, "answer_rate").as_f64()),
                t.get(r, "asa_s")
                    .as_f64()
                    .map_or("-".into(), |f| format!("{f:.1}")),
                pct(c.service_level(formula)),
            );
        }
    }
    let rate = (off > 0).then(|| ans as f64 / off as f64);
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8}\n",
        l("all", ru),
        off,
        ans,
        un,
        pct(rate),
        "",
        pct(all.service_level(formula)),
    );
    let _ = writeln!(out, "{}: {}\n", l("formula", ru), formula.name());
    // Missed calls.
    let Some(t) = missed.tables.first() else {
        return out;
    };
    let rows: Vec<&Vec<Value>> = t.rows.iter().filter(|r| keep(t.get(r, "queue"))).collect();
    let count = |st: &str| {
        rows.iter()
            .filter(|r| t.get(r, "status") == &Value::from(st))
            .count()
    };
    let episodes = rows.len();
    let not_cb = episodes - count("called_back");
    let _ = writeln!(
        out,
        "{}: {} {episodes}; {} {}, {} {}, {} {}, {} {}",
        l("missed", ru),
        l("episodes", ru),
        l("called_back", ru),
        count("called_back"),
        l("returned", ru),
        count("returned"),
        l("open", ru),
        count("open"),
        l("expired", ru),
        count("expired"),
    );
    let share = if episodes > 0 {
        format!("{:.1} %", not_cb as f64 * 100.0 / episodes as f64)
    } else {
        "-".into()
    };
    let _ = writeln!(out, "{}: {not_cb} ({share})\n", l("not_called_back", ru));
    let _ = writeln!(out, "{}:", l("not_called_back", ru));
    for r in rows
        .iter()
        .filter(|r| t.get(r, "status") != &Value::from("called_back"))
        .take(MAX_LISTED)
    {
        let when = t
            .get(r, "opened_at")
            .as_str()
            .and_then(|s| s.get(..16))
            .unwrap_or("")
            .replace('T', " ");
        let _ = writeln!(
            out,
            "  {when}  {:<16} {:<20} {:<12} {:>3}  {}",
            clean(t.get(r, "caller")),
            clean(t.get(r, "caller_name")),
            clean(t.get(r, "queue")),
            t.get(r, "missed_count"),
            super::labels::status(t.get(r, "status").as_str().unwrap_or(""), ru),
        );
    }
    if not_cb > MAX_LISTED {
        let _ = writeln!(out, "  ... {} more", not_cb - MAX_LISTED);
    }
    out
}

/// The action of schedule `s` for the period due at `now`, unless there
/// is one already.
fn due_action(
    conn: &Connection,
    sch: &Scheduler,
    s: &ReportSchedule,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<Option<NewAction>, StoreError> {
    let Some((from, to)) = latest_due(s, tz, now) else {
        return Ok(None);
    };
    let id = format!("report:{}:{from}", s.name);
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM actions WHERE action_id = ?",
            [&id],
            |r| r.get(0),
        )
        .map_err(|source| StoreError::Db {
            what: "looking for a scheduled report",
            source,
        })?;
    if exists {
        return Ok(None);
    }
    let ctx = |interval| Ctx {
        p: Params {
            from,
            to,
            queue: None,
            agent: None,
            format: Format::Json,
            formula: None,
            interval,
            token: None,
        },
        zones: sch.zones.clone(),
        tz: sch.zones[0].1,
        now,
        sla_threshold_s: sch.sla_threshold_s,
        short_abandon_s: sch.short_abandon_s,
        configured: sch.formula,
    };
    let calls = build(conn, "calls_by_queue", &ctx(Interval::Hour))?;
    let sl = build(conn, "service_level", &ctx(Interval::Day))?;
    let missed = build(conn, "missed", &ctx(Interval::Hour))?;
    let text = body(
        s,
        tz,
        (from, to),
        [&calls, &sl, &missed],
        sch.formula,
        sch.ru,
    );
    let subject = format!(
        "calltrail {} report {}: {}",
        s.every,
        s.name,
        if from == to {
            from.to_string()
        } else {
            format!("{from} - {to}")
        }
    );
    let payload = EmailPayload {
        from: sch.from.clone(),
        to: s.to.clone(),
        subject,
        body: text,
    };
    Ok(Some(NewAction {
        action_id: id.clone(),
        kind: crate::rules::EMAIL.to_string(),
        event_id: id,
        payload: serde_json::to_string(&payload).unwrap_or_default(),
        due_at: None,
        skipped: None,
        priority: 0,
    }))
}

/// One look at every schedule; returns how many actions were added.
pub fn pass(store: &Store, sch: &Scheduler) -> Result<usize, StoreError> {
    let now = sch.clock.now();
    store.with_conn(|conn| {
        // The state must have caught up with what is stored.
        let caught_up: bool = conn
            .query_row(
                "SELECT coalesce((SELECT seq FROM sink_checkpoints WHERE sink = 'state'), -1)
                        >= (SELECT coalesce(max(seq), 0) FROM events)",
                [],
                |r| r.get(0),
            )
            .map_err(|source| StoreError::Db {
                what: "checking the state is derived",
                source,
            })?;
        if !caught_up {
            return Ok(0);
        }
        let mut n = 0;
        for (s, tz) in &sch.schedules {
            if let Some(a) = due_action(conn, sch, s, *tz, now)? {
                n += crate::store::actions::insert(conn, &[a], Utc::now())?;
                tracing::info!(schedule = %s.name, "scheduled report queued for sending");
            }
        }
        Ok(n)
    })
}

/// Looks at the schedules every 30 s (the first time 30 s after the
/// start) and wakes the actions worker when a report was queued.
pub async fn run(store: Store, sch: Scheduler, wake: Arc<Notify>) {
    let (store, sch) = (Arc::new(store), Arc::new(sch));
    tokio::time::sleep(std::time::Duration::from_secs(FIRST_AFTER_S)).await;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(EVERY_S));
    loop {
        tick.tick().await;
        let (s, c) = (store.clone(), sch.clone());
        match tokio::task::spawn_blocking(move || pass(&s, &c)).await {
            Ok(Ok(n)) if n > 0 => wake.notify_one(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot prepare a scheduled report"),
            Err(e) => tracing::warn!(error = %e, "the report schedule panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(every: &str, at: &str) -> ReportSchedule {
        ReportSchedule {
            name: "s".into(),
            every: every.into(),
            at: at.into(),
            to: vec!["a@b.c".into()],
            queues: Vec::new(),
            timezone: None,
        }
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_period_due_is_the_day_or_week_before_the_last_send_time() {
        let msk: chrono_tz::Tz = "Europe/Moscow".parse().unwrap();
        let daily = sched("daily", "07:00");
        // 06:59 Moscow on the 21st: the 20th is not due yet, the 19th is.
        assert_eq!(
            latest_due(&daily, msk, t("2026-11-21T03:59:00Z")),
            Some((d("2026-11-19"), d("2026-11-19")))
        );
        assert_eq!(
            latest_due(&daily, msk, t("2026-11-21T04:00:00Z")),
            Some((d("2026-11-20"), d("2026-11-20")))
        );
        // Weekly: Monday 2026-11-23 07:00 sends 16th–22nd; until then the week before.
        let weekly = sched("weekly", "07:00");
        assert_eq!(
            latest_due(&weekly, msk, t("2026-11-23T04:00:00Z")),
            Some((d("2026-11-16"), d("2026-11-22")))
        );
        assert_eq!(
            latest_due(&weekly, msk, t("2026-11-23T03:00:00Z")),
            Some((d("2026-11-09"), d("2026-11-15")))
        );
        // 02:30 does not exist in Berlin on 2026-03-29: sent at 03:30 CEST.
        let ber: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let night = sched("daily", "02:30");
        assert_eq!(
            latest_due(&night, ber, t("2026-03-29T00:59:00Z")),
            Some((d("2026-03-27"), d("2026-03-27")))
        );
        assert_eq!(
            latest_due(&night, ber, t("2026-03-29T01:30:00Z")),
            Some((d("2026-03-28"), d("2026-03-28")))
        );
    }
}
