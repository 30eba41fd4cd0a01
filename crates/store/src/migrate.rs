//! Numbered migrations, tracked in `PRAGMA user_version`.

use std::path::Path;

use rusqlite::Connection;

use crate::{Result, StoreError};

/// Creates the metrics' counters; the store fills them from the journal in the same transaction.
const METRICS: &str = include_str!("../migrations/0010_metrics.sql");

/// Migrations in order; the index + 1 is the schema version it produces. Never edit one
/// that has shipped: add a new file.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_feedback.sql"),
    include_str!("../migrations/0003_inbox.sql"),
    include_str!("../migrations/0004_inbox_order.sql"),
    include_str!("../migrations/0005_vote_order.sql"),
    include_str!("../migrations/0006_knowledge.sql"),
    include_str!("../migrations/0007_sync.sql"),
    include_str!("../migrations/0008_hub_tasks.sql"),
    include_str!("../migrations/0009_audit.sql"),
    METRICS,
    include_str!("../migrations/0011_lifecycle.sql"),
    include_str!("../migrations/0012_config_audit.sql"),
];

pub(crate) fn run(conn: &mut Connection, path: &Path) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if *sql == METRICS {
            crate::metrics::rebuild(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
