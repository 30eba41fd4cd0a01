//! The store's guarantees, against a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use processops_core::journal::{Action, Decision, Event, FinalStatus, Task};
use processops_store::{
    Durability, NewRun, RunFilter, RunStatus, StartOutcome, Store, StoreError, TaskFilter,
    TaskStatus,
};
use serde_json::json;
use uuid::Uuid;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    (dir, store)
}

async fn run_with_task(store: &Store) -> (Uuid, Uuid) {
    store
        .put_version(
            "v1".into(),
            "bp".into(),
            "Blueprint".into(),
            "id: bp".into(),
        )
        .await
        .unwrap();
    let run = Uuid::now_v7();
    let started = Event::RunStarted {
        blueprint: "bp".into(),
        version: "v1".into(),
        trigger: "t".into(),
        start: "review".into(),
        payload: json!({}),
    };
    store
        .start_run(NewRun {
            id: run,
            blueprint_id: "bp".into(),
            version: "v1".into(),
            trigger_id: "t".into(),
            dedupe_key: None,
            events: vec![started],
        })
        .await
        .unwrap();
    let task = Task {
        id: Uuid::now_v7(),
        node: "review".into(),
        visit: 1,
        title: "Check".into(),
        draft: "draft".into(),
        role: "lead".into(),
        users: vec![],
        escalation: vec!["director".into()],
        reasons: vec![],
        due_at: None,
        remind_at: None,
        context: json!({}),
        policy: Default::default(),
    };
    let id = task.id;
    store
        .append(
            run,
            vec![
                Event::NodeStarted {
                    node: "review".into(),
                    visit: 1,
                    attempt: 1,
                },
                Event::TaskCreated { task },
            ],
            Some(RunStatus::Waiting),
        )
        .await
        .unwrap();
    (run, id)
}

fn decision(action: Action, by: &str) -> Decision {
    Decision {
        action,
        by: by.into(),
        text: None,
        reason: Some("because".into()),
    }
}

#[tokio::test]
async fn two_concurrent_decisions_exactly_one_wins() {
    let (_dir, store) = store();
    for _ in 0..20 {
        let (run, task) = run_with_task(&store).await;
        let (a, b) = tokio::join!(
            store.decide(task, decision(Action::Approve, "ana")),
            store.decide(task, decision(Action::Reject, "bo"))
        );
        let (winner, loser) = match (&a, &b) {
            (Ok(_), Err(e)) => ("ana", e),
            (Err(e), Ok(_)) => ("bo", e),
            other => panic!("expected exactly one winner, got {other:?}"),
        };
        let StoreError::AlreadyDecided { by, .. } = loser else {
            panic!("wrong error: {loser}")
        };
        assert_eq!(by, winner);
        assert!(
            loser
                .to_string()
                .contains(&format!("already decided by {winner}"))
        );
        // The journal holds exactly one decision, and the run is runnable again.
        let (row, journal) = store.load_run(run).unwrap().unwrap();
        let decisions = journal
            .iter()
            .filter(|e| matches!(e.event, Event::DecisionRecorded { .. }))
            .count();
        assert_eq!(decisions, 1);
        assert_eq!(row.status, RunStatus::Running);
        let t = store.task(task).unwrap().unwrap();
        assert_eq!(t.status, TaskStatus::Decided);
        assert_eq!(t.decision.unwrap().by, winner);
    }
}

#[tokio::test]
async fn escalation_moves_the_task_and_is_refused_once_decided() {
    let (_dir, store) = store();
    let (_, task) = run_with_task(&store).await;
    store
        .escalate(task, "director".into(), "ana".into(), None)
        .await
        .unwrap();
    assert_eq!(store.task(task).unwrap().unwrap().task.role, "director");
    assert_eq!(
        store
            .list_tasks(&TaskFilter {
                role: Some("director".into()),
                ..TaskFilter::default()
            })
            .unwrap()
            .len(),
        1
    );
    store
        .decide(task, decision(Action::Approve, "dee"))
        .await
        .unwrap();
    let err = store
        .escalate(task, "cfo".into(), "ana".into(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyDecided { .. }), "{err}");
    let err = store
        .decide(Uuid::now_v7(), decision(Action::Approve, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TaskNotFound(_)), "{err}");
}

#[tokio::test]
async fn dedupe_keys_start_a_run_once_and_finished_runs_project_their_status() {
    let (_dir, store) = store();
    store
        .put_version("v1".into(), "bp".into(), "B".into(), "src".into())
        .await
        .unwrap();
    let mk = |id| NewRun {
        id,
        blueprint_id: "bp".into(),
        version: "v1".into(),
        trigger_id: "t".into(),
        dedupe_key: Some("k".into()),
        events: vec![],
    };
    let first = Uuid::now_v7();
    assert_eq!(
        store.start_run(mk(first)).await.unwrap(),
        StartOutcome::Started(first)
    );
    assert_eq!(
        store.start_run(mk(Uuid::now_v7())).await.unwrap(),
        StartOutcome::Duplicate(first)
    );
    store
        .append(
            first,
            vec![Event::RunFinished {
                status: FinalStatus::Completed,
                error: None,
            }],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .list_runs(&RunFilter {
                status: Some(RunStatus::Completed),
                ..RunFilter::default()
            })
            .unwrap()
            .len(),
        1
    );
    assert!(store.runs_to_resume().unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_job_does_not_sink_the_others_in_its_batch() {
    let (_dir, store) = store();
    let (run, _) = run_with_task(&store).await;
    // Many concurrent appends (batched together by the writer) plus appends to a run that
    // does not exist: the bad ones fail alone, the good ones all commit with gapless seqs.
    let mut handles = Vec::new();
    for i in 0..200u32 {
        let store = store.clone();
        let target = if i % 10 == 0 { Uuid::now_v7() } else { run };
        handles.push(tokio::spawn(async move {
            store
                .append(
                    target,
                    vec![Event::RunRetried {
                        by: format!("u{i}"),
                    }],
                    None,
                )
                .await
        }));
    }
    let mut failed = 0;
    for h in handles {
        if let Err(e) = h.await.unwrap() {
            assert!(matches!(e, StoreError::RunNotFound(_)), "{e}");
            failed += 1;
        }
    }
    assert_eq!(failed, 20);
    let (_, journal) = store.load_run(run).unwrap().unwrap();
    let seqs: Vec<u64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=u64::try_from(journal.len()).unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(journal.len(), 3 + 180);
}

#[tokio::test]
async fn ids_resolve_from_their_start_or_end_and_wildcards_match_nothing() {
    let (_dir, store) = store();
    let (run, task) = run_with_task(&store).await;
    let text = run.to_string();
    assert_eq!(
        store.resolve_run_prefix(&text[text.len() - 8..]).unwrap(),
        vec![run]
    );
    assert_eq!(store.resolve_run_prefix(&text[..13]).unwrap(), vec![run]);
    assert!(store.resolve_run_prefix("%").unwrap().is_empty());
    assert!(store.resolve_task_prefix("_").unwrap().is_empty());
    let t = task.to_string();
    assert_eq!(
        store.resolve_task_prefix(&t[t.len() - 8..]).unwrap(),
        vec![task]
    );
}

#[tokio::test]
async fn reopening_keeps_data_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let store = Store::open(&path, Durability::Process).unwrap();
        run_with_task(&store).await;
    }
    let store = Store::open(&path, Durability::PowerLoss).unwrap();
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 1);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let Err(err) = Store::open(&path, Durability::Process) else {
        panic!("a newer schema must be refused")
    };
    assert!(err.to_string().contains("newer ProcessOps"), "{err}");
}

#[tokio::test]
async fn knowledge_search_ranks_and_survives_hostile_queries() {
    let (_dir, store) = store();
    let added = store
        .ingest(
            "hr".into(),
            vec![
                (
                    "benefits.md".into(),
                    "Health insurance starts on the first day of employment.".into(),
                ),
                (
                    "laptop.md".into(),
                    "Laptops are picked up from IT on the first morning.".into(),
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(added, 2);
    assert_eq!(
        store
            .ingest(
                "hr".into(),
                vec![(
                    "laptop.md".into(),
                    "Laptops are picked up from IT on the first morning.".into()
                )]
            )
            .await
            .unwrap(),
        0
    );
    let hits = store.search("hr", "when do I get my laptop?", 5).unwrap();
    assert_eq!(hits[0].source, "laptop.md");
    assert!(store.search("other", "laptop", 5).unwrap().is_empty());
    for hostile in ["\"", "NEAR(", "*", "a AND OR", "'; DROP TABLE passages; --"] {
        store.search("hr", hostile, 5).unwrap();
    }
}

#[tokio::test]
async fn the_inbox_filters_by_words_in_drafts_and_by_claim() {
    let (_dir, store) = store();
    let (_, task) = run_with_task(&store).await;
    let found = |text: &str| {
        store
            .list_tasks(&TaskFilter {
                text: Some(text.into()),
                ..TaskFilter::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(found("draft"), 1);
    assert_eq!(found("Check draft"), 1, "every word must match");
    assert_eq!(found("draft missing"), 0);
    assert_eq!(found("\" OR *"), 0, "search text is never FTS syntax");

    store.claim(task, "ana".into()).await.unwrap();
    store.claim(task, "ana".into()).await.unwrap();
    let err = store.claim(task, "bo".into()).await.unwrap_err();
    assert!(err.to_string().contains("claimed by ana"), "{err}");
    assert_eq!(
        store
            .list_tasks(&TaskFilter {
                assignee: Some("ana".into()),
                ..TaskFilter::default()
            })
            .unwrap()
            .len(),
        1
    );
    // Someone else cannot decide a claimed task; the holder can.
    let err = store
        .decide(task, decision(Action::Approve, "bo"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Claimed { ref by, .. } if by == "ana"),
        "{err}"
    );
    assert!(store.unclaim(task, "bo".into(), false).await.is_err());
    store.unclaim(task, "bo".into(), true).await.unwrap();
    store
        .decide(task, decision(Action::Approve, "bo"))
        .await
        .unwrap();
    let err = store.claim(task, "ana".into()).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyDecided { .. }), "{err}");
}

#[tokio::test]
async fn a_quorum_names_its_approvers_in_the_order_they_voted() {
    let (_dir, store) = store();
    for _ in 0..20 {
        let (_, task) = run_with_task(&store).await;
        // Approvers whose names sort the other way round, voting within the same millisecond.
        let first = store
            .vote(task, decision(Action::Approve, "zed"), 2)
            .await
            .unwrap();
        assert!(
            matches!(
                first,
                processops_store::Vote::Counted {
                    approvals: 1,
                    needed: 2,
                    ..
                }
            ),
            "{first:?}"
        );
        let err = store
            .vote(task, decision(Action::Approve, "zed"), 2)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyVoted { .. }), "{err}");
        let second = store
            .vote(task, decision(Action::Approve, "amy"), 2)
            .await
            .unwrap();
        let processops_store::Vote::Decided { decision, .. } = second else {
            panic!("the quorum is complete: {second:?}")
        };
        assert_eq!(decision.by, "zed + amy");
        assert_eq!(
            store
                .votes(task)
                .unwrap()
                .iter()
                .map(|d| d.by.as_str())
                .collect::<Vec<_>>(),
            ["zed", "amy"]
        );
        assert_eq!(
            store.task(task).unwrap().unwrap().status,
            TaskStatus::Decided
        );
    }
}

#[tokio::test]
async fn a_summary_listing_is_the_full_listing_without_drafts_and_context() {
    let (_dir, store) = store();
    let roles: Vec<String> = (0..4).map(|i| format!("role-{i}")).collect();
    store.insert_synthetic_tasks(300, roles, 7).await.unwrap();
    for status in [Some(TaskStatus::Pending), None] {
        let full = store
            .list_tasks(&TaskFilter {
                status,
                limit: Some(1000),
                ..TaskFilter::default()
            })
            .unwrap();
        let summary = store
            .list_tasks(&TaskFilter {
                status,
                limit: Some(1000),
                summary: true,
                ..TaskFilter::default()
            })
            .unwrap();
        assert_eq!(full.len(), summary.len());
        assert!(!full.is_empty());
        for (f, s) in full.iter().zip(&summary) {
            assert_eq!(f.id, s.id, "same order");
            assert_eq!(f.task.id, s.task.id);
            assert_eq!(
                (&f.task.title, &f.task.node, f.task.visit, &f.task.role),
                (&s.task.title, &s.task.node, s.task.visit, &s.task.role)
            );
            assert_eq!(
                (f.due_at, f.status, &f.claimed_by),
                (s.due_at, s.status, &s.claimed_by)
            );
            assert!(!f.task.draft.is_empty(), "the synthetic tasks have drafts");
            assert!(s.task.draft.is_empty(), "a summary carries no draft");
            assert!(s.task.context.is_null(), "a summary carries no context");
        }
    }
}
