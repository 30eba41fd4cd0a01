//! Looking things up in the source text by yaml-rust2's line/column marks.

use yaml_rust2::scanner::Marker;

use crate::{Pos, YamlError};

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) struct Source<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// Last lookup (line index, column, byte offset in the line): marks come
    /// in source order, so continuing from here keeps lookups linear overall
    /// even on one very long line.
    cursor: (usize, usize, usize),
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        // The scanner's line breaks: `\r\n`, `\r` or `\n`.
        let mut line_starts = vec![0];
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                line_starts.push(i + 1);
            }
        }
        Self {
            text,
            line_starts,
            cursor: (0, 0, 0),
        }
    }

    /// A marker as a position in this text. Marks at the end of input can
    /// lie on a line after the last one; those are moved to the end of the
    /// last line, which is where an editor can show them.
    pub(crate) fn pos(&self, mark: Marker) -> Pos {
        let last_line = self.line_starts.len();
        if mark.line() > last_line {
            let width = self.line(last_line - 1).map_or(0, |l| l.chars().count());
            return Pos {
                line: to_u32(last_line),
                column: to_u32(width).saturating_add(1),
            };
        }
        // Marker lines are 1-based, columns 0-based.
        Pos {
            line: to_u32(mark.line()).max(1),
            column: to_u32(mark.col()).saturating_add(1),
        }
    }

    /// Text of a 0-based line, without its line break.
    fn line(&self, index: usize) -> Option<&'a str> {
        let start = *self.line_starts.get(index)?;
        let end = self
            .line_starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.text.len());
        let text = self.text.get(start..end)?;
        Some(text.trim_end_matches(['\n', '\r']))
    }

    /// The line (1-based) and the byte offset of a 0-based character column in it.
    pub(crate) fn locate(&mut self, line: usize, column: usize) -> Option<(&'a str, usize)> {
        let index = line.checked_sub(1)?;
        let text = self.line(index)?;
        let (mut col, mut byte) = match self.cursor {
            (l, c, b) if l == index && c <= column => (c, b),
            _ => (0, 0),
        };
        let mut chars = text.get(byte..)?.chars();
        while col < column {
            byte += chars.next()?.len_utf8();
            col += 1;
        }
        self.cursor = (index, col, byte);
        Some((text, byte))
    }

    /// First tab in the leading whitespace of a line, from line `from` (1-based) on.
    pub(crate) fn indentation_tab(&self, from: u32) -> Option<Pos> {
        let from = usize::try_from(from).ok()?.checked_sub(1)?;
        (from..self.line_starts.len()).find_map(|index| {
            let column = self
                .line(index)?
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .position(|c| c == '\t')?;
            Some(Pos {
                line: u32::try_from(index + 1).ok()?,
                column: u32::try_from(column + 1).ok()?,
            })
        })
    }
}

/// yaml-rust2 treats NUL as the end of input and silently drops the rest,
/// and YAML forbids control characters anyway.
pub(crate) fn check_characters(src: &str) -> Result<(), YamlError> {
    let mut line = 1u32;
    let mut column = 1u32;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => (line, column) = (line.saturating_add(1), 1),
            '\r' => {
                // `\r\n` is one line break, as in the scanner.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                (line, column) = (line.saturating_add(1), 1);
            }
            // NEL is allowed by YAML; tabs are judged by the scanner.
            '\t' | '\u{85}' => column = column.saturating_add(1),
            c if c.is_control() => {
                return Err(YamlError::new(
                    Pos { line, column },
                    format!(
                        "the file contains the control character U+{:04X}, which YAML does not allow (is this a text file?)",
                        u32::from(c)
                    ),
                ));
            }
            _ => column = column.saturating_add(1),
        }
    }
    Ok(())
}
