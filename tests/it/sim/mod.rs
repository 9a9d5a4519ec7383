//! A simulated call-center day and the tables calltrail must derive from
//! it, computed independently of calltrail's store code: [`day`] decides
//! what happened (ground truth in [`truth`]), [`render`] writes the
//! `queue_log` and `Master.csv` Asterisk would have written, the `expect_*`
//! modules compute the rows docs/schema.md promises, and [`compare`] diffs
//! them against `calltrail query` output.

pub mod cast;
pub mod compare;
pub mod day;
pub mod expect_agents;
pub mod expect_attempts;
pub mod expect_breaches;
pub mod expect_calls;
pub mod expect_lookup;
pub mod expect_party;
pub mod expect_sla;
pub mod render;
pub mod rng;
pub mod table;
pub mod truth;

use table::Expected;

/// Every table the model predicts, with missed-call episodes expiring
/// as `expiry` says.
pub fn expected_tables(day: &truth::Day, expiry: expect_party::Expiry) -> Vec<Expected> {
    vec![
        expect_calls::expected(day),
        expect_attempts::expected(day),
        expect_party::callers(day),
        expect_party::last_agent(day),
        expect_party::missed_calls(day, expiry),
        expect_sla::expected(day),
        expect_agents::expected(day),
        expect_breaches::expected(day),
    ]
}
