//! dBase III/IV and (Visual) FoxPro tables read from a byte snapshot, and
//! the WinTariff call mapping on top ([`wintariff`]).
//!
//! [`DbfTable::parse`] takes the whole file as bytes (the ingest layer
//! copies the file, since Windows writers hold locks, FORMATS.md §c.1) and
//! decodes records lazily. What it tolerates (§c.2, §c.3, §g.16–18):
//!
//! * header count and file size disagreeing while a writer is active: the
//!   usable count is the smaller of the header's count and
//!   `(size − header_length) / stride`; both are reported
//!   ([`DbfTable::header_record_count`], [`DbfTable::records_in_file`]) so
//!   the caller can log the difference. A partial last record is ignored;
//!   a `0x1A` where a record should start ends the table early;
//! * a missing `0x1A`, trailing junk ([`DbfTable::trailing_bytes`]);
//! * the VFP 263-byte backlink: records always start at `header_length`;
//! * a header record length shorter than the fields need: the stride
//!   follows the fields ([`DbfTable::record_stride`]);
//! * names with junk after the NUL, and non-ASCII (UTF-8 or code page) names;
//! * an unreliable LDID ([`codepage`]); blank and NUL-padded numbers.
//!
//! Memo files (`.dbt`, `.fpt`) are not read: a memo value is its block
//! number. Deleted rows are returned with [`DbfRecord::deleted`] set.
//!
//! # Why hand-written
//! The `dbase` crate (tmontaigu/dbase-rs) reads through `Read + Seek`,
//! trusts the header's record count (a table mid-append needs
//! `min(count, size)`), has no raw-record access for a content hash, and
//! decodes text through its own encoding features rather than our
//! [`Charset`]. Python's dbfread (the reference used here) stops at `0x1A`
//! and ignores the count. What we need is a few hundred lines over a byte
//! slice, so the header and descriptors are parsed with nom (the project's
//! parser crate) and the rest is plain slicing. (`dbase` is also not in the
//! dependency set; nothing new was added.)
//!
//! # Errors
//! Whole-table problems ([`DbfError`] from [`DbfTable::parse`]) mean the
//! snapshot cannot be read at all (not a DBF, header cut short). A record
//! whose delete flag is neither space nor `*` is an `Err` for that record
//! only; bad field bytes are [`DbfValue::Invalid`], never an error.

pub mod codepage;
mod field;
mod header;
mod record;
mod value;
pub mod wintariff;

pub use codepage::{guess_cyrillic, ldid_charset, CharsetChoice, CharsetSource};
pub use field::{Field, FieldType};
pub use header::TableHeader;
pub use record::{fnv1a64, DbfRecord, Records};
pub use value::DbfValue;
pub use wintariff::{CallTypeRule, WinTariffError, WinTariffMapper, WinTariffMapping};

use crate::text::Charset;
use field::FLAG_NULLABLE;

/// Cap on the text bytes sampled to guess an undeclared charset.
const GUESS_SAMPLE_BYTES: usize = 1 << 20;

/// Why a table (or one record) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbfError {
    #[error("file is {len} bytes, shorter than the 32-byte dBase header")]
    TooShort { len: usize },
    #[error("first byte 0x{version:02X} is not a dBase/FoxPro version byte: not a DBF table")]
    NotDbf { version: u8 },
    #[error("version byte 0x{version:02X} is dBase level 7 (48-byte field descriptors), which is not supported")]
    UnsupportedVersion { version: u8 },
    #[error("header length {header_length} is too small for the 32-byte header and the field terminator")]
    BadHeaderLength { header_length: u16 },
    #[error("header length is {header_length} bytes but the file has only {len}: snapshot cut inside the header")]
    TruncatedHeader { header_length: u16, len: usize },
    #[error("record length in the header is 0")]
    ZeroRecordLength,
    #[error("field descriptor {field} at byte {offset} runs past the header length {header_length} (no 0x0D terminator)")]
    FieldPastHeader {
        field: usize,
        offset: usize,
        header_length: u16,
    },
    #[error("record {index}: delete flag is 0x{flag:02X}, expected ' ' (live) or '*' (deleted)")]
    BadDeleteFlag { index: u32, flag: u8 },
}

/// A parsed table over a borrowed snapshot.
#[derive(Clone)]
pub struct DbfTable<'a> {
    data: &'a [u8],
    header: TableHeader,
    fields: Vec<Field>,
    /// Lower-cased names, for case-insensitive lookups.
    lower_names: Vec<String>,
    charset: Charset,
    charset_source: CharsetSource,
    stride: usize,
    records_in_file: u32,
    len: u32,
    /// Field index → its bit in `_NullFlags`, with the `_NullFlags` field.
    null_bits: Option<(usize, Vec<Option<usize>>)>,
}

impl<'a> DbfTable<'a> {
    /// Parses the header and field descriptors of the snapshot `data` and
    /// settles the charset (see [`codepage`]); `fallback` is used when the
    /// choice leaves it undecided.
    pub fn parse(
        data: &'a [u8],
        choice: CharsetChoice,
        fallback: Charset,
    ) -> Result<DbfTable<'a>, DbfError> {
        let header = header::parse_header(data)?;
        let raw_fields = header::parse_fields(data, &header)?;
        let lay = field::layout(&raw_fields, header.record_length);
        let hl = usize::from(header.header_length);
        let stride = lay.stride;
        let body = data.len().saturating_sub(hl);
        let records_in_file = u32::try_from(body / stride).unwrap_or(u32::MAX);
        let mut len = header.record_count.min(records_in_file);
        // A 0x1A where a record starts is the end of the table.
        for i in 0..len {
            let at = hl + i as usize * stride;
            if data.get(at) == Some(&0x1A) {
                len = i;
                break;
            }
        }

        let (charset, charset_source) = match choice {
            CharsetChoice::Fixed(cs) => (cs, CharsetSource::Fixed),
            _ => match ldid_charset(header.ldid) {
                Some(cs) => (cs, CharsetSource::Ldid),
                None if choice == CharsetChoice::Ldid => (fallback, CharsetSource::Fallback),
                None => {
                    let text_fields: Vec<(usize, usize)> = lay
                        .fields
                        .iter()
                        .filter(|f| f.field_type == FieldType::Character)
                        .map(|f| (f.offset, usize::from(f.length)))
                        .collect();
                    let mut budget = GUESS_SAMPLE_BYTES;
                    let names = raw_fields.iter().map(|f| f.name.as_slice());
                    let values = (0..len as usize)
                        .flat_map(|i| {
                            let rec = hl + i * stride;
                            text_fields
                                .iter()
                                .filter_map(move |&(off, n)| data.get(rec + off..rec + off + n))
                        })
                        .take_while(move |chunk| {
                            let go = budget > 0;
                            budget = budget.saturating_sub(chunk.len());
                            go
                        });
                    let sample: Vec<&[u8]> = names.chain(values).collect();
                    codepage::guess_table(sample.iter().copied(), fallback)
                }
            },
        };

        let mut fields = lay.fields;
        for (f, raw) in fields.iter_mut().zip(&raw_fields) {
            f.name = match std::str::from_utf8(&raw.name) {
                Ok(s) => s.to_string(),
                Err(_) => charset.decode(&raw.name).into_owned(),
            };
        }
        let lower_names = fields.iter().map(|f| f.name.to_lowercase()).collect();
        let null_bits = null_bit_map(&fields, header.is_visual_foxpro());

        Ok(DbfTable {
            data,
            header,
            fields,
            lower_names,
            charset,
            charset_source,
            stride,
            records_in_file,
            len,
            null_bits,
        })
    }

    pub fn header(&self) -> &TableHeader {
        &self.header
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Index of the first field named `name`, compared case-insensitively
    /// (Unicode lower case, so Cyrillic names work too).
    pub fn field_index(&self, name: &str) -> Option<usize> {
        let want = name.trim().to_lowercase();
        self.lower_names.iter().position(|n| *n == want)
    }

    /// The field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.field_index(name).map(|i| &self.fields[i])
    }

    /// The value of field `name` in `record` (case-insensitive).
    pub fn get<'r>(&self, record: &'r DbfRecord, name: &str) -> Option<&'r DbfValue> {
        self.field_index(name).and_then(|i| record.values.get(i))
    }

    /// Records that can be read: `min(header count, records in file)`,
    /// cut at an early `0x1A`.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record count the writer put in the header.
    pub fn header_record_count(&self) -> u32 {
        self.header.record_count
    }

    /// Whole records the file's size allows.
    pub fn records_in_file(&self) -> u32 {
        self.records_in_file
    }

    /// Bytes from one record to the next: the header's record length, or
    /// the fields' total (plus the delete flag) when that is longer.
    /// dbase-rs's `stations_with_deleted.dbf` declares 1016 for four
    /// 254-byte fields and its records really are 1017 bytes apart.
    /// Compare with `header().record_length` to log the disagreement.
    pub fn record_stride(&self) -> usize {
        self.stride
    }

    /// Bytes after the last readable record (`0x1A`, junk, a partial record).
    pub fn trailing_bytes(&self) -> usize {
        self.data.len().saturating_sub(
            usize::from(self.header.header_length) + self.len as usize * self.stride,
        )
    }

    /// The charset text is decoded with, and where it came from.
    pub fn charset(&self) -> Charset {
        self.charset
    }

    pub fn charset_source(&self) -> CharsetSource {
        self.charset_source
    }

    /// The raw bytes of record `index` (delete flag first), if readable.
    pub fn record_bytes(&self, index: u32) -> Option<&'a [u8]> {
        if index >= self.len {
            return None;
        }
        let start = usize::from(self.header.header_length) + index as usize * self.stride;
        self.data.get(start..start + self.stride)
    }

    /// The raw bytes of field `field` in record `index`.
    pub fn field_bytes(&self, index: u32, field: usize) -> Option<&'a [u8]> {
        let rec = self.record_bytes(index)?;
        let f = self.fields.get(field)?;
        rec.get(f.offset..f.offset + usize::from(f.length))
    }

    /// Decodes record `index`; `None` past the end.
    pub fn record(&self, index: u32) -> Option<Result<DbfRecord, DbfError>> {
        let raw = self.record_bytes(index)?;
        let deleted = match raw.first() {
            Some(b' ') => false,
            Some(b'*') => true,
            Some(&flag) => return Some(Err(DbfError::BadDeleteFlag { index, flag })),
            None => return None,
        };
        let nulls = self.null_bits.as_ref().and_then(|(nf, bits)| {
            let f = self.fields.get(*nf)?;
            let flags = raw.get(f.offset..f.offset + usize::from(f.length))?;
            Some((flags, bits))
        });
        let vfp = self.header.is_visual_foxpro();
        let values = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let is_null = nulls.is_some_and(|(flags, bits)| {
                    bits.get(i).copied().flatten().is_some_and(|bit| {
                        flags
                            .get(bit / 8)
                            .is_some_and(|b| b & (1 << (bit % 8)) != 0)
                    })
                });
                if is_null {
                    return DbfValue::Null;
                }
                let bytes = raw
                    .get(f.offset..f.offset + usize::from(f.length))
                    .unwrap_or_default();
                value::decode(f.field_type, bytes, self.charset, vfp)
            })
            .collect();
        Some(Ok(DbfRecord {
            index,
            deleted,
            hash: fnv1a64(raw),
            values,
        }))
    }

    /// All readable records in order.
    pub fn records(&self) -> Records<'_, 'a> {
        self.records_from(0)
    }

    /// Records from `start` on (a tailer re-reading the last N rows).
    pub fn records_from(&self, start: u32) -> Records<'_, 'a> {
        Records {
            table: self,
            next: start.min(self.len),
            end: self.len,
        }
    }
}

/// Everything but the snapshot bytes, which would flood a log.
impl std::fmt::Debug for DbfTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbfTable")
            .field("bytes", &self.data.len())
            .field("header", &self.header)
            .field("fields", &self.fields)
            .field("charset", &self.charset)
            .field("charset_source", &self.charset_source)
            .field("stride", &self.stride)
            .field("records_in_file", &self.records_in_file)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// VFP `_NullFlags`: each nullable field owns the next bit, in field order,
/// least significant bit of the first byte first. Varchar/varbinary (`V`,
/// `Q`) fields also take bits there, in an order we have no sample to
/// confirm, so with such fields NULLs are not interpreted.
fn null_bit_map(fields: &[Field], vfp: bool) -> Option<(usize, Vec<Option<usize>>)> {
    if !vfp {
        return None;
    }
    let nf = fields
        .iter()
        .position(|f| f.field_type == FieldType::NullFlags)?;
    if fields
        .iter()
        .any(|f| matches!(f.field_type, FieldType::Other(b'V' | b'Q')))
    {
        return None;
    }
    let mut next = 0usize;
    let bits = fields
        .iter()
        .map(|f| {
            (f.flags & FLAG_NULLABLE != 0 && f.field_type != FieldType::NullFlags).then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    Some((nf, bits))
}

#[cfg(test)]
mod tests;
