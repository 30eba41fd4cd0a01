//! From YAML text to a typed [`Blueprint`], reporting every problem at once with its position.
//!
//! Each trigger, agent and node is deserialised on its own so that one mistake does not hide
//! the others, and node kinds are dispatched by hand so serde's error path stays exact.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

use super::model::{
    Agent, Blueprint, BranchNode, EventTrigger, FolderDropTrigger, Lifecycle, ManualTrigger, Node,
    OutputNode, PromptNode, RetrieveNode, ReviewNode, RouteNode, ScheduleTrigger, TransformNode,
    Trigger, WebhookTrigger,
};
use crate::diagnostic::{Diagnostic, did_you_mean};

/// Largest blueprint file accepted; real ones are a few kilobytes.
pub const MAX_SOURCE_BYTES: usize = 4 * 1024 * 1024;

/// A parsed YAML document kept for mapping JSON pointers back to positions.
pub struct SourceMap {
    doc: Option<processops_yaml::Document>,
}

impl SourceMap {
    /// Position of the value at `pointer`, else of its nearest ancestor.
    pub fn position(&self, pointer: &str) -> (u32, u32) {
        match &self.doc {
            Some(doc) => {
                let pos = doc.nearest_pos(pointer);
                (pos.line, pos.column)
            }
            None => (0, 0),
        }
    }

    /// Position of the key naming `pointer` (for unknown-field errors), else of the value.
    pub fn key_position(&self, pointer: &str) -> (u32, u32) {
        match self.doc.as_ref().and_then(|doc| doc.key_pos(pointer)) {
            Some(pos) => (pos.line, pos.column),
            None => self.position(pointer),
        }
    }

    /// Attach positions to diagnostics that lack them.
    pub fn locate(&self, diagnostics: &mut [Diagnostic]) {
        for d in diagnostics.iter_mut().filter(|d| d.line == 0) {
            let (line, column) = if d.code == "unknown-field" {
                self.key_position(&d.pointer)
            } else {
                self.position(&d.pointer)
            };
            d.line = line;
            d.column = column;
        }
    }
}

/// Parse a blueprint. On success the blueprint may still have semantic problems: see `validate`.
pub fn parse(source: &str) -> (Option<Blueprint>, SourceMap, Vec<Diagnostic>) {
    if source.len() > MAX_SOURCE_BYTES {
        let d = Diagnostic::error("too-large", "", format!("the file is {} bytes; blueprints are limited to {MAX_SOURCE_BYTES}", source.len()))
            .help("split the process into several blueprints connected by `emit` outputs and `event` triggers")
            .at(1, 1);
        return (None, SourceMap { doc: None }, vec![d]);
    }
    let doc = match processops_yaml::parse(source) {
        Ok(doc) => doc,
        Err(err) => {
            let d = Diagnostic::error("yaml-syntax", "", err.message.clone())
                .help("fix the YAML syntax at this position; blueprints are YAML files indented with spaces")
                .at(err.pos.line, err.pos.column);
            return (None, SourceMap { doc: None }, vec![d]);
        }
    };
    let map = SourceMap { doc: Some(doc) };
    let value = &map
        .doc
        .as_ref()
        .map(|d| d.value.clone())
        .unwrap_or(Value::Null);
    let mut diagnostics = Vec::new();
    let blueprint = from_value(value, &mut diagnostics);
    map.locate(&mut diagnostics);
    // In file order (serde reads keys alphabetically; a stable sort keeps ties in place).
    diagnostics.sort_by_key(|d| (d.line, d.column));
    (blueprint, map, diagnostics)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    lifecycle: Lifecycle,
    start: String,
    #[serde(default)]
    #[expect(dead_code, reason = "deserialised one by one below")]
    triggers: Option<IgnoredAny>,
    #[serde(default)]
    #[expect(dead_code, reason = "deserialised one by one below")]
    agents: Option<IgnoredAny>,
    #[expect(dead_code, reason = "deserialised one by one below")]
    nodes: IgnoredAny,
}

fn from_value(value: &Value, out: &mut Vec<Diagnostic>) -> Option<Blueprint> {
    let Some(root) = value.as_object() else {
        out.push(
            Diagnostic::error(
                "schema",
                "",
                format!("a blueprint must be a mapping, found {}", type_name(value)),
            )
            .help("start the file with `id:`, `name:`, `start:` and `nodes:` keys"),
        );
        return None;
    };
    let header: Option<Header> = typed(value, "", "blueprint", out);

    let mut triggers = Vec::new();
    if let Some(items) = list(root, "triggers", out) {
        for (i, item) in items.iter().enumerate() {
            if let Some(t) = trigger(item, &format!("/triggers/{i}"), out) {
                triggers.push(t);
            }
        }
    }

    let mut agents = BTreeMap::new();
    match root.get("agents") {
        None | Some(Value::Null) => {}
        Some(Value::Object(items)) => {
            for (name, item) in items {
                let pointer = format!("/agents/{}", escape(name));
                if let Some(agent) = typed::<Agent>(item, &pointer, "agent", out) {
                    agents.insert(name.clone(), agent);
                }
            }
        }
        Some(other) => out.push(
            Diagnostic::error(
                "schema",
                "/agents",
                format!(
                    "`agents` must be a mapping of names to agents, found {}",
                    type_name(other)
                ),
            )
            .help(
                "write `agents:` followed by indented `name: {provider: ..., model: ...}` entries",
            ),
        ),
    }

    let mut nodes = Vec::new();
    if let Some(items) = list(root, "nodes", out) {
        for (i, item) in items.iter().enumerate() {
            if let Some(n) = node(item, &format!("/nodes/{i}"), out) {
                nodes.push(n);
            }
        }
    }

    let header = header?;
    if out.iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Blueprint {
        id: header.id,
        name: header.name,
        description: header.description,
        domain: header.domain,
        lifecycle: header.lifecycle,
        start: header.start,
        triggers,
        agents,
        nodes,
    })
}

fn list<'a>(
    root: &'a serde_json::Map<String, Value>,
    key: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<&'a Vec<Value>> {
    match root.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items),
        Some(other) => {
            out.push(
                Diagnostic::error(
                    "schema",
                    format!("/{key}"),
                    format!("`{key}` must be a list, found {}", type_name(other)),
                )
                .help(format!(
                    "write each entry of `{key}` on its own line starting with `- `"
                )),
            );
            None
        }
    }
}

const TRIGGER_KINDS: &[&str] = &["manual", "webhook", "schedule", "folder_drop", "event"];
const NODE_KINDS: &[&str] = &[
    "retrieve",
    "prompt",
    "route",
    "branch",
    "transform",
    "review",
    "output",
];

fn kind_of<'a>(
    item: &'a Value,
    pointer: &str,
    what: &str,
    kinds: &[&str],
    out: &mut Vec<Diagnostic>,
) -> Option<(&'a str, Value)> {
    let Some(map) = item.as_object() else {
        out.push(
            Diagnostic::error(
                "schema",
                pointer,
                format!("a {what} must be a mapping, found {}", type_name(item)),
            )
            .help(format!("give the {what} `kind:` and `id:` keys")),
        );
        return None;
    };
    let kinds_text = kinds
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(kind) = map.get("kind") else {
        out.push(
            Diagnostic::error("schema", pointer, format!("this {what} has no `kind`"))
                .help(format!("add `kind:` with one of {kinds_text}")),
        );
        return None;
    };
    let Some(kind) = kind.as_str().filter(|k| kinds.contains(k)) else {
        let shown = kind
            .as_str()
            .map_or_else(|| kind.to_string(), ToOwned::to_owned);
        let mut help = format!("use one of {kinds_text}");
        if let Some(hint) = did_you_mean(&shown, kinds.iter().copied()) {
            help = format!("{hint} ({help})");
        }
        out.push(
            Diagnostic::error(
                "schema",
                format!("{pointer}/kind"),
                format!("unknown {what} kind `{shown}`"),
            )
            .help(help),
        );
        return None;
    };
    let mut rest = map.clone();
    rest.remove("kind");
    Some((kind, Value::Object(rest)))
}

fn trigger(item: &Value, pointer: &str, out: &mut Vec<Diagnostic>) -> Option<Trigger> {
    let (kind, rest) = kind_of(item, pointer, "trigger", TRIGGER_KINDS, out)?;
    let what = format!("{kind} trigger");
    Some(match kind {
        "manual" => Trigger::Manual(typed::<ManualTrigger>(&rest, pointer, &what, out)?),
        "webhook" => Trigger::Webhook(typed::<WebhookTrigger>(&rest, pointer, &what, out)?),
        "schedule" => Trigger::Schedule(typed::<ScheduleTrigger>(&rest, pointer, &what, out)?),
        "folder_drop" => {
            Trigger::FolderDrop(typed::<FolderDropTrigger>(&rest, pointer, &what, out)?)
        }
        _ => Trigger::Event(typed::<EventTrigger>(&rest, pointer, &what, out)?),
    })
}

fn node(item: &Value, pointer: &str, out: &mut Vec<Diagnostic>) -> Option<Node> {
    let (kind, rest) = kind_of(item, pointer, "node", NODE_KINDS, out)?;
    let what = format!("{kind} node");
    Some(match kind {
        "retrieve" => Node::Retrieve(typed::<RetrieveNode>(&rest, pointer, &what, out)?),
        "prompt" => Node::Prompt(typed::<PromptNode>(&rest, pointer, &what, out)?),
        "route" => Node::Route(typed::<RouteNode>(&rest, pointer, &what, out)?),
        "branch" => Node::Branch(typed::<BranchNode>(&rest, pointer, &what, out)?),
        "transform" => Node::Transform(typed::<TransformNode>(&rest, pointer, &what, out)?),
        "review" => Node::Review(typed::<ReviewNode>(&rest, pointer, &what, out)?),
        _ => Node::Output(typed::<OutputNode>(&rest, pointer, &what, out)?),
    })
}

/// At most this many problems are reported for one element (trigger, agent, node, header).
const MAX_PROBLEMS_PER_ELEMENT: usize = 32;

/// Deserialise one value, turning serde's errors into diagnostics at their exact pointers.
/// serde stops at the first problem, so the offending key is taken out and the rest is tried
/// again: a designer sees every unknown or mistyped field of an element at once.
fn typed<T: DeserializeOwned>(
    value: &Value,
    pointer: &str,
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut work: Option<Value> = None;
    let mut removed: Vec<String> = Vec::new();
    // Pointers of the fields `did you mean` offered for misspelt keys.
    let mut suggested: Vec<String> = Vec::new();
    for _ in 0..MAX_PROBLEMS_PER_ELEMENT {
        let err = match serde_path_to_error::deserialize::<_, T>(work.as_ref().unwrap_or(value)) {
            Ok(v) => return removed.is_empty().then_some(v),
            Err(err) => err,
        };
        let mut at = pointer.to_owned();
        // The path inside the element, e.g. `file` or `rules[0]`, to say where in it the problem is.
        let mut inner: Vec<String> = Vec::new();
        // The segments, to take the offending key out.
        let mut path: Vec<Result<String, usize>> = Vec::new();
        for segment in err.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    at.push_str(&format!("/{index}"));
                    inner.push(format!("[{index}]"));
                    path.push(Err(*index));
                }
                serde_path_to_error::Segment::Map { key } => {
                    at.push('/');
                    at.push_str(&escape(key));
                    inner.push(key.clone());
                    path.push(Ok(key.clone()));
                }
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let message = err.inner().to_string();
        let diagnostic = serde_diagnostic(&message, &at, what, &inner);
        if diagnostic.code == "missing-field" {
            // A field taken out below is now missing, or was misspelt and `did you mean` named
            // it: either way it was reported already.
            let field = backticked(&message).into_iter().next().unwrap_or_default();
            let missing = format!("{}/{}", diagnostic.pointer, escape(&field));
            if !removed.contains(&missing) && !suggested.contains(&missing) {
                out.push(diagnostic);
            }
            return None;
        }
        if diagnostic.code == "unknown-field"
            && let Some(hint) = diagnostic
                .help
                .as_deref()
                .and_then(|h| h.strip_prefix("did you mean `"))
            && let Some((parent, _)) = diagnostic.pointer.rsplit_once('/')
        {
            suggested.push(format!(
                "{parent}/{}",
                escape(hint.split('`').next().unwrap_or_default())
            ));
        }
        out.push(diagnostic);
        // Take out the deepest key on the path (a whole list when the problem is in an item).
        let last_key = path.iter().rposition(Result::is_ok)?;
        path.truncate(last_key + 1);
        let mut copy = work.take().unwrap_or_else(|| value.clone());
        if !remove_at(&mut copy, &path) {
            return None;
        }
        removed.push(path.iter().fold(pointer.to_owned(), |mut p, s| {
            match s {
                Ok(key) => p.push_str(&format!("/{}", escape(key))),
                Err(index) => p.push_str(&format!("/{index}")),
            }
            p
        }));
        work = Some(copy);
    }
    None
}

/// Remove the map entry at the end of `path`; false when the path does not lead to one.
fn remove_at(value: &mut Value, path: &[Result<String, usize>]) -> bool {
    let Some((Ok(key), parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        node = match (segment, node) {
            (Ok(k), Value::Object(map)) => match map.get_mut(k) {
                Some(child) => child,
                None => return false,
            },
            (Err(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    node.as_object_mut()
        .and_then(|map| map.remove(key))
        .is_some()
}

/// `file`, `rules[0].to`, `lifecycle.pilot` from path segments.
fn dotted(segments: &[String]) -> String {
    let mut text = String::new();
    for s in segments {
        if !text.is_empty() && !s.starts_with('[') {
            text.push('.');
        }
        text.push_str(s);
    }
    text
}

/// `a prompt node`, `an output node`.
fn with_article(what: &str) -> String {
    let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {what}")
}

/// Rewrites serde's messages into ones a workflow designer can act on. `inner` is the path of
/// the error inside the element (for an unknown field it ends with that field).
fn serde_diagnostic(message: &str, pointer: &str, what: &str, inner: &[String]) -> Diagnostic {
    let names = backticked(message);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = names.first().cloned().unwrap_or_else(|| rest.to_owned());
        // serde_path_to_error already put the unknown key at the end of the path.
        let (pointer, parent) = if inner.last() == Some(&field) {
            (pointer.to_owned(), &inner[..inner.len() - 1])
        } else {
            (format!("{pointer}/{}", escape(&field)), inner)
        };
        let (scope, accepts) = if parent.is_empty() {
            (what.to_owned(), with_article(what))
        } else {
            let parent = dotted(parent);
            (format!("`{parent}` of the {what}"), format!("`{parent}`"))
        };
        let expected: Vec<&str> = names.iter().skip(1).map(String::as_str).collect();
        let mut help = format!("remove it; {accepts} accepts: {}", expected.join(", "));
        if let Some(hint) = did_you_mean(&field, expected.iter().copied()) {
            help = format!("{hint} ({accepts} accepts: {})", expected.join(", "));
        }
        return Diagnostic::error(
            "unknown-field",
            pointer,
            format!("unknown field `{field}` in {scope}"),
        )
        .help(help);
    }
    if message.starts_with("missing field ") {
        let field = names.first().cloned().unwrap_or_default();
        let (scope, target) = if inner.is_empty() {
            (what.to_owned(), format!("this {what}"))
        } else {
            let parent = dotted(inner);
            (format!("`{parent}` of the {what}"), format!("`{parent}`"))
        };
        return Diagnostic::error(
            "missing-field",
            pointer,
            format!("{scope} is missing the required field `{field}`"),
        )
        .help(format!("add `{field}:` to {target}"));
    }
    if message.starts_with("unknown variant ") {
        let variant = names.first().cloned().unwrap_or_default();
        let expected: Vec<&str> = names.iter().skip(1).map(String::as_str).collect();
        let mut help = format!("use one of: {}", expected.join(", "));
        if let Some(hint) = did_you_mean(&variant, expected.iter().copied()) {
            help = format!("{hint} ({help})");
        }
        return Diagnostic::error(
            "schema",
            pointer,
            format!("`{variant}` is not a valid value here"),
        )
        .help(help);
    }
    if message.starts_with("data did not match any variant of untagged enum Next") {
        return Diagnostic::error(
            "schema",
            pointer,
            "expected a node id or a list of node ids",
        )
        .help("write `next: node_id` or `next: [a, b]` to run several nodes in parallel");
    }
    let message = message.split(" at line ").next().unwrap_or(message);
    Diagnostic::error("schema", pointer, format!("{message} (in {what})"))
        .help("see blueprints/schema.json for the expected shape")
}

fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(ToOwned::to_owned)
        .collect()
}

/// JSON pointer escaping of one segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
