//! Incremental Server-Sent Events decoder (only the `data` field matters for
//! chat completions).
//!
//! Follows the WHATWG rules that matter here: lines end in `\r\n`, `\n` or
//! `\r`; `:` starts a comment; several `data:` lines in one event are joined
//! with `\n`; a blank line ends the event. Bytes are buffered until a line is
//! complete, so chunk boundaries may fall anywhere, even inside a UTF-8
//! character.

use crate::LlmError;

/// A single line longer than this is treated as a broken stream rather than
/// buffered without bound.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    /// The previous chunk ended in `\r`: a leading `\n` in the next chunk
    /// belongs to the same line ending.
    skip_lf: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and returns the `data` of every event they completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, LlmError> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if let Some(after) = rest.strip_prefix(b"\n") {
                rest = after;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&rest[..pos])?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut events);
            let is_cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.extend_line(rest)?;
        Ok(events)
    }

    /// Ends the stream. Unlike a browser, a final event that lacks its blank
    /// line is still delivered: some servers close right after `data: [DONE]`.
    pub fn finish(mut self) -> Vec<String> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), LlmError> {
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(LlmError::Malformed(format!(
                "an SSE line is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<String>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(&String::from_utf8_lossy(value));
            self.has_data = true;
        }
        // `event`, `id`, `retry` and unknown fields carry nothing we use.
    }

    fn dispatch(&mut self, events: &mut Vec<String>) {
        if self.has_data {
            events.push(std::mem::take(&mut self.data));
            self.has_data = false;
        }
    }
}

/// Decodes a whole stream given as chunks; convenient for tests and tools.
pub fn parse_sse<'a, I>(chunks: I) -> Result<Vec<String>, LlmError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(decoder.push(chunk)?);
    }
    events.extend(decoder.finish());
    Ok(events)
}
