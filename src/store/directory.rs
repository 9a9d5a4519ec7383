//! The directory of known numbers (`known_numbers`): its DDL and every read
//! and write of that table, as functions of a DuckDB connection.
//!
//! `number` is the key: the number normalized the way events' callers are
//! (`[numbers]`, see `src/numbers/`). An entry outside its validity
//! (`valid_from` ≤ now < `valid_until`, NULL = unbounded) acts as absent for
//! [`lookup`]. Times are UTC.

use super::{db, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use duckdb::{params, Connection, OptionalExt};

/// Applied by `Store::open`; idempotent.
pub const DIRECTORY_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS known_numbers (
    number      VARCHAR PRIMARY KEY,
    number_raw  VARCHAR NOT NULL,
    name        VARCHAR,
    company     VARCHAR,
    class       VARCHAR CHECK (class IN ('vip', 'blacklist', 'employee')),
    agent       VARCHAR,
    valid_from  TIMESTAMP,
    valid_until TIMESTAMP,
    note        VARCHAR,
    hits        BIGINT NOT NULL DEFAULT 0,
    last_hit_at TIMESTAMP,
    created_at  TIMESTAMP NOT NULL,
    created_by  VARCHAR NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    updated_by  VARCHAR NOT NULL
);
"#;

/// The fields of an entry a user sets (everything but the key and the
/// bookkeeping columns). `None` is NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// The number as entered.
    pub number_raw: String,
    pub name: Option<String>,
    pub company: Option<String>,
    /// `vip`, `blacklist` or `employee`.
    pub class: Option<String>,
    /// Preferred agent id.
    pub agent: Option<String>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

/// One row of `known_numbers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The normalized number (the key).
    pub number: String,
    pub fields: Fields,
    pub hits: i64,
    pub last_hit_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl Fields {
    /// Whether these fields make the entry count at `now`: `valid_from` ≤
    /// now < `valid_until`, a missing bound being unbounded.
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|f| f <= now) && self.valid_until.is_none_or(|u| now < u)
    }
}

/// What [`upsert_all`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertStats {
    pub added: usize,
    pub updated: usize,
}

/// Runs `f` on the store's connection (the directory's functions take a
/// connection; the store keeps its own behind a lock).
pub fn with_conn<T>(store: &Store, f: impl FnOnce(&Connection) -> T) -> T {
    f(&store.lock())
}

const COLUMNS: &str = "number, number_raw, name, company, class, agent,
    epoch_us(valid_from), epoch_us(valid_until), note, hits, epoch_us(last_hit_at),
    epoch_us(created_at), created_by, epoch_us(updated_at), updated_by";

fn time(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.and_then(DateTime::from_timestamp_micros)
}

fn entry(r: &duckdb::Row<'_>) -> duckdb::Result<Entry> {
    Ok(Entry {
        number: r.get(0)?,
        fields: Fields {
            number_raw: r.get(1)?,
            name: r.get(2)?,
            company: r.get(3)?,
            class: r.get(4)?,
            agent: r.get(5)?,
            valid_from: time(r.get(6)?),
            valid_until: time(r.get(7)?),
            note: r.get(8)?,
        },
        hits: r.get(9)?,
        last_hit_at: time(r.get(10)?),
        created_at: time(r.get(11)?).unwrap_or_default(),
        created_by: r.get(12)?,
        updated_at: time(r.get(13)?).unwrap_or_default(),
        updated_by: r.get(14)?,
    })
}

fn opt_ts(t: Option<DateTime<Utc>>) -> duckdb::types::Value {
    t.map_or(duckdb::types::Value::Null, ts)
}

/// The entry of `number` (normalized), valid or not.
pub fn get(conn: &Connection, number: &str) -> Result<Option<Entry>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM known_numbers WHERE number = ?"),
        params![number],
        entry,
    )
    .optional()
    .map_err(db("reading a known number"))
}

/// The entry of `number_key` when it is valid at `now`; an entry outside
/// its validity acts as absent.
pub fn lookup(
    conn: &Connection,
    number_key: &str,
    now: DateTime<Utc>,
) -> Result<Option<Entry>, StoreError> {
    Ok(get(conn, number_key)?.filter(|e| e.fields.valid_at(now)))
}

/// Every entry, by number.
pub fn list(conn: &Connection) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM known_numbers ORDER BY number"
        ))
        .map_err(db("preparing the known numbers scan"))?;
    let rows = stmt
        .query_map([], entry)
        .map_err(db("reading the known numbers"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(db("reading a known number"))
}

/// Adds `number` (normalized) with `fields`; `false` when it is already there.
pub fn insert(
    conn: &Connection,
    number: &str,
    fields: &Fields,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let f = fields;
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO known_numbers
                (number, number_raw, name, company, class, agent, valid_from, valid_until, note,
                 created_at, created_by, updated_at, updated_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                number,
                f.number_raw,
                f.name,
                f.company,
                f.class,
                f.agent,
                opt_ts(f.valid_from),
                opt_ts(f.valid_until),
                f.note,
                ts(now),
                by,
                ts(now),
                by
            ],
        )
        .map_err(db("adding a known number"))?;
    Ok(n > 0)
}

/// Replaces the fields of `number` (normalized), keeping `hits` and
/// `created_*`; `false` when it is absent.
pub fn update(
    conn: &Connection,
    number: &str,
    fields: &Fields,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let f = fields;
    let n = conn
        .execute(
            "UPDATE known_numbers SET number_raw = ?, name = ?, company = ?, class = ?, agent = ?,
                valid_from = ?, valid_until = ?, note = ?, updated_at = ?, updated_by = ?
             WHERE number = ?",
            params![
                f.number_raw,
                f.name,
                f.company,
                f.class,
                f.agent,
                opt_ts(f.valid_from),
                opt_ts(f.valid_until),
                f.note,
                ts(now),
                by,
                number
            ],
        )
        .map_err(db("changing a known number"))?;
    Ok(n > 0)
}

/// Adds lookups that matched entries: `(number, how many, the last one)`,
/// in one transaction (an entry removed meanwhile is skipped).
pub fn add_hits(
    conn: &Connection,
    hits: &[(String, i64, DateTime<Utc>)],
) -> Result<(), StoreError> {
    if hits.is_empty() {
        return Ok(());
    }
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(db("starting to count hits"))?;
    let result = hits.iter().try_for_each(|(number, n, at)| {
        conn.execute(
            "UPDATE known_numbers SET hits = hits + ?,
                 last_hit_at = greatest(coalesce(last_hit_at, ?), ?)
             WHERE number = ?",
            params![n, ts(*at), ts(*at), number],
        )
        .map(|_| ())
        .map_err(db("counting a hit"))
    });
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(db("committing hits")),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Removes `number` (normalized); `false` when it was absent.
pub fn remove(conn: &Connection, number: &str) -> Result<bool, StoreError> {
    let n = conn
        .execute(
            "DELETE FROM known_numbers WHERE number = ?",
            params![number],
        )
        .map_err(db("removing a known number"))?;
    Ok(n > 0)
}

/// Adds or replaces every `(number, fields)` in ONE transaction: all of
/// them or none.
pub fn upsert_all(
    conn: &Connection,
    rows: &[(String, Fields)],
    by: &str,
    now: DateTime<Utc>,
) -> Result<UpsertStats, StoreError> {
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(db("starting the directory import"))?;
    let mut stats = UpsertStats::default();
    let result = rows.iter().try_for_each(|(number, fields)| {
        if update(conn, number, fields, by, now)? {
            stats.updated += 1;
        } else {
            insert(conn, number, fields, by, now)?;
            stats.added += 1;
        }
        Ok::<_, StoreError>(())
    });
    match result {
        Ok(()) => {
            conn.execute_batch("COMMIT")
                .map_err(db("committing the directory import"))?;
            Ok(stats)
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
    use chrono::TimeZone;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(DIRECTORY_DDL).unwrap();
        c
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
    }

    fn fields(raw: &str) -> Fields {
        Fields {
            number_raw: raw.into(),
            name: Some("Ann".into()),
            class: Some("vip".into()),
            ..Fields::default()
        }
    }

    #[test]
    fn lookup_honours_the_validity() {
        let c = conn();
        let mut f = fields("8 916 000-00-01");
        f.valid_from = Some(at(8));
        f.valid_until = Some(at(18));
        assert!(insert(&c, "+79160000001", &f, "cli", at(0)).unwrap());
        assert!(lookup(&c, "+79160000001", at(7)).unwrap().is_none());
        let hit = lookup(&c, "+79160000001", at(8)).unwrap().unwrap();
        assert_eq!(hit.fields, f);
        assert_eq!(hit.hits, 0);
        assert!(lookup(&c, "+79160000001", at(17)).unwrap().is_some());
        // valid_until is exclusive.
        assert!(lookup(&c, "+79160000001", at(18)).unwrap().is_none());
        assert!(lookup(&c, "+79160000002", at(9)).unwrap().is_none());
        // Still there, just not valid.
        assert!(get(&c, "+79160000001").unwrap().is_some());
    }

    #[test]
    fn unbounded_sides_are_open() {
        let mut f = fields("1");
        assert!(f.valid_at(at(0)));
        f.valid_until = Some(at(5));
        assert!(f.valid_at(at(4)) && !f.valid_at(at(5)));
        f.valid_until = None;
        f.valid_from = Some(at(5));
        assert!(!f.valid_at(at(4)) && f.valid_at(at(23)));
    }

    #[test]
    fn insert_refuses_a_present_number_and_update_an_absent_one() {
        let c = conn();
        assert!(!update(&c, "201", &fields("201"), "cli:a", at(1)).unwrap());
        assert!(insert(&c, "201", &fields("201"), "cli:a", at(1)).unwrap());
        assert!(!insert(&c, "201", &fields("201"), "cli:b", at(2)).unwrap());
        let mut f = fields("201");
        f.name = None;
        assert!(update(&c, "201", &f, "cli:b", at(3)).unwrap());
        let e = get(&c, "201").unwrap().unwrap();
        assert_eq!(e.fields.name, None);
        assert_eq!((e.created_by.as_str(), e.created_at), ("cli:a", at(1)));
        assert_eq!((e.updated_by.as_str(), e.updated_at), ("cli:b", at(3)));
        assert!(remove(&c, "201").unwrap());
        assert!(!remove(&c, "201").unwrap());
        assert!(list(&c).unwrap().is_empty());
    }

    #[test]
    fn upsert_all_is_all_or_nothing() {
        let c = conn();
        insert(&c, "201", &fields("201"), "cli:a", at(1)).unwrap();
        let rows = vec![
            ("201".to_string(), fields("201")),
            ("202".to_string(), fields("202")),
        ];
        let s = upsert_all(&c, &rows, "cli:b", at(2)).unwrap();
        assert_eq!(
            s,
            UpsertStats {
                added: 1,
                updated: 1
            }
        );
        assert_eq!(get(&c, "201").unwrap().unwrap().created_by, "cli:a");
        // A row the table refuses (an unknown class) rolls back the others.
        let mut bad = fields("204");
        bad.class = Some("gold".into());
        let rows = vec![("203".to_string(), fields("203")), ("204".to_string(), bad)];
        assert!(upsert_all(&c, &rows, "cli:b", at(2)).is_err());
        let numbers: Vec<String> = list(&c).unwrap().into_iter().map(|e| e.number).collect();
        assert_eq!(numbers, ["201", "202"]);
    }
}
