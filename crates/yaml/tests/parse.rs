#![allow(clippy::unwrap_used, clippy::panic)]

use pretty_assertions::assert_eq;
use processops_yaml::{Document, Pos, YamlError, escape_pointer_token, parse};
use serde_json::{Value, json};

/// What parsing a source must give.
enum Expect {
    Value(Value),
    /// line, column, exact message
    Error(u32, u32, &'static str),
}
use Expect::{Error, Value as Val};

fn check(src: &str, expected: Expect) {
    let result = parse(src);
    // Keeps failure output readable for the generated huge inputs.
    let src: String = src.chars().take(300).collect();
    match (result, expected) {
        (Ok(doc), Val(value)) => assert_eq!(doc.value, value, "source: {src:?}"),
        (Err(e), Error(line, column, message)) => assert_eq!(
            e,
            YamlError {
                pos: Pos { line, column },
                message: message.to_owned()
            },
            "source: {src:?}"
        ),
        (Ok(doc), Error(..)) => panic!("expected an error for {src:?}, got {}", doc.value),
        (Err(e), Val(_)) => panic!("unexpected error for {src:?}: {e}"),
    }
}

fn ok(src: &str) -> Document {
    parse(src).unwrap_or_else(|e| panic!("unexpected error for {src:?}: {e}"))
}

type At = Option<(u32, u32)>;

/// `(pointer, value position, key position)` for each pointer.
fn check_positions(src: &str, table: &[(&str, At, At)]) {
    let doc = ok(src);
    for (pointer, value, key) in table {
        let pos = |p: Option<Pos>| p.map(|p| (p.line, p.column));
        assert_eq!(
            (pos(doc.value_pos(pointer)), pos(doc.key_pos(pointer))),
            (*value, *key),
            "pointer {pointer:?} in {src:?}"
        );
    }
}

#[test]
fn plain_scalars_follow_the_core_schema() {
    let table: &[(&str, Value)] = &[
        // null
        ("null", json!(null)),
        ("Null", json!(null)),
        ("NULL", json!(null)),
        ("~", json!(null)),
        ("a:", json!({"a": null})),
        ("- \n- x", json!([null, "x"])),
        ("nULL", json!("nULL")),
        // booleans
        ("true", json!(true)),
        ("True", json!(true)),
        ("TRUE", json!(true)),
        ("false", json!(false)),
        ("False", json!(false)),
        ("FALSE", json!(false)),
        ("tRUE", json!("tRUE")),
        ("yes", json!("yes")),
        ("on", json!("on")),
        ("y", json!("y")),
        // integers
        ("0", json!(0)),
        ("42", json!(42)),
        ("-17", json!(-17)),
        ("+5", json!(5)),
        ("007", json!(7)),
        ("0x1F", json!(31)),
        ("0xff", json!(255)),
        ("-0x10", json!(-16)),
        ("0o17", json!(15)),
        ("+0o7", json!(7)),
        ("18446744073709551615", json!(u64::MAX)),
        ("-9223372036854775808", json!(i64::MIN)),
        ("0x", json!("0x")),
        ("0xg", json!("0xg")),
        ("0o8", json!("0o8")),
        ("0b101", json!("0b101")),
        ("1_000", json!("1_000")),
        // floats
        ("1.5", json!(1.5)),
        ("-2.5e3", json!(-2500.0)),
        (".5", json!(0.5)),
        ("1.", json!(1.0)),
        ("1e3", json!(1000.0)),
        ("+1.0", json!(1.0)),
        ("6.02E+23", json!(6.02e23)),
        ("1e-3", json!(0.001)),
        ("99999999999999999999.0", json!(1e20)),
        (".", json!(".")),
        ("1.2.3", json!("1.2.3")),
        ("1e", json!("1e")),
        ("e5", json!("e5")),
        ("inf", json!("inf")),
        ("nan", json!("nan")),
        ("infinity", json!("infinity")),
        // everything else is a string
        ("hello world", json!("hello world")),
        ("12:30", json!("12:30")),
        ("2024-01-01", json!("2024-01-01")),
        ("a # comment", json!("a")),
        ("multi\n  line", json!("multi line")),
        ("é: ü", json!({"é": "ü"})),
        ("\u{feff}a: 1", json!({"a": 1})),
    ];
    for (src, value) in table {
        check(src, Val(value.clone()));
    }
}

#[test]
fn quoted_block_and_tagged_scalars() {
    let table: &[(&str, Value)] = &[
        ("'1'", json!("1")),
        ("\"true\"", json!("true")),
        ("'null'", json!("null")),
        ("''", json!("")),
        ("\"a\\tb\\u00e9\\n\"", json!("a\tbé\n")),
        ("'it''s'", json!("it's")),
        ("a: |\n  12\n  34\n", json!({"a": "12\n34\n"})),
        ("a: |-\n  12\n", json!({"a": "12"})),
        (
            "a: >\n  folded\n  text\n\n  para\n",
            json!({"a": "folded text\npara\n"}),
        ),
        ("a: >-\n  true\n", json!({"a": "true"})),
        ("!!str 1", json!("1")),
        ("!!str", json!("")),
        ("!!str true", json!("true")),
        ("!!int \"42\"", json!(42)),
        ("!!int 0x10", json!(16)),
        ("!!float 1", json!(1.0)),
        ("!!float '2.5'", json!(2.5)),
        ("!!bool 'false'", json!(false)),
        ("!!null ''", json!(null)),
        ("!!null ~", json!(null)),
        ("! 12", json!("12")),
        ("!<tag:yaml.org,2002:str> 5", json!("5")),
        ("!!map {a: 1}", json!({"a": 1})),
        ("!!seq [1]", json!([1])),
        ("a: !!str\nb: 1", json!({"a": "", "b": 1})),
    ];
    for (src, value) in table {
        check(src, Val(value.clone()));
    }
}

#[test]
fn collections_and_keys() {
    let table: &[(&str, Value)] = &[
        (
            "a: 1\nb:\n  c: [1, two, {d: 3.5}]\n  e:\n  - x\n  - - y\n",
            json!({"a": 1, "b": {"c": [1, "two", {"d": 3.5}], "e": ["x", ["y"]]}}),
        ),
        ("[]", json!([])),
        ("{}", json!({})),
        ("a: []\nb: {}", json!({"a": [], "b": {}})),
        ("[a: 1, b]", json!([{"a": 1}, "b"])),
        ("- a: 1\n  b: 2\n- c", json!([{"a": 1, "b": 2}, "c"])),
        // keys keep the text they were written with
        (
            "1: a\n0x10: b\ntrue: c\n~: d\n1.50: e",
            json!({"1": "a", "0x10": "b", "true": "c", "~": "d", "1.50": "e"}),
        ),
        ("? complex\n: explicit", json!({"complex": "explicit"})),
        ("'quoted key': 1", json!({"quoted key": 1})),
        ("a/b: 1\nm~n: 2", json!({"a/b": 1, "m~n": 2})),
        (
            "{\"a\":1,\"b\":[true,null]}",
            json!({"a": 1, "b": [true, null]}),
        ),
        ("%YAML 1.2\n---\na: 1\n...\n", json!({"a": 1})),
        ("a: 1\r\nb: 2\r\n", json!({"a": 1, "b": 2})),
    ];
    for (src, value) in table {
        check(src, Val(value.clone()));
    }
}

#[test]
fn anchors_and_aliases_are_expanded() {
    let table: &[(&str, Value)] = &[
        ("a: &x 1\nb: *x", json!({"a": 1, "b": 1})),
        (
            "base: &b {agent: x, retries: 2}\nnodes:\n- *b\n- *b",
            json!({"base": {"agent": "x", "retries": 2}, "nodes": [{"agent": "x", "retries": 2}, {"agent": "x", "retries": 2}]}),
        ),
        ("a: &x\nb: *x", json!({"a": null, "b": null})),
        ("- &k name\n- {*k : 1}", json!(["name", {"name": 1}])),
        ("&k key: 1\nother: *k", json!({"key": 1, "other": "key"})),
        // an anchor can be redefined; an alias uses the latest definition
        ("- &x 1\n- *x\n- &x 2\n- *x", json!([1, 1, 2, 2])),
        ("a: &x !!str 5\nb: *x", json!({"a": "5", "b": "5"})),
    ];
    for (src, value) in table {
        check(src, Val(value.clone()));
    }
}

#[test]
fn errors_have_exact_messages_and_positions() {
    let table: &[(&str, u32, u32, &str)] = &[
        // empty file
        ("", 1, 1, "the file is empty"),
        ("# just a comment\n\n", 1, 1, "the file is empty"),
        ("---\n", 1, 1, "the file is empty"),
        ("\u{feff}", 1, 1, "the file is empty"),
        // duplicate keys
        (
            "a: 1\nb: 2\na: 3\n",
            3,
            1,
            "duplicate key `a` (first defined at line 1)",
        ),
        (
            "x:\n  y: 1\n  'y': 2\n",
            3,
            3,
            "duplicate key `y` (first defined at line 2)",
        ),
        (
            "{a: 1, a: 2}",
            1,
            8,
            "duplicate key `a` (first defined at line 1)",
        ),
        // tabs
        (
            "a:\n\tb: 1\n",
            2,
            1,
            "YAML does not allow tabs for indentation; use spaces (YAML parser: tabs disallowed within this context (block indentation))",
        ),
        (
            "key: value\n\tother: 1\n",
            2,
            1,
            "YAML does not allow tabs for indentation; use spaces (YAML parser: while scanning a plain scalar, found a tab)",
        ),
        // indentation
        (
            "a:\n  - 1\n - 2\n",
            3,
            2,
            "check the indentation: the entries of one mapping or list must start in the same column (YAML parser: while parsing a block mapping, did not find expected key)",
        ),
        (
            "a:\n  b: 1\n c: 2\n",
            3,
            3,
            "check the indentation: the entries of one mapping or list must start in the same column (YAML parser: while parsing a block mapping, did not find expected key)",
        ),
        (
            "- a\nb: 1\n",
            2,
            1,
            "check the indentation: the entries of one mapping or list must start in the same column (YAML parser: while parsing a block collection, did not find expected '-' indicator)",
        ),
        (
            "a: 1\n  b: 2\n",
            2,
            4,
            "`: ` cannot appear here; if it is part of a text, put the whole value in quotes, otherwise check the indentation (YAML parser: mapping values are not allowed in this context)",
        ),
        (
            "title: Step: one\n",
            1,
            12,
            "`: ` cannot appear here; if it is part of a text, put the whole value in quotes, otherwise check the indentation (YAML parser: mapping values are not allowed in this context)",
        ),
        // unclosed quotes and flow collections
        (
            "a: \"abc\nb: 1\n",
            1,
            4,
            "a quoted text runs on to the next lines; is its closing quote missing? (YAML parser: invalid indentation in quoted scalar)",
        ),
        (
            "a: 'abc\n",
            1,
            4,
            "a quoted text is missing its closing quote (YAML parser: while scanning a quoted scalar, found unexpected end of stream)",
        ),
        (
            "a: [1, 2\n",
            2,
            1,
            "the list opened with `[` at line 1, column 4 is missing its closing `]`, or a comma between two items (YAML parser: while parsing a flow sequence, expected ',' or ']')",
        ),
        (
            "a: [1, [2, 3]\n",
            2,
            1,
            "the list opened with `[` at line 1, column 4 is missing its closing `]`, or a comma between two items (YAML parser: while parsing a flow sequence, expected ',' or ']')",
        ),
        (
            "a: {b: 1\n",
            2,
            1,
            "the mapping opened with `{` at line 1, column 4 is missing its closing `}`, or a comma between two entries (YAML parser: while parsing a flow mapping, did not find expected ',' or '}')",
        ),
        // several documents
        (
            "a: 1\n---\nb: 2\n",
            2,
            1,
            "a second YAML document starts here; a blueprint file must contain exactly one document (remove this `---` line or split the file)",
        ),
        (
            "---\na: 1\n---\n",
            3,
            1,
            "a second YAML document starts here; a blueprint file must contain exactly one document (remove this `---` line or split the file)",
        ),
        // tags
        (
            "a: !foo x\n",
            1,
            9,
            "unsupported tag `!foo`; only !!str, !!int, !!float, !!bool and !!null are allowed here",
        ),
        (
            "a: !!binary aGk=\n",
            1,
            13,
            "unsupported tag `!!binary`; only !!str, !!int, !!float, !!bool and !!null are allowed here",
        ),
        (
            "a: !!map x\n",
            1,
            10,
            "unsupported tag `!!map`; only !!str, !!int, !!float, !!bool and !!null are allowed here",
        ),
        (
            "a: !!seq {}\n",
            1,
            10,
            "unsupported tag `!!seq`; only !!str, !!int, !!float, !!bool and !!null are allowed here",
        ),
        (
            "!custom a: 1\n",
            1,
            9,
            "unsupported tag `!custom`; only !!str, !!int, !!float, !!bool and !!null are allowed here",
        ),
        (
            "a: !<tag:example.com,2024:x> 1\n",
            1,
            30,
            "unsupported tag `!<tag:example.com,2024:x>`; only !!str, !!int, !!float, !!bool and !!null are allowed here",
        ),
        (
            "a: !!int abc\n",
            1,
            10,
            "`abc` is not a valid integer (it is tagged !!int)",
        ),
        (
            "a: !!float x\n",
            1,
            12,
            "`x` is not a valid number (it is tagged !!float)",
        ),
        (
            "a: !!bool yes\n",
            1,
            11,
            "`yes` is not a valid boolean (it is tagged !!bool)",
        ),
        (
            "a: !!null 0\n",
            1,
            11,
            "`0` is not a valid null (it is tagged !!null)",
        ),
        // numbers JSON cannot hold
        (
            "a: .inf\n",
            1,
            4,
            "`.inf` (infinity) cannot be used: numbers must be finite; put it in quotes if it is meant as text",
        ),
        (
            "a: -.Inf\n",
            1,
            4,
            "`-.Inf` (infinity) cannot be used: numbers must be finite; put it in quotes if it is meant as text",
        ),
        (
            "- .NaN\n",
            1,
            3,
            "`.NaN` (not-a-number) cannot be used: numbers must be finite; put it in quotes if it is meant as text",
        ),
        (
            "a: 1e999\n",
            1,
            4,
            "the number `1e999` is too large; put it in quotes if it is meant as text",
        ),
        (
            "id: 123456789012345678901234\n",
            1,
            5,
            "the integer `123456789012345678901234` is too large (integers must fit in 64 bits); put it in quotes if it is meant as text",
        ),
        (
            "id: -9223372036854775809\n",
            1,
            5,
            "the integer `-9223372036854775809` is too large (integers must fit in 64 bits); put it in quotes if it is meant as text",
        ),
        // aliases and keys
        (
            "a: *nope\n",
            1,
            4,
            "an alias `*name` must refer to an anchor `&name` defined earlier in the file (YAML parser: while parsing node, found unknown anchor)",
        ),
        (
            "a: &x [1, *x]\n",
            1,
            11,
            "this alias refers to an anchor that contains it; an anchor cannot include itself",
        ),
        (
            "[a, b]: 1\n",
            1,
            1,
            "a mapping key must be a plain value (text or a number), not a list or mapping",
        ),
        (
            "a: &l [1]\n*l : 2\n",
            2,
            1,
            "a mapping key must be a plain value (text or a number), not a list or mapping",
        ),
        // other syntax errors
        (
            "a: @x\n",
            1,
            4,
            "this character cannot start a plain value; put the value in quotes (YAML parser: unexpected character: `@')",
        ),
        (
            "a: ]\n",
            1,
            4,
            "a value is missing here, or it starts with a character that needs quotes (YAML parser: while parsing a node, did not find expected node content)",
        ),
        (
            "a: - b\n",
            1,
            4,
            "a `- ` list item cannot start here; put it on its own line, indented below its key (YAML parser: block sequence entries are not allowed in this context)",
        ),
        (
            "a: 1\n\0b: 2\n",
            2,
            1,
            "the file contains the control character U+0000, which YAML does not allow (is this a text file?)",
        ),
        (
            "a: \"x\u{7}\"\n",
            1,
            6,
            "the file contains the control character U+0007, which YAML does not allow (is this a text file?)",
        ),
    ];
    for (src, line, column, message) in table {
        check(src, Error(*line, *column, message));
    }
}

#[test]
fn long_user_text_is_shortened_in_messages() {
    let key = "k".repeat(70);
    let e = parse(&format!("{key}: 1\n{key}: 2\n")).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "duplicate key `{}…` (first defined at line 1)",
            "k".repeat(60)
        )
    );
    let e = parse(&format!("a: !!int {}\n", "9x".repeat(50))).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "`{}…` is not a valid integer (it is tagged !!int)",
            "9x".repeat(30)
        )
    );
}

#[test]
fn nesting_is_limited_to_128_levels() {
    let flow = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(&flow(128)).is_ok());
    check(
        &flow(129),
        Error(
            1,
            129,
            "lists and mappings are nested too deeply (more than 128 levels)",
        ),
    );
    // Far deeper input must fail just as calmly (no stack overflow).
    // The scanner reads ahead and has its own, higher limit.
    check(
        &flow(1_000_000),
        Error(
            1,
            256,
            "lists and mappings are nested too deeply (YAML parser: recursion limit exceeded)",
        ),
    );

    let block: String = (0..200)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    check(
        &block,
        Error(
            129,
            129,
            "lists and mappings are nested too deeply (more than 128 levels)",
        ),
    );

    // An alias can make a document deeper than its text looks.
    let deep_alias = format!("a: &d {}\nb: [[*d]]\n", flow(126));
    check(
        &deep_alias,
        Error(
            2,
            6,
            "lists and mappings are nested too deeply (more than 128 levels)",
        ),
    );
    assert!(parse(&format!("a: &d {}\nb: [*d]\n", flow(126))).is_ok());
}

#[test]
fn alias_bombs_are_stopped() {
    // The classic "billion laughs": 9^9 strings if expanded.
    let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    check(
        &bomb,
        Error(
            5,
            7,
            "the document is too large: more than 100000 values, counting what anchors and aliases copy",
        ),
    );

    // Few values, but each a large text.
    let big = "x".repeat(1 << 20);
    let text_bomb = format!("a: &a {big}\nb: [{}]\n", vec!["*a"; 20].join(", "));
    check(
        &text_bomb,
        Error(
            2,
            65,
            "anchors and aliases copy more than 16777216 bytes of text",
        ),
    );
}

#[test]
fn positions_in_block_style() {
    let src = "\
name: demo
nodes:
  - id: first
    agent: writer
  - id: second
    params:
      text: |
        hello
      empty:
tags:
- a
-   b
";
    check_positions(
        src,
        &[
            ("", Some((1, 1)), None),
            ("/name", Some((1, 7)), Some((1, 1))),
            ("/nodes", Some((3, 3)), Some((2, 1))),
            ("/nodes/0", Some((3, 5)), None),
            ("/nodes/0/id", Some((3, 9)), Some((3, 5))),
            ("/nodes/0/agent", Some((4, 12)), Some((4, 5))),
            ("/nodes/1/params", Some((7, 7)), Some((6, 5))),
            // a block scalar is positioned at its first content line
            ("/nodes/1/params/text", Some((8, 9)), Some((7, 7))),
            // an empty value is positioned at its key
            ("/nodes/1/params/empty", Some((9, 7)), Some((9, 7))),
            // a list not indented under its key starts at its first `-`
            ("/tags", Some((11, 1)), Some((10, 1))),
            ("/tags/0", Some((11, 3)), None),
            ("/tags/1", Some((12, 5)), None),
            ("/nodes/2", None, None),
            ("/missing", None, None),
        ],
    );
}

#[test]
fn positions_of_other_layouts() {
    check_positions(
        "a: {b: [1, 'two'], \"c\": {}}\n",
        &[
            ("/a", Some((1, 4)), Some((1, 1))),
            ("/a/b", Some((1, 8)), Some((1, 5))),
            ("/a/b/0", Some((1, 9)), None),
            ("/a/b/1", Some((1, 12)), None),
            ("/a/c", Some((1, 25)), Some((1, 20))),
        ],
    );
    check_positions(
        "- - x\n  - y\n- k: v\n  l:\n  - z\n",
        &[
            ("", Some((1, 1)), None),
            ("/0", Some((1, 3)), None),
            ("/0/1", Some((2, 5)), None),
            ("/1", Some((3, 3)), None),
            ("/1/k", Some((3, 6)), Some((3, 3))),
            ("/1/l", Some((5, 3)), Some((4, 3))),
            ("/1/l/0", Some((5, 5)), None),
        ],
    );
    check_positions(
        "list:\n- - a\n-\n  b\n",
        &[
            ("/list", Some((2, 1)), Some((1, 1))),
            ("/list/0", Some((2, 3)), None),
            ("/list/1", Some((4, 3)), None),
        ],
    );
    // Columns count characters, not bytes.
    check_positions(
        "é: {ü: [1]}\n",
        &[
            ("/é", Some((1, 4)), Some((1, 1))),
            ("/é/ü/0", Some((1, 9)), None),
        ],
    );
    check_positions("a: 1\r\nb: 2\r\n", &[("/b", Some((2, 4)), Some((2, 1)))]);
    check_positions("\u{feff}a: 1\n", &[("/a", Some((1, 4)), Some((1, 1)))]);
    check_positions(
        "? a\n: b\n",
        &[("", Some((1, 1)), None), ("/a", Some((2, 3)), Some((1, 3)))],
    );
    check_positions("'q': \"v\"\n", &[("/q", Some((1, 6)), Some((1, 1)))]);
    check_positions("a: &x !!str v\n", &[("/a", Some((1, 13)), Some((1, 1)))]);
    check_positions("42\n", &[("", Some((1, 1)), None)]);
}

#[test]
fn positions_through_aliases() {
    let src = "base: &b\n  agent: x\nnodes:\n- *b\n";
    check_positions(
        src,
        &[
            ("/base", Some((2, 3)), Some((1, 1))),
            // the alias itself is where it is used ...
            ("/nodes/0", Some((4, 3)), None),
            // ... and what it expands to is where it was defined
            ("/nodes/0/agent", Some((2, 10)), Some((2, 3))),
        ],
    );
}

#[test]
fn json_pointers() {
    let doc = ok("a/b: 1\nm~n: 2\n~1: 3\nlist: [x, y]\n'': 4\n");
    assert_eq!(escape_pointer_token("a/b"), "a~1b");
    assert_eq!(escape_pointer_token("m~n"), "m~0n");
    assert_eq!(escape_pointer_token("~1"), "~01");
    assert_eq!(doc.value_pos("/a~1b"), Some(Pos { line: 1, column: 6 }));
    assert_eq!(doc.value_pos("/m~0n"), Some(Pos { line: 2, column: 6 }));
    assert_eq!(doc.value_pos("/~01"), Some(Pos { line: 3, column: 5 }));
    assert_eq!(doc.value_pos("/"), Some(Pos { line: 5, column: 5 }));
    assert_eq!(
        doc.value_pos("/list/1"),
        Some(Pos {
            line: 4,
            column: 11
        })
    );
    // not valid array indices
    for pointer in [
        "/list/01", "/list/-", "/list/2", "/list/+1", "/list/", "list", "/a/b",
    ] {
        assert_eq!(doc.value_pos(pointer), None, "{pointer}");
    }
    // missing parts point at the nearest existing ancestor
    assert_eq!(doc.nearest_pos("/list/7/x"), Pos { line: 4, column: 7 });
    assert_eq!(
        doc.nearest_pos("/list/1/x"),
        Pos {
            line: 4,
            column: 11
        }
    );
    assert_eq!(doc.nearest_pos("/nothing"), Pos { line: 1, column: 1 });
    assert_eq!(doc.nearest_pos("no slash"), Pos { line: 1, column: 1 });
    assert_eq!(doc.nearest_pos("/m~0n"), Pos { line: 2, column: 6 });
    assert_eq!(doc.key_pos(""), None);
    assert_eq!(doc.key_pos("/list/0"), None);
    assert_eq!(doc.key_pos("/list"), Some(Pos { line: 4, column: 1 }));
    assert_eq!(doc.key_pos("/missing"), None);
}

#[test]
fn error_display_reads_line_then_column() {
    let e = parse("a: 1\na: 2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2, column 1: duplicate key `a` (first defined at line 1)"
    );
    assert_eq!(Pos { line: 3, column: 7 }.to_string(), "line 3, column 7");
}
