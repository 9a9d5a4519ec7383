//! Reading and writing AMI messages.
//!
//! A message is `Key: Value` lines ended by an empty line. Written lines end
//! in `\r\n`; read lines end in `\r\n` or a bare `\n` (Asterisk accepts both,
//! `main/manager.c` `get_input`). Reading is bounded: a line longer than
//! [`MAX_LINE_BYTES`] (line end excluded) or a message with more than
//! [`MAX_HEADERS`] lines is read to its end without being kept and reported
//! as an error ([`FrameError::is_discard`]) that leaves the reader in step
//! with the stream, never a panic or an unbounded buffer. Of duplicate
//! headers the **first** wins, as in Asterisk's `astman_get_header`; header
//! names compare case-insensitively.

use super::{Reason, MAX_HEADERS, MAX_LINE_BYTES};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// One received message: its headers in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Message {
    headers: Vec<(String, String)>,
}

impl Message {
    /// The value of the first header named `key` (case-insensitively).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// How many headers it has (duplicates included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.headers.len()
    }
}

/// Why reading a message failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The socket failed.
    #[error("AMI read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection in the middle of a line or message.
    #[error("the AMI connection closed in the middle of a message")]
    Truncated,
    /// A line was longer than [`MAX_LINE_BYTES`]; its message was read to
    /// its end and discarded.
    #[error("AMI message discarded: a line is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// A message had more than [`MAX_HEADERS`] lines; it was read to its
    /// end and discarded.
    #[error("AMI message discarded: more than {MAX_HEADERS} headers")]
    TooManyHeaders,
}

impl FrameError {
    /// Whether only one message was lost and the reader is still in step
    /// with the stream (the next read returns the next message).
    pub(crate) fn is_discard(&self) -> bool {
        matches!(self, Self::LineTooLong | Self::TooManyHeaders)
    }
}

/// One line read.
enum Line {
    /// End of stream at the start of a line.
    Eof,
    /// A line, its line end removed (lossy UTF-8).
    Text(String),
    /// A line longer than [`MAX_LINE_BYTES`], consumed up to its line end.
    TooLong,
}

/// Reads lines and messages from an AMI stream, with bounded memory.
pub(crate) struct FrameReader<R> {
    inner: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over `inner`.
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner: BufReader::new(inner),
            line: Vec::with_capacity(256),
        }
    }

    /// The first line Asterisk sends (`Asterisk Call Manager/13.0.0`);
    /// `None` if the stream ended before it.
    pub(crate) async fn read_banner(&mut self) -> Result<Option<String>, FrameError> {
        match self.read_line().await? {
            Line::Eof => Ok(None),
            Line::Text(text) => Ok(Some(text)),
            Line::TooLong => Err(FrameError::LineTooLong),
        }
    }

    /// The next message; `None` when the stream ended cleanly between
    /// messages. Empty lines between messages are skipped.
    pub(crate) async fn read_message(&mut self) -> Result<Option<Message>, FrameError> {
        let mut msg = Message::default();
        let mut lines = 0usize;
        let mut discard: Option<FrameError> = None;
        loop {
            match self.read_line().await? {
                Line::Eof if lines == 0 => return Ok(None),
                Line::Eof => return Err(FrameError::Truncated),
                Line::Text(text) if text.is_empty() => {
                    if lines == 0 {
                        continue;
                    }
                    return match discard {
                        Some(e) => Err(e),
                        None => Ok(Some(msg)),
                    };
                }
                Line::TooLong => {
                    lines += 1;
                    if discard.is_none() {
                        discard = Some(FrameError::LineTooLong);
                        msg.headers = Vec::new();
                    }
                }
                Line::Text(text) => {
                    lines += 1;
                    if discard.is_some() {
                        continue;
                    }
                    if lines > MAX_HEADERS {
                        discard = Some(FrameError::TooManyHeaders);
                        msg.headers = Vec::new();
                        continue;
                    }
                    // A line without `:` is not a header: counted, not kept.
                    if let Some((key, value)) = text.split_once(':') {
                        let value = value.trim_start_matches([' ', '\t']);
                        msg.headers.push((key.to_owned(), value.to_owned()));
                    }
                }
            }
        }
    }

    /// One line, ended by `\n` (a `\r` before it is removed). At most
    /// [`MAX_LINE_BYTES`] + 1 bytes are ever buffered.
    async fn read_line(&mut self) -> Result<Line, FrameError> {
        self.line.clear();
        let mut started = false;
        let mut too_long = false;
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return if started {
                    Err(FrameError::Truncated)
                } else {
                    Ok(Line::Eof)
                };
            }
            started = true;
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if !too_long {
                // One extra byte for the `\r` of a `\r\n`.
                if self.line.len() + take > MAX_LINE_BYTES + 1 {
                    too_long = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(&buf[..take]);
                }
            }
            self.inner.consume(take + usize::from(done));
            if done {
                break;
            }
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if too_long || self.line.len() > MAX_LINE_BYTES {
            return Ok(Line::TooLong);
        }
        Ok(Line::Text(String::from_utf8_lossy(&self.line).into_owned()))
    }
}

/// An action being written: `Action: <name>`, then header lines, each ended
/// by `\r\n`, then the empty line [`finish`](Self::finish) adds.
pub(crate) struct ActionText {
    text: String,
    headers: usize,
}

impl ActionText {
    /// `Action: <name>` (a constant).
    pub(crate) fn new(name: &'static str) -> Self {
        let mut text = String::with_capacity(256);
        text.push_str("Action: ");
        text.push_str(name);
        text.push_str("\r\n");
        Self { text, headers: 1 }
    }

    /// Appends the line `<key>: <parts…>\r\n`. The caller has validated the
    /// parts; a CR, LF or NUL is refused here again all the same, as is a
    /// line longer than [`MAX_LINE_BYTES`] (its `\r\n` included) or a
    /// header beyond [`MAX_HEADERS`].
    pub(crate) fn header(&mut self, key: &'static str, parts: &[&str]) -> Result<(), Reason> {
        if let Some(c) = parts
            .iter()
            .flat_map(|p| p.chars())
            .find(|c| matches!(c, '\r' | '\n' | '\0'))
        {
            return Err(Reason::ControlChar(c));
        }
        let len = key.len() + 2 + parts.iter().map(|p| p.len()).sum::<usize>() + 2;
        if len > MAX_LINE_BYTES {
            return Err(Reason::LineTooLong { len });
        }
        if self.headers >= MAX_HEADERS {
            return Err(Reason::TooMany {
                count: self.headers + 1,
                max: MAX_HEADERS,
            });
        }
        self.text.push_str(key);
        self.text.push_str(": ");
        for part in parts {
            self.text.push_str(part);
        }
        self.text.push_str("\r\n");
        self.headers += 1;
        Ok(())
    }

    /// The whole action, its closing empty line included.
    pub(crate) fn finish(mut self) -> String {
        self.text.push_str("\r\n");
        self.text
    }
}
