//! Content-addressed blueprint versions.

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use crate::{Result, Store, now_ms};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRow {
    pub hash: String,
    pub blueprint_id: String,
    pub name: String,
    pub source: String,
    pub created_at: i64,
}

/// A `blueprint_versions` row read as `hash, blueprint_id, name, source, created_at`.
pub(crate) fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        hash: r.get(0)?,
        blueprint_id: r.get(1)?,
        name: r.get(2)?,
        source: r.get(3)?,
        created_at: r.get(4)?,
    })
}

impl Store {
    /// Record a version (a no-op when the hash is known: versions are immutable).
    pub async fn put_version(
        &self,
        hash: String,
        blueprint_id: String,
        name: String,
        source: String,
    ) -> Result<()> {
        self.write(move |conn| {
            let new = conn.prepare_cached(
                "INSERT OR IGNORE INTO blueprint_versions (hash, blueprint_id, name, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![hash, blueprint_id, name, source, now_ms()])?;
            if new == 1 {
                // The engine records the versions it loads; no person is known here.
                crate::audit::record_in(
                    conn,
                    "engine",
                    "version.added",
                    &format!("{blueprint_id}@{hash}"),
                    None,
                    Some(&serde_json::json!({ "blueprint": blueprint_id, "name": name, "hash": hash })),
                )?;
            }
            Ok(())
        })
        .await
    }

    pub fn version(&self, hash: &str) -> Result<Option<VersionRow>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT hash, blueprint_id, name, source, created_at FROM blueprint_versions WHERE hash = ?1")?
                .query_row([hash], version_row)
                .optional()?)
        })
    }
}
