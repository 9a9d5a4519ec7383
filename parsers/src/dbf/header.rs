//! The 32-byte table header and the 32-byte field descriptors (nom).
//!
//! Layout per FORMATS.md §c.2. Only what is needed to find and decode the
//! records is validated: a known version byte, a header length that covers
//! the fixed header plus the terminator and lies inside the snapshot, a
//! non-zero record length, descriptors that end (0x0D) inside the header.
//! The header date is kept raw: writers disagree on the year (§g.18).

use super::DbfError;
use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u32, le_u8};
use nom::{IResult, Parser};

/// Size of the fixed header and of one field descriptor.
pub const BLOCK: usize = 32;

/// The fixed 32-byte header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableHeader {
    /// Byte 0: 0x03 dBase III, 0x30 Visual FoxPro, 0x83 dBase III + memo, …
    pub version: u8,
    /// Bytes 1–3 as written (year is years-since-1900 or two digits).
    pub last_update: [u8; 3],
    /// Bytes 4–7: the writer's record count (may lag the file, §c.3).
    pub record_count: u32,
    /// Bytes 8–9: offset of the first record.
    pub header_length: u16,
    /// Bytes 10–11: record length including the delete flag.
    pub record_length: u16,
    /// Byte 28: VFP table flags (0x01 .cdx, 0x02 memo, 0x04 .dbc).
    pub table_flags: u8,
    /// Byte 29: language driver id (code page mark).
    pub ldid: u8,
}

impl TableHeader {
    /// True for Visual FoxPro tables (0x30, 0x31, 0x32).
    pub fn is_visual_foxpro(&self) -> bool {
        matches!(self.version, 0x30..=0x32)
    }

    /// A human name for the version byte.
    pub fn version_name(&self) -> &'static str {
        version_name(self.version).unwrap_or("unknown")
    }
}

/// Version bytes we read (dbfread's table). dBase 7 (0x04, 0x8C) is not
/// among them: it has a 68-byte header and 48-byte descriptors.
fn version_name(v: u8) -> Option<&'static str> {
    Some(match v {
        0x02 | 0xFB => "FoxBASE",
        0x03 => "dBase III / FoxBASE+ without memo",
        0x05 => "dBase V without memo",
        0x30 => "Visual FoxPro",
        0x31 => "Visual FoxPro with autoincrement",
        0x32 => "Visual FoxPro with varchar/varbinary",
        0x43 => "dBase IV SQL table",
        0x63 => "dBase IV SQL system table",
        0x7B => "dBase IV with memo",
        0x83 => "dBase III / FoxBASE+ with memo",
        0x8B => "dBase IV with memo",
        0x8E => "dBase IV with SQL table",
        0xCB => "dBase IV SQL table with memo",
        0xE5 => "HiPer-Six with SMT memo",
        0xF5 => "FoxPro 2 with memo",
        _ => return None,
    })
}

/// One field descriptor, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawField {
    /// Name bytes up to the first NUL (junk after it dropped), trailing
    /// spaces trimmed; decoded later, once the table charset is known.
    pub name: Vec<u8>,
    /// Type letter (`C`, `N`, …) as a byte.
    pub field_type: u8,
    /// Byte 16.
    pub length: u8,
    /// Byte 17 (the high byte of the length for long C fields).
    pub decimal_count: u8,
    /// Byte 18: VFP field flags (0x01 system, 0x02 nullable, 0x04 binary).
    pub flags: u8,
}

fn header_block(i: &[u8]) -> IResult<&[u8], TableHeader> {
    let (i, (version, y, m, d)) = (le_u8, le_u8, le_u8, le_u8).parse(i)?;
    let (i, (record_count, header_length, record_length)) = (le_u32, le_u16, le_u16).parse(i)?;
    let (i, _reserved) = take(16usize).parse(i)?;
    let (i, (table_flags, ldid, _)) = (le_u8, le_u8, take(2usize)).parse(i)?;
    Ok((
        i,
        TableHeader {
            version,
            last_update: [y, m, d],
            record_count,
            header_length,
            record_length,
            table_flags,
            ldid,
        },
    ))
}

fn descriptor(i: &[u8]) -> IResult<&[u8], RawField> {
    let (i, (name, field_type, _offset, length, decimal_count, flags, _rest)) = (
        take(11usize),
        le_u8,
        take(4usize),
        le_u8,
        le_u8,
        le_u8,
        take(13usize),
    )
        .parse(i)?;
    let name = name.split(|b| *b == 0).next().unwrap_or_default();
    let end = name.iter().rposition(|b| *b != b' ').map_or(0, |p| p + 1);
    Ok((
        i,
        RawField {
            name: name[..end].to_vec(),
            field_type,
            length,
            decimal_count,
            flags,
        },
    ))
}

/// Parses the fixed header and checks it against the snapshot's size.
pub fn parse_header(data: &[u8]) -> Result<TableHeader, DbfError> {
    let (_, h) = header_block(data).map_err(|_| DbfError::TooShort { len: data.len() })?;
    if matches!(h.version, 0x04 | 0x8C) {
        return Err(DbfError::UnsupportedVersion { version: h.version });
    }
    if version_name(h.version).is_none() {
        return Err(DbfError::NotDbf { version: h.version });
    }
    let hl = usize::from(h.header_length);
    if hl < BLOCK + 1 {
        return Err(DbfError::BadHeaderLength {
            header_length: h.header_length,
        });
    }
    if hl > data.len() {
        return Err(DbfError::TruncatedHeader {
            header_length: h.header_length,
            len: data.len(),
        });
    }
    if h.record_length == 0 {
        return Err(DbfError::ZeroRecordLength);
    }
    Ok(h)
}

/// Reads descriptors from byte 32 until the 0x0D terminator (dbfread also
/// accepts 0x0A). They must end inside `header_length`; whatever follows
/// the terminator (the VFP 263-byte backlink) is skipped by the caller,
/// which always seeks to `header_length`. A header that reaches
/// `header_length` exactly at a descriptor boundary without a terminator is
/// accepted (some writers leave it out).
pub fn parse_fields(data: &[u8], header: &TableHeader) -> Result<Vec<RawField>, DbfError> {
    let hl = usize::from(header.header_length).min(data.len());
    let mut fields = Vec::new();
    let mut pos = BLOCK;
    loop {
        if pos == hl {
            break;
        }
        let Some(&first) = data.get(pos) else {
            break;
        };
        if first == 0x0D || first == 0x0A {
            break;
        }
        if pos + BLOCK > hl {
            return Err(DbfError::FieldPastHeader {
                field: fields.len(),
                offset: pos,
                header_length: header.header_length,
            });
        }
        let (_, f) = descriptor(&data[pos..hl]).map_err(|_| DbfError::FieldPastHeader {
            field: fields.len(),
            offset: pos,
            header_length: header.header_length,
        })?;
        fields.push(f);
        pos += BLOCK;
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(version: u8, count: u32, hl: u16, rl: u16, ldid: u8) -> Vec<u8> {
        let mut h = vec![0u8; 32];
        h[0] = version;
        h[1..4].copy_from_slice(&[124, 1, 2]);
        h[4..8].copy_from_slice(&count.to_le_bytes());
        h[8..10].copy_from_slice(&hl.to_le_bytes());
        h[10..12].copy_from_slice(&rl.to_le_bytes());
        h[29] = ldid;
        h
    }

    fn descriptor_bytes(name: &[u8], t: u8, len: u8, dec: u8) -> Vec<u8> {
        let mut d = vec![0u8; 32];
        d[..name.len()].copy_from_slice(name);
        d[11] = t;
        d[16] = len;
        d[17] = dec;
        d
    }

    #[test]
    fn header_and_fields() {
        let mut b = header_bytes(0x03, 2, 65, 11, 0x26);
        b.extend(descriptor_bytes(b"CALLTYPE\0xy", b'C', 10, 0));
        b.push(0x0D);
        let h = parse_header(&b).unwrap();
        assert_eq!(h.record_count, 2);
        assert_eq!(h.ldid, 0x26);
        assert_eq!(h.last_update, [124, 1, 2]);
        let f = parse_fields(&b, &h).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, b"CALLTYPE");
        assert_eq!(f[0].field_type, b'C');
        assert_eq!(f[0].length, 10);
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            parse_header(&[3u8; 10]),
            Err(DbfError::TooShort { len: 10 })
        );
        let b = header_bytes(0x04, 0, 65, 11, 0);
        assert!(matches!(
            parse_header(&b),
            Err(DbfError::UnsupportedVersion { .. })
        ));
        let b = header_bytes(0x99, 0, 65, 11, 0);
        assert!(matches!(
            parse_header(&b),
            Err(DbfError::NotDbf { version: 0x99 })
        ));
        let b = header_bytes(0x03, 0, 20, 11, 0);
        assert!(matches!(
            parse_header(&b),
            Err(DbfError::BadHeaderLength { .. })
        ));
        let b = header_bytes(0x03, 0, 65, 11, 0);
        assert!(matches!(
            parse_header(&b),
            Err(DbfError::TruncatedHeader { .. })
        ));
        let mut b = header_bytes(0x03, 0, 33, 0, 0);
        b.push(0x0D);
        assert_eq!(parse_header(&b), Err(DbfError::ZeroRecordLength));
    }

    #[test]
    fn descriptor_past_header_length() {
        let mut b = header_bytes(0x03, 0, 40, 11, 0);
        b.extend(descriptor_bytes(b"A", b'C', 10, 0));
        b.push(0x0D);
        let h = parse_header(&b).unwrap();
        assert!(matches!(
            parse_fields(&b, &h),
            Err(DbfError::FieldPastHeader {
                field: 0,
                offset: 32,
                ..
            })
        ));
        // No terminator, header ends right after the last descriptor: fine.
        let mut b = header_bytes(0x03, 0, 64, 11, 0);
        b.extend(descriptor_bytes(b"A", b'C', 10, 0));
        let h = parse_header(&b).unwrap();
        assert_eq!(parse_fields(&b, &h).unwrap().len(), 1);
    }
}
