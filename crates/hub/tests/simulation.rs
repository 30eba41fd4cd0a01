//! The stateful sync simulation (DESIGN.md §5, I1–I7): 2–5 devices, each a real device store,
//! and 1–2 hub processes over one real hub store (SQLite, and PostgreSQL), doing random
//! create-task / decide / resolve / tag / publish steps and syncing under random faults —
//! dropped requests and responses, duplicated and reordered deliveries, a crash between
//! applying pulled events and saving the cursor, random page sizes. After healing, every
//! invariant is checked against an oracle. Planted bugs must make it fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Backend, Fault, HubSite, SimTransport, device, team, test_options};
use processops_core::feedback::{Intent, OutputRef, TagKey, TagOp};
use processops_core::journal::{Action, Decision};
use processops_hub::{Hub, Planted};
use processops_store::{Store, TagChange};
use processops_sync::replica::{Cursor, View};
use processops_sync::{
    Change, Event, HubEvent, LocalReplica, Options, Position, Report, SyncError, Verdict,
    content_hash, sync_once,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    CreateTask {
        dev: usize,
    },
    Decide {
        dev: usize,
        pick: usize,
        action: u8,
    },
    Resolve {
        dev: usize,
        pick: usize,
    },
    Tag {
        dev: usize,
        output: u8,
        tag: u8,
        add: bool,
    },
    Publish {
        dev: usize,
        version: u8,
        stage: u8,
    },
    Sync {
        dev: usize,
        hub: usize,
        faults: Vec<Fault>,
        crash: bool,
        push_page: usize,
        pull_page: u32,
    },
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::DropRequest),
        1 => Just(Fault::DropResponse),
        1 => Just(Fault::Duplicate),
        1 => Just(Fault::Reorder),
    ]
}

/// `crash`: how often a sync round "crashes" between applying a page and saving the cursor.
fn op(crash: f64) -> impl Strategy<Value = Op> {
    let dev = 0..5usize;
    prop_oneof![
        2 => dev.clone().prop_map(|dev| Op::CreateTask { dev }),
        4 => (dev.clone(), any::<usize>(), 0..4u8).prop_map(|(dev, pick, action)| Op::Decide { dev, pick, action }),
        1 => (dev.clone(), any::<usize>()).prop_map(|(dev, pick)| Op::Resolve { dev, pick }),
        2 => (dev.clone(), 0..3u8, 0..2u8, any::<bool>()).prop_map(|(dev, output, tag, add)| Op::Tag { dev, output, tag, add }),
        1 => (dev.clone(), 0..3u8, 0..2u8).prop_map(|(dev, version, stage)| Op::Publish { dev, version, stage }),
        5 => (dev, 0..2usize, prop::collection::vec(fault(), 0..4), prop::bool::weighted(crash), 1..6usize, 1..6u32)
            .prop_map(|(dev, hub, faults, crash, push_page, pull_page)| Op::Sync { dev, hub, faults, crash, push_page, pull_page }),
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    devices: usize,
    hubs: usize,
    ops: Vec<Op>,
}

fn scenario(crash: f64) -> impl Strategy<Value = Scenario> {
    (
        2..=5usize,
        1..=2usize,
        prop::collection::vec(op(crash), 1..40),
    )
        .prop_map(|(devices, hubs, ops)| Scenario { devices, hubs, ops })
}

/// A device store that "crashes" once: it applies a pulled page but keeps the old cursor, as
/// if the process died between the two (the worst case for idempotency).
struct Crashing<'a> {
    store: &'a Store,
    armed: AtomicBool,
}

impl LocalReplica for Crashing<'_> {
    async fn sync_position(&self) -> Result<Position, SyncError> {
        self.store.sync_position().await
    }
    async fn outbox(&self, after: u64, limit: usize) -> Result<Vec<Event>, SyncError> {
        self.store.outbox(after, limit).await
    }
    async fn acknowledge(&self, through: u64) -> Result<(), SyncError> {
        self.store.acknowledge(through).await
    }
    async fn apply(&self, events: Vec<HubEvent>, cursor: Cursor) -> Result<(), SyncError> {
        if !events.is_empty() && self.armed.swap(false, Ordering::SeqCst) {
            let old = self.store.sync_position().await?.cursor;
            self.store.apply(events, old).await?;
            return Err(SyncError::Local("crashed after applying (injected)".into()));
        }
        self.store.apply(events, cursor).await
    }
    async fn record_round(&self, outcome: Result<&Report, &SyncError>) -> Result<(), SyncError> {
        self.store.record_round(outcome).await
    }
}

struct Device {
    user: String,
    token: String,
    store: Store,
}

const VERSIONS: [&str; 3] = ["{\"v\":1}", "{\"v\":2}", "{\"v\":3}"];
const STAGES: [&str; 2] = ["pilot", "scaled"];

fn output(i: u8) -> OutputRef {
    OutputRef {
        run: Uuid::from_u128(0xabc0 + u128::from(i)),
        node: "draft".into(),
        visit: 1,
    }
}

async fn run_scenario(
    backend: Backend,
    planted: Planted,
    plant_apply: bool,
    s: &Scenario,
) -> Result<(), TestCaseError> {
    let site = HubSite::new(backend);
    let mut hubs: Vec<Hub> = Vec::new();
    for _ in 0..s.hubs {
        hubs.push(site.open(planted, test_options()).await);
    }
    let names: Vec<String> = (0..s.devices).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    team(&hubs[0], &refs).await;
    let mut devices = Vec::new();
    for name in &names {
        let (token, store) = device(&hubs[0], site.dir.path(), name).await;
        if plant_apply {
            store.plant_non_idempotent_apply();
        }
        devices.push(Device {
            user: name.clone(),
            token,
            store,
        });
    }
    // The oracle: every tag op each owner made, and every effect each device acted on.
    let mut tag_ops: Vec<TagOp> = Vec::new();
    let mut taken: HashMap<usize, Vec<(Uuid, Uuid)>> = HashMap::new();

    for op in &s.ops {
        match op {
            Op::CreateTask { dev } => {
                let Some(d) = devices.get(*dev) else { continue };
                d.store
                    .sync_record(Change::TaskCreated {
                        task: Uuid::now_v7(),
                        run: Uuid::now_v7(),
                        blueprint: "invoice".into(),
                        role: "manager".into(),
                        body: serde_json::json!({"draft": "Pay it"}),
                    })
                    .await
                    .unwrap();
            }
            Op::Decide { dev, pick, action } => {
                let Some(d) = devices.get(*dev) else { continue };
                let view = d.store.sync_view().unwrap();
                // A manager decides what their inbox shows as open, on the head they see.
                let open: Vec<_> = view
                    .tasks
                    .iter()
                    .filter(|(_, t)| t.decision.is_none())
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let (task, t) = open[pick % open.len()];
                let action = [
                    Action::Approve,
                    Action::Edit,
                    Action::Reject,
                    Action::Escalate,
                ][usize::from(*action) % 4];
                d.store
                    .sync_record(Change::Decided {
                        task: *task,
                        base: t.head,
                        decision: Decision {
                            action,
                            by: d.user.clone(),
                            text: (action == Action::Edit).then(|| "Pay half".into()),
                            reason: (action == Action::Reject).then(|| "Wrong amount".into()),
                        },
                    })
                    .await
                    .unwrap();
            }
            Op::Resolve { dev, pick } => {
                let Some(d) = devices.get(*dev) else { continue };
                let view = d.store.sync_view().unwrap();
                let open: Vec<_> = view.open_conflicts().collect();
                if open.is_empty() {
                    continue;
                }
                let (conflict, c) = open[pick % open.len()];
                d.store
                    .sync_record(Change::ConflictResolved {
                        task: c.task,
                        conflict: *conflict,
                        note: Some("kept the accepted decision".into()),
                    })
                    .await
                    .unwrap();
            }
            Op::Tag {
                dev,
                output: o,
                tag,
                add,
            } => {
                let Some(d) = devices.get(*dev) else { continue };
                let ops = d
                    .store
                    .sync_tag(vec![TagChange {
                        key: TagKey {
                            output: output(*o),
                            evaluator: d.user.clone(),
                            tag: ["tone", "facts"][usize::from(*tag)].into(),
                        },
                        intent: if *add { Intent::Add } else { Intent::Remove },
                    }])
                    .await
                    .unwrap();
                tag_ops.extend(ops);
            }
            Op::Publish {
                dev,
                version,
                stage,
            } => {
                let Some(d) = devices.get(*dev) else { continue };
                let canonical = VERSIONS[usize::from(*version)];
                let hash = content_hash(canonical);
                let stage = STAGES[usize::from(*stage)];
                let base = d
                    .store
                    .sync_view()
                    .unwrap()
                    .channels
                    .get(&("invoice".to_owned(), stage.to_owned()))
                    .cloned();
                d.store
                    .sync_record(Change::VersionAdded {
                        blueprint: "invoice".into(),
                        hash: hash.clone(),
                        canonical: canonical.into(),
                        source: canonical.into(),
                    })
                    .await
                    .unwrap();
                d.store
                    .sync_record(Change::Published {
                        blueprint: "invoice".into(),
                        stage: stage.into(),
                        hash,
                        base,
                    })
                    .await
                    .unwrap();
            }
            Op::Sync {
                dev,
                hub,
                faults,
                crash,
                push_page,
                pull_page,
            } => {
                let Some(d) = devices.get(*dev) else { continue };
                let hub = hubs[hub % hubs.len()].clone();
                let transport = SimTransport::new(hub, d.token.clone(), faults.clone());
                let replica = Crashing {
                    store: &d.store,
                    armed: AtomicBool::new(*crash),
                };
                let options = Options {
                    push_page: *push_page,
                    pull_page: *pull_page,
                };
                match sync_once(&replica, &transport, options).await {
                    Ok(_) | Err(SyncError::Transport(_) | SyncError::Local(_)) => {}
                    // A re-delivering transport may send a page with nothing new and `more`.
                    Err(SyncError::Protocol(m)) if faults.contains(&Fault::Reorder) => {
                        let _ = m;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("sync failed: {e}"))),
                }
                taken
                    .entry(*dev)
                    .or_default()
                    .extend(d.store.sync_take_effects().await.unwrap());
            }
        }
    }

    // Heal: every device syncs cleanly until nothing moves (twice round the table suffices:
    // the first round brings every event to the hub, the second brings them to everyone).
    for _ in 0..2 {
        for (i, d) in devices.iter().enumerate() {
            let transport =
                SimTransport::new(hubs[i % hubs.len()].clone(), d.token.clone(), vec![]);
            let report = sync_once(&d.store, &transport, Options::default())
                .await
                .map_err(|e| TestCaseError::fail(format!("healing sync of {}: {e}", d.user)))?;
            prop_assert_eq!(
                report.pending,
                0,
                "{} still has unacknowledged events",
                d.user
            );
            taken
                .entry(i)
                .or_default()
                .extend(d.store.sync_take_effects().await.unwrap());
        }
    }

    check(&hubs[0], &devices, &tag_ops, &taken).await
}

async fn hub_log(hub: &Hub, d: &Device) -> Vec<HubEvent> {
    let p = hub
        .authenticate(Some(&d.token), common::LOCAL)
        .await
        .unwrap();
    let mut log = Vec::new();
    let mut after = 0;
    loop {
        let page = hub.pull(&p, after, Some(1000)).await.unwrap();
        after = page.events.last().map_or(after, |e| e.hub_seq);
        log.extend(page.events);
        if !page.more {
            return log;
        }
    }
}

async fn check(
    hub: &Hub,
    devices: &[Device],
    tag_ops: &[TagOp],
    taken: &HashMap<usize, Vec<(Uuid, Uuid)>>,
) -> Result<(), TestCaseError> {
    let log = hub_log(hub, &devices[0]).await;

    // The hub's order is dense: 1, 2, 3…
    for (i, e) in log.iter().enumerate() {
        prop_assert_eq!(
            e.hub_seq,
            i as u64 + 1,
            "the hub sequence has a gap or a repeat"
        );
    }

    // I2: every event any device made is on the hub exactly once, unaltered; nothing else is.
    let mut on_hub: HashMap<Uuid, &Event> = HashMap::new();
    for e in &log {
        prop_assert!(
            on_hub.insert(e.event.id, &e.event).is_none(),
            "event {} stored twice",
            e.event.id
        );
    }
    let mut made = 0;
    for d in devices {
        for e in d.store.sync_own_events().unwrap() {
            made += 1;
            prop_assert_eq!(
                on_hub.get(&e.id).copied(),
                Some(&e),
                "event lost or altered"
            );
        }
    }
    prop_assert_eq!(made, log.len(), "the hub holds events nobody made");

    // I1: at most one accepted final decision per task.
    let mut finals: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for e in &log {
        if let (Change::Decided { task, decision, .. }, Verdict::Accepted) =
            (&e.event.change, &e.verdict)
            && processops_sync::is_final(decision.action)
        {
            finals.entry(*task).or_default().push(e.event.id);
        }
    }
    for (task, ds) in &finals {
        prop_assert!(
            ds.len() <= 1,
            "task {task} has {} accepted final decisions",
            ds.len()
        );
    }

    // I4: every decision is accepted or a conflict (never silently ignored).
    for e in &log {
        if matches!(e.event.change, Change::Decided { .. }) {
            prop_assert!(
                matches!(e.verdict, Verdict::Accepted | Verdict::Conflict { .. }),
                "decision {} was {:?}",
                e.event.id,
                e.verdict
            );
        }
    }

    // I5: tags equal the order-free oracle (max counter per key over every op made).
    let oracle: processops_core::feedback::TagState = tag_ops.iter().cloned().collect();

    for (i, d) in devices.iter().enumerate() {
        let me = d.store.sync_identity().unwrap().unwrap().device;
        // I3: every device applied the same log and materialised the same state as the
        // reference reducer over the hub's log.
        let applied = d.store.sync_log().unwrap();
        let applied_ids: BTreeSet<Uuid> = applied.iter().map(|e| e.event.id).collect();
        prop_assert_eq!(
            applied_ids.len(),
            log.len(),
            "{} applied a different log",
            d.user
        );
        for e in &applied {
            let held = on_hub.get(&e.event.id);
            prop_assert_eq!(
                held.copied(),
                Some(&e.event),
                "{} applied an unknown event",
                d.user
            );
        }
        let mut reference = View::default();
        for e in &log {
            reference.apply(me, e);
        }
        let view = d.store.sync_view().unwrap();
        prop_assert_eq!(&view.tasks, &reference.tasks, "{}: tasks differ", d.user);
        prop_assert_eq!(
            &view.conflicts,
            &reference.conflicts,
            "{}: conflicts differ",
            d.user
        );
        prop_assert_eq!(
            &view.versions,
            &reference.versions,
            "{}: versions differ",
            d.user
        );
        prop_assert_eq!(
            &view.channels,
            &reference.channels,
            "{}: channels differ",
            d.user
        );
        prop_assert_eq!(
            &view.effects,
            &reference.effects,
            "{}: effects differ",
            d.user
        );
        prop_assert_eq!(
            &view.tags,
            &oracle,
            "{}: tags differ from the oracle",
            d.user
        );

        // I7: the owner acted on each accepted final decision of its tasks exactly once.
        let mine = taken.get(&i).cloned().unwrap_or_default();
        let mut per_task: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for (task, event) in mine {
            per_task.entry(task).or_default().push(event);
        }
        let expected: BTreeMap<Uuid, Vec<Uuid>> = reference
            .effects
            .iter()
            .map(|(t, e)| (*t, vec![*e]))
            .collect();
        prop_assert_eq!(per_task, expected, "{}: outputs fired", d.user);
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn cases(default: u32) -> u32 {
    std::env::var("PROCESSOPS_SIM_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

fn simulate(
    backend: Backend,
    planted: Planted,
    plant_apply: bool,
    cases: u32,
) -> Result<(), TestError<Scenario>> {
    let rt = runtime();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    // A planted non-idempotent apply shows only when a page is applied twice: crash more.
    let crash = if plant_apply { 0.5 } else { 0.15 };
    runner.run(&scenario(crash), |s| {
        rt.block_on(run_scenario(backend, planted, plant_apply, &s))
    })
}

#[test]
fn sync_invariants_hold_on_sqlite() {
    let n = cases(96);
    if let Err(e) = simulate(Backend::Sqlite, Planted::None, false, n) {
        panic!("{e}");
    }
    println!("simulation: {n} cases on SQLite passed");
}

#[test]
fn sync_invariants_hold_on_postgres() {
    let n = cases(48);
    if let Err(e) = simulate(Backend::Postgres, Planted::None, false, n) {
        panic!("{e}");
    }
    println!("simulation: {n} cases on PostgreSQL passed");
}

fn expect_caught(name: &str, result: Result<(), TestError<Scenario>>) {
    match result {
        Err(TestError::Fail(reason, shrunk)) => {
            println!("planted bug `{name}` caught: {reason}\nshrunk counterexample: {shrunk:#?}");
        }
        Err(TestError::Abort(reason)) => {
            panic!("planted bug `{name}`: simulation aborted: {reason}")
        }
        Ok(()) => panic!("planted bug `{name}` was NOT caught by the simulation"),
    }
}

#[test]
fn the_simulation_catches_a_last_writer_wins_hub() {
    expect_caught(
        "last-writer-wins hub",
        simulate(Backend::Sqlite, Planted::LastWriterWins, false, cases(200)),
    );
}

#[test]
fn the_simulation_catches_a_non_idempotent_apply() {
    expect_caught(
        "non-idempotent apply",
        simulate(Backend::Sqlite, Planted::None, true, cases(400)),
    );
}
