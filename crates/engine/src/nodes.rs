//! Node behaviour. Pure nodes are computed inline by the driver; nodes with side effects are
//! *prepared* (templates rendered against the run's state) and then *performed* in their own
//! task, so the driver never holds run state across an await on the outside world.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use std::time::{Duration, Instant};

use processops_core::blueprint::{Node, OutputNode, PromptNode, ReviewNode};
use processops_core::journal::{Action, Decision, Event, StepMeta, Task, Visit};
use processops_core::run::RunState;
use processops_llm::{CallContext, ChatMessage, ChatRequest};
use serde_json::{Map, Value, json};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{Compiled, Engine};

/// The template context of a run: `trigger`, `vars`, `run` and every node's latest output
/// (`none` for nodes that have not run, so `{% if review %}` works on a first pass).
pub(crate) fn context(compiled: &Compiled, state: &RunState, run_id: Uuid) -> minijinja::Value {
    let mut map = BTreeMap::new();
    for node in &compiled.blueprint.nodes {
        let id = node.id();
        map.insert(
            id.to_owned(),
            minijinja::Value::from_serialize(state.outputs.get(id).unwrap_or(&Value::Null)),
        );
    }
    map.insert(
        "trigger".to_owned(),
        minijinja::Value::from_serialize(&state.payload),
    );
    map.insert(
        "vars".to_owned(),
        minijinja::Value::from_serialize(&state.vars),
    );
    map.insert(
        "run".to_owned(),
        minijinja::Value::from_serialize(json!({
            "id": run_id.to_string(), "blueprint": state.blueprint, "version": state.version, "trigger": state.trigger,
        })),
    );
    minijinja::Value::from_iter(map)
}

/// What a finished step reports to the driver.
pub(crate) struct Outcome {
    pub output: Value,
    pub vars: Map<String, Value>,
    pub next: Vec<String>,
    pub label: Option<String>,
    pub meta: StepMeta,
}

impl Outcome {
    pub(crate) fn into_event(self, node: &str, visit: Visit) -> Event {
        Event::NodeFinished {
            node: node.to_owned(),
            visit,
            output: self.output,
            vars: self.vars,
            next: self.next,
            label: self.label,
            meta: self.meta,
        }
    }
}

fn simple(output: Value, next: &[String]) -> Outcome {
    Outcome {
        output,
        vars: Map::new(),
        next: next.to_vec(),
        label: None,
        meta: StepMeta::default(),
    }
}

/// A step's outcome taken from a recording (replay).
pub(crate) fn recorded(output: Value, next: &[String]) -> Outcome {
    simple(output, next)
}

/// Compute a node that has no side effects: route, branch, transform, retrieve.
pub(crate) fn run_pure(
    engine: &Engine,
    compiled: &Compiled,
    node: &Node,
    ctx: &minijinja::Value,
) -> Result<Outcome, String> {
    let id = node.id();
    match node {
        Node::Route(r) => {
            for rule in &r.rules {
                if compiled
                    .eval(&rule.when, ctx)
                    .map_err(|e| format!("rule `{}`: {e}", rule.name))?
                {
                    let mut o = simple(json!({ "rule": rule.name }), rule.to.targets());
                    o.label = Some(rule.name.clone());
                    return Ok(o);
                }
            }
            let mut o = simple(json!({ "rule": "default" }), r.default.targets());
            o.label = Some("default".into());
            Ok(o)
        }
        Node::Branch(b) => {
            let mut next = Vec::new();
            let mut taken = Vec::new();
            for (i, path) in b.branches.iter().enumerate() {
                let go = match &path.when {
                    Some(w) => compiled
                        .eval(w, ctx)
                        .map_err(|e| format!("branch {}: {e}", i + 1))?,
                    None => true,
                };
                if go {
                    next.extend(path.to.targets().iter().cloned());
                    taken.push(i);
                }
            }
            Ok(simple(json!({ "paths": taken }), &next))
        }
        Node::Transform(t) => {
            let mut vars = Map::new();
            for key in t.set.keys() {
                let text = compiled.render(id, &format!("set.{key}"), ctx)?;
                vars.insert(key.clone(), Value::String(text));
            }
            let mut o = simple(Value::Object(vars.clone()), t.next.targets());
            o.vars = vars;
            Ok(o)
        }
        Node::Retrieve(r) => {
            let started = Instant::now();
            let query = compiled.render(id, "query", ctx)?;
            let filter = processops_store::SearchFilter {
                source_glob: r.filter.clone(),
            };
            // Hybrid search when the engine has an embedder: the query's vector ranks passages
            // by meaning, fused with BM25. Embedding one short query takes milliseconds, so it
            // runs here rather than on a blocking thread.
            let vector = match engine.embedder() {
                Some(e) => match e.embed(std::slice::from_ref(&query)) {
                    Ok(mut v) => v.pop().map(|v| (e.model_id().to_owned(), v)),
                    Err(err) => {
                        tracing::warn!(error = %err, "query embedding failed; searching with BM25 only");
                        None
                    }
                },
                None => None,
            };
            let query_vector = vector
                .as_ref()
                .map(|(model_id, v)| processops_store::QueryVector {
                    model_id,
                    vector: v,
                });
            let found = engine
                .knowledge()
                .search_hybrid(&r.collection, &query, query_vector, r.top_k, &filter)
                .map_err(|e| e.to_string())?;
            let entries: Vec<String> = found
                .hits
                .iter()
                .map(|h| format!("[{}] {}", h.source, h.text))
                .collect();
            // Passages in rank order while their estimated tokens (chars / 4) fit the budget;
            // always at least one.
            let keep = match r.max_tokens {
                Some(budget) => processops_core::knowledge::fit_token_budget(
                    entries.iter().map(String::as_str),
                    budget,
                ),
                None => entries.len(),
            };
            let passages: Vec<processops_store::Passage> =
                found.hits[..keep].iter().map(|h| h.passage()).collect();
            let snippets: Vec<&str> = found.hits[..keep]
                .iter()
                .map(|h| h.snippet.as_str())
                .collect();
            let memory = match &r.memory {
                Some(m) => {
                    let subject = compiled.render(id, "memory.subject", ctx)?;
                    engine
                        .knowledge()
                        .recall(&format!("{}:{subject}", compiled.blueprint.id), m.last)
                        .map_err(|e| e.to_string())?
                }
                None => Vec::new(),
            };
            let text = entries[..keep].join("\n\n");
            let mut o = simple(
                json!({
                    "query": query, "passages": passages, "text": text, "memory": memory,
                    "snippets": snippets, "mode": found.mode.as_str(),
                }),
                r.next.targets(),
            );
            o.meta.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            Ok(o)
        }
        Node::Prompt(_) | Node::Review(_) | Node::Output(_) => {
            Err(format!("node `{id}` has side effects"))
        }
    }
}

/// Start a review: either approve by policy at once, or create the inbox task.
pub(crate) enum ReviewStart {
    Auto(Outcome),
    Task(Task),
}

pub(crate) fn start_review(
    compiled: &Compiled,
    r: &ReviewNode,
    visit: Visit,
    ctx: &minijinja::Value,
    state: &RunState,
) -> Result<ReviewStart, String> {
    let draft = compiled.render(&r.id, "draft", ctx)?;
    if let Some(expr) = &r.auto_approve_when
        && compiled.eval(expr, ctx)?
    {
        let output = json!({
            "decision": "approved", "text": draft, "draft": draft, "reason": null, "by": "policy",
            "edited": false, "path": "auto", "task": null,
        });
        let mut o = simple(output, r.on.approved.targets());
        o.label = Some("approved".into());
        return Ok(ReviewStart::Auto(o));
    }
    let escalate = match &r.escalate_when {
        Some(expr) => compiled.eval(expr, ctx)?,
        None => false,
    };
    let (role, escalation) = if escalate && !r.escalation.is_empty() {
        (r.escalation[0].clone(), r.escalation[1..].to_vec())
    } else {
        (r.role.clone(), r.escalation.clone())
    };
    let title = match &r.task_title {
        Some(_) => compiled.render(&r.id, "task_title", ctx)?,
        None => format!(
            "{}: {}",
            compiled.blueprint.name,
            r.title.as_deref().unwrap_or(&r.id)
        ),
    };
    let due_at = sla_due(r, processops_store::now_ms());
    let remind_at = due_at.and_then(|due| {
        let before =
            processops_core::blueprint::parse_duration(r.remind_before.as_deref()?).ok()?;
        Some(due - before.num_milliseconds())
    });
    // The context a manager needs to judge the draft: what triggered the run and what every
    // earlier step produced (retrieved passages, prompts, models).
    // Steps whose structured output failed every agent and repair: the draft needs a closer look.
    let attention: Vec<&String> = state
        .outputs
        .iter()
        .filter(|(_, o)| o.get("needs_attention").and_then(Value::as_bool) == Some(true))
        .map(|(id, _)| id)
        .collect();
    let mut context = json!({
        "trigger": state.payload,
        "steps": state.outputs,
        "path": if escalate { "escalate" } else { "review" },
    });
    if !attention.is_empty() {
        context["needs_attention"] = json!(attention);
    }
    let mut excluded = Vec::new();
    for i in 0..r.not_by.len() {
        let name = compiled.render(&r.id, &format!("not_by.{i}"), ctx)?;
        if !name.trim().is_empty() {
            excluded.push(name.trim().to_owned());
        }
    }
    if r.distinct_approvers {
        // Everyone who decided another review of this run (a quorum's approvers are joined by " + ").
        for node in &compiled.blueprint.nodes {
            if let Node::Review(other) = node
                && other.id != r.id
                && let Some(by) = state
                    .outputs
                    .get(&other.id)
                    .and_then(|o| o.get("by"))
                    .and_then(Value::as_str)
            {
                excluded.extend(
                    by.split(" + ")
                        .filter(|b| *b != "policy" && *b != "sla")
                        .map(ToOwned::to_owned),
                );
            }
        }
    }
    excluded.sort();
    excluded.dedup();
    let policy = processops_core::journal::TaskPolicy {
        approvals: r.quorum.unwrap_or(1).max(1),
        excluded,
        actions: r.actions.clone(),
    };
    Ok(ReviewStart::Task(Task {
        id: Uuid::now_v7(),
        node: r.id.clone(),
        visit,
        title,
        draft,
        role,
        users: r.users.clone(),
        escalation,
        reasons: r.reasons.clone(),
        due_at,
        remind_at,
        policy,
        context,
    }))
}

/// When a review's task is due if its SLA starts at `from` (Unix ms), counting working hours
/// when the review has a calendar.
pub(crate) fn sla_due(r: &ReviewNode, from: i64) -> Option<i64> {
    let sla = processops_core::blueprint::parse_duration(r.sla.as_deref()?).ok()?;
    let calendar = r
        .working_hours
        .as_ref()
        .and_then(|w| processops_core::sla::Calendar::parse(w).ok());
    let start = chrono::DateTime::from_timestamp_millis(from)?;
    Some(processops_core::sla::due_at(start, sla, calendar.as_ref()).timestamp_millis())
}

/// Finish a review from its decision.
pub(crate) fn complete_review(r: &ReviewNode, task: &Task, decision: &Decision) -> Outcome {
    let (label, edge) = match decision.action {
        Action::Approve | Action::Edit => ("approved", &r.on.approved),
        Action::Reject => ("rejected", &r.on.rejected),
        Action::Escalate => ("escalated", &r.on.escalated),
    };
    let text = match decision.action {
        Action::Edit => decision.text.clone().unwrap_or_else(|| task.draft.clone()),
        _ => task.draft.clone(),
    };
    let output = json!({
        "decision": label,
        "text": text,
        "draft": task.draft,
        "reason": decision.reason,
        "by": decision.by,
        "edited": decision.action == Action::Edit && decision.text.as_deref() != Some(task.draft.as_str()),
        "path": task.context.get("path").cloned().unwrap_or(Value::Null),
        "task": task.id.to_string(),
    });
    let mut o = simple(output, edge.targets());
    o.label = Some(label.into());
    o
}

/// A side effect, rendered and ready to perform.
pub(crate) enum Prepared {
    Prompt {
        calls: Vec<PromptCall>,
        fallback_text: Option<String>,
        node: PromptNode,
    },
    Http {
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        /// Unexpanded (`$NAME` references): expanded only when sending.
        secret_headers: Vec<(String, String)>,
        body: Option<String>,
        retries: u32,
        key: String,
    },
    File {
        path: PathBuf,
        shown: String,
        content: String,
    },
    Dataset {
        path: PathBuf,
        shown: String,
        record: Map<String, Value>,
        key: String,
        check_existing: bool,
    },
    Emit {
        event: String,
        payload: Map<String, Value>,
        key: String,
    },
}

pub(crate) struct PromptCall {
    agent: String,
    provider: String,
    request: ChatRequest,
}

/// The key receivers use to drop duplicate deliveries of one step.
pub(crate) fn idempotency_key(run_id: Uuid, node: &str, visit: Visit) -> String {
    format!("{run_id}:{node}:{visit}")
}

pub(crate) fn prepare(
    engine: &Engine,
    compiled: &Compiled,
    node: &Node,
    ctx: &minijinja::Value,
    run_id: Uuid,
    visit: Visit,
    attempt: u32,
) -> Result<Prepared, String> {
    let id = node.id();
    let key = idempotency_key(run_id, id, visit);
    match node {
        Node::Prompt(p) => {
            let user = compiled.render(id, "template", ctx)?;
            let system_override = match &p.system {
                Some(_) => Some(compiled.render(id, "system", ctx)?),
                None => None,
            };
            let mut calls = Vec::new();
            for name in std::iter::once(&p.agent).chain(&p.fallbacks) {
                let agent = compiled
                    .blueprint
                    .agents
                    .get(name)
                    .ok_or_else(|| format!("agent `{name}` is not defined"))?;
                let mut messages = Vec::new();
                if let Some(system) = system_override.clone().or_else(|| agent.system.clone()) {
                    messages.push(ChatMessage::system(system));
                }
                messages.push(ChatMessage::user(user.clone()));
                let mut request = ChatRequest::new(agent.model.clone(), messages);
                request.temperature = agent.temperature;
                request.max_tokens = agent.max_tokens;
                request.json_mode = p.output_schema.is_some();
                request.json_schema.clone_from(&p.output_schema);
                calls.push(PromptCall {
                    agent: name.clone(),
                    provider: agent.provider.clone(),
                    request,
                });
            }
            let fallback_text = match &p.fallback_text {
                Some(_) => Some(compiled.render(id, "fallback_text", ctx)?),
                None => None,
            };
            Ok(Prepared::Prompt {
                calls,
                fallback_text,
                node: p.clone(),
            })
        }
        Node::Output(o) => prepare_output(engine, compiled, o, ctx, key, attempt),
        _ => Err(format!("node `{id}` has no side effects to prepare")),
    }
}

fn prepare_output(
    engine: &Engine,
    compiled: &Compiled,
    o: &OutputNode,
    ctx: &minijinja::Value,
    key: String,
    attempt: u32,
) -> Result<Prepared, String> {
    let id = &o.id;
    if let Some(h) = &o.http {
        let url = compiled.render(id, "http.url", ctx)?;
        let mut headers = Vec::new();
        for k in h.headers.keys() {
            headers.push((
                k.clone(),
                compiled.render(id, &format!("http.headers.{k}"), ctx)?,
            ));
        }
        let body = match &h.body {
            Some(_) => Some(compiled.render(id, "http.body", ctx)?),
            None => None,
        };
        return Ok(Prepared::Http {
            url,
            method: h.method.clone(),
            headers,
            secret_headers: h
                .secret_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body,
            retries: h.retries,
            key,
        });
    }
    if o.file.is_some() {
        let shown = compiled.render(id, "file.path", ctx)?;
        let path = safe_join(&engine.inner.outputs_dir, &shown)?;
        let content = compiled.render(id, "file.content", ctx)?;
        return Ok(Prepared::File {
            path,
            shown,
            content,
        });
    }
    if let Some(d) = &o.dataset {
        let shown = compiled.render(id, "dataset.path", ctx)?;
        let path = safe_join(&engine.inner.outputs_dir, &shown)?;
        let mut record = Map::new();
        for k in d.record.keys() {
            let text = compiled.render(id, &format!("dataset.record.{k}"), ctx)?;
            // A field that renders to JSON (a number, a list) is stored as that JSON.
            let value = serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|v| !v.is_string())
                .unwrap_or(Value::String(text));
            record.insert(k.clone(), value);
        }
        return Ok(Prepared::Dataset {
            path,
            shown,
            record,
            key,
            check_existing: attempt > 1,
        });
    }
    if let Some(e) = &o.emit {
        let mut payload = Map::new();
        for k in e.payload.keys() {
            let text = compiled.render(id, &format!("emit.payload.{k}"), ctx)?;
            let value = serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|v| !v.is_string())
                .unwrap_or(Value::String(text));
            payload.insert(k.clone(), value);
        }
        return Ok(Prepared::Emit {
            event: e.event.clone(),
            payload,
            key,
        });
    }
    Err(format!("output `{id}` has no target"))
}

/// Join a rendered relative path under a base folder, refusing anything that escapes it.
fn safe_join(base: &Path, relative: &str) -> Result<PathBuf, String> {
    let rel = Path::new(relative.trim());
    if relative.trim().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!(
            "output path `{relative}` must be a relative path inside the outputs folder"
        ));
    }
    Ok(base.join(rel))
}

/// Perform a prepared side effect.
pub(crate) async fn perform(
    engine: Engine,
    prepared: Prepared,
    step_key: String,
) -> Result<Outcome, String> {
    if let Some(recording) = engine.inner.replay.get()
        && matches!(prepared, Prepared::Http { .. } | Prepared::Emit { .. })
    {
        // A replay never calls out again: the recorded result stands in.
        return crate::replay::parse_step_key(&step_key)
            .and_then(|(node, visit)| recording.output(&node, visit).cloned())
            .map(|output| simple(output, &[]))
            .ok_or_else(|| "replay: this step has no recorded result".to_owned());
    }
    if engine.inner.dry_run.get().is_some()
        && let Some(would) = dry_run_effect(&prepared)
    {
        // A designer's dry run shows what the step would do and does nothing.
        return Ok(simple(json!({ "status": "dry_run", "would": would }), &[]));
    }
    match prepared {
        Prepared::Prompt {
            calls,
            fallback_text,
            node,
        } => perform_prompt(&engine, calls, fallback_text, &node, step_key).await,
        Prepared::Http {
            url,
            method,
            mut headers,
            secret_headers,
            body,
            retries,
            key,
        } => {
            // Secrets are read now, into this request only: never into the journal.
            for (name, value) in secret_headers {
                let value = processops_core::secrets::expand(&value, |v| std::env::var(v).ok())
                    .map_err(|e| {
                        format!("secret header `{name}`: {e} in the engine's environment")
                    })?;
                headers.push((name, value));
            }
            perform_http(&engine, url, &method, headers, body, retries, key).await
        }
        Prepared::File {
            path,
            shown,
            content,
        } => {
            write_atomically(&path, content.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(simple(
                json!({ "status": "written", "location": shown, "idempotency_key": null }),
                &[],
            ))
        }
        Prepared::Dataset {
            path,
            shown,
            mut record,
            key,
            check_existing,
        } => {
            record.insert("_idempotency_key".into(), Value::String(key.clone()));
            let line = serde_json::to_string(&record).map_err(|e| e.to_string())?;
            append_line_once(&path, &line, &key, check_existing)
                .map_err(|e| format!("cannot append to {}: {e}", path.display()))?;
            Ok(simple(
                json!({ "status": "appended", "location": shown, "idempotency_key": key }),
                &[],
            ))
        }
        Prepared::Emit {
            event,
            payload,
            key,
        } => {
            let runs = engine
                .emit(&event, Value::Object(payload), &key)
                .await
                .map_err(|e| e.to_string())?;
            Ok(simple(
                json!({ "status": "emitted", "location": event, "idempotency_key": key, "runs": runs }),
                &[],
            ))
        }
    }
}

/// What an outside effect would have done, for a dry run; `None` for model calls, which a
/// dry run makes for real.
fn dry_run_effect(prepared: &Prepared) -> Option<Value> {
    match prepared {
        Prepared::Prompt { .. } => None,
        Prepared::Http {
            url,
            method,
            headers,
            secret_headers,
            body,
            ..
        } => Some(json!({
            "http": {
                "method": method, "url": url,
                "headers": headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<_, _>>(),
                // Secret headers are named, never expanded.
                "secret_headers": secret_headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                "body": body,
            }
        })),
        Prepared::File { shown, content, .. } => {
            Some(json!({ "file": { "path": shown, "content": content } }))
        }
        Prepared::Dataset { shown, record, .. } => {
            Some(json!({ "dataset": { "path": shown, "record": record } }))
        }
        Prepared::Emit { event, payload, .. } => {
            Some(json!({ "emit": { "event": event, "payload": payload } }))
        }
    }
}

async fn perform_prompt(
    engine: &Engine,
    calls: Vec<PromptCall>,
    fallback_text: Option<String>,
    node: &PromptNode,
    step_key: String,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut errors = Vec::new();
    let mut exchanges = Vec::new();
    let input = calls
        .first()
        .map(|c| json!({ "messages": c.request.messages }));
    // The last reply that arrived but failed the output schema: kept for the reviewer.
    let mut unusable: Option<(String, String)> = None;
    for (i, call) in calls.into_iter().enumerate() {
        if i > 0 {
            tracing::info!(processops.agent = %call.agent, "falling back to the next agent");
        }
        let Some(provider) = engine.inner.providers.get(&call.provider) else {
            tracing::info!(processops.agent = %call.agent, provider = %call.provider, "agent skipped: no such provider");
            errors.push(format!(
                "agent `{}`: no provider `{}` is configured (add [providers.{}] to processops.toml)",
                call.agent, call.provider, call.provider
            ));
            continue;
        };
        if !provider.healthy() {
            // Its circuit is open: fail over now instead of waiting for timeouts.
            tracing::info!(processops.agent = %call.agent, provider = %call.provider, "agent skipped: circuit open");
            errors.push(format!(
                "agent `{}`: provider `{}` is failing (circuit open), skipped",
                call.agent, call.provider
            ));
            continue;
        }
        let ctx = CallContext::step(step_key.clone());
        let mut reply =
            call_once(provider.as_ref(), &call, "call", call.request.clone(), &ctx).await;
        let mut checked = reply
            .as_ref()
            .ok()
            .map(|r| engine_output_check(node, &r.text));
        if let (Ok(resp), Some(Err(problem))) = (&reply, &checked) {
            // One repair attempt: show the model its reply and what is wrong with it.
            exchanges.push(exchange(
                &call,
                "call",
                &call.request,
                &reply,
                Some(problem),
            ));
            let mut repair = call.request.clone();
            repair
                .messages
                .push(ChatMessage::assistant(resp.text.clone()));
            repair.messages.push(ChatMessage::user(format!(
                "Your reply does not match the required JSON Schema: {problem}. Reply again with only the corrected JSON."
            )));
            tracing::info!(processops.agent = %call.agent, "repair call: the reply did not match the output schema");
            reply = call_once(provider.as_ref(), &call, "repair", repair.clone(), &ctx).await;
            checked = reply
                .as_ref()
                .ok()
                .map(|r| engine_output_check(node, &r.text));
            let problem = checked.as_ref().and_then(|c| c.as_ref().err());
            exchanges.push(exchange(&call, "repair", &repair, &reply, problem));
        } else {
            let problem = checked.as_ref().and_then(|c| c.as_ref().err());
            exchanges.push(exchange(&call, "call", &call.request, &reply, problem));
        }
        match (reply, checked) {
            (Ok(resp), Some(Ok(json))) => {
                let retries = exchanges.iter().map(|e| e.attempts.saturating_sub(1)).sum();
                let repaired = exchanges.last().is_some_and(|e| e.purpose == "repair");
                let fallback = (i > 0).then(|| call.agent.clone());
                let output = json!({
                    "text": resp.text, "json": json, "model": resp.model, "agent": call.agent,
                    "tokens": { "prompt": resp.usage.prompt_tokens, "completion": resp.usage.completion_tokens },
                    "fallback_used": fallback, "attempts": resp.attempts, "repaired": repaired,
                });
                let mut o = simple(output, node.next.targets());
                o.meta = StepMeta {
                    duration_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                    model: Some(resp.model),
                    prompt_tokens: Some(exchanges.iter().map(|e| e.prompt_tokens).sum()),
                    completion_tokens: Some(exchanges.iter().map(|e| e.completion_tokens).sum()),
                    retries,
                    fallback,
                    input: input.clone(),
                    exchanges,
                };
                return Ok(o);
            }
            (Ok(resp), _) => {
                let problem = exchanges
                    .last()
                    .and_then(|e| e.error.clone())
                    .unwrap_or_default();
                errors.push(format!(
                    "agent `{}`: the reply does not match the output schema, even after a repair attempt: {problem}",
                    call.agent
                ));
                unusable = Some((resp.text, call.agent.clone()));
            }
            (Err(e), _) => errors.push(format!("agent `{}`: {e}", call.agent)),
        }
    }
    let meta = |fallback: &str, exchanges: Vec<processops_core::journal::Exchange>| StepMeta {
        duration_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
        fallback: Some(fallback.to_owned()),
        input: input.clone(),
        exchanges,
        ..StepMeta::default()
    };
    if let Some(text) = fallback_text {
        tracing::info!("no agent answered: using the step's fallback_text");
        let output = json!({
            "text": text, "json": null, "model": null, "agent": null, "tokens": { "prompt": 0, "completion": 0 },
            "fallback_used": "template", "attempts": 0, "errors": errors,
        });
        let mut o = simple(output, node.next.targets());
        o.meta = meta("template", exchanges);
        return Ok(o);
    }
    if let Some((text, agent)) = unusable {
        // Structured output failed everywhere, but there is a draft: the run goes on and the
        // next review shows it flagged, rather than the run stopping with nothing to show.
        let output = json!({
            "text": text, "json": null, "model": null, "agent": agent, "tokens": { "prompt": 0, "completion": 0 },
            "fallback_used": null, "attempts": 0, "errors": errors, "needs_attention": true,
        });
        let mut o = simple(output, node.next.targets());
        o.meta = meta("needs attention", exchanges);
        return Ok(o);
    }
    Err(errors.join("; "))
}

/// One provider call in its own span; errors become text (they are shown to operators, never
/// hold keys).
async fn call_once(
    provider: &dyn processops_llm::ChatModel,
    call: &PromptCall,
    purpose: &str,
    request: ChatRequest,
    ctx: &CallContext,
) -> Result<processops_llm::ChatResponse, String> {
    let span = crate::telemetry::chat_span(provider.system(), &call.agent, purpose, &request);
    let reply = provider
        .chat(request, ctx.clone())
        .instrument(span.clone())
        .await;
    crate::telemetry::record_chat(&span, &reply);
    reply.map_err(|e| e.to_string())
}

fn exchange(
    call: &PromptCall,
    purpose: &str,
    request: &ChatRequest,
    reply: &Result<processops_llm::ChatResponse, String>,
    problem: Option<&String>,
) -> processops_core::journal::Exchange {
    let mut e = processops_core::journal::Exchange {
        agent: call.agent.clone(),
        provider: call.provider.clone(),
        purpose: purpose.to_owned(),
        request: serde_json::to_value(request).unwrap_or(Value::Null),
        error: problem.cloned(),
        ..processops_core::journal::Exchange::default()
    };
    match reply {
        Ok(r) => {
            e.response = Some(r.text.clone());
            e.model = Some(r.model.clone());
            e.prompt_tokens = r.usage.prompt_tokens;
            e.completion_tokens = r.usage.completion_tokens;
            e.latency_ms = r.latency.as_secs_f64() * 1000.0;
            e.attempts = r.attempts;
        }
        Err(err) => e.error = Some(err.clone()),
    }
    e
}

/// Parse and check a structured reply; plain prompts pass through as `null`.
fn engine_output_check(node: &PromptNode, text: &str) -> Result<Value, String> {
    let Some(schema) = &node.output_schema else {
        return Ok(Value::Null);
    };
    let trimmed = text
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let value: Value = serde_json::from_str(trimmed).map_err(|e| format!("not JSON ({e})"))?;
    // Validation checked the schema when the blueprint loaded; a reply that does not fit it
    // must not reach templates that read its fields.
    let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(3)
        .map(|e| match e.instance_path.to_string() {
            at if at.is_empty() => e.to_string(),
            at => format!("{at}: {e}"),
        })
        .collect();
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors.join("; "))
    }
}

async fn perform_http(
    engine: &Engine,
    url: String,
    method: &str,
    headers: Vec<(String, String)>,
    body: Option<String>,
    retries: u32,
    key: String,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let is_json = body
        .as_deref()
        .is_some_and(|b| serde_json::from_str::<Value>(b).is_ok());
    let mut last_error = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            let backoff = Duration::from_millis(200 * 2u64.pow(attempt.min(6) - 1));
            tokio::time::sleep(backoff.min(Duration::from_secs(10))).await;
        }
        let mut req = engine
            .inner
            .http
            .request(method.clone(), &url)
            .header("Idempotency-Key", &key);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        if let Some(b) = &body {
            if is_json {
                req = req.header("content-type", "application/json");
            }
            req = req.body(b.clone());
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                let status = resp.status().as_u16();
                let mut o = simple(
                    json!({ "status": status, "location": url, "idempotency_key": key }),
                    &[],
                );
                o.meta = StepMeta {
                    duration_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                    retries: attempt,
                    input: Some(json!({ "method": method.as_str(), "url": url, "body": body })),
                    ..StepMeta::default()
                };
                return Ok(o);
            }
            Ok(resp) => {
                let status = resp.status();
                last_error = format!("{method} {url} answered {status}");
                if !(status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408) {
                    break;
                }
            }
            Err(e) => last_error = format!("{method} {url} failed: {e}"),
        }
    }
    Err(last_error)
}

/// Write via a temporary file and rename, so a crash never leaves half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// Append one line; on a retried step, skip it when a line with the same key is present.
fn append_line_once(
    path: &Path,
    line: &str,
    key: &str,
    check_existing: bool,
) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if check_existing && let Ok(existing) = std::fs::read_to_string(path) {
        let needle = format!("\"_idempotency_key\":\"{key}\"");
        if existing.lines().any(|l| l.contains(&needle)) {
            return Ok(());
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}
