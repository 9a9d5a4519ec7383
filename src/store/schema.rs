//! DuckDB DDL for the tables calltrail owns. Times are UTC `TIMESTAMP`s.
//! The column meanings are documented in `docs/schema.md`.

/// The columns of `events` and `state_events` after `seq` and `event_id`.
const EVENT_COLUMNS: &str = "
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
    ingested_at   TIMESTAMP NOT NULL,
    channel       VARCHAR,
    dst_channel   VARCHAR
";

/// Columns added after calltrail's first releases, at the end of the table
/// (where `ALTER TABLE … ADD COLUMN` puts them in an older store, so that
/// new and migrated stores have the same column order).
fn added_columns(table: &str) -> String {
    format!(
        "
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS channel VARCHAR;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS dst_channel VARCHAR;"
    )
}

/// `events`: no key and no sequence default, so that batches are appended
/// in columnar form at DuckDB's bulk speed (an ART key costs ~6 µs per row).
/// `seq` is given by the store (serialized commits); duplicates are kept
/// out by `covered` (line sources: the byte ranges of each file already
/// accounted for) or by an anti-join on `event_id` (snapshot sources).
pub fn events_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS events (
    seq           BIGINT NOT NULL,
    event_id      VARCHAR NOT NULL,{EVENT_COLUMNS});{}",
        added_columns("events")
    )
}

/// A connection's staging table for events (TEMP: never written to the
/// file): `ord`, then the columns of `events` but `seq`, made anew (DuckDB
/// keeps the memory of rows deleted from a temp table: emptied and filled
/// again, it grew with every event it ever staged).
///
/// Declared column by column, not `CREATE … AS SELECT … LIMIT 0`: in
/// DuckDB 1.2 a temp table made by `CREATE TABLE AS` in the transaction
/// that then appends more than 204,800 rows to it (the appender's
/// auto-flush) reads back empty — every row lost, without an error.
pub fn events_stage_ddl() -> String {
    format!(
        "CREATE OR REPLACE TEMP TABLE events_stage (
    ord           BIGINT NOT NULL,
    event_id      VARCHAR NOT NULL,{EVENT_COLUMNS});"
    )
}

/// `state_events`: derived state changes (docs/events.md), the same columns
/// as `events`, with a sequence of their own. No key: a change already
/// recorded (the same `event_id` at the same `ts`) is kept out by an
/// anti-join bounded by time (`events::insert_staged_into`); a key's index
/// stayed in DuckDB's memory and grew with every change ever recorded.
pub fn state_events_ddl() -> String {
    format!(
        "CREATE SEQUENCE IF NOT EXISTS state_events_seq START 1;
CREATE TABLE IF NOT EXISTS state_events (
    seq           BIGINT NOT NULL DEFAULT nextval('state_events_seq'),
    event_id      VARCHAR NOT NULL,{EVENT_COLUMNS});{}",
        added_columns("state_events")
    )
}

/// Whether `state_events` still has the key stores made before 2026-12-04 gave
/// it on `event_id` ([`migrate_state_events`] drops it).
pub const STATE_EVENTS_KEYED: &str = "SELECT count(*) FROM duckdb_constraints()
    WHERE table_name = 'state_events' AND constraint_type = 'PRIMARY KEY'";

/// Rewrites a keyed `state_events` without its key: the same rows and
/// `seq`s (what the Kafka publisher has sent is unchanged), in one
/// transaction.
pub fn migrate_state_events() -> String {
    format!(
        "BEGIN TRANSACTION;
ALTER TABLE state_events RENAME TO state_events_keyed;
{}
INSERT INTO state_events SELECT * FROM state_events_keyed ORDER BY seq;
DROP TABLE state_events_keyed;
COMMIT;",
        state_events_ddl()
    )
}

/// Applied on every open; every statement is idempotent.
pub const DDL: &str = r#"
-- Byte ranges [start_offset, end_offset) of a file (by first-line
-- fingerprint) whose records are stored: events, rejects and blank lines.
-- A record whose offset falls in a range is already accounted for;
-- last_offset is where the range's last record starts.
CREATE TABLE IF NOT EXISTS covered (
    source       VARCHAR NOT NULL,
    file_fp      VARCHAR NOT NULL,
    start_offset BIGINT NOT NULL,
    end_offset   BIGINT NOT NULL,
    last_offset  BIGINT NOT NULL
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

/// Whether `events` still has the layout of calltrail 0.1 (a primary key on
/// `event_id` and a sequence default), which [`MIGRATE_V1`] rewrites.
pub const IS_V1: &str = "SELECT count(*) FROM duckdb_constraints()
    WHERE table_name = 'events' AND constraint_type = 'PRIMARY KEY'";

/// Rewrites a 0.1 `events` table without its key (same rows, same `seq`s)
/// and records what it holds in `covered`: per file, from its first stored
/// record to its last (0.1 read every file contiguously; where the last
/// record ends is not known, so the range ends one byte into it).
pub const MIGRATE_V1: &str = r#"
CREATE TABLE events_v2 AS SELECT * FROM events;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
INSERT INTO covered
SELECT source, fp, min(off), max(off) + 1, max(off) FROM (
    SELECT source,
           regexp_extract(event_id, ':([0-9a-f]{16}):[0-9]+$', 1) AS fp,
           TRY_CAST(regexp_extract(event_id, ':([0-9]+)$', 1) AS BIGINT) AS off
    FROM events
    UNION ALL
    SELECT source, file_fp, byte_offset FROM rejects)
WHERE fp <> '' AND off IS NOT NULL
GROUP BY source, fp;
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written by calltrail 0.1 opens: `events` loses its key and
    /// keeps its rows and `seq`s; what it held is recorded in `covered`.
    #[test]
    fn a_v1_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.duckdb");
        {
            let c = duckdb::Connection::open(&path).unwrap();
            let v1 = events_ddl()
                .replace(
                    "seq           BIGINT NOT NULL,",
                    "seq BIGINT NOT NULL DEFAULT nextval('events_seq'),",
                )
                .replace(
                    "event_id      VARCHAR NOT NULL,",
                    "event_id VARCHAR PRIMARY KEY,",
                );
            c.execute_batch(&format!("CREATE SEQUENCE events_seq START 1; {v1}"))
                .unwrap();
            for off in [0, 57, 120] {
                c.execute(
                    "INSERT INTO events (event_id, source_kind, source, pbx, ts, kind, verb, ingested_at)
                     VALUES (?, 'asterisk_queue_log', 'q', 'p', now(), 'enter_queue', 'ENTERQUEUE', now())",
                    [format!("q:00000000000000ab:{off}")],
                )
                .unwrap();
            }
        }
        let store = crate::store::Store::open(&path).unwrap();
        let offsets = store.stored_offsets("q").unwrap();
        assert_eq!(offsets.get(&0xab), Some(&120));
        let cov = store.covered("q", "00000000000000ab").unwrap();
        assert!(cov.contains(0) && cov.contains(57) && cov.contains(120));
        assert!(!cov.contains(121));
        drop(store);
        let c = duckdb::Connection::open(&path).unwrap();
        let keys: i64 = c.query_row(IS_V1, [], |r| r.get(0)).unwrap();
        assert_eq!(keys, 0, "no key left on events");
        let seqs: Vec<i64> = c
            .prepare("SELECT seq FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    /// A store made before the CDR channels were recorded gets the two
    /// columns at the end of `events` and `state_events`, where a new
    /// store has them, so positional inserts fit both.
    #[test]
    fn a_store_without_channels_gets_them_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.duckdb");
        let old = |ddl: String| {
            let ddl = ddl.replace(
                "    ingested_at   TIMESTAMP NOT NULL,\n    channel       VARCHAR,\n    dst_channel   VARCHAR\n",
                "    ingested_at   TIMESTAMP NOT NULL\n",
            );
            ddl[..ddl.find("ALTER TABLE").unwrap()].to_string()
        };
        {
            let c = duckdb::Connection::open(&path).unwrap();
            c.execute_batch(&old(events_ddl())).unwrap();
            c.execute_batch(&old(state_events_ddl())).unwrap();
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM duckdb_columns() WHERE column_name = 'channel'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 0, "the old layout has no channel column");
        }
        drop(crate::store::Store::open(&path).unwrap());
        let fresh = dir.path().join("new.duckdb");
        drop(crate::store::Store::open(&fresh).unwrap());
        let columns = |p: &std::path::Path, table: &str| -> Vec<String> {
            let c = duckdb::Connection::open(p).unwrap();
            c.prepare(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
            )
            .unwrap()
            .query_map([table], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
        };
        for table in ["events", "state_events"] {
            let migrated = columns(&path, table);
            assert_eq!(migrated, columns(&fresh, table), "{table}");
            assert_eq!(migrated[migrated.len() - 2..], ["channel", "dst_channel"]);
        }
    }

    /// A store whose growing tables still have the keys and indexes of
    /// before 2026-12-04 opens with none left: the same rows, the same
    /// `state_events` seqs, and a change already recorded is still kept
    /// out (by `(event_id, ts)` now).
    #[test]
    fn a_keyed_store_loses_its_keys_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyed.duckdb");
        {
            let c = duckdb::Connection::open(&path).unwrap();
            let keyed = crate::state::schema::DDL
                .replace(
                    "    updated_at   TIMESTAMP NOT NULL\n);",
                    "    updated_at   TIMESTAMP NOT NULL,\n    PRIMARY KEY (pbx, call_id, stint)\n);",
                )
                .replace(
                    "    caller            VARCHAR NOT NULL,\n    first_seen_at",
                    "    caller            VARCHAR PRIMARY KEY,\n    first_seen_at",
                )
                .replace(
                    "    caller       VARCHAR NOT NULL,\n    agent",
                    "    caller       VARCHAR PRIMARY KEY,\n    agent",
                );
            assert_ne!(
                keyed,
                crate::state::schema::DDL,
                "the old layout was rebuilt"
            );
            c.execute_batch(&keyed).unwrap();
            c.execute_batch(
                "CREATE INDEX calls_party ON calls (party);
                 CREATE INDEX missed_calls_caller ON missed_calls (caller);",
            )
            .unwrap();
            c.execute_batch(&state_events_ddl().replace(
                "event_id      VARCHAR NOT NULL,",
                "event_id      VARCHAR PRIMARY KEY,",
            ))
            .unwrap();
            c.execute_batch(
                "INSERT INTO callers VALUES ('+79161234567', '2026-12-01 10:00:00', NULL, 1, 0, '2026-12-01 10:00:00');
                 INSERT INTO calls (pbx, call_id, stint, party, outcome, missed, updated_at)
                     VALUES ('p', '1.1', 0, '+79161234567', 'abandoned', true, '2026-12-01 10:01:00');
                 INSERT INTO state_events (seq, event_id, source_kind, source, pbx, ts, kind, verb, ingested_at)
                     VALUES (7, 'state:first_call:+79161234567', 'derived', 'state', '*',
                             '2026-12-01 10:00:00', 'first_call', 'FIRST_CALL', '2026-12-01 10:00:01');",
            )
            .unwrap();
            let keys: i64 = c
                .query_row(
                    "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'
                     AND table_name IN ('calls', 'callers', 'last_agent', 'state_events')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(keys, 4, "the old layout has its keys");
        }
        let store = crate::store::Store::open(&path).unwrap();
        // The same first call again (a rederive) is not recorded twice.
        {
            let mut conn = store.lock();
            let tx = conn.transaction().unwrap();
            let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
                .unwrap()
                .timestamp_micros();
            let again = crate::state::derived::first_call("+79161234567", at);
            super::super::events::stage(&tx, &[again], chrono::Utc::now(), 0).unwrap();
            let n = super::super::events::insert_staged_into(&tx, "state_events").unwrap();
            assert_eq!(n, 0, "a change already recorded was recorded again");
            tx.commit().unwrap();
        }
        drop(store);
        let c = duckdb::Connection::open(&path).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            count(
                "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'
                 AND table_name IN ('calls', 'call_attempts', 'callers', 'last_agent',
                                    'missed_calls', 'state_events')"
            ),
            0,
            "a key is left"
        );
        assert_eq!(
            count("SELECT count(*) FROM duckdb_indexes() WHERE table_name IN ('calls', 'missed_calls')"),
            0,
            "an index is left"
        );
        assert_eq!(count("SELECT count(*) FROM callers WHERE calls = 1"), 1);
        // party_key added at the end and filled (state::party_key).
        assert_eq!(
            count("SELECT count(*) FROM callers WHERE party_key = 5066319012311"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM calls WHERE party_key = 5066319012311"),
            1
        );
        let last: String = c
            .query_row(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'missed_calls'
                 ORDER BY column_index DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(last, "party_key");
        assert_eq!(count("SELECT count(*) FROM calls WHERE call_id = '1.1'"), 1);
        assert_eq!(count("SELECT max(seq) FROM state_events"), 7);
        assert_eq!(count("SELECT count(*) FROM state_events"), 1);
        assert_eq!(
            count("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%_keyed'"),
            0
        );
    }
}
