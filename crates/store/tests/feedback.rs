//! Feedback in SQLite: idempotent, max-merging tag upserts; the evaluation queue read from the
//! journal; the export's approved (edited) text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use processops_core::feedback::{
    Intent, Note, OutputKind, OutputRef, TagKey, TagOp, chat_record, pair_drafts,
};
use processops_core::journal::{Event, FinalStatus, StepMeta};
use processops_store::{
    Durability, FeedbackFilter, NewRun, NoteChange, OutputQuery, Store, TagChange,
};
use serde_json::{Value, json};
use uuid::Uuid;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    (dir, store)
}

const BLUEPRINT: &str = r#"
id: notes
name: Meeting notes
start: draft
triggers:
  - kind: manual
    id: form
agents:
  writer: { provider: default, model: scripted }
nodes:
  - kind: prompt
    id: draft
    agent: writer
    template: "Write notes about {{ trigger.topic }}"
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

fn prompt_finished(visit: u32, text: &str, topic: &str) -> Event {
    Event::NodeFinished {
        node: "draft".into(),
        visit,
        output: json!({ "text": text, "json": null, "model": "scripted", "agent": "writer", "tokens": { "prompt": 3, "completion": 5 } }),
        vars: serde_json::Map::new(),
        next: vec!["review".into()],
        label: None,
        meta: StepMeta {
            input: Some(json!({ "messages": [
                { "role": "system", "content": "You write meeting notes." },
                { "role": "user", "content": format!("Write notes about {topic}") },
            ]})),
            ..StepMeta::default()
        },
    }
}

fn review_finished(visit: u32, decision: &str, draft: &str, text: &str) -> Event {
    Event::NodeFinished {
        node: "review".into(),
        visit,
        output: json!({
            "decision": decision, "text": text, "draft": draft, "reason": null, "by": "dana",
            "edited": text != draft, "path": "review", "task": Uuid::now_v7().to_string(),
        }),
        vars: serde_json::Map::new(),
        next: vec!["save".into()],
        label: Some(decision.into()),
        meta: StepMeta::default(),
    }
}

fn save_finished() -> Event {
    Event::NodeFinished {
        node: "save".into(),
        visit: 1,
        output: json!({ "status": "written", "location": "notes/x.md", "idempotency_key": null }),
        vars: serde_json::Map::new(),
        next: vec![],
        label: None,
        meta: StepMeta::default(),
    }
}

/// A run with these events after `RunStarted`, on version `version` of blueprint `bp`.
async fn run(store: &Store, bp: &str, version: &str, events: Vec<Event>) -> Uuid {
    let id = Uuid::now_v7();
    let mut all = vec![Event::RunStarted {
        blueprint: bp.into(),
        version: version.into(),
        trigger: "form".into(),
        start: "draft".into(),
        payload: json!({}),
    }];
    all.extend(events);
    store
        .start_run(NewRun {
            id,
            blueprint_id: bp.into(),
            version: version.into(),
            trigger_id: "form".into(),
            dedupe_key: None,
            events: all,
        })
        .await
        .unwrap();
    id
}

fn finished() -> Event {
    Event::RunFinished {
        status: FinalStatus::Completed,
        error: None,
    }
}

async fn versions(store: &Store) {
    store
        .put_version(
            "v1".into(),
            "notes".into(),
            "Notes".into(),
            BLUEPRINT.into(),
        )
        .await
        .unwrap();
    // A version whose source is not a blueprint: the recorded output shapes decide.
    store
        .put_version(
            "v0".into(),
            "other".into(),
            "Other".into(),
            "id: other".into(),
        )
        .await
        .unwrap();
}

/// A finished run: a rejected first draft, a second draft edited and approved, a saved file.
async fn edited_run(store: &Store, topic: &str) -> Uuid {
    run(
        store,
        "notes",
        "v1",
        vec![
            prompt_finished(1, "first draft", topic),
            review_finished(1, "rejected", "first draft", "first draft"),
            prompt_finished(2, "second draft", topic),
            review_finished(
                2,
                "approved",
                "second draft",
                "Second draft, edited by hand",
            ),
            save_finished(),
            finished(),
        ],
    )
    .await
}

fn key(run: Uuid, node: &str, evaluator: &str, tag: &str) -> TagKey {
    TagKey {
        output: OutputRef {
            run,
            node: node.into(),
            visit: 1,
        },
        evaluator: evaluator.into(),
        tag: tag.into(),
    }
}

fn change(key: &TagKey, intent: Intent) -> TagChange {
    TagChange {
        key: key.clone(),
        intent,
    }
}

fn counters(store: &Store) -> BTreeMap<TagKey, u64> {
    store
        .list_tags(&FeedbackFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.counter))
        .collect()
}

#[tokio::test]
async fn local_changes_bump_the_counter_only_when_they_change_something() {
    let (_dir, store) = store();
    let k = key(Uuid::now_v7(), "draft", "ann", "tone");
    let ops = store
        .change_tags(vec![change(&k, Intent::Add), change(&k, Intent::Add)])
        .await
        .unwrap();
    assert_eq!(
        ops,
        vec![TagOp {
            key: k.clone(),
            counter: 1
        }],
        "the second add changes nothing"
    );
    let ops = store
        .change_tags(vec![
            change(&k, Intent::Remove),
            change(&k, Intent::Remove),
            change(&k, Intent::Add),
        ])
        .await
        .unwrap();
    assert_eq!(
        ops.iter().map(|o| o.counter).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let never = key(Uuid::now_v7(), "draft", "ann", "tone");
    assert!(
        store
            .change_tags(vec![change(&never, Intent::Remove)])
            .await
            .unwrap()
            .is_empty()
    );
    let rows = store.list_tags(&FeedbackFilter::default()).unwrap();
    assert_eq!(rows.len(), 1, "removing an absent tag stores nothing");
    assert_eq!(rows[0].counter, 3);
    assert!(rows[0].present());
}

#[tokio::test]
async fn replicated_ops_merge_by_max_and_are_idempotent() {
    let (_dir, store) = store();
    let run = Uuid::now_v7();
    let keys: Vec<TagKey> = ["ann", "bob", "cy"]
        .iter()
        .flat_map(|e| ["tone", "hallucination"].map(|t| key(run, "draft", e, t)))
        .collect();
    // Each key's writer made some changes: the counters 1..=n for key i.
    let ops: Vec<TagOp> = keys
        .iter()
        .enumerate()
        .flat_map(|(i, k)| {
            (1..=(i as u64 + 1)).map(move |counter| TagOp {
                key: k.clone(),
                counter,
            })
        })
        .collect();
    let expected: BTreeMap<TagKey, u64> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i as u64 + 1))
        .collect();

    // Delivered newest first, twice over, in several batches: the same as in order.
    let mut reversed = ops.clone();
    reversed.reverse();
    for chunk in reversed.chunks(4) {
        store.merge_tag_ops(chunk.to_vec()).await.unwrap();
    }
    assert_eq!(counters(&store), expected);
    assert_eq!(
        store.merge_tag_ops(ops.clone()).await.unwrap(),
        0,
        "everything again changes nothing"
    );
    assert_eq!(counters(&store), expected);

    // A shuffled order (a fixed permutation) into a second store gives the same rows.
    let (_dir2, other) = self::store();
    let mut shuffled = ops.clone();
    let n = shuffled.len();
    for i in 0..n {
        shuffled.swap(i, (i * 7 + 3) % n);
    }
    other.merge_tag_ops(shuffled).await.unwrap();
    assert_eq!(counters(&other), expected);

    // A late, older op never lowers a counter (a removed tag stays removed).
    let removed = key(run, "draft", "ann", "hallucination");
    assert_eq!(expected[&removed], 2);
    store
        .merge_tag_ops(vec![TagOp {
            key: removed.clone(),
            counter: 1,
        }])
        .await
        .unwrap();
    let row = store
        .list_tags(&FeedbackFilter {
            evaluator: Some("ann".into()),
            tag: Some("hallucination".into()),
            ..FeedbackFilter::default()
        })
        .unwrap();
    assert_eq!(row.len(), 1);
    assert_eq!(row[0].counter, 2);
    assert!(!row[0].present());
    // Zero counters are no state.
    assert_eq!(
        store
            .merge_tag_ops(vec![TagOp {
                key: key(run, "x", "z", "tone"),
                counter: 0
            }])
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn notes_keep_rating_and_comment_and_count_revisions() {
    let (_dir, store) = store();
    let output = OutputRef {
        run: Uuid::now_v7(),
        node: "review".into(),
        visit: 2,
    };
    let note = |rating, comment: Option<&str>| NoteChange {
        output: output.clone(),
        evaluator: "ann".into(),
        rating,
        comment: comment.map(Into::into),
    };
    assert_eq!(
        store.change_note(note(Some(4), None)).await.unwrap(),
        Note {
            rating: Some(4),
            comment: None,
            revision: 1
        }
    );
    assert_eq!(
        store.change_note(note(None, Some("crisp"))).await.unwrap(),
        Note {
            rating: Some(4),
            comment: Some("crisp".into()),
            revision: 2
        }
    );
    let rows = store
        .list_notes(&FeedbackFilter {
            output: Some(output.clone()),
            ..FeedbackFilter::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].note.comment.as_deref(), Some("crisp"));
    assert!(
        store
            .list_notes(&FeedbackFilter {
                evaluator: Some("bob".into()),
                ..FeedbackFilter::default()
            })
            .unwrap()
            .is_empty()
    );
    // The database refuses a rating out of range even if a caller forgot to check.
    let err = store.change_note(note(Some(9), None)).await.unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
}

#[tokio::test]
async fn the_queue_offers_finished_drafts_and_approved_reviews_not_yet_evaluated_by_me() {
    let (_dir, store) = store();
    versions(&store).await;
    let older = edited_run(&store, "budget").await;
    let newer = edited_run(&store, "launch").await;
    // Still waiting for a review: not offered.
    run(
        &store,
        "notes",
        "v1",
        vec![prompt_finished(1, "pending", "x")],
    )
    .await;
    // Another blueprint, known only by its output shapes; its transform step is not offered.
    let other = run(
        &store,
        "other",
        "v0",
        vec![
            prompt_finished(1, "other draft", "y"),
            Event::NodeFinished {
                node: "shape".into(),
                visit: 1,
                output: json!({ "text": "transformed" }),
                vars: serde_json::Map::new(),
                next: vec![],
                label: None,
                meta: StepMeta::default(),
            },
            finished(),
        ],
    )
    .await;

    let names = |rows: &[processops_store::OutputRow]| -> Vec<String> {
        rows.iter()
            .map(|r| {
                let o = &r.step.output;
                let run = if o.run == older {
                    "older"
                } else if o.run == newer {
                    "newer"
                } else if o.run == other {
                    "other"
                } else {
                    "?"
                };
                format!("{run}:{}:{}", o.node, o.visit)
            })
            .collect()
    };
    let all = store.finished_outputs(&OutputQuery::default()).unwrap();
    assert_eq!(
        names(&all),
        [
            "other:draft:1",
            "newer:review:2",
            "newer:draft:2",
            "newer:draft:1",
            "older:review:2",
            "older:draft:2",
            "older:draft:1",
        ],
        "newest run first; rejected reviews, outputs and transforms are left out"
    );
    assert_eq!(all[1].step.kind, OutputKind::Review);
    assert_eq!(all[1].blueprint_id, "notes");
    assert_eq!(all[1].version, "v1");

    // ann tags one output, tags and untags another, rates a third: all three leave her queue.
    let review2 = TagKey {
        output: OutputRef {
            run: newer,
            node: "review".into(),
            visit: 2,
        },
        evaluator: "ann".into(),
        tag: "tone".into(),
    };
    store
        .change_tags(vec![
            change(&review2, Intent::Add),
            change(&key(older, "draft", "ann", "tone"), Intent::Add),
            change(&key(older, "draft", "ann", "tone"), Intent::Remove),
        ])
        .await
        .unwrap();
    store
        .change_note(NoteChange {
            output: OutputRef {
                run: other,
                node: "draft".into(),
                visit: 1,
            },
            evaluator: "ann".into(),
            rating: Some(3),
            comment: None,
        })
        .await
        .unwrap();
    let query = |by: &str, blueprint: Option<&str>, limit: Option<usize>| OutputQuery {
        blueprint_id: blueprint.map(Into::into),
        not_evaluated_by: Some(by.into()),
        limit,
        ..OutputQuery::default()
    };
    let mine = store.finished_outputs(&query("ann", None, None)).unwrap();
    assert_eq!(
        names(&mine),
        [
            "newer:draft:2",
            "newer:draft:1",
            "older:review:2",
            "older:draft:2",
        ]
    );
    assert_eq!(
        store
            .finished_outputs(&query("bob", None, None))
            .unwrap()
            .len(),
        7,
        "ann's feedback does not leave bob's queue"
    );
    assert_eq!(
        names(
            &store
                .finished_outputs(&query("ann", Some("notes"), Some(2)))
                .unwrap()
        ),
        ["newer:draft:2", "newer:draft:1"]
    );
    let reviews = store
        .finished_outputs(&OutputQuery {
            kind: Some(OutputKind::Review),
            ..OutputQuery::default()
        })
        .unwrap();
    assert_eq!(names(&reviews), ["newer:review:2", "older:review:2"]);

    // A seeded sample: the same seed gives the same outputs, a subset of the queue.
    let sample = |seed| OutputQuery {
        seed: Some(seed),
        limit: Some(3),
        ..OutputQuery::default()
    };
    let a = store.finished_outputs(&sample(1)).unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(
        names(&a),
        names(&store.finished_outputs(&sample(1)).unwrap())
    );
    let all_names = names(&all);
    assert!(names(&a).iter().all(|n| all_names.contains(n)));
    let seeds: Vec<Vec<String>> = (0..8)
        .map(|s| names(&store.finished_outputs(&sample(s)).unwrap()))
        .collect();
    assert!(
        seeds.iter().any(|s| s != &seeds[0]),
        "different seeds give different samples"
    );
}

#[tokio::test]
async fn the_export_reads_the_edited_approved_text_and_the_drafting_prompt() {
    let (_dir, store) = store();
    versions(&store).await;
    let id = edited_run(&store, "budget").await;
    let rows = store
        .finished_outputs(&OutputQuery {
            run_id: Some(id),
            ..OutputQuery::default()
        })
        .unwrap();
    let mut steps: Vec<_> = rows.into_iter().map(|r| r.step).collect();
    steps.reverse();
    let pairs = pair_drafts(&steps);
    assert_eq!(pairs.len(), 1);
    let (review, prompt) = pairs[0];
    let review = &steps[review];
    let prompt = &steps[prompt.unwrap()];
    assert_eq!(review.text(), "Second draft, edited by hand");
    assert_eq!(
        prompt.output.visit, 2,
        "the second draft is what was approved"
    );
    let line = chat_record(prompt.messages().unwrap(), review.text()).unwrap();
    assert_eq!(
        line,
        json!({ "messages": [
            { "role": "system", "content": "You write meeting notes." },
            { "role": "user", "content": "Write notes about budget" },
            { "role": "assistant", "content": "Second draft, edited by hand" },
        ]})
    );
    assert_eq!(review.value["draft"], Value::from("second draft"));
}

#[tokio::test]
async fn finished_steps_are_found_by_node_and_visit() {
    let (_dir, store) = store();
    versions(&store).await;
    let id = edited_run(&store, "budget").await;
    let latest = store.finished_step(id, "draft", None).unwrap().unwrap();
    assert_eq!(latest.output.visit, 2);
    assert_eq!(latest.blueprint_id, "notes");
    assert_eq!(latest.value["text"], "second draft");
    let first = store.finished_step(id, "draft", Some(1)).unwrap().unwrap();
    assert_eq!(first.value["text"], "first draft");
    assert!(store.finished_step(id, "draft", Some(3)).unwrap().is_none());
    assert!(store.finished_step(id, "nope", None).unwrap().is_none());
    assert!(
        store
            .finished_step(Uuid::now_v7(), "draft", None)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.finished_steps(id).unwrap(),
        vec![
            ("draft".to_owned(), 1),
            ("review".to_owned(), 1),
            ("draft".to_owned(), 2),
            ("review".to_owned(), 2),
            ("save".to_owned(), 1),
        ]
    );
    // Feedback filtered by blueprint joins the runs.
    store
        .change_tags(vec![change(&key(id, "draft", "ann", "tone"), Intent::Add)])
        .await
        .unwrap();
    let by_bp = |bp: &str| {
        store
            .list_tags(&FeedbackFilter {
                blueprint_id: Some(bp.into()),
                ..FeedbackFilter::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!((by_bp("notes"), by_bp("other")), (1, 0));
}
