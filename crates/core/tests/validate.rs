//! Blueprint validation, table-driven: every test is `check(source, expected diagnostics)`.
//!
//! Diagnostics are rendered one per problem as `line:column severity[code] message` with the
//! fix on an indented `help:` line, so an expectation reads like the CLI's output. Sources
//! are written inline; their first line is line 1.

#![allow(clippy::unwrap_used, clippy::panic)]

use pretty_assertions::assert_eq;
use processops_core::Diagnostic;
use processops_core::blueprint::{self, MAX_SOURCE_BYTES, version_hash};
use proptest::prelude::*;

/// Check `source` and compare every diagnostic, in order, with `expect`.
#[track_caller]
fn check(source: &str, expect: &str) {
    let source = source.strip_prefix('\n').unwrap_or(source);
    let checked = blueprint::check(source);
    assert_invariants(source, &checked);
    let actual = render(&checked.diagnostics);
    let shown = if source.len() > 4096 {
        "<large>"
    } else {
        source
    };
    assert_eq!(
        actual.trim_end(),
        expect.trim_start_matches('\n').trim_end(),
        "\nsource:\n{shown}"
    );
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let severity = if d.is_error() { "error" } else { "warning" };
        out.push_str(&format!(
            "{}:{} {severity}[{}] {}\n",
            d.line, d.column, d.code, d.message
        ));
        out.push_str(&format!(
            "  help: {}\n",
            d.help.as_deref().unwrap_or("<none>")
        ));
    }
    out
}

/// What holds for every source: positions inside the file, a fix for every problem, and a
/// blueprint exactly when there is no error.
fn assert_invariants(source: &str, checked: &blueprint::Checked) {
    // YAML breaks lines at `\n`, `\r\n` and a lone `\r`.
    let lines = source
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| matches!(c, '\n' | '\r'))
        .count()
        + 1;
    for d in &checked.diagnostics {
        assert!(d.line >= 1 && d.column >= 1, "no position: {d:?}");
        assert!(
            d.line as usize <= lines,
            "line {} past the end ({lines} lines): {d:?}",
            d.line
        );
        assert!(
            d.help.as_deref().is_some_and(|h| !h.trim().is_empty()),
            "no help: {d:?}"
        );
        assert!(!d.message.trim().is_empty(), "no message: {d:?}");
    }
    let has_errors = checked.diagnostics.iter().any(Diagnostic::is_error);
    assert_eq!(
        checked.blueprint.is_some(),
        !has_errors,
        "{:?}",
        checked.diagnostics
    );
}

// ---------------------------------------------------------------------------------------------
// A valid blueprint

#[test]
fn valid_blueprint_has_no_diagnostics() {
    check(
        r#"
# A comment before the content.
id: welcome-kit
name: Welcome kit
domain: HR & People
lifecycle:
  stage: pilot
  owner: people-ops
  pilot: { roles: [hr-manager] }
start: policies
triggers:
  - kind: webhook
    id: new-hire
    secret_env: HRMS_WEBHOOK_SECRET
    input:
      type: object
      required: [name, role]
      properties:
        name: { type: string }
        role: { type: string }
  - kind: schedule
    id: weekly
    cron: "0 9 * * MON"
    payload: { name: nobody, role: none }
agents:
  drafter:
    provider: default
    model: gpt-4o-mini
    temperature: 0.2
nodes:
  - id: policies
    kind: retrieve
    collection: hr-policies
    query: "onboarding for {{ trigger.role }}"
    next: draft
  - id: draft
    kind: prompt
    agent: drafter
    template: |
      Write a welcome kit for {{ trigger.name }}.
      {% for p in policies.passages %}- {{ p.text }}
      {% endfor %}
    max_visits: 3
    on_exhausted: save
    next: review
  - id: review
    kind: review
    draft: "{{ draft.text }}"
    role: hr-manager
    sla: 2d
    on:
      approved: save
      rejected: draft
  - id: save
    kind: output
    file:
      path: "welcome/{{ trigger.name | lower }}.md"
      content: "{{ review.text }}"
"#,
        "",
    );
}

// ---------------------------------------------------------------------------------------------
// yaml-syntax, too-large: the file cannot be read

#[test]
fn yaml_syntax_unclosed_list() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes: [a
"#,
        r#"
5:1 error[yaml-syntax] the list opened with `[` at line 4, column 8 is missing its closing `]`, or a comma between two items (YAML parser: while parsing a flow sequence, expected ',' or ']')
  help: fix the YAML syntax at this position; blueprints are YAML files indented with spaces
"#,
    );
}

#[test]
fn yaml_syntax_duplicate_key() {
    check(
        r#"
id: demo
name: Demo
start: a
name: Other
nodes: []
"#,
        r#"
4:1 error[yaml-syntax] duplicate key `name` (first defined at line 2)
  help: fix the YAML syntax at this position; blueprints are YAML files indented with spaces
"#,
    );
}

#[test]
fn yaml_syntax_tab_indentation() {
    check(
        "id: demo\nname: Demo\nstart: a\nnodes:\n\t- id: a\n",
        r#"
5:1 error[yaml-syntax] YAML does not allow tabs for indentation; use spaces (YAML parser: tabs disallowed within this context (block indentation))
  help: fix the YAML syntax at this position; blueprints are YAML files indented with spaces
"#,
    );
}

#[test]
fn yaml_syntax_empty_file() {
    check(
        "# only a comment\n",
        r#"
1:1 error[yaml-syntax] the file is empty
  help: fix the YAML syntax at this position; blueprints are YAML files indented with spaces
"#,
    );
}

#[test]
fn too_large() {
    let source = format!("id: demo\n#{}\n", "x".repeat(MAX_SOURCE_BYTES));
    check(
        &source,
        r#"
1:1 error[too-large] the file is 4194315 bytes; blueprints are limited to 4194304
  help: split the process into several blueprints connected by `emit` outputs and `event` triggers
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// schema: the shape is wrong

#[test]
fn schema_root_is_not_a_mapping() {
    check(
        r#"
- id: demo
"#,
        r#"
1:1 error[schema] a blueprint must be a mapping, found a list
  help: start the file with `id:`, `name:`, `start:` and `nodes:` keys
"#,
    );
}

#[test]
fn schema_collections_of_the_wrong_kind() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers: manual
agents: [writer]
nodes:
  a: {kind: transform}
"#,
        r#"
4:11 error[schema] `triggers` must be a list, found a string
  help: write each entry of `triggers` on its own line starting with `- `
5:9 error[schema] `agents` must be a mapping of names to agents, found a list
  help: write `agents:` followed by indented `name: {provider: ..., model: ...}` entries
7:3 error[schema] `nodes` must be a list, found a mapping
  help: write each entry of `nodes` on its own line starting with `- `
"#,
    );
}

#[test]
fn schema_node_kinds() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - just a string
  - id: b
    set: {x: "1"}
  - id: c
    kind: reviw
  - id: d
    kind: 7
"#,
        r#"
5:5 error[schema] a node must be a mapping, found a string
  help: give the node `kind:` and `id:` keys
6:5 error[schema] this node has no `kind`
  help: add `kind:` with one of `retrieve`, `prompt`, `route`, `branch`, `transform`, `review`, `output`
9:11 error[schema] unknown node kind `reviw`
  help: did you mean `review`? (use one of `retrieve`, `prompt`, `route`, `branch`, `transform`, `review`, `output`)
11:11 error[schema] unknown node kind `7`
  help: use one of `retrieve`, `prompt`, `route`, `branch`, `transform`, `review`, `output`
"#,
    );
}

#[test]
fn schema_unknown_trigger_kind() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - kind: cron
    id: nightly
nodes:
  - {id: a, kind: transform, set: {x: "1"}}
"#,
        r#"
5:11 error[schema] unknown trigger kind `cron`
  help: use one of `manual`, `webhook`, `schedule`, `folder_drop`, `event`
"#,
    );
}

#[test]
fn schema_values_of_the_wrong_type() {
    check(
        r#"
id: demo
name: Demo
start: a
lifecycle:
  stage: live
nodes:
  - id: a
    kind: retrieve
    collection: faq
    query: "{{ trigger.question }}"
    top_k: many
  - id: b
    kind: transform
    set: {x: "1"}
    next: {to: a}
  - id: c
    kind: transform
    set: {x: "1"}
    join: any
"#,
        r#"
5:10 error[schema] `live` is not a valid value here
  help: use one of: draft, pilot, monitored, approved, retired
11:12 error[schema] invalid type: string "many", expected u32 (in retrieve node)
  help: see blueprints/schema.json for the expected shape
15:11 error[schema] expected a node id or a list of node ids
  help: write `next: node_id` or `next: [a, b]` to run several nodes in parallel
19:11 error[schema] `any` is not a valid value here
  help: use one of: all, each
"#,
    );
}

#[test]
fn schema_values_out_of_range() {
    check(
        r#"
id: demo
name: Demo
start: look
agents:
  writer:
    model: " "
    temperature: 3
nodes:
  - id: look
    kind: retrieve
    collection: faq
    query: refunds
    top_k: 0
    max_visits: 0
    next: [pick, fan, check]
  - id: pick
    kind: route
    rules: []
  - id: fan
    kind: branch
    branches: []
  - id: check
    kind: review
    draft: hello
    role: ""
    escalate_when: "true"
    on: {approved: send}
  - id: send
    kind: output
    http:
      url: https://example.com/hook
      method: post
      retries: 11
"#,
        r#"
6:12 error[schema] the agent's model is empty
  help: name the model, e.g. `gpt-4o-mini`
7:18 error[schema] temperature 3 is out of range
  help: use a value from 0 to 2
13:12 error[schema] top_k 0 is out of range
  help: use 1 to 100
14:17 error[schema] max_visits must be at least 1
  help: remove it, or set it to the number of passes allowed
18:12 error[schema] this route has no rules and no default
  help: add `rules:` with `name`, `when` and `to`, or a `default:`
21:15 error[schema] this branch has no paths
  help: add `branches:` entries with `to:`
25:11 error[schema] the approver role is empty
  help: name the role whose members decide, e.g. `hr-manager`
26:20 error[schema] `escalate_when` needs an escalation chain
  help: add `escalation: [role, ...]` naming who takes escalated tasks
32:15 error[schema] `post` is not a supported HTTP method
  help: use POST, PUT, PATCH, DELETE or GET (upper case)
33:16 error[schema] at most 10 retries
  help: lower `retries`
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// unknown-field, missing-field: point at the key, or at the mapping that lacks it

#[test]
fn unknown_field_in_a_node_points_at_the_key() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - id: a
    kind: transform
    set: {x: "1"}
    nxt: a
"#,
        r#"
8:5 error[unknown-field] unknown field `nxt` in transform node
  help: did you mean `next`? (a transform node accepts: id, title, set, next, max_visits, on_exhausted, join, layout)
"#,
    );
}

#[test]
fn unknown_fields_at_every_level() {
    check(
        r#"
id: demo
name: Demo
colour: red
lifecycle:
  pilot:
    groups: [sales]
start: a
triggers:
  - kind: event
    id: on-lead
    event: lead.created
    input: {type: object}
agents:
  writer:
    model: gpt-4o-mini
    top_p: 0.9
nodes:
  - id: a
    kind: output
    file:
      path: out.md
      contents: hello
"#,
        r#"
3:1 error[unknown-field] unknown field `colour` in blueprint
  help: remove it; a blueprint accepts: id, name, description, domain, lifecycle, start, triggers, agents, nodes
6:5 error[unknown-field] unknown field `groups` in `lifecycle.pilot` of the blueprint
  help: remove it; `lifecycle.pilot` accepts: roles, users
12:5 error[unknown-field] unknown field `input` in event trigger
  help: remove it; an event trigger accepts: id, event, start
16:5 error[unknown-field] unknown field `top_p` in agent
  help: remove it; an agent accepts: provider, model, system, temperature, max_tokens, permissions
22:7 error[unknown-field] unknown field `contents` in `file` of the output node
  help: did you mean `content`? (`file` accepts: path, content)
"#,
    );
}

#[test]
fn every_bad_field_of_one_element_is_reported() {
    check(
        r#"
id: demo
name: Demo
start: a
agents:
  writer: {model: gpt-4o-mini}
nodes:
  - id: a
    kind: prompt
    agnt: writer
    template: hello
    max_visits: twice
    fallbacks: [1, local]
    nxt: b
"#,
        r#"
9:5 error[unknown-field] unknown field `agnt` in prompt node
  help: did you mean `agent`? (a prompt node accepts: id, title, agent, fallbacks, template, system, fallback_text, output_schema, next, max_visits, on_exhausted, join, layout)
11:17 error[schema] invalid type: string "twice", expected u32 (in prompt node)
  help: see blueprints/schema.json for the expected shape
12:17 error[schema] invalid type: integer `1`, expected a string (in prompt node)
  help: see blueprints/schema.json for the expected shape
13:5 error[unknown-field] unknown field `nxt` in prompt node
  help: did you mean `next`? (a prompt node accepts: id, title, agent, fallbacks, template, system, fallback_text, output_schema, next, max_visits, on_exhausted, join, layout)
"#,
    );
}

#[test]
fn missing_fields_point_at_the_mapping_that_lacks_them() {
    check(
        r#"
id: demo
name: Demo
nodes:
  - id: a
    kind: review
    draft: hello
    on: {approved: b}
  - id: b
    kind: output
    file:
      path: out.md
  - kind: transform
    set: {x: "1"}
"#,
        r#"
1:1 error[missing-field] blueprint is missing the required field `start`
  help: add `start:` to this blueprint
4:5 error[missing-field] review node is missing the required field `role`
  help: add `role:` to this review node
11:7 error[missing-field] `file` of the output node is missing the required field `content`
  help: add `content:` to `file`
12:5 error[missing-field] transform node is missing the required field `id`
  help: add `id:` to this transform node
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// ids: duplicate-id, invalid-id

#[test]
fn duplicate_ids() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - {kind: manual, id: form}
  - {kind: event, id: form, event: x.done}
nodes:
  - id: a
    kind: route
    rules:
      - {name: big, when: "trigger.amount > 10", to: b}
      - {name: big, when: "trigger.amount > 100", to: b}
  - id: b
    kind: transform
    set: {x: "1"}
  - id: b
    kind: transform
    set: {y: "2"}
"#,
        r#"
6:23 error[duplicate-id] trigger id `form` is used twice (first by trigger 1)
  help: give every trigger its own id
12:16 error[duplicate-id] rule name `big` is used twice in this route
  help: give every rule its own name
16:9 error[duplicate-id] node id `b` is used twice (first by node 2)
  help: give every node its own id
"#,
    );
}

#[test]
fn invalid_ids() {
    check(
        r#"
id: Demo Process
name: Demo
start: draft-reply
triggers:
  - {kind: manual, id: "By Hand"}
nodes:
  - id: draft-reply
    kind: transform
    set: {x: "1"}
    next: vars
  - id: vars
    kind: transform
    set: {y: "2"}
"#,
        r#"
1:5 error[invalid-id] blueprint id `Demo Process` is not valid
  help: use lowercase letters, digits and dashes, starting with a letter, e.g. `hr-onboarding`
5:24 error[invalid-id] trigger id `By Hand` is not valid
  help: use lowercase letters, digits, `-` and `_`, starting with a letter; it appears in webhook URLs
7:9 error[invalid-id] node id `draft-reply` is not valid
  help: use lowercase letters, digits and `_`, starting with a letter (templates read it as `{{ draft_reply.text }}`), e.g. `draft_reply`
11:9 error[invalid-id] node id `vars` is reserved
  help: templates already use `vars`; rename the node, e.g. `vars_step`
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// references: unknown-node, unknown-agent

#[test]
fn unknown_nodes_everywhere_a_node_is_named() {
    check(
        r#"
id: demo
name: Demo
start: classfy
triggers:
  - {kind: manual, id: form, start: nowhere}
nodes:
  - id: classify
    kind: route
    rules:
      - {name: billing, when: "trigger.topic == 'billing'", to: biling}
    default: [reply, escalate]
  - id: reply
    kind: review
    draft: hello
    role: support
    max_visits: 2
    on_exhausted: give_up
    on: {approved: classify, rejected: redraft}
"#,
        r#"
3:8 error[unknown-node] no node has the id `classfy`
  help: did you mean `classify`? Or point this at the `id` of a node in `nodes`
5:37 error[unknown-node] no node has the id `nowhere`
  help: point this at the `id` of a node in `nodes`
10:65 error[unknown-node] no node has the id `biling`
  help: point this at the `id` of a node in `nodes`
11:22 error[unknown-node] no node has the id `escalate`
  help: point this at the `id` of a node in `nodes`
17:19 error[unknown-node] no node has the id `give_up`
  help: point this at the `id` of a node in `nodes`
18:40 error[unknown-node] no node has the id `redraft`
  help: point this at the `id` of a node in `nodes`
"#,
    );
}

#[test]
fn unknown_agents() {
    check(
        r#"
id: demo
name: Demo
start: a
agents:
  writer: {model: gpt-4o-mini}
nodes:
  - id: a
    kind: prompt
    agent: writr
    fallbacks: [writer, local]
    template: hello
"#,
        r#"
9:12 error[unknown-agent] no agent is named `writr`
  help: did you mean `writer`? Or define it under `agents:` or use one that is defined
10:25 error[unknown-agent] no agent is named `local`
  help: define it under `agents:` or use one that is defined
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// the graph: unreachable, unbounded-cycle, dead-end

#[test]
fn unreachable_node() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - {id: a, kind: transform, set: {x: "1"}}
  - {id: orphan, kind: transform, set: {y: "2"}}
"#,
        r#"
6:10 error[unreachable] node `orphan` can never run: no path leads to it from `start`
  help: connect it with a `next:` from another node, or remove it
"#,
    );
}

#[test]
fn a_trigger_start_makes_a_node_reachable() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - {kind: manual, id: form, start: b}
nodes:
  - {id: a, kind: transform, set: {x: "1"}}
  - {id: b, kind: transform, set: {y: "2"}}
"#,
        "",
    );
}

#[test]
fn unbounded_cycle() {
    check(
        r#"
id: demo
name: Demo
start: draft
agents:
  writer: {model: gpt-4o-mini}
nodes:
  - id: draft
    kind: prompt
    agent: writer
    template: hello
    next: review
  - id: review
    kind: review
    draft: "{{ draft.text }}"
    role: editor
    on: {rejected: draft}
"#,
        r#"
7:5 error[unbounded-cycle] the loop draft → review → draft has no bound and could run forever
  help: add `max_visits: 3` (and optionally `on_exhausted:`) to `draft`
"#,
    );
}

#[test]
fn a_cycle_bounded_anywhere_is_fine() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - {id: a, kind: transform, set: {x: "1"}, next: b}
  - {id: b, kind: transform, set: {y: "2"}, next: c}
  - {id: c, kind: transform, set: {z: "3"}, next: a, max_visits: 5}
"#,
        "",
    );
}

#[test]
fn dead_end_review_is_a_warning() {
    let source = r#"
id: demo
name: Demo
start: a
nodes:
  - id: a
    kind: review
    draft: hello
    role: editor
    on: {}
"#;
    check(
        source,
        r#"
9:9 warning[dead-end] this review leads nowhere: the run ends after the decision
  help: add `on: {approved: <node>}`
"#,
    );
    assert!(
        blueprint::check(source).blueprint.is_some(),
        "warnings do not stop a blueprint"
    );
}

// ---------------------------------------------------------------------------------------------
// templates: undefined-variable, template-syntax

#[test]
fn undefined_variables() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - kind: manual
    id: form
    input:
      type: object
      properties:
        name: {type: string}
nodes:
  - id: a
    kind: transform
    set:
      greeting: "Hello {{ trigger.nmae }}"
      run_id: "{{ run.id }} {{ run.started }}"
    next: b
  - id: b
    kind: output
    file:
      path: "{{ vars.greting }}.md"
      content: "{{ a.greeting }} {{ a.farewell }} {{ secrets.key }}"
"#,
        r#"
15:17 error[undefined-variable] `trigger.nmae` is not defined in the trigger's input
  help: did you mean `name`? add it to the trigger's `input.properties`, or fix the name (known: name)
16:15 error[undefined-variable] `run.started` is not defined in `run`
  help: use one of the listed fields (known: blueprint, id, trigger, version)
21:13 error[undefined-variable] `vars.greting` is not defined in `vars`
  help: did you mean `greeting`? set it in a `transform` node's `set:` first (known: greeting, run_id)
22:16 error[undefined-variable] `a.farewell` is not defined in the output of `a`
  help: a transform node's output has the fields listed (known: greeting, run_id)
22:16 error[undefined-variable] `secrets.key` is not defined in this blueprint
  help: templates can read `trigger`, `vars`, `run` and the id of any node (known: a, b, run, trigger, vars)
"#,
    );
}

#[test]
fn undefined_variable_in_a_condition() {
    check(
        r#"
id: demo
name: Demo
start: check
triggers:
  - kind: manual
    id: form
    input: {type: object, properties: {amount: {type: number}}}
nodes:
  - id: check
    kind: review
    draft: "Pay {{ trigger.amount }}?"
    role: finance
    auto_approve_when: trigger.ammount < 1000
    on: {}
"#,
        r#"
13:24 error[undefined-variable] `trigger.ammount` is not defined in the trigger's input
  help: did you mean `amount`? add it to the trigger's `input.properties`, or fix the name (known: amount)
14:9 warning[dead-end] this review leads nowhere: the run ends after the decision
  help: add `on: {approved: <node>}`
"#,
    );
}

#[test]
fn template_builtins_and_local_names_are_not_undefined() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - id: a
    kind: transform
    set:
      loops: "{% for i in range(3) %}{{ loop.index }}{{ i }}{% endfor %}"
      local: "{% set who = trigger.name %}{{ who }}"
      ns: "{% set ns = namespace(n=0) %}{{ ns.n }}{{ dict(a=1).a }}"
      macro: "{% macro hi(x) %}hi {{ x }}{% endmacro %}{{ hi(trigger.name) }}"
      fallback: "{{ trigger.url | default('http://localhost:8787') }}"
"#,
        "",
    );
}

#[test]
fn template_syntax() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - id: a
    kind: route
    rules:
      - {name: big, when: "trigger.amount >", to: b}
    default: b
  - id: b
    kind: transform
    set:
      text: |
        Dear {{ trigger.name }},
        {% if trigger.vip %}
        thanks
"#,
        r#"
8:27 error[template-syntax] this condition does not parse: syntax error: unexpected end of input, expected expression (line 1 of the condition)
  help: templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`
14:9 error[template-syntax] this template does not parse: syntax error: unexpected end of input, expected end of block (line 2 of the template)
  help: templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`
"#,
    );
}

#[test]
fn unknown_filters_and_tests_are_found_before_the_run() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - id: a
    kind: transform
    set:
      fine: "{{ trigger.name | default('a | b') | upper }}{% if trigger.x is not none %}{% endif %}{% raw %}{{ x | nope }}{% endraw %}"
      filter: "{{ trigger.name | lowercase }}"
      block: |
        Dear {{ trigger.name }},
        {% filter upercase %}thanks{% endfilter %}
      test: "{% if trigger.amount is big %}big{% endif %}"
    next: b
  - id: b
    kind: route
    rules:
      - {name: big, when: "trigger.amount | abs > 10 and trigger.kind is strng", to: a}
    max_visits: 2
"#,
        r#"
9:15 error[template-syntax] this template is not valid: unknown filter: `lowercase` is not a filter here (line 1 of the template)
  help: templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`
11:9 error[template-syntax] this template is not valid: unknown filter: `upercase` is not a filter here (line 2 of the template)
  help: templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`
13:13 error[template-syntax] this template is not valid: unknown test: `big` is not a test here (line 1 of the template)
  help: templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`
18:27 error[template-syntax] this condition is not valid: unknown test: `strng` is not a test here (line 1 of the condition)
  help: templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// triggers: invalid-cron, invalid-schema, invalid-path, invalid-env

#[test]
fn invalid_cron() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - kind: schedule
    id: nightly
    cron: "0 25 * * *"
nodes:
  - {id: a, kind: transform, set: {x: "1"}}
"#,
        r#"
7:11 error[invalid-cron] `0 25 * * *` is not a valid cron expression: Component error: Number out of bounds.
  help: use 5 fields `minute hour day-of-month month day-of-week`, e.g. `0 9 * * MON-FRI` for 09:00 on weekdays
"#,
    );
}

#[test]
fn invalid_schema_points_into_the_schema() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - kind: manual
    id: form
    input:
      type: object
      properties:
        name: {type: text}
agents:
  writer: {model: gpt-4o-mini}
nodes:
  - id: a
    kind: prompt
    agent: writer
    template: hello
    output_schema:
      type: object
      required: category
"#,
        r#"
10:22 error[invalid-schema] the input schema is not a valid JSON Schema: "text" is not valid under any of the schemas listed in the 'anyOf' keyword
  help: fix the schema; see https://json-schema.org/understanding-json-schema
20:17 error[invalid-schema] the output schema is not a valid JSON Schema: "category" is not of type "array"
  help: fix the schema; see https://json-schema.org/understanding-json-schema
"#,
    );
}

#[test]
fn invalid_paths() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - {kind: folder_drop, id: inbox, path: ../outside}
nodes:
  - id: a
    kind: output
    file: {path: /etc/motd, content: hi}
    next: b
  - id: b
    kind: output
    dataset:
      path: "data/../../ledger.jsonl"
      record: {x: "1"}
"#,
        r#"
5:42 error[invalid-path] folder `../outside` must be a relative path inside the project
  help: use a path like `inbox/invoices`; `..` is not allowed
9:18 error[invalid-path] `/etc/motd` must stay inside the outputs folder
  help: use a relative path without `..`, e.g. `welcome/{{ trigger.name }}.md`
14:13 error[invalid-path] `data/../../ledger.jsonl` must stay inside the outputs folder
  help: use a relative path without `..`, e.g. `welcome/{{ trigger.name }}.md`
"#,
    );
}

#[test]
fn invalid_env() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - kind: webhook
    id: hook
    secret_env: "s3cr3t-value!"
nodes:
  - {id: a, kind: transform, set: {x: "1"}}
"#,
        r#"
7:17 error[invalid-env] `s3cr3t-value!` is not an environment variable name
  help: name the variable that holds the secret, e.g. `HRMS_WEBHOOK_SECRET` (never the secret itself)
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// review and output nodes: invalid-duration, output-target

#[test]
fn invalid_durations() {
    for (sla, message) in [
        ("4 hours", "`4 hours` has no known unit"),
        ("soon", "`soon` is not a duration"),
        ("0h", "`0h` is out of range"),
        ("99999999999w", "`99999999999w` is out of range"),
    ] {
        let source = format!(
            "id: demo\nname: Demo\nstart: a\nnodes:\n  - id: a\n    kind: review\n    draft: hi\n    role: x\n    sla: {sla}\n    on: {{approved: a}}\n    max_visits: 1\n"
        );
        check(
            &source,
            &format!(
                "9:10 error[invalid-duration] {message}\n  help: write a number and a unit: `30m`, `4h`, `2d` or `1w`"
            ),
        );
    }
}

#[test]
fn output_needs_exactly_one_target() {
    check(
        r#"
id: demo
name: Demo
start: a
nodes:
  - id: a
    kind: output
    next: b
  - id: b
    kind: output
    file: {path: out.md, content: hi}
    emit: {event: done}
"#,
        r#"
5:5 error[output-target] an output needs exactly one of `file`, `http`, `dataset`, `emit`; this one has 0
  help: split it into several output nodes, one per target
8:5 error[output-target] an output needs exactly one of `file`, `http`, `dataset`, `emit`; this one has 2
  help: split it into several output nodes, one per target
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Several mistakes at once

#[test]
fn every_semantic_problem_is_reported_at_once_in_file_order() {
    check(
        r#"
id: demo
name: Demo
start: draft
agents:
  writer: {model: gpt-4o-mini}
nodes:
  - id: draft
    kind: prompt
    agent: writter
    template: "{{ trigger.name }"
    next: review
  - id: review
    kind: review
    draft: "{{ draft.txt }}"
    role: editor
    sla: soon
    on: {approved: sned}
"#,
        r#"
9:12 error[unknown-agent] no agent is named `writter`
  help: did you mean `writer`? Or define it under `agents:` or use one that is defined
10:15 error[template-syntax] this template does not parse: syntax error: unexpected `}`, expected end of variable block (line 1 of the template)
  help: templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`
14:12 error[undefined-variable] `draft.txt` is not defined in the output of `draft`
  help: did you mean `text`? a prompt node's output has the fields listed (known: agent, attempts, fallback_used, json, model, text, tokens)
16:10 error[invalid-duration] `soon` is not a duration
  help: write a number and a unit: `30m`, `4h`, `2d` or `1w`
17:20 error[unknown-node] no node has the id `sned`
  help: point this at the `id` of a node in `nodes`
"#,
    );
}

#[test]
fn every_shape_problem_is_reported_at_once() {
    check(
        r#"
id: demo
name: Demo
start: a
triggers:
  - {kind: manul, id: form}
  - {kind: schedule, id: nightly}
agents:
  writer: {modle: gpt-4o-mini}
nodes:
  - {id: a, kind: prompt, agnt: writer, template: hi}
  - {id: b, kind: review, draft: hi, on: {}}
"#,
        r#"
5:12 error[schema] unknown trigger kind `manul`
  help: did you mean `manual`? (use one of `manual`, `webhook`, `schedule`, `folder_drop`, `event`)
6:5 error[missing-field] schedule trigger is missing the required field `cron`
  help: add `cron:` to this schedule trigger
8:12 error[unknown-field] unknown field `modle` in agent
  help: did you mean `model`? (an agent accepts: provider, model, system, temperature, max_tokens, permissions)
10:27 error[unknown-field] unknown field `agnt` in prompt node
  help: did you mean `agent`? (a prompt node accepts: id, title, agent, fallbacks, template, system, fallback_text, output_schema, next, max_visits, on_exhausted, join, layout)
11:5 error[missing-field] review node is missing the required field `role`
  help: add `role:` to this review node
"#,
    );
}

#[test]
fn display_names_file_line_and_column() {
    let checked = blueprint::check("id: demo\nname: Demo\nstart: nowhere\nnodes: []\n");
    let shown: Vec<String> = checked
        .diagnostics
        .iter()
        .map(|d| d.display_in("blueprints/demo.yaml").to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "blueprints/demo.yaml:3:8: error[unknown-node]: no node has the id `nowhere`\n  help: point this at the `id` of a node in `nodes`"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Versions

const HASHED: &str = r#"
id: demo
name: Demo
start: a
agents:
  writer: {model: gpt-4o-mini}
nodes:
  - id: a
    kind: prompt
    agent: writer
    template: "Hello {{ trigger.name }}"
"#;

fn hash(source: &str) -> String {
    let checked = blueprint::check(source);
    let bp = checked
        .blueprint
        .unwrap_or_else(|| panic!("{:?}", checked.diagnostics));
    version_hash(&bp)
}

#[test]
fn version_hash_ignores_formatting_comments_key_order_and_spelt_out_defaults() {
    let base = hash(HASHED);
    for same in [
        // Comments and blank lines.
        "# the demo\nid: demo\n\nname: Demo # shown in the inbox\nstart: a\nagents:\n  writer: {model: gpt-4o-mini}\nnodes:\n  - id: a\n    kind: prompt\n    agent: writer\n    template: \"Hello {{ trigger.name }}\"\n",
        // Key order, flow style, other quoting.
        "nodes:\n  - {template: 'Hello {{ trigger.name }}', agent: writer, kind: prompt, id: a}\nagents: {writer: {model: gpt-4o-mini}}\nstart: a\nname: \"Demo\"\nid: demo\n",
        // Defaults written out.
        "id: demo\nname: Demo\ndescription: ''\nstart: a\ntriggers: []\nagents:\n  writer: {provider: default, model: gpt-4o-mini}\nnodes:\n  - id: a\n    kind: prompt\n    agent: writer\n    template: \"Hello {{ trigger.name }}\"\n    join: all\n",
    ] {
        assert_eq!(hash(same), base, "{same}");
    }
}

#[test]
fn version_hash_changes_with_content() {
    let base = hash(HASHED);
    let mut seen = vec![base.clone()];
    for (from, to) in [
        ("name: Demo", "name: Demo 2"),
        ("Hello {{", "Hi {{"),
        ("model: gpt-4o-mini", "model: gpt-4o"),
        ("template:", "max_visits: 2\n    template:"),
    ] {
        let changed = HASHED.replace(from, to);
        assert_ne!(changed, HASHED);
        let h = hash(&changed);
        assert!(
            !seen.contains(&h),
            "`{from}` → `{to}` gave a hash already seen"
        );
        seen.push(h);
    }
    assert_eq!(base.len(), 64, "hex SHA-256");
}

// ---------------------------------------------------------------------------------------------
// Hostile input never panics

const MUTATED: &str = r#"id: demo
name: Demo
start: draft
triggers:
  - kind: manual
    id: form
    input: {type: object, properties: {name: {type: string}}}
  - {kind: schedule, id: weekly, cron: "0 9 * * MON"}
agents:
  writer: {provider: default, model: gpt-4o-mini}
nodes:
  - id: draft
    kind: prompt
    agent: writer
    template: "Hello {{ trigger.name }}"
    max_visits: 2
    next: [review, log]
  - id: review
    kind: review
    draft: "{{ draft.text }}"
    role: editor
    sla: 4h
    on: {approved: pick, rejected: draft}
  - id: pick
    kind: route
    rules:
      - {name: long, when: "review.text | length > 10", to: save}
    default: save
  - id: log
    kind: output
    dataset: {path: log.jsonl, record: {text: "{{ draft.text }}"}}
  - id: save
    kind: output
    file: {path: "out/{{ run.id }}.md", content: "{{ review.text }}"}
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let source = String::from_utf8_lossy(&bytes);
        assert_invariants(&source, &blueprint::check(&source));
    }

    #[test]
    fn yaml_like_text_never_panics(source in "[a-z_:{}\\[\\],'\"|>&*!#@ \\n-]{0,256}") {
        assert_invariants(&source, &blueprint::check(&source));
    }

    #[test]
    fn mutated_blueprints_never_panic(
        edits in proptest::collection::vec((0usize..4, any::<proptest::sample::Index>(), any::<proptest::sample::Index>(), any::<char>()), 1..6)
    ) {
        let mut lines: Vec<String> = MUTATED.lines().map(str::to_owned).collect();
        for (op, a, b, c) in edits {
            if lines.is_empty() {
                break;
            }
            let i = a.index(lines.len());
            let j = b.index(lines.len());
            match op {
                0 => { lines.remove(i); }
                1 => { let line = lines[i].clone(); lines.insert(j, line); }
                2 => lines.swap(i, j),
                _ => {
                    let line = &mut lines[i];
                    let at = line.char_indices().map(|(k, _)| k).nth(b.index(line.chars().count() + 1)).unwrap_or(line.len());
                    line.insert(at, c);
                }
            }
        }
        let source = lines.join("\n");
        assert_invariants(&source, &blueprint::check(&source));
    }
}

#[test]
fn the_mutation_seed_is_valid() {
    check(MUTATED, "");
}

#[test]
fn retrieve_filters_and_token_budgets() {
    check(
        r#"
id: demo
name: Demo
start: look
nodes:
  - id: look
    kind: retrieve
    collection: faq
    query: refunds
    filter: "policies/*.md"
    max_tokens: 1500
    next: [bad, worse]
  - id: bad
    kind: retrieve
    collection: faq
    query: refunds
    filter: "../secrets/*"
    max_tokens: 0
  - id: worse
    kind: retrieve
    collection: faq
    query: "{{ look.mode }} {{ look.snippets }}"
    filter: "[ab].md"
"#,
        r#"
16:13 error[invalid-filter] filter `../secrets/*` is not valid: `..` never appears in a source
  help: a glob over sources relative to the ingested folder, e.g. `policies/*.md` or `*.pdf`
17:17 error[schema] max_tokens must be at least 1
  help: remove it for no budget, or set the tokens the passages may use, e.g. `max_tokens: 1500`
22:13 error[invalid-filter] filter `[ab].md` is not valid: `[` and `]` are not supported in filters; use `*` and `?`
  help: a glob over sources relative to the ingested folder, e.g. `policies/*.md` or `*.pdf`
"#,
    );
}
