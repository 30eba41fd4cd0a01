//! SQLite persistence for ProcessOps: numbered migrations, the run journal and its
//! projections (runs, inbox tasks), blueprint versions, schedule state and knowledge.
//!
//! Writes go through one writer thread that commits whatever is queued in a single
//! transaction (group commit): many runs' journal appends share one WAL write, yet no caller
//! is answered before its data is committed. Reads use a small pool of read connections
//! (WAL lets them run beside the writer).

mod alerts;
mod audit;
mod error;
pub mod eval;
mod feedback;
mod knowledge;
mod lifecycle;
mod metrics;
mod migrate;
mod runs;
mod schedule;
pub mod sync;
pub mod synthetic;
mod tasks;
mod telemetry;
mod versions;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub use alerts::{DriftAlertRow, NewDriftAlert};
pub use audit::{AuditFilter, AuditFormat};
pub use error::{Result, StoreError};
pub use feedback::{
    FeedbackFilter, FinishedStep, NoteChange, NoteRow, OutputQuery, OutputRow, TagChange, TagRow,
};
pub use knowledge::{
    DocumentChange, DocumentRow, Hit, NewDocument, Passage, QueryVector, RRF_K, SearchFilter,
    SearchMode, SearchResult,
};
pub use lifecycle::{StageChangeRow, StageRow};
pub use metrics::{Drill, DrillRow, MetricsWindow, VersionCounts};
pub use runs::{JournalEntry, NewRun, RunFilter, RunRow, RunStatus, StartOutcome};
pub use tasks::{
    Breach, Decided, SyncMark, TaskFilter, TaskRow, TaskSort, TaskStatus, TimerKind, Timers, Vote,
};
pub use telemetry::{BlueprintTotals, InboxGauges, ModelCall, StepRecord};
pub use versions::VersionRow;

/// What a committed write survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a commit survives the process being killed; a power
    /// loss may lose the last commits but never corrupts the database.
    #[default]
    Process,
    /// `synchronous=FULL`: every commit is fsynced before it is acknowledged.
    PowerLoss,
}

/// Escape `%`, `_` and the backslash so user text matches itself in a `LIKE ... ESCAPE` pattern.
pub(crate) fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    durability: Durability,
    writer: writer::Writer,
    readers: Mutex<Vec<Connection>>,
    /// Test only: see `Store::plant_non_idempotent_apply`.
    planted_sync: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Self> {
        let mut conn = connect(path, durability)?;
        migrate::run(&mut conn, path)?;
        let writer = writer::Writer::spawn(conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                durability,
                writer,
                readers: Mutex::new(Vec::new()),
                planted_sync: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` on a pooled read connection.
    fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let pooled = self
            .inner
            .readers
            .lock()
            .map_err(|_| StoreError::Internal("reader pool poisoned".into()))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.inner.path, self.inner.durability)?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.inner.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        result
    }

    /// Run `f` inside the writer's next transaction and wait until it is committed.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.inner.writer.submit(f).await
    }
}

fn connect(path: &Path, durability: Durability) -> Result<Connection> {
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    // `mmap_size`: read the database file through a memory map (up to 256 MiB) instead of
    // copying every page miss through `pread` into a 2 MB per-connection cache. A hybrid
    // knowledge search scans every vector of a collection, which evicts the FTS pages from
    // that cache; without the map the next BM25 query re-reads them (3-4x slower in
    // `processops bench retrieval`). Writes are unaffected.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {sync};
         PRAGMA busy_timeout = 10000;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA mmap_size = 268435456;"
    ))
    .map_err(open_err)?;
    Ok(conn)
}
