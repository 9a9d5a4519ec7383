//! Splitting one CSV record into fields, with the `csv` crate's quoting rules
//! (RFC 4180: a field that starts with `"` is quoted, `""` inside it is one
//! `"`, a quote elsewhere is an ordinary character).
//!
//! The parser is fed lines, but a quoted field may hold a line break (SSMS
//! with "Retain CR/LF on copy or save"). [`ends_inside_quotes`] tells the
//! parser to keep the line and join the next one to it.

use super::OktellError;

/// The quoting state machine of `csv-core`, reduced to "is a quoted field
/// still open at the end?".
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    InField,
    InQuoted,
    /// A `"` inside a quoted field: either the first of `""` or the close.
    QuoteInQuoted,
}

/// True when `text` ends inside a quoted field, so the record continues on
/// the next line.
pub(crate) fn ends_inside_quotes(text: &[u8], delimiter: u8) -> bool {
    let mut st = State::StartField;
    for &c in text {
        st = match st {
            State::StartField if c == b'"' => State::InQuoted,
            State::StartField | State::InField if c == delimiter => State::StartField,
            State::StartField | State::InField => State::InField,
            State::InQuoted if c == b'"' => State::QuoteInQuoted,
            State::InQuoted => State::InQuoted,
            State::QuoteInQuoted if c == b'"' => State::InQuoted,
            State::QuoteInQuoted if c == delimiter => State::StartField,
            State::QuoteInQuoted => State::InField,
        };
    }
    st == State::InQuoted
}

/// Splits `text` (one record, no terminator; line breaks only inside quoted
/// fields) on `delimiter` and trims every field. Fields are `String`s because
/// `text` is already valid UTF-8 and the delimiter and quote are ASCII.
pub(crate) fn split(text: &str, delimiter: u8) -> Result<Vec<String>, OktellError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        // Only '\n' ends a record: a stray '\r' stays in its field (and is trimmed).
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(text.len().clamp(64, 64 * 1024))
        .from_reader(text.as_bytes());
    let mut rec = csv::ByteRecord::new();
    // Reading from a byte slice into a ByteRecord with `flexible` cannot fail
    // (no I/O, no UTF-8 check, no length check); map it anyway, never unwrap.
    let got = rdr
        .read_byte_record(&mut rec)
        .map_err(|_| OktellError::MultipleRecords)?;
    if !got {
        return Ok(Vec::new());
    }
    let fields = rec
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_string())
        .collect();
    let mut extra = csv::ByteRecord::new();
    if rdr.read_byte_record(&mut extra).unwrap_or(false) {
        return Err(OktellError::MultipleRecords);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_rules() {
        assert_eq!(split("a;b;c", b';').unwrap(), ["a", "b", "c"]);
        assert_eq!(split("\"a;b\";c", b';').unwrap(), ["a;b", "c"]);
        assert_eq!(
            split("\"say \"\"hi\"\"\";x", b';').unwrap(),
            ["say \"hi\"", "x"]
        );
        // a quote inside an unquoted field is an ordinary character
        assert_eq!(
            split("ООО \"Ромашка\";x", b';').unwrap(),
            ["ООО \"Ромашка\"", "x"]
        );
        assert_eq!(split(" 12 , NULL ,", b',').unwrap(), ["12", "NULL", ""]);
        assert_eq!(split("a\tb", b'\t').unwrap(), ["a", "b"]);
        assert_eq!(
            split("\"two\nlines\";x", b';').unwrap(),
            ["two\nlines", "x"]
        );
        assert_eq!(split("a\rb;c", b';').unwrap(), ["a\rb", "c"]);
        assert_eq!(split("a;b\nc;d", b';'), Err(OktellError::MultipleRecords));
    }

    #[test]
    fn open_quotes() {
        assert!(!ends_inside_quotes(b"a;b;c", b';'));
        assert!(ends_inside_quotes(b"a;\"b", b';'));
        assert!(!ends_inside_quotes(b"a;\"b\"", b';'));
        assert!(ends_inside_quotes(b"a;\"b\"\"", b';'));
        assert!(!ends_inside_quotes(b"a;\"b\"\"\"", b';'));
        assert!(!ends_inside_quotes(b"a;b\"c", b';'));
        assert!(ends_inside_quotes(b"a;\"b;c\nd", b';'));
        assert!(!ends_inside_quotes(b"a;\"b\"x\"", b';'));
        // the delimiter decides where a field starts
        assert!(!ends_inside_quotes(b"a,\"b", b';'));
        assert!(ends_inside_quotes(b"a,\"b", b','));
    }
}
