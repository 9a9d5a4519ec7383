//! The counts `calls_by_queue` and `calls_by_hour` share: queue stints
//! (rows of `calls` with a queue) by the time they entered the queue, and
//! what became of them (docs/reports.md, "Calls").

use super::table::{col, Col, Kind};

/// The columns after the report's key column.
pub const COLS: [Col; 12] = [
    col("offered", Kind::Int),
    col("answered", Kind::Int),
    col("unanswered", Kind::Int),
    col("abandoned", Kind::Int),
    col("short_abandoned", Kind::Int),
    col("timeouts", Kind::Int),
    col("exit_empty", Kind::Int),
    col("exit_key", Kind::Int),
    col("waiting", Kind::Int),
    col("answer_rate", Kind::Ratio),
    col("asa_s", Kind::AvgSecs),
    col("avg_talk_s", Kind::AvgSecs),
];

/// The select list of [`COLS`] over `calls` aliased `c`; `short_abandon_s`
/// is a number from the config, never from the request.
pub fn select(short_abandon_s: i32) -> String {
    let s = short_abandon_s;
    format!(
        "count(*)::BIGINT,
         count(*) FILTER (WHERE c.answered_at IS NOT NULL)::BIGINT,
         count(*) FILTER (WHERE c.answered_at IS NULL AND c.outcome <> 'open')::BIGINT,
         count(*) FILTER (WHERE c.outcome = 'abandoned')::BIGINT,
         count(*) FILTER (WHERE c.outcome = 'abandoned' AND coalesce(c.wait_s, 0) < {s})::BIGINT,
         count(*) FILTER (WHERE c.outcome = 'timeout')::BIGINT,
         count(*) FILTER (WHERE c.outcome = 'exit_empty')::BIGINT,
         count(*) FILTER (WHERE c.outcome = 'exit_key')::BIGINT,
         count(*) FILTER (WHERE c.outcome = 'open' AND c.answered_at IS NULL)::BIGINT,
         (count(*) FILTER (WHERE c.answered_at IS NOT NULL))::DOUBLE / nullif(count(*), 0),
         avg(c.wait_s) FILTER (WHERE c.answered_at IS NOT NULL),
         avg(c.talk_s) FILTER (WHERE c.answered_at IS NOT NULL AND c.outcome <> 'open' AND c.talk_s IS NOT NULL)"
    )
}

/// The filter on the queue (`?1`) and the answering agent (`?2`).
pub const FILTER: &str = "c.queue IS NOT NULL
    AND (?1::VARCHAR IS NULL OR c.queue = ?1::VARCHAR)
    AND (?2::VARCHAR IS NULL OR c.agent = ?2::VARCHAR)";
