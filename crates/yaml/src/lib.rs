//! YAML to [`serde_json::Value`], remembering where every value and key was
//! written, so that blueprint errors can point at `file:line:column`.
//!
//! Decisions worth knowing:
//! - Plain scalars follow the YAML 1.2 core schema. `.inf`, `-.inf` and `.nan`
//!   (and floats too large for `f64`) are errors, because JSON cannot hold them
//!   and turning them into strings would silently change their type.
//!   Integers must fit in `i64`/`u64`.
//! - Mapping keys keep the text they were written with (`1: x` has key `"1"`).
//! - Exactly one document; an empty file (or a document with no content) is an error.
//! - Aliases are expanded. Descendants of an expanded alias report the
//!   positions of the anchored definition; the alias itself reports its own.
//! - Limits against hostile files: 128 nested lists/mappings, 100 000 values
//!   (counting what anchors and aliases copy), 16 MiB of text copied by
//!   anchors and aliases.
//! - An empty value (`key:` with nothing after it) is positioned at its key.
//! - A block scalar (`|`, `>`) is positioned at its first content line.

mod build;
mod scalar;
mod source;

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

/// 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Anything wrong with a YAML file, at the place it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl YamlError {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
        }
    }
}

/// A parsed file: its JSON value and the source positions of its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    positions: PosNode,
}

/// Positions mirror the value tree rather than being keyed by full pointer
/// strings, whose total size can grow quadratically with hostile input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PosNode {
    pub(crate) value: Pos,
    pub(crate) key: Option<Pos>,
    pub(crate) children: Children,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Children {
    Leaf,
    Seq(Vec<PosNode>),
    Map(HashMap<String, PosNode>),
}

impl PosNode {
    pub(crate) fn leaf(value: Pos) -> Self {
        Self {
            value,
            key: None,
            children: Children::Leaf,
        }
    }
}

impl Document {
    /// Position of the value at a JSON pointer (`""` = root, `"/nodes/2/agent"`).
    pub fn value_pos(&self, pointer: &str) -> Option<Pos> {
        match self.walk(pointer) {
            (node, true) => Some(node.value),
            (_, false) => None,
        }
    }

    /// Position of the mapping key whose value is at `pointer`
    /// (`None` for sequence items and the root).
    pub fn key_pos(&self, pointer: &str) -> Option<Pos> {
        match self.walk(pointer) {
            (node, true) => node.key,
            (_, false) => None,
        }
    }

    /// Best position for a pointer: the value's, else the nearest existing
    /// ancestor's (so "missing field" errors point at the parent mapping).
    pub fn nearest_pos(&self, pointer: &str) -> Pos {
        self.walk(pointer).0.value
    }

    /// The deepest node reached, and whether the whole pointer resolved.
    fn walk(&self, pointer: &str) -> (&PosNode, bool) {
        let mut node = &self.positions;
        if pointer.is_empty() {
            return (node, true);
        }
        let Some(rest) = pointer.strip_prefix('/') else {
            return (node, false);
        };
        for token in rest.split('/') {
            let next = match &node.children {
                Children::Map(entries) => entries.get(&unescape(token)),
                Children::Seq(items) => parse_index(token).and_then(|i| items.get(i)),
                Children::Leaf => None,
            };
            match next {
                Some(child) => node = child,
                None => return (node, false),
            }
        }
        (node, true)
    }
}

/// Escapes a mapping key for use as one JSON pointer token (`/` → `~1`, `~` → `~0`).
pub fn escape_pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(token: &str) -> String {
    // `~1` first, so that `~01` becomes `~1` and not `/` (RFC 6901).
    token.replace("~1", "/").replace("~0", "~")
}

/// RFC 6901 array index: digits without leading zeros.
fn parse_index(token: &str) -> Option<usize> {
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// Parses exactly one YAML document.
pub fn parse(src: &str) -> Result<Document, YamlError> {
    // The YAML library is not ours to audit; a bug in it must surface as an
    // error for this file, not take the whole process down.
    std::panic::catch_unwind(|| build::parse(src)).unwrap_or_else(|_| {
        Err(YamlError::new(
            Pos { line: 1, column: 1 },
            "internal error in the YAML parser while reading this file",
        ))
    })
}
