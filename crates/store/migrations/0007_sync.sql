-- This device's side of hub sync (DESIGN.md §5). Empty until the device enrols.

-- One row: who this device is on the hub, how far the hub has acknowledged its events, and
-- how far it has applied the hub's log.
CREATE TABLE sync_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    device         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    acked_seq      INTEGER NOT NULL DEFAULT 0,
    cursor         INTEGER NOT NULL DEFAULT 0,
    epoch          INTEGER NOT NULL DEFAULT 0,
    last_sync_at   INTEGER,
    last_error     TEXT
);

-- This device's own events, written in the same transaction as the change they describe;
-- kept after acknowledgement so a hub restored from a backup can be sent them again.
CREATE TABLE sync_outbox (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    task TEXT,
    body TEXT NOT NULL
);
CREATE INDEX sync_outbox_by_task ON sync_outbox (task) WHERE task IS NOT NULL;

-- The hub's log as applied here, keyed by event id (applying an event twice is a no-op).
CREATE TABLE sync_log (
    id      TEXT PRIMARY KEY,
    hub_seq INTEGER NOT NULL,
    device  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    task    TEXT,
    verdict TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX sync_log_by_task ON sync_log (task) WHERE task IS NOT NULL;

-- Tasks as the hub knows them (from any engine of the team).
CREATE TABLE sync_tasks (
    task     TEXT PRIMARY KEY,
    head     TEXT NOT NULL,
    role     TEXT NOT NULL,
    owner    TEXT NOT NULL,
    decision TEXT,
    body     TEXT NOT NULL
);

-- Decisions the hub could not accept, shown to everyone until resolved.
CREATE TABLE sync_conflicts (
    event       TEXT PRIMARY KEY,
    task        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    resolved_by TEXT
);

CREATE TABLE sync_channels (
    blueprint TEXT NOT NULL,
    stage     TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (blueprint, stage)
);

-- Accepted final decisions on tasks whose run this device's engine owns: each is acted on
-- (the run resumed, its output fired) exactly once.
CREATE TABLE sync_effects (
    task     TEXT PRIMARY KEY,
    event    TEXT NOT NULL,
    taken_at INTEGER
);
