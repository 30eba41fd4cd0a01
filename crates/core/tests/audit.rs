//! The audit chain: sealing, the byte layout, and every kind of tampering `verify` must name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use processops_core::audit::{
    AuditEntry, BreakKind, Chain, EntryRef, GENESIS, Head, Record, Verdict, encode, hash_of,
    json_text, verify,
};
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn record(n: u64) -> Record {
    Record {
        id: format!("00000000-0000-7000-8000-{n:012x}"),
        at: 1_700_000_000_000 + i64::try_from(n).unwrap() * 1000,
        device: "local".into(),
        actor: format!("user-{}", n % 3),
        action: if n.is_multiple_of(2) {
            "task.decided"
        } else {
            "tag.added"
        }
        .into(),
        subject: format!("task-{n}"),
        before: (!n.is_multiple_of(3)).then(|| json!({ "status": "pending" })),
        after: Some(json!({ "status": "decided", "action": "approve", "n": n })),
    }
}

fn chain(n: u64) -> (Vec<AuditEntry>, Head) {
    let mut c = Chain::new();
    let entries = (1..=n).map(|i| c.append(record(i))).collect();
    (entries, c.head().clone())
}

fn broken(v: &Verdict) -> (u64, BreakKind) {
    match v {
        Verdict::Broken { seq, kind, .. } => (*seq, *kind),
        Verdict::Ok { .. } => panic!("expected a broken chain, got {v:?}"),
    }
}

/// Swap two rows' content but keep their seq, as an UPDATE of the table would.
fn swap_content(entries: &mut [AuditEntry], a: usize, b: usize) {
    let (sa, sb) = (entries[a].seq, entries[b].seq);
    entries.swap(a, b);
    entries[a].seq = sa;
    entries[b].seq = sb;
}

/// Edit an entry and recompute its own hash, as someone who knows the layout would.
fn reseal(e: &mut AuditEntry) {
    e.hash = e.computed_hash();
}

#[test]
fn the_layout_is_the_documented_one() {
    let e = EntryRef {
        seq: 1,
        id: "id",
        at: -2,
        device: "local",
        actor: "ann",
        action: "task.decided",
        subject: "t",
        before: None,
        after: Some("{}"),
        prev_hash: GENESIS,
        hash: "",
    };
    let mut bytes = Vec::new();
    encode(&e, &mut bytes);
    let mut expected = Vec::new();
    let str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    str(&mut expected, "processops.audit.v1");
    str(&mut expected, GENESIS);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    str(&mut expected, "id");
    expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    for s in ["local", "ann", "task.decided", "t"] {
        str(&mut expected, s);
    }
    expected.push(0);
    expected.push(1);
    str(&mut expected, "{}");
    assert_eq!(bytes, expected);
    assert_eq!(hash_of(&e), hex::encode(Sha256::digest(&expected)));
}

#[test]
fn canonical_json_sorts_keys_and_drops_whitespace_and_null() {
    let cases = [
        (
            Some(json!({"b": 1, "a": {"d": [1, 2.5, "x\"y"], "c": null}})),
            Some(r#"{"a":{"c":null,"d":[1,2.5,"x\"y"]},"b":1}"#),
        ),
        (Some(json!(null)), None),
        (None, None),
        (Some(json!("é")), Some("\"é\"")),
        (Some(json!([])), Some("[]")),
    ];
    for (value, text) in cases {
        assert_eq!(json_text(value.as_ref()).as_deref(), text, "{value:?}");
    }
}

#[test]
fn sealing_chains_entries_from_the_genesis_hash() {
    let (entries, head) = chain(3);
    assert_eq!(entries[0].prev_hash, GENESIS);
    assert_eq!(entries[0].seq, 1);
    for w in entries.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    assert!(entries.iter().all(|e| e.computed_hash() == e.hash));
    assert_eq!(
        head,
        Head {
            count: 3,
            hash: entries[2].hash.clone()
        }
    );
    // `null` before/after is stored as absent, so an export re-verifies.
    let mut r = record(1);
    r.before = Some(json!(null));
    assert_eq!(r.seal(1, GENESIS).before, None);
    // Resuming continues the same chain.
    let mut resumed = Chain::resume(Head {
        count: 2,
        hash: entries[1].hash.clone(),
    });
    assert_eq!(resumed.append(record(3)), entries[2]);
}

#[test]
fn intact_chains_verify() {
    assert_eq!(
        verify(Vec::new(), None),
        Verdict::Ok {
            count: 0,
            head_hash: GENESIS.into()
        }
    );
    assert_eq!(
        verify(Vec::new(), Some(&Head::default())),
        Verdict::Ok {
            count: 0,
            head_hash: GENESIS.into()
        }
    );
    let (entries, head) = chain(5);
    assert_eq!(
        verify(entries.clone(), Some(&head)),
        Verdict::Ok {
            count: 5,
            head_hash: head.hash.clone()
        }
    );
    assert!(verify(entries, None).is_ok());
}

type Tamper = fn(&mut Vec<AuditEntry>, &mut Head);

#[test]
fn every_tampering_names_the_first_broken_entry() {
    let cases: &[(&str, Tamper, u64, BreakKind)] = &[
        (
            "edit after",
            |e, _| e[2].after = Some(json!({"status": "rejected"})),
            3,
            BreakKind::Edited,
        ),
        (
            "edit before",
            |e, _| e[1].before = None,
            2,
            BreakKind::Edited,
        ),
        (
            "edit actor",
            |e, _| e[0].actor = "mallory".into(),
            1,
            BreakKind::Edited,
        ),
        ("edit time", |e, _| e[4].at += 1, 5, BreakKind::Edited),
        (
            "edit device",
            |e, _| e[3].device = "other".into(),
            4,
            BreakKind::Edited,
        ),
        ("edit id", |e, _| e[3].id = "x".into(), 4, BreakKind::Edited),
        (
            "edit action",
            |e, _| e[3].action = "task.escalated".into(),
            4,
            BreakKind::Edited,
        ),
        (
            "edit subject",
            |e, _| e[3].subject = "other".into(),
            4,
            BreakKind::Edited,
        ),
        (
            "edit hash",
            |e, _| e[1].hash = GENESIS.into(),
            2,
            BreakKind::Edited,
        ),
        (
            "edit prev_hash",
            |e, _| e[2].prev_hash = GENESIS.into(),
            3,
            BreakKind::Edited,
        ),
        (
            "edit and re-seal",
            |e, _| {
                e[2].actor = "mallory".into();
                reseal(&mut e[2]);
            },
            3,
            BreakKind::Edited,
        ),
        (
            "edit and re-seal the first",
            |e, _| {
                e[0].actor = "mallory".into();
                reseal(&mut e[0]);
            },
            1,
            BreakKind::Edited,
        ),
        (
            "edit and re-seal the last",
            |e, _| {
                e[5].actor = "mallory".into();
                reseal(&mut e[5]);
            },
            6,
            BreakKind::HeadMismatch,
        ),
        (
            "delete the first",
            |e, _| {
                e.remove(0);
            },
            1,
            BreakKind::Missing,
        ),
        (
            "delete one",
            |e, _| {
                e.remove(3);
            },
            4,
            BreakKind::Missing,
        ),
        (
            "delete two in a row",
            |e, _| {
                e.drain(1..3);
            },
            2,
            BreakKind::Missing,
        ),
        (
            "delete the one before last",
            |e, _| {
                e.remove(4);
            },
            5,
            BreakKind::Missing,
        ),
        (
            "swap two rows' content",
            |e, _| swap_content(e, 2, 3),
            3,
            BreakKind::OutOfOrder,
        ),
        (
            "swap distant rows' content",
            |e, _| swap_content(e, 1, 4),
            2,
            BreakKind::OutOfOrder,
        ),
        (
            "swap the first two",
            |e, _| swap_content(e, 0, 1),
            1,
            BreakKind::OutOfOrder,
        ),
        (
            "swap two rows in the stream",
            |e, _| e.swap(2, 3),
            4,
            BreakKind::OutOfOrder,
        ),
        (
            "duplicate a row",
            |e, _| {
                let d = e[2].clone();
                e.insert(3, d);
            },
            3,
            BreakKind::OutOfOrder,
        ),
        (
            "truncate the tail",
            |e, _| e.truncate(4),
            5,
            BreakKind::Truncated,
        ),
        (
            "truncate the last",
            |e, _| {
                e.pop();
            },
            6,
            BreakKind::Truncated,
        ),
        (
            "truncate everything",
            |e, _| e.clear(),
            1,
            BreakKind::Truncated,
        ),
        (
            "append past the head",
            |e, h| {
                let mut c = Chain::resume(h.clone());
                e.push(c.append(record(99)));
            },
            7,
            BreakKind::HeadMismatch,
        ),
        (
            "head hash changed",
            |_, h| h.hash = GENESIS.into(),
            6,
            BreakKind::HeadMismatch,
        ),
    ];
    for (name, tamper, seq, kind) in cases {
        let (mut entries, mut head) = chain(6);
        tamper(&mut entries, &mut head);
        let verdict = verify(entries, Some(&head));
        assert_eq!(broken(&verdict), (*seq, *kind), "{name}: {verdict:?}");
        let Verdict::Broken { message, .. } = verdict else {
            unreachable!()
        };
        assert!(message.contains("entr"), "{name}: {message}");
    }
}

#[test]
fn messages_are_sentences_a_person_can_act_on() {
    let (mut entries, head) = chain(6);
    entries.remove(3);
    let Verdict::Broken { message, .. } = verify(entries, Some(&head)) else {
        panic!()
    };
    assert_eq!(
        message,
        "entry 4 is missing: the chain jumps from entry 3 to entry 5"
    );
    let (mut entries, _) = chain(6);
    entries.truncate(3);
    let Verdict::Broken { message, .. } = verify(entries, Some(&head)) else {
        panic!()
    };
    assert_eq!(
        message,
        "the chain ends at entry 3 but its head records 6 entries: entries 4 to 6 were removed"
    );
}

#[test]
fn without_a_head_a_truncated_chain_still_verifies() {
    // Why the store keeps the head: the remaining prefix is a valid chain on its own.
    let (mut entries, _) = chain(5);
    entries.truncate(3);
    assert!(verify(entries, None).is_ok());
}

#[test]
fn entries_round_trip_through_json_lines() {
    let (entries, head) = chain(4);
    let lines: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let back: Vec<AuditEntry> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, entries);
    assert!(verify(back, Some(&head)).is_ok());
}

#[derive(Debug, Clone)]
enum Tampering {
    Edit { at: usize, field: usize },
    Reseal { at: usize },
    Delete { at: usize },
    Swap { a: usize, b: usize },
    Truncate { keep: usize },
}

fn tampering(n: usize) -> impl Strategy<Value = Tampering> {
    prop_oneof![
        (0..n, 0..10usize).prop_map(|(at, field)| Tampering::Edit { at, field }),
        (0..n).prop_map(|at| Tampering::Reseal { at }),
        (0..n).prop_map(|at| Tampering::Delete { at }),
        (0..n, 0..n)
            .prop_filter("two rows", |(a, b)| a != b)
            .prop_map(|(a, b)| Tampering::Swap {
                a: a.min(b),
                b: a.max(b)
            }),
        (0..n).prop_map(|keep| Tampering::Truncate { keep }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any single tampering of any chain is detected, at the entry it touched.
    #[test]
    fn any_single_tampering_is_detected(
        (n, t) in (2..40usize).prop_flat_map(|n| (Just(n), tampering(n)))
    ) {
        let (mut entries, head) = chain(n as u64);
        let expected = match t {
            Tampering::Edit { at, field } => {
                let e = &mut entries[at];
                match field {
                    0 => e.actor.push('x'),
                    1 => e.action.push('x'),
                    2 => e.subject.push('x'),
                    3 => e.device.push('x'),
                    4 => e.id.push('x'),
                    5 => e.at = e.at.wrapping_add(1),
                    6 => e.after = Some(json!({"tampered": true})),
                    7 => e.before = Some(json!({"tampered": true})),
                    8 => e.hash = GENESIS.into(),
                    _ => e.prev_hash = GENESIS.replace('0', "1"),
                }
                (at as u64 + 1, BreakKind::Edited)
            }
            Tampering::Reseal { at } => {
                entries[at].actor.push('x');
                reseal(&mut entries[at]);
                let kind = if at + 1 == n { BreakKind::HeadMismatch } else { BreakKind::Edited };
                (at as u64 + 1, kind)
            }
            Tampering::Delete { at } => {
                entries.remove(at);
                let kind = if at + 1 == n { BreakKind::Truncated } else { BreakKind::Missing };
                (at as u64 + 1, kind)
            }
            Tampering::Swap { a, b } => {
                swap_content(&mut entries, a, b);
                (a as u64 + 1, BreakKind::OutOfOrder)
            }
            Tampering::Truncate { keep } => {
                entries.truncate(keep);
                (keep as u64 + 1, BreakKind::Truncated)
            }
        };
        let verdict = verify(entries, Some(&head));
        let (seq, kind) = broken(&verdict);
        prop_assert_eq!((seq, kind), expected, "{:?}", verdict);
    }
}
