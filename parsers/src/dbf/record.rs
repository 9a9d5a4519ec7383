//! One decoded record, its content hash, and the iterator over a table.
//!
//! The hash lets a snapshot reader spot rows updated in place (WinTariff
//! fills CALLTYPE after the row appears, FORMATS.md §c.1, §c.3): keep
//! `(index, hash)` of recent rows and re-emit when the hash changes. It is
//! 64-bit FNV-1a over the record's raw bytes, delete flag included (so a
//! row that becomes deleted changes hash too). Unlike std's
//! `DefaultHasher`, FNV-1a is fixed by its definition, so hashes stay equal
//! across runs, builds and Rust versions and may be persisted.

use super::value::DbfValue;
use super::{DbfError, DbfTable};

/// One record.
#[derive(Clone, Debug, PartialEq)]
pub struct DbfRecord {
    /// Position in the table, 0-based (the dBase record number minus 1).
    pub index: u32,
    /// Marked deleted (`*`). Deleted rows stay until the table is packed.
    pub deleted: bool,
    /// [`fnv1a64`] of the raw record bytes.
    pub hash: u64,
    /// One value per field, in field order.
    pub values: Vec<DbfValue>,
}

impl DbfRecord {
    /// The value of field number `i`.
    pub fn value(&self, i: usize) -> Option<&DbfValue> {
        self.values.get(i)
    }
}

pub use crate::hash::fnv1a64;

/// Records `next..end` of a table, each decoded on demand.
#[derive(Debug, Clone)]
pub struct Records<'t, 'a> {
    pub(crate) table: &'t DbfTable<'a>,
    pub(crate) next: u32,
    pub(crate) end: u32,
}

impl Iterator for Records<'_, '_> {
    type Item = Result<DbfRecord, DbfError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        self.table.record(i)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end.saturating_sub(self.next)).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Records<'_, '_> {}
