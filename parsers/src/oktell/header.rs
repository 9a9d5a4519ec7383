//! The header row of an `A_Stat_Connections_1x1` export: which column is
//! where, and which delimiter the export uses.
//!
//! Column names are matched case-insensitively after trimming, with or without
//! brackets (`[Id]`) and with any table prefix dropped (`c.Id`,
//! `[dbo].[A_Stat_Connections_1x1].[Id]`). Columns in any order; unknown
//! columns are allowed (kept in the event's raw `data`). The delimiter is the
//! first of tab, `;`, `,`, `|` under which the line names every required
//! column.

use super::record::split;
use super::OktellError;

/// A column of `A_Stat_Connections_1x1` that the parser reads (FORMATS.md §d).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Id,
    IdChain,
    ConnectionType,
    TimeStart,
    TimeAnswer,
    TimeStop,
    ReasonStart,
    ReasonStop,
    StopSide,
    AOutNumber,
    BOutNumber,
    AStr,
    BStr,
    ALineId,
    BLineId,
    ALineNum,
    BLineNum,
    ANumberDialed,
    IsRecorded,
}

impl Column {
    /// How many columns there are.
    pub const COUNT: usize = 19;

    /// Every column, in the order of FORMATS.md §d.
    pub const ALL: [Column; Column::COUNT] = [
        Column::Id,
        Column::IdChain,
        Column::ConnectionType,
        Column::TimeStart,
        Column::TimeAnswer,
        Column::TimeStop,
        Column::ReasonStart,
        Column::ReasonStop,
        Column::StopSide,
        Column::AOutNumber,
        Column::BOutNumber,
        Column::AStr,
        Column::BStr,
        Column::ALineId,
        Column::BLineId,
        Column::ALineNum,
        Column::BLineNum,
        Column::ANumberDialed,
        Column::IsRecorded,
    ];

    /// The columns every export must have.
    pub const REQUIRED: [Column; 5] = [
        Column::Id,
        Column::IdChain,
        Column::ConnectionType,
        Column::TimeStart,
        Column::TimeStop,
    ];

    /// The column's name as Oktell spells it.
    pub fn name(self) -> &'static str {
        match self {
            Column::Id => "Id",
            Column::IdChain => "IdChain",
            Column::ConnectionType => "ConnectionType",
            Column::TimeStart => "TimeStart",
            Column::TimeAnswer => "TimeAnswer",
            Column::TimeStop => "TimeStop",
            Column::ReasonStart => "ReasonStart",
            Column::ReasonStop => "ReasonStop",
            Column::StopSide => "StopSide",
            Column::AOutNumber => "AOutNumber",
            Column::BOutNumber => "BOutNumber",
            Column::AStr => "AStr",
            Column::BStr => "BStr",
            Column::ALineId => "ALineID",
            Column::BLineId => "BLineID",
            Column::ALineNum => "ALineNum",
            Column::BLineNum => "BLineNum",
            Column::ANumberDialed => "ANumberDialed",
            Column::IsRecorded => "IsRecorded",
        }
    }

    /// The column a header cell names, if any (see the module docs).
    pub fn from_header(cell: &str) -> Option<Column> {
        let mut s = cell.trim();
        // `[dbo].[A_Stat_Connections_1x1].[Id]`, `c.Id`: the last part names the column.
        if let Some((_, last)) = s.rsplit_once('.') {
            s = last.trim();
        }
        let s = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(str::trim)
            .unwrap_or(s);
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Candidate delimiters, in the order they are tried.
pub(crate) const DELIMITERS: [u8; 4] = [b'\t', b';', b',', b'|'];

/// A detected header: the delimiter, the column names as written, and where
/// each known column is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) delimiter: u8,
    pub(crate) names: Vec<String>,
    pos: [Option<usize>; Column::COUNT],
}

impl Header {
    /// The field index of `c`, if the export has that column.
    pub(crate) fn get(&self, c: Column) -> Option<usize> {
        self.pos[c.index()]
    }

    /// Reads a header line (already decoded, BOM and terminator removed).
    pub(crate) fn detect(line: &str) -> Result<Header, OktellError> {
        // The candidate naming the most known columns explains a failure best.
        let mut best: Option<(usize, Header)> = None;
        for d in DELIMITERS {
            let Ok(names) = split(line, d) else { continue };
            let h = Header::from_names(names, d)?;
            if h.is_complete() {
                return Ok(h);
            }
            let known = h.pos.iter().flatten().count();
            if best.as_ref().is_none_or(|(k, _)| known > *k) {
                best = Some((known, h));
            }
        }
        match best {
            Some((known, h)) if known > 0 => {
                let missing = Column::REQUIRED
                    .into_iter()
                    .find(|c| h.get(*c).is_none())
                    .unwrap_or(Column::Id);
                Err(OktellError::MissingColumn {
                    name: missing.name(),
                })
            }
            _ => Err(OktellError::NoHeader {
                found: super::clip(line),
            }),
        }
    }

    /// Maps split header cells; a column named twice is an error (a joined
    /// query exporting two tables' `Id` would otherwise be read wrongly).
    pub(crate) fn from_names(names: Vec<String>, delimiter: u8) -> Result<Header, OktellError> {
        let mut pos = [None; Column::COUNT];
        for (i, n) in names.iter().enumerate() {
            if let Some(c) = Column::from_header(n) {
                if pos[c.index()].is_some() {
                    return Err(OktellError::DuplicateColumn { name: c.name() });
                }
                pos[c.index()] = Some(i);
            }
        }
        Ok(Header {
            delimiter,
            names,
            pos,
        })
    }

    /// True when the header names every required column.
    pub(crate) fn is_complete(&self) -> bool {
        Column::REQUIRED.iter().all(|c| self.get(*c).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: [&str; 5] = ["Id", "IdChain", "ConnectionType", "TimeStart", "TimeStop"];

    #[test]
    fn each_delimiter() {
        for (sep, d) in [(";", b';'), (",", b','), ("\t", b'\t'), ("|", b'|')] {
            let h = Header::detect(&MIN.join(sep)).unwrap();
            assert_eq!(h.delimiter, d, "{sep:?}");
            assert_eq!(h.get(Column::Id), Some(0));
            assert_eq!(h.get(Column::TimeStop), Some(4));
            assert_eq!(h.get(Column::TimeAnswer), None);
        }
    }

    #[test]
    fn names_brackets_case_quotes_prefixes() {
        let h = Header::detect(
            "[TimeStop];\"[IDCHAIN]\"; id ;c.ConnectionType;[dbo].[A_Stat_Connections_1x1].[timestart];alinenum;Extra",
        )
        .unwrap();
        assert_eq!(h.delimiter, b';');
        assert_eq!(h.get(Column::TimeStop), Some(0));
        assert_eq!(h.get(Column::IdChain), Some(1));
        assert_eq!(h.get(Column::Id), Some(2));
        assert_eq!(h.get(Column::ConnectionType), Some(3));
        assert_eq!(h.get(Column::TimeStart), Some(4));
        assert_eq!(h.get(Column::ALineNum), Some(5));
        assert_eq!(h.names[6], "Extra");
        assert_eq!(Column::from_header("[ALineID]"), Some(Column::ALineId));
        assert_eq!(Column::from_header("[ ALineID ]"), Some(Column::ALineId));
        assert_eq!(Column::from_header("ALine"), None);
        for c in Column::ALL {
            assert_eq!(Column::from_header(c.name()), Some(c));
            assert_eq!(Column::from_header(&c.name().to_uppercase()), Some(c));
        }
    }

    #[test]
    fn missing_duplicate_and_no_header() {
        assert_eq!(
            Header::detect("Id;IdChain;ConnectionType;TimeStart;TimeAnswer"),
            Err(OktellError::MissingColumn { name: "TimeStop" })
        );
        assert_eq!(
            Header::detect("Id,IdChain,Id,ConnectionType,TimeStart,TimeStop"),
            Err(OktellError::DuplicateColumn { name: "Id" })
        );
        assert!(matches!(
            Header::detect("1;{6F9619FF-8B86-D011-B42D-00C04FC964FF};5;2024-03-01 10:15:00;NULL"),
            Err(OktellError::NoHeader { .. })
        ));
        assert!(matches!(
            Header::detect(""),
            Err(OktellError::NoHeader { .. })
        ));
    }
}
