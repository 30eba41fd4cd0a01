//! Human output: tables and timelines that read well in a terminal.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{ContentArrangement, Table, presets};
use processops_api::{RunDetail, RunSummary, TaskDetail, TaskSummary};
use processops_core::timeline::{StepStatus, TimelineStep};
use serde_json::Value;

pub fn short(id: &str) -> String {
    // UUIDv7 ids start with a timestamp shared by everything created in the same minute;
    // the random tail tells them apart (and `resolve_*` accepts it).
    id.get(id.len().saturating_sub(8)..)
        .unwrap_or(id)
        .to_owned()
}

pub fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || "?".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A duration in milliseconds as people say it: "3h 20m", "45s".
pub fn span(ms: i64) -> String {
    let abs = ms.unsigned_abs() / 1000;
    if abs >= 86_400 {
        format!("{}d {}h", abs / 86_400, abs % 86_400 / 3600)
    } else if abs >= 3600 {
        format!("{}h {}m", abs / 3600, abs % 3600 / 60)
    } else if abs >= 60 {
        format!("{}m", abs / 60)
    } else {
        format!("{abs}s")
    }
}

/// "in 3h 20m" / "2h ago".
pub fn relative(ms: i64) -> String {
    let delta = ms - Utc::now().timestamp_millis();
    let text = span(delta);
    if delta >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

pub fn runs(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "No runs yet. Start one with `processops run <blueprint> --payload file.json`.\n"
            .into();
    }
    let mut t = table(&[
        "RUN",
        "BLUEPRINT",
        "VERSION",
        "TRIGGER",
        "STATUS",
        "STARTED",
        "NOTE",
    ]);
    for r in runs {
        t.add_row(vec![
            short(&r.id.to_string()),
            r.blueprint.clone(),
            short(&r.version),
            r.trigger.clone(),
            r.status.clone(),
            time(r.created_at),
            r.error.clone().unwrap_or_default(),
        ]);
    }
    format!("{t}\n")
}

pub fn tasks(tasks: &[TaskSummary]) -> String {
    if tasks.is_empty() {
        return "Inbox zero: no task waits for a decision.\n".into();
    }
    let mut t = table(&["TASK", "DUE", "ROLE", "BLUEPRINT", "TITLE", "STATUS"]);
    for task in tasks {
        t.add_row(vec![
            short(&task.id.to_string()),
            task.due_at.map(relative).unwrap_or_else(|| "-".into()),
            task.role.clone(),
            task.blueprint.clone(),
            task.title.clone(),
            match &task.decision {
                Some(d) => format!("{} by {}", d.action.as_str(), d.by),
                None if task.attention => "NEEDS ATTENTION (SLA breached)".into(),
                None if task.claimed_by.is_some() => format!(
                    "claimed by {}",
                    task.claimed_by.as_deref().unwrap_or_default()
                ),
                None if task.breached_at.is_some() => format!("{} (escalated on SLA)", task.status),
                None => task.status.clone(),
            },
        ]);
    }
    format!(
        "{t}\n{} task(s). Read one with `processops inbox show <TASK>`.\n",
        tasks.len()
    )
}

pub fn task(d: &TaskDetail) -> String {
    let t = &d.task;
    let mut out = String::new();
    let _ = writeln!(out, "{}", t.title);
    let _ = writeln!(
        out,
        "task {}  ·  run {}  ·  {} @ {}",
        t.id,
        short(&t.run_id.to_string()),
        t.blueprint,
        short(&t.version)
    );
    let _ = writeln!(
        out,
        "for role `{}`{}{}",
        t.role,
        if d.users.is_empty() {
            String::new()
        } else {
            format!(" or {}", d.users.join(", "))
        },
        t.due_at
            .map(|due| format!("  ·  due {} ({})", time(due), relative(due)))
            .unwrap_or_default()
    );
    if !d.escalation.is_empty() {
        let _ = writeln!(out, "escalates to: {}", d.escalation.join(" → "));
    }
    let _ = writeln!(
        out,
        "\n── Draft ─────────────────────────────────────────\n{}",
        t.draft.trim_end()
    );
    let _ = writeln!(out, "\n── Context ───────────────────────────────────────");
    if let Some(trigger) = d.context.get("trigger") {
        let _ = writeln!(out, "trigger payload: {}", compact(trigger, 400));
    }
    if let Some(Value::Object(steps)) = d.context.get("steps") {
        for (node, output) in steps {
            if let Some(passages) = output.get("passages").and_then(Value::as_array) {
                let _ = writeln!(
                    out,
                    "{node}: {} passage(s) retrieved for {}",
                    passages.len(),
                    compact(&output["query"], 80)
                );
                for p in passages.iter().take(5) {
                    let _ = writeln!(
                        out,
                        "  - [{}] {}",
                        p["source"].as_str().unwrap_or("?"),
                        clip(p["text"].as_str().unwrap_or(""), 110)
                    );
                }
            } else if output.get("model").is_some() && output.get("text").is_some() {
                let tokens = &output["tokens"];
                let _ = writeln!(
                    out,
                    "{node}: drafted by agent `{}` on model `{}` ({}→{} tokens){}",
                    output["agent"].as_str().unwrap_or("?"),
                    output["model"].as_str().unwrap_or("?"),
                    tokens["prompt"],
                    tokens["completion"],
                    output["fallback_used"]
                        .as_str()
                        .map(|f| format!(", fallback {f}"))
                        .unwrap_or_default()
                );
            } else if !output.is_null() {
                let _ = writeln!(out, "{node}: {}", compact(output, 160));
            }
        }
    }
    match &t.decision {
        Some(dec) => {
            let latency = d
                .decision_latency_ms
                .map(|ms| format!(" after {}", crate::render::span(ms)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "\n── Decision ──────────────────────────────────────\n{} by {}{latency}{}",
                dec.action.as_str(),
                dec.by,
                dec.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            if let Some(diff) = &d.diff {
                let _ = writeln!(out, "{}", diff.trim_end());
            }
        }
        None => {
            let _ = writeln!(
                out,
                "\nDecide: processops inbox decide {} --approve | --edit TEXT | --reject REASON | --escalate",
                short(&t.id.to_string())
            );
            if !d.reasons.is_empty() {
                let _ = writeln!(
                    out,
                    "Reject with a reason that starts with one of: {} (add details after a colon)",
                    d.reasons.join(" · ")
                );
            }
        }
    }
    out
}

fn compact(v: &Value, max: usize) -> String {
    clip(&serde_json::to_string(v).unwrap_or_default(), max)
}

fn clip(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}…", one_line.chars().take(max).collect::<String>())
    }
}

fn block(label: &str, text: &str, full: bool, out: &mut String) {
    let lines: Vec<&str> = text.lines().collect();
    let shown = if full {
        lines.len()
    } else {
        lines.len().min(4)
    };
    for (i, line) in lines.iter().take(shown).enumerate() {
        let prefix = if i == 0 {
            format!("{label:>8} │ ")
        } else {
            format!("{:>8} │ ", "")
        };
        let _ = writeln!(
            out,
            "      {prefix}{}",
            if full {
                (*line).to_owned()
            } else {
                clip(line, 100)
            }
        );
    }
    if shown < lines.len() {
        let _ = writeln!(
            out,
            "      {:>8} │ … {} more line(s) (--full)",
            "",
            lines.len() - shown
        );
    }
}

fn step_input(step: &TimelineStep) -> Option<String> {
    let input = step.meta.as_ref()?.input.as_ref()?;
    if let Some(messages) = input.get("messages").and_then(Value::as_array) {
        return Some(
            messages
                .iter()
                .map(|m| {
                    format!(
                        "[{}] {}",
                        m["role"].as_str().unwrap_or("?"),
                        m["content"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    Some(serde_json::to_string_pretty(input).unwrap_or_default())
}

fn step_output(step: &TimelineStep) -> Option<String> {
    let output = step.output.as_ref()?;
    if let Some(text) = output.get("text").and_then(Value::as_str)
        && output.get("passages").is_none()
    {
        return Some(text.to_owned());
    }
    if let Some(passages) = output.get("passages").and_then(Value::as_array) {
        return Some(
            std::iter::once(format!(
                "{} passage(s) for {}",
                passages.len(),
                output["query"]
            ))
            .chain(passages.iter().map(|p| {
                format!(
                    "[{}] {}",
                    p["source"].as_str().unwrap_or("?"),
                    p["text"].as_str().unwrap_or("")
                )
            }))
            .collect::<Vec<_>>()
            .join("\n"),
        );
    }
    Some(serde_json::to_string_pretty(output).unwrap_or_default())
}

pub fn timeline(d: &RunDetail, full: bool) -> String {
    let r = &d.run;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {}  {} @ {}  trigger `{}`  status {}",
        r.id,
        r.blueprint,
        short(&r.version),
        r.trigger,
        r.status.to_uppercase()
    );
    let _ = writeln!(
        out,
        "started {}  ·  payload {}",
        time(r.created_at),
        compact(&d.payload, 120)
    );
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error: {e}");
    }
    let _ = writeln!(out);
    for (i, s) in d.steps.iter().enumerate() {
        let status = match s.status {
            StepStatus::Running => "running",
            StepStatus::Waiting => "WAITING",
            StepStatus::Done => "done",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
        };
        let duration = s
            .meta
            .as_ref()
            .and_then(|m| m.duration_ms)
            .or_else(|| s.finished_at.map(|f| (f - s.started_at) as f64))
            .map(|ms| {
                if ms < 1.0 {
                    format!("{:.0} µs", ms * 1000.0)
                } else {
                    format!("{ms:.1} ms")
                }
            })
            .unwrap_or_default();
        let visit = if s.visit > 1 {
            format!(" (pass {})", s.visit)
        } else {
            String::new()
        };
        let mut notes = Vec::new();
        if let Some(m) = &s.meta {
            if let Some(model) = &m.model {
                notes.push(format!("model {model}"));
            }
            if let (Some(p), Some(c)) = (m.prompt_tokens, m.completion_tokens) {
                notes.push(format!("{p}→{c} tokens"));
            }
            if m.retries > 0 {
                notes.push(format!(
                    "{} retr{}",
                    m.retries,
                    if m.retries == 1 { "y" } else { "ies" }
                ));
            }
            if let Some(f) = &m.fallback {
                notes.push(format!("fallback {f}"));
            }
        }
        if s.attempts > 1 {
            notes.push(format!("attempt {}", s.attempts));
        }
        if let Some(l) = &s.label {
            notes.push(format!("→ {l}"));
        }
        if !s.next.is_empty() {
            notes.push(format!("next {}", s.next.join(", ")));
        }
        let _ = writeln!(
            out,
            "  {:>2}. {:<18} {:<8} {:>9}  {}",
            i + 1,
            format!("{}{visit}", s.node),
            status,
            duration,
            notes.join(" · ")
        );
        if let Some(input) = step_input(s) {
            block("input", &input, full, &mut out);
        }
        if let Some(task) = &s.task {
            let due = task
                .due_at
                .map(|d| format!(", due {}", relative(d)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "      {:>8} │ task {} for role `{}`{due}",
                "review",
                short(&task.id.to_string()),
                task.role
            );
            if s.decision.is_none() {
                block("draft", &task.draft, full, &mut out);
            }
        }
        if let Some(dec) = &s.decision {
            let _ = writeln!(
                out,
                "      {:>8} │ {} by {}{}",
                "decision",
                dec.action.as_str(),
                dec.by,
                dec.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
        if s.status == StepStatus::Done
            && let Some(output) = step_output(s)
        {
            block("output", &output, full, &mut out);
        }
        if let Some(e) = &s.error {
            let _ = writeln!(out, "      {:>8} │ {e}", "error");
        }
    }
    match r.status.as_str() {
        "waiting" => {
            let _ = writeln!(out, "\nWaiting for a decision: processops inbox list");
        }
        "attention" => {
            let _ = writeln!(
                out,
                "\nA step failed. Fix the cause, then: processops runs retry {}",
                short(&r.id.to_string())
            );
        }
        _ => {}
    }
    out
}

/// A replay's comparison, step by step.
pub fn replay(r: &processops_engine::replay::ReplayReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Replay of run {} ({} @ {}) as {}",
        r.run_id,
        r.blueprint,
        short(&r.original_version),
        r.replay_run_id
    );
    if r.replay_version != r.original_version {
        let _ = writeln!(
            out,
            "on edited blueprint version {}",
            short(&r.replay_version)
        );
    }
    for s in &r.steps {
        let mark = match s.outcome.as_str() {
            "same" => "same",
            "different" => "DIFFERENT",
            "only_original" => "NOT REACHED",
            _ => "NEW",
        };
        let prompt = if s.prompt_changed {
            "  (prompt changed)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {:<20} #{:<2} {mark}{prompt}", s.node, s.visit);
        if s.outcome == "different" {
            let before = s
                .original
                .as_ref()
                .map(|v| compact(v, 160))
                .unwrap_or_default();
            let after = s
                .replayed
                .as_ref()
                .map(|v| compact(v, 160))
                .unwrap_or_default();
            let _ = writeln!(out, "      was: {before}\n      now: {after}");
        }
    }
    for u in &r.unanswered {
        let _ = writeln!(out, "  unanswered: {u}");
    }
    let _ = writeln!(
        out,
        "status: {} → {}  ·  {}",
        r.original_status,
        r.replay_status,
        if r.identical() {
            "identical"
        } else {
            "differs"
        }
    );
    out
}
