//! The hub's rules, without IO: who may push what, and how an event is judged against the
//! current head of its entity. Both hub stores (SQLite and PostgreSQL) read the head, call
//! these, and write what they return, so the two backends cannot disagree.

use uuid::Uuid;

use crate::wire::{Change, Event, Principal, Role, Verdict, content_hash, is_final};

/// Why the hub refuses a push outright (nothing of it is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller lacks the role or scope: HTTP 403.
    Forbidden(String),
    /// The event is malformed: HTTP 422.
    Invalid(String),
}

/// Checks that need no state: the event's device and actor are the token's, the user has the
/// role the kind needs, and the content is well formed.
pub fn authorize(p: &Principal, event: &Event) -> Result<(), Refusal> {
    if event.device != p.device {
        return Err(Refusal::Forbidden(format!(
            "event {} names device {}, but this token belongs to device {}",
            event.id, event.device, p.device
        )));
    }
    if event.actor != p.user {
        return Err(Refusal::Forbidden(format!(
            "event {} names actor `{}`, but this token belongs to `{}`",
            event.id, event.actor, p.user
        )));
    }
    let needs = |role: Role| {
        if p.has(role) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "`{}` may not push {} events: that needs the {} role",
                p.user,
                event.change.kind(),
                role.as_str()
            )))
        }
    };
    match &event.change {
        Change::TaskCreated { role, .. } | Change::TaskMoved { role, .. } => {
            needs(Role::Engine)?;
            if role.trim().is_empty() {
                return Err(Refusal::Invalid("a task needs a role".into()));
            }
            Ok(())
        }
        // An engine decides its own tasks by policy (a breached SLA); `judge_task` checks
        // that it owns the task.
        Change::Decided { .. } if p.has(Role::Engine) => Ok(()),
        Change::Decided { .. } | Change::ConflictResolved { .. } => needs(Role::Approver),
        Change::Tagged { op } => {
            needs(Role::Evaluator)?;
            if op.key.evaluator != p.user {
                return Err(Refusal::Forbidden(format!(
                    "`{}` may not change `{}`'s tags: each evaluator owns their own",
                    p.user, op.key.evaluator
                )));
            }
            if op.counter == 0 {
                return Err(Refusal::Invalid("a tag counter starts at 1".into()));
            }
            Ok(())
        }
        Change::VersionAdded {
            hash, canonical, ..
        } => {
            if !(p.has(Role::Publisher) || p.has(Role::Engine)) {
                return needs(Role::Publisher);
            }
            if content_hash(canonical) != *hash {
                return Err(Refusal::Invalid(format!(
                    "version {hash} does not match its content (SHA-256 {})",
                    content_hash(canonical)
                )));
            }
            Ok(())
        }
        Change::Claimed { key, .. } => {
            needs(Role::Engine)?;
            if key.trim().is_empty() {
                return Err(Refusal::Invalid("a claim needs a key".into()));
            }
            Ok(())
        }
        Change::Published { stage, .. } => {
            needs(Role::Publisher)?;
            if stage.trim().is_empty() {
                return Err(Refusal::Invalid("a channel needs a stage".into()));
            }
            Ok(())
        }
    }
}

/// A task as the hub knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskHead {
    /// The id of the latest accepted event on the task.
    pub head: Uuid,
    pub role: String,
    /// The device whose engine owns the run (the only one that may publish or move it).
    pub owner: Uuid,
    /// The accepted final decision, once there is one.
    pub decided_by: Option<Uuid>,
}

/// The judgement of a task event, and the head to store afterwards (`None`: unchanged).
pub fn judge_task(
    current: Option<&TaskHead>,
    p: &Principal,
    event: &Event,
) -> Result<(Verdict, Option<TaskHead>), Refusal> {
    match (&event.change, current) {
        (Change::TaskCreated { role, .. }, None) => Ok((
            Verdict::Accepted,
            Some(TaskHead {
                head: event.id,
                role: role.clone(),
                owner: event.device,
                decided_by: None,
            }),
        )),
        (Change::TaskCreated { .. }, Some(_)) => Ok((
            Verdict::conflict("another event already created this task"),
            None,
        )),
        (Change::TaskMoved { .. }, None) => Ok((Verdict::ignored("no such task"), None)),
        (Change::TaskMoved { base, role, .. }, Some(t)) => {
            if t.owner != event.device {
                return Err(Refusal::Forbidden(
                    "only the engine that owns a task's run may move it".into(),
                ));
            }
            if t.decided_by.is_some() {
                return Ok((Verdict::ignored("the task was decided already"), None));
            }
            if *base != t.head {
                return Ok((Verdict::ignored("the task changed since"), None));
            }
            Ok((
                Verdict::Accepted,
                Some(TaskHead {
                    head: event.id,
                    role: role.clone(),
                    ..t.clone()
                }),
            ))
        }
        (Change::Decided { .. }, None) => Ok((
            Verdict::conflict("the hub does not know this task (yet)"),
            None,
        )),
        (Change::Decided { base, decision, .. }, Some(t)) => {
            let by_owning_engine = p.has(Role::Engine) && t.owner == event.device;
            let approver_in_scope = p.has(Role::Approver) && p.in_scope(&t.role);
            if !(by_owning_engine || approver_in_scope) {
                return Err(Refusal::Forbidden(format!(
                    "`{}` may not decide tasks for role `{}`",
                    p.user, t.role
                )));
            }
            if t.decided_by.is_some() {
                return Ok((
                    Verdict::conflict("the task was decided by someone else first"),
                    None,
                ));
            }
            if *base != t.head {
                return Ok((
                    Verdict::conflict("the task changed after you opened it"),
                    None,
                ));
            }
            let decided_by = is_final(decision.action).then_some(event.id);
            Ok((
                Verdict::Accepted,
                Some(TaskHead {
                    head: event.id,
                    decided_by,
                    ..t.clone()
                }),
            ))
        }
        (Change::ConflictResolved { .. }, None) => Ok((Verdict::ignored("no such task"), None)),
        (Change::ConflictResolved { .. }, Some(t)) => {
            if !p.in_scope(&t.role) {
                return Err(Refusal::Forbidden(format!(
                    "`{}` may not resolve conflicts on tasks for role `{}`",
                    p.user, t.role
                )));
            }
            // Whether the conflict is still open is judged by `judge_resolution`.
            Ok((Verdict::Accepted, None))
        }
        _ => Err(Refusal::Invalid(format!(
            "{} is not a task event",
            event.change.kind()
        ))),
    }
}

/// A conflict as the hub knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictState {
    pub task: Uuid,
    pub resolved_by: Option<Uuid>,
}

/// Resolving a conflict: accepted once; a second resolution changes nothing.
pub fn judge_resolution(conflict: Option<&ConflictState>, task: Uuid) -> Verdict {
    match conflict {
        Some(c) if c.task != task => Verdict::ignored("that conflict is on another task"),
        Some(ConflictState {
            resolved_by: None, ..
        }) => Verdict::Accepted,
        Some(_) => Verdict::ignored("the conflict was resolved already"),
        None => Verdict::ignored("no such conflict"),
    }
}

/// Publishing moves a channel by compare-and-set: only from the head the publisher saw, and
/// only to a version the hub holds.
pub fn judge_publish(current: Option<&str>, base: Option<&str>, version_known: bool) -> Verdict {
    if !version_known {
        return Verdict::conflict("the hub does not hold that version; push it first");
    }
    if current == base {
        Verdict::Accepted
    } else {
        Verdict::conflict(format!(
            "the channel moved to {} after you looked",
            current.unwrap_or("nothing")
        ))
    }
}

/// Claiming a trigger occurrence: the first engine to claim a key holds it for good.
pub fn judge_claim(holder: Option<Uuid>, device: Uuid) -> Verdict {
    match holder {
        None => Verdict::Accepted,
        Some(d) if d == device => Verdict::Accepted,
        Some(d) => Verdict::conflict(format!("engine {d} claimed it first")),
    }
}

/// How a batch lines up with what the hub already holds from the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchPlan {
    /// Store `events[skip..]`; the first `skip` are re-sends the hub holds already.
    Store { skip: usize },
    /// The batch starts after a gap: the hub expects `expected` next.
    Gap { expected: u64 },
    /// The batch's own numbering is broken.
    Invalid(String),
}

/// Plan a push: `last` is the device's highest sequence number on the hub. Re-sent events are
/// skipped (idempotent push); a gap is refused with the expected number.
pub fn plan_batch(last: u64, seqs: &[u64]) -> BatchPlan {
    for pair in seqs.windows(2) {
        if pair[1] != pair[0] + 1 {
            return BatchPlan::Invalid(format!(
                "event sequence numbers must be contiguous within a push: {} is followed by {}",
                pair[0], pair[1]
            ));
        }
    }
    match seqs.first() {
        None => BatchPlan::Store { skip: 0 },
        Some(0) => BatchPlan::Invalid("event sequence numbers start at 1".into()),
        Some(&first) if first > last + 1 => BatchPlan::Gap { expected: last + 1 },
        Some(&first) => {
            let held = usize::try_from(last + 1 - first).unwrap_or(usize::MAX);
            BatchPlan::Store {
                skip: held.min(seqs.len()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::type_complexity)]
    use super::*;
    use processops_core::journal::{Action, Decision};
    use serde_json::json;

    fn approver() -> Principal {
        Principal {
            team: "t".into(),
            user: "ana".into(),
            device: Uuid::from_u128(1),
            roles: vec![Role::Approver],
            scopes: vec!["manager".into()],
        }
    }

    fn decided(base: u128, action: Action) -> Event {
        Event {
            id: Uuid::from_u128(100),
            device: Uuid::from_u128(1),
            seq: 1,
            actor: "ana".into(),
            at: 0,
            change: Change::Decided {
                task: Uuid::from_u128(9),
                base: Uuid::from_u128(base),
                decision: Decision {
                    action,
                    by: "ana".into(),
                    text: None,
                    reason: None,
                },
            },
        }
    }

    fn head(decided: bool) -> TaskHead {
        TaskHead {
            head: Uuid::from_u128(50),
            role: "manager".into(),
            owner: Uuid::from_u128(7),
            decided_by: decided.then(|| Uuid::from_u128(60)),
        }
    }

    #[test]
    fn conflict_detection_table() {
        let p = approver();
        // (current head, decision base, action) → verdict label, decided_by after
        let cases: Vec<(Option<TaskHead>, u128, Action, &str, Option<u128>)> = vec![
            (
                Some(head(false)),
                50,
                Action::Approve,
                "accepted",
                Some(100),
            ),
            (Some(head(false)), 50, Action::Escalate, "accepted", None),
            (Some(head(false)), 49, Action::Approve, "conflict", None),
            (Some(head(true)), 50, Action::Reject, "conflict", None),
            (None, 50, Action::Approve, "conflict", None),
        ];
        for (current, base, action, label, decided_by) in cases {
            let (verdict, next) = judge_task(current.as_ref(), &p, &decided(base, action)).unwrap();
            assert_eq!(verdict.label(), label, "{current:?} base {base} {action:?}");
            if verdict.is_accepted() {
                let next = next.unwrap();
                assert_eq!(next.head, Uuid::from_u128(100));
                assert_eq!(next.decided_by, decided_by.map(Uuid::from_u128));
            } else {
                assert!(next.is_none());
            }
        }
    }

    #[test]
    fn a_decision_outside_the_scope_is_refused() {
        let mut p = approver();
        p.scopes = vec!["legal".into()];
        let refusal = judge_task(Some(&head(false)), &p, &decided(50, Action::Approve));
        assert!(matches!(refusal, Err(Refusal::Forbidden(_))));
        p.scopes = vec!["*".into()];
        assert!(judge_task(Some(&head(false)), &p, &decided(50, Action::Approve)).is_ok());
    }

    #[test]
    fn an_engine_decides_only_the_tasks_it_owns() {
        let engine = Principal {
            roles: vec![Role::Engine],
            scopes: vec![],
            ..approver()
        };
        // (owner of the task, allowed): the event comes from device 1.
        for (owner, allowed) in [(1, true), (7, false)] {
            let current = TaskHead {
                owner: Uuid::from_u128(owner),
                ..head(false)
            };
            let event = decided(50, Action::Approve);
            assert!(authorize(&engine, &event).is_ok());
            let verdict = judge_task(Some(&current), &engine, &event);
            assert_eq!(verdict.is_ok(), allowed, "owner {owner}: {verdict:?}");
        }
        // An approver without the engine role never gets the owner's exemption.
        let outsider = Principal {
            scopes: vec!["legal".into()],
            ..approver()
        };
        let current = TaskHead {
            owner: Uuid::from_u128(1),
            ..head(false)
        };
        assert!(judge_task(Some(&current), &outsider, &decided(50, Action::Approve)).is_err());
    }

    #[test]
    fn authorization_table() {
        let p = approver();
        let mut forged_device = decided(50, Action::Approve);
        forged_device.device = Uuid::from_u128(2);
        let mut forged_actor = decided(50, Action::Approve);
        forged_actor.actor = "bob".into();
        let task = Event {
            change: Change::TaskCreated {
                task: Uuid::from_u128(9),
                run: Uuid::from_u128(8),
                blueprint: "b".into(),
                role: "manager".into(),
                body: json!({}),
            },
            ..decided(0, Action::Approve)
        };
        let cases = [
            (decided(50, Action::Approve), true),
            (forged_device, false),
            (forged_actor, false),
            (task, false),
        ];
        for (event, ok) in cases {
            assert_eq!(authorize(&p, &event).is_ok(), ok, "{event:?}");
        }
    }

    #[test]
    fn claims_table() {
        let (me, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        // (holder before, claimant) → accepted?
        for (holder, claimant, accepted) in [
            (None, me, true),
            (Some(me), me, true),
            (Some(other), me, false),
            (Some(me), other, false),
        ] {
            let verdict = judge_claim(holder, claimant);
            assert_eq!(verdict.is_accepted(), accepted, "{holder:?} {claimant}");
        }
        // Only engines claim, and a claim names a key.
        let claim = |key: &str| Event {
            change: Change::Claimed {
                blueprint: "b".into(),
                key: key.into(),
            },
            ..decided(0, Action::Approve)
        };
        assert!(matches!(
            authorize(&approver(), &claim("k")),
            Err(Refusal::Forbidden(_))
        ));
        let engine = Principal {
            roles: vec![Role::Engine],
            ..approver()
        };
        assert!(authorize(&engine, &claim("k")).is_ok());
        assert!(matches!(
            authorize(&engine, &claim(" ")),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn publishing_is_compare_and_set() {
        assert!(judge_publish(None, None, true).is_accepted());
        assert!(judge_publish(Some("a"), Some("a"), true).is_accepted());
        assert_eq!(
            judge_publish(Some("b"), Some("a"), true).label(),
            "conflict"
        );
        assert_eq!(judge_publish(None, None, false).label(), "conflict");
    }

    #[test]
    fn resolution_is_accepted_once() {
        let t = Uuid::from_u128(9);
        let open = ConflictState {
            task: t,
            resolved_by: None,
        };
        let closed = ConflictState {
            task: t,
            resolved_by: Some(Uuid::from_u128(1)),
        };
        assert!(judge_resolution(Some(&open), t).is_accepted());
        assert_eq!(judge_resolution(Some(&closed), t).label(), "ignored");
        assert_eq!(judge_resolution(None, t).label(), "ignored");
        assert_eq!(
            judge_resolution(Some(&open), Uuid::from_u128(3)).label(),
            "ignored"
        );
    }

    #[test]
    fn push_planning_table() {
        let cases: Vec<(u64, Vec<u64>, BatchPlan)> = vec![
            (0, vec![1, 2, 3], BatchPlan::Store { skip: 0 }),
            (2, vec![1, 2, 3], BatchPlan::Store { skip: 2 }),
            (5, vec![1, 2, 3], BatchPlan::Store { skip: 3 }),
            (3, vec![4], BatchPlan::Store { skip: 0 }),
            (3, vec![5, 6], BatchPlan::Gap { expected: 4 }),
            (0, vec![], BatchPlan::Store { skip: 0 }),
        ];
        for (last, seqs, plan) in cases {
            assert_eq!(plan_batch(last, &seqs), plan, "last {last} seqs {seqs:?}");
        }
        assert!(matches!(plan_batch(0, &[1, 3]), BatchPlan::Invalid(_)));
        assert!(matches!(plan_batch(0, &[0, 1]), BatchPlan::Invalid(_)));
    }
}
