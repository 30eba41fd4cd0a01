//! The example blueprints in `blueprints/` are what new users copy: every one must check
//! without errors, and together they cover every domain of the product brief.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use processops_core::blueprint::{self, Blueprint, Node, Trigger};

/// The domains of the product brief's process table, as blueprints spell them in `domain:`.
const DOMAINS: &[&str] = &[
    "Sales & GTM",
    "HR & People",
    "Customer Support",
    "Finance",
    "Legal & Risk",
    "Product/Tech",
];

fn examples() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../blueprints");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no blueprints in {}", dir.display());
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn load_all() -> Vec<(String, Blueprint)> {
    let mut problems = Vec::new();
    let mut loaded = Vec::new();
    for (path, text) in examples() {
        let file = format!("blueprints/{}", name(&path));
        let checked = blueprint::check(&text);
        problems.extend(
            checked
                .diagnostics
                .iter()
                .map(|d| d.display_in(&file).to_string()),
        );
        if let Some(bp) = checked.blueprint {
            loaded.push((name(&path), bp));
        }
    }
    assert!(
        problems.is_empty(),
        "the examples must check cleanly:\n{}",
        problems.join("\n")
    );
    loaded
}

#[test]
fn every_example_checks_without_errors_or_warnings() {
    load_all();
}

#[test]
fn every_domain_of_the_product_brief_has_an_example() {
    let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, bp) in load_all() {
        by_domain
            .entry(bp.domain.clone().unwrap_or_default())
            .or_default()
            .push(file);
    }
    for domain in DOMAINS {
        assert!(
            by_domain.contains_key(*domain),
            "no example for `{domain}`; examples by domain: {by_domain:?}"
        );
    }
}

#[test]
fn examples_follow_the_house_conventions() {
    for (path, text) in examples() {
        let file = name(&path);
        assert!(
            text.starts_with("# yaml-language-server: $schema=./schema.json\n"),
            "{file} must start with the schema modeline so editors autocomplete"
        );
        let checked = blueprint::check(&text);
        let Some(bp) = checked.blueprint else {
            continue;
        };
        assert_eq!(
            format!("{}.yaml", bp.id),
            file,
            "a blueprint's file is named after its id"
        );
        assert!(!bp.description.is_empty(), "{file}: describe the process");
        for (agent, config) in &bp.agents {
            assert_eq!(
                config.provider, "default",
                "{file}: agent `{agent}` should use the `default` provider"
            );
        }
        assert!(
            !bp.triggers.is_empty(),
            "{file}: an example should show how it starts"
        );
    }
}

#[test]
fn examples_show_every_trigger_and_node_kind() {
    let mut triggers = std::collections::BTreeSet::new();
    let mut nodes = std::collections::BTreeSet::new();
    for (_, bp) in load_all() {
        triggers.extend(bp.triggers.iter().map(Trigger::kind_name));
        nodes.extend(bp.nodes.iter().map(Node::kind_name));
    }
    assert_eq!(
        triggers.into_iter().collect::<Vec<_>>(),
        ["event", "folder_drop", "manual", "schedule", "webhook"]
    );
    assert_eq!(
        nodes.into_iter().collect::<Vec<_>>(),
        [
            "branch",
            "output",
            "prompt",
            "retrieve",
            "review",
            "route",
            "transform"
        ]
    );
}

#[test]
fn emitted_events_have_listeners_among_the_examples() {
    let all = load_all();
    let listened: Vec<&str> = all
        .iter()
        .flat_map(|(_, bp)| bp.triggers.iter())
        .filter_map(|t| match t {
            Trigger::Event(e) => Some(e.event.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        listened.contains(&"prd.approved"),
        "the weekly digest listens for approved PRDs: {listened:?}"
    );
    let emitted: Vec<&str> = all
        .iter()
        .flat_map(|(_, bp)| bp.nodes.iter())
        .filter_map(|n| match n {
            Node::Output(o) => o.emit.as_ref().map(|e| e.event.as_str()),
            _ => None,
        })
        .collect();
    for event in &listened {
        assert!(
            emitted.contains(event),
            "`{event}` is listened for but no example emits it"
        );
    }
}
