//! The device side, without IO: how a pulled page moves the cursor, how a push answer moves
//! the acknowledged sequence, and the reducer that turns the hub's log into what a device
//! shows (task heads, open conflicts, tags, channels). The SQLite replica in `processops-store`
//! materialises the same thing; tests compare the two.

use std::collections::{BTreeMap, BTreeSet};

use processops_core::feedback::TagState;
use uuid::Uuid;

use crate::wire::{Change, HubEvent, PullResponse, Verdict, is_final};

/// Where a device is in the hub's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The hub's epoch the cursor belongs to (0: none seen yet).
    pub epoch: u64,
    /// The last hub sequence number applied.
    pub hub_seq: u64,
}

/// What to do with a pulled page.
#[derive(Debug, Clone, PartialEq)]
pub enum PageStep {
    /// Apply these events (re-deliveries already dropped) and save `cursor`, in one transaction.
    Apply {
        events: Vec<HubEvent>,
        cursor: Cursor,
    },
    /// The hub started a new epoch: forget the cursor and pull from the start (applying is
    /// idempotent, so nothing is applied twice).
    Rebootstrap { epoch: u64 },
}

/// The page is not a continuation of the log the device has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the hub sent events out of order ({0}); sync stopped so nothing is skipped")]
pub struct OutOfOrder(pub String);

/// Plan a pulled page against the cursor: drop re-delivered events, refuse a page whose order
/// is broken, move the cursor to the last event.
pub fn advance(cursor: Cursor, page: PullResponse) -> Result<PageStep, OutOfOrder> {
    if cursor.epoch != 0 && page.epoch != cursor.epoch {
        return Ok(PageStep::Rebootstrap { epoch: page.epoch });
    }
    let mut last = cursor.hub_seq;
    let mut events = Vec::with_capacity(page.events.len());
    for e in page.events {
        if e.hub_seq <= cursor.hub_seq {
            continue; // a re-delivery: applied already
        }
        if e.hub_seq <= last {
            return Err(OutOfOrder(format!("{} came after {last}", e.hub_seq)));
        }
        last = e.hub_seq;
        events.push(e);
    }
    Ok(PageStep::Apply {
        events,
        cursor: Cursor {
            epoch: page.epoch,
            hub_seq: last,
        },
    })
}

/// After a push: the device's acknowledged sequence number. `expected` is the hub's answer to
/// a gap (the next number it wants); a hub that holds fewer events than the device thought
/// (restored from a backup) moves the acknowledgement back so they are sent again.
pub fn acknowledged_after_gap(last_local: u64, expected: u64) -> Result<u64, String> {
    let held = expected.saturating_sub(1);
    if held > last_local {
        return Err(format!(
            "the hub holds {held} events from this device, but it has made only {last_local}; \
             this device's store was replaced: enrol it again"
        ));
    }
    Ok(held)
}

/// A task as a device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub head: Uuid,
    pub role: String,
    pub owner: Uuid,
    /// The accepted final decision.
    pub decision: Option<Uuid>,
}

/// A decision the hub could not accept, until someone resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictView {
    pub task: Uuid,
    pub actor: String,
    pub reason: String,
    pub resolved_by: Option<Uuid>,
}

/// The state a device derives from the hub's log: the reference model of the SQLite replica.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub tasks: BTreeMap<Uuid, TaskView>,
    pub conflicts: BTreeMap<Uuid, ConflictView>,
    pub tags: TagState,
    pub versions: BTreeSet<String>,
    pub channels: BTreeMap<(String, String), String>,
    /// Accepted final decisions on tasks owned by `owner`: what its engine must act on, once.
    pub effects: BTreeMap<Uuid, Uuid>,
    applied: BTreeSet<Uuid>,
}

impl View {
    /// Apply one judged event; applying the same event again changes nothing. `me` is the
    /// device applying it (its own tasks' accepted decisions become effects).
    pub fn apply(&mut self, me: Uuid, e: &HubEvent) -> bool {
        if !self.applied.insert(e.event.id) {
            return false;
        }
        let ev = &e.event;
        match (&ev.change, &e.verdict) {
            (Change::TaskCreated { task, role, .. }, Verdict::Accepted) => {
                self.tasks.insert(
                    *task,
                    TaskView {
                        head: ev.id,
                        role: role.clone(),
                        owner: ev.device,
                        decision: None,
                    },
                );
            }
            (Change::TaskMoved { task, role, .. }, Verdict::Accepted) => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.head = ev.id;
                    t.role = role.clone();
                }
            }
            (Change::Decided { task, decision, .. }, Verdict::Accepted) => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.head = ev.id;
                    if is_final(decision.action) {
                        t.decision = Some(ev.id);
                        if t.owner == me {
                            self.effects.insert(*task, ev.id);
                        }
                    }
                }
            }
            (Change::Decided { task, .. }, Verdict::Conflict { reason }) => {
                self.conflicts.insert(
                    ev.id,
                    ConflictView {
                        task: *task,
                        actor: ev.actor.clone(),
                        reason: reason.clone(),
                        resolved_by: None,
                    },
                );
            }
            (Change::ConflictResolved { conflict, .. }, Verdict::Accepted) => {
                if let Some(c) = self.conflicts.get_mut(conflict) {
                    c.resolved_by = Some(ev.id);
                }
            }
            (Change::Tagged { op }, Verdict::Accepted) => {
                self.tags.apply(op);
            }
            (Change::VersionAdded { hash, .. }, Verdict::Accepted) => {
                self.versions.insert(hash.clone());
            }
            (
                Change::Published {
                    blueprint,
                    stage,
                    hash,
                    ..
                },
                Verdict::Accepted,
            ) => {
                self.channels
                    .insert((blueprint.clone(), stage.clone()), hash.clone());
            }
            _ => {}
        }
        true
    }

    /// Conflicts nobody has resolved yet.
    pub fn open_conflicts(&self) -> impl Iterator<Item = (&Uuid, &ConflictView)> {
        self.conflicts
            .iter()
            .filter(|(_, c)| c.resolved_by.is_none())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::type_complexity)]
    use super::*;
    use crate::wire::Event;
    use processops_core::feedback::{OutputRef, TagKey, TagOp};

    fn ev(hub_seq: u64) -> HubEvent {
        HubEvent {
            hub_seq,
            verdict: Verdict::Accepted,
            event: Event {
                id: Uuid::from_u128(u128::from(hub_seq)),
                device: Uuid::from_u128(1),
                seq: hub_seq,
                actor: "ana".into(),
                at: 0,
                change: Change::Tagged {
                    op: TagOp {
                        key: TagKey {
                            output: OutputRef {
                                run: Uuid::from_u128(5),
                                node: "draft".into(),
                                visit: 1,
                            },
                            evaluator: "ana".into(),
                            tag: "tone".into(),
                        },
                        counter: hub_seq,
                    },
                },
            },
        }
    }

    fn page(epoch: u64, seqs: &[u64]) -> PullResponse {
        PullResponse {
            epoch,
            events: seqs.iter().map(|&s| ev(s)).collect(),
            more: false,
            head: seqs.last().copied().unwrap_or(0),
        }
    }

    #[test]
    fn cursor_advance_table() {
        let at = |epoch, hub_seq| Cursor { epoch, hub_seq };
        // (cursor, page epoch, page seqs) → (applied seqs, new cursor)
        let cases: Vec<(Cursor, u64, Vec<u64>, Vec<u64>, Cursor)> = vec![
            (at(0, 0), 1, vec![1, 2, 3], vec![1, 2, 3], at(1, 3)),
            (at(1, 3), 1, vec![2, 3, 4], vec![4], at(1, 4)),
            (at(1, 3), 1, vec![], vec![], at(1, 3)),
            (at(1, 3), 1, vec![1, 2], vec![], at(1, 3)),
            (at(1, 3), 1, vec![5, 9], vec![5, 9], at(1, 9)),
        ];
        for (cursor, epoch, seqs, applied, next) in cases {
            match advance(cursor, page(epoch, &seqs)).unwrap() {
                PageStep::Apply { events, cursor } => {
                    let got: Vec<u64> = events.iter().map(|e| e.hub_seq).collect();
                    assert_eq!(got, applied, "{seqs:?}");
                    assert_eq!(cursor, next, "{seqs:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            advance(at(1, 3), page(2, &[1])).unwrap(),
            PageStep::Rebootstrap { epoch: 2 }
        );
        assert!(advance(at(1, 0), page(1, &[2, 1])).is_err());
    }

    #[test]
    fn gap_answers_move_the_acknowledgement() {
        assert_eq!(acknowledged_after_gap(10, 4), Ok(3));
        assert_eq!(acknowledged_after_gap(10, 11), Ok(10));
        assert!(acknowledged_after_gap(10, 12).is_err());
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let mut once = View::default();
        let mut twice = View::default();
        let me = Uuid::from_u128(1);
        for s in 1..=3 {
            once.apply(me, &ev(s));
            twice.apply(me, &ev(s));
            assert!(!twice.apply(me, &ev(s)));
        }
        assert_eq!(once, twice);
    }
}
