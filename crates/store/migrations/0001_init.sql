-- Blueprint versions are immutable and content-addressed.
CREATE TABLE blueprint_versions (
    hash         TEXT PRIMARY KEY,
    blueprint_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    source       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX blueprint_versions_by_blueprint ON blueprint_versions (blueprint_id, created_at);

-- One row per run; its truth is the journal, this row is a projection for listing.
CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    blueprint_id TEXT NOT NULL,
    version      TEXT NOT NULL REFERENCES blueprint_versions (hash),
    trigger_id   TEXT NOT NULL,
    dedupe_key   TEXT UNIQUE,
    status       TEXT NOT NULL,
    last_seq     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    error        TEXT
);
CREATE INDEX runs_by_status ON runs (status, updated_at);
CREATE INDEX runs_by_blueprint ON runs (blueprint_id, created_at);
CREATE INDEX runs_by_created ON runs (created_at);

-- The append-only journal every run's state is derived from.
CREATE TABLE journal (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    node   TEXT,
    body   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Inbox tasks, projected from TaskCreated / DecisionRecorded / TaskEscalated.
CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    node         TEXT NOT NULL,
    visit        INTEGER NOT NULL,
    blueprint_id TEXT NOT NULL,
    version      TEXT NOT NULL,
    title        TEXT NOT NULL,
    draft        TEXT NOT NULL,
    role         TEXT NOT NULL,
    users        TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    due_at       INTEGER,
    decided_at   INTEGER,
    decided_by   TEXT,
    decision     TEXT,
    body         TEXT NOT NULL
);
CREATE INDEX tasks_by_status_due ON tasks (status, due_at, created_at);
CREATE INDEX tasks_by_run ON tasks (run_id);

-- When each schedule trigger last fired, so a restart neither skips nor repeats a fire.
CREATE TABLE schedule_state (
    blueprint_id TEXT NOT NULL,
    trigger_id   TEXT NOT NULL,
    last_fire    INTEGER NOT NULL,
    PRIMARY KEY (blueprint_id, trigger_id)
);

-- Knowledge passages for `retrieve` nodes (BM25 over FTS5).
CREATE TABLE passages (
    id         INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    source     TEXT NOT NULL,
    hash       TEXT NOT NULL,
    text       TEXT NOT NULL,
    UNIQUE (collection, source, hash)
);
CREATE VIRTUAL TABLE passages_fts USING fts5 (text, content = 'passages', content_rowid = 'id', tokenize = 'porter unicode61');
CREATE TRIGGER passages_ai AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER passages_ad AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

-- Recent memory: approved outputs keyed by a subject (a customer, an employee).
CREATE TABLE memory (
    subject      TEXT NOT NULL,
    blueprint_id TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    text         TEXT NOT NULL,
    PRIMARY KEY (subject, at, run_id)
);
