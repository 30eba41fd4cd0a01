//! The generated documents committed to the repository match the code that generates them:
//! `blueprints/schema.json` (editors autocomplete blueprints with it) and `docs/openapi.json`
//! (the HTTP API's contract). After changing the blueprint model or the API, run
//! `PROCESSOPS_BLESS=1 cargo test -p processops-api --test committed` to rewrite them.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::Value;

const BLESS: &str = "PROCESSOPS_BLESS";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn blessing() -> bool {
    std::env::var(BLESS).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Compare a committed file with what the code generates; with `PROCESSOPS_BLESS=1`,
/// rewrite it instead.
fn check_committed(relative: &str, generated: &str) {
    let path = repo_root().join(relative);
    let committed = std::fs::read_to_string(&path).ok();
    if committed.as_deref() == Some(generated) {
        return;
    }
    if blessing() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("{BLESS}: rewrote {relative}");
        return;
    }
    let what = match &committed {
        None => "is missing".to_owned(),
        Some(text) => {
            let line = text
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| text.lines().count().min(generated.lines().count()));
            format!(
                "is out of date (first difference at line {}: committed {:?}, generated {:?})",
                line + 1,
                text.lines().nth(line).unwrap_or("<end of file>"),
                generated.lines().nth(line).unwrap_or("<end of file>"),
            )
        }
    };
    panic!(
        "{relative} {what}.\nIt is generated from the code: run\n\n    {BLESS}=1 cargo test -p processops-api --test committed\n\nand commit the result."
    );
}

fn blueprint_schema() -> String {
    let schema = processops_core::blueprint::json_schema();
    assert!(schema.is_object(), "the blueprint schema did not generate");
    serde_json::to_string_pretty(&schema).unwrap() + "\n"
}

fn openapi_json() -> String {
    processops_api::http::openapi().to_pretty_json().unwrap() + "\n"
}

#[test]
fn blueprint_schema_is_committed_and_current() {
    check_committed("blueprints/schema.json", &blueprint_schema());
}

#[test]
fn openapi_is_committed_and_current() {
    check_committed("docs/openapi.json", &openapi_json());
}

#[test]
fn openapi_is_3_1_and_covers_every_endpoint() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "ProcessOps engine API");
    for (path, method) in [
        ("/healthz", "get"),
        ("/api/blueprints", "get"),
        ("/api/validate", "post"),
        ("/api/runs", "get"),
        ("/api/runs", "post"),
        ("/api/runs/{id}", "get"),
        ("/api/runs/{id}/retry", "post"),
        ("/api/tasks", "get"),
        ("/api/tasks/{id}", "get"),
        ("/api/tasks/{id}/decision", "post"),
        ("/hooks/{blueprint}/{trigger}", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let error = &doc["components"]["schemas"]["ApiError"];
    assert_eq!(error["required"], serde_json::json!(["code", "message"]));
}

#[test]
fn blueprint_schema_describes_the_format() {
    let schema: Value = serde_json::from_str(&blueprint_schema()).unwrap();
    assert!(
        schema["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("json-schema.org")),
        "{}",
        schema["$schema"]
    );
    assert_eq!(schema["title"], "Blueprint");
    let required = schema["required"].as_array().unwrap();
    for field in ["id", "name", "start", "nodes"] {
        assert!(
            required.iter().any(|r| r == field),
            "`{field}` is not required"
        );
    }
}

#[test]
fn typescript_types_are_committed_and_current() {
    check_committed(
        "ui/src/api/types.gen.ts",
        &processops_api::typescript_bindings(),
    );
}
