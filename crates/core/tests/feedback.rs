//! Feedback tags: the order-free merge (tables and a convergence property), the taxonomy,
//! inter-annotator agreement against textbook examples, and the export records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use pretty_assertions::assert_eq;
use processops_core::feedback::{
    DEFAULT_TAGS, FeedbackSummary, Intent, Kappa, Note, OutputKind, OutputRef, OutputSpec,
    Provenance, StepRecord, TagKey, TagOp, TagState, Taxonomy, chat_record, check_rating,
    cohen_kappa, evalset_record, fleiss_kappa, is_present, is_tag_name, merge, next_counter,
    pair_drafts, sample_rank, tag_agreement,
};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

fn output(n: u8, node: &str) -> OutputRef {
    OutputRef {
        run: Uuid::from_u128(u128::from(n)),
        node: node.into(),
        visit: 1,
    }
}

fn key(o: u8, evaluator: &str, tag: &str) -> TagKey {
    TagKey {
        output: output(o, "draft"),
        evaluator: evaluator.into(),
        tag: tag.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Outputs

#[test]
fn output_specs_parse_or_say_how_to_write_them() {
    let ok = [
        ("3f9c2a1b:draft", ("3f9c2a1b", "draft", None)),
        ("3f9c2a1b:review:2", ("3f9c2a1b", "review", Some(2))),
        (" abc:n:1 ", ("abc", "n", Some(1))),
    ];
    for (text, (run, node, visit)) in ok {
        assert_eq!(
            OutputSpec::parse(text).unwrap(),
            OutputSpec {
                run: run.into(),
                node: node.into(),
                visit
            },
            "{text}"
        );
    }
    let bad = [
        ("3f9c2a1b", "it names no node"),
        ("3f9c2a1b:", "the node id is missing"),
        (":draft", "the run id is missing"),
        ("a:b:c:d", "too many `:`"),
        ("a:b:0", "the visit `0` is not a number from 1"),
        ("a:b:x", "the visit `x` is not a number from 1"),
    ];
    for (text, message) in bad {
        let err = OutputSpec::parse(text).unwrap_err();
        assert!(err.contains(message), "{text}: {err}");
        assert!(err.contains("<run>:<node>[:<visit>]"), "{text}: {err}");
    }
    let o = OutputRef {
        run: Uuid::nil(),
        node: "draft".into(),
        visit: 3,
    };
    assert_eq!(
        o.to_string(),
        "00000000-0000-0000-0000-000000000000:draft:3"
    );
}

#[test]
fn steps_are_classified_by_node_kind_then_by_recorded_shape() {
    let prompt = json!({ "text": "hi", "agent": "w", "tokens": {}, "json": null, "model": "m" });
    let approved = json!({ "decision": "approved", "text": "ok", "draft": "d", "task": "t" });
    let rejected = json!({ "decision": "rejected", "text": "d", "draft": "d", "task": "t" });
    let other = json!({ "rule": "default" });
    let table = [
        (Some("prompt"), &prompt, Some(OutputKind::Prompt)),
        (Some("review"), &approved, Some(OutputKind::Review)),
        (Some("review"), &rejected, None),
        (Some("transform"), &prompt, None),
        (Some("route"), &other, None),
        (None, &prompt, Some(OutputKind::Prompt)),
        (None, &approved, Some(OutputKind::Review)),
        (None, &rejected, None),
        (None, &other, None),
    ];
    for (kind, value, expected) in table {
        assert_eq!(
            OutputKind::of_step(kind, value),
            expected,
            "{kind:?} {value}"
        );
    }
}

#[test]
fn sampling_is_stable_and_depends_on_the_seed() {
    let outputs: Vec<OutputRef> = (0..50).map(|i| output(i, "draft")).collect();
    let order = |seed| {
        let mut o = outputs.clone();
        o.sort_by_key(|x| sample_rank(seed, x));
        o
    };
    assert_eq!(order(7), order(7));
    assert_ne!(order(7), order(8));
    assert_ne!(order(7), outputs);
}

// ---------------------------------------------------------------------------------------------
// Tags

#[test]
fn counters_toggle_only_on_effective_changes() {
    let table = [
        (0, Intent::Add, Some(1)),
        (0, Intent::Remove, None),
        (1, Intent::Add, None),
        (1, Intent::Remove, Some(2)),
        (2, Intent::Add, Some(3)),
        (2, Intent::Remove, None),
        (u64::MAX - 1, Intent::Add, Some(u64::MAX)),
    ];
    for (counter, intent, next) in table {
        assert_eq!(next_counter(counter, intent), next, "{counter} {intent:?}");
    }
    assert!(!is_present(0));
    assert!(is_present(1));
    assert!(!is_present(2));
}

#[test]
fn merge_takes_the_larger_counter_per_key() {
    let k = key(1, "ann", "tone");
    let other = key(1, "bob", "tone");
    let mut a = TagState::new();
    let add = a.change(k.clone(), Intent::Add).unwrap();
    assert_eq!(add.counter, 1);
    assert_eq!(
        a.change(k.clone(), Intent::Add),
        None,
        "adding twice changes nothing"
    );
    let remove = a.change(k.clone(), Intent::Remove).unwrap();
    assert_eq!(remove.counter, 2);

    // A replica that saw only the add, and another evaluator's tag.
    let mut b = TagState::new();
    assert!(b.apply(&add));
    assert!(!b.apply(&add), "applying an op twice is a no-op");
    b.change(other.clone(), Intent::Add);

    let m = merge(&a, &b);
    assert_eq!(m, merge(&b, &a));
    assert_eq!(m.counter(&k), 2);
    assert!(
        !m.is_present(&k),
        "the later remove wins over the earlier add"
    );
    assert!(m.is_present(&other));
    assert_eq!(merge(&m, &m), m);
    assert_eq!(merge(&m, &TagState::new()), m);

    // The late add arriving after the remove does not bring the tag back.
    let mut c = TagState::new();
    c.apply(&remove);
    assert!(!c.apply(&add));
    assert!(!c.is_present(&k));
    assert_eq!(c.present().count(), 0);
    assert_eq!(c.counters().collect::<Vec<_>>(), vec![(&k, 2)]);

    // A zero counter is no state at all.
    let mut d = TagState::new();
    assert!(!d.apply(&TagOp {
        key: k.clone(),
        counter: 0
    }));
    assert_eq!(d, TagState::new());
    assert_eq!(vec![add, remove].into_iter().collect::<TagState>(), {
        let mut e = TagState::new();
        e.apply(&TagOp { key: k, counter: 2 });
        e
    });
}

#[test]
fn notes_keep_the_higher_revision_and_resolve_ties_by_content() {
    let first = Note::default().changed(Some(4), Some("clear".into()));
    assert_eq!(
        first,
        Note {
            rating: Some(4),
            comment: Some("clear".into()),
            revision: 1
        }
    );
    let second = first.changed(None, Some(String::new()));
    assert_eq!(
        second,
        Note {
            rating: Some(4),
            comment: None,
            revision: 2
        },
        "an empty comment clears it, a missing rating keeps it"
    );
    assert_eq!(Note::merge(&first, &second), second);
    assert_eq!(Note::merge(&second, &first), second);
    let tie = first.changed(Some(2), None);
    let tie2 = first.changed(Some(5), None);
    assert_eq!(Note::merge(&tie, &tie2), Note::merge(&tie2, &tie));
    assert_eq!(Note::merge(&tie, &tie2).rating, Some(5));
    assert_eq!(check_rating(5), Ok(5));
    assert_eq!(check_rating(0), Err("a rating is 1 to 5, not 0".into()));
    assert!(check_rating(6).is_err());
}

// The convergence property (DESIGN §5, I5): several evaluators add and remove tags on their
// own replicas; their ops reach several other replicas in random orders, some twice; merging
// the replicas in any order gives exactly the oracle: per key, the writer's last effective
// change, with the writer's final counter.

const EVALUATORS: [&str; 4] = ["ann", "bob", "cy", "dee"];
const TAGS: [&str; 3] = ["tone", "hallucination", "great-example"];

fn intents() -> impl Strategy<Value = Vec<(usize, u8, usize, bool)>> {
    prop::collection::vec(
        (0..EVALUATORS.len(), 0u8..3, 0..TAGS.len(), any::<bool>()),
        0..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn replicas_converge_to_the_oracle_whatever_the_order(
        intents in intents(),
        deliveries in prop::collection::vec((any::<u32>(), 0usize..4, any::<bool>()), 80),
        replicas in 1usize..5,
        merge_order in prop::collection::vec(any::<u32>(), 4),
    ) {
        // Each evaluator writes on their own device, in their own order.
        let mut devices: BTreeMap<&str, TagState> = BTreeMap::new();
        let mut ops = Vec::new();
        // Oracle: the last intent per key decides presence; each effective change counts.
        let mut oracle: BTreeMap<TagKey, (bool, u64)> = BTreeMap::new();
        for &(e, o, t, add) in &intents {
            let k = key(o, EVALUATORS[e], TAGS[t]);
            let intent = if add { Intent::Add } else { Intent::Remove };
            let entry = oracle.entry(k.clone()).or_insert((false, 0));
            if entry.0 != add {
                *entry = (add, entry.1 + 1);
            }
            if let Some(op) = devices.entry(EVALUATORS[e]).or_default().change(k, intent) {
                ops.push(op);
            }
        }
        oracle.retain(|_, (_, counter)| *counter > 0);

        // Deliver every op to one replica (in a random order), some to a second one as well.
        let mut order: Vec<(u32, usize, usize, bool)> = ops
            .iter()
            .enumerate()
            .map(|(i, _)| (deliveries[i].0, i, deliveries[i].1 % replicas, deliveries[i].2))
            .collect();
        order.sort_unstable();
        let mut states = vec![TagState::new(); replicas];
        for &(_, i, r, twice) in &order {
            states[r].apply(&ops[i]);
            if twice {
                states[(r + 1) % replicas].apply(&ops[i]);
                states[r].apply(&ops[i]);
            }
        }
        // The devices are replicas too.
        states.extend(devices.into_values());

        let mut perm: Vec<usize> = (0..states.len()).collect();
        perm.sort_by_key(|&i| merge_order.get(i).copied().unwrap_or(u32::try_from(i).unwrap()));
        let merged = perm.iter().fold(TagState::new(), |acc, &i| merge(&acc, &states[i]));
        let reversed = states.iter().rev().fold(TagState::new(), |acc, s| merge(s, &acc));
        prop_assert_eq!(&merged, &reversed);

        let counters: BTreeMap<TagKey, u64> =
            merged.counters().map(|(k, c)| (k.clone(), c)).collect();
        let expected: BTreeMap<TagKey, u64> =
            oracle.iter().map(|(k, (_, c))| (k.clone(), *c)).collect();
        prop_assert_eq!(counters, expected);
        let present: BTreeSet<TagKey> = merged.present().cloned().collect();
        let expected: BTreeSet<TagKey> =
            oracle.iter().filter(|(_, (p, _))| *p).map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(present, expected);

        // Applying the ops one by one, newest first, gives the same state as well.
        let backwards: TagState = ops.iter().rev().cloned().collect();
        prop_assert_eq!(backwards, merged);
    }
}

// ---------------------------------------------------------------------------------------------
// Taxonomy

#[test]
fn the_taxonomy_extends_the_defaults_per_blueprint() {
    let t = Taxonomy {
        default: vec!["off-topic".into()],
        blueprints: [
            (
                "hr-onboarding".to_owned(),
                vec!["missing-policy".to_owned(), "wrong-start-date".to_owned()],
            ),
            ("support-triage".to_owned(), vec![]),
        ]
        .into_iter()
        .collect(),
    };
    let mut expected: Vec<String> = DEFAULT_TAGS.iter().map(|t| (*t).to_owned()).collect();
    expected.push("off-topic".into());
    assert_eq!(t.allowed("support-triage"), expected);
    expected.push("wrong-start-date".into());
    assert_eq!(
        t.allowed("hr-onboarding"),
        expected,
        "a default listed again appears once"
    );
    assert_eq!(Taxonomy::default().allowed("x"), DEFAULT_TAGS.to_vec());
    assert!(t.check("hr-onboarding", "wrong-start-date").is_ok());
    let err = t.check("support-triage", "wrong-start-date").unwrap_err();
    assert!(err.contains("allowed: hallucination, tone,"), "{err}");
    let err = t.check("x", "halucination").unwrap_err();
    assert_eq!(
        err,
        "`halucination` is not a tag of `x` (did you mean `hallucination`?); allowed: hallucination, tone, missing-policy, factual-error, great-example, needs-edit, off-topic. Add tags under [taxonomy] in evaluation.toml"
    );
    for (name, ok) in [
        ("off-topic", true),
        ("Bad Tag", false),
        ("-x", false),
        ("a1", true),
    ] {
        assert_eq!(is_tag_name(name), ok, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Agreement

fn pairs(counts: [(usize, bool, bool); 4]) -> Vec<(bool, bool)> {
    counts
        .iter()
        .flat_map(|&(n, a, b)| std::iter::repeat_n((a, b), n))
        .collect()
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 5e-4)
}

#[test]
fn cohens_kappa_matches_the_textbook_examples() {
    // Wikipedia, "Cohen's kappa": 50 grant proposals read by two readers; and the two
    // tables with the same observed agreement (0.6) but different kappas.
    let table = [
        ([20, 5, 10, 15], 0.7, 0.5, 0.4),
        ([45, 15, 25, 15], 0.6, 0.54, 0.1304),
        ([25, 35, 5, 35], 0.6, 0.46, 0.2593),
    ];
    for ([yy, yn, ny, nn], po, pe, k) in table {
        let got = cohen_kappa(&pairs([
            (yy, true, true),
            (yn, true, false),
            (ny, false, true),
            (nn, false, false),
        ]));
        assert_eq!(got.items, yy + yn + ny + nn);
        assert!(close(got.observed, po), "{got:?}");
        assert!(close(got.chance, pe), "{got:?}");
        assert!(close(got.kappa, k), "{got:?} expected {k}");
    }
    // Labels may be any ordered type, with more than two categories.
    let three = cohen_kappa(&[("a", "a"), ("b", "b"), ("c", "c"), ("a", "b")]);
    // p_o = 3/4; p_e = (2/4)(1/4) + (1/4)(2/4) + (1/4)(1/4) = 5/16; kappa = (12/16-5/16)/(11/16).
    assert!(close(three.kappa, 7.0 / 11.0), "{three:?}");
}

#[test]
fn cohens_kappa_edge_cases_do_not_divide_by_zero() {
    let none: [(bool, bool); 0] = [];
    assert_eq!(
        cohen_kappa(&none),
        Kappa {
            items: 0,
            observed: None,
            chance: None,
            kappa: None
        }
    );
    // Perfect agreement over both categories: kappa 1.
    let perfect = cohen_kappa(&pairs([
        (3, true, true),
        (0, true, false),
        (0, false, true),
        (2, false, false),
    ]));
    assert_eq!(perfect.kappa, Some(1.0));
    // Everyone says "absent" every time: chance agreement is 1, kappa is undefined.
    let unanimous = cohen_kappa(&[(false, false), (false, false)]);
    assert_eq!(
        unanimous,
        Kappa {
            items: 2,
            observed: Some(1.0),
            chance: Some(1.0),
            kappa: None
        }
    );
    // Complete, systematic disagreement.
    let opposite = cohen_kappa(&[(true, false), (false, true)]);
    assert_eq!(opposite.kappa, Some(-1.0));
}

#[test]
fn fleiss_kappa_matches_the_worked_example() {
    // Wikipedia, "Fleiss' kappa": 14 raters put 10 subjects into 5 categories.
    let counts = vec![
        vec![0, 0, 0, 0, 14],
        vec![0, 2, 6, 4, 2],
        vec![0, 0, 3, 5, 6],
        vec![0, 3, 9, 2, 0],
        vec![2, 2, 8, 1, 1],
        vec![7, 7, 0, 0, 0],
        vec![3, 2, 6, 3, 0],
        vec![2, 5, 3, 2, 2],
        vec![6, 5, 2, 1, 0],
        vec![0, 2, 2, 3, 7],
    ];
    let k = fleiss_kappa(&counts);
    assert_eq!(k.items, 10);
    assert!(close(k.observed, 0.378), "{k:?}");
    assert!(close(k.chance, 0.2128), "{k:?}");
    assert!(close(k.kappa, 0.2099), "{k:?}");
}

#[test]
fn fleiss_kappa_edge_cases() {
    assert_eq!(fleiss_kappa(&[]).kappa, None);
    assert_eq!(fleiss_kappa(&[]).items, 0);
    // An item with one rating carries no agreement.
    assert_eq!(fleiss_kappa(&[vec![1, 0]]).items, 0);
    // Unanimous in one category: undefined.
    let one = fleiss_kappa(&[vec![3, 0], vec![3, 0]]);
    assert_eq!(
        (one.observed, one.chance, one.kappa),
        (Some(1.0), Some(1.0), None)
    );
    // Perfect agreement across categories: 1.
    assert_eq!(fleiss_kappa(&[vec![3, 0], vec![0, 3]]).kappa, Some(1.0));
    // With two raters it is close to (not the same as) Cohen's: Scott's pi.
    let k = fleiss_kappa(&[vec![2, 0], vec![1, 1], vec![0, 2], vec![0, 2]]);
    // P̄ = (1 + 0 + 1 + 1)/4 = 0.75; p = (3/8, 5/8); P̄e = 34/64; kappa = (0.75-34/64)/(30/64).
    assert!(
        close(k.kappa, (0.75 - 34.0 / 64.0) / (30.0 / 64.0)),
        "{k:?}"
    );
}

#[test]
fn tag_agreement_uses_the_outputs_every_evaluator_judged() {
    let evaluators: Vec<String> = vec!["ann".into(), "bob".into()];
    let mut evaluated: BTreeMap<OutputRef, BTreeSet<String>> = BTreeMap::new();
    for o in 0..4 {
        evaluated.insert(output(o, "draft"), ["ann", "bob"].map(String::from).into());
    }
    // Only ann judged output 9: it does not count.
    evaluated.insert(output(9, "draft"), ["ann".to_owned()].into());
    let present: BTreeSet<TagKey> = [
        key(0, "ann", "tone"),
        key(0, "bob", "tone"),
        key(1, "ann", "tone"),
        key(9, "ann", "tone"),
        key(2, "bob", "hallucination"),
    ]
    .into();
    let tags: Vec<String> = ["tone", "hallucination", "needs-edit"]
        .map(String::from)
        .into();
    let got = tag_agreement(&evaluated, &present, &evaluators, &tags);
    assert_eq!(got.len(), 3);
    // tone: (T,T) (T,F) (F,F) (F,F): p_o = 3/4, p_e = (2/4)(1/4) + (2/4)(3/4) = 1/2, kappa 1/2.
    assert_eq!(
        (got[0].tag.as_str(), got[0].method, got[0].present),
        ("tone", "cohen", 3)
    );
    assert_eq!(got[0].kappa.items, 4);
    assert!(close(got[0].kappa.kappa, 0.5), "{:?}", got[0]);
    // hallucination: one disagreement, nothing else: p_o = 3/4, p_e = 3/4, kappa 0.
    assert!(close(got[1].kappa.kappa, 0.0), "{:?}", got[1]);
    // needs-edit: nobody used it: perfect observed agreement, kappa undefined.
    assert_eq!(got[2].kappa.observed, Some(1.0));
    assert_eq!(got[2].kappa.kappa, None);

    // Three evaluators: Fleiss, over the outputs all three judged.
    let three: Vec<String> = vec!["ann".into(), "bob".into(), "cy".into()];
    for o in 0..2 {
        evaluated
            .get_mut(&output(o, "draft"))
            .unwrap()
            .insert("cy".into());
    }
    let mut present = present;
    present.insert(key(0, "cy", "tone"));
    let got = tag_agreement(&evaluated, &present, &three, &tags[..1]);
    assert_eq!((got[0].method, got[0].kappa.items), ("fleiss", 2));
    // Rows [3 yes, 0 no], [1 yes, 2 no]: P̄ = (1 + 1/3)/2; p = (4/6, 2/6).
    let pbar = (1.0 + 1.0 / 3.0) / 2.0;
    let pe = (4.0f64 / 6.0).powi(2) + (2.0f64 / 6.0).powi(2);
    assert!(
        close(got[0].kappa.kappa, (pbar - pe) / (1.0 - pe)),
        "{:?}",
        got[0]
    );

    assert!(tag_agreement(&evaluated, &present, &evaluators[..1], &tags).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Exports

fn step(run: u8, node: &str, seq: u64, kind: OutputKind, value: serde_json::Value) -> StepRecord {
    StepRecord {
        output: output(run, node),
        kind,
        seq,
        value,
        input: (kind == OutputKind::Prompt).then(|| {
            json!({ "messages": [
                { "role": "system", "content": "You write notes." },
                { "role": "user", "content": format!("prompt {seq}") },
            ]})
        }),
    }
}

#[test]
fn reviews_are_paired_with_the_prompt_that_drafted_them() {
    let steps = vec![
        step(
            1,
            "draft",
            2,
            OutputKind::Prompt,
            json!({ "text": "first" }),
        ),
        step(
            1,
            "other",
            3,
            OutputKind::Prompt,
            json!({ "text": "unrelated" }),
        ),
        step(
            1,
            "review",
            5,
            OutputKind::Review,
            json!({ "text": "first!", "draft": "first" }),
        ),
        step(
            1,
            "wrapped",
            6,
            OutputKind::Review,
            json!({ "text": "x", "draft": "Draft: unrelated." }),
        ),
        step(
            1,
            "plain",
            7,
            OutputKind::Review,
            json!({ "text": "y", "draft": "no match" }),
        ),
        // Another run's prompt is never the drafter.
        step(
            2,
            "lonely",
            1,
            OutputKind::Review,
            json!({ "text": "z", "draft": "first" }),
        ),
    ];
    assert_eq!(
        pair_drafts(&steps),
        vec![(2, Some(0)), (3, Some(1)), (4, Some(1)), (5, None)]
    );
}

#[test]
fn export_records_carry_the_approved_text() {
    let prompt = step(
        1,
        "draft",
        2,
        OutputKind::Prompt,
        json!({ "text": "draft text" }),
    );
    let review = step(
        1,
        "review",
        4,
        OutputKind::Review,
        json!({ "text": "edited text", "draft": "draft text", "edited": true }),
    );
    let chat = chat_record(prompt.messages().unwrap(), review.text()).unwrap();
    assert_eq!(
        chat,
        json!({ "messages": [
            { "role": "system", "content": "You write notes." },
            { "role": "user", "content": "prompt 2" },
            { "role": "assistant", "content": "edited text" },
        ]})
    );
    assert_eq!(chat_record(&[], "x"), None);
    assert_eq!(chat_record(&[json!({ "role": "user" })], "x"), None);

    let feedback = FeedbackSummary {
        tags: [("great-example".to_owned(), 2)].into(),
        ratings: [("ann".to_owned(), 5)].into(),
        comments: BTreeMap::new(),
    };
    let line = evalset_record(
        &Provenance {
            output: &review.output,
            blueprint: "notes",
            version: "abc",
        },
        &review,
        Some(&prompt),
        &feedback,
    );
    assert_eq!(line["approved_output"], "edited text");
    assert_eq!(line["draft"], "draft text");
    assert_eq!(line["edited"], true);
    assert_eq!(line["tags"], json!(["great-example"]));
    assert_eq!(line["tag_counts"], json!({ "great-example": 2 }));
    assert_eq!(line["ratings"], json!({ "ann": 5 }));
    assert_eq!(line["input"]["messages"][1]["content"], "prompt 2");
    assert_eq!(line["blueprint"], "notes");
    assert_eq!(line["version"], "abc");
    assert_eq!(line["run"], review.output.run.to_string());
    assert_eq!(line["prompt_output"], prompt.output.to_string());
    let orphan = evalset_record(
        &Provenance {
            output: &review.output,
            blueprint: "notes",
            version: "abc",
        },
        &review,
        None,
        &FeedbackSummary::default(),
    );
    assert_eq!(orphan["input"], serde_json::Value::Null);
    assert_eq!(orphan["tags"], json!([]));
}
