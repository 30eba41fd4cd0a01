//! Semantic checks a designer can act on: references, reachability, cycles, templates, cron.

use std::collections::{BTreeSet, HashMap};

use petgraph::graph::DiGraph;
use serde_json::Value;

use super::load::escape;
use super::model::{Blueprint, Node, Trigger};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::template;

/// Names templates can read besides node ids.
pub const RESERVED_ROOTS: &[&str] = &[
    "trigger", "vars", "run", "loop", "self", "range", "true", "false", "none",
];

/// Fields each node kind's output offers to later templates.
pub fn output_fields(node: &Node) -> Vec<String> {
    let fixed: &[&str] = match node {
        Node::Retrieve(_) => &["passages", "text", "memory", "query", "snippets", "mode"],
        Node::Prompt(_) => &[
            "text",
            "json",
            "model",
            "agent",
            "tokens",
            "fallback_used",
            "attempts",
        ],
        Node::Route(_) => &["rule"],
        Node::Branch(_) => &["paths"],
        Node::Transform(t) => return t.set.keys().cloned().collect(),
        Node::Review(_) => &[
            "decision", "text", "draft", "reason", "by", "edited", "path", "task",
        ],
        Node::Output(_) => &["status", "location", "idempotency_key"],
    };
    fixed.iter().map(|s| (*s).to_owned()).collect()
}

const RUN_FIELDS: &[&str] = &["id", "blueprint", "version", "trigger"];

/// All semantic problems of a parsed blueprint, in file order.
pub fn validate(bp: &Blueprint) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let ctx = Context::new(bp);

    if !is_blueprint_id(&bp.id) {
        out.push(
            Diagnostic::error("invalid-id", "/id", format!("blueprint id `{}` is not valid", bp.id))
                .help("use lowercase letters, digits and dashes, starting with a letter, e.g. `hr-onboarding`"),
        );
    }
    check_ids(bp, &mut out);
    check_start(bp, &ctx, &mut out);
    check_triggers(bp, &ctx, &mut out);
    check_agents(bp, &mut out);
    for (i, node) in bp.nodes.iter().enumerate() {
        check_node(i, node, bp, &ctx, &mut out);
    }
    if !out
        .iter()
        .any(|d| d.code == "unknown-node" || d.code == "duplicate-id")
    {
        check_graph(bp, &ctx, &mut out);
    }
    out.sort_by_key(|d| pointer_order(&d.pointer));
    out
}

/// Sort key that keeps `/nodes/10` after `/nodes/9`.
fn pointer_order(pointer: &str) -> Vec<(u64, String)> {
    pointer
        .split('/')
        .map(|s| {
            s.parse::<u64>()
                .map_or((u64::MAX, s.to_owned()), |n| (n, String::new()))
        })
        .collect()
}

struct Context<'a> {
    index: HashMap<&'a str, usize>,
    vars: BTreeSet<String>,
    trigger_fields: Option<BTreeSet<String>>,
}

impl<'a> Context<'a> {
    fn new(bp: &'a Blueprint) -> Self {
        let mut index = HashMap::new();
        for (i, n) in bp.nodes.iter().enumerate() {
            index.entry(n.id()).or_insert(i);
        }
        let vars = bp
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Transform(t) => Some(t.set.keys().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        Self {
            index,
            vars,
            trigger_fields: trigger_fields(bp),
        }
    }

    fn node_ids(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.index.keys().copied()
    }

    fn unknown_node(&self, target: &str, pointer: String) -> Diagnostic {
        let mut help = "point this at the `id` of a node in `nodes`".to_owned();
        if let Some(hint) = did_you_mean(target, self.node_ids()) {
            help = format!("{hint} Or {help}");
        }
        Diagnostic::error(
            "unknown-node",
            pointer,
            format!("no node has the id `{target}`"),
        )
        .help(help)
    }
}

/// Payload fields every trigger declares, when all triggers declare their input's properties.
fn trigger_fields(bp: &Blueprint) -> Option<BTreeSet<String>> {
    let mut fields = BTreeSet::new();
    for t in &bp.triggers {
        match t {
            Trigger::Schedule(s) => {
                fields.insert("scheduled_at".to_owned());
                if let Some(Value::Object(p)) = &s.payload {
                    fields.extend(p.keys().cloned());
                }
            }
            Trigger::FolderDrop(_) => {
                return None;
            }
            Trigger::Event(_) => return None,
            Trigger::Manual(_) | Trigger::Webhook(_) => {
                let props = t
                    .input_schema()
                    .and_then(|s| s.get("properties"))
                    .and_then(Value::as_object)?;
                fields.extend(props.keys().cloned());
            }
        }
    }
    if bp.triggers.is_empty() {
        None
    } else {
        Some(fields)
    }
}

pub fn is_blueprint_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub fn is_node_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_ids(bp: &Blueprint, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, node) in bp.nodes.iter().enumerate() {
        let id = node.id();
        let pointer = format!("/nodes/{i}/id");
        if !is_node_id(id) {
            let suggestion = id.to_ascii_lowercase().replace(['-', ' '], "_");
            out.push(
                Diagnostic::error("invalid-id", pointer.clone(), format!("node id `{id}` is not valid"))
                    .help(format!("use lowercase letters, digits and `_`, starting with a letter (templates read it as `{{{{ {suggestion}.text }}}}`), e.g. `{suggestion}`")),
            );
        } else if RESERVED_ROOTS.contains(&id) {
            out.push(
                Diagnostic::error(
                    "invalid-id",
                    pointer.clone(),
                    format!("node id `{id}` is reserved"),
                )
                .help(format!(
                    "templates already use `{id}`; rename the node, e.g. `{id}_step`"
                )),
            );
        }
        if let Some(first) = seen.insert(id, i) {
            out.push(
                Diagnostic::error(
                    "duplicate-id",
                    pointer,
                    format!(
                        "node id `{id}` is used twice (first by node {} )",
                        first + 1
                    )
                    .replace(" )", ")"),
                )
                .help("give every node its own id"),
            );
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, t) in bp.triggers.iter().enumerate() {
        if let Some(first) = seen.insert(t.id(), i) {
            out.push(
                Diagnostic::error(
                    "duplicate-id",
                    format!("/triggers/{i}/id"),
                    format!(
                        "trigger id `{}` is used twice (first by trigger {})",
                        t.id(),
                        first + 1
                    ),
                )
                .help("give every trigger its own id"),
            );
        }
        if !is_blueprint_id(t.id()) && !is_node_id(t.id()) {
            out.push(
                Diagnostic::error("invalid-id", format!("/triggers/{i}/id"), format!("trigger id `{}` is not valid", t.id()))
                    .help("use lowercase letters, digits, `-` and `_`, starting with a letter; it appears in webhook URLs"),
            );
        }
    }
}

fn check_start(bp: &Blueprint, ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    if !ctx.index.contains_key(bp.start.as_str()) {
        out.push(ctx.unknown_node(&bp.start, "/start".to_owned()));
    }
}

fn check_triggers(bp: &Blueprint, ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for (i, t) in bp.triggers.iter().enumerate() {
        let base = format!("/triggers/{i}");
        if let Some(start) = t.start()
            && !ctx.index.contains_key(start)
        {
            out.push(ctx.unknown_node(start, format!("{base}/start")));
        }
        if let Some(schema) = t.input_schema()
            && let Err(err) = jsonschema::validator_for(schema)
        {
            out.push(
                Diagnostic::error(
                    "invalid-schema",
                    format!("{base}/input{}", err.instance_path.as_str()),
                    format!("the input schema is not a valid JSON Schema: {err}"),
                )
                .help("fix the schema; see https://json-schema.org/understanding-json-schema"),
            );
        }
        match t {
            Trigger::Schedule(s) => {
                if let Err(err) = crate::schedule::parse_cron(&s.cron) {
                    out.push(
                        Diagnostic::error("invalid-cron", format!("{base}/cron"), format!("`{}` is not a valid cron expression: {err}", s.cron))
                            .help("use 5 fields `minute hour day-of-month month day-of-week`, e.g. `0 9 * * MON-FRI` for 09:00 on weekdays"),
                    );
                }
            }
            Trigger::FolderDrop(f) => {
                if f.path.trim().is_empty() || f.path.split(['/', '\\']).any(|s| s == "..") {
                    out.push(
                        Diagnostic::error(
                            "invalid-path",
                            format!("{base}/path"),
                            format!(
                                "folder `{}` must be a relative path inside the project",
                                f.path
                            ),
                        )
                        .help("use a path like `inbox/invoices`; `..` is not allowed"),
                    );
                }
            }
            Trigger::Webhook(w) => {
                if let Some(env) = &w.secret_env
                    && (env.is_empty()
                        || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                {
                    out.push(
                        Diagnostic::error("invalid-env", format!("{base}/secret_env"), format!("`{env}` is not an environment variable name"))
                            .help("name the variable that holds the secret, e.g. `HRMS_WEBHOOK_SECRET` (never the secret itself)"),
                    );
                }
            }
            Trigger::Manual(_) | Trigger::Event(_) => {}
        }
    }
}

fn check_agents(bp: &Blueprint, out: &mut Vec<Diagnostic>) {
    for (name, agent) in &bp.agents {
        let base = format!("/agents/{}", escape(name));
        if agent.model.trim().is_empty() {
            out.push(
                Diagnostic::error(
                    "schema",
                    format!("{base}/model"),
                    "the agent's model is empty",
                )
                .help("name the model, e.g. `gpt-4o-mini`"),
            );
        }
        if let Some(t) = agent.temperature
            && !(0.0..=2.0).contains(&t)
        {
            out.push(
                Diagnostic::error(
                    "schema",
                    format!("{base}/temperature"),
                    format!("temperature {t} is out of range"),
                )
                .help("use a value from 0 to 2"),
            );
        }
    }
}

fn check_node(i: usize, node: &Node, bp: &Blueprint, ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let base = format!("/nodes/{i}");
    for edge in node.edges() {
        if !ctx.index.contains_key(edge.target) {
            out.push(ctx.unknown_node(edge.target, format!("{base}{}", edge.field)));
        }
    }
    if let Some(0) = node.common().max_visits {
        out.push(
            Diagnostic::error(
                "schema",
                format!("{base}/max_visits"),
                "max_visits must be at least 1",
            )
            .help("remove it, or set it to the number of passes allowed"),
        );
    }
    let mut templates: Vec<(String, &str)> = Vec::new();
    let mut expressions: Vec<(String, &str)> = Vec::new();
    match node {
        Node::Retrieve(n) => {
            templates.push((format!("{base}/query"), &n.query));
            if let Some(m) = &n.memory {
                templates.push((format!("{base}/memory/subject"), &m.subject));
            }
            if n.top_k == 0 || n.top_k > 100 {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("{base}/top_k"),
                        format!("top_k {} is out of range", n.top_k),
                    )
                    .help("use 1 to 100"),
                );
            }
            if let Some(filter) = &n.filter
                && let Err(problem) = crate::knowledge::check_source_filter(filter)
            {
                out.push(
                    Diagnostic::error(
                        "invalid-filter",
                        format!("{base}/filter"),
                        format!("filter `{filter}` is not valid: {problem}"),
                    )
                    .help("a glob over sources relative to the ingested folder, e.g. `policies/*.md` or `*.pdf`"),
                );
            }
            if n.max_tokens == Some(0) {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("{base}/max_tokens"),
                        "max_tokens must be at least 1",
                    )
                    .help("remove it for no budget, or set the tokens the passages may use, e.g. `max_tokens: 1500`"),
                );
            }
        }
        Node::Prompt(n) => {
            for (j, agent) in std::iter::once(&n.agent).chain(&n.fallbacks).enumerate() {
                if !bp.agents.contains_key(agent) {
                    let pointer = if j == 0 {
                        format!("{base}/agent")
                    } else {
                        format!("{base}/fallbacks/{}", j - 1)
                    };
                    let mut help =
                        "define it under `agents:` or use one that is defined".to_owned();
                    if let Some(hint) = did_you_mean(agent, bp.agents.keys().map(String::as_str)) {
                        help = format!("{hint} Or {help}");
                    }
                    out.push(
                        Diagnostic::error(
                            "unknown-agent",
                            pointer,
                            format!("no agent is named `{agent}`"),
                        )
                        .help(help),
                    );
                }
            }
            templates.push((format!("{base}/template"), &n.template));
            if let Some(s) = &n.system {
                templates.push((format!("{base}/system"), s));
            }
            if let Some(s) = &n.fallback_text {
                templates.push((format!("{base}/fallback_text"), s));
            }
            if let Some(schema) = &n.output_schema
                && let Err(err) = jsonschema::validator_for(schema)
            {
                out.push(
                    Diagnostic::error(
                        "invalid-schema",
                        format!("{base}/output_schema{}", err.instance_path.as_str()),
                        format!("the output schema is not a valid JSON Schema: {err}"),
                    )
                    .help("fix the schema; see https://json-schema.org/understanding-json-schema"),
                );
            }
        }
        Node::Route(n) => {
            if n.rules.is_empty() && n.default.is_empty() {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("{base}/rules"),
                        "this route has no rules and no default",
                    )
                    .help("add `rules:` with `name`, `when` and `to`, or a `default:`"),
                );
            }
            let mut names = BTreeSet::new();
            for (j, rule) in n.rules.iter().enumerate() {
                if !names.insert(rule.name.as_str()) {
                    out.push(
                        Diagnostic::error(
                            "duplicate-id",
                            format!("{base}/rules/{j}/name"),
                            format!("rule name `{}` is used twice in this route", rule.name),
                        )
                        .help("give every rule its own name"),
                    );
                }
                expressions.push((format!("{base}/rules/{j}/when"), &rule.when));
            }
        }
        Node::Branch(n) => {
            if n.branches.is_empty() {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("{base}/branches"),
                        "this branch has no paths",
                    )
                    .help("add `branches:` entries with `to:`"),
                );
            }
            for (j, path) in n.branches.iter().enumerate() {
                if let Some(w) = &path.when {
                    expressions.push((format!("{base}/branches/{j}/when"), w));
                }
            }
        }
        Node::Transform(n) => {
            for (k, v) in &n.set {
                templates.push((format!("{base}/set/{}", escape(k)), v));
            }
        }
        Node::Review(n) => {
            templates.push((format!("{base}/draft"), &n.draft));
            for (j, t) in n.not_by.iter().enumerate() {
                templates.push((format!("{base}/not_by/{j}"), t));
            }
            if n.quorum.is_some_and(|q| q == 0 || q > 50) {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("{base}/quorum"),
                        "a quorum must be between 1 and 50 approvals",
                    )
                    .help(
                        "set `quorum:` to how many different people must approve, e.g. `quorum: 2`",
                    ),
                );
            }
            if let Some(t) = &n.task_title {
                templates.push((format!("{base}/task_title"), t));
            }
            if let Some(e) = &n.auto_approve_when {
                expressions.push((format!("{base}/auto_approve_when"), e));
            }
            if let Some(e) = &n.escalate_when {
                expressions.push((format!("{base}/escalate_when"), e));
                if n.escalation.is_empty() {
                    out.push(
                        Diagnostic::error(
                            "schema",
                            format!("{base}/escalate_when"),
                            "`escalate_when` needs an escalation chain",
                        )
                        .help("add `escalation: [role, ...]` naming who takes escalated tasks"),
                    );
                }
            }
            if n.role.trim().is_empty() {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("{base}/role"),
                        "the approver role is empty",
                    )
                    .help("name the role whose members decide, e.g. `hr-manager`"),
                );
            }
            if let Some(sla) = &n.sla
                && let Err(err) = super::parse_duration(sla)
            {
                out.push(
                    Diagnostic::error("invalid-duration", format!("{base}/sla"), err)
                        .help("write a number and a unit: `30m`, `4h`, `2d` or `1w`"),
                );
            }
            check_sla_policy(n, &base, out);
            if n.on.approved.is_empty() && n.on.rejected.is_empty() && n.on.escalated.is_empty() {
                out.push(
                    Diagnostic::warning(
                        "dead-end",
                        format!("{base}/on"),
                        "this review leads nowhere: the run ends after the decision",
                    )
                    .help("add `on: {approved: <node>}`"),
                );
            }
        }
        Node::Output(n) => {
            let count = [
                n.file.is_some(),
                n.http.is_some(),
                n.dataset.is_some(),
                n.emit.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if count != 1 {
                out.push(
                    Diagnostic::error("output-target", base.clone(), format!("an output needs exactly one of `file`, `http`, `dataset`, `emit`; this one has {count}"))
                        .help("split it into several output nodes, one per target"),
                );
            }
            if let Some(f) = &n.file {
                templates.push((format!("{base}/file/path"), &f.path));
                templates.push((format!("{base}/file/content"), &f.content));
                check_relative(&f.path, &format!("{base}/file/path"), out);
            }
            if let Some(h) = &n.http {
                templates.push((format!("{base}/http/url"), &h.url));
                for (k, v) in &h.headers {
                    templates.push((format!("{base}/http/headers/{}", escape(k)), v));
                }
                if let Some(b) = &h.body {
                    templates.push((format!("{base}/http/body"), b));
                }
                for (k, v) in &h.secret_headers {
                    if crate::secrets::env_refs(v).is_empty() {
                        out.push(
                            Diagnostic::error("invalid-env", format!("{base}/http/secret_headers/{}", escape(k)), format!("secret header `{k}` names no environment variable"))
                                .help("write the variable as `$NAME`, e.g. `Bearer $NOTES_API_TOKEN`; never put the secret itself in a blueprint"),
                        );
                    }
                    if h.headers.contains_key(k) {
                        out.push(
                            Diagnostic::error(
                                "duplicate-id",
                                format!("{base}/http/secret_headers/{}", escape(k)),
                                format!(
                                    "header `{k}` is set in both `headers` and `secret_headers`"
                                ),
                            )
                            .help("keep it in one of them"),
                        );
                    }
                }
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&h.method.as_str()) {
                    out.push(
                        Diagnostic::error(
                            "schema",
                            format!("{base}/http/method"),
                            format!("`{}` is not a supported HTTP method", h.method),
                        )
                        .help("use POST, PUT, PATCH, DELETE or GET (upper case)"),
                    );
                }
                if h.retries > 10 {
                    out.push(
                        Diagnostic::error(
                            "schema",
                            format!("{base}/http/retries"),
                            "at most 10 retries",
                        )
                        .help("lower `retries`"),
                    );
                }
            }
            if let Some(d) = &n.dataset {
                templates.push((format!("{base}/dataset/path"), &d.path));
                check_relative(&d.path, &format!("{base}/dataset/path"), out);
                for (k, v) in &d.record {
                    templates.push((format!("{base}/dataset/record/{}", escape(k)), v));
                }
            }
            if let Some(e) = &n.emit {
                for (k, v) in &e.payload {
                    templates.push((format!("{base}/emit/payload/{}", escape(k)), v));
                }
            }
        }
    }
    for (pointer, source) in templates {
        match template::referenced_variables(source) {
            Ok(vars) => check_variables(&vars, &pointer, bp, ctx, out),
            Err(err) => out.push(template_error(&pointer, "template", &err)),
        }
    }
    for (pointer, source) in expressions {
        match template::expression_variables(source) {
            Ok(vars) => check_variables(&vars, &pointer, bp, ctx, out),
            Err(err) => out.push(template_error(&pointer, "condition", &err)),
        }
    }
}

fn template_error(pointer: &str, what: &str, err: &template::TemplateError) -> Diagnostic {
    let at = err
        .line
        .map(|l| format!(" (line {l} of the {what})"))
        .unwrap_or_default();
    let problem = if err.message.starts_with("syntax error") {
        "does not parse"
    } else {
        "is not valid"
    };
    Diagnostic::error("template-syntax", pointer, format!("this {what} {problem}: {}{at}", err.message))
        .help("templates use Jinja syntax: `{{ trigger.name }}`, `{% if ... %}...{% endif %}`; conditions are expressions like `trigger.amount > 1000`")
}

fn check_relative(path: &str, pointer: &str, out: &mut Vec<Diagnostic>) {
    if path.starts_with('/') || path.starts_with('\\') || path.split(['/', '\\']).any(|s| s == "..")
    {
        out.push(
            Diagnostic::error(
                "invalid-path",
                pointer,
                format!("`{path}` must stay inside the outputs folder"),
            )
            .help("use a relative path without `..`, e.g. `welcome/{{ trigger.name }}.md`"),
        );
    }
}

fn check_variables(
    vars: &BTreeSet<String>,
    pointer: &str,
    bp: &Blueprint,
    ctx: &Context<'_>,
    out: &mut Vec<Diagnostic>,
) {
    for var in vars {
        let mut parts = var.splitn(3, '.');
        let root = parts.next().unwrap_or_default();
        let field = parts.next();
        let problem = match (root, field) {
            ("trigger", Some(f)) => ctx
                .trigger_fields
                .as_ref()
                .filter(|fields| !fields.contains(f))
                .map(|fields| {
                    undefined(
                        var,
                        "the trigger's input",
                        fields.iter().map(String::as_str),
                        "add it to the trigger's `input.properties`, or fix the name",
                    )
                }),
            ("trigger", None) => None,
            ("vars", Some(f)) => (!ctx.vars.contains(f)).then(|| {
                undefined(
                    var,
                    "`vars`",
                    ctx.vars.iter().map(String::as_str),
                    "set it in a `transform` node's `set:` first",
                )
            }),
            ("vars", None) => None,
            ("run", Some(f)) => (!RUN_FIELDS.contains(&f)).then(|| {
                undefined(
                    var,
                    "`run`",
                    RUN_FIELDS.iter().copied(),
                    "use one of the listed fields",
                )
            }),
            ("run", None) => None,
            (node_id, field) => match ctx.index.get(node_id) {
                None => Some(undefined(
                    var,
                    "this blueprint",
                    ctx.node_ids().chain(["trigger", "vars", "run"]),
                    "templates can read `trigger`, `vars`, `run` and the id of any node",
                )),
                Some(&i) => field.and_then(|f| {
                    let fields = output_fields(&bp.nodes[i]);
                    (!fields.iter().any(|x| x == f)).then(|| {
                        undefined(
                            var,
                            &format!("the output of `{node_id}`"),
                            fields.iter().map(String::as_str),
                            &format!(
                                "a {} node's output has the fields listed",
                                bp.nodes[i].kind_name()
                            ),
                        )
                    })
                }),
            },
        };
        if let Some((message, help)) = problem {
            out.push(Diagnostic::error("undefined-variable", pointer, message).help(help));
        }
    }
}

fn undefined<'a>(
    var: &str,
    scope: &str,
    known: impl Iterator<Item = &'a str>,
    help: &str,
) -> (String, String) {
    let last = var.rsplit('.').next().unwrap_or(var);
    let mut listed: Vec<&str> = known.collect();
    let hint = did_you_mean(last, listed.iter().copied())
        .map(|h| format!("{h} "))
        .unwrap_or_default();
    listed.sort_unstable();
    listed.dedup();
    let known = if listed.is_empty() {
        " (none are defined yet)".to_owned()
    } else {
        format!(" (known: {})", listed.join(", "))
    };
    (
        format!("`{var}` is not defined in {scope}"),
        format!("{hint}{help}{known}"),
    )
}

fn check_graph(bp: &Blueprint, ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let mut graph = DiGraph::<usize, ()>::new();
    let ids: Vec<_> = (0..bp.nodes.len()).map(|i| graph.add_node(i)).collect();
    for (i, node) in bp.nodes.iter().enumerate() {
        for edge in node.edges() {
            if let Some(&j) = ctx.index.get(edge.target) {
                graph.add_edge(ids[i], ids[j], ());
            }
        }
    }
    // Reachability from every entry point.
    let mut entries: Vec<usize> = ctx
        .index
        .get(bp.start.as_str())
        .copied()
        .into_iter()
        .collect();
    entries.extend(
        bp.triggers
            .iter()
            .filter_map(|t| t.start())
            .filter_map(|s| ctx.index.get(s).copied()),
    );
    let mut reached = vec![false; bp.nodes.len()];
    let mut stack = entries;
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        stack.extend(graph.neighbors(ids[i]).map(|n| graph[n]));
    }
    for (i, node) in bp.nodes.iter().enumerate() {
        if !reached[i] {
            out.push(
                Diagnostic::error(
                    "unreachable",
                    format!("/nodes/{i}/id"),
                    format!(
                        "node `{}` can never run: no path leads to it from `start`",
                        node.id()
                    ),
                )
                .help("connect it with a `next:` from another node, or remove it"),
            );
        }
    }
    // Every cycle needs a bound, or a revise loop could spin forever.
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let is_cycle = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if !is_cycle {
            continue;
        }
        let mut members: Vec<usize> = scc.iter().map(|n| graph[*n]).collect();
        members.sort_unstable();
        if members
            .iter()
            .any(|&i| bp.nodes[i].common().max_visits.is_some())
        {
            continue;
        }
        let names: Vec<&str> = members.iter().map(|&i| bp.nodes[i].id()).collect();
        let suggest = members
            .iter()
            .find(|&&i| matches!(bp.nodes[i], Node::Review(_) | Node::Prompt(_)))
            .unwrap_or(&members[0]);
        out.push(
            Diagnostic::error(
                "unbounded-cycle",
                format!("/nodes/{}", members[0]),
                format!(
                    "the loop {} → {} has no bound and could run forever",
                    names.join(" → "),
                    names[0]
                ),
            )
            .help(format!(
                "add `max_visits: 3` (and optionally `on_exhausted:`) to `{}`",
                bp.nodes[*suggest].id()
            )),
        );
    }
}

/// Reminders, breach actions and calendars of a review's SLA.
fn check_sla_policy(n: &super::model::ReviewNode, base: &str, out: &mut Vec<Diagnostic>) {
    let sla = n.sla.as_deref().and_then(|s| super::parse_duration(s).ok());
    for (field, set) in [
        ("remind_before", n.remind_before.is_some()),
        ("on_breach", n.on_breach.is_some()),
        ("working_hours", n.working_hours.is_some()),
    ] {
        if set && n.sla.is_none() {
            out.push(
                Diagnostic::error(
                    "schema",
                    format!("{base}/{field}"),
                    format!("`{field}` needs an `sla`"),
                )
                .help("add `sla:` with the time allowed to decide, e.g. `sla: 1d`"),
            );
        }
    }
    if let Some(remind) = &n.remind_before {
        match super::parse_duration(remind) {
            Err(err) => out.push(
                Diagnostic::error("invalid-duration", format!("{base}/remind_before"), err)
                    .help("write a number and a unit: `30m`, `4h`, `2d` or `1w`"),
            ),
            Ok(r) if sla.is_some_and(|s| r >= s) => out.push(
                Diagnostic::error(
                    "invalid-duration",
                    format!("{base}/remind_before"),
                    format!("the reminder ({remind}) would come before the task exists"),
                )
                .help("remind less long before the deadline than the whole SLA"),
            ),
            Ok(_) => {}
        }
    }
    if n.on_breach == Some(super::model::BreachAction::Escalate) && n.escalation.is_empty() {
        out.push(
            Diagnostic::error(
                "schema",
                format!("{base}/on_breach"),
                "`on_breach: escalate` needs an escalation chain",
            )
            .help("add `escalation: [role, ...]`, or choose `approve`, `reject` or `attention`"),
        );
    }
    if let Some(w) = &n.working_hours
        && let Err(err) = crate::sla::Calendar::parse(w)
    {
        out.push(Diagnostic::error("invalid-calendar", format!("{base}/working_hours"), err).help("e.g. `working_hours: {days: [mon, tue, wed, thu, fri], start: \"09:00\", end: \"17:00\"}`"));
    }
}
