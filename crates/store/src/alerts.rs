//! Drift alerts: which version's drift index crossed the threshold, when, and whose attention
//! (the blueprint's `lifecycle.owner`) it was sent to. Each is audited.

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;
use serde_json::json;

use crate::{Result, Store, now_ms};

/// A drift alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftAlertRow {
    pub id: i64,
    pub blueprint_id: String,
    pub version: String,
    pub drift: f64,
    /// The component that moved most: `decisions`, `tags`, `output_length`, `prompt_failures`.
    pub component: String,
    /// A person or a role; `None` when the blueprint names no owner.
    pub owner: Option<String>,
    pub at: i64,
}

/// What a drift check found for one version.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDriftAlert {
    pub blueprint_id: String,
    pub version: String,
    pub drift: f64,
    pub component: String,
    pub owner: Option<String>,
}

impl Store {
    /// Record an alert unless the version had one within `quiet_ms` (a drifting version is
    /// announced once per period, not on every check). Returns the new alert.
    pub async fn record_drift_alert(
        &self,
        alert: NewDriftAlert,
        quiet_ms: i64,
    ) -> Result<Option<DriftAlertRow>> {
        self.write(move |conn| {
            let now = now_ms();
            let recent: Option<i64> = conn
                .prepare_cached(
                    "SELECT id FROM drift_alerts WHERE version = ?1 AND at > ?2 LIMIT 1",
                )?
                .query_row(params![alert.version, now - quiet_ms], |r| r.get(0))
                .optional()?;
            if recent.is_some() {
                return Ok(None);
            }
            conn.prepare_cached(
                "INSERT INTO drift_alerts (blueprint_id, version, drift, component, owner, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                alert.blueprint_id,
                alert.version,
                alert.drift,
                alert.component,
                alert.owner,
                now
            ])?;
            let id = conn.last_insert_rowid();
            crate::audit::record_in(
                conn,
                "engine",
                "drift.flagged",
                &format!("{}@{}", alert.blueprint_id, alert.version),
                None,
                Some(&json!({ "drift": alert.drift, "component": alert.component, "owner": alert.owner })),
            )?;
            Ok(Some(DriftAlertRow {
                id,
                blueprint_id: alert.blueprint_id,
                version: alert.version,
                drift: alert.drift,
                component: alert.component,
                owner: alert.owner,
                at: now,
            }))
        })
        .await
    }

    /// Alerts since a time (Unix ms), newest first.
    pub fn drift_alerts(&self, since: i64, limit: u32) -> Result<Vec<DriftAlertRow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, blueprint_id, version, drift, component, owner, at FROM drift_alerts
                 WHERE at >= ?1 ORDER BY at DESC, id DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![since, limit], |r| {
                    Ok(DriftAlertRow {
                        id: r.get(0)?,
                        blueprint_id: r.get(1)?,
                        version: r.get(2)?,
                        drift: r.get(3)?,
                        component: r.get(4)?,
                        owner: r.get(5)?,
                        at: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
