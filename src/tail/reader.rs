//! Random access to the bytes of a followed file: the live file through
//! `pread` at explicit offsets, or a rotated `.gz` archive decompressed into
//! memory (offsets are those of the uncompressed text, so event ids are the
//! same whether a file is read before or after logrotate compressed it).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Largest `.gz` archive that is decompressed for recovery or import.
pub const MAX_GZ_BYTES: u64 = 8 << 30;

/// The bytes behind an open file.
#[derive(Debug)]
pub enum Reader {
    File(File),
    Memory(Arc<Vec<u8>>),
    /// A `.gz` file held open, decompressed on first use (so planning many
    /// archives costs file handles, not memory, and a rename after planning
    /// changes nothing).
    Gz(File, std::sync::OnceLock<Arc<Vec<u8>>>),
}

/// `true` when the name says gzip.
pub fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

impl Reader {
    /// The first line of a `.gz` file and its fingerprint, decoding only as
    /// far as the first newline (`None` while it has none).
    pub fn gz_head(f: &File, max_len: usize) -> std::io::Result<(Option<u64>, Vec<u8>)> {
        let mut dec =
            flate2::read::MultiGzDecoder::new(std::io::BufReader::new(PositionedReader {
                file: f,
                pos: 0,
            }));
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            let n = dec.read(&mut chunk)?;
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = super::split::memchr_nl(&buf) {
                buf.truncate(i + 1);
                return Ok((Some(super::identity::first_line_fp(&buf)), buf));
            }
            if n == 0 || buf.len() >= max_len {
                let fp = (buf.len() >= max_len).then(|| super::identity::first_line_fp(&buf));
                return Ok((fp, buf));
            }
        }
    }

    /// The decompressed content of a `Gz` reader.
    fn gz_data<'r>(
        f: &File,
        cell: &'r std::sync::OnceLock<Arc<Vec<u8>>>,
    ) -> std::io::Result<&'r Arc<Vec<u8>>> {
        if let Some(d) = cell.get() {
            return Ok(d);
        }
        let mut out = Vec::new();
        let src = std::io::BufReader::new(PositionedReader { file: f, pos: 0 });
        flate2::read::MultiGzDecoder::new(src)
            .take(MAX_GZ_BYTES)
            .read_to_end(&mut out)?;
        Ok(cell.get_or_init(|| Arc::new(out)))
    }

    /// Current length in bytes.
    pub fn size(&self) -> std::io::Result<u64> {
        match self {
            Reader::File(f) => f.metadata().map(|m| m.len()),
            Reader::Memory(b) => Ok(b.len() as u64),
            Reader::Gz(f, cell) => Ok(Self::gz_data(f, cell)?.len() as u64),
        }
    }

    /// A compressed archive.
    pub fn is_gz(&self) -> bool {
        matches!(self, Reader::Gz(..))
    }

    /// When the file was last written (`None` for bytes held in memory).
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        match self {
            Reader::File(f) | Reader::Gz(f, _) => f.metadata().and_then(|m| m.modified()).ok(),
            Reader::Memory(_) => None,
        }
    }

    /// Reads as much of `buf` as exists at `off`.
    pub fn read_at(&self, buf: &mut [u8], mut off: u64) -> std::io::Result<usize> {
        let mem;
        let this = match self {
            Reader::Gz(f, cell) => {
                mem = Reader::Memory(Self::gz_data(f, cell)?.clone());
                &mem
            }
            other => other,
        };
        match this {
            Reader::Gz(..) => Ok(0),
            Reader::Memory(b) => {
                let start = (off as usize).min(b.len());
                let n = buf.len().min(b.len() - start);
                buf[..n].copy_from_slice(&b[start..start + n]);
                Ok(n)
            }
            Reader::File(f) => {
                let mut got = 0;
                while got < buf.len() {
                    match f.read_at(&mut buf[got..], off) {
                        Ok(0) => break,
                        Ok(n) => {
                            got += n;
                            off += n as u64;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(got)
            }
        }
    }

    /// Fingerprint of the first complete line, or `None` while it is
    /// incomplete (an absurdly long first line is fingerprinted once it is
    /// `max_len` long, so the file is not stuck forever).
    pub fn first_line_fp(&self, max_len: usize) -> std::io::Result<Option<u64>> {
        let mut buf = vec![0u8; 4096];
        let mut have = 0usize;
        loop {
            let n = self.read_at(&mut buf[have..], have as u64)?;
            if let Some(i) = super::split::memchr_nl(&buf[have..have + n]) {
                return Ok(Some(super::identity::first_line_fp(&buf[..have + i + 1])));
            }
            have += n;
            if n == 0 || have >= max_len {
                return Ok((have >= max_len).then(|| super::identity::first_line_fp(&buf[..have])));
            }
            buf.resize(have + 4096, 0);
        }
    }
}

/// `Read` over a file at an explicit position (never the shared cursor).
struct PositionedReader<'f> {
    file: &'f File,
    pos: u64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
