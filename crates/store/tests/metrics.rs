//! The metrics' counters in SQLite: kept in step with the journal by every write path (runs,
//! decisions, escalations, breaches), equal to a rebuild from the journal, backfilled by the
//! migration, and able to name the runs behind each number.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use processops_core::journal::{Action, Decision, Event, Exchange, FinalStatus, StepMeta, Task};
use processops_core::metrics::{Counts, Ratio, summarize};
use processops_store::{Breach, Drill, Durability, MetricsWindow, NewRun, Store};
use serde_json::json;
use uuid::Uuid;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    (dir, store)
}

fn exchange(purpose: &str) -> Exchange {
    Exchange {
        agent: "writer".into(),
        provider: "default".into(),
        purpose: purpose.into(),
        ..Exchange::default()
    }
}

fn prompt(meta: StepMeta) -> Event {
    Event::NodeFinished {
        node: "draft".into(),
        visit: 1,
        output: json!({ "text": "A draft of some length." }),
        vars: serde_json::Map::new(),
        next: vec!["review".into()],
        label: None,
        meta,
    }
}

fn clean() -> Event {
    prompt(StepMeta {
        exchanges: vec![exchange("call")],
        ..StepMeta::default()
    })
}

fn repaired() -> Event {
    prompt(StepMeta {
        exchanges: vec![exchange("call"), exchange("repair")],
        ..StepMeta::default()
    })
}

fn fallback() -> Event {
    prompt(StepMeta {
        fallback: Some("template".into()),
        ..StepMeta::default()
    })
}

fn failed_prompt() -> Event {
    Event::NodeFailed {
        node: "draft".into(),
        visit: 1,
        attempt: 1,
        error: "provider down".into(),
        prompt: true,
    }
}

fn auto_review() -> Event {
    Event::NodeFinished {
        node: "review".into(),
        visit: 1,
        output: json!({ "decision": "approved", "path": "auto", "by": "policy" }),
        vars: serde_json::Map::new(),
        next: vec![],
        label: Some("approved".into()),
        meta: StepMeta::default(),
    }
}

fn task(id: Uuid, due_at: Option<i64>) -> Event {
    Event::TaskCreated {
        task: Task {
            id,
            node: "review".into(),
            visit: 1,
            title: "Review the draft".into(),
            draft: "Dear Ana, your laptop arrives on Monday.".into(),
            role: "manager".into(),
            users: vec![],
            escalation: vec!["director".into()],
            reasons: vec![],
            due_at,
            remind_at: None,
            context: json!({}),
            policy: Default::default(),
        },
    }
}

fn finished(status: FinalStatus) -> Event {
    Event::RunFinished {
        status,
        error: None,
    }
}

fn decision(action: Action, by: &str, text: Option<&str>) -> Decision {
    Decision {
        action,
        by: by.into(),
        text: text.map(Into::into),
        reason: (action == Action::Reject).then(|| "Wrong date".into()),
    }
}

async fn start(store: &Store, version: &str, events: Vec<Event>) -> Uuid {
    let id = Uuid::now_v7();
    let mut all = vec![Event::RunStarted {
        blueprint: "onboarding".into(),
        version: version.into(),
        trigger: "form".into(),
        start: "draft".into(),
        payload: json!({}),
    }];
    all.extend(events);
    store
        .start_run(NewRun {
            id,
            blueprint_id: "onboarding".into(),
            version: version.into(),
            trigger_id: "form".into(),
            dedupe_key: None,
            events: all,
        })
        .await
        .unwrap();
    id
}

async fn versions(store: &Store) {
    for v in ["v1", "v2"] {
        store
            .put_version(
                v.into(),
                "onboarding".into(),
                "Onboarding".into(),
                "id: onboarding".into(),
            )
            .await
            .unwrap();
    }
}

fn all(store: &Store) -> Counts {
    let mut total = Counts::new();
    for row in store.metric_counts(&MetricsWindow::default()).unwrap() {
        processops_core::metrics::merge(&mut total, &row.counts);
    }
    total
}

struct Scenario {
    approved: Uuid,
    automated: Uuid,
    failed: Uuid,
    escalated: Uuid,
    rejected: Uuid,
}

/// Five runs whose metrics are worked out by hand in `metrics_follow_every_write_path`.
async fn scenario(store: &Store) -> Scenario {
    versions(store).await;
    let (a, d, e) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // A: a clean draft a manager approves.
    let approved = start(store, "v1", vec![clean(), task(a, None)]).await;
    store
        .decide(a, decision(Action::Approve, "ana", None))
        .await
        .unwrap();
    store
        .append(approved, vec![finished(FinalStatus::Completed)], None)
        .await
        .unwrap();
    // B: auto-approved by the review's policy; nobody touches it.
    let automated = start(
        store,
        "v1",
        vec![clean(), auto_review(), finished(FinalStatus::Completed)],
    )
    .await;
    // C: the prompt fails on every agent; the run fails.
    let failed = start(
        store,
        "v1",
        vec![failed_prompt(), finished(FinalStatus::Failed)],
    )
    .await;
    // D: a repaired draft, escalated by a person, its SLA breached, then edited.
    let escalated = start(store, "v2", vec![repaired(), task(d, Some(0))]).await;
    store
        .escalate(d, "director".into(), "ben".into(), None)
        .await
        .unwrap();
    store
        .breach(d, processops_store::now_ms(), Breach::Attention)
        .await
        .unwrap()
        .unwrap();
    store
        .decide(
            d,
            decision(
                Action::Edit,
                "carol",
                Some("Dear Ana, your laptop arrives on Tuesday."),
            ),
        )
        .await
        .unwrap();
    store
        .append(escalated, vec![finished(FinalStatus::Completed)], None)
        .await
        .unwrap();
    // E: the template fallback wrote the draft; it is rejected and the run still goes on.
    let rejected = start(store, "v2", vec![fallback(), task(e, None)]).await;
    store
        .decide(e, decision(Action::Reject, "dana", None))
        .await
        .unwrap();
    Scenario {
        approved,
        automated,
        failed,
        escalated,
        rejected,
    }
}

#[tokio::test]
async fn metrics_follow_every_write_path() {
    let (_dir, store) = store();
    let s = scenario(&store).await;
    let m = summarize(&all(&store));
    assert_eq!(m.runs_started, 5.0);
    // Prompt steps: A and B clean; C failed, D repaired, E fell back.
    assert_eq!(m.prompt_success, Ratio::new(2.0, 5.0));
    assert_eq!(
        (m.prompts.failed, m.prompts.repaired, m.prompts.fallback),
        (1.0, 1.0, 1.0)
    );
    // Human decisions: A approve, D's escalation by ben, D edit, E reject.
    assert_eq!(m.human_override, Ratio::new(2.0, 4.0));
    assert_eq!(
        (
            m.decisions.approve,
            m.decisions.edit,
            m.decisions.reject,
            m.decisions.escalate
        ),
        (1.0, 1.0, 1.0, 1.0)
    );
    let edited = m.edit_distance.unwrap();
    assert!(
        edited > 0.0 && edited < 0.5,
        "one word of eight changed: {edited}"
    );
    // Finished: A (touched), B, C (untouched), D (touched); E is still running.
    assert_eq!(m.automation_coverage, Ratio::new(2.0, 4.0));
    assert_eq!(m.runs_failed, 1.0);
    assert_eq!(m.auto_approved_reviews, 1.0);
    // Decided tasks: A, D, E; D was escalated and breached.
    assert_eq!(m.escalation.decided, 3.0);
    assert_eq!(m.escalation.escalated, Ratio::new(1.0, 3.0));
    assert_eq!(m.escalation.breached, Ratio::new(1.0, 3.0));
    assert!(m.escalation.p50_ms.is_some());

    // Per version.
    let rows = store.metric_counts(&MetricsWindow::default()).unwrap();
    let versions: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| (r.version.as_str(), summarize(&r.counts).runs_started))
        .collect();
    assert_eq!(versions, [("v1", 3.0), ("v2", 2.0)]);
    let v2 = store
        .metric_counts(&MetricsWindow {
            version: Some("v2".into()),
            ..MetricsWindow::default()
        })
        .unwrap();
    assert_eq!(v2.len(), 1);
    assert_eq!(
        summarize(&v2[0].counts).human_override,
        Ratio::new(2.0, 3.0)
    );
    // A window that ended before today holds nothing.
    let today = processops_core::metrics::day_of(processops_store::now_ms());
    let past = MetricsWindow {
        until_day: Some(today),
        ..MetricsWindow::default()
    };
    assert!(store.metric_counts(&past).unwrap().is_empty());
    let series = store.metric_series(&MetricsWindow::default()).unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].0, today);

    // Each number names the runs behind it.
    let runs = |drill| -> BTreeSet<Uuid> {
        store
            .metric_runs(&MetricsWindow::default(), drill, 100)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect()
    };
    assert_eq!(
        runs(Drill::Overrides),
        BTreeSet::from([s.escalated, s.rejected])
    );
    assert_eq!(
        runs(Drill::Automated),
        BTreeSet::from([s.automated, s.failed])
    );
    assert_eq!(
        runs(Drill::Touched),
        BTreeSet::from([s.approved, s.escalated])
    );
    assert_eq!(
        runs(Drill::PromptIssues),
        BTreeSet::from([s.failed, s.escalated, s.rejected])
    );
    assert_eq!(runs(Drill::Escalated), BTreeSet::from([s.escalated]));
    assert_eq!(runs(Drill::Breached), BTreeSet::from([s.escalated]));
    assert_eq!(runs(Drill::Failed), BTreeSet::from([s.failed]));
    assert_eq!(runs(Drill::Slowest).len(), 3);
    let overrides = store
        .metric_runs(&MetricsWindow::default(), Drill::Overrides, 100)
        .unwrap();
    assert!(
        overrides.iter().any(|r| r.detail == "edit by carol"),
        "{overrides:?}"
    );
    assert_eq!(
        store
            .metric_runs(&MetricsWindow::default(), Drill::Overrides, 1)
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .metric_runs(&past, Drill::Overrides, 100)
            .unwrap()
            .is_empty()
    );
}

/// A deterministic stream of choices (the test needs no `rand`).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn incremental_counters_equal_a_rebuild_from_the_journal() {
    for seed in [1_u64, 2, 3] {
        let (_dir, store) = store();
        versions(&store).await;
        let mut rng = Lcg(seed);
        for _ in 0..40 {
            let version = if rng.below(2) == 0 { "v1" } else { "v2" };
            let first = match rng.below(4) {
                0 => clean(),
                1 => repaired(),
                2 => fallback(),
                _ => failed_prompt(),
            };
            if rng.below(3) == 0 {
                start(
                    &store,
                    version,
                    vec![first, auto_review(), finished(FinalStatus::Completed)],
                )
                .await;
                continue;
            }
            let t = Uuid::now_v7();
            let run = start(&store, version, vec![first, task(t, Some(0))]).await;
            if rng.below(3) == 0 {
                store
                    .escalate(
                        t,
                        "director".into(),
                        if rng.below(2) == 0 { "sla" } else { "ben" }.into(),
                        None,
                    )
                    .await
                    .unwrap();
            }
            if rng.below(4) == 0 {
                store
                    .breach(t, processops_store::now_ms(), Breach::Attention)
                    .await
                    .unwrap();
            }
            let by = ["ana", "ben", "policy", "sla"][rng.below(4) as usize];
            let d = match rng.below(3) {
                0 => decision(Action::Approve, by, None),
                1 => decision(Action::Edit, by, Some("Something else entirely.")),
                _ => decision(Action::Reject, by, None),
            };
            store.decide(t, d).await.unwrap();
            if rng.below(4) > 0 {
                let status = if rng.below(5) == 0 {
                    FinalStatus::Failed
                } else {
                    FinalStatus::Completed
                };
                store
                    .append(run, vec![finished(status)], None)
                    .await
                    .unwrap();
            }
        }
        let incremental = store.metric_counts(&MetricsWindow::default()).unwrap();
        assert!(!incremental.is_empty());
        let replayed = store.rebuild_metrics().await.unwrap();
        assert!(replayed > 40, "seed {seed}: replayed {replayed}");
        let rebuilt = store.metric_counts(&MetricsWindow::default()).unwrap();
        assert_eq!(incremental, rebuilt, "seed {seed}");
        // And rebuilding twice changes nothing (the run touch counts are reset first).
        store.rebuild_metrics().await.unwrap();
        assert_eq!(
            store.metric_counts(&MetricsWindow::default()).unwrap(),
            rebuilt,
            "seed {seed}"
        );
    }
}

/// A store from before the metrics gets its counters from the journal when it is opened.
#[tokio::test]
async fn the_migration_backfills_the_counters_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let expected = {
        let store = Store::open(&path, Durability::Process).unwrap();
        scenario(&store).await;
        store.metric_counts(&MetricsWindow::default()).unwrap()
    };
    assert!(!expected.is_empty());
    {
        // Take the database back to the schema before the metrics migration (0010), undoing
        // the migrations after it too.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE config_snapshot; DROP TABLE drift_alerts; DROP TABLE version_gates; DROP TABLE stage_changes; DROP TABLE version_stages;
             DROP TABLE metric_counts; DROP TABLE metric_task_flags; ALTER TABLE runs DROP COLUMN human_touches;
             PRAGMA user_version = 9;",
        )
        .unwrap();
    }
    let store = Store::open(&path, Durability::Process).unwrap();
    assert_eq!(
        store.metric_counts(&MetricsWindow::default()).unwrap(),
        expected
    );
}
