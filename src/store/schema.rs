//! DuckDB DDL for the tables calltrail owns. Times are UTC `TIMESTAMP`s.
//! The column meanings are documented in `docs/schema.md`.

/// Applied on every open; every statement is idempotent.
pub const DDL: &str = r#"
CREATE SEQUENCE IF NOT EXISTS events_seq START 1;

CREATE TABLE IF NOT EXISTS events (
    seq           BIGINT NOT NULL DEFAULT nextval('events_seq'),
    event_id      VARCHAR PRIMARY KEY,
    source_kind   VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    pbx           VARCHAR NOT NULL,
    ts            TIMESTAMP NOT NULL,
    kind          VARCHAR NOT NULL,
    verb          VARCHAR NOT NULL,
    call_id       VARCHAR,
    linked_id     VARCHAR,
    peer_call_id  VARCHAR,
    queue         VARCHAR,
    agent         VARCHAR,
    agent_raw     VARCHAR,
    caller        VARCHAR,
    caller_raw    VARCHAR,
    caller_name   VARCHAR,
    callee        VARCHAR,
    callee_raw    VARCHAR,
    direction     VARCHAR,
    disposition   VARCHAR,
    wait_s        INTEGER,
    talk_s        INTEGER,
    ring_ms       BIGINT,
    duration_s    INTEGER,
    position      INTEGER,
    orig_position INTEGER,
    answered_at   TIMESTAMP,
    ended_at      TIMESTAMP,
    info          VARCHAR,
    data          VARCHAR,
    ingested_at   TIMESTAMP NOT NULL
);



CREATE TABLE IF NOT EXISTS rejects (
    reject_id   VARCHAR PRIMARY KEY,
    source      VARCHAR NOT NULL,
    file_fp     VARCHAR NOT NULL,
    byte_offset BIGINT NOT NULL,
    line_no     BIGINT NOT NULL,
    raw         BLOB NOT NULL,
    reason      VARCHAR NOT NULL,
    rejected_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS checkpoints (
    source      VARCHAR PRIMARY KEY,
    file_fp     VARCHAR NOT NULL,
    dev         UBIGINT NOT NULL,
    inode       UBIGINT NOT NULL,
    byte_offset BIGINT NOT NULL,
    line_no     BIGINT NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS sink_checkpoints (
    sink       VARCHAR PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS actions (
    action_id       VARCHAR PRIMARY KEY,
    kind            VARCHAR NOT NULL,
    event_id        VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    status          VARCHAR NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    done_at         TIMESTAMP,
    last_error      VARCHAR,
    payload         VARCHAR NOT NULL
);
"#;

/// `state_events`: derived state changes (docs/events.md), the same columns
/// as `events` with a sequence of their own.
pub fn state_events_ddl() -> String {
    let start = DDL.find("CREATE TABLE IF NOT EXISTS events (").unwrap_or(0);
    let end = DDL[start..].find(");").map_or(DDL.len(), |i| start + i + 2);
    format!(
        "CREATE SEQUENCE IF NOT EXISTS state_events_seq START 1;\n{}",
        DDL[start..end]
            .replace("IF NOT EXISTS events (", "IF NOT EXISTS state_events (")
            .replace("nextval('events_seq')", "nextval('state_events_seq')")
    )
}
