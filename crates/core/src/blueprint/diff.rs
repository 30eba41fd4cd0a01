//! What changed between two versions of a blueprint, grouped the way a reviewer reads a
//! change: the graph (nodes, edges, triggers), the prompts (templates, agents) and the
//! policies (review checkpoints, the pilot cohort). Canvas positions are not changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::model::{Blueprint, Node};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// Name, description, domain.
    Process,
    /// Nodes, edges, triggers, the start node, and the settings of non-prompt nodes.
    Graph,
    /// Prompt templates and the agents they call.
    Prompts,
    /// Review checkpoints (roles, SLAs, escalation) and the lifecycle's cohort and owner.
    Policies,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One line of a text diff: `+`, `-`, ` ` (context) or `@` (unchanged lines left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct DiffLine {
    pub tag: String,
    pub text: String,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct DiffEntry {
    pub area: Area,
    /// What it is about: `node draft (prompt)`, `edge check -approved-> send`, `agent writer`.
    pub subject: String,
    /// The field, as a path inside the subject (`template`, `sla/due`); empty for a whole
    /// node, edge or trigger.
    pub field: String,
    pub change: ChangeKind,
    pub before: Option<String>,
    pub after: Option<String>,
    /// For text that spans lines (templates), the line diff.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<DiffLine>>", optional)]
    pub lines: Vec<DiffLine>,
}

/// Every change from `old` to `new`, by area, then subject, then field.
pub fn diff(old: &Blueprint, new: &Blueprint) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    let scalar = |b: &Blueprint| {
        BTreeMap::from([
            ("name".to_owned(), Value::String(b.name.clone())),
            (
                "description".to_owned(),
                Value::String(b.description.clone()),
            ),
            (
                "domain".to_owned(),
                b.domain.clone().map(Value::String).unwrap_or(Value::Null),
            ),
        ])
    };
    compare_fields(
        &mut out,
        Area::Process,
        "process",
        &leaves(&to_value(&scalar(old))),
        &leaves(&to_value(&scalar(new))),
    );
    compare_fields(
        &mut out,
        Area::Graph,
        "start",
        &leaves(&Value::String(old.start.clone())),
        &leaves(&Value::String(new.start.clone())),
    );
    compare_keyed(
        &mut out,
        Area::Graph,
        "trigger",
        &old.triggers
            .iter()
            .map(|t| (t.id().to_owned(), to_value(t)))
            .collect(),
        &new.triggers
            .iter()
            .map(|t| (t.id().to_owned(), to_value(t)))
            .collect(),
    );
    compare_keyed(
        &mut out,
        Area::Prompts,
        "agent",
        &old.agents
            .iter()
            .map(|(k, a)| (k.clone(), to_value(a)))
            .collect(),
        &new.agents
            .iter()
            .map(|(k, a)| (k.clone(), to_value(a)))
            .collect(),
    );
    compare_fields(
        &mut out,
        Area::Policies,
        "lifecycle",
        &leaves(&lifecycle_value(old)),
        &leaves(&lifecycle_value(new)),
    );
    nodes(&mut out, old, new);
    edges(&mut out, old, new);
    out.sort_by(|a, b| (a.area, &a.subject, &a.field).cmp(&(b.area, &b.subject, &b.field)));
    out
}

/// The stage is the store's business (it moves without a new version), so only the cohort
/// and the owner are compared.
fn lifecycle_value(b: &Blueprint) -> Value {
    serde_json::json!({ "owner": b.lifecycle.owner, "pilot": to_value(&b.lifecycle.pilot) })
}

fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn node_area(node: &Node) -> Area {
    match node {
        Node::Prompt(_) => Area::Prompts,
        Node::Review(_) => Area::Policies,
        _ => Area::Graph,
    }
}

/// A node's fields without its edges (compared as edges) and its canvas position.
fn node_fields(node: &Node) -> BTreeMap<String, String> {
    let mut value = to_value(node);
    if let Value::Object(map) = &mut value {
        for key in ["layout", "next", "default", "on", "on_exhausted", "id"] {
            map.remove(key);
        }
        for (list, field) in [("rules", "to"), ("branches", "to")] {
            if let Some(Value::Array(items)) = map.get_mut(list) {
                for item in items {
                    if let Value::Object(o) = item {
                        o.remove(field);
                    }
                }
            }
        }
    }
    leaves(&value)
}

fn nodes(out: &mut Vec<DiffEntry>, old: &Blueprint, new: &Blueprint) {
    let index = |b: &'_ Blueprint| -> BTreeMap<String, Node> {
        b.nodes
            .iter()
            .map(|n| (n.id().to_owned(), n.clone()))
            .collect()
    };
    let (before, after) = (index(old), index(new));
    for (id, node) in &before {
        let subject = format!("node {id} ({})", node.kind_name());
        match after.get(id) {
            None => out.push(whole(node_area(node), subject, ChangeKind::Removed)),
            Some(other) if other.kind_name() != node.kind_name() => {
                out.push(whole(node_area(node), subject, ChangeKind::Removed));
                out.push(whole(
                    node_area(other),
                    format!("node {id} ({})", other.kind_name()),
                    ChangeKind::Added,
                ));
            }
            Some(other) => compare_fields(
                out,
                node_area(node),
                &subject,
                &node_fields(node),
                &node_fields(other),
            ),
        }
    }
    for (id, node) in &after {
        if !before.contains_key(id) {
            out.push(whole(
                node_area(node),
                format!("node {id} ({})", node.kind_name()),
                ChangeKind::Added,
            ));
        }
    }
}

fn edges(out: &mut Vec<DiffEntry>, old: &Blueprint, new: &Blueprint) {
    let set = |b: &Blueprint| -> BTreeSet<String> {
        b.nodes
            .iter()
            .flat_map(|n| {
                n.edges()
                    .into_iter()
                    .map(|e| match e.label {
                        Some(label) => format!("{} -{label}-> {}", n.id(), e.target),
                        None => format!("{} -> {}", n.id(), e.target),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (before, after) = (set(old), set(new));
    for e in before.difference(&after) {
        out.push(whole(Area::Graph, format!("edge {e}"), ChangeKind::Removed));
    }
    for e in after.difference(&before) {
        out.push(whole(Area::Graph, format!("edge {e}"), ChangeKind::Added));
    }
}

fn whole(area: Area, subject: String, change: ChangeKind) -> DiffEntry {
    DiffEntry {
        area,
        subject,
        field: String::new(),
        change,
        before: None,
        after: None,
        lines: Vec::new(),
    }
}

/// Things with ids (triggers, agents): added, removed, or changed field by field.
fn compare_keyed(
    out: &mut Vec<DiffEntry>,
    area: Area,
    what: &str,
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
) {
    for (id, value) in old {
        let subject = format!("{what} {id}");
        match new.get(id) {
            None => out.push(whole(area, subject, ChangeKind::Removed)),
            Some(other) => compare_fields(out, area, &subject, &leaves(value), &leaves(other)),
        }
    }
    for id in new.keys().filter(|id| !old.contains_key(*id)) {
        out.push(whole(area, format!("{what} {id}"), ChangeKind::Added));
    }
}

fn compare_fields(
    out: &mut Vec<DiffEntry>,
    area: Area,
    subject: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (before, after) = (old.get(key), new.get(key));
        if before == after {
            continue;
        }
        let change = match (before, after) {
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        };
        let multiline =
            before.is_some_and(|t| t.contains('\n')) || after.is_some_and(|t| t.contains('\n'));
        let lines = if multiline {
            line_diff(
                before.map_or("", String::as_str),
                after.map_or("", String::as_str),
            )
        } else {
            Vec::new()
        };
        out.push(DiffEntry {
            area,
            subject: subject.to_owned(),
            field: key.clone(),
            change,
            before: before.cloned(),
            after: after.cloned(),
            lines,
        });
    }
}

/// Lines of context kept around each change of a long text.
const CONTEXT_LINES: usize = 2;

/// The changed lines with a little context; unchanged stretches between hunks become one
/// `…` line (tag `@`), so a one-line change in a long template stays one screen.
fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let diff = TextDiff::from_lines(old, new);
    let groups = diff.grouped_ops(CONTEXT_LINES);
    let mut out = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 || group.first().is_some_and(|op| op.old_range().start > 0) {
            out.push(DiffLine {
                tag: "@".to_owned(),
                text: "…".to_owned(),
            });
        }
        for op in group {
            for c in diff.iter_changes(op) {
                out.push(DiffLine {
                    tag: match c.tag() {
                        ChangeTag::Insert => "+",
                        ChangeTag::Delete => "-",
                        ChangeTag::Equal => " ",
                    }
                    .to_owned(),
                    text: c.value().trim_end_matches('\n').to_owned(),
                });
            }
        }
    }
    let shown_to = groups
        .last()
        .and_then(|g| g.last())
        .map_or(0, |op| op.old_range().end);
    if !groups.is_empty() && shown_to < old.split_inclusive('\n').count() {
        out.push(DiffLine {
            tag: "@".to_owned(),
            text: "…".to_owned(),
        });
    }
    out
}

/// Flatten a value to `path → text` leaves (`sla/due`, `rules/0/when`); strings as they are,
/// other scalars as JSON. The root scalar has the empty path.
fn leaves(value: &Value) -> BTreeMap<String, String> {
    fn walk(value: &Value, path: String, out: &mut BTreeMap<String, String>) {
        let join = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}/{key}")
            }
        };
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, join(k), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, join(&i.to_string()), out);
                }
            }
            Value::Null => {}
            Value::String(s) => {
                out.insert(path, s.clone());
            }
            other => {
                out.insert(path, other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BASE: &str = r#"
id: triage
name: Ticket triage
start: draft
triggers:
  - { kind: manual, id: by-hand }
agents:
  writer: { provider: local, model: small }
nodes:
  - kind: prompt
    id: draft
    agent: writer
    template: |
      Reply to {{ trigger.customer }}.
      Be kind.
    next: check
    layout: { x: 0, y: 0 }
  - kind: review
    id: check
    role: support-agent
    draft: "{{ draft.text }}"
    on: { approved: send }
  - kind: output
    id: send
    file: { path: "out.txt", content: "{{ check.text }}" }
"#;

    fn load(source: &str) -> Blueprint {
        let checked = crate::blueprint::check(source);
        assert!(
            checked.blueprint.is_some(),
            "{source}\n{:#?}",
            checked.diagnostics
        );
        checked.blueprint.unwrap()
    }

    fn summary(entries: &[DiffEntry]) -> Vec<(Area, String, String, ChangeKind)> {
        entries
            .iter()
            .map(|e| (e.area, e.subject.clone(), e.field.clone(), e.change))
            .collect()
    }

    #[test]
    fn identical_versions_and_moved_nodes_have_no_changes() {
        let base = load(BASE);
        assert!(diff(&base, &base).is_empty());
        let moved = load(&BASE.replace("{ x: 0, y: 0 }", "{ x: 300, y: 80 }"));
        assert!(diff(&base, &moved).is_empty());
    }

    #[test]
    fn a_prompt_change_has_a_line_diff() {
        let base = load(BASE);
        let new = load(&BASE.replace("Be kind.", "Be kind and brief."));
        let entries = diff(&base, &new);
        assert_eq!(
            summary(&entries),
            [(
                Area::Prompts,
                "node draft (prompt)".to_owned(),
                "template".to_owned(),
                ChangeKind::Changed
            )]
        );
        let lines: Vec<(&str, &str)> = entries[0]
            .lines
            .iter()
            .map(|l| (l.tag.as_str(), l.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (" ", "Reply to {{ trigger.customer }}."),
                ("-", "Be kind."),
                ("+", "Be kind and brief.")
            ]
        );
    }

    #[test]
    fn a_long_text_keeps_only_the_changed_hunks() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 10\n", "line ten\n");
        let lines = line_diff(&old, &new);
        let tags: String = lines.iter().map(|l| l.tag.as_str()).collect();
        assert_eq!(tags, "@  -+  @");
        assert_eq!(lines[1].text, "line 8");
        assert_eq!(lines[4].text, "line ten");
    }

    #[test]
    fn graph_policy_and_agent_changes_are_grouped() {
        let base = load(BASE);
        let changed = BASE
            .replace("role: support-agent", "role: support-lead")
            .replace("model: small", "model: large")
            .replace(
                "on: { approved: send }",
                "on: { approved: send, rejected: archive }",
            )
            .replace(
                "id: triage",
                "id: triage\nlifecycle: { pilot: { roles: [support-lead] } }",
            )
            + "  - kind: output\n    id: archive\n    file: { path: \"archive.txt\", content: \"{{ check.text }}\" }\n";
        let new = load(&changed);
        assert_eq!(
            summary(&diff(&base, &new)),
            [
                (
                    Area::Graph,
                    "edge check -rejected-> archive".to_owned(),
                    String::new(),
                    ChangeKind::Added
                ),
                (
                    Area::Graph,
                    "node archive (output)".to_owned(),
                    String::new(),
                    ChangeKind::Added
                ),
                (
                    Area::Prompts,
                    "agent writer".to_owned(),
                    "model".to_owned(),
                    ChangeKind::Changed
                ),
                (
                    Area::Policies,
                    "lifecycle".to_owned(),
                    "pilot/roles/0".to_owned(),
                    ChangeKind::Added
                ),
                (
                    Area::Policies,
                    "node check (review)".to_owned(),
                    "role".to_owned(),
                    ChangeKind::Changed
                ),
            ]
        );
        // And back: the same changes, the other way round.
        let back = summary(&diff(&new, &base));
        assert_eq!(back.len(), 5);
        assert!(back.contains(&(
            Area::Graph,
            "node archive (output)".to_owned(),
            String::new(),
            ChangeKind::Removed
        )));
    }

    #[test]
    fn a_removed_node_and_its_edges() {
        let base = load(BASE);
        let without_review = BASE
            .replace("next: check", "next: send")
            .replace(
                "  - kind: review\n    id: check\n    role: support-agent\n    draft: \"{{ draft.text }}\"\n    on: { approved: send }\n",
                "",
            )
            .replace("{{ check.text }}", "{{ draft.text }}");
        let new = load(&without_review);
        let got = summary(&diff(&base, &new));
        let subjects: Vec<&str> = got.iter().map(|(_, s, _, _)| s.as_str()).collect();
        assert!(subjects.contains(&"node check (review)"), "{got:?}");
        assert!(subjects.contains(&"edge draft -> check"), "{got:?}");
        assert!(subjects.contains(&"edge draft -> send"), "{got:?}");
        assert!(subjects.contains(&"edge check -approved-> send"), "{got:?}");
        assert!(
            subjects.contains(&"node send (output)"),
            "content changed: {got:?}"
        );
    }
}
