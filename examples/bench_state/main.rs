//! State-table query benchmark (driven by `bench/state.sh`).
//!
//! ```text
//! cargo run --example bench_state -- gen     --db FILE [--scale F]
//! cargo run --example bench_state -- measure --db FILE [--runs N] [--baseline-runs M]
//! cargo run --example bench_state -- explain --db FILE
//! ```
//!
//! `gen` creates the store with the real schema (`Store::open`), then fills
//! `events` and the derived tables with set-based SQL (`gen.sql`): at scale 1,
//! 2.5 M calls over one year and 10 M events. `measure` opens the file
//! read-only on a fresh connection, as `calltrail query` or a dialplan helper
//! would, and times each dialplan and wallboard query on the state tables and
//! the same question computed from `events` (the baseline of the same run).
//! `explain` prints `EXPLAIN ANALYZE` of every query.

use calltrail::store::Store;
use duckdb::Connection;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// First day of the generated year and the wallboard's "now" (its last day).
const START: &str = "2025-06-16 00:00:00";
const NOW: &str = "2026-06-15 18:00:00";
const TODAY: &str = "2026-06-15 00:00:00";

/// Scale 1: 2.35 M inbound queue calls (4 events each), 150 k callbacks
/// (1 CDR event each), 450 k agent events, 300 k distinct callers.
const NI: f64 = 2_350_000.0;
const NO: f64 = 150_000.0;
const NA: f64 = 450_000.0;
const NC: f64 = 300_000.0;

const USAGE: &str = "usage: bench_state gen --db FILE [--scale F]
       bench_state measure --db FILE [--runs N] [--baseline-runs M]
       bench_state explain --db FILE";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_state: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    cmd: String,
    db: PathBuf,
    scale: f64,
    runs: usize,
    baseline_runs: usize,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or("no command")?;
    let mut a = Args {
        cmd,
        db: PathBuf::new(),
        scale: 1.0,
        runs: 200,
        baseline_runs: 20,
    };
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{k} {v}: {e}"));
        match k.as_str() {
            "--db" => a.db = PathBuf::from(v),
            "--scale" => a.scale = num(&v)?,
            "--runs" => a.runs = num(&v)? as usize,
            "--baseline-runs" => a.baseline_runs = num(&v)? as usize,
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.db.as_os_str().is_empty() {
        return Err("--db is required".into());
    }
    if a.runs == 0 || a.baseline_runs == 0 || a.scale <= 0.0 {
        return Err("--runs, --baseline-runs and --scale must be positive".into());
    }
    Ok(a)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    match a.cmd.as_str() {
        "gen" => generate(&a.db, a.scale),
        "measure" => measure(&a.db, a.runs, a.baseline_runs),
        "explain" => explain(&a.db),
        c => Err(format!("unknown command {c}").into()),
    }
}

// ------------------------------------------------------------------ gen

fn generate(db: &Path, scale: f64) -> Result<(), Box<dyn std::error::Error>> {
    for ext in ["", ".wal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let t0 = Instant::now();
    // The real DDL: events, the state tables and their indexes.
    drop(Store::open(db)?);
    let conn = Connection::open(db)?;
    let n = |v: f64| ((v * scale).round() as u64).max(1).to_string();
    let sql = include_str!("gen.sql")
        .replace("{NI}", &n(NI))
        .replace("{NO}", &n(NO))
        .replace("{NA}", &n(NA))
        .replace("{NC}", &n(NC))
        .replace("{START}", START)
        .replace("{NOW}", NOW);
    for stmt in sql.split(";\n") {
        let body: String = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if body.trim().is_empty() {
            continue;
        }
        let t = Instant::now();
        conn.execute_batch(&body)?;
        let head: String = body
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        println!("gen: {:>7.1} s  {head}", t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    conn.execute_batch("CHECKPOINT")?;
    println!("gen: {:>7.1} s  CHECKPOINT", t.elapsed().as_secs_f64());
    let total = t0.elapsed().as_secs_f64();
    let counts = [
        "events",
        "calls",
        "callers",
        "last_agent",
        "missed_calls",
        "sla_intervals",
        "sla_breaches",
        "agent_status",
    ]
    .iter()
    .map(|t| {
        let c: i64 = conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
        Ok(format!("{t}={c}"))
    })
    .collect::<Result<Vec<_>, duckdb::Error>>()?;
    let open: i64 = conn.query_row(
        "SELECT count(*) FROM missed_calls WHERE status = 'open'",
        [],
        |r| r.get(0),
    )?;
    let size = std::fs::metadata(db)?.len() as f64 / (1u64 << 20) as f64;
    println!(
        "gen: rows {} (open missed episodes {open})",
        counts.join(" ")
    );
    println!("gen: done in {total:.1} s, file {size:.0} MiB");
    println!("GEN_SECONDS={total:.1}");
    Ok(())
}

// ------------------------------------------------------------------ queries

/// One question, asked of the state tables and computed from `events`.
struct Query {
    name: &'static str,
    /// Per-caller (dialplan) queries get `{c}` replaced by a caller.
    per_caller: bool,
    state: &'static str,
    events: &'static str,
}

/// The dialplan and wallboard questions. The `events` versions answer the
/// same question the way one would without state tables; where the state
/// walks the whole history (missed episodes) they are bounded to the expiry
/// window, which favours the baseline.
const QUERIES: &[Query] = &[
    Query {
        name: "dialplan: last_agent of caller",
        per_caller: true,
        state: "SELECT agent, last_talk_at, call_id FROM last_agent WHERE caller = '{c}'",
        events: "WITH mine AS (SELECT pbx, call_id FROM events WHERE kind = 'enter_queue' AND caller = '{c}'),
            talks AS (
                SELECT e.agent, e.ts AS talk_at, e.call_id FROM events e
                JOIN mine m ON e.pbx = m.pbx AND e.call_id = m.call_id WHERE e.kind = 'answered'
                UNION ALL
                SELECT agent, answered_at, call_id FROM events
                WHERE kind = 'call_record' AND direction = 'outbound' AND callee = '{c}' AND answered_at IS NOT NULL)
            SELECT agent, talk_at, call_id FROM talks ORDER BY talk_at DESC LIMIT 1",
    },
    Query {
        name: "dialplan: callers row (first-time?)",
        per_caller: true,
        state: "SELECT calls, answered_calls, first_seen_at, last_seen_at FROM callers WHERE caller = '{c}'",
        events: "SELECT count(*) AS calls, min(ts) AS first_seen_at, max(ts) AS last_seen_at
            FROM events WHERE kind = 'enter_queue' AND caller = '{c}'",
    },
    Query {
        name: "dialplan: open missed_calls of caller",
        per_caller: true,
        // MATERIALIZED kept `status` out of the table scan while
        // `missed_calls` had an index on `caller` (in stores made before 2026-12-04; see
        // docs/schema.md for why it has none now); kept to compare with
        // NAIVE_MISSED.
        state: "WITH m AS MATERIALIZED (
                SELECT queue, opened_at, last_missed_at, missed_count, status FROM missed_calls
                WHERE caller = '{c}')
            SELECT queue, opened_at, last_missed_at, missed_count FROM m WHERE status = 'open'",
        // Misses of the last 7 days (the expiry) after the caller's last
        // answered call: the episode walk, bounded in time.
        events: "WITH mine AS (
                SELECT s.queue, s.ts AS entered, f.kind, f.wait_s FROM events s
                JOIN events f ON f.pbx = s.pbx AND f.call_id = s.call_id
                WHERE s.kind = 'enter_queue' AND s.caller = '{c}'
                  AND s.ts >= TIMESTAMP '{now}' - INTERVAL 168 HOUR
                  AND f.kind IN ('answered', 'abandoned', 'timeout', 'exit_empty', 'exit_with_key')
                  AND f.ts >= TIMESTAMP '{now}' - INTERVAL 168 HOUR)
            SELECT arg_min(queue, entered), min(entered), max(entered), count(*) FROM mine
            WHERE kind <> 'answered' AND NOT (kind = 'abandoned' AND wait_s < 5)
              AND entered > coalesce((SELECT max(entered) FROM mine WHERE kind = 'answered'), TIMESTAMP '-infinity')
            HAVING count(*) > 0",
    },
    Query {
        name: "dialplan: combined lookup",
        per_caller: true,
        state: "WITH m AS MATERIALIZED (SELECT status FROM missed_calls WHERE caller = '{c}')
            SELECT (SELECT agent FROM last_agent WHERE caller = '{c}') AS last_agent,
                (SELECT calls FROM callers WHERE caller = '{c}') AS calls,
                (SELECT count(*) FROM m WHERE status = 'open') AS open_missed",
        events: "WITH mine AS (SELECT pbx, call_id, ts FROM events WHERE kind = 'enter_queue' AND caller = '{c}'),
                fin AS (SELECT m.ts AS entered, f.kind, f.agent, f.ts, f.wait_s FROM events f
                    JOIN mine m ON f.pbx = m.pbx AND f.call_id = m.call_id
                    WHERE f.kind IN ('answered', 'abandoned', 'timeout', 'exit_empty', 'exit_with_key'))
            SELECT (SELECT arg_max(agent, ts) FROM fin WHERE kind = 'answered') AS last_agent,
                (SELECT count(*) FROM mine) AS calls,
                (SELECT count(*) FROM fin WHERE kind <> 'answered' AND NOT (kind = 'abandoned' AND wait_s < 5)
                    AND entered >= TIMESTAMP '{now}' - INTERVAL 168 HOUR
                    AND entered > coalesce((SELECT max(entered) FROM fin WHERE kind = 'answered'),
                                           TIMESTAMP '-infinity')) AS open_missed",
    },
    Query {
        name: "wallboard: today's sla_intervals",
        per_caller: false,
        state: "SELECT queue, interval_start, offered, answered, abandoned, service_level
            FROM sla_intervals WHERE interval_start >= TIMESTAMP '{today}' ORDER BY queue, interval_start",
        events: "WITH st AS (SELECT pbx, call_id, queue, ts AS entered FROM events
                    WHERE kind = 'enter_queue' AND ts >= TIMESTAMP '{today}'),
                fin AS (SELECT pbx, call_id, kind, wait_s FROM events WHERE ts >= TIMESTAMP '{today}'
                    AND kind IN ('answered', 'abandoned', 'timeout', 'exit_empty', 'exit_with_key', 'withdrawn'))
            SELECT queue, time_bucket(INTERVAL 15 MINUTE, entered) AS interval_start, count(*) AS offered,
                count(*) FILTER (WHERE kind = 'answered') AS answered,
                count(*) FILTER (WHERE kind IN ('abandoned', 'withdrawn')) AS abandoned,
                count(*) FILTER (WHERE kind = 'answered' AND wait_s <= 20)
                    / nullif(count(*) - count(*) FILTER (WHERE kind = 'abandoned' AND wait_s < 5), 0) AS service_level
            FROM st JOIN fin USING (pbx, call_id) GROUP BY ALL ORDER BY queue, interval_start",
    },
    Query {
        name: "wallboard: agent_status (all agents)",
        per_caller: false,
        state: "SELECT * FROM agent_status ORDER BY agent",
        events: "SELECT agent,
                arg_max(kind, ts) FILTER (WHERE kind IN ('paused', 'unpaused', 'agent_login', 'agent_logoff')) AS state,
                max(ts) FILTER (WHERE kind = 'answered') AS last_answer,
                max(ts) FILTER (WHERE kind IN ('completed_by_caller', 'completed_by_agent', 'transferred')) AS last_end
            FROM events WHERE agent IS NOT NULL AND source_kind = 'asterisk_queue_log' GROUP BY agent ORDER BY agent",
    },
    Query {
        name: "wallboard: callers waiting now per queue",
        per_caller: false,
        state: "SELECT queue, count(*) AS waiting, max(date_diff('second', entered_at, TIMESTAMP '{now}')) AS longest_s
            FROM calls WHERE outcome = 'open' AND answered_at IS NULL
              AND entered_at >= TIMESTAMP '{now}' - INTERVAL 4 HOUR
            GROUP BY queue ORDER BY queue",
        events: "SELECT s.queue, count(*) AS waiting, max(date_diff('second', s.ts, TIMESTAMP '{now}')) AS longest_s
            FROM events s WHERE s.kind = 'enter_queue' AND s.ts >= TIMESTAMP '{now}' - INTERVAL 4 HOUR
              AND NOT EXISTS (SELECT 1 FROM events e WHERE e.pbx = s.pbx AND e.call_id = s.call_id
                  AND e.ts >= TIMESTAMP '{now}' - INTERVAL 4 HOUR
                  AND e.kind IN ('answered', 'abandoned', 'timeout', 'exit_empty', 'exit_with_key', 'withdrawn'))
            GROUP BY s.queue ORDER BY s.queue",
    },
    Query {
        name: "wallboard: open sla_breaches",
        per_caller: false,
        state: "SELECT queue, kind, started_at, value, threshold FROM sla_breaches
            WHERE ended_at IS NULL ORDER BY queue, kind",
        // The service-level breach's own question: the last hour's service
        // level per queue, from events.
        events: "WITH st AS (SELECT pbx, call_id, queue FROM events
                    WHERE kind = 'enter_queue' AND ts >= TIMESTAMP '{now}' - INTERVAL 1 HOUR),
                fin AS (SELECT pbx, call_id, kind, wait_s FROM events WHERE ts >= TIMESTAMP '{now}' - INTERVAL 1 HOUR
                    AND kind IN ('answered', 'abandoned', 'timeout', 'exit_empty', 'exit_with_key', 'withdrawn'))
            SELECT queue, count(*) FILTER (WHERE kind = 'answered' AND wait_s <= 20)
                    / nullif(count(*) - count(*) FILTER (WHERE kind = 'abandoned' AND wait_s < 5), 0) AS sl
            FROM st JOIN fin USING (pbx, call_id) GROUP BY queue HAVING sl < 0.8 ORDER BY queue",
    },
    Query {
        name: "wallboard: missed calls still open today",
        per_caller: false,
        state: "SELECT caller, queue, opened_at, last_missed_at, missed_count FROM missed_calls
            WHERE status = 'open' AND last_missed_at >= TIMESTAMP '{today}' ORDER BY last_missed_at DESC",
        events: "WITH c AS (
                SELECT s.caller, s.queue, s.ts AS entered, f.kind, f.wait_s FROM events s
                JOIN events f ON f.pbx = s.pbx AND f.call_id = s.call_id
                WHERE s.kind = 'enter_queue' AND s.ts >= TIMESTAMP '{today}' AND f.ts >= TIMESTAMP '{today}'
                  AND f.kind IN ('answered', 'abandoned', 'timeout', 'exit_empty', 'exit_with_key')),
              back AS (SELECT callee AS caller, answered_at FROM events
                WHERE kind = 'call_record' AND direction = 'outbound' AND ts >= TIMESTAMP '{today}'
                  AND answered_at IS NOT NULL)
            SELECT m.caller, arg_min(m.queue, m.entered), min(m.entered), max(m.entered), count(*)
            FROM c m WHERE m.kind <> 'answered' AND NOT (m.kind = 'abandoned' AND m.wait_s < 5)
              AND NOT EXISTS (SELECT 1 FROM c a WHERE a.caller = m.caller AND a.kind = 'answered' AND a.entered > m.entered)
              AND NOT EXISTS (SELECT 1 FROM back b WHERE b.caller = m.caller AND b.answered_at > m.entered)
            GROUP BY m.caller ORDER BY 4 DESC",
    },
];

/// The open-missed lookup with both filters in one WHERE (with the index
/// `missed_calls` had before 2026-12-04, DuckDB 2.0 then scanned the
/// table instead of using it).
const NAIVE_MISSED: &str = "SELECT queue, opened_at, last_missed_at, missed_count FROM missed_calls
    WHERE caller = '{c}' AND status = 'open'";

fn fill(sql: &str, caller: &str) -> String {
    sql.replace("{c}", caller)
        .replace("{now}", NOW)
        .replace("{today}", TODAY)
}

/// Runs `sql` to the last row; returns the rows.
fn exec(conn: &Connection, sql: &str) -> Result<usize, duckdb::Error> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}

struct Stats {
    p50: f64,
    p99: f64,
    runs: usize,
    rows: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(mut v: Vec<f64>, rows: usize) -> Stats {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Stats {
        p50: at(0.5),
        p99: at(0.99),
        runs: v.len(),
        rows: rows as f64 / v.len() as f64,
    }
}

/// Times `runs` executions after 3 warm-up runs, cycling through `callers`.
fn time(
    conn: &Connection,
    sql: &str,
    callers: &[String],
    runs: usize,
) -> Result<Stats, duckdb::Error> {
    for c in callers.iter().take(3) {
        exec(conn, &fill(sql, c))?;
    }
    let mut v = Vec::with_capacity(runs);
    let mut rows = 0;
    for i in 0..runs {
        let q = fill(sql, &callers[(i * 7 + 3) % callers.len()]);
        let t = Instant::now();
        rows += exec(conn, &q)?;
        v.push(ms(t.elapsed()));
    }
    Ok(stats(v, rows))
}

/// 200 callers, every fifth one never seen (same number plan, outside the
/// generated set); of the 160 stored ones (a deterministic sample), 40 have
/// an open missed-call episode, so that lookup finds rows too.
fn callers(conn: &Connection) -> Result<Vec<String>, duckdb::Error> {
    let mut stmt = conn.prepare(
        "SELECT caller FROM (
            (SELECT caller, 0 AS g, hash(caller) AS h FROM callers ORDER BY h LIMIT 120)
            UNION ALL
            (SELECT DISTINCT caller, 1, hash(caller) FROM missed_calls WHERE status = 'open'
             ORDER BY 3 LIMIT 40)
            UNION ALL
            SELECT '+7916' || lpad((((5000000 + range * 13) * 7919) % 10000000)::VARCHAR, 7, '0'),
                2, range FROM range(40))
         ORDER BY g, h",
    )?;
    let all: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    // Interleave: stored ones (plain and with an open episode) in turn, and
    // every fifth lookup an unknown caller.
    let (known, unknown) = all.split_at(all.len().saturating_sub(40));
    let (plain, open) = known.split_at(known.len().saturating_sub(40));
    let mut mixed = Vec::with_capacity(known.len());
    let mut o = open.iter();
    for (i, c) in plain.iter().enumerate() {
        mixed.push(c);
        if i % 3 == 2 {
            mixed.extend(o.next());
        }
    }
    mixed.extend(o);
    let mut out = Vec::with_capacity(all.len());
    let mut u = unknown.iter();
    for (i, c) in mixed.into_iter().enumerate() {
        out.push(c.clone());
        if i % 4 == 3 {
            out.extend(u.next().cloned());
        }
    }
    out.extend(u.cloned());
    Ok(out)
}

fn measure(db: &Path, runs: usize, baseline_runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    // A fresh process and connection, as a dialplan helper would open it.
    let t = Instant::now();
    let conn = Store::open_read_only(db)?;
    let open_ms = ms(t.elapsed());
    let t = Instant::now();
    let callers = callers(&conn)?;
    let first_ms = ms(t.elapsed());
    let events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let calls: i64 = conn.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))?;
    let threads: String =
        conn.query_row("SELECT current_setting('threads')::VARCHAR", [], |r| {
            r.get(0)
        })?;
    println!(
        "measure: opened {} read-only in {open_ms:.1} ms, first query {first_ms:.1} ms; \
         {events} events, {calls} calls, DuckDB threads {threads}",
        db.display()
    );

    // Opening again and again: what every short-lived process pays.
    let mut opens = Vec::new();
    for c in callers.iter().take(20) {
        let t = Instant::now();
        let fresh = Store::open_read_only(db)?;
        exec(&fresh, &fill(QUERIES[0].state, c))?;
        opens.push(ms(t.elapsed()));
    }
    let opens = stats(opens, 0);

    let mut table = Vec::new();
    for q in QUERIES {
        let one = [String::new()];
        let cs: &[String] = if q.per_caller { &callers } else { &one };
        let s = time(&conn, q.state, cs, runs)?;
        let e = time(&conn, q.events, cs, baseline_runs)?;
        println!(
            "measure: {:<42} state p50 {:>8.3} ms p99 {:>8.3} ms ({} runs, {:.1} rows) | events p50 {:>9.1} ms p99 {:>9.1} ms ({} runs, {:.1} rows)",
            q.name, s.p50, s.p99, s.runs, s.rows, e.p50, e.p99, e.runs, e.rows
        );
        table.push((q.name, s, e));
    }

    // The lookup as one would first write it: a sequential scan of every
    // episode, index or not.
    let naive = time(&conn, NAIVE_MISSED, &callers, runs)?;

    println!();
    println!(
        "== state queries at {events} events / {calls} calls (fresh read-only connection; ms) =="
    );
    println!(
        "{:<42} {:>9} {:>9}   {:>9} {:>9}   {:>9}",
        "query", "state p50", "state p99", "evts p50", "evts p99", "ratio p50"
    );
    for (name, s, e) in &table {
        println!(
            "{:<42} {:>9.3} {:>9.3}   {:>9.1} {:>9.1}   {:>8.0}x",
            name,
            s.p50,
            s.p99,
            e.p50,
            e.p99,
            e.p50 / s.p50
        );
    }
    println!(
        "{:<42} {:>9.3} {:>9.3}   ({:.0}x the MATERIALIZED shape's p50: a full scan, index unused)",
        "open missed_calls, caller AND status",
        naive.p50,
        naive.p99,
        naive.p50 / table[2].1.p50
    );
    println!(
        "{:<42} {:>9.1} {:>9.1}   (open read-only + last_agent lookup, {} runs)",
        "fresh connection per lookup", opens.p50, opens.p99, opens.runs
    );
    println!(
        "state: {runs} runs per query after 3 warm-ups; events baseline: {baseline_runs} runs (its p99 is the max); \
         per-caller queries cycle through 160 stored callers (40 with an open missed episode) and 40 unknown ones"
    );
    Ok(())
}

fn explain(db: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let conn = Store::open_read_only(db)?;
    let caller = callers(&conn)?.remove(0);
    for q in QUERIES {
        for (what, sql) in [("state", q.state), ("events", q.events)] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN ANALYZE {}", fill(sql, &caller)))?
                .query_map([], |r| r.get::<_, String>(1))?
                .collect::<Result<_, _>>()?;
            println!("==== {} [{what}]\n{}", q.name, plan.join("\n"));
        }
    }
    Ok(())
}
