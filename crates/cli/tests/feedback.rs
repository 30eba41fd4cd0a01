//! An evaluator's session with the real binary: runs are drafted and reviewed, then tagged,
//! listed, queued, compared between evaluators and exported as JSONL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

mod common;

use common::{processops, stdout};

/// The shared project, with a taxonomy that adds one tag for `notes`.
fn project() -> tempfile::TempDir {
    let dir = common::project();
    std::fs::write(
        dir.path().join("evaluation.toml"),
        "[taxonomy]\nnotes = [\"owner-missing\"]\n",
    )
    .unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "failed: {}\n{}", stdout(&o), stderr(&o));
    o
}

fn json(o: Output) -> Value {
    serde_json::from_slice(&ok(o).stdout).unwrap()
}

fn refused(o: &Output, message: &str) {
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(o), stderr(o));
    assert!(
        stderr(o).contains(message),
        "expected {message:?} in:\n{}",
        stderr(o)
    );
}

/// Start a run, then decide its review with `decision` (e.g. `--approve`, `--edit TEXT`).
fn finished_run(dir: &Path, topic: &str, decision: &[&str]) -> String {
    let payload = dir.join("p.json");
    std::fs::write(&payload, json!({ "topic": topic }).to_string()).unwrap();
    let run = json(processops(
        dir,
        &["run", "notes", "-p", payload.to_str().unwrap(), "--json"],
    ));
    assert_eq!(run["run"]["status"], "waiting");
    let id = run["run"]["id"].as_str().unwrap().to_owned();
    let tasks = json(processops(dir, &["inbox", "list", "--json"]));
    let task = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["run_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no task for run {id}: {tasks}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut args = vec!["inbox", "decide", &task];
    args.extend_from_slice(decision);
    ok(processops(dir, &args));
    let detail = json(processops(dir, &["runs", "show", &id, "--json"]));
    assert_eq!(detail["run"]["status"], "completed", "{detail}");
    id
}

fn short(id: &str) -> &str {
    &id[id.len() - 8..]
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn an_evaluator_tags_compares_and_exports() {
    let dir = project();
    let d = dir.path();
    let budget = finished_run(d, "budget", &["--edit", "Budget notes, edited by hand"]);
    let launch = finished_run(d, "launch", &["--approve"]);

    // The queue: drafts and approved texts of finished runs, newest run first.
    let queue = json(processops(d, &["eval", "queue", "--json"]));
    let got: Vec<(String, String, String)> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["run"].as_str().unwrap().to_owned(),
                i["node"].as_str().unwrap().to_owned(),
                i["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |run: &str, node: &str, kind: &str| (run.to_owned(), node.into(), kind.into());
    assert_eq!(
        got,
        vec![
            row(&launch, "review", "review"),
            row(&launch, "draft", "prompt"),
            row(&budget, "review", "review"),
            row(&budget, "draft", "prompt"),
        ]
    );
    assert_eq!(queue[2]["text"], "Budget notes, edited by hand");
    assert_eq!(queue[2]["edited"], true);
    assert_eq!(queue[2]["handle"], format!("{}:review:1", short(&budget)));
    assert!(
        queue[0]["allowed_tags"]
            .as_array()
            .unwrap()
            .contains(&json!("owner-missing")),
        "{}",
        queue[0]
    );
    let table = stdout(&ok(processops(d, &["eval", "queue"])));
    assert!(
        table.contains(&format!("{}:review:1", short(&budget))),
        "{table}"
    );
    assert!(
        table.contains("Tags for notes: hallucination, tone"),
        "{table}"
    );

    // dana tags the edited budget notes (the run's last 8 characters are enough).
    let budget_review = format!("{}:review", short(&budget));
    let r = json(processops(
        d,
        &[
            "tag",
            "add",
            &budget_review,
            "tone",
            "great-example",
            "owner-missing",
            "--rating",
            "5",
            "--comment",
            "Clear and complete",
            "--json",
        ],
    ));
    assert_eq!(
        r["changed"],
        json!(["tone", "great-example", "owner-missing"])
    );
    assert_eq!(
        r["feedback"]["tags"],
        json!(["great-example", "owner-missing", "tone"])
    );
    assert_eq!(r["feedback"]["rating"], 5);
    assert_eq!(r["feedback"]["evaluator"], "dana");
    // Adding again changes nothing; removing and re-adding works.
    let again = stdout(&ok(processops(d, &["tag", "add", &budget_review, "tone"])));
    assert!(again.contains("already there: tone"), "{again}");
    let removed = stdout(&ok(processops(
        d,
        &["tag", "remove", &budget_review, "owner-missing"],
    )));
    assert!(removed.contains("removed owner-missing"), "{removed}");
    assert!(
        removed.contains("now: great-example, tone; rated 5/5"),
        "{removed}"
    );

    // Mistakes are refused with what to do.
    refused(
        &processops(d, &["tag", "add", &budget_review, "halucination"]),
        "`halucination` is not a tag of `notes` (did you mean `hallucination`?); allowed: hallucination, tone, missing-policy, factual-error, great-example, needs-edit, owner-missing",
    );
    refused(
        &processops(
            d,
            &["tag", "add", &format!("{}:drat", short(&budget)), "tone"],
        ),
        "has no finished step `drat` (did you mean `draft`?); finished steps: draft:1, review:1, save:1",
    );
    refused(
        &processops(d, &["tag", "add", short(&budget), "tone"]),
        "write <run>:<node>[:<visit>]",
    );
    refused(
        &processops(
            d,
            &[
                "tag",
                "add",
                &format!("{}:review:2", short(&budget)),
                "tone",
            ],
        ),
        "has no visit 2 of `review`",
    );
    refused(
        &processops(d, &["tag", "add", "ffffffff:review", "tone"]),
        "no run id starts with `ffffffff`",
    );
    refused(
        &processops(d, &["tag", "add", &budget_review]),
        "give at least one tag, a rating or a comment",
    );
    let out = processops(d, &["tag", "add", &budget_review, "--rating", "9"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses ratings out of range"
    );

    // A second evaluator, and ratings without tags (which also count as evaluated).
    let launch_review = format!("{}:review:1", short(&launch));
    ok(processops(
        d,
        &["tag", "add", &budget_review, "tone", "--by", "lee"],
    ));
    ok(processops(
        d,
        &["tag", "add", &launch_review, "--rating", "4", "--by", "lee"],
    ));
    ok(processops(
        d,
        &["tag", "add", &launch_review, "--rating", "3"],
    ));

    // dana's queue no longer offers what she evaluated; lee's still has the drafts.
    let mine = json(processops(d, &["eval", "queue", "--json"]));
    let nodes: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["draft", "draft"]);
    let sample = json(processops(
        d,
        &[
            "eval", "queue", "--by", "lee", "--seed", "7", "--limit", "1", "--json",
        ],
    ));
    assert_eq!(sample.as_array().unwrap().len(), 1);
    assert_eq!(sample[0]["kind"], "prompt");

    // The list, per output and evaluator.
    let list = json(processops(d, &["tag", "list", "--json"]));
    let rows: Vec<(String, String, Value, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["run"].as_str().unwrap().to_owned(),
                f["evaluator"].as_str().unwrap().to_owned(),
                f["tags"].clone(),
                f["rating"].clone(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 4, "{list}");
    assert!(rows.contains(&(
        budget.clone(),
        "dana".into(),
        json!(["great-example", "tone"]),
        json!(5)
    )));
    assert!(rows.contains(&(budget.clone(), "lee".into(), json!(["tone"]), Value::Null)));
    assert!(rows.contains(&(launch, "lee".into(), json!([]), json!(4))));
    let only = json(processops(
        d,
        &["tag", "list", &budget_review, "--by", "lee", "--json"],
    ));
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(
        json(processops(
            d,
            &["tag", "list", "--tag", "great-example", "--json"]
        ))
        .as_array()
        .unwrap()
        .len(),
        1
    );
    let table = stdout(&ok(processops(d, &["tag", "list"])));
    assert!(table.contains("Clear and complete"), "{table}");

    // Agreement between dana and lee over the two reviews they both evaluated.
    let report = json(processops(d, &["eval", "agreement", "--json"]));
    assert_eq!(report["method"], "cohen");
    assert_eq!(report["evaluators"], json!(["dana", "lee"]));
    assert_eq!(report["outputs"], 2);
    let tag = |name: &str| {
        report["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tag"] == name)
            .unwrap()
            .clone()
    };
    // tone: both said present on one and absent on the other.
    assert_eq!(tag("tone")["kappa"], 1.0);
    // great-example: dana yes / lee no, then both no: p_o = 0.5, p_e = 0.5.
    assert_eq!(tag("great-example")["kappa"], 0.0);
    assert_eq!(tag("great-example")["observed"], 0.5);
    // Nobody said hallucination: kappa undefined.
    assert_eq!(tag("hallucination")["kappa"], Value::Null);
    assert_eq!(tag("hallucination")["observed"], 1.0);
    let table = stdout(&ok(processops(d, &["eval", "agreement"])));
    assert!(
        table.contains("Cohen's kappa between dana, lee over 2 output(s)"),
        "{table}"
    );
    refused(
        &processops(
            d,
            &[
                "eval",
                "agreement",
                "--evaluator",
                "dana",
                "--evaluator",
                "zoe",
            ],
        ),
        "zoe gave no feedback; evaluators: dana, lee",
    );

    // Export: the chat format ends with the approved (edited) text.
    let chat = d.join("chat.jsonl");
    let out = ok(processops(
        d,
        &[
            "eval",
            "export",
            "--format",
            "chat",
            "--out",
            chat.to_str().unwrap(),
        ],
    ));
    assert!(
        stderr(&out).contains("exported 2 of 2 approved output(s)"),
        "{}",
        stderr(&out)
    );
    let chat_lines = lines(&chat);
    assert_eq!(chat_lines.len(), 2);
    let first = chat_lines[0]["messages"].as_array().unwrap();
    assert_eq!(
        first.last().unwrap(),
        &json!({ "role": "assistant", "content": "Budget notes, edited by hand" })
    );
    assert_eq!(first[first.len() - 2]["role"], "user");
    assert_eq!(
        first[first.len() - 2]["content"],
        "Write notes about budget"
    );
    assert_eq!(
        chat_lines[1]["messages"][0]["content"],
        "Write notes about launch"
    );

    // Filtered by tag; and the eval set with tags and ratings.
    let tagged = d.join("great.jsonl");
    let out = ok(processops(
        d,
        &[
            "eval",
            "export",
            "--format",
            "chat",
            "--tag",
            "great-example",
            "--out",
            tagged.to_str().unwrap(),
        ],
    ));
    assert_eq!(lines(&tagged).len(), 1);
    assert!(
        stderr(&out).contains("1 without the tags asked for"),
        "{}",
        stderr(&out)
    );
    let evalset = d.join("evalset.jsonl");
    ok(processops(
        d,
        &[
            "eval",
            "export",
            "--format",
            "evalset",
            "--blueprint",
            "notes",
            "--out",
            evalset.to_str().unwrap(),
        ],
    ));
    let set = lines(&evalset);
    assert_eq!(set.len(), 2);
    let b = &set[0];
    assert_eq!(b["approved_output"], "Budget notes, edited by hand");
    assert_eq!(b["edited"], true);
    assert_eq!(b["tags"], json!(["great-example", "tone"]));
    assert_eq!(b["tag_counts"], json!({ "great-example": 1, "tone": 2 }));
    assert_eq!(b["ratings"], json!({ "dana": 5 }));
    assert_eq!(b["comments"], json!({ "dana": "Clear and complete" }));
    assert_eq!(b["run"], budget.as_str());
    assert_eq!(b["blueprint"], "notes");
    assert!(b["version"].as_str().unwrap().len() >= 16);
    assert_eq!(
        b["input"]["messages"].as_array().unwrap().last().unwrap()["content"],
        "Write notes about budget"
    );
    assert_eq!(set[1]["ratings"], json!({ "dana": 3, "lee": 4 }));
    // To standard output when there is no --out.
    let out = ok(processops(
        d,
        &["eval", "export", "--format", "evalset", "--tag", "tone"],
    ));
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = processops(d, &["eval", "export", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        stderr(&out).contains("`csv` is not an export format; use chat or evalset"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_broken_taxonomy_file_is_reported_with_its_line() {
    let dir = project();
    std::fs::write(
        dir.path().join("evaluation.toml"),
        "[taxonomy]\nnotes = [\"Owner Missing\"]\n",
    )
    .unwrap();
    refused(
        &processops(dir.path(), &["tag", "taxonomy", "notes"]),
        "evaluation.toml: line 2: `Owner Missing` is not a tag name",
    );
    std::fs::write(
        dir.path().join("evaluation.toml"),
        "[taxonomy]\nnotes = [\"owner-missing\"]\n",
    )
    .unwrap();
    let tags = json(processops(
        dir.path(),
        &["tag", "taxonomy", "notes", "--json"],
    ));
    assert_eq!(
        tags["tags"].as_array().unwrap().last().unwrap(),
        "owner-missing"
    );
    let empty = json(processops(dir.path(), &["eval", "agreement", "--json"]));
    assert_eq!(empty["outputs"], 0);
    assert!(
        empty["note"]
            .as_str()
            .unwrap()
            .contains("at least two evaluators"),
        "{empty}"
    );
}

#[test]
fn the_hidden_benchmark_reports_tags_per_second() {
    let dir = project();
    let r = json(processops(
        dir.path(),
        &["eval", "bench", "--tags", "200", "--json"],
    ));
    assert_eq!(r["tags_per_repeat"], 200);
    assert!(r["one_write_tags_per_s"].as_f64().unwrap() > 0.0);
    assert!(r["requests_of_10_tags_per_s"].as_f64().unwrap() > 0.0);
}
