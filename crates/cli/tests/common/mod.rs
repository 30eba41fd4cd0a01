//! What the CLI's end-to-end tests share: a small project and a way to run the real binary in it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub const BLUEPRINT: &str = r#"
id: notes
name: Meeting notes
start: draft
triggers:
  - kind: manual
    id: form
    input:
      type: object
      required: [topic]
      properties:
        topic: { type: string, minLength: 1 }
agents:
  writer: { provider: default, model: scripted }
nodes:
  - kind: prompt
    id: draft
    agent: writer
    template: "Write notes about {{ trigger.topic }}{% if review and review.reason %} (fix: {{ review.reason }}){% endif %}"
    next: review
    max_visits: 3
  - kind: review
    id: review
    role: lead
    draft: "{{ draft.text }}"
    on:
      approved: save
      rejected: draft
  - kind: output
    id: save
    file: { path: "notes/{{ run.id }}.md", content: "{{ review.text }}" }
"#;

pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("blueprints")).unwrap();
    std::fs::write(dir.path().join("blueprints/notes.yaml"), BLUEPRINT).unwrap();
    std::fs::write(
        dir.path().join("processops.toml"),
        "[providers.default]\nkind = \"scripted\"\n",
    )
    .unwrap();
    dir
}

pub fn processops(project: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_processops"))
        .arg("--project")
        .arg(project)
        .args(args)
        .env("USER", "dana")
        .env_remove("PROCESSOPS_USER")
        .output()
        .expect("run processops")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}
