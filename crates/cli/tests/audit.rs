//! `processops audit` with the real binary: a decision is audited, the log lists, exports and
//! verifies; after the database file is tampered with, `verify` names the entry and fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use serde_json::{Value, json};

mod common;

use common::{processops, stdout};

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn json(o: Output) -> Value {
    serde_json::from_slice(&ok(o).stdout).unwrap()
}

#[test]
fn a_decision_is_audited_and_tampering_fails_verify() {
    let dir = common::project();
    let d = dir.path();
    let payload = d.join("p.json");
    std::fs::write(&payload, json!({ "topic": "budget" }).to_string()).unwrap();
    json(processops(
        d,
        &["run", "notes", "-p", payload.to_str().unwrap(), "--json"],
    ));
    let tasks = json(processops(d, &["inbox", "list", "--json"]));
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    ok(processops(d, &["inbox", "decide", &task, "--approve"]));

    // Newest first: the decision, the version the engine loaded, and the project's settings
    // as the first start found them.
    let entries = json(processops(d, &["audit", "list", "--json"]));
    let got: Vec<(&str, &str)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("dana", "task.decided"),
            ("engine", "version.added"),
            ("processops.toml", "setting.changed")
        ]
    );
    assert_eq!(entries[2]["subject"], "setting:providers.default");
    assert_eq!(entries[0]["subject"], task.as_str());
    assert_eq!(entries[0]["after"]["action"], "approve");
    let only = json(processops(
        d,
        &[
            "audit", "list", "--action", "task", "--since", "1h", "--json",
        ],
    ));
    assert_eq!(only.as_array().unwrap().len(), 1);
    let table = stdout(&ok(processops(d, &["audit", "list"])));
    assert!(
        table.contains("task.decided") && table.contains("dana"),
        "{table}"
    );

    let verified = stdout(&ok(processops(d, &["audit", "verify"])));
    assert!(
        verified.contains("audit chain intact: 3 entries, head "),
        "{verified}"
    );

    let csv = d.join("audit.csv");
    ok(processops(
        d,
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--out",
            csv.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 4);
    let jsonl = stdout(&ok(processops(
        d,
        &["audit", "export", "--format", "jsonl"],
    )));
    assert_eq!(jsonl.lines().count(), 3);

    // Rewrite the decision as a rejection, directly in the file.
    let conn = rusqlite::Connection::open(d.join(".processops/processops.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_no_update;
         UPDATE audit SET after = replace(after, 'approve', 'reject') WHERE action = 'task.decided';",
    )
    .unwrap();
    drop(conn);
    let o = processops(d, &["audit", "verify"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("BROKEN at entry 3 (edited)"),
        "expected the entry named in:\n{out}"
    );
    assert!(out.contains("task.decided by dana"), "{out}");
    assert!(out.contains("as evidence"), "{out}");
    let verdict =
        serde_json::from_slice::<Value>(&processops(d, &["audit", "verify", "--json"]).stdout)
            .unwrap();
    assert_eq!(verdict["status"], "broken");
    assert_eq!(verdict["seq"], 3);
    assert_eq!(verdict["kind"], "edited");

    let refused = processops(d, &["audit", "list", "--since", "soon"]);
    assert_eq!(refused.status.code(), Some(1));
}

/// Editing roles or settings in processops.toml is audited at the next start, with the
/// before and after.
#[test]
fn role_and_setting_edits_in_the_project_file_are_audited() {
    let dir = common::project();
    let d = dir.path();
    // Any command that starts the engine notices the file (the audit commands only read).
    let start = || ok(processops(d, &["metrics", "--json"]));
    start();
    let settings = d.join("processops.toml");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str(
        "\n[users.dana]\nroles = [\"hr-manager\"]\n\n[retrieval]\nembeddings = \"off\"\n",
    );
    std::fs::write(&settings, &text).unwrap();
    start();
    std::fs::write(
        &settings,
        text.replace("[\"hr-manager\"]", "[\"hr-manager\", \"governance-lead\"]"),
    )
    .unwrap();
    start();
    start();
    let entries = json(processops(d, &["audit", "list", "--json"]));
    let changes: Vec<(String, Value, Value)> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "role.changed" || e["subject"] == "setting:retrieval")
        .map(|e| {
            (
                e["subject"].as_str().unwrap().to_owned(),
                e["before"].clone(),
                e["after"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "role:dana".to_owned(),
                json!(["hr-manager"]),
                json!(["hr-manager", "governance-lead"])
            ),
            (
                "setting:retrieval".to_owned(),
                Value::Null,
                json!({ "embeddings": "off" })
            ),
            ("role:dana".to_owned(), Value::Null, json!(["hr-manager"])),
        ]
    );
    assert!(stdout(&ok(processops(d, &["audit", "verify"]))).contains("intact"));
}
