//! Judging a push as a batch. The backends read every head the batch needs in a few queries
//! (after the team row is locked), judge the events in order against those heads kept current
//! in memory, and write the results with one multi-row statement per table. Each event sees
//! exactly what a read of its own would have seen — the stored state plus the effects of the
//! batch's earlier events — and the rows end up as the per-event writes would have left them;
//! a push of 1,000 events costs a dozen statements instead of a few thousand.

use std::collections::{HashMap, HashSet};

use processops_sync::rules::{ConflictState, TaskHead};
use processops_sync::{Change, Event, Principal, PushResult};
use uuid::Uuid;

use super::{Effect, Head, Result, judge};
use crate::{HubError, Planted};

/// The keys a batch's judgements read.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    pub tasks: Vec<String>,
    pub conflicts: Vec<String>,
    pub channels: Vec<(String, String)>,
    /// The versions the batch publishes (whether the hub holds them).
    pub versions: Vec<String>,
    pub claims: Vec<String>,
    /// Every event id, to refuse one the hub holds already.
    pub ids: Vec<String>,
}

impl Wanted {
    pub(crate) fn of(events: &[Event]) -> Self {
        let mut w = Self::default();
        let (mut tasks, mut conflicts) = (HashSet::new(), HashSet::new());
        let (mut channels, mut versions, mut claims) =
            (HashSet::new(), HashSet::new(), HashSet::new());
        for e in events {
            w.ids.push(e.id.to_string());
            if let Some(task) = e.change.task()
                && tasks.insert(task)
            {
                w.tasks.push(task.to_string());
            }
            match &e.change {
                Change::ConflictResolved { conflict, .. } if conflicts.insert(*conflict) => {
                    w.conflicts.push(conflict.to_string());
                }
                Change::Published {
                    blueprint,
                    stage,
                    hash,
                    ..
                } => {
                    if channels.insert((blueprint, stage)) {
                        w.channels.push((blueprint.clone(), stage.clone()));
                    }
                    if versions.insert(hash) {
                        w.versions.push(hash.clone());
                    }
                }
                Change::Claimed { .. } => {
                    let entity = e.change.entity();
                    if claims.insert(entity.clone()) {
                        w.claims.push(entity);
                    }
                }
                _ => {}
            }
        }
        w
    }
}

/// The stored state the batch reads (only the rows that exist), then kept current as the
/// batch is judged.
#[derive(Debug, Default)]
pub(crate) struct BatchHeads {
    pub tasks: HashMap<Uuid, TaskHead>,
    pub conflicts: HashMap<Uuid, ConflictState>,
    pub channels: HashMap<(String, String), String>,
    pub versions: HashSet<String>,
    /// Claim entity → the device holding it.
    pub claims: HashMap<String, Uuid>,
    /// Of the batch's event ids, those the hub holds already.
    pub held: HashSet<String>,
}

impl BatchHeads {
    /// What `event` is judged against: what `read_head` read per event before batching.
    fn head(&self, event: &Event) -> (Head, Option<TaskHead>) {
        let task = |t: &Uuid| self.tasks.get(t).cloned();
        match &event.change {
            Change::TaskCreated { task: t, .. }
            | Change::TaskMoved { task: t, .. }
            | Change::Decided { task: t, .. } => (Head::Task(task(t)), None),
            Change::ConflictResolved {
                task: t, conflict, ..
            } => (
                Head::Conflict(self.conflicts.get(conflict).cloned()),
                task(t),
            ),
            Change::Published {
                blueprint,
                stage,
                hash,
                ..
            } => (
                Head::Channel {
                    current: self
                        .channels
                        .get(&(blueprint.clone(), stage.clone()))
                        .cloned(),
                    version_known: self.versions.contains(hash),
                },
                None,
            ),
            Change::Claimed { .. } => (
                Head::Claim(self.claims.get(&event.change.entity()).copied()),
                None,
            ),
            Change::Tagged { .. } | Change::VersionAdded { .. } => (Head::Free, None),
        }
    }

    /// Keep the heads current after `event` had `effect`.
    fn apply(&mut self, event: &Event, effect: &Effect) {
        match effect {
            Effect::Task(t) => {
                if let Some(task) = event.change.task() {
                    self.tasks.insert(task, t.clone());
                }
            }
            Effect::OpenConflict { task } => {
                self.conflicts.insert(
                    event.id,
                    ConflictState {
                        task: *task,
                        resolved_by: None,
                    },
                );
            }
            Effect::ResolveConflict { conflict } => {
                if let Some(c) = self.conflicts.get_mut(conflict) {
                    c.resolved_by = Some(event.id);
                }
            }
            Effect::Version => {
                if let Change::VersionAdded { hash, .. } = &event.change {
                    self.versions.insert(hash.clone());
                }
            }
            Effect::Channel {
                blueprint,
                stage,
                hash,
            } => {
                self.channels
                    .insert((blueprint.clone(), stage.clone()), hash.clone());
            }
            Effect::Claim { entity } => {
                self.claims.insert(entity.clone(), event.device);
            }
            Effect::None | Effect::Tag { .. } => {}
        }
    }
}

/// A batch's effects, merged into what the rows must end up as: a task or a channel keeps its
/// last head, a tag its largest counter, a version its first insert (later ones are ignored,
/// as `ON CONFLICT DO NOTHING` ignored them).
#[derive(Debug, Default)]
pub(crate) struct BatchWrites {
    /// (task, head), in first-touched order.
    pub tasks: Vec<(Uuid, TaskHead)>,
    task_index: HashMap<Uuid, usize>,
    /// (conflict event, task): opened by this batch.
    pub opened: Vec<(Uuid, Uuid)>,
    /// (conflict event, resolving event).
    pub resolved: Vec<(Uuid, Uuid)>,
    /// (entity, counter).
    pub tags: Vec<(String, u64)>,
    tag_index: HashMap<String, usize>,
    /// (hash, blueprint, canonical, source).
    pub versions: Vec<(String, String, String, String)>,
    /// ((blueprint, stage), hash).
    pub channels: Vec<((String, String), String)>,
    /// (entity, device).
    pub claims: Vec<(String, Uuid)>,
}

impl BatchWrites {
    fn add(&mut self, event: &Event, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Task(t) => {
                let Some(task) = event.change.task() else {
                    return;
                };
                match self.task_index.get(&task) {
                    Some(&i) => self.tasks[i].1 = t,
                    None => {
                        self.task_index.insert(task, self.tasks.len());
                        self.tasks.push((task, t));
                    }
                }
            }
            Effect::OpenConflict { task } => self.opened.push((event.id, task)),
            Effect::ResolveConflict { conflict } => {
                // A conflict is resolved once (`judge_resolution`); keep the last anyway, as
                // the per-event updates did.
                match self.resolved.iter_mut().find(|(c, _)| *c == conflict) {
                    Some(r) => r.1 = event.id,
                    None => self.resolved.push((conflict, event.id)),
                }
            }
            Effect::Tag { entity, counter } => match self.tag_index.get(&entity) {
                Some(&i) => self.tags[i].1 = self.tags[i].1.max(counter),
                None => {
                    self.tag_index.insert(entity.clone(), self.tags.len());
                    self.tags.push((entity, counter));
                }
            },
            Effect::Version => {
                if let Change::VersionAdded {
                    blueprint,
                    hash,
                    canonical,
                    source,
                } = &event.change
                    && !self.versions.iter().any(|v| v.0 == *hash)
                {
                    self.versions.push((
                        hash.clone(),
                        blueprint.clone(),
                        canonical.clone(),
                        source.clone(),
                    ));
                }
            }
            Effect::Channel {
                blueprint,
                stage,
                hash,
            } => {
                let key = (blueprint, stage);
                match self.channels.iter_mut().find(|(k, _)| *k == key) {
                    Some(c) => c.1 = hash,
                    None => self.channels.push((key, hash)),
                }
            }
            Effect::Claim { entity } => self.claims.push((entity, event.device)),
        }
    }
}

/// One row of the hub's `events` table.
#[derive(Debug)]
pub(crate) struct EventRow {
    pub hub_seq: u64,
    pub id: String,
    pub seq: u64,
    pub entity: String,
    pub verdict: String,
    pub body: String,
}

/// A judged batch: the answer, the event rows and the merged effects.
#[derive(Debug, Default)]
pub(crate) struct Judged {
    pub results: Vec<PushResult>,
    pub rows: Vec<EventRow>,
    pub writes: BatchWrites,
}

/// Judge `fresh` in order, numbering them `hub_seqs`. Errors come in the order the per-event
/// loop raised them: an event's refusal before its own duplicate id, both before anything
/// about later events.
pub(crate) fn judge_batch(
    planted: Planted,
    p: &Principal,
    fresh: &[Event],
    hub_seqs: &[u64],
    mut heads: BatchHeads,
) -> Result<Judged> {
    let mut judged = Judged {
        results: Vec::with_capacity(fresh.len()),
        rows: Vec::with_capacity(fresh.len()),
        writes: BatchWrites::default(),
    };
    let mut seen = HashSet::with_capacity(fresh.len());
    for (e, &hub_seq) in fresh.iter().zip(hub_seqs) {
        let (head, task) = heads.head(e);
        let (verdict, effect) = judge(planted, p, e, head, task.as_ref())?;
        let id = e.id.to_string();
        // The events table's unique index would refuse it; refuse it before writing anything.
        if heads.held.contains(&id) || !seen.insert(e.id) {
            return Err(HubError::Conflict(format!(
                "event {} is already held",
                e.id
            )));
        }
        heads.apply(e, &effect);
        judged.writes.add(e, effect);
        judged.rows.push(EventRow {
            hub_seq,
            id,
            seq: e.seq,
            entity: e.change.entity(),
            verdict: serde_json::to_string(&verdict)?,
            body: serde_json::to_string(e)?,
        });
        judged.results.push(PushResult {
            id: e.id,
            seq: e.seq,
            hub_seq,
            verdict,
        });
    }
    Ok(judged)
}

#[cfg(test)]
mod tests {
    use processops_core::feedback::{OutputRef, TagKey, TagOp};
    use processops_core::journal::{Action, Decision};
    use processops_sync::Role;

    use super::*;

    fn principal(device: Uuid) -> Principal {
        Principal {
            team: "t".into(),
            user: "u".into(),
            device,
            roles: vec![Role::Engine, Role::Approver, Role::Evaluator],
            scopes: vec!["*".into()],
        }
    }

    fn event(device: Uuid, seq: u64, change: Change) -> Event {
        Event {
            id: Uuid::now_v7(),
            device,
            seq,
            actor: "u".into(),
            at: 0,
            change,
        }
    }

    fn approve(device: Uuid, seq: u64, task: Uuid, base: Uuid) -> Event {
        let decision = Decision {
            action: Action::Approve,
            by: "u".into(),
            text: None,
            reason: None,
        };
        event(
            device,
            seq,
            Change::Decided {
                task,
                base,
                decision,
            },
        )
    }

    fn tag(device: Uuid, seq: u64, run: Uuid, counter: u64) -> Event {
        let key = TagKey {
            output: OutputRef {
                run,
                node: "draft".into(),
                visit: 1,
            },
            evaluator: "u".into(),
            tag: "tone".into(),
        };
        event(
            device,
            seq,
            Change::Tagged {
                op: TagOp { key, counter },
            },
        )
    }

    #[test]
    fn each_event_sees_the_effects_of_the_batch_before_it() {
        let device = Uuid::now_v7();
        let task = Uuid::now_v7();
        let created = event(
            device,
            1,
            Change::TaskCreated {
                task,
                run: Uuid::now_v7(),
                blueprint: "b".into(),
                role: "r".into(),
                body: serde_json::json!({}),
            },
        );
        let first = approve(device, 2, task, created.id);
        let late = approve(device, 3, task, created.id);
        let resolve = event(
            device,
            4,
            Change::ConflictResolved {
                task,
                conflict: late.id,
                note: None,
            },
        );
        let run = Uuid::now_v7();
        let batch = [
            created,
            first.clone(),
            late.clone(),
            resolve.clone(),
            tag(device, 5, run, 3),
            tag(device, 6, run, 1),
        ];
        let judged = judge_batch(
            Planted::None,
            &principal(device),
            &batch,
            &[11, 12, 13, 14, 15, 16],
            BatchHeads::default(),
        )
        .expect("judged");
        let verdicts: Vec<&str> = judged.results.iter().map(|r| r.verdict.label()).collect();
        assert_eq!(
            verdicts,
            [
                "accepted", "accepted", "conflict", "accepted", "accepted", "accepted"
            ]
        );
        let hub_seqs: Vec<u64> = judged.rows.iter().map(|r| r.hub_seq).collect();
        assert_eq!(hub_seqs, [11, 12, 13, 14, 15, 16]);
        // The rows the per-event writes would have left: the task's last head, the conflict
        // opened then resolved, the tag's largest counter.
        let w = &judged.writes;
        assert_eq!(w.tasks.len(), 1);
        assert_eq!(
            (w.tasks[0].1.head, w.tasks[0].1.decided_by),
            (first.id, Some(first.id))
        );
        assert_eq!(w.opened, [(late.id, task)]);
        assert_eq!(w.resolved, [(late.id, resolve.id)]);
        assert_eq!(w.tags.len(), 1);
        assert_eq!(w.tags[0].1, 3);
    }

    #[test]
    fn an_id_held_already_or_twice_in_the_batch_is_refused() {
        let device = Uuid::now_v7();
        let run = Uuid::now_v7();
        let first = tag(device, 1, run, 1);
        let again = Event {
            seq: 2,
            ..first.clone()
        };
        let twice = judge_batch(
            Planted::None,
            &principal(device),
            &[first.clone(), again],
            &[1, 2],
            BatchHeads::default(),
        );
        assert!(matches!(twice, Err(HubError::Conflict(_))), "{twice:?}");
        let heads = BatchHeads {
            held: HashSet::from([first.id.to_string()]),
            ..BatchHeads::default()
        };
        let held = judge_batch(Planted::None, &principal(device), &[first], &[1], heads);
        assert!(matches!(held, Err(HubError::Conflict(_))), "{held:?}");
    }
}
