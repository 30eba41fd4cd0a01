//! Desktop notifications: a new task for one of my roles, and an SLA that ran out.

use std::collections::HashSet;
use std::time::Duration;

use processops_api::{Service, TasksQuery};
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
        }
    });
}

fn show(app: &AppHandle, title: &str, body: &str) {
    // No notification daemon (a bare X server) is not an error worth more than a log line.
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!("notification not shown: {e}");
    }
}
