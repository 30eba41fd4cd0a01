//! The `processops` command as a person uses it: exit codes, messages, and the inbox flow,
//! both in-process and forwarded to a running `processops serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{BLUEPRINT, json, processops, project, stdout};

#[test]
fn validate_reports_every_problem_with_position_and_exit_code() {
    let dir = project();
    let ok = processops(dir.path(), &["validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("1 blueprint valid"));

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        BLUEPRINT
            .replace("next: review", "next: reviw")
            .replace("agent: writer", "agent: writr"),
    )
    .unwrap();
    let out = processops(dir.path(), &["validate", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let file = broken.display().to_string();
    assert!(
        text.contains(&format!(
            "{file}:18:12: error[unknown-agent]: no agent is named `writr`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:20:11: error[unknown-node]: no node has the id `reviw`"
        )),
        "{text}"
    );
    assert!(text.contains("did you mean `review`?"), "{text}");
    assert!(text.contains("2 error(s)"), "{text}");

    let out = processops(
        dir.path(),
        &["validate", "--json", broken.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["valid"], false);
    assert_eq!(report[0]["diagnostics"].as_array().unwrap().len(), 2);

    std::fs::write(&broken, "\t- not yaml: [").unwrap();
    let out = processops(dir.path(), &["validate", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("error[yaml-syntax]"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_manager_works_the_inbox_in_process() {
    let dir = project();
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"topic": "Q3 planning"}"#).unwrap();

    let run = json(&processops(
        dir.path(),
        &[
            "run",
            "notes",
            "--payload",
            payload.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(run["run"]["status"], "waiting");
    let run_id = run["run"]["id"].as_str().unwrap().to_owned();

    let tasks = json(&processops(dir.path(), &["inbox", "list", "--json"]));
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    let short = &task[task.len() - 8..];

    let shown = processops(dir.path(), &["inbox", "show", short]);
    assert!(stdout(&shown).contains("Q3 planning"), "{}", stdout(&shown));

    // Reject sends it back to the drafter with the reason; the redraft waits again.
    let out = processops(
        dir.path(),
        &["inbox", "decide", short, "--reject", "add the owners"],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let tasks = json(&processops(dir.path(), &["inbox", "list", "--json"]));
    let second = tasks[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, task);
    assert!(
        tasks[0]["draft"]
            .as_str()
            .unwrap()
            .contains("add the owners"),
        "the redraft did not see the reason: {}",
        tasks[0]["draft"]
    );

    // Deciding the old task again is refused, with who decided it.
    let out = processops(dir.path(), &["inbox", "decide", &task, "--approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("already decided by dana (reject)"),
        "{}",
        stdout(&out)
    );

    // Edit-approve: the edited text is what the output writes.
    let out = processops(
        dir.path(),
        &[
            "inbox",
            "decide",
            &second,
            "--edit",
            "Final notes, edited by hand",
        ],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let detail = json(&processops(
        dir.path(),
        &["runs", "show", &run_id, "--json"],
    ));
    assert_eq!(detail["run"]["status"], "completed");
    let written =
        std::fs::read_to_string(dir.path().join(format!("outputs/notes/{run_id}.md"))).unwrap();
    assert_eq!(written, "Final notes, edited by hand");
    let decided = json(&processops(
        dir.path(),
        &["inbox", "show", &second, "--json"],
    ));
    let diff = decided["diff"].as_str().unwrap();
    assert!(
        diff.contains("+Final notes, edited by hand") && diff.lines().any(|l| l.starts_with('-')),
        "{diff}"
    );
    assert!(decided["decision_latency_ms"].as_i64().unwrap() >= 0);
    let shown = stdout(&processops(dir.path(), &["inbox", "show", &second]));
    assert!(
        shown.contains("edit by dana after") && shown.contains("+Final notes, edited by hand"),
        "{shown}"
    );
    let timeline = stdout(&processops(dir.path(), &["runs", "show", &run_id]));
    for expected in [
        "draft (pass 2)",
        "decision │ reject by dana: add the owners",
        "decision │ edit by dana",
        "save",
    ] {
        assert!(
            timeline.contains(expected),
            "timeline lacks {expected:?}:\n{timeline}"
        );
    }
}

#[test]
fn bad_payloads_and_unknown_blueprints_get_actionable_errors() {
    let dir = project();
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"topic": ""}"#).unwrap();
    let out = processops(
        dir.path(),
        &["run", "notes", "--payload", payload.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not match the input schema of trigger `form`") && err.contains("/topic"),
        "{err}"
    );

    std::fs::write(&payload, "{not json").unwrap();
    let out = processops(
        dir.path(),
        &["run", "notes", "--payload", payload.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid JSON"));

    let out = processops(dir.path(), &["run", "nope"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no blueprint `nope` is loaded (loaded: notes)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn commands_are_forwarded_to_a_running_server() {
    let dir = project();
    let mut server = Command::new(env!("CARGO_BIN_EXE_processops"))
        .args(["serve", "--addr", "127.0.0.1:0", "--project"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = dir.path().join(".processops/engine.addr");
    let started = Instant::now();
    while std::fs::read_to_string(&addr).map_or(true, |a| a.is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"topic": "launch"}"#).unwrap();
    let run = json(&processops(
        dir.path(),
        &["run", "notes", "-p", payload.to_str().unwrap(), "--json"],
    ));
    assert_eq!(run["run"]["status"], "waiting");
    let tasks = json(&processops(dir.path(), &["inbox", "list", "--json"]));
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    let out = processops(dir.path(), &["inbox", "decide", &task, "--approve"]);
    assert!(out.status.success(), "{}", stdout(&out));
    // The server drove the run to completion.
    let started = Instant::now();
    loop {
        let detail = json(&processops(
            dir.path(),
            &["runs", "show", run["run"]["id"].as_str().unwrap(), "--json"],
        ));
        if detail["run"]["status"] == "completed" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run did not complete: {detail}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn escalation_walks_the_chain_then_says_there_is_nowhere_left() {
    let dir = project();
    std::fs::write(
        dir.path().join("blueprints/notes.yaml"),
        BLUEPRINT.replace(
            "    role: lead\n",
            "    role: lead\n    escalation: [director, vp]\n",
        ),
    )
    .unwrap();
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"topic": "budget"}"#).unwrap();
    json(&processops(
        dir.path(),
        &["run", "notes", "-p", payload.to_str().unwrap(), "--json"],
    ));
    let task = json(&processops(dir.path(), &["inbox", "list", "--json"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for role in ["director", "vp"] {
        let out = processops(
            dir.path(),
            &[
                "inbox",
                "decide",
                &task,
                "--escalate",
                "--reason",
                "over my limit",
            ],
        );
        assert!(out.status.success(), "{}", stdout(&out));
        let tasks = json(&processops(
            dir.path(),
            &["inbox", "list", "--role", role, "--json"],
        ));
        assert_eq!(
            tasks.as_array().unwrap().len(),
            1,
            "the task should sit with {role}"
        );
    }
    let out = processops(dir.path(), &["inbox", "decide", &task, "--escalate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("nowhere to escalate"),
        "{}",
        stdout(&out)
    );
    // The vp can still decide it.
    let out = processops(dir.path(), &["inbox", "decide", &task, "--approve"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn managers_find_tasks_by_words_and_claim_them() {
    let dir = project();
    let payload = dir.path().join("p.json");
    for topic in ["Q3 planning", "launch party"] {
        std::fs::write(&payload, format!(r#"{{"topic": "{topic}"}}"#)).unwrap();
        json(&processops(
            dir.path(),
            &["run", "notes", "-p", payload.to_str().unwrap(), "--json"],
        ));
    }
    let found = json(&processops(
        dir.path(),
        &["inbox", "list", "--search", "launch party", "--json"],
    ));
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert!(found[0]["draft"].as_str().unwrap().contains("launch party"));
    let task = found[0]["id"].as_str().unwrap().to_owned();
    assert!(
        json(&processops(
            dir.path(),
            &["inbox", "list", "--search", "budget", "--json"]
        ))
        .as_array()
        .unwrap()
        .is_empty()
    );

    let out = processops(dir.path(), &["inbox", "claim", &task]);
    assert!(
        stdout(&out).contains("is claimed by dana"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        json(&processops(
            dir.path(),
            &["inbox", "list", "--mine", "--json"]
        ))
        .as_array()
        .unwrap()
        .len(),
        1
    );
    let out = processops(
        dir.path(),
        &["inbox", "decide", &task, "--approve", "--by", "bo"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("claimed by dana"), "{}", stdout(&out));
    let out = processops(dir.path(), &["inbox", "decide", &task, "--approve"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn only_people_with_the_tasks_role_may_decide_it() {
    let dir = project();
    std::fs::write(
        dir.path().join("processops.toml"),
        "[providers.default]\nkind = \"scripted\"\n\n[users.dana]\nroles = [\"lead\"]\n\n[users.grace]\nroles = [\"evaluator\"]\n",
    )
    .unwrap();
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"topic": "hiring"}"#).unwrap();
    json(&processops(
        dir.path(),
        &["run", "notes", "-p", payload.to_str().unwrap(), "--json"],
    ));
    let task = json(&processops(dir.path(), &["inbox", "list", "--json"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = processops(
        dir.path(),
        &["inbox", "decide", &task, "--approve", "--by", "grace"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("`grace` cannot decide this task: it is assigned to role `lead` (`grace` has: evaluator)"), "{}", stdout(&out));
    let out = processops(
        dir.path(),
        &["inbox", "decide", &task, "--approve", "--by", "mallory"],
    );
    assert!(
        stdout(&out).contains("`mallory` is not a known user"),
        "{}",
        stdout(&out)
    );
    let out = processops(dir.path(), &["inbox", "decide", &task, "--approve"]);
    assert!(out.status.success(), "dana holds `lead`: {}", stdout(&out));

    // Tagging needs the evaluator role.
    let run = json(&processops(dir.path(), &["runs", "list", "--json"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let output = format!("{}:draft", &run[run.len() - 8..]);
    let out = processops(
        dir.path(),
        &["tag", "add", &output, "tone", "--by", "grace"],
    );
    assert!(
        out.status.success(),
        "grace is an evaluator: {}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = processops(dir.path(), &["tag", "add", &output, "tone", "--by", "dana"]);
    assert_eq!(out.status.code(), Some(1));
    let err = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        err.contains("`dana` cannot tag outputs: that needs the `evaluator` role"),
        "{err}"
    );
}

#[test]
fn batches_decide_tasks_that_share_one_review_policy() {
    let dir = project();
    std::fs::write(
        dir.path().join("blueprints/minutes.yaml"),
        BLUEPRINT.replace("id: notes", "id: minutes"),
    )
    .unwrap();
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"topic": "weekly sync"}"#).unwrap();
    for blueprint in ["notes", "notes", "notes", "minutes"] {
        json(&processops(
            dir.path(),
            &["run", blueprint, "-p", payload.to_str().unwrap(), "--json"],
        ));
    }
    // Mixing two processes in one batch is refused, and nothing is decided.
    let out = processops(dir.path(), &["inbox", "decide", "--all", "--approve"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a batch must share one review policy")
            && err.contains("3 × notes/review")
            && err.contains("1 × minutes/review"),
        "{err}"
    );
    assert_eq!(
        json(&processops(dir.path(), &["inbox", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        4
    );

    let out = processops(
        dir.path(),
        &[
            "inbox",
            "decide",
            "--all",
            "--blueprint",
            "notes",
            "--approve",
        ],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        stdout(&out).matches("(approve) → run").count(),
        3,
        "{}",
        stdout(&out)
    );
    let left = json(&processops(dir.path(), &["inbox", "list", "--json"]));
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["blueprint"], "minutes");
    let runs = json(&processops(
        dir.path(),
        &["runs", "list", "--status", "completed", "--json"],
    ));
    assert_eq!(runs.as_array().unwrap().len(), 3);
}

/// A one-request HTTP receiver on loopback that hands back the request's head.
fn receive_one() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/notes", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = vec![0u8; 16 * 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (url, rx)
}

#[test]
fn secret_headers_reach_the_receiver_but_never_the_database() {
    let dir = project();
    let blueprint = r#"
id: notify
name: Notify
start: send
triggers:
  - kind: manual
    id: form
nodes:
  - kind: output
    id: send
    http:
      url: "{{ trigger.url }}"
      body: '{"hello": "world"}'
      secret_headers: { Authorization: "Bearer $NOTES_API_TOKEN" }
      retries: 0
"#;
    std::fs::write(dir.path().join("blueprints/notify.yaml"), blueprint).unwrap();
    let (url, received) = receive_one();
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, format!(r#"{{"url": "{url}"}}"#)).unwrap();
    let secret = "tok-5f2c9a81e7";
    let out = Command::new(env!("CARGO_BIN_EXE_processops"))
        .arg("--project")
        .arg(dir.path())
        .args(["run", "notify", "-p", payload.to_str().unwrap(), "--json"])
        .env("NOTES_API_TOKEN", secret)
        .output()
        .unwrap();
    let run = json(&out);
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let request = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {secret}")),
        "{request}"
    );
    // Nothing the engine stores or logs (`.processops/logs/`) contains the secret.
    let mut folders = vec![dir.path().join(".processops")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the secret leaked into {}",
                path.display()
            );
        }
    }

    // Without the variable, the step fails and says which one to set.
    let out = processops(
        dir.path(),
        &["run", "notify", "-p", payload.to_str().unwrap(), "--json"],
    );
    let run = json(&out);
    assert_eq!(run["run"]["status"], "attention");
    let error = run["run"]["error"].as_str().unwrap();
    assert!(
        error.contains(
            "secret header `Authorization`: the environment variable `NOTES_API_TOKEN` is not set"
        ),
        "{error}"
    );
}
