//! Change control's rows against a real SQLite file: proposals, compare-and-set moves, the
//! history, and the audit entries written in the same transaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use processops_core::blueprint::Stage;
use processops_core::lifecycle::{MoveReason, StageMove};
use processops_store::{AuditFilter, Durability, Store, StoreError};

async fn store_with_versions() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    for (hash, blueprint) in [("v1", "bp"), ("v2", "bp"), ("other", "elsewhere")] {
        store
            .put_version(
                hash.into(),
                blueprint.into(),
                "Blueprint".into(),
                format!("id: {blueprint}"),
            )
            .await
            .unwrap();
    }
    (dir, store)
}

fn step(hash: &str, from: Stage, to: Stage, reason: MoveReason) -> StageMove {
    StageMove {
        hash: hash.into(),
        from,
        to,
        reason,
    }
}

#[tokio::test]
async fn proposals_are_checked_and_recorded() {
    let (_dir, store) = store_with_versions().await;
    let propose = |version: &str, blueprint: &str| {
        store.propose_version(
            blueprint.into(),
            version.into(),
            "dee".into(),
            "Shorter replies".into(),
            vec!["tag:too-long".into()],
        )
    };
    let err = propose("nope", "bp").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Lifecycle(m) if m.contains("is not stored")),
        "{err}"
    );
    let err = propose("other", "bp").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Lifecycle(m) if m.contains("a version of `elsewhere`")),
        "{err}"
    );
    let row = propose("v1", "bp").await.unwrap();
    assert_eq!(
        (row.stage, row.author.as_str(), row.note.as_str()),
        (Stage::Draft, "dee", "Shorter replies")
    );
    assert_eq!(row.feedback, ["tag:too-long"]);
    let err = propose("v1", "bp").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "version v1 was already proposed by dee and is draft"
    );
    assert!(store.version_stages(Some("elsewhere")).unwrap().is_empty());
    assert_eq!(store.version_stages(None).unwrap().len(), 1);
    let history = store.stage_changes("bp").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].from, history[0].to), (None, Stage::Draft));
    assert_eq!(history[0].reason, "proposed");
}

#[tokio::test]
async fn moves_are_compare_and_set_and_audited_together() {
    let (_dir, store) = store_with_versions().await;
    for v in ["v1", "v2"] {
        store
            .propose_version("bp".into(), v.into(), "dee".into(), "n".into(), vec![])
            .await
            .unwrap();
    }
    let rows = store
        .apply_stage_moves(
            "bp".into(),
            vec![step("v1", Stage::Draft, Stage::Pilot, MoveReason::Asked)],
            "dee".into(),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(rows[0].stage, Stage::Pilot);
    let audited = |store: &Store| {
        store
            .audit_entries(&AuditFilter {
                action: Some("version.staged".into()),
                ..AuditFilter::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(audited(&store), 1);

    // A plan made on stale rows (v1 is no longer a draft) writes nothing, not even its
    // first, valid move.
    let err = store
        .apply_stage_moves(
            "bp".into(),
            vec![
                step("v2", Stage::Draft, Stage::Pilot, MoveReason::Asked),
                step("v1", Stage::Draft, Stage::Pilot, MoveReason::Asked),
            ],
            "dee".into(),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "version v1 changed meanwhile (it is pilot now, not draft); look again and retry"
    );
    assert_eq!(
        store.version_stage("v2").unwrap().unwrap().stage,
        Stage::Draft
    );
    assert_eq!(audited(&store), 1);
    assert_eq!(store.stage_changes("bp").unwrap().len(), 3);

    // Approval stamps approved_at; a rollback marks the version it retires.
    for (from, to) in [
        (Stage::Pilot, Stage::Monitored),
        (Stage::Monitored, Stage::Approved),
    ] {
        store
            .apply_stage_moves(
                "bp".into(),
                vec![step("v1", from, to, MoveReason::Asked)],
                "gwen".into(),
                Some("looks right".into()),
                None,
            )
            .await
            .unwrap();
    }
    let v1 = store.version_stage("v1").unwrap().unwrap();
    assert!(v1.approved_at.is_some());
    assert!(!v1.rolled_back);
    store
        .apply_stage_moves(
            "bp".into(),
            vec![step(
                "v1",
                Stage::Approved,
                Stage::Retired,
                MoveReason::RolledBack,
            )],
            "gwen".into(),
            None,
            None,
        )
        .await
        .unwrap();
    let v1 = store.version_stage("v1").unwrap().unwrap();
    assert!(v1.rolled_back);
    assert_eq!(v1.state().stage, Stage::Retired);
    let last = store.stage_changes("bp").unwrap().pop().unwrap();
    assert_eq!(
        (last.reason.as_str(), last.by.as_str()),
        ("rolled_back", "gwen")
    );
    assert_eq!(audited(&store), 4);
    assert!(store.audit_verify().unwrap().is_ok());
}
