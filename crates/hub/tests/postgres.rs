//! PostgreSQL under concurrency: K pushers on separate hub processes and M pullers reading
//! with `hub_seq > cursor` while they push. Every puller must see every event exactly once
//! and in order — and the planted naive-sequence hub must be caught doing otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{Backend, HubSite, LOCAL, device, team, test_options};
use processops_core::feedback::{Intent, OutputRef, TagKey};
use processops_hub::{Hub, Planted};
use processops_store::TagChange;
use processops_sync::{LocalReplica as _, PushRequest, WIRE_VERSION};
use uuid::Uuid;

const PUSHERS: usize = 4;
const PULLERS: usize = 3;
const BATCHES: usize = 15;
const PER_BATCH: usize = 4;

/// Push concurrently, pull concurrently; returns, per puller, the hub sequence numbers and
/// event ids it saw, and the ids pushed.
async fn race(planted: Planted) -> (Vec<Vec<(u64, Uuid)>>, HashSet<Uuid>) {
    let site = HubSite::new(Backend::Postgres);
    let first = site.open(planted, test_options()).await;
    let names: Vec<String> = (0..PUSHERS).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    team(&first, &refs).await;
    let reader_token = device(&first, site.dir.path(), "admin").await.0;

    let mut pushers = Vec::new();
    for name in &names {
        // Each pusher is its own hub process (its own pool) over the same database.
        let hub = site.open(planted, test_options()).await;
        let (token, store) = device(&hub, site.dir.path(), name).await;
        for i in 0..BATCHES * PER_BATCH {
            store
                .sync_tag(vec![TagChange {
                    key: TagKey {
                        output: OutputRef {
                            run: Uuid::now_v7(),
                            node: "n".into(),
                            visit: 1,
                        },
                        evaluator: name.clone(),
                        tag: format!("t{i}"),
                    },
                    intent: Intent::Add,
                }])
                .await
                .unwrap();
        }
        let events = store.outbox(0, BATCHES * PER_BATCH).await.unwrap();
        pushers.push(tokio::spawn(async move {
            let p = hub.authenticate(Some(&token), LOCAL).await.unwrap();
            let mut ids = Vec::new();
            for chunk in events.chunks(PER_BATCH) {
                hub.push(
                    &p,
                    PushRequest {
                        wire: WIRE_VERSION,
                        events: chunk.to_vec(),
                    },
                )
                .await
                .unwrap();
                ids.extend(chunk.iter().map(|e| e.id));
            }
            ids
        }));
    }
    let total = PUSHERS * BATCHES * PER_BATCH;
    let mut pullers = Vec::new();
    for _ in 0..PULLERS {
        let hub: Hub = site.open(planted, test_options()).await;
        let token = reader_token.clone();
        pullers.push(tokio::spawn(async move {
            let p = hub.authenticate(Some(&token), LOCAL).await.unwrap();
            let mut seen = Vec::new();
            let mut cursor = 0;
            let mut idle = 0;
            // Pull until everything arrived, or until nothing new came for a while after the
            // pushers must be done (a skipped row never arrives): 200 empty polls in a row, 2 s.
            while seen.len() < total && idle < 200 {
                let page = hub.pull(&p, cursor, Some(7)).await.unwrap();
                if page.events.is_empty() {
                    idle += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                } else {
                    idle = 0;
                }
                for e in page.events {
                    cursor = e.hub_seq;
                    seen.push((e.hub_seq, e.event.id));
                }
            }
            seen
        }));
    }
    let mut pushed = HashSet::new();
    for p in pushers {
        pushed.extend(p.await.unwrap());
    }
    let mut seen = Vec::new();
    for p in pullers {
        seen.push(p.await.unwrap());
    }
    (seen, pushed)
}

/// Whether each puller saw every pushed event exactly once, in increasing hub order.
fn every_puller_saw_everything(
    seen: &[Vec<(u64, Uuid)>],
    pushed: &HashSet<Uuid>,
) -> Result<(), String> {
    for (i, s) in seen.iter().enumerate() {
        let ids: Vec<Uuid> = s.iter().map(|(_, id)| *id).collect();
        let unique: HashSet<Uuid> = ids.iter().copied().collect();
        if unique.len() != ids.len() {
            return Err(format!("puller {i} saw an event twice"));
        }
        if &unique != pushed {
            return Err(format!(
                "puller {i} missed {} of {} events",
                pushed.difference(&unique).count(),
                pushed.len()
            ));
        }
        if s.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err(format!("puller {i} saw events out of order"));
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn concurrent_pushers_and_pullers_see_every_event_once_in_order() {
    let (seen, pushed) = runtime().block_on(race(Planted::None));
    assert_eq!(pushed.len(), PUSHERS * BATCHES * PER_BATCH);
    every_puller_saw_everything(&seen, &pushed).unwrap();
}

#[test]
fn the_concurrency_check_catches_a_naive_sequence() {
    // Out-of-order commits are a race: give it a few tries to show.
    for attempt in 1..=5 {
        let (seen, pushed) = runtime().block_on(race(Planted::NaiveSequence));
        if let Err(e) = every_puller_saw_everything(&seen, &pushed) {
            println!("planted naive sequence caught on attempt {attempt}: {e}");
            return;
        }
    }
    panic!("the planted naive-sequence hub was not caught in 5 races");
}
