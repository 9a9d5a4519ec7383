//! The wallboard's figures, read from the derived state (`calls`,
//! `agent_status`, `missed_calls`, `actions`) on the HTTP side's read-only
//! connection. "Today" is the calendar day in the time zone of the PBX the
//! calls came from; formulas are in docs/metrics.md ("Wallboard").

use super::WallConfig;
use crate::lookup::decision::agent_state;
use crate::state::sla::IntervalCounts;
use crate::state::AgentPresence;
use crate::store::ts;
use chrono::{DateTime, Duration, TimeZone, Utc};
use duckdb::{params, Connection};
use serde::Serialize;
use std::collections::BTreeMap;

/// A stint open and unanswered for longer than this is a lost line, not a
/// caller still waiting.
const WAITING_AT_MOST_H: i64 = 12;

/// `GET /api/wall`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Wall {
    pub generated_at: DateTime<Utc>,
    pub stale: bool,
    pub stale_sources: Vec<String>,
    /// The service-level formula's name (`[state] service_level`).
    pub service_level_formula: String,
    pub queues: Vec<QueueTile>,
    pub agents: Vec<AgentRow>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueTile {
    pub queue: String,
    pub waiting: i64,
    pub longest_wait_s: i64,
    pub agents_logged_in: i64,
    pub agents_available: i64,
    pub agents_on_call: i64,
    pub agents_paused: i64,
    /// Paused agents per reason (`""`: none given).
    pub pause_reasons: BTreeMap<String, i64>,
    pub offered_today: i64,
    pub answered_today: i64,
    pub abandoned_today: i64,
    pub service_level_today: Option<f64>,
    pub service_level_hour: Option<f64>,
    pub asa_s: Option<f64>,
    pub missed_open: i64,
    pub callbacks_pending: i64,
    /// When the longest-waiting caller entered (the live feed brings
    /// `longest_wait_s` up to date from it between full reads).
    #[serde(skip)]
    pub oldest_waiting: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    pub agent: String,
    pub name: String,
    /// `available`, `on_call`, `paused`, `logged_out`, `unknown`.
    pub state: &'static str,
    pub pause_reason: Option<String>,
    /// Since when it is in that state (UTC; NULL when not known).
    pub since: Option<DateTime<Utc>>,
    pub queues: Vec<String>,
    pub calls_today: i64,
    pub talk_s_today: i64,
}

fn db(what: &'static str) -> impl Fn(duckdb::Error) -> crate::store::StoreError {
    move |source| crate::store::StoreError::Db { what, source }
}

fn at(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.and_then(DateTime::from_timestamp_micros)
}

/// The start of `now`'s calendar day in `tz`, in UTC.
fn day_start(tz: chrono_tz::Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&tz).date_naive();
    let midnight = local.and_hms_opt(0, 0, 0).unwrap_or_default();
    // A day that starts in a DST gap starts at the first instant after it.
    tz.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// Reads the figures at `now` for `only` (every queue when empty).
pub fn read(
    conn: &Connection,
    cfg: &WallConfig,
    now: DateTime<Utc>,
    only: &[String],
) -> Result<Wall, crate::store::StoreError> {
    let mut tiles: BTreeMap<String, QueueTile> = BTreeMap::new();
    let mut today: BTreeMap<String, (IntervalCounts, IntervalCounts, f64, i64)> = BTreeMap::new();
    let mut agents_today: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let (t, s) = (cfg.sla_threshold_s, cfg.short_abandon_s);
    let mut q = conn
        .prepare_cached(&format!(
            "SELECT queue,
               count(*) FILTER (WHERE entered_at >= ?1),
               count(*) FILTER (WHERE entered_at >= ?1 AND answered_at IS NOT NULL),
               count(*) FILTER (WHERE entered_at >= ?1 AND outcome = 'abandoned'),
               sum(wait_s) FILTER (WHERE entered_at >= ?1 AND answered_at IS NOT NULL),
               count(*) FILTER (WHERE outcome = 'open' AND answered_at IS NULL AND entered_at >= ?3),
               epoch_us(min(entered_at) FILTER (WHERE outcome = 'open' AND answered_at IS NULL AND entered_at >= ?3)),
               {d}, {h}
             FROM calls
             WHERE pbx = ?4 AND queue IS NOT NULL
               AND (entered_at >= least(?1, ?2) OR (outcome = 'open' AND entered_at >= ?3))
             GROUP BY queue",
            d = counts_sql("?1", t, s),
            h = counts_sql("?2", t, s),
        ))
        .map_err(db("preparing the wallboard's queue figures"))?;
    let mut a = conn
        .prepare_cached(
            "SELECT agent, count(*), coalesce(sum(talk_s), 0) FROM calls
             WHERE pbx = ?2 AND agent IS NOT NULL AND answered_at >= ?1
             GROUP BY agent",
        )
        .map_err(db("preparing the wallboard's agent figures"))?;
    for (pbx, tz) in cfg.pbx_zones() {
        let d = day_start(tz, now);
        let h = now - Duration::hours(1);
        let w = now - Duration::hours(WAITING_AT_MOST_H);
        let mut rows = q
            .query(params![ts(d), ts(h), ts(w), pbx])
            .map_err(db("reading the wallboard's queue figures"))?;
        while let Some(r) = rows.next().map_err(db("a queue's figures"))? {
            let queue: String = r.get(0).map_err(db("a queue"))?;
            let g = |i: usize| -> Result<i64, crate::store::StoreError> {
                Ok(r.get::<_, Option<i64>>(i)
                    .map_err(db("a queue's figure"))?
                    .unwrap_or(0))
            };
            let tile = tiles.entry(queue.clone()).or_default();
            tile.offered_today += g(1)?;
            tile.answered_today += g(2)?;
            tile.abandoned_today += g(3)?;
            let waiting = g(5)?;
            tile.waiting += waiting;
            if let Some(oldest) = at(r.get(6).map_err(db("a queue's oldest caller"))?) {
                tile.oldest_waiting = Some(tile.oldest_waiting.map_or(oldest, |o| o.min(oldest)));
            }
            let e = today.entry(queue).or_default();
            e.0.add_counts(&[g(7)?, g(8)?, g(9)?, g(10)?, g(11)?, g(12)?]);
            e.1.add_counts(&[g(13)?, g(14)?, g(15)?, g(16)?, g(17)?, g(18)?]);
            e.2 += g(4)? as f64;
            e.3 += g(2)?;
        }
        let mut rows = a
            .query(params![ts(d), pbx])
            .map_err(db("reading the wallboard's agent figures"))?;
        while let Some(r) = rows.next().map_err(db("an agent's figures"))? {
            let agent: String = r.get(0).map_err(db("an agent"))?;
            let e = agents_today.entry(agent).or_default();
            e.0 += r.get::<_, i64>(1).map_err(db("an agent's calls"))?;
            e.1 += r.get::<_, i64>(2).map_err(db("an agent's talk time"))?;
        }
    }
    for (queue, (day, hour, wait_sum, answered)) in &today {
        if let Some(tile) = tiles.get_mut(queue) {
            tile.service_level_today = day.service_level(cfg.service_level);
            tile.service_level_hour = hour.service_level(cfg.service_level);
            tile.asa_s = (*answered > 0).then(|| wait_sum / *answered as f64);
        }
    }
    let agents = read_agents(conn, &agents_today)?;
    for ag in &agents {
        for queue in &ag.queues {
            let tile = tiles.entry(queue.clone()).or_default();
            if ag.state != "logged_out" {
                tile.agents_logged_in += 1;
            }
            match ag.state {
                "available" => tile.agents_available += 1,
                "on_call" => tile.agents_on_call += 1,
                "paused" => {
                    tile.agents_paused += 1;
                    *tile
                        .pause_reasons
                        .entry(ag.pause_reason.clone().unwrap_or_default())
                        .or_default() += 1;
                }
                _ => {}
            }
        }
    }
    let mut m = conn
        .prepare_cached(
            "SELECT queue, count(*) FROM missed_calls
             WHERE status = 'open' AND queue IS NOT NULL GROUP BY queue",
        )
        .map_err(db("preparing the open episodes count"))?;
    let mut rows = m.query([]).map_err(db("counting open episodes"))?;
    while let Some(r) = rows.next().map_err(db("an open episodes count"))? {
        let queue: String = r.get(0).map_err(db("a queue"))?;
        tiles.entry(queue).or_default().missed_open += r.get::<_, i64>(1).map_err(db("a count"))?;
    }
    let mut c = conn
        .prepare_cached(
            "SELECT payload FROM actions
             WHERE kind = 'callback' AND status IN ('pending', 'sending')",
        )
        .map_err(db("preparing the pending callbacks scan"))?;
    let mut rows = c.query([]).map_err(db("reading pending callbacks"))?;
    while let Some(r) = rows.next().map_err(db("a pending callback"))? {
        let payload: String = r.get(0).map_err(db("a callback's payload"))?;
        let queue = serde_json::from_str::<serde_json::Value>(&payload)
            .ok()
            .and_then(|v| v["queue"].as_str().map(str::to_string));
        if let Some(queue) = queue {
            tiles.entry(queue).or_default().callbacks_pending += 1;
        }
    }
    let queues: Vec<QueueTile> = tiles
        .into_iter()
        .map(|(q, mut tile)| {
            tile.queue = q;
            tile
        })
        .collect();
    Ok(Wall {
        generated_at: now,
        stale: false,
        stale_sources: Vec::new(),
        service_level_formula: cfg.formula_name.clone(),
        queues,
        agents,
    }
    .at(cfg, now)
    .only(only))
}

/// The start of "today" of every PBX at `now` (a board read on another day
/// must be read again, not brought up to date).
pub fn days(cfg: &WallConfig, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    cfg.pbx_zones().map(|(_, tz)| day_start(tz, now)).collect()
}

impl Wall {
    /// The board brought to `now` without reading the store: the figures
    /// that move with the clock alone (the longest wait, which sources are
    /// stale). The counts stay as read; the live feed reads them again when
    /// the state changes, the day turns, and every few seconds (the last
    /// hour's service level slides).
    pub fn at(mut self, cfg: &WallConfig, now: DateTime<Utc>) -> Wall {
        for tile in &mut self.queues {
            tile.longest_wait_s = tile
                .oldest_waiting
                .map_or(0, |o| (now - o).num_seconds().max(0));
        }
        self.stale_sources = cfg.sources.stale(now.into());
        self.stale = !self.stale_sources.is_empty();
        self.generated_at = now;
        self
    }

    /// The board of the queues `only` (all when empty) and their agents.
    pub fn only(mut self, only: &[String]) -> Wall {
        if !only.is_empty() {
            self.queues.retain(|t| only.contains(&t.queue));
            self.agents
                .retain(|a| a.queues.iter().any(|q| only.contains(q)));
        }
        self
    }
}

/// The six counts of the service level over stints entered since `since`
/// and ended: offered, answered, answered within `t`, abandoned, short
/// abandoned (`< s`), abandoned within `t` (docs/metrics.md).
fn counts_sql(since: &str, t: i32, s: i32) -> String {
    let w = format!("entered_at >= {since} AND outcome <> 'open'");
    format!(
        "count(*) FILTER (WHERE {w}),
         count(*) FILTER (WHERE {w} AND answered_at IS NOT NULL),
         count(*) FILTER (WHERE {w} AND answered_at IS NOT NULL AND coalesce(wait_s, 0) <= {t}),
         count(*) FILTER (WHERE {w} AND outcome = 'abandoned'),
         count(*) FILTER (WHERE {w} AND outcome = 'abandoned' AND coalesce(wait_s, 0) < {s}),
         count(*) FILTER (WHERE {w} AND outcome = 'abandoned' AND coalesce(wait_s, 0) <= {t})"
    )
}

trait AddCounts {
    fn add_counts(&mut self, c: &[i64; 6]);
}

impl AddCounts for IntervalCounts {
    fn add_counts(&mut self, c: &[i64; 6]) {
        self.offered += c[0];
        self.answered += c[1];
        self.answered_within += c[2];
        self.abandoned += c[3];
        self.short_abandoned += c[4];
        self.abandoned_within += c[5];
    }
}

/// Every agent of `agent_status` with its state, since when, and today's
/// calls and talk time.
fn read_agents(
    conn: &Connection,
    today: &BTreeMap<String, (i64, i64)>,
) -> Result<Vec<AgentRow>, crate::store::StoreError> {
    let mut q = conn
        .prepare_cached(
            "SELECT s.agent, s.queues::VARCHAR[], s.logged_in, s.paused, s.pause_reason,
                    epoch_us(s.on_call_since), epoch_us(s.paused_since), epoch_us(s.updated_at),
                    EXISTS (SELECT 1 FROM agent_facts f
                            WHERE f.agent = s.agent AND f.fact IN ('member', 'login'))
             FROM agent_status s ORDER BY s.agent",
        )
        .map_err(db("preparing the agents' presence"))?;
    let mut rows = q.query([]).map_err(db("reading the agents' presence"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db("an agent's presence"))? {
        let agent: String = r.get(0).map_err(db("an agent"))?;
        let queues = match r
            .get::<_, duckdb::types::Value>(1)
            .map_err(db("an agent's queues"))?
        {
            duckdb::types::Value::List(l) => l
                .into_iter()
                .filter_map(|v| match v {
                    duckdb::types::Value::Text(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let p = AgentPresence {
            queues: queues.clone(),
            logged_in: r.get(2).map_err(db("an agent's login"))?,
            paused: r.get(3).map_err(db("an agent's pause"))?,
            pause_reason: r.get(4).map_err(db("an agent's pause reason"))?,
            on_call_since: r.get(5).map_err(db("an agent's call"))?,
            known: r.get(8).map_err(db("an agent's facts"))?,
        };
        let state = agent_state(&p);
        let since = match state {
            "on_call" => p.on_call_since,
            "paused" => r.get(6).map_err(db("an agent's pause start"))?,
            _ => r.get(7).map_err(db("an agent's last change"))?,
        };
        let (calls_today, talk_s_today) = today.get(&agent).copied().unwrap_or_default();
        out.push(AgentRow {
            name: agent.clone(),
            agent,
            state,
            pause_reason: p.pause_reason.filter(|_| state == "paused"),
            since: at(since),
            queues,
            calls_today,
            talk_s_today,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_starts_in_the_zone_of_the_pbx() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 22, 30, 0).unwrap();
        let msk: chrono_tz::Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(
            day_start(msk, now),
            Utc.with_ymd_and_hms(2026, 12, 4, 21, 0, 0).unwrap()
        );
        assert_eq!(
            day_start(chrono_tz::UTC, now),
            Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap()
        );
        // Midnight does not exist on this day in Santiago (DST starts at 00:00).
        let scl: chrono_tz::Tz = "America/Santiago".parse().unwrap();
        let d = day_start(scl, Utc.with_ymd_and_hms(2026, 9, 6, 12, 0, 0).unwrap());
        assert_eq!(d, Utc.with_ymd_and_hms(2026, 9, 6, 4, 0, 0).unwrap());
    }

    /// A board brought up to date between reads: the wait grows with the
    /// clock, the counts stay, an empty queue waits 0 s.
    #[test]
    fn a_board_brought_to_now_moves_only_what_the_clock_moves() {
        let cfg = WallConfig::for_tests();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let tile = |q: &str, oldest: Option<DateTime<Utc>>| QueueTile {
            queue: q.to_string(),
            waiting: i64::from(oldest.is_some()),
            offered_today: 7,
            oldest_waiting: oldest,
            ..QueueTile::default()
        };
        let w = Wall {
            generated_at: t0,
            stale: false,
            stale_sources: Vec::new(),
            service_level_formula: "default".to_string(),
            queues: vec![
                tile("sales", Some(t0 - Duration::seconds(5))),
                tile("idle", None),
            ],
            agents: Vec::new(),
        };
        let w = w.at(&cfg, t0).at(&cfg, t0 + Duration::seconds(20));
        assert_eq!(w.generated_at, t0 + Duration::seconds(20));
        assert_eq!(w.queues[0].longest_wait_s, 25);
        assert_eq!(w.queues[0].offered_today, 7);
        assert_eq!(w.queues[1].longest_wait_s, 0);
        assert!(!w.stale);
    }
}
