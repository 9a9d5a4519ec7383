//! CSV field splitting for one CDR record, with exactly the quoting rules of
//! the `csv` crate's default reader (RFC 4180 plus its leniencies), but
//! without building a reader per line and without allocating per record.
//!
//! Rules (the same state machine as `csv_core`; the unit tests check the two
//! agree on random input):
//! - `,` separates fields; a field that *starts* with `"` is quoted and runs
//!   to the next lone `"`; inside it `""` is one `"`, and `,`, CR and LF are
//!   plain data (Asterisk writes CR/LF raw, unescaped);
//! - a bare empty field (`,,`, cdr_csv's unanswered `answer`) and a quoted
//!   empty one (`""`, cdr_custom's) are both the empty string;
//! - leniencies: a `"` inside an unquoted field is data (`O"Brien`), and
//!   bytes after a closing quote continue the field (`"ab"c` → `abc`);
//! - the record terminator (LF or CRLF, any run of CR/LF at either end) is
//!   stripped first ([`trim_terminators`]); a stray CR or LF left in the
//!   middle outside quotes is field data (where `csv` would start a new
//!   record: the ingest layer splits on LF, so it can only be a lone CR);
//! - a quoted field still open at the end of the input is an error
//!   ([`CdrError::UnterminatedQuote`]) rather than silently closed.

use super::error::CdrError;

/// The fields of one record: unquoted bytes in one reusable buffer, plus
/// the end offset of each field (like `csv::ByteRecord`).
#[derive(Debug, Default)]
pub(crate) struct Fields {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a field.
    Start,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a `"` inside a quoted field: `""`, the closing quote, or junk.
    QuoteInQuoted,
}

impl Fields {
    /// Splits `line` (terminator already stripped) into fields, replacing
    /// the previous contents.
    pub(crate) fn split(&mut self, line: &[u8]) -> Result<(), CdrError> {
        self.buf.clear();
        self.ends.clear();
        let mut st = State::Start;
        let mut i = 0;
        while i < line.len() {
            match st {
                State::Start | State::Unquoted => {
                    if st == State::Start && line[i] == b'"' {
                        st = State::Quoted;
                        i += 1;
                        continue;
                    }
                    // Copy up to the next delimiter in one go.
                    let rest = &line[i..];
                    match rest.iter().position(|&b| b == b',') {
                        Some(p) => {
                            self.buf.extend_from_slice(&rest[..p]);
                            self.ends.push(self.buf.len());
                            st = State::Start;
                            i += p + 1;
                        }
                        None => {
                            self.buf.extend_from_slice(rest);
                            st = State::Unquoted;
                            i = line.len();
                        }
                    }
                }
                State::Quoted => {
                    let rest = &line[i..];
                    match rest.iter().position(|&b| b == b'"') {
                        Some(p) => {
                            self.buf.extend_from_slice(&rest[..p]);
                            st = State::QuoteInQuoted;
                            i += p + 1;
                        }
                        None => return Err(CdrError::UnterminatedQuote),
                    }
                }
                State::QuoteInQuoted => {
                    let b = line[i];
                    i += 1;
                    if b == b'"' {
                        self.buf.push(b'"');
                        st = State::Quoted;
                    } else if b == b',' {
                        self.ends.push(self.buf.len());
                        st = State::Start;
                    } else {
                        self.buf.push(b);
                        st = State::Unquoted;
                    }
                }
            }
        }
        if st == State::Quoted {
            return Err(CdrError::UnterminatedQuote);
        }
        self.ends.push(self.buf.len());
        Ok(())
    }

    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i` (unquoted bytes); empty when out of range.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let Some(&end) = self.ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..end]
    }

    /// All fields in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// Strips a UTF-8 BOM and the record terminator (any run of CR/LF at either
/// end) from a physical line.
pub(crate) fn trim_terminators(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let start = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(start, |p| p + 1);
    &raw[start..end]
}

/// True when `buf` holds a whole record: no quoted field is left open.
///
/// Asterisk does not escape a raw CR/LF inside a quoted `lastdata` or
/// `userfield`, so such a record spans several physical lines; the ingest
/// layer keeps appending lines (bounded by a maximum record size) until this
/// returns true. A `"` counts as an opening quote only at the start of a
/// field, as in the parser, so `O"Brien` in an unquoted field is complete.
pub fn record_complete(buf: &[u8]) -> bool {
    let buf = trim_terminators(buf);
    if !buf.contains(&b'"') {
        return true;
    }
    let mut st = State::Start;
    for &b in buf {
        st = match (st, b) {
            (State::Start, b'"') => State::Quoted,
            (State::Start | State::Unquoted, b',') => State::Start,
            (State::Start | State::Unquoted, _) => State::Unquoted,
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (State::QuoteInQuoted, b',') => State::Start,
            (State::QuoteInQuoted, _) => State::Unquoted,
        };
    }
    st != State::Quoted
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, CdrError> {
        let mut f = Fields::default();
        f.split(trim_terminators(line))?;
        Ok(f.iter().map(<[u8]>::to_vec).collect())
    }

    fn strs(line: &str) -> Vec<String> {
        split(line.as_bytes())
            .unwrap()
            .into_iter()
            .map(|f| String::from_utf8(f).unwrap())
            .collect()
    }

    #[test]
    fn quoting_rules() {
        // cdr_csv: quoted strings, unquoted ints, bare empty answer
        assert_eq!(
            strs(r#""","201","2024-01-01 00:00:00",,27,"X""#),
            ["", "201", "2024-01-01 00:00:00", "", "27", "X"]
        );
        // doubled quotes inside a quoted clid
        assert_eq!(strs(r#""""Name"" <201>",x"#), [r#""Name" <201>"#, "x"]);
        assert_eq!(strs(r#"""""" <client1>""#), [r#""" <client1>"#]);
        // commas inside quotes
        assert_eq!(
            strs(r#""SIP/301&SIP/200,60,t",1"#),
            ["SIP/301&SIP/200,60,t", "1"]
        );
        // trailing empty field, leading empty field, single empty field
        assert_eq!(strs("a,"), ["a", ""]);
        assert_eq!(strs(",a"), ["", "a"]);
        assert_eq!(strs(r#""""#), [""]);
        // minimal quoting with a literal quote mid-field, junk after a closing quote
        assert_eq!(strs(r#"O"Brien,"ab"c,d"#), [r#"O"Brien"#, "abc", "d"]);
    }

    #[test]
    fn terminators_and_raw_newlines() {
        assert_eq!(strs("a,b\r\n"), ["a", "b"]);
        assert_eq!(strs("a,b\n"), ["a", "b"]);
        assert_eq!(strs("\u{feff}a,b\r\n"), ["a", "b"]);
        // a raw CR/LF inside a quoted lastdata is data
        assert_eq!(strs("\"x\r\ny\",z\n"), ["x\r\ny", "z"]);
        assert_eq!(split(b"\"abc,d\n"), Err(CdrError::UnterminatedQuote));
        assert_eq!(split(b"a,\"b\"\"\n"), Err(CdrError::UnterminatedQuote));
    }

    #[test]
    fn completeness() {
        assert!(record_complete(b""));
        assert!(record_complete(b"\"a\",\"b\"\n"));
        assert!(!record_complete(b"\"a\",\"b\n"));
        assert!(record_complete(b"\"a\",\"b\nc\"\n"));
        assert!(record_complete(b"O\"Brien,1\n"));
        assert!(!record_complete(b"\"\"\"Name\"\" <1>\n"));
        assert!(record_complete(b"\"\"\"Name\"\" <1>\"\n"));
        // a record continued over two physical lines
        let mut buf = b"\"\",\"201\",\"Playback\",\"line one\n".to_vec();
        assert!(!record_complete(&buf));
        buf.extend_from_slice(b"line two\",1\n");
        assert!(record_complete(&buf));
        assert_eq!(split(&buf).unwrap()[3], b"line one\nline two");
    }

    /// Small deterministic generator: no new dependency for fuzzing.
    pub(crate) struct Lcg(pub u64);
    impl Lcg {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    /// The splitter agrees with the `csv` crate on every record the `csv`
    /// crate reads as one record.
    #[test]
    fn agrees_with_csv_crate() {
        let alphabet: &[u8] = b"a1 ,,\"\"\"\r\n\xA5<>";
        let mut rng = Lcg(7);
        let mut compared = 0;
        for _ in 0..50_000 {
            let len = (rng.next() % 24) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            let mine = split(&line);
            assert_eq!(mine.is_ok(), record_complete(&line), "{line:?}");
            let Ok(mine) = mine else { continue };
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(line.as_slice());
            let recs: Vec<csv::ByteRecord> = rdr.byte_records().map(|r| r.unwrap()).collect();
            if recs.len() != 1 {
                continue; // a blank line, or a bare CR/LF outside quotes (two records for csv)
            }
            let theirs: Vec<Vec<u8>> = recs[0].iter().map(<[u8]>::to_vec).collect();
            assert_eq!(mine, theirs, "{:?}", String::from_utf8_lossy(&line));
            compared += 1;
        }
        assert!(compared > 10_000, "only {compared} compared");
    }
}
