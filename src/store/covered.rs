//! Which parts of each input file are already in the store: per source and
//! file (first-line fingerprint), the byte ranges whose records — events,
//! rejects, blank lines — were committed. This is what keeps a re-read
//! (an import run twice, a `.gz` of a file already tailed, recovery after a
//! lost file) from storing a line twice, without a key on `events`: a batch
//! is checked against a handful of ranges instead of every row against an
//! index.

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
        kept.push(merged);
        kept.sort_by_key(|r| r.start);
        self.ranges = kept;
        Ok(())
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
    fn event_id_offsets() {
        assert_eq!(offset_of("pbx1-queue:00000000000000aa:1234"), Some(1234));
        assert_eq!(offset_of("src:rec:7:v2"), None);
    }
}
