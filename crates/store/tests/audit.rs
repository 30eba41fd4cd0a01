//! The audit log against a real SQLite file: what the store's changes record, and tampering
//! with the file (through a separate connection) caught by `audit_verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use processops_core::audit::{AuditEntry, BreakKind, Chain, Head, Record, Verdict, verify};
use processops_core::feedback::{Intent, OutputRef, TagKey, TagOp};
use processops_core::journal::{Action, Decision, Event, Task};
use processops_store::{
    AuditFilter, AuditFormat, Durability, NewRun, NoteChange, RunStatus, Store, TagChange,
};
use serde_json::json;
use uuid::Uuid;

fn store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open(&path, Durability::Process).unwrap();
    (dir, path, store)
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
    store
        .start_run(NewRun {
            id: run,
            blueprint_id: "bp".into(),
            version: "v1".into(),
            trigger_id: "t".into(),
            dedupe_key: None,
            events: vec![Event::RunStarted {
                blueprint: "bp".into(),
                version: "v1".into(),
                trigger: "t".into(),
                start: "review".into(),
                payload: json!({}),
            }],
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

fn all(store: &Store) -> Vec<AuditEntry> {
    store
        .audit_entries(&AuditFilter {
            limit: Some(10_000),
            ..AuditFilter::default()
        })
        .unwrap()
}

fn decision(by: &str, action: Action) -> Decision {
    Decision {
        action,
        by: by.into(),
        text: None,
        reason: Some("looks right".into()),
    }
}

fn output(run: Uuid) -> OutputRef {
    OutputRef {
        run,
        node: "review".into(),
        visit: 1,
    }
}

#[tokio::test]
async fn the_stores_changes_are_audited_in_their_transaction() {
    let (_dir, _path, store) = store();
    let (run, task) = run_with_task(&store).await;
    // A known version is not new: no second entry.
    store
        .put_version(
            "v1".into(),
            "bp".into(),
            "Blueprint".into(),
            "id: bp".into(),
        )
        .await
        .unwrap();
    store
        .escalate(task, "director".into(), "ann".into(), Some(5))
        .await
        .unwrap();
    store
        .decide(task, decision("bob", Action::Approve))
        .await
        .unwrap();
    // A refused decision rolls its entry back with it.
    store
        .decide(task, decision("carl", Action::Reject))
        .await
        .unwrap_err();
    let key = TagKey {
        output: output(run),
        evaluator: "eve".into(),
        tag: "tone".into(),
    };
    for intent in [Intent::Add, Intent::Add, Intent::Remove] {
        store
            .change_tags(vec![TagChange {
                key: key.clone(),
                intent,
            }])
            .await
            .unwrap();
    }
    store
        .change_note(NoteChange {
            output: output(run),
            evaluator: "eve".into(),
            rating: Some(4),
            comment: Some("clear".into()),
        })
        .await
        .unwrap();
    // Tags replicated from other devices are audited where they were made, not here.
    store
        .merge_tag_ops(vec![TagOp {
            key: TagKey {
                evaluator: "zoe".into(),
                ..key.clone()
            },
            counter: 1,
        }])
        .await
        .unwrap();
    store
        .audit_record(
            "admin".into(),
            "setting.changed".into(),
            "providers.default.model".into(),
            Some(json!("small")),
            Some(json!("large")),
        )
        .await
        .unwrap();

    let entries = all(&store);
    let got: Vec<(u64, &str, &str, String)> = entries
        .iter()
        .map(|e| {
            (
                e.seq,
                e.actor.as_str(),
                e.action.as_str(),
                e.subject.clone(),
            )
        })
        .collect();
    let (t, o) = (task.to_string(), output(run).to_string());
    assert_eq!(
        got,
        vec![
            (1, "engine", "version.added", "bp@v1".to_owned()),
            (2, "ann", "task.escalated", t.clone()),
            (3, "bob", "task.decided", t),
            (4, "eve", "tag.added", o.clone()),
            (5, "eve", "tag.removed", o.clone()),
            (6, "eve", "note.changed", o),
            (
                7,
                "admin",
                "setting.changed",
                "providers.default.model".into()
            ),
        ]
    );
    let by_action = |a: &str| entries.iter().find(|e| e.action == a).unwrap();
    let escalated = by_action("task.escalated");
    assert_eq!(escalated.before, Some(json!({"role": "lead"})));
    assert_eq!(
        escalated.after,
        Some(json!({"role": "director", "due_at": 5}))
    );
    let decided = by_action("task.decided");
    assert_eq!(decided.before, Some(json!({"status": "pending"})));
    assert_eq!(
        decided.after,
        Some(
            json!({"status": "decided", "action": "approve", "text": null, "reason": "looks right"})
        )
    );
    let removed = by_action("tag.removed");
    assert_eq!(
        removed.before,
        Some(json!({"tag": "tone", "present": true}))
    );
    assert_eq!(
        removed.after,
        Some(json!({"tag": "tone", "present": false}))
    );
    let note = by_action("note.changed");
    assert_eq!(note.before, Some(json!({"rating": null, "comment": null})));
    assert_eq!(note.after, Some(json!({"rating": 4, "comment": "clear"})));
    assert_eq!(
        by_action("version.added").after,
        Some(json!({"blueprint": "bp", "name": "Blueprint", "hash": "v1"}))
    );
    assert!(entries.iter().all(|e| e.device == "local"));
    assert!(entries.windows(2).all(|w| w[0].at <= w[1].at));

    let head = store.audit_head().unwrap();
    assert_eq!(head.count, 7);
    assert_eq!(
        store.audit_verify().unwrap(),
        Verdict::Ok {
            count: 7,
            head_hash: head.hash.clone()
        }
    );
    // The pure verifier agrees with the store's streaming one.
    assert!(verify(entries, Some(&head)).is_ok());
}

#[tokio::test]
async fn a_quorum_audits_every_vote_and_the_decision() {
    let (_dir, _path, store) = store();
    let (_, task) = run_with_task(&store).await;
    store
        .vote(task, decision("ann", Action::Approve), 2)
        .await
        .unwrap();
    store
        .vote(task, decision("bob", Action::Approve), 2)
        .await
        .unwrap();
    let actions: Vec<(String, String)> = all(&store)
        .into_iter()
        .map(|e| (e.actor, e.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("engine", "version.added"),
            ("ann", "task.voted"),
            ("bob", "task.voted"),
            ("ann + bob", "task.decided"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert!(store.audit_verify().unwrap().is_ok());
}

#[tokio::test]
async fn entries_are_filtered_and_paged() {
    let (_dir, _path, store) = store();
    for i in 0..6 {
        store
            .audit_record(
                format!("user-{}", i % 2),
                if i < 3 { "tag.added" } else { "task.decided" }.into(),
                format!("s{i}"),
                None,
                Some(json!({ "i": i })),
            )
            .await
            .unwrap();
    }
    let seqs = |f: AuditFilter| -> Vec<u64> {
        store
            .audit_entries(&f)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs(AuditFilter::default()), [1, 2, 3, 4, 5, 6]);
    let actor = Some("user-1".to_owned());
    assert_eq!(
        seqs(AuditFilter {
            actor,
            ..AuditFilter::default()
        }),
        [2, 4, 6]
    );
    assert_eq!(
        seqs(AuditFilter {
            action: Some("task".into()),
            ..AuditFilter::default()
        }),
        [4, 5, 6]
    );
    // A prefix is literal: `_` and `%` match only themselves.
    assert!(
        seqs(AuditFilter {
            action: Some("t%".into()),
            ..AuditFilter::default()
        })
        .is_empty()
    );
    assert_eq!(
        seqs(AuditFilter {
            subject: Some("s2".into()),
            ..AuditFilter::default()
        }),
        [3]
    );
    assert_eq!(
        seqs(AuditFilter {
            after_seq: Some(2),
            limit: Some(2),
            ..AuditFilter::default()
        }),
        [3, 4]
    );
    assert_eq!(
        seqs(AuditFilter {
            newest_first: true,
            before_seq: Some(6),
            limit: Some(2),
            ..AuditFilter::default()
        }),
        [5, 4]
    );
    let all = all(&store);
    assert_eq!(
        seqs(AuditFilter {
            since: Some(all[0].at),
            until: Some(all[5].at + 1),
            ..AuditFilter::default()
        })
        .len(),
        6
    );
    assert!(
        seqs(AuditFilter {
            since: Some(all[5].at + 1),
            ..AuditFilter::default()
        })
        .is_empty()
    );
}

#[tokio::test]
async fn an_enrolled_device_signs_entries_with_its_device_id() {
    let (_dir, _path, store) = store();
    let device = Uuid::now_v7();
    store.sync_enrol(device, "dana".into()).await.unwrap();
    store
        .audit_record(
            "dana".into(),
            "role.changed".into(),
            "dana".into(),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(all(&store)[0].device, device.to_string());
}

#[tokio::test]
async fn exports_carry_everything_needed_to_re_verify() {
    let (_dir, _path, store) = store();
    let (_, task) = run_with_task(&store).await;
    store
        .decide(
            task,
            Decision {
                action: Action::Edit,
                by: "bob".into(),
                text: Some("line, with \"quotes\"\nand a newline".into()),
                reason: None,
            },
        )
        .await
        .unwrap();
    let head = store.audit_head().unwrap();

    let mut jsonl = Vec::new();
    assert_eq!(
        store.audit_export(AuditFormat::Jsonl, &mut jsonl).unwrap(),
        2
    );
    let entries: Vec<AuditEntry> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries, all(&store));
    assert!(verify(entries.clone(), Some(&head)).is_ok());

    let mut csv = Vec::new();
    assert_eq!(store.audit_export(AuditFormat::Csv, &mut csv).unwrap(), 2);
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "seq,id,at,time,device,actor,action,subject,before,after,prev_hash,hash"
    );
    assert!(text.contains(&entries[1].hash));
    // The JSON columns hold the hashed canonical text (CSV-quoted).
    assert!(text.contains(r#""{""action"":""edit"",""reason"":null,""#));
}

// ---------------------------------------------------------------------------------------------
// Tampering with the file

/// A store with `n` entries: real changes first, then recorded settings.
async fn audited(n: u64) -> (tempfile::TempDir, PathBuf, Store) {
    let (dir, path, store) = store();
    let (_, task) = run_with_task(&store).await;
    store
        .decide(task, decision("bob", Action::Approve))
        .await
        .unwrap();
    for i in 3..=n {
        store
            .audit_record(
                "admin".into(),
                "setting.changed".into(),
                format!("setting-{i}"),
                Some(json!(i - 1)),
                Some(json!(i)),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.audit_head().unwrap().count, n);
    (dir, path, store)
}

/// Tamper through a separate connection, as someone with the file would (dropping the
/// append-only triggers first).
fn tamper(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn broken(store: &Store) -> (u64, BreakKind) {
    match store.audit_verify().unwrap() {
        Verdict::Broken { seq, kind, .. } => (seq, kind),
        ok => panic!("tampering went unnoticed: {ok:?}"),
    }
}

#[tokio::test]
async fn the_schema_refuses_edits_and_deletions() {
    let (_dir, path, _store) = audited(3).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "UPDATE audit SET actor = 'mallory' WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 3",
    ] {
        let err = conn.execute_batch(sql).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn audit_an_edited_row_is_named() {
    let (_dir, path, store) = audited(10).await;
    tamper(
        &path,
        r#"UPDATE audit SET after = '{"action":"reject","reason":"looks right","status":"decided","text":null}' WHERE seq = 2"#,
    );
    assert_eq!(broken(&store), (2, BreakKind::Edited));
}

#[tokio::test]
async fn audit_an_edit_that_only_changes_whitespace_is_named() {
    let (_dir, path, store) = audited(10).await;
    tamper(
        &path,
        "UPDATE audit SET after = replace(after, ':', ': ') WHERE seq = 2",
    );
    assert_eq!(broken(&store), (2, BreakKind::Edited));
}

#[tokio::test]
async fn audit_a_deleted_row_is_named() {
    let (_dir, path, store) = audited(10).await;
    tamper(&path, "DELETE FROM audit WHERE seq = 4");
    let verdict = store.audit_verify().unwrap();
    let Verdict::Broken { seq, kind, message } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!((seq, kind), (4, BreakKind::Missing));
    assert_eq!(
        message,
        "entry 4 is missing: the chain jumps from entry 3 to entry 5"
    );
}

#[tokio::test]
async fn audit_two_reordered_rows_are_named_at_the_first() {
    let (_dir, path, store) = audited(10).await;
    // Swap the content of rows 5 and 6 (the seq is the row's position).
    tamper(
        &path,
        "CREATE TEMP TABLE saved AS SELECT * FROM audit WHERE seq IN (5, 6);
         UPDATE audit SET (id, at, device, actor, action, subject, before, after, prev_hash, hash) =
             (SELECT id, at, device, actor, action, subject, before, after, prev_hash, hash
              FROM saved WHERE saved.seq = 11 - audit.seq)
         WHERE seq IN (5, 6);",
    );
    assert_eq!(broken(&store), (5, BreakKind::OutOfOrder));
}

#[tokio::test]
async fn audit_a_truncated_tail_is_named() {
    let (_dir, path, store) = audited(10).await;
    tamper(&path, "DELETE FROM audit WHERE seq > 7");
    let verdict = store.audit_verify().unwrap();
    assert_eq!(
        verdict,
        Verdict::Broken {
            seq: 8,
            kind: BreakKind::Truncated,
            message: "the chain ends at entry 7 but its head records 10 entries: entries 8 to 10 were removed".into(),
        }
    );
}

#[tokio::test]
async fn audit_an_entry_appended_behind_the_heads_back_is_named() {
    let (_dir, path, store) = audited(4).await;
    // Correctly sealed, by someone who knows the layout, but the head was not moved.
    let mut chain = Chain::resume(store.audit_head().unwrap());
    let forged = chain.append(Record {
        id: Uuid::now_v7().to_string(),
        at: 0,
        device: "local".into(),
        actor: "mallory".into(),
        action: "task.decided".into(),
        subject: "x".into(),
        before: None,
        after: None,
    });
    tamper(
        &path,
        &format!(
            "INSERT INTO audit VALUES (5, '{}', 0, 'local', 'mallory', 'task.decided', 'x', NULL, NULL, '{}', '{}')",
            forged.id, forged.prev_hash, forged.hash
        ),
    );
    assert_eq!(broken(&store), (5, BreakKind::HeadMismatch));
}

#[tokio::test]
async fn audit_a_column_of_the_wrong_type_is_an_edit() {
    let (_dir, path, store) = audited(4).await;
    tamper(&path, "UPDATE audit SET actor = 42, at = 'x' WHERE seq = 3");
    assert_eq!(broken(&store), (3, BreakKind::Edited));
}

#[tokio::test]
async fn audit_a_tampered_log_refuses_new_entries_only_without_its_head() {
    let (_dir, path, store) = audited(3).await;
    // An edit does not stop the store: the next entries chain after it.
    tamper(&path, "UPDATE audit SET actor = 'mallory' WHERE seq = 2");
    store
        .audit_record("a".into(), "setting.changed".into(), "x".into(), None, None)
        .await
        .unwrap();
    assert_eq!(broken(&store), (2, BreakKind::Edited));
    tamper(&path, "DELETE FROM audit_head");
    let err = store
        .audit_record("a".into(), "setting.changed".into(), "x".into(), None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("audit verify"), "{err}");
    assert_eq!(
        store.audit_head().unwrap(),
        Head::default(),
        "a missing head reads as an empty chain's"
    );
}

/// Roles and settings edited in processops.toml between two starts are audited once each,
/// with their before and after; an unchanged start records nothing.
#[tokio::test]
async fn configuration_changes_are_audited_with_before_and_after() {
    use std::collections::BTreeMap;
    let (_dir, _path, store) = store();
    let roles = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(u, r)| ((*u).to_owned(), json!(r)))
            .collect()
    };
    let config =
        |kind: &str, entries| store.audit_config(kind.into(), entries, "processops.toml".into());
    assert_eq!(
        config(
            "role",
            roles(&[("ana", &["hr-manager"]), ("ben", &["evaluator"])])
        )
        .await
        .unwrap(),
        2
    );
    assert_eq!(
        config(
            "role",
            roles(&[("ana", &["hr-manager"]), ("ben", &["evaluator"])])
        )
        .await
        .unwrap(),
        0,
        "an unchanged start records nothing"
    );
    // Ana gains a role, Ben leaves, Cy arrives.
    assert_eq!(
        config(
            "role",
            roles(&[
                ("ana", &["hr-manager", "governance-lead"]),
                ("cy", &["evaluator"])
            ])
        )
        .await
        .unwrap(),
        3
    );
    assert_eq!(
        config(
            "setting",
            BTreeMap::from([("retrieval".to_owned(), json!({ "embeddings": "off" }))])
        )
        .await
        .unwrap(),
        1
    );
    let entries = store
        .audit_entries(&AuditFilter {
            action: Some("role.changed".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(entries.len(), 5);
    let ana = entries.iter().rfind(|e| e.subject == "role:ana").unwrap();
    assert_eq!(ana.before, Some(json!(["hr-manager"])));
    assert_eq!(ana.after, Some(json!(["hr-manager", "governance-lead"])));
    assert_eq!(ana.actor, "processops.toml");
    let ben = entries.iter().rfind(|e| e.subject == "role:ben").unwrap();
    assert_eq!((ben.before.is_some(), ben.after.is_none()), (true, true));
    assert!(store.audit_verify().unwrap().is_ok());
}
