//! The built-in offline model end to end: a project whose provider is `builtin` drafts with
//! SmolLM2 in process; the run is approved; then, with the model unreachable, `runs replay`
//! reproduces the run byte for byte from its recording.
//!
//! Needs the model files (`processops models pull`, which the test command runs first); a
//! missing file fails with that instruction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json, processops, stdout};

#[test]
fn the_builtin_model_drafts_offline_and_replay_reproduces_the_run_without_it() {
    let dir = common::project();
    std::fs::write(
        dir.path().join("processops.toml"),
        "[providers.default]\nkind = \"builtin\"\nmax_tokens = 40\n\n[retrieval]\nembeddings = \"off\"\n",
    )
    .unwrap();
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"topic": "the Q3 hiring plan"}"#).unwrap();

    let run = json(&processops(
        dir.path(),
        &["run", "notes", "-p", payload.to_str().unwrap(), "--json"],
    ));
    assert_eq!(run["run"]["status"], "waiting", "{run:#}");
    let run_id = run["run"]["id"].as_str().unwrap().to_owned();
    let tasks = json(&processops(dir.path(), &["inbox", "list", "--json"]));
    let draft = tasks[0]["draft"].as_str().unwrap().to_owned();
    assert!(!draft.trim().is_empty(), "the built-in model wrote nothing");
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    let out = processops(dir.path(), &["inbox", "decide", &task, "--approve"]);
    assert!(out.status.success(), "{}", stdout(&out));

    let shown = json(&processops(
        dir.path(),
        &["runs", "show", &run_id, "--json"],
    ));
    assert_eq!(shown["run"]["status"], "completed");
    let saved = std::fs::read_dir(dir.path().join("outputs/notes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(std::fs::read_to_string(saved).unwrap(), draft);

    // The model cannot be reached any more: only the recording can answer.
    std::fs::write(
        dir.path().join("processops.toml"),
        "[providers.default]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    let report = json(&processops(
        dir.path(),
        &["runs", "replay", &run_id, "--json"],
    ));
    assert_eq!(report["replay_status"], "completed", "{report:#}");
    let steps = report["steps"].as_array().unwrap();
    let nodes: Vec<&str> = steps.iter().map(|s| s["node"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["draft", "review", "save"]);
    assert!(
        steps
            .iter()
            .all(|s| s["outcome"] == "same" && s["prompt_changed"] == false),
        "{report:#}"
    );
    assert!(report["unanswered"].as_array().unwrap().is_empty());

    // The human-readable form says so, and exits 0.
    let out = processops(dir.path(), &["runs", "replay", &run_id]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("identical"), "{}", stdout(&out));
}
