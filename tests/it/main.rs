//! calltrail's integration tests: one test binary (each debug binary that
//! links DuckDB and librdkafka is a large link), run against real
//! components started by the harness in `support/`.

mod actions_chaos;
mod actions_cli;
mod ami_callback;
mod ami_peer;
mod asterisk_live;
mod budget;
mod calendar;
mod callfile;
mod chaos;
mod daemon;
mod digest;
mod disk_full;
mod employee_callback;
mod harness;
mod hashcompat;
mod heartbeat;
mod import_history;
mod import_kill;
mod injection;
mod kannel;
mod login;
mod lookup;
mod metrics;
mod numbers;
mod query_live;
mod reload;
mod reports;
mod rotation;
mod rules;
mod service;
mod sim;
mod simulated_day;
mod skeleton;
mod sla_live;
mod sms;
mod snapshot;
mod state;
mod support;
mod wall;
mod wall_browser;
