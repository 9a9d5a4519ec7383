//! Which parts of each input file are already in the store: per source and
//! file (first-line fingerprint), the byte ranges whose records — events,
//! rejects, blank lines — were committed. This is what lets `events` do
//! without a key: a batch is checked against a handful of ranges, and only
//! a batch that overlaps one (an import run twice, a `.gz` of a file already
//! tailed, recovery after a lost file — rare) is checked record by record
//! against the offsets stored ([`StoredOffsets`]): a record is a duplicate
//! when a record of the same file was stored at the same offset, exactly
//! what its event id says. (Two files whose first lines are equal — CSV
//! exports with the same header row — share a fingerprint; checking exact
//! offsets rather than ranges keeps the later one from being dropped
//! wholesale.)

use super::{db, StoreError};
use duckdb::{params, Connection};

/// The contiguous stretch of one file a batch of records was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// First-line fingerprint (hex), as in event ids.
    pub file_fp: String,
    /// Offset of the first record.
    pub start: u64,
    /// Offset just past the last record.
    pub end: u64,
    /// Offset of the last record.
    pub last: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u64,
    end: u64,
    last: u64,
}

/// The stored ranges of one file, sorted and disjoint.
#[derive(Debug, Clone, Default)]
pub struct Covered {
    ranges: Vec<Range>,
}

fn off(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn sql_off(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Covered {
    /// The ranges of `file_fp` stored for `source`.
    pub fn load(conn: &Connection, source: &str, file_fp: &str) -> Result<Covered, StoreError> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT start_offset, end_offset, last_offset FROM covered
                 WHERE source = ? AND file_fp = ? ORDER BY start_offset",
            )
            .map_err(db("preparing the covered-range scan"))?;
        let rows = stmt
            .query_map(params![source, file_fp], |r| {
                Ok(Range {
                    start: off(r.get(0)?),
                    end: off(r.get(1)?),
                    last: off(r.get(2)?),
                })
            })
            .map_err(db("reading covered ranges"))?;
        let mut ranges = Vec::new();
        for r in rows {
            ranges.push(r.map_err(db("reading a covered range"))?);
        }
        Ok(Covered { ranges })
    }

    /// Whether the record at `offset` is already stored.
    pub fn contains(&self, offset: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.end <= offset);
        self.ranges.get(i).is_some_and(|r| r.start <= offset)
    }

    /// Whether any of `[start, end)` is already stored.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.end <= start);
        self.ranges.get(i).is_some_and(|r| r.start < end)
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// `span` merged with the ranges it touches: (the merged range, the
    /// ranges it absorbs, the ranges it leaves as they are).
    fn merge(&self, span: &Span) -> (Range, Vec<Range>, Vec<Range>) {
        let mut merged = Range {
            start: span.start,
            end: span.end,
            last: span.last,
        };
        let mut absorbed = Vec::new();
        let mut kept = Vec::with_capacity(self.ranges.len() + 1);
        for r in &self.ranges {
            if r.start <= merged.end && merged.start <= r.end {
                merged.start = merged.start.min(r.start);
                if r.end > merged.end {
                    merged.end = r.end;
                    merged.last = r.last;
                }
                absorbed.push(*r);
            } else {
                kept.push(*r);
            }
        }
        (merged, absorbed, kept)
    }

    fn adopt(&mut self, merged: Range, mut kept: Vec<Range>) {
        kept.push(merged);
        kept.sort_by_key(|r| r.start);
        self.ranges = kept;
    }

    /// Records `span` as stored (merged with the ranges it touches), inside
    /// the caller's transaction; `self` must be what [`Covered::load`] read
    /// in that transaction and is updated to match.
    pub fn record(
        &mut self,
        conn: &Connection,
        source: &str,
        span: &Span,
    ) -> Result<(), StoreError> {
        if span.end <= span.start {
            return Ok(());
        }
        let (merged, absorbed, kept) = self.merge(span);
        let values = params![
            sql_off(merged.start),
            sql_off(merged.end),
            sql_off(merged.last),
            source,
            span.file_fp
        ];
        let exec = |sql: &str, p: &[&dyn duckdb::ToSql]| {
            conn.prepare_cached(sql).and_then(|mut st| st.execute(p))
        };
        const INSERT: &str =
            "INSERT INTO covered (start_offset, end_offset, last_offset, source, file_fp)
                              VALUES (?, ?, ?, ?, ?)";
        match absorbed.as_slice() {
            [] => exec(INSERT, values).map(drop),
            [one] => exec(
                "UPDATE covered SET start_offset = ?, end_offset = ?, last_offset = ?
                 WHERE source = ? AND file_fp = ? AND start_offset = ?",
                params![
                    sql_off(merged.start),
                    sql_off(merged.end),
                    sql_off(merged.last),
                    source,
                    span.file_fp,
                    sql_off(one.start)
                ],
            )
            .map(drop),
            many => {
                for r in many {
                    exec(
                        "DELETE FROM covered WHERE source = ? AND file_fp = ? AND start_offset = ?",
                        params![source, span.file_fp, sql_off(r.start)],
                    )
                    .map_err(db("merging covered ranges"))?;
                }
                exec(INSERT, values).map(drop)
            }
        }
        .map_err(db("recording a covered range"))?;
        self.adopt(merged, kept);
        Ok(())
    }

    /// [`Covered::record`] as SQL statements with the values written in
    /// (for a connection without parameter binding: the bulk import's raw
    /// one). `self` is updated as if they ran.
    pub fn record_sql(&mut self, source: &str, span: &Span) -> Vec<String> {
        if span.end <= span.start {
            return Vec::new();
        }
        let (merged, absorbed, kept) = self.merge(span);
        let (src, fp) = (sql_text(source), sql_text(&span.file_fp));
        let mut out: Vec<String> = absorbed
            .iter()
            .map(|r| {
                format!(
                    "DELETE FROM covered WHERE source = {src} AND file_fp = {fp} AND start_offset = {}",
                    sql_off(r.start)
                )
            })
            .collect();
        out.push(format!(
            "INSERT INTO covered (start_offset, end_offset, last_offset, source, file_fp) VALUES ({}, {}, {}, {src}, {fp})",
            sql_off(merged.start),
            sql_off(merged.end),
            sql_off(merged.last)
        ));
        self.adopt(merged, kept);
        out
    }
}

/// A SQL string literal of `s` (quotes doubled; names from the config and
/// hex fingerprints only).
fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The offsets at which records of one file are stored (events and
/// rejects), sorted: what a re-read batch is checked against.
#[derive(Debug, Clone, Default)]
pub struct StoredOffsets {
    offsets: Vec<u64>,
}

impl StoredOffsets {
    /// Reads them for `source`'s file `file_fp` (a scan of the source's
    /// events: used only when a batch overlaps what is covered).
    pub fn load(
        conn: &Connection,
        source: &str,
        file_fp: &str,
    ) -> Result<StoredOffsets, StoreError> {
        let prefix = format!("{source}:{file_fp}:");
        let mut stmt = conn
            .prepare_cached(
                "SELECT TRY_CAST(substr(event_id, ?) AS UBIGINT) FROM events
                 WHERE source = ? AND starts_with(event_id, ?)
                 UNION ALL
                 SELECT byte_offset FROM rejects WHERE source = ? AND file_fp = ?",
            )
            .map_err(db("preparing the stored-offsets scan"))?;
        let rows = stmt
            .query_map(
                params![
                    prefix.chars().count() as i64 + 1,
                    source,
                    prefix,
                    source,
                    file_fp
                ],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map_err(db("scanning stored offsets"))?;
        let mut offsets = Vec::new();
        for r in rows {
            if let Some(o) = r.map_err(db("reading a stored offset"))? {
                offsets.push(off(o));
            }
        }
        offsets.sort_unstable();
        offsets.dedup();
        Ok(StoredOffsets { offsets })
    }

    /// Whether a record of the file is stored at `offset`.
    pub fn contains(&self, offset: u64) -> bool {
        self.offsets.binary_search(&offset).is_ok()
    }
}

/// The byte offset in a line source's event id (`source:fp:offset`).
pub fn offset_of(event_id: &str) -> Option<u64> {
    event_id.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(super::super::schema::DDL).unwrap();
        c
    }

    fn span(start: u64, end: u64) -> Span {
        Span {
            file_fp: "00000000000000aa".into(),
            start,
            end,
            last: end - 1,
        }
    }

    #[test]
    fn contains_and_overlaps() {
        let c = store();
        let mut cov = Covered::load(&c, "s", "00000000000000aa").unwrap();
        assert!(!cov.contains(0));
        cov.record(&c, "s", &span(10, 20)).unwrap();
        cov.record(&c, "s", &span(30, 40)).unwrap();
        for (o, want) in [(9, false), (10, true), (19, true), (20, false), (35, true)] {
            assert_eq!(cov.contains(o), want, "offset {o}");
        }
        assert!(cov.overlaps(0, 11));
        assert!(!cov.overlaps(20, 30));
        assert!(cov.overlaps(25, 31));
        assert!(!cov.overlaps(40, 50));
        // What was written reads back the same.
        let again = Covered::load(&c, "s", "00000000000000aa").unwrap();
        assert_eq!(again.ranges, cov.ranges);
        assert!(Covered::load(&c, "other", "00000000000000aa")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn adjacent_and_bridging_ranges_merge() {
        let c = store();
        let mut cov = Covered::default();
        cov.record(&c, "s", &span(0, 10)).unwrap();
        cov.record(&c, "s", &span(10, 20)).unwrap(); // appended: extends
        assert_eq!(cov.ranges.len(), 1);
        cov.record(&c, "s", &span(30, 40)).unwrap();
        cov.record(&c, "s", &span(20, 30)).unwrap(); // bridges the gap
        let stored = Covered::load(&c, "s", "00000000000000aa").unwrap();
        assert_eq!(
            stored.ranges,
            vec![Range {
                start: 0,
                end: 40,
                last: 39
            }]
        );
        assert_eq!(stored.ranges, cov.ranges);
    }

    #[test]
    fn stored_offsets_are_exact() {
        let c = store();
        c.execute_batch(&super::super::schema::events_ddl())
            .unwrap();
        for id in [
            "s:00000000000000aa:0",
            "s:00000000000000aa:57",
            "s:00000000000000bb:10",
            "t:00000000000000aa:99",
        ] {
            c.execute(
                "INSERT INTO events (seq, event_id, source_kind, source, pbx, ts, kind, verb, ingested_at)
                 VALUES (1, ?, 'asterisk_queue_log', ?, 'p', now(), 'other', 'X', now())",
                params![id, id.split(':').next().unwrap()],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO rejects VALUES ('s:00000000000000aa:80', 's', '00000000000000aa', 80, 3, ''::BLOB, 'bad', now())",
            [],
        )
        .unwrap();
        let got = StoredOffsets::load(&c, "s", "00000000000000aa").unwrap();
        assert_eq!(got.offsets, vec![0, 57, 80]);
        assert!(got.contains(57) && !got.contains(58) && !got.contains(10) && !got.contains(99));
    }

    /// Two files with the same first line (CSV exports with one header row)
    /// share a fingerprint: the second one's records are stored, except one
    /// at an offset the first stored a record at (its event id is taken).
    #[test]
    fn a_second_file_with_the_same_fingerprint_is_not_dropped() {
        use calltrail_parsers::{Event, EventKind, SourceKind};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("s.duckdb")).unwrap();
        let fp = "00000000000000cc";
        let evs = |offs: &[u64]| -> Vec<Event> {
            offs.iter()
                .map(|o| {
                    let mut e = Event::new(
                        SourceKind::AsteriskCdrCsv,
                        "s".into(),
                        "p".into(),
                        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                        EventKind::CallRecord,
                        "CDR".into(),
                    );
                    e.event_id = format!("s:{fp}:{o}");
                    e
                })
                .collect()
        };
        let span = |end: u64, last: u64| Span {
            file_fp: fp.into(),
            start: 0,
            end,
            last,
        };
        let first = evs(&[30, 90]);
        let c = store
            .commit_batch("s", &first, &[], &[], None, Some(&span(150, 90)))
            .unwrap();
        assert_eq!((c.inserted, c.duplicates), (2, 0));
        // The same batch again (a replay): nothing new.
        let c = store
            .commit_batch("s", &first, &[], &[], None, Some(&span(150, 90)))
            .unwrap();
        assert_eq!((c.inserted, c.duplicates), (0, 2));
        // Another file, same header: 70 and 120 are new, 30 collides.
        let second = evs(&[30, 70, 120]);
        let c = store
            .commit_batch("s", &second, &[], &[], None, Some(&span(160, 120)))
            .unwrap();
        assert_eq!((c.inserted, c.duplicates), (2, 1));
    }

    #[test]
    fn record_sql_matches_record() {
        let c = store();
        let (mut a, mut b) = (Covered::default(), Covered::default());
        for (start, end) in [(0, 10), (30, 40), (10, 20), (20, 30), (50, 60)] {
            a.record(&c, "s", &span(start, end)).unwrap();
        }
        let c2 = store();
        for (start, end) in [(0, 10), (30, 40), (10, 20), (20, 30), (50, 60)] {
            for sql in b.record_sql("it's", &span(start, end)) {
                c2.execute_batch(&sql).unwrap();
            }
        }
        assert_eq!(a.ranges, b.ranges);
        assert_eq!(
            Covered::load(&c2, "it's", "00000000000000aa")
                .unwrap()
                .ranges,
            a.ranges
        );
    }

    #[test]
    fn event_id_offsets() {
        assert_eq!(offset_of("pbx1-queue:00000000000000aa:1234"), Some(1234));
        assert_eq!(offset_of("src:rec:7:v2"), None);
    }
}
