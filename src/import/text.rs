//! The text of a file being imported (`.gz` decompressed on the fly), read
//! forward in chunks and cut into batches of records: an import holds about
//! one batch of a file at a time, never the whole file, whatever its size.

use crate::tail::{memchr_nl, split_records, Framing, Line, MAX_LINE};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes read per call on the file (uncompressed text for `.gz`).
const READ_CHUNK: usize = 8 << 20;

/// Counts the bytes read from the file on disk (compressed, for `.gz`), for
/// the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A file's text, read forward.
pub struct Text {
    src: Box<dyn Read + Send>,
    /// Read and not yet cut into records; starts at file offset `base`.
    pub buf: Vec<u8>,
    base: u64,
    line_no: u64,
    eof: bool,
    chunk: usize,
}

impl Text {
    /// Opens `path` (`.gz` by its name); `disk_read` counts the bytes read
    /// from the disk.
    pub fn open(path: &Path, disk_read: Arc<AtomicU64>) -> std::io::Result<Text> {
        let file = Counting {
            inner: std::fs::File::open(path)?,
            read: disk_read,
        };
        let src: Box<dyn Read + Send> = if crate::tail::is_gz(path) {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                file,
            )))
        } else {
            Box::new(file)
        };
        Ok(Text::from_reader(src, READ_CHUNK))
    }

    fn from_reader(src: Box<dyn Read + Send>, chunk: usize) -> Text {
        Text {
            src,
            buf: Vec::new(),
            base: 0,
            line_no: 0,
            eof: false,
            chunk,
        }
    }

    /// Reads until `buf` holds `len` bytes or the text ends.
    fn fill(&mut self, len: usize) -> std::io::Result<()> {
        while !self.eof && self.buf.len() < len {
            let n = (&mut self.src)
                .take(self.chunk as u64)
                .read_to_end(&mut self.buf)?;
            self.eof = n == 0;
        }
        Ok(())
    }

    /// Reads until `buf` holds the first line (up to the first newline, or
    /// the whole text when it has none); returns where it ends. Call it
    /// before [`Text::batches`].
    pub fn first_line_end(&mut self) -> std::io::Result<usize> {
        loop {
            if let Some(i) = memchr_nl(&self.buf) {
                return Ok(i + 1);
            }
            if self.eof {
                return Ok(self.buf.len());
            }
            self.fill(self.buf.len() + self.chunk)?;
        }
    }

    /// Cuts the rest of the text into batches of `max_lines` records (the
    /// last one shorter) and hands each to `emit` with the offset and
    /// physical line count after it, in order; `emit` returns `false` to
    /// stop. Returns the bytes of text read. The records are exactly those
    /// [`split_records`] finds in the whole text at once.
    pub fn batches(
        &mut self,
        framing: Framing,
        max_lines: usize,
        mut emit: impl FnMut(Vec<Line>, u64, u64) -> bool,
    ) -> std::io::Result<u64> {
        let max_lines = max_lines.max(1);
        let mut pending: Vec<Line> = Vec::new();
        loop {
            self.fill(self.chunk)?;
            let mut s = split_records(
                &self.buf,
                self.base,
                self.line_no,
                max_lines - pending.len(),
                MAX_LINE,
                framing,
                self.eof,
            );
            // split_records cuts a record it sees no end of within MAX_LINE
            // (a tailer cannot wait forever); here the rest of the text is
            // coming, so such a cut is undone and more is read, as one split
            // of the whole text would find the record whole.
            if !self.eof
                && s.lines
                    .last()
                    .is_some_and(|l| l.bytes.last() != Some(&b'\n'))
            {
                if let Some(cut) = s.lines.pop() {
                    s.used = usize::try_from(cut.offset - self.base).unwrap_or(0);
                    s.line_no = cut.line_no - 1;
                }
            }
            self.buf.drain(..s.used);
            self.base += s.used as u64;
            self.line_no = s.line_no;
            pending.extend(s.lines);
            let done = self.eof && self.buf.is_empty();
            if (pending.len() >= max_lines || (done && !pending.is_empty()))
                && !emit(std::mem::take(&mut pending), self.base, self.line_no)
            {
                break;
            }
            if done {
                break;
            }
            if s.used == 0 {
                if self.eof {
                    break; // nothing split could take (cannot happen at eof)
                }
                // A record longer than what is buffered: read on.
                self.fill(self.buf.len() + self.chunk)?;
            }
        }
        Ok(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (offset, line_no, bytes) of every record, and the batch ends.
    type Cut = (Vec<(u64, u64, Vec<u8>)>, Vec<(usize, u64, u64)>);

    fn cut(text: &[u8], framing: Framing, chunk: usize, max_lines: usize) -> Cut {
        let mut t = Text::from_reader(Box::new(std::io::Cursor::new(text.to_vec())), chunk);
        t.first_line_end().unwrap();
        let (mut recs, mut ends) = (Vec::new(), Vec::new());
        let read = t
            .batches(framing, max_lines, |lines, end, line_no| {
                ends.push((lines.len(), end, line_no));
                recs.extend(lines.into_iter().map(|l| (l.offset, l.line_no, l.bytes)));
                true
            })
            .unwrap();
        assert_eq!(read, text.len() as u64);
        (recs, ends)
    }

    /// Whatever the chunk size and batch size, the records are those of one
    /// split of the whole text, every batch but the last is full, and the
    /// last batch ends at the end of the text.
    #[test]
    fn chunked_batches_are_one_split_of_the_whole_text() {
        let texts: Vec<(&[u8], Framing)> = vec![
            (b"", Framing::Lines),
            (b"one line, no newline", Framing::Lines),
            (b"a\nbb\n\nccc\r\ndddd\n", Framing::Lines),
            (b"a\nbb\nlast without newline", Framing::Lines),
            (b"\n\n\n", Framing::Lines),
            (
                b"h1,h2\n\"x\",\"multi\nline\nfield\"\n1,2\n\"open quote at the end",
                Framing::Csv,
            ),
            (b"1,\"a\"\"b\nc\"\n2,3\n", Framing::Csv),
        ];
        for (text, framing) in texts {
            let whole = split_records(text, 0, 0, usize::MAX, MAX_LINE, framing, true);
            let want: Vec<(u64, u64, Vec<u8>)> = whole
                .lines
                .iter()
                .map(|l| (l.offset, l.line_no, l.bytes.clone()))
                .collect();
            for chunk in [1, 2, 3, 5, 8, 9] {
                for max_lines in 1..=4 {
                    let (recs, ends) = cut(text, framing, chunk, max_lines);
                    let ctx = format!("{text:?} chunk {chunk} batch {max_lines}");
                    assert_eq!(recs, want, "{ctx}");
                    if let Some((last, head)) = ends.split_last() {
                        assert!(head.iter().all(|b| b.0 == max_lines), "{ctx}: {ends:?}");
                        assert_eq!(last.1, text.len() as u64, "{ctx}");
                        assert_eq!(last.2, whole.line_no, "{ctx}");
                    } else {
                        assert!(want.is_empty(), "{ctx}");
                    }
                }
            }
        }
    }

    /// A record longer than MAX_LINE is one record, as in a split of the
    /// whole text, even when the reads end inside it.
    #[test]
    fn a_record_longer_than_max_line_is_not_cut_at_a_read() {
        let long = "x".repeat(MAX_LINE + 5_000);
        let text = format!("a\n{long}\nb\n\"{long}\n{long}\"\nlast {long}");
        for framing in [Framing::Lines, Framing::Csv] {
            let whole = split_records(text.as_bytes(), 0, 0, usize::MAX, MAX_LINE, framing, true);
            let want: Vec<(u64, u64, Vec<u8>)> = whole
                .lines
                .iter()
                .map(|l| (l.offset, l.line_no, l.bytes.clone()))
                .collect();
            for chunk in [1_000, 4_096, MAX_LINE, MAX_LINE + 1, 100_000] {
                let (recs, _) = cut(text.as_bytes(), framing, chunk, 2);
                assert_eq!(recs, want, "{framing:?} chunk {chunk}");
            }
        }
    }

    /// The first line is found however small the reads.
    #[test]
    fn the_first_line_is_read_whole() {
        let mut t = Text::from_reader(
            Box::new(std::io::Cursor::new(b"first line\nsecond\n".to_vec())),
            3,
        );
        assert_eq!(t.first_line_end().unwrap(), 11);
        assert_eq!(&t.buf[..11], b"first line\n");
        let mut t = Text::from_reader(Box::new(std::io::Cursor::new(b"no newline".to_vec())), 4);
        assert_eq!(t.first_line_end().unwrap(), 10);
    }

    /// A `.gz` is read as its text, and the disk bytes are counted.
    #[test]
    fn gz_is_read_as_its_text() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue_log.1.gz");
        let body: Vec<u8> = (0..5_000)
            .flat_map(|i| format!("{i}|c{i}|q|NONE|ENTERQUEUE||1|1\n").into_bytes())
            .collect();
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(&body).unwrap();
        enc.finish().unwrap();
        let disk = Arc::new(AtomicU64::new(0));
        let mut t = Text::open(&path, disk.clone()).unwrap();
        t.first_line_end().unwrap();
        let mut n = 0;
        let read = t
            .batches(Framing::Lines, 1_000, |lines, _, _| {
                n += lines.len();
                true
            })
            .unwrap();
        assert_eq!((n, read), (5_000, body.len() as u64));
        assert_eq!(
            disk.load(Ordering::Relaxed),
            std::fs::metadata(&path).unwrap().len()
        );
    }
}
