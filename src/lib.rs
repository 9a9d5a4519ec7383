//! calltrail: a sidecar for PBX hosts. It tails the logs telephone systems
//! write, turns every line into a normalized call event, stores events in
//! DuckDB, publishes them to Kafka and runs the actions rules ask for.
//!
//! Data flow (see ARCHITECTURE.md): `tail` → `ingest` (parse with
//! `calltrail-parsers`, rules) → `store` (one transaction per batch, with the
//! checkpoint) → `publish` (Kafka, from the store) and `actions` (email, from
//! the store's outbox).

pub mod actions;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod heartbeat;
pub mod import;
pub mod ingest;
pub mod lookup;
pub mod numbers;
pub mod priority;
pub mod publish;
pub mod query;
pub mod readonly;
pub mod reload;
pub mod rules;
pub mod run;
pub mod serve;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod tail;
