#![allow(clippy::unwrap_used, clippy::panic)]

use processops_yaml::{Document, escape_pointer_token, parse};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;

/// A realistic blueprint, the seed for the mutation tests.
const BLUEPRINT: &str = r#"# a blueprint
name: "demo: flow"
version: 2
defaults: &defaults
  retries: 3
  timeout: 1.5e2
nodes:
  - id: fetch
    agent: 'http'
    <<: *defaults
    params: {url: "https://example.invalid/x?a=1&b=2", headers: [a, b]}
  - id: summarise
    after: [fetch]
    prompt: |
      Summarise:
        {{ fetch.output }}
    note: >-
      folded
      text
    flags: [true, ~, 0x1F, -0o7, .5]
- broken: on purpose?
tags:
- a
- "b\tc"
"#;

/// Parses, and on success checks that every value in the result has a position.
fn parse_checked(src: &str) -> Result<Document, String> {
    match parse(src) {
        Ok(doc) => {
            let mut pointers = Vec::new();
            collect_pointers(&doc.value, String::new(), &mut pointers);
            // Every `\r` and `\n` may start a line, as in the scanner.
            let lines = u32::try_from(src.matches(['\n', '\r']).count()).unwrap() + 1;
            for pointer in pointers {
                let pos = doc
                    .value_pos(&pointer)
                    .unwrap_or_else(|| panic!("no position for {pointer:?} in {src:?}"));
                assert!(
                    pos.line >= 1 && pos.line <= lines && pos.column >= 1,
                    "{pos:?}"
                );
                assert_eq!(doc.nearest_pos(&pointer), pos);
            }
            Ok(doc)
        }
        Err(e) => {
            // A panic caught inside `parse`, or an event sequence we did not
            // expect, shows up as an internal error: that is a bug here too.
            assert!(!e.message.contains("internal error"), "{e} for {src:?}");
            assert!(e.pos.line >= 1 && e.pos.column >= 1);
            Err(e.message)
        }
    }
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                collect_pointers(item, format!("{at}/{}", escape_pointer_token(key)), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(b" \t\n\r:-[]{},#&*!|>'\"%@`?~\\0x.\xff\xc3".to_vec());
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), interesting).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
    ]
}

/// JSON values whose strings come from an alphabet full of YAML-significant characters.
fn json_value() -> impl Strategy<Value = Value> {
    let text = "[a-zA-Z0-9 :#&*!|>'\"%@`?~,\\[\\]{}\\-\\\\/\n\t.éü日😀]{0,12}";
    let number = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number,
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // Integration tests have no lib.rs beside them for proptest's default.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/props.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_strings_never_panic(src in any::<String>()) {
        let _ = parse_checked(&src);
    }

    #[test]
    fn yaml_like_strings_never_panic(
        src in "[ \t\n\r:\\-\\[\\]{},#&*!|>'\"%@`?~.a-c0-9]{0,120}|(---|\\.\\.\\.|%YAML 1.2|%TAG ! x|!!str|&a|\\*a|<<|\\? |- |: |\n  |\n| )*",
    ) {
        let _ = parse_checked(&src);
    }

    #[test]
    fn mutated_blueprints_never_panic(mutations in prop::collection::vec(mutation(), 1..8)) {
        let mut bytes = BLUEPRINT.as_bytes().to_vec();
        for m in mutations {
            match m {
                Mutation::Delete(at) if !bytes.is_empty() => {
                    bytes.remove(at % bytes.len());
                }
                Mutation::Delete(_) => {}
                Mutation::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
            }
        }
        let _ = parse_checked(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn json_round_trips(value in json_value()) {
        for src in [serde_json::to_string(&value).unwrap(), serde_json::to_string_pretty(&value).unwrap()] {
            let doc = parse_checked(&src).unwrap_or_else(|e| panic!("{e} for {src}"));
            prop_assert_eq!(&doc.value, &value, "source: {}", src);
        }
    }
}

#[test]
fn the_mutation_seed_is_almost_valid() {
    let doc = parse_checked(BLUEPRINT).unwrap_err();
    // The seed deliberately ends in a broken entry, so mutations explore
    // both sides; without it the document is fine.
    assert!(doc.contains("indentation"), "{doc}");
    let fixed = BLUEPRINT.replace("- broken: on purpose?\n", "");
    assert!(parse_checked(&fixed).is_ok());
}
