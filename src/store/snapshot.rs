//! Per-row state of snapshot sources (WinTariff DBF tables, Oktell exports)
//! and the one transaction that stores a snapshot's events, rejects and the
//! row states that produced them.
//!
//! A snapshot source has no byte offset to checkpoint: its checkpoint is the
//! `snapshot_rows` table (one row per record identity, see
//! `src/snapshot/dbf.rs` and `src/snapshot/oktell.rs`). Committing the
//! events together with the new states means a crash either keeps both or
//! neither, so a restart resumes exactly: nothing re-emitted, nothing lost.

use super::{db, ts, CommitStats, RejectRow, Store, StoreError};
use calltrail_parsers::Event;
use chrono::{DateTime, Utc};
use duckdb::params;

/// Applied by [`Store::ensure_snapshot_schema`]; idempotent.
pub const SNAPSHOT_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS snapshot_rows (
    source         VARCHAR NOT NULL,
    row_id         VARCHAR NOT NULL,
    record_index   BIGINT NOT NULL,
    key_hash       UBIGINT NOT NULL,
    row_hash       UBIGINT NOT NULL,
    emitted_hash   UBIGINT,
    version        INTEGER NOT NULL,
    deleted        BOOLEAN NOT NULL,
    marked_deleted BOOLEAN NOT NULL,
    first_seen_at  TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, row_id)
);
"#;

/// What calltrail knows about one row of a snapshot source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowState {
    /// The row's identity within the source (DBF: `<first index>:<key hash>`;
    /// Oktell: the leg `Id`).
    pub row_id: String,
    /// Where it was last seen (DBF record index; Oktell line number).
    pub record_index: u64,
    /// Hash of the identity columns (DBF), 0 for Oktell.
    pub key_hash: u64,
    /// Content hash last seen (delete flag excluded).
    pub row_hash: u64,
    /// Content hash last handled (emitted, or rejected); `None` = not yet.
    pub emitted_hash: Option<u64>,
    /// Versions emitted so far (0 = nothing emitted yet).
    pub version: u32,
    /// The row is marked deleted in the last snapshot.
    pub deleted: bool,
    /// A deletion marker was emitted for the current deletion.
    pub marked_deleted: bool,
    pub first_seen_at: DateTime<Utc>,
}

impl Store {
    /// Creates the `snapshot_rows` table if needed.
    pub fn ensure_snapshot_schema(&self) -> Result<(), StoreError> {
        self.lock()
            .execute_batch(SNAPSHOT_DDL)
            .map_err(db("creating the snapshot_rows table"))
    }

    /// Every stored row state of `source`.
    pub fn snapshot_rows(&self, source: &str) -> Result<Vec<RowState>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT row_id, record_index, key_hash, row_hash, emitted_hash, version, deleted, marked_deleted,
                        epoch_us(first_seen_at)
                 FROM snapshot_rows WHERE source = ? ORDER BY record_index, row_id",
            )
            .map_err(db("preparing the snapshot state scan"))?;
        let rows = stmt
            .query_map(params![source], |r| {
                let first_us: i64 = r.get(8)?;
                Ok(RowState {
                    row_id: r.get(0)?,
                    record_index: u64::try_from(r.get::<_, i64>(1)?).unwrap_or_default(),
                    key_hash: r.get(2)?,
                    row_hash: r.get(3)?,
                    emitted_hash: r.get(4)?,
                    version: u32::try_from(r.get::<_, i32>(5)?).unwrap_or_default(),
                    deleted: r.get(6)?,
                    marked_deleted: r.get(7)?,
                    first_seen_at: DateTime::from_timestamp_micros(first_us).unwrap_or_default(),
                })
            })
            .map_err(db("scanning the snapshot state"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db("reading a snapshot row state"))
    }

    /// Commits one snapshot's outcome atomically: events, rejects and the
    /// row states that changed. `states` must name each row at most once.
    ///
    /// A first read of a large table produces one event and one state per
    /// row, so events and states are bulk-loaded with DuckDB's appender into
    /// this connection's TEMP staging tables first (not durable, cleared
    /// every time) and moved into `events` / `snapshot_rows` by two
    /// set-based statements inside the one transaction.
    pub fn commit_snapshot(
        &self,
        source: &str,
        events: &[Event],
        rejects: &[RejectRow],
        states: &[RowState],
    ) -> Result<CommitStats, StoreError> {
        let r = self.commit_snapshot_now(source, events, rejects, states);
        if r.is_err() {
            self.commit_failed();
        }
        self.noted(&format!("storing a snapshot of {source}"), r)
    }

    fn commit_snapshot_now(
        &self,
        source: &str,
        events: &[Event],
        rejects: &[RejectRow],
        states: &[RowState],
    ) -> Result<CommitStats, StoreError> {
        let now = Utc::now();
        let _serial = self.commit_guard();
        let mut conn = self.lock();
        self.settle_seq(&conn)?;
        conn.execute_batch(STAGE_DDL)
            .map_err(db("preparing the staging tables"))?;
        let first = self.peek_seq();
        super::events::stage(&conn, events, now, first)?;
        {
            let mut app = conn
                .appender_to_catalog_and_db("snapshot_rows_stage", "temp", "main")
                .map_err(db("opening the state stage"))?;
            for s in states {
                app.append_row(params![
                    source,
                    s.row_id,
                    i64::try_from(s.record_index).unwrap_or(i64::MAX),
                    s.key_hash,
                    s.row_hash,
                    s.emitted_hash,
                    s.version,
                    s.deleted,
                    s.marked_deleted,
                    ts(s.first_seen_at),
                    ts(now)
                ])
                .map_err(db("staging a snapshot row state"))?;
            }
            app.flush().map_err(db("staging snapshot row states"))?;
        }
        let tx = conn.transaction().map_err(db("starting a transaction"))?;
        let mut stats = CommitStats::default();
        if !events.is_empty() {
            stats.inserted = super::events::insert_staged_new(&tx, source)?;
            stats.duplicates = events.len().saturating_sub(stats.inserted);
        }
        stats.rejects = super::insert_rejects(&tx, source, rejects, now)?;
        if !states.is_empty() {
            tx.execute(
                "INSERT OR REPLACE INTO snapshot_rows SELECT * FROM temp.snapshot_rows_stage",
                [],
            )
            .map_err(db("writing snapshot row states"))?;
        }
        tx.commit().map_err(db("committing the snapshot"))?;
        // Skipped ids leave gaps in `seq`; the next batch starts after them.
        self.advance_seq(events.len());
        self.recent_forget();
        conn.execute_batch(
            "DROP TABLE IF EXISTS temp.events_stage; DROP TABLE IF EXISTS temp.snapshot_rows_stage;",
        )
            .map_err(db("clearing the staging tables"))?;
        Ok(stats)
    }
}

/// Per-connection staging tables (TEMP: never written to the file).
const STAGE_DDL: &str = "
CREATE OR REPLACE TEMP TABLE snapshot_rows_stage AS
    SELECT * FROM snapshot_rows LIMIT 0;
";

#[cfg(test)]
mod tests {
    use super::*;
    use calltrail_parsers::{EventKind, SourceKind};

    fn state(i: u64) -> RowState {
        RowState {
            row_id: format!("{i}:abc"),
            record_index: i,
            key_hash: i * 7,
            row_hash: u64::MAX - i,
            emitted_hash: i.is_multiple_of(2).then_some(i),
            version: 1,
            deleted: i == 3,
            marked_deleted: false,
            first_seen_at: DateTime::from_timestamp_micros(1_700_000_000_000_000 + i as i64)
                .unwrap_or_default(),
        }
    }

    fn event(i: usize) -> Event {
        let mut e = Event::new(
            SourceKind::OktellCsv,
            "s".into(),
            "p".into(),
            Utc::now(),
            EventKind::CallRecord,
            "OKTELL".into(),
        );
        e.event_id = format!("s:leg:{i}:v1");
        e.talk_s = Some(i as u32);
        e.data = vec!["a".into(), "b".into()];
        e
    }

    #[test]
    fn states_round_trip_and_events_land_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.duckdb")).unwrap();
        store.ensure_snapshot_schema().unwrap();
        let states: Vec<RowState> = (0..500).map(state).collect();
        let events: Vec<Event> = (0..500).map(event).collect();
        let c = store.commit_snapshot("s", &events, &[], &states).unwrap();
        assert_eq!((c.inserted, c.duplicates), (500, 0));
        // Replayed (a crash before the engine took the states): nothing new.
        let c = store.commit_snapshot("s", &events, &[], &states).unwrap();
        assert_eq!((c.inserted, c.duplicates), (0, 500));
        let mut changed = state(7);
        changed.version = 2;
        store
            .commit_snapshot("s", &[], &[], &[changed.clone()])
            .unwrap();

        let back = store.snapshot_rows("s").unwrap();
        assert_eq!(back.len(), 500);
        assert_eq!(back[3], state(3));
        assert_eq!(back[7], changed);
        assert!(store.snapshot_rows("other").unwrap().is_empty());
        // Events got their seq in the order given, and all their fields.
        let got = store.events_after(0, 1000).unwrap();
        assert_eq!(got.len(), 500);
        for (i, (_, e)) in got.iter().enumerate() {
            assert_eq!(e.event_id, format!("s:leg:{i}:v1"));
            assert_eq!(e.talk_s, Some(i as u32));
            assert_eq!(e.data, vec!["a".to_string(), "b".to_string()]);
        }
    }
}
