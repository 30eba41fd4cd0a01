//! Desktop notifications: a new task for one of my roles, an SLA that ran out, and drift in
//! a process I own.

use std::collections::HashSet;
use std::time::Duration;

use processops_api::{AlertsQuery, Service, TasksQuery};
use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt as _;
use tokio_util::sync::CancellationToken;

const POLL: Duration = Duration::from_secs(5);

/// Watch the inbox and notify about what changed since the last look. Tasks present at
/// start-up are not announced.
pub fn spawn(app: AppHandle, service: Service, cancel: CancellationToken) {
    tauri::async_runtime::spawn(async move {
        let mut seen: Option<HashSet<uuid::Uuid>> = None;
        let mut breached: HashSet<uuid::Uuid> = HashSet::new();
        let mut alerted: Option<HashSet<i64>> = None;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
            let Ok(me) = service.me() else { continue };
            let Ok(tasks) = service.tasks(&TasksQuery {
                status: Some("pending".into()),
                limit: Some(10_000),
                ..TasksQuery::default()
            }) else {
                continue;
            };
            let mine = |role: &str| me.single_user || me.roles.iter().any(|r| r == role);
            let first_look = seen.is_none();
            let known = seen.get_or_insert_with(HashSet::new);
            for t in tasks.iter().filter(|t| mine(&t.role)) {
                if known.insert(t.id) && !first_look {
                    show(&app, "New task in your inbox", &t.title);
                }
                if t.breached_at.is_some() && breached.insert(t.id) && !first_look {
                    show(&app, "SLA breached", &t.title);
                }
            }
            let owner = (!me.single_user).then(|| me.name.clone());
            if let Ok(alerts) = service.drift_alerts(&AlertsQuery { owner, since: None }) {
                let first = alerted.is_none();
                let known = alerted.get_or_insert_with(HashSet::new);
                for a in alerts {
                    if known.insert(a.id) && !first {
                        let body = format!(
                            "{} version {}: drift index {:.2} ({})",
                            a.blueprint,
                            a.version.get(..8).unwrap_or(&a.version),
                            a.drift,
                            a.component.replace('_', " ")
                        );
                        show(&app, "Process drift", &body);
                    }
                }
            }
        }
    });
}

fn show(app: &AppHandle, title: &str, body: &str) {
    // No notification daemon (a bare X server) is not an error worth more than a log line.
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!("notification not shown: {e}");
    }
}
