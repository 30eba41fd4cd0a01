//! The log file: the real binary, run in a project, writes JSON lines to
//! `.processops/logs/processops.log.<day>`, filtered by `RUST_LOG`; outside a project it
//! writes nothing to disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::project;

fn run(project: &Path, rust_log: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_processops"));
    cmd.arg("--project")
        .arg(project)
        .args(args)
        .env("USER", "dana")
        .env_remove("PROCESSOPS_USER")
        .env_remove("PROCESSOPS_DATA")
        .env_remove("RUST_LOG");
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let out = cmd.output().expect("run processops");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every JSON line of every log file of the project.
fn log_lines(project: &Path) -> Vec<Value> {
    let dir = project.join(".processops").join("logs");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("processops.log"), "unexpected file {name}");
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            lines.push(value);
        }
    }
    lines
}

fn started(lines: &[Value]) -> usize {
    lines
        .iter()
        .filter(|l| l["message"] == "processops started")
        .count()
}

#[test]
fn a_project_gets_json_log_lines_filtered_by_rust_log() {
    let dir = project();
    let out = run(dir.path(), None, &["validate"]);
    // The console keeps its default (warnings): the info line goes to the file only.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("processops started"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = log_lines(dir.path());
    assert_eq!(started(&lines), 1, "{lines:#?}");
    let line = lines
        .iter()
        .find(|l| l["message"] == "processops started")
        .unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["version"], env!("CARGO_PKG_VERSION"));
    assert!(line["pid"].as_u64().is_some(), "{line}");
    assert!(line["target"].as_str().is_some(), "{line}");
    let at = line["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "timestamp {at}"
    );

    // `RUST_LOG=warn` filters the file too; `RUST_LOG=info` lets the line through again.
    run(dir.path(), Some("warn"), &["validate"]);
    assert_eq!(started(&log_lines(dir.path())), 1);
    run(dir.path(), Some("info"), &["validate"]);
    assert_eq!(started(&log_lines(dir.path())), 2);
}

#[test]
fn outside_a_project_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), None, &["schema"]);
    assert!(
        !dir.path().join(".processops").exists(),
        "a folder that is not a project got a data folder"
    );
}
