use thiserror::Error;

/// Everything the store can refuse or fail at.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "cannot open the database at {path}: {source}. Check that the folder exists and is writable"
    )]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "the database at {path} was written by a newer ProcessOps (schema {found}, this build knows {known}); upgrade ProcessOps"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("stored JSON is corrupt: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no run has the id {0}")]
    RunNotFound(String),
    #[error("no task has the id {0}")]
    TaskNotFound(String),
    #[error("task {task} was already decided by {by} ({action})")]
    AlreadyDecided {
        task: String,
        by: String,
        action: String,
    },
    #[error(
        "task {task} is claimed by {by}; ask them, or take it over with `inbox unclaim --force`"
    )]
    Claimed { task: String, by: String },
    #[error(
        "{by} has already approved task {task}; a quorum needs approvals from different people"
    )]
    AlreadyVoted { task: String, by: String },
    /// The hub would refuse this change for this device's user (roles, scopes).
    #[error("{0}")]
    HubForbidden(String),
    #[error("no conflict has the id {0}")]
    ConflictNotFound(String),
    #[error("conflict {0} is resolved already")]
    ConflictClosed(String),
    #[error("this project is not enrolled with a hub; run `processops hub enrol <hub-url> <code>`")]
    NotEnrolled,
    #[error("embedding passages with model `{model}` failed: {message}")]
    Embedding { model: String, message: String },
    #[error("retrieval evaluation: {0}")]
    Eval(String),
    /// A change-control move that cannot be made (not proposed, moved meanwhile).
    #[error("{0}")]
    Lifecycle(String),
    #[error("audit log: {0}")]
    Audit(String),
    #[error("cannot write the audit export: {0}")]
    AuditExport(std::io::Error),
    #[error("the store's writer has stopped; restart ProcessOps")]
    WriterGone,
    #[error("internal store error: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
