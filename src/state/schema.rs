//! DuckDB DDL of the derived state tables (documented in `docs/schema.md`).
//! Every statement is idempotent; applied with the store's own schema.

pub const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS calls (
    pbx          VARCHAR NOT NULL,
    call_id      VARCHAR NOT NULL,
    stint        INTEGER NOT NULL,
    direction    VARCHAR,
    queue        VARCHAR,
    caller       VARCHAR,
    caller_raw   VARCHAR,
    callee       VARCHAR,
    party        VARCHAR,
    entered_at   TIMESTAMP,
    answered_at  TIMESTAMP,
    ended_at     TIMESTAMP,
    outcome      VARCHAR NOT NULL,
    agent        VARCHAR,
    wait_s       INTEGER,
    talk_s       INTEGER,
    missed       BOOLEAN NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (pbx, call_id, stint)
);

-- Every agent a call's CDR says was rung (docs/schema.md).
CREATE TABLE IF NOT EXISTS call_attempts (
    pbx          VARCHAR NOT NULL,
    call_id      VARCHAR NOT NULL,
    attempt      INTEGER NOT NULL,
    agent        VARCHAR,
    channel      VARCHAR NOT NULL,
    leg_call_id  VARCHAR,
    queue        VARCHAR,
    rang_at      TIMESTAMP NOT NULL,
    answered_at  TIMESTAMP,
    ended_at     TIMESTAMP,
    ring_s       INTEGER,
    talk_s       INTEGER,
    outcome      VARCHAR NOT NULL,
    PRIMARY KEY (pbx, call_id, attempt)
);

CREATE TABLE IF NOT EXISTS callers (
    caller            VARCHAR PRIMARY KEY,
    first_seen_at     TIMESTAMP NOT NULL,
    first_answered_at TIMESTAMP,
    calls             INTEGER NOT NULL,
    answered_calls    INTEGER NOT NULL,
    last_seen_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS last_agent (
    caller       VARCHAR PRIMARY KEY,
    agent        VARCHAR NOT NULL,
    last_talk_at TIMESTAMP NOT NULL,
    call_id      VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS missed_calls (
    caller            VARCHAR NOT NULL,
    queue             VARCHAR,
    opened_at         TIMESTAMP NOT NULL,
    last_missed_at    TIMESTAMP NOT NULL,
    missed_count      INTEGER NOT NULL,
    callback_attempts INTEGER NOT NULL,
    status            VARCHAR NOT NULL,
    resolved_at       TIMESTAMP,
    resolved_by       VARCHAR,
    opened_by         VARCHAR NOT NULL,
    PRIMARY KEY (caller, opened_at)
);

CREATE TABLE IF NOT EXISTS sla_intervals (
    queue           VARCHAR NOT NULL,
    interval_start  TIMESTAMP NOT NULL,
    offered         INTEGER NOT NULL,
    answered        INTEGER NOT NULL,
    answered_within INTEGER NOT NULL,
    abandoned       INTEGER NOT NULL,
    short_abandoned INTEGER NOT NULL,
    abandoned_within INTEGER NOT NULL,
    timeouts        INTEGER NOT NULL,
    exits           INTEGER NOT NULL,
    service_level   DOUBLE,
    asa_s           DOUBLE,
    aht_s           DOUBLE,
    PRIMARY KEY (queue, interval_start)
);

CREATE TABLE IF NOT EXISTS sla_breaches (
    queue      VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at   TIMESTAMP,
    value      DOUBLE NOT NULL,
    threshold  DOUBLE NOT NULL,
    PRIMARY KEY (queue, kind, started_at)
);

CREATE TABLE IF NOT EXISTS agent_status (
    agent              VARCHAR PRIMARY KEY,
    queues             VARCHAR[] NOT NULL,
    logged_in          BOOLEAN NOT NULL,
    paused             BOOLEAN NOT NULL,
    pause_reason       VARCHAR,
    paused_since       TIMESTAMP,
    on_call_since      TIMESTAMP,
    on_call_id         VARCHAR,
    last_call_ended_at TIMESTAMP,
    updated_at         TIMESTAMP NOT NULL
);

-- Internal: the latest membership / login / pause fact per agent and scope.
CREATE TABLE IF NOT EXISTS agent_facts (
    agent    VARCHAR NOT NULL,
    scope    VARCHAR NOT NULL,
    fact     VARCHAR NOT NULL,
    value    VARCHAR NOT NULL,
    reason   VARCHAR,
    ts       TIMESTAMP NOT NULL,
    event_id VARCHAR NOT NULL,
    PRIMARY KEY (agent, scope, fact)
);

CREATE INDEX IF NOT EXISTS calls_party ON calls (party);
-- The dialplan's "open missed calls of this caller": DuckDB uses an ART index
-- only for a single-column filter, not a prefix of the primary key, so
-- without it the lookup scans every episode (bench/state.sh: ~8 ms at 400 k
-- episodes, under 1 ms with it).
CREATE INDEX IF NOT EXISTS missed_calls_caller ON missed_calls (caller);
-- (events_call index: see below)
"#;
