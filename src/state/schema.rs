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

/// The tables with a party column and their `party_key`
/// (`super::party_key`), which comes after every other column.
pub const PARTY_KEYED: [(&str, &str); 4] = [
    ("calls", "party"),
    ("callers", "caller"),
    ("last_agent", "caller"),
    ("missed_calls", "caller"),
];

/// `party_key` of the `VARCHAR` expression `col` when it is a number, in
/// SQL: exactly `super::party_key::party_key` (tested against it); NULL
/// for anything else.
pub fn packed_key_sql(col: &str) -> String {
    format!(
        "CASE WHEN regexp_full_match({col}, '\\+?[0-9]{{1,17}}')
              THEN (CAST(ltrim({col}, '+') AS UBIGINT) << 6)
                   | (length(ltrim({col}, '+'))::UBIGINT << 1)
                   | (CASE WHEN starts_with({col}, '+') THEN 1 ELSE 0 END)::UBIGINT
         END"
    )
}

/// Gives each table of [`PARTY_KEYED`] that lacks it its `party_key`
/// column, at the end (new stores and older ones alike: [`DDL`] does not
/// declare it, so that [`migrate_keys_copy`] copies old rows as they are),
/// and fills it for the rows already there, in one transaction: a number's
/// key in SQL, the others' (few: endpoint names) computed here. Returns
/// how many tables got the column.
pub fn add_party_keys(conn: &duckdb::Connection) -> duckdb::Result<usize> {
    let mut missing = Vec::new();
    for (table, column) in PARTY_KEYED {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM duckdb_columns()
             WHERE table_name = ? AND column_name = 'party_key' AND schema_name = 'main'",
            [table],
            |r| r.get(0),
        )?;
        if n == 0 {
            missing.push((table, column));
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    conn.execute_batch("BEGIN TRANSACTION")?;
    let result = (|| {
        for (table, column) in &missing {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN party_key UBIGINT;
                 UPDATE {table} SET party_key = {} WHERE {column} IS NOT NULL;",
                packed_key_sql(column)
            ))?;
        }
        let others = missing
            .iter()
            .map(|(t, c)| {
                format!("SELECT {c} AS party FROM {t} WHERE party_key IS NULL AND {c} IS NOT NULL")
            })
            .collect::<Vec<_>>()
            .join(" UNION ");
        let parties: Vec<String> = {
            let mut q = conn.prepare(&others)?;
            let rows = q.query_map([], |r| r.get(0))?;
            rows.collect::<duckdb::Result<_>>()?
        };
        if parties.is_empty() {
            return Ok(());
        }
        conn.execute_batch("CREATE OR REPLACE TEMP TABLE _party_keys (party VARCHAR, k UBIGINT)")?;
        let mut ins = conn.appender_to_catalog_and_db("_party_keys", "temp", "main")?;
        for p in &parties {
            ins.append_row(duckdb::params![p, super::party_key::party_key(p)])?;
        }
        ins.flush()?;
        drop(ins);
        for (table, column) in &missing {
            conn.execute_batch(&format!(
                "UPDATE {table} SET party_key = m.k FROM _party_keys m
                 WHERE {table}.party_key IS NULL AND {table}.{column} = m.party"
            ))?;
        }
        conn.execute_batch("DROP TABLE _party_keys")
    })();
    match result {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(missing.len())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_key_of_a_number_is_the_rust_one() {
        let c = duckdb::Connection::open_in_memory().unwrap();
        for party in [
            "+79161234567",
            "79161234567",
            "0201",
            "201",
            "+0",
            "00000",
            "99999999999999999",
            "+99999999999999999",
            "999999999999999999",
            "alice",
            "+7916123456x",
            "++7916",
            "",
        ] {
            let sql: Option<u64> = c
                .query_row(
                    &format!(
                        "SELECT {} FROM (SELECT ?::VARCHAR AS p)",
                        packed_key_sql("p")
                    ),
                    [party],
                    |r| r.get(0),
                )
                .unwrap();
            let rust = crate::state::party_key::party_key(party);
            let expect = (!crate::state::party_key::is_hashed(rust)).then_some(rust);
            assert_eq!(sql, expect, "{party:?}");
        }
    }
}
