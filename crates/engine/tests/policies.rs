//! Review policies: separation of duties and quorums, each rule with a case it allows and a
//! case it refuses (with the message a person sees).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use processops_core::journal::{Action, Decision};
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_store::{Durability, RunStatus, Store, TaskFilter, TaskStatus};
use serde_json::json;
use uuid::Uuid;

const BLUEPRINT: &str = r#"
id: purchase
name: Purchase approval
start: check
triggers:
  - kind: manual
    id: form
nodes:
  - kind: review
    id: check
    role: clerk
    draft: "Buy {{ trigger.item }} for {{ trigger.amount }}"
    not_by: ["{{ trigger.requested_by }}"]
    on: { approved: sign_off, rejected: refused }
  - kind: review
    id: sign_off
    role: manager
    draft: "{{ check.text }}"
    quorum: 2
    distinct_approvers: true
    on: { approved: order, rejected: refused }
  - kind: output
    id: order
    file: { path: "orders/{{ run.id }}.txt", content: "{{ sign_off.text }} approved by {{ sign_off.by }}" }
  - kind: output
    id: refused
    file: { path: "refused/{{ run.id }}.txt", content: "{{ sign_off.reason if sign_off else check.reason }}" }
"#;

async fn engine(dir: &std::path::Path) -> Engine {
    let store = Store::open(&dir.join("db.sqlite"), Durability::Process).unwrap();
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

fn decision(action: Action, by: &str) -> Decision {
    let reason = (action == Action::Reject).then(|| "over budget".to_owned());
    let text = (action == Action::Edit).then(|| "edited".to_owned());
    Decision {
        action,
        by: by.into(),
        text,
        reason,
    }
}

fn pending(engine: &Engine, node: &str) -> Uuid {
    let tasks = engine
        .store()
        .list_tasks(&TaskFilter {
            status: Some(TaskStatus::Pending),
            ..TaskFilter::default()
        })
        .unwrap();
    tasks
        .iter()
        .find(|t| t.task.node == node)
        .unwrap_or_else(|| panic!("no pending `{node}` task"))
        .id
}

async fn decide(engine: &Engine, node: &str, action: Action, by: &str) -> Result<(), String> {
    let task = pending(engine, node);
    let r = engine
        .decide(task, decision(action, by))
        .await
        .map_err(|e| e.to_string());
    engine.settle_all().await;
    r.map(|_| ())
}

#[tokio::test]
async fn separation_of_duties_and_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let s = engine
        .start_run(
            "purchase",
            None,
            json!({"item": "laptop", "amount": 1800, "requested_by": "ria"}),
            None,
        )
        .await
        .unwrap();
    engine.settle(s.run_id).await;
    let run = s.run_id;

    // (review, action, who, expected: Ok or a piece of the refusal)
    let steps: &[(&str, Action, &str, Result<(), &str>)] = &[
        (
            "check",
            Action::Approve,
            "ria",
            Err("`ria` may not decide this task"),
        ),
        ("check", Action::Approve, "carl", Ok(())),
        (
            "sign_off",
            Action::Approve,
            "carl",
            Err("`carl` may not decide this task"),
        ),
        ("sign_off", Action::Approve, "mia", Ok(())),
        (
            "sign_off",
            Action::Approve,
            "mia",
            Err("mia has already approved task"),
        ),
        (
            "sign_off",
            Action::Edit,
            "max",
            Err("needs 2 approvals, so it cannot be edited by one person"),
        ),
    ];
    for (node, action, by, expected) in steps {
        let got = decide(&engine, node, *action, by).await;
        match (expected, &got) {
            (Ok(()), Ok(())) => {}
            (Err(piece), Err(message)) => {
                assert!(message.contains(piece), "{node}/{by}: {message}")
            }
            _ => panic!("{node} {action:?} by {by}: expected {expected:?}, got {got:?}"),
        }
        if node == &"sign_off" {
            assert_eq!(
                engine.store().load_run(run).unwrap().unwrap().0.status,
                RunStatus::Waiting,
                "one approval of two keeps the run waiting"
            );
        }
    }
    assert_eq!(
        engine
            .store()
            .votes(pending(&engine, "sign_off"))
            .unwrap()
            .len(),
        1
    );
    decide(&engine, "sign_off", Action::Approve, "max")
        .await
        .unwrap();
    assert_eq!(
        engine.store().load_run(run).unwrap().unwrap().0.status,
        RunStatus::Completed
    );
    let order =
        std::fs::read_to_string(dir.path().join(format!("outputs/orders/{run}.txt"))).unwrap();
    assert_eq!(order, "Buy laptop for 1800 approved by mia + max");
}

#[tokio::test]
async fn any_rejection_rejects_a_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let s = engine
        .start_run(
            "purchase",
            None,
            json!({"item": "desk", "amount": 400, "requested_by": "ria"}),
            None,
        )
        .await
        .unwrap();
    engine.settle(s.run_id).await;
    decide(&engine, "check", Action::Approve, "carl")
        .await
        .unwrap();
    decide(&engine, "sign_off", Action::Approve, "mia")
        .await
        .unwrap();
    decide(&engine, "sign_off", Action::Reject, "max")
        .await
        .unwrap();
    assert_eq!(
        engine.store().load_run(s.run_id).unwrap().unwrap().0.status,
        RunStatus::Completed
    );
    let refused =
        std::fs::read_to_string(dir.path().join(format!("outputs/refused/{}.txt", s.run_id)))
            .unwrap();
    assert_eq!(refused, "over budget");
    assert!(
        !dir.path()
            .join(format!("outputs/orders/{}.txt", s.run_id))
            .exists()
    );
}
