//! Triggers that start runs: webhooks (checked here, served by the API crate), cron
//! schedules and folder drops. Each start carries a dedupe key, so a retry, a restart or a
//! crash between "start the run" and "remember it started" never starts a run twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use processops_core::blueprint::Trigger;
use processops_core::schedule;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{Engine, EngineError, Started, payload};

/// Header carrying `sha256=<hex HMAC of the raw body>`.
pub const SIGNATURE_HEADER: &str = "x-processops-signature";

/// Check a webhook signature in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Sign a body the way senders must (used by tests and the docs' examples).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Start a run from a webhook delivery.
pub async fn webhook(
    engine: &Engine,
    blueprint: &str,
    trigger: &str,
    body: &[u8],
    signature: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<Started, EngineError> {
    let compiled = engine.blueprint(blueprint)?;
    let Trigger::Webhook(w) = compiled.trigger(Some(trigger))? else {
        return Err(EngineError::UnknownTrigger {
            blueprint: blueprint.to_owned(),
            trigger: trigger.to_owned(),
            known: compiled
                .blueprint
                .triggers
                .iter()
                .filter(|t| matches!(t, Trigger::Webhook(_)))
                .map(|t| t.id().to_owned())
                .collect(),
        });
    };
    if let Some(var) = &w.secret_env {
        let secret = std::env::var(var).map_err(|_| EngineError::MissingSecret(var.clone()))?;
        if !verify_signature(secret.as_bytes(), body, signature) {
            return Err(EngineError::BadSignature);
        }
    }
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| EngineError::InvalidPayload {
            trigger: trigger.to_owned(),
            errors: vec![format!("the body is not JSON: {e}")],
        })?
    };
    let dedupe = idempotency_key.map(|k| format!("webhook:{blueprint}:{trigger}:{k}"));
    engine
        .start_run(blueprint, Some(trigger), payload, dedupe)
        .await
}

/// Fire due schedule triggers until cancelled. A fire missed while the engine was down runs
/// once on start, not once per missed slot.
pub async fn run_schedules(engine: Engine, cancel: CancellationToken, tick: Duration) {
    loop {
        if let Err(e) = fire_due_schedules(&engine, Utc::now()).await {
            tracing::warn!(error = %e, "schedule check failed; retrying");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// One pass over every schedule trigger; returns the runs started.
pub async fn fire_due_schedules(
    engine: &Engine,
    now: DateTime<Utc>,
) -> Result<Vec<Started>, EngineError> {
    let mut started = Vec::new();
    for c in engine.registry().all() {
        for t in &c.blueprint.triggers {
            let Trigger::Schedule(s) = t else { continue };
            let Ok(cron) = schedule::parse_cron(&s.cron) else {
                continue;
            };
            let store = engine.store();
            let Some(last_ms) = store.schedule_last_fire(&c.blueprint.id, &s.id)? else {
                // First sight of this schedule: count from now instead of replaying history.
                store
                    .set_schedule_last_fire(
                        c.blueprint.id.clone(),
                        s.id.clone(),
                        now.timestamp_millis(),
                    )
                    .await?;
                continue;
            };
            let last = DateTime::from_timestamp_millis(last_ms).unwrap_or(now);
            let mut due = None;
            let mut cursor = last;
            for _ in 0..100_000 {
                match schedule::next_fire(&cron, cursor) {
                    Some(next) if next <= now => {
                        due = Some(next);
                        cursor = next;
                    }
                    _ => break,
                }
            }
            let Some(fire_at) = due else { continue };
            let mut payload = match &s.payload {
                Some(Value::Object(m)) => m.clone(),
                _ => serde_json::Map::new(),
            };
            payload.insert("scheduled_at".into(), Value::String(fire_at.to_rfc3339()));
            let key = format!(
                "schedule:{}:{}:{}",
                c.blueprint.id,
                s.id,
                fire_at.timestamp_millis()
            );
            match engine
                .start_run(
                    &c.blueprint.id,
                    Some(&s.id),
                    Value::Object(payload),
                    Some(key),
                )
                .await
            {
                Ok(s) => started.push(s),
                // Another engine of the team runs this fire.
                Err(EngineError::ClaimedElsewhere { .. }) => {}
                Err(e) => return Err(e),
            }
            store
                .set_schedule_last_fire(
                    c.blueprint.id.clone(),
                    s.id.clone(),
                    fire_at.timestamp_millis(),
                )
                .await?;
        }
    }
    Ok(started)
}

/// Watch every folder-drop trigger's folder until cancelled.
pub async fn run_folder_watch(
    engine: Engine,
    project: PathBuf,
    cancel: CancellationToken,
    tick: Duration,
) {
    let mut seen = HashMap::new();
    loop {
        if let Err(e) = scan_folders(&engine, &project, &mut seen).await {
            tracing::warn!(error = %e, "folder scan failed; retrying");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// Size and modification time of a file at the previous scan: a file is taken only once it
/// stopped changing, so a half-copied file is never read.
pub type Seen = HashMap<PathBuf, (u64, SystemTime)>;

/// One scan of every watched folder; returns the runs started.
pub async fn scan_folders(
    engine: &Engine,
    project: &Path,
    seen: &mut Seen,
) -> Result<Vec<Started>, EngineError> {
    let mut started = Vec::new();
    for c in engine.registry().all() {
        for t in &c.blueprint.triggers {
            let Trigger::FolderDrop(f) = t else { continue };
            let dir = project.join(&f.path);
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::Io(format!("cannot create {}: {e}", dir.display())))?;
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| EngineError::Io(format!("cannot read {}: {e}", dir.display())))?;
            let mut files: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for path in files {
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(ToOwned::to_owned)
                else {
                    continue;
                };
                if name.starts_with('.') || !path.is_file() {
                    continue;
                }
                if !f.extensions.is_empty()
                    && !f
                        .extensions
                        .iter()
                        .any(|x| name.to_ascii_lowercase().ends_with(&x.to_ascii_lowercase()))
                {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let stamp = (
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                );
                if seen.insert(path.clone(), stamp) != Some(stamp) {
                    continue;
                }
                seen.remove(&path);
                if meta.len() > payload::MAX_FILE_BYTES {
                    set_aside(
                        &dir,
                        &path,
                        &name,
                        ".failed",
                        Some(&format!(
                            "{name} is larger than {} bytes",
                            payload::MAX_FILE_BYTES
                        )),
                    );
                    continue;
                }
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                match payload::decode(&name, &bytes) {
                    Ok(payload) => {
                        let digest = hex::encode(Sha256::digest(&bytes));
                        let key = format!("folder:{}:{}:{name}:{digest}", c.blueprint.id, f.id);
                        match engine
                            .start_run(&c.blueprint.id, Some(&f.id), payload, Some(key))
                            .await
                        {
                            Ok(s) => {
                                started.push(s);
                                set_aside(&dir, &path, &name, ".done", None);
                            }
                            Err(EngineError::Store(e)) => return Err(EngineError::Store(e)),
                            // Another engine of the team took the file; it moves it aside.
                            Err(EngineError::ClaimedElsewhere { .. }) => {}
                            // The hub cannot answer the claim: leave the file for the next scan.
                            Err(e @ EngineError::ClaimUnanswered { .. }) => return Err(e),
                            Err(e) => {
                                set_aside(&dir, &path, &name, ".failed", Some(&e.to_string()))
                            }
                        }
                    }
                    Err(message) => set_aside(&dir, &path, &name, ".failed", Some(&message)),
                }
            }
        }
    }
    Ok(started)
}

/// Move a handled file into `.done/` or `.failed/` (with a note saying why it failed).
fn set_aside(dir: &Path, path: &Path, name: &str, folder: &str, error: Option<&str>) {
    let target_dir = dir.join(folder);
    if std::fs::create_dir_all(&target_dir).is_err() {
        return;
    }
    let mut target = target_dir.join(name);
    if target.exists() {
        target = target_dir.join(format!("{}-{name}", Utc::now().format("%Y%m%dT%H%M%S%.3f")));
    }
    if let Err(e) = std::fs::rename(path, &target) {
        tracing::warn!(file = %path.display(), error = %e, "cannot move a handled file aside");
        return;
    }
    if let Some(error) = error {
        tracing::warn!(file = %name, %error, "dropped file set aside");
        let _ = std::fs::write(target.with_extension("error.txt"), format!("{error}\n"));
    }
}

/// What a timer did.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerFired {
    pub task: uuid::Uuid,
    pub run: uuid::Uuid,
    /// `reminded`, `escalated to <role>`, `approve by policy`, `reject by policy`, `needs attention`.
    pub what: String,
}

/// Fire reminders and SLA breaches due by `now` until cancelled. Timers live in the store, so
/// one that came due while the engine was down fires once when it starts.
pub async fn run_timers(engine: Engine, cancel: CancellationToken, tick: Duration) {
    loop {
        if let Err(e) = fire_due_timers(&engine, Utc::now()).await {
            tracing::warn!(error = %e, "timer check failed; retrying");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// One pass over due reminders and breaches. Each fires once: the store marks it in the same
/// commit as its event, so a second pass (or a second engine) finds nothing to do.
pub async fn fire_due_timers(
    engine: &Engine,
    now: DateTime<Utc>,
) -> Result<Vec<TimerFired>, EngineError> {
    use processops_core::blueprint::{BreachAction, Node};
    use processops_core::journal::{Action, Decision};
    use processops_store::{Breach, TimerKind};

    let now_ms = now.timestamp_millis();
    let mut fired = Vec::new();
    for (kind, row) in engine.store().due_timers(now_ms, 500)? {
        match kind {
            TimerKind::Remind => {
                if let Some(run) = engine.store().remind(row.id, now_ms).await? {
                    tracing::info!(task = %row.id, role = %row.task.role, "SLA reminder");
                    fired.push(TimerFired {
                        task: row.id,
                        run,
                        what: "reminded".into(),
                    });
                }
            }
            TimerKind::Breach => {
                let compiled = engine.version(&row.version)?;
                let Some(Node::Review(review)) = compiled.blueprint.node(&row.task.node) else {
                    continue;
                };
                let chain = &row.task.escalation;
                let rest = chain
                    .iter()
                    .position(|r| *r == row.task.role)
                    .map_or(&chain[..], |i| &chain[i + 1..]);
                let action = review.on_breach.unwrap_or(if rest.is_empty() {
                    BreachAction::Attention
                } else {
                    BreachAction::Escalate
                });
                let breach = match action {
                    BreachAction::Escalate => {
                        match (rest.first(), crate::nodes::sla_due(review, now_ms)) {
                            (Some(role), Some(due_at)) => Breach::Escalate {
                                role: role.clone(),
                                due_at,
                            },
                            // The chain is used up: a person must look at it.
                            _ => Breach::Attention,
                        }
                    }
                    BreachAction::Approve => Breach::Decide(Decision {
                        action: Action::Approve,
                        by: "sla".into(),
                        text: None,
                        reason: Some("SLA breached".into()),
                    }),
                    BreachAction::Reject => Breach::Decide(Decision {
                        action: Action::Reject,
                        by: "sla".into(),
                        text: None,
                        reason: Some("SLA breached".into()),
                    }),
                    BreachAction::Attention => Breach::Attention,
                };
                let what = match &breach {
                    Breach::Escalate { role, .. } => format!("escalated to {role}"),
                    Breach::Decide(d) => format!("{} by policy", d.action.as_str()),
                    Breach::Attention => "needs attention".into(),
                };
                if let Some((run, event)) = engine.store().breach(row.id, now_ms, breach).await? {
                    tracing::warn!(task = %row.id, %what, "SLA breached");
                    if let Some(event) = event {
                        engine.wake(run, Some(event));
                    }
                    fired.push(TimerFired {
                        task: row.id,
                        run,
                        what,
                    });
                }
            }
        }
    }
    Ok(fired)
}
