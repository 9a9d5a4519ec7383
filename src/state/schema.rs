//! DuckDB DDL of the derived state tables (documented in `docs/schema.md`).
//! Every statement is idempotent; applied with the store's own schema.

pub const DDL: &str = r#"
-- No key or index on the tables that grow with history (calls,
-- call_attempts, callers, last_agent, missed_calls): the deriver deletes a
-- key's rows and writes them again in one transaction, so a key never
-- repeats, and DuckDB (2.0) keeps the index nodes it touches in memory for
-- good: under the default budget's 205 MB a bulk derivation of 10 M events
-- ran out of memory at 1.9 M, its indexes holding 126 MB and growing with
-- every caller touched. (Single-column indexes dropped for a bulk
-- derivation and built again after it were tried: after a full disk had
-- made DuckDB reopen the store, deleting rows failed with "Failed to
-- delete all rows from index", a fatal error.) Rows are found by hash
-- joins with the step's keys.
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
    updated_at   TIMESTAMP NOT NULL
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
    outcome      VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS callers (
    caller            VARCHAR NOT NULL,
    first_seen_at     TIMESTAMP NOT NULL,
    first_answered_at TIMESTAMP,
    calls             INTEGER NOT NULL,
    answered_calls    INTEGER NOT NULL,
    last_seen_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS last_agent (
    caller       VARCHAR NOT NULL,
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
    opened_by         VARCHAR NOT NULL
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
"#;

/// The tables that grow with history, which stores made before 2026-12-04 gave
/// primary keys (see [`migrate_keys`]).
const KEYED: [&str; 5] = [
    "calls",
    "call_attempts",
    "callers",
    "last_agent",
    "missed_calls",
];

/// How many primary keys the tables of [`KEYED`] still have.
pub const HAS_OLD_KEYS: &str = "SELECT count(*) FROM duckdb_constraints()
     WHERE table_name IN ('calls', 'call_attempts', 'callers', 'last_agent', 'missed_calls')
       AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')";

/// The indexes stores made before 2026-12-04 had on the tables of
/// [`KEYED`], dropped at every open.
pub const DROP_INDEXES: &str = "
DROP INDEX IF EXISTS calls_party;
DROP INDEX IF EXISTS missed_calls_caller;";

/// Moves the tables of [`KEYED`] aside (their indexes dropped), before
/// [`DDL`] makes them again without keys; [`migrate_keys_copy`] then copies
/// the rows back (the same rows: nothing is derived again).
pub fn migrate_keys() -> String {
    let mut sql = String::from(DROP_INDEXES);
    for t in KEYED {
        sql.push_str(&format!("ALTER TABLE {t} RENAME TO {t}_keyed;\n"));
    }
    sql
}

/// See [`migrate_keys`].
pub fn migrate_keys_copy() -> String {
    KEYED
        .iter()
        .map(|t| format!("INSERT INTO {t} SELECT * FROM {t}_keyed;\nDROP TABLE {t}_keyed;\n"))
        .collect()
}
