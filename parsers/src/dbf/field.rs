//! Field descriptors after decoding: name, type, where the field sits in a
//! record, and how long records really are.
//!
//! Fields are laid out one after another after the 1-byte delete flag, in
//! descriptor order (dbfread does the same; the VFP displacement at
//! descriptor bytes 12–15 is reserved junk in dBase III files and is not
//! used). The record stride is the header's record length, except when the
//! fields need more than it says: then the fields win (dbase-rs's own
//! `stations_with_deleted.dbf` declares 1016 for four 254-byte fields,
//! and its records really are 1017 bytes apart).

use super::header::RawField;

/// A field's type letter, named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `C`: text, space-padded.
    Character,
    /// `N`: ASCII number, right-aligned, may be blank or NUL-padded.
    Numeric,
    /// `F`: ASCII float (as `N`).
    Float,
    /// `D`: `YYYYMMDD`.
    Date,
    /// `L`: `T/F/Y/N/?`/space.
    Logical,
    /// `I`: little-endian i32 (VFP).
    Integer,
    /// `T`: VFP datetime, two little-endian i32: Julian day and milliseconds.
    DateTime,
    /// `B`: VFP double (8 bytes), or a dBase IV binary memo reference.
    Double,
    /// `Y`: VFP currency, little-endian i64 in ten-thousandths.
    Currency,
    /// `M`: memo block reference (ASCII in dBase, 4-byte binary in VFP).
    Memo,
    /// `G` (OLE general) or `P` (picture): memo references too.
    BlobMemo,
    /// `0`: VFP `_NullFlags` system field.
    NullFlags,
    /// Anything else (`V`, `Q`, `+`, `@`, `O`, …): kept as raw bytes.
    Other(u8),
}

impl FieldType {
    pub fn from_byte(b: u8) -> FieldType {
        match b.to_ascii_uppercase() {
            b'C' => FieldType::Character,
            b'N' => FieldType::Numeric,
            b'F' => FieldType::Float,
            b'D' => FieldType::Date,
            b'L' => FieldType::Logical,
            b'I' => FieldType::Integer,
            b'T' => FieldType::DateTime,
            b'B' => FieldType::Double,
            b'Y' => FieldType::Currency,
            b'M' => FieldType::Memo,
            b'G' | b'P' => FieldType::BlobMemo,
            b'0' => FieldType::NullFlags,
            _ => FieldType::Other(b),
        }
    }

    /// The type letter as written in dBase documentation.
    pub fn letter(self) -> char {
        match self {
            FieldType::Character => 'C',
            FieldType::Numeric => 'N',
            FieldType::Float => 'F',
            FieldType::Date => 'D',
            FieldType::Logical => 'L',
            FieldType::Integer => 'I',
            FieldType::DateTime => 'T',
            FieldType::Double => 'B',
            FieldType::Currency => 'Y',
            FieldType::Memo => 'M',
            FieldType::BlobMemo => 'G',
            FieldType::NullFlags => '0',
            FieldType::Other(b) => char::from(b),
        }
    }
}

/// VFP field flag: the field may hold NULL (a bit in `_NullFlags`).
pub const FLAG_NULLABLE: u8 = 0x02;

/// One field of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Decoded name (UTF-8 when the bytes are valid UTF-8, else the table
    /// charset), NUL padding and trailing spaces removed.
    pub name: String,
    pub field_type: FieldType,
    /// Length in bytes; for long `C` fields this includes the high byte
    /// some writers keep in the decimal count.
    pub length: u16,
    pub decimal_count: u8,
    /// VFP field flags (byte 18).
    pub flags: u8,
    /// Offset from the start of the record (the delete flag is byte 0).
    pub offset: usize,
}

/// Fields with their offsets, and the record stride.
#[derive(Debug)]
pub(crate) struct Layout {
    /// The fields, with names still empty (decoded once the table charset
    /// is known).
    pub fields: Vec<Field>,
    /// Bytes from one record to the next.
    pub stride: usize,
}

/// Lays the fields out and picks the stride (see the module docs).
///
/// Long `C` fields: dbfread takes the decimal count of every `C` field as
/// the length's high byte. We do that only when the result still fits the
/// header's record length, so a writer that leaves junk in the decimal
/// count of a short `C` field does not blow the layout up.
pub(crate) fn layout(raw: &[RawField], record_length: u16) -> Layout {
    let plain = |f: &RawField| u16::from(f.length);
    let extended = |f: &RawField| {
        if FieldType::from_byte(f.field_type) == FieldType::Character {
            u16::from(f.length) | (u16::from(f.decimal_count) << 8)
        } else {
            u16::from(f.length)
        }
    };
    let total = |len: &dyn Fn(&RawField) -> u16| -> usize {
        1 + raw.iter().map(|f| usize::from(len(f))).sum::<usize>()
    };
    let use_extended = total(&extended) <= usize::from(record_length);
    let mut fields = Vec::with_capacity(raw.len());
    let mut offset = 1usize;
    for f in raw {
        let ty = FieldType::from_byte(f.field_type);
        let (len, dec) = if use_extended && ty == FieldType::Character {
            (extended(f), 0)
        } else {
            (plain(f), f.decimal_count)
        };
        fields.push(Field {
            name: String::new(),
            field_type: ty,
            length: len,
            decimal_count: dec,
            flags: f.flags,
            offset,
        });
        offset += usize::from(len);
    }
    Layout {
        fields,
        stride: offset.max(usize::from(record_length)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(t: u8, len: u8, dec: u8) -> RawField {
        RawField {
            name: b"X".to_vec(),
            field_type: t,
            length: len,
            decimal_count: dec,
            flags: 0,
        }
    }

    #[test]
    fn long_character_fields() {
        // 300-byte C field: length 44, decimal count 1.
        let l = layout(&[raw(b'C', 44, 1), raw(b'N', 5, 0)], 306);
        assert_eq!(l.fields[0].length, 300);
        assert_eq!(l.fields[0].decimal_count, 0);
        assert_eq!(l.fields[1].offset, 301);
        assert_eq!(l.stride, 306);
        // Junk in the decimal count of a short C field is ignored.
        let l = layout(&[raw(b'C', 10, 2)], 11);
        assert_eq!(l.fields[0].length, 10);
        assert_eq!(l.stride, 11);
    }

    #[test]
    fn stride_is_never_shorter_than_the_fields() {
        let l = layout(&[raw(b'C', 254, 0), raw(b'C', 254, 0)], 508);
        assert_eq!(l.stride, 509);
        // A longer header record length (padding) is kept.
        let l = layout(&[raw(b'C', 5, 0)], 10);
        assert_eq!(l.stride, 10);
    }

    #[test]
    fn letters_round_trip() {
        for c in "CNFDLITBYM0".bytes() {
            assert_eq!(FieldType::from_byte(c).letter(), char::from(c));
        }
        assert_eq!(FieldType::from_byte(b'V'), FieldType::Other(b'V'));
        assert_eq!(FieldType::from_byte(b'c'), FieldType::Character);
    }
}
