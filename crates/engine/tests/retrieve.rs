//! `retrieve` nodes: source filters, token budgets, snippets and the search mode in the output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use processops_core::journal::Event;
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_store::{Durability, NewDocument, RunStatus, Store};
use serde_json::{Value, json};

const BLUEPRINT: &str = r#"
id: lookup
name: Policy lookup
start: all
triggers:
  - kind: manual
    id: ask
nodes:
  - kind: retrieve
    id: all
    collection: kb
    query: "{{ trigger.question }}"
    top_k: 10
    next: [policies, budget]
  - kind: retrieve
    id: policies
    collection: kb
    query: "{{ trigger.question }}"
    filter: "policies/*.md"
    top_k: 10
  - kind: retrieve
    id: budget
    collection: kb
    query: "{{ trigger.question }}"
    top_k: 10
    max_tokens: 30
"#;

/// A passage of about `tokens` estimated tokens (chars / 4) about travel.
fn travel_passage(n: usize, tokens: usize) -> String {
    let head = format!("Travel rule {n}: book trains early.");
    format!(
        "{head}{}",
        " x".repeat((tokens * 4).saturating_sub(head.len()) / 2)
    )
}

async fn engine(dir: &std::path::Path) -> Engine {
    let store = Store::open(&dir.join("db.sqlite"), Durability::Process).unwrap();
    store
        .ingest_documents(
            "kb".into(),
            vec![
                NewDocument {
                    source: "policies/travel.md".into(),
                    sha256: "1".into(),
                    passages: vec![travel_passage(1, 12), travel_passage(2, 12)],
                },
                NewDocument {
                    source: "policies/eu/travel.md".into(),
                    sha256: "2".into(),
                    passages: vec![travel_passage(3, 12)],
                },
                NewDocument {
                    source: "notes/travel.txt".into(),
                    sha256: "3".into(),
                    passages: vec![travel_passage(4, 12)],
                },
            ],
        )
        .await
        .unwrap();
    let registry = Arc::new(Registry::default());
    registry.insert(Arc::new(Compiled::from_source(BLUEPRINT).unwrap()));
    let engine = Engine::new(EngineConfig {
        store,
        registry,
        providers: HashMap::new(),
        outputs_dir: dir.join("outputs"),
    })
    .unwrap();
    engine.record_versions().await.unwrap();
    engine
}

async fn outputs(engine: &Engine, question: &str) -> HashMap<String, Value> {
    let started = engine
        .start_run("lookup", None, json!({ "question": question }), None)
        .await
        .unwrap();
    engine.settle(started.run_id).await;
    let (run, journal) = engine.store().load_run(started.run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{journal:?}");
    journal
        .into_iter()
        .filter_map(|e| match e.event {
            Event::NodeFinished { node, output, .. } => Some((node, output)),
            _ => None,
        })
        .collect()
}

fn sources(output: &Value) -> Vec<String> {
    let mut s: Vec<String> = output["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["source"].as_str().unwrap().to_owned())
        .collect();
    s.sort();
    s
}

#[tokio::test]
async fn retrieve_applies_the_filter_and_the_token_budget() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let out = outputs(&engine, "when should I book trains?").await;

    let all = &out["all"];
    assert_eq!(all["passages"].as_array().unwrap().len(), 4);
    assert_eq!(all["mode"], "bm25");
    let snippets = all["snippets"].as_array().unwrap();
    assert_eq!(snippets.len(), 4, "one snippet per passage");
    assert!(
        snippets
            .iter()
            .all(|s| s.as_str().unwrap().contains("**trains**")),
        "{snippets:?}"
    );
    assert_eq!(all["query"], "when should I book trains?");

    assert_eq!(
        sources(&out["policies"]),
        vec![
            "policies/eu/travel.md",
            "policies/travel.md",
            "policies/travel.md"
        ],
        "the filter keeps policies/ and everything below it"
    );

    // Each `[source] text` entry is about 17 tokens: two would be over 30.
    let budget = &out["budget"];
    assert_eq!(budget["passages"].as_array().unwrap().len(), 1);
    assert_eq!(budget["snippets"].as_array().unwrap().len(), 1);
    let text = budget["text"].as_str().unwrap();
    assert!(text.starts_with('[') && !text.contains("\n\n"), "{text}");
    assert_eq!(
        budget["passages"][0]["source"], all["passages"][0]["source"],
        "the budget keeps the best passage"
    );
}

#[tokio::test]
async fn a_budget_smaller_than_the_best_passage_still_returns_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let source = BLUEPRINT.replace("max_tokens: 30", "max_tokens: 1");
    engine
        .registry()
        .insert(Arc::new(Compiled::from_source(&source).unwrap()));
    engine.record_versions().await.unwrap();
    let out = outputs(&engine, "trains").await;
    assert_eq!(out["budget"]["passages"].as_array().unwrap().len(), 1);
    // Nothing matches: no passages, and no error.
    let out = outputs(&engine, "submarine").await;
    assert!(out["budget"]["passages"].as_array().unwrap().is_empty());
    assert_eq!(out["budget"]["text"], "");
}
