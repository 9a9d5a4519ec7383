//! Cutting a byte buffer into records at explicit file offsets: one line
//! per record, or, for CSV sources (CDR), lines joined while a quoted field
//! is still open (Asterisk writes a raw newline inside `lastdata` as is).
//! Shared by the tailer and by `import`.

/// How records are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One record per `\n`-terminated line (queue_log).
    Lines,
    /// CSV: a record ends at a newline outside quotes (CDR files).
    Csv,
}

/// One complete record and where it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub offset: u64,
    /// 1-based number of the record's first physical line.
    pub line_no: u64,
    pub bytes: Vec<u8>,
}

/// What [`split_records`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub lines: Vec<Line>,
    /// Bytes of the buffer consumed (the rest waits for more data).
    pub used: usize,
    /// Physical lines consumed, in total, after the last record.
    pub line_no: u64,
}

/// Splits the records out of `buf`, which starts at file offset `base` after
/// `line_no` physical lines. A trailing piece without a newline (or, with
/// [`Framing::Csv`], an unterminated quoted field) is a record only when
/// `eof` says the file is finished, or when it is already longer than
/// `max_len` (it is handed on, to be rejected, rather than awaited forever).
pub fn split_records(
    buf: &[u8],
    base: u64,
    mut line_no: u64,
    max_lines: usize,
    max_len: usize,
    framing: Framing,
    eof: bool,
) -> Split {
    let mut lines = Vec::new();
    let mut pos = 0usize;
    while lines.len() < max_lines && pos < buf.len() {
        let mut scan = pos;
        let mut physical = 0u64;
        let end = loop {
            match memchr_nl(&buf[scan..]) {
                Some(i) => {
                    physical += 1;
                    let end = scan + i + 1;
                    let complete = framing == Framing::Lines
                        || calltrail_parsers::cdr::record_complete(&buf[pos..end]);
                    if complete || end - pos > max_len {
                        break Some(end);
                    }
                    scan = end;
                }
                None if eof => {
                    physical += 1;
                    break Some(buf.len());
                }
                None if buf.len() - pos > max_len => {
                    physical += 1;
                    break Some((pos + max_len + 1).max(scan).min(buf.len()));
                }
                None => break None,
            }
        };
        let Some(end) = end else { break };
        lines.push(Line {
            offset: base + pos as u64,
            line_no: line_no + 1,
            bytes: buf[pos..end].to_vec(),
        });
        line_no += physical;
        pos = end;
    }
    Split {
        lines,
        used: pos,
        line_no,
    }
}

/// Position of the first `\n`.
pub fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &Split) -> Vec<(u64, u64, &str)> {
        s.lines
            .iter()
            .map(|l| (l.offset, l.line_no, std::str::from_utf8(&l.bytes).unwrap()))
            .collect()
    }

    #[test]
    fn lines_hold_the_partial_tail() {
        let s = split_records(b"a\nbb\ncc", 10, 4, 100, 1000, Framing::Lines, false);
        assert_eq!(texts(&s), vec![(10, 5, "a\n"), (12, 6, "bb\n")]);
        assert_eq!((s.used, s.line_no), (5, 6));
        let s = split_records(b"a\nbb\ncc", 10, 4, 100, 1000, Framing::Lines, true);
        assert_eq!(s.lines.len(), 3);
        assert_eq!((s.used, s.line_no), (7, 7));
    }

    #[test]
    fn csv_joins_lines_inside_quotes() {
        let buf = b"\"a\",\"x\ny\",1\n\"b\",2\n\"c\",\"open";
        let s = split_records(buf, 0, 0, 100, 1000, Framing::Csv, false);
        assert_eq!(
            texts(&s),
            vec![(0, 1, "\"a\",\"x\ny\",1\n"), (12, 3, "\"b\",2\n")]
        );
        assert_eq!(s.line_no, 3);
        // At the end of a finished file the open record is handed on.
        let s = split_records(buf, 0, 0, 100, 1000, Framing::Csv, true);
        assert_eq!(s.lines.len(), 3);
        assert_eq!(s.line_no, 4);
    }

    #[test]
    fn overlong_records_are_cut() {
        let buf = vec![b'x'; 50];
        let s = split_records(&buf, 0, 0, 100, 10, Framing::Lines, false);
        assert_eq!(s.lines[0].bytes.len(), 11);
        let mut q = b"\"".to_vec();
        q.extend(std::iter::repeat_n(b"ab\n", 10).flatten());
        let s = split_records(&q, 0, 0, 100, 10, Framing::Csv, false);
        assert!(s.lines[0].bytes.len() <= 14, "{:?}", s.lines[0]);
    }

    #[test]
    fn max_lines_stops_early() {
        let s = split_records(b"1\n2\n3\n", 0, 0, 2, 100, Framing::Lines, false);
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.used, 4);
    }
}
