//! Turns yaml-rust2's event stream into a JSON value plus a position tree.

use std::collections::HashMap;
use std::str::Chars;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use crate::scalar::{self, Kind};
use crate::source::{Source, check_characters};
use crate::{Children, Document, Pos, PosNode, YamlError};

/// Deepest allowed nesting of lists/mappings (the root collection is level 1).
pub(crate) const MAX_DEPTH: usize = 128;
/// Values (keys included) in the result, counting alias expansions.
pub(crate) const MAX_NODES: usize = 100_000;
/// Text copied by anchors and alias expansions.
pub(crate) const MAX_COPIED_BYTES: usize = 16 * 1024 * 1024;

const START: Pos = Pos { line: 1, column: 1 };

pub(crate) fn parse(src: &str) -> Result<Document, YamlError> {
    // yaml-rust2 would keep a byte order mark as part of the first key.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    check_characters(src)?;
    let mut builder = Builder {
        parser: Parser::new_from_str(src),
        source: Source::new(src),
        anchors: HashMap::new(),
        nodes: 0,
        copied_bytes: 0,
    };
    builder.document()
}

/// What an anchor stands for, kept to expand its aliases.
struct Anchor {
    value: Value,
    positions: PosNode,
    /// Scalar text as written, for an alias used as a mapping key.
    text: Option<String>,
    /// Nested collection levels (0 for a scalar).
    height: usize,
    nodes: usize,
    bytes: usize,
}

/// One parsed node.
struct Built {
    value: Value,
    positions: PosNode,
    /// Nothing was written (`key:` at end of line); the parser's mark then
    /// points at whatever token follows, so the caller repositions it.
    empty: bool,
}

struct Builder<'a> {
    parser: Parser<Chars<'a>>,
    source: Source<'a>,
    anchors: HashMap<usize, Anchor>,
    nodes: usize,
    copied_bytes: usize,
}

impl Builder<'_> {
    fn document(&mut self) -> Result<Document, YamlError> {
        match self.next()? {
            (Event::StreamStart, _) => {}
            (event, mark) => return Err(self.unexpected(&event, mark)),
        }
        match self.next()? {
            (Event::DocumentStart, _) => {}
            (Event::StreamEnd, _) => return Err(YamlError::new(START, "the file is empty")),
            (event, mark) => return Err(self.unexpected(&event, mark)),
        }
        let (event, mark) = self.next()?;
        let root = self.node(event, mark, 1)?;
        if root.empty && root.value.is_null() {
            return Err(YamlError::new(START, "the file is empty"));
        }
        match self.next()? {
            (Event::DocumentEnd, _) => {}
            (event, mark) => return Err(self.unexpected(&event, mark)),
        }
        match self.next()? {
            (Event::StreamEnd, _) => {}
            (Event::DocumentStart, mark) => {
                return Err(YamlError::new(
                    self.pos(mark),
                    "a second YAML document starts here; a blueprint file must contain exactly one document (remove this `---` line or split the file)",
                ));
            }
            (event, mark) => return Err(self.unexpected(&event, mark)),
        }
        Ok(Document {
            value: root.value,
            positions: root.positions,
        })
    }

    /// Pulls one event. After an error the parser is never touched again,
    /// since its state machine is not meant to continue past one.
    fn next(&mut self) -> Result<(Event, Marker), YamlError> {
        self.parser
            .next_token()
            .map_err(|e| scan_error(&e, &self.source))
    }

    fn pos(&self, mark: Marker) -> Pos {
        self.source.pos(mark)
    }

    fn unexpected(&self, event: &Event, mark: Marker) -> YamlError {
        YamlError::new(
            self.pos(mark),
            format!("internal error: unexpected YAML event {event:?}"),
        )
    }

    fn node(&mut self, event: Event, mark: Marker, depth: usize) -> Result<Built, YamlError> {
        let pos = self.pos(mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, pos)?;
                let value = scalar::convert(&text, style, tag.as_ref())
                    .map_err(|message| YamlError::new(pos, message))?;
                // The scanner never produces an empty plain scalar itself.
                let empty = style == TScalarStyle::Plain && text.is_empty();
                let built = Built {
                    value,
                    positions: PosNode::leaf(pos),
                    empty,
                };
                self.register(anchor, &built, Some(text), pos)?;
                Ok(built)
            }
            Event::Alias(id) => self.alias(id, pos, depth),
            Event::SequenceStart(anchor, tag) => self.sequence(mark, anchor, tag.as_ref(), depth),
            Event::MappingStart(anchor, tag) => self.mapping(mark, anchor, tag.as_ref(), depth),
            other => Err(self.unexpected(&other, mark)),
        }
    }

    fn sequence(
        &mut self,
        mark: Marker,
        anchor: usize,
        tag: Option<&Tag>,
        depth: usize,
    ) -> Result<Built, YamlError> {
        let pos = self.sequence_pos(mark)?;
        self.enter_collection(pos, tag, "seq", depth)?;
        let mut items = Vec::new();
        let mut positions = Vec::new();
        loop {
            let (event, item_mark) = self
                .next()
                .map_err(|e| opened_at(e, "expected ',' or ']'", "list", "[", pos))?;
            if event == Event::SequenceEnd {
                break;
            }
            let item = self.node(event, item_mark, depth + 1)?;
            items.push(item.value);
            positions.push(item.positions);
        }
        let built = Built {
            value: Value::Array(items),
            positions: PosNode {
                value: pos,
                key: None,
                children: Children::Seq(positions),
            },
            empty: false,
        };
        self.register(anchor, &built, None, pos)?;
        Ok(built)
    }

    fn mapping(
        &mut self,
        mark: Marker,
        anchor: usize,
        tag: Option<&Tag>,
        depth: usize,
    ) -> Result<Built, YamlError> {
        let pos = self.mapping_pos(mark)?;
        self.enter_collection(pos, tag, "map", depth)?;
        let mut entries = Map::new();
        let mut positions: HashMap<String, PosNode> = HashMap::new();
        loop {
            let (event, key_mark) = self
                .next()
                .map_err(|e| opened_at(e, "expected ',' or '}'", "mapping", "{", pos))?;
            if event == Event::MappingEnd {
                break;
            }
            let key_pos = self.pos(key_mark);
            let key = self.key(event, key_mark)?;
            if let Some(first) = positions.get(&key) {
                let first_line = first.key.unwrap_or(first.value).line;
                let key = scalar::excerpt(&key);
                return Err(YamlError::new(
                    key_pos,
                    format!("duplicate key `{key}` (first defined at line {first_line})"),
                ));
            }
            let (event, value_mark) = self
                .next()
                .map_err(|e| opened_at(e, "expected ',' or '}'", "mapping", "{", pos))?;
            let mut value = self.node(event, value_mark, depth + 1)?;
            if value.empty {
                value.positions.value = key_pos;
            }
            value.positions.key = Some(key_pos);
            entries.insert(key.clone(), value.value);
            positions.insert(key, value.positions);
        }
        let built = Built {
            value: Value::Object(entries),
            positions: PosNode {
                value: pos,
                key: None,
                children: Children::Map(positions),
            },
            empty: false,
        };
        self.register(anchor, &built, None, pos)?;
        Ok(built)
    }

    /// Checks shared by lists and mappings when they open.
    fn enter_collection(
        &mut self,
        pos: Pos,
        tag: Option<&Tag>,
        own_tag: &str,
        depth: usize,
    ) -> Result<(), YamlError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(pos));
        }
        match tag.map(scalar::classify) {
            None | Some(Kind::NonSpecific) => {}
            Some(Kind::Core(name)) if name == own_tag => {}
            Some(other) => return Err(YamlError::new(pos, scalar::unsupported_tag(&other))),
        }
        self.count(1, pos)
    }

    /// A mapping key as a string: the scalar's text as written.
    fn key(&mut self, event: Event, mark: Marker) -> Result<String, YamlError> {
        let pos = self.pos(mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, pos)?;
                // Converting checks the tag even though the key keeps its text.
                let value = scalar::convert(&text, style, tag.as_ref())
                    .map_err(|message| YamlError::new(pos, message))?;
                let built = Built {
                    value,
                    positions: PosNode::leaf(pos),
                    empty: false,
                };
                self.register(anchor, &built, Some(text.clone()), pos)?;
                Ok(text)
            }
            Event::Alias(id) => {
                let text = match self.anchors.get(&id) {
                    None => return Err(self_alias(pos)),
                    Some(Anchor { text: None, .. }) => return Err(collection_key(pos)),
                    Some(Anchor {
                        text: Some(text), ..
                    }) => text.clone(),
                };
                self.copy(1, text.len(), pos)?;
                Ok(text)
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => Err(collection_key(pos)),
            other => Err(self.unexpected(&other, mark)),
        }
    }

    fn alias(&mut self, id: usize, pos: Pos, depth: usize) -> Result<Built, YamlError> {
        let Some(anchor) = self.anchors.get(&id) else {
            return Err(self_alias(pos));
        };
        let (height, nodes, bytes) = (anchor.height, anchor.nodes, anchor.bytes);
        if height > 0 && depth + height - 1 > MAX_DEPTH {
            return Err(too_deep(pos));
        }
        self.copy(nodes, bytes, pos)?;
        let Some(anchor) = self.anchors.get(&id) else {
            return Err(self_alias(pos));
        };
        let mut positions = anchor.positions.clone();
        positions.value = pos;
        positions.key = None;
        Ok(Built {
            value: anchor.value.clone(),
            positions,
            empty: false,
        })
    }

    /// Remembers an anchored node for later aliases.
    fn register(
        &mut self,
        anchor: usize,
        built: &Built,
        text: Option<String>,
        pos: Pos,
    ) -> Result<(), YamlError> {
        // Id 0 means "no anchor".
        if anchor == 0 {
            return Ok(());
        }
        let (nodes, bytes, height) = measure(&built.value);
        self.copy(nodes, bytes, pos)?;
        self.anchors.insert(
            anchor,
            Anchor {
                value: built.value.clone(),
                positions: built.positions.clone(),
                text,
                height,
                nodes,
                bytes,
            },
        );
        Ok(())
    }

    fn count(&mut self, nodes: usize, pos: Pos) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(YamlError::new(
                pos,
                format!(
                    "the document is too large: more than {MAX_NODES} values, counting what anchors and aliases copy"
                ),
            ));
        }
        Ok(())
    }

    /// Accounts for copying an anchored subtree, the amplification an alias bomb relies on.
    fn copy(&mut self, nodes: usize, bytes: usize, pos: Pos) -> Result<(), YamlError> {
        self.count(nodes, pos)?;
        self.copied_bytes = self.copied_bytes.saturating_add(bytes);
        if self.copied_bytes > MAX_COPIED_BYTES {
            return Err(YamlError::new(
                pos,
                format!("anchors and aliases copy more than {MAX_COPIED_BYTES} bytes of text"),
            ));
        }
        Ok(())
    }

    fn sequence_pos(&mut self, mark: Marker) -> Result<Pos, YamlError> {
        let pos = self.pos(mark);
        // For a list not indented under its key (`key:\n- a`) yaml-rust2 marks
        // what follows the first `-` (the first item, or the end of the line):
        // detect that and walk back to the dash.
        let first_item = self.peek_mark()?;
        let Some((line, byte)) = self.source.locate(mark.line(), mark.col()) else {
            return Ok(pos);
        };
        let at_mark = line.get(byte..).and_then(|rest| rest.chars().next());
        let marks_item = first_item.index() == mark.index();
        if !marks_item && matches!(at_mark, Some('-' | '[')) {
            return Ok(pos);
        }
        let before = line.get(..byte).unwrap_or_default();
        let spaces = before.chars().rev().take_while(|c| *c == ' ').count();
        if before.chars().rev().nth(spaces) == Some('-') {
            let back = u32::try_from(spaces + 1).unwrap_or(u32::MAX);
            return Ok(Pos {
                line: pos.line,
                column: pos.column.saturating_sub(back).max(1),
            });
        }
        Ok(pos)
    }

    fn mapping_pos(&mut self, mark: Marker) -> Result<Pos, YamlError> {
        // For a block mapping yaml-rust2 marks the end of the first key; the
        // key's own mark comes before that, and is where the mapping starts.
        let first_mark = self.peek_mark()?;
        if first_mark.index() < mark.index() {
            Ok(self.pos(first_mark))
        } else {
            Ok(self.pos(mark))
        }
    }

    fn peek_mark(&mut self) -> Result<Marker, YamlError> {
        match self.parser.peek() {
            Ok((_, mark)) => Ok(*mark),
            Err(e) => Err(scan_error(&e, &self.source)),
        }
    }
}

/// Node count, copied text size, and collection height of a value.
fn measure(value: &Value) -> (usize, usize, usize) {
    match value {
        Value::String(s) => (1, s.len(), 0),
        Value::Array(items) => items.iter().map(measure).fold((1, 0, 1), |acc, m| {
            (acc.0 + m.0, acc.1 + m.1, acc.2.max(m.2 + 1))
        }),
        Value::Object(entries) => entries.iter().fold((1, 0, 1), |acc, (k, v)| {
            let m = measure(v);
            (acc.0 + m.0 + 1, acc.1 + m.1 + k.len(), acc.2.max(m.2 + 1))
        }),
        _ => (1, 0, 0),
    }
}

fn too_deep(pos: Pos) -> YamlError {
    YamlError::new(
        pos,
        format!("lists and mappings are nested too deeply (more than {MAX_DEPTH} levels)"),
    )
}

fn self_alias(pos: Pos) -> YamlError {
    YamlError::new(
        pos,
        "this alias refers to an anchor that contains it; an anchor cannot include itself",
    )
}

fn collection_key(pos: Pos) -> YamlError {
    YamlError::new(
        pos,
        "a mapping key must be a plain value (text or a number), not a list or mapping",
    )
}

/// Says where the unclosed `[`/`{` of a "missing `]`" error was opened.
fn opened_at(mut error: YamlError, needle: &str, what: &str, opener: &str, pos: Pos) -> YamlError {
    if error.message.contains(needle) {
        let generic = format!("a {what} opened with `{opener}` is");
        let specific = format!("the {what} opened with `{opener}` at {pos} is");
        error.message = error.message.replacen(&generic, &specific, 1);
    }
    error
}

/// Scanner errors, with a hint for the mistakes people commonly make.
fn scan_error(error: &ScanError, source: &Source<'_>) -> YamlError {
    let mut pos = source.pos(*error.marker());
    let info = error.info();
    let hint = hint(info);
    if info.contains("tab") {
        // The scanner may report where the surrounding value starts; the tab is what to fix.
        pos = source.indentation_tab(pos.line).unwrap_or(pos);
    }
    let message = match hint {
        Some(hint) => format!("{hint} (YAML parser: {info})"),
        None => info.to_owned(),
    };
    YamlError::new(pos, message)
}

fn hint(info: &str) -> Option<&'static str> {
    let hints: [(&[&str], &str); 12] = [
        (
            &["tab"],
            "YAML does not allow tabs for indentation; use spaces",
        ),
        (
            &["quoted scalar, found unexpected end of stream"],
            "a quoted text is missing its closing quote",
        ),
        (
            &["invalid indentation in quoted scalar"],
            "a quoted text runs on to the next lines; is its closing quote missing?",
        ),
        (
            &["expected ',' or ']'"],
            "a list opened with `[` is missing its closing `]`, or a comma between two items",
        ),
        (
            &["expected ',' or '}'"],
            "a mapping opened with `{` is missing its closing `}`, or a comma between two entries",
        ),
        (
            &[
                "did not find expected key",
                "invalid indentation",
                "did not find expected '-' indicator",
            ],
            "check the indentation: the entries of one mapping or list must start in the same column",
        ),
        (
            &["mapping values are not allowed"],
            "`: ` cannot appear here; if it is part of a text, put the whole value in quotes, otherwise check the indentation",
        ),
        (
            &["unknown anchor"],
            "an alias `*name` must refer to an anchor `&name` defined earlier in the file",
        ),
        (
            &["unexpected character"],
            "this character cannot start a plain value; put the value in quotes",
        ),
        (
            &["did not find expected node content"],
            "a value is missing here, or it starts with a character that needs quotes",
        ),
        (
            &["recursion limit exceeded"],
            "lists and mappings are nested too deeply",
        ),
        (
            &["block sequence entries are not allowed"],
            "a `- ` list item cannot start here; put it on its own line, indented below its key",
        ),
    ];
    hints
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| info.contains(n)))
        .map(|(_, hint)| *hint)
}
