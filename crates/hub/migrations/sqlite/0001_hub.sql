-- The hub's tables (SQLite). Every row belongs to a team; nothing is read across teams.
CREATE TABLE teams (
    name       TEXT PRIMARY KEY,
    epoch      INTEGER NOT NULL DEFAULT 1,
    -- The last hub sequence number handed out: dense, allocated inside the push transaction.
    next_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    team   TEXT NOT NULL REFERENCES teams (name),
    name   TEXT NOT NULL,
    roles  TEXT NOT NULL,  -- JSON array
    scopes TEXT NOT NULL,  -- JSON array
    PRIMARY KEY (team, name)
);
CREATE TABLE enrolments (
    code_hash  TEXT PRIMARY KEY,
    team       TEXT NOT NULL,
    member     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    team       TEXT NOT NULL,
    member     TEXT NOT NULL,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE events (
    team     TEXT NOT NULL,
    hub_seq  INTEGER NOT NULL,
    id       TEXT NOT NULL UNIQUE,
    device   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    entity   TEXT NOT NULL,
    verdict  TEXT NOT NULL,  -- JSON
    body     TEXT NOT NULL,  -- the event as pushed (JSON)
    PRIMARY KEY (team, hub_seq),
    UNIQUE (device, seq)
);
CREATE TABLE tasks (
    team       TEXT NOT NULL,
    task       TEXT NOT NULL,
    head       TEXT NOT NULL,
    role       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    decided_by TEXT,
    PRIMARY KEY (team, task)
);
CREATE TABLE conflicts (
    team        TEXT NOT NULL,
    event       TEXT NOT NULL,
    task        TEXT NOT NULL,
    resolved_by TEXT,
    PRIMARY KEY (team, event)
);
CREATE TABLE tags (
    team    TEXT NOT NULL,
    entity  TEXT NOT NULL,
    counter INTEGER NOT NULL,
    PRIMARY KEY (team, entity)
);
CREATE TABLE versions (
    team      TEXT NOT NULL,
    hash      TEXT NOT NULL,
    blueprint TEXT NOT NULL,
    canonical TEXT NOT NULL,
    source    TEXT NOT NULL,
    PRIMARY KEY (team, hash)
);
CREATE TABLE channels (
    team      TEXT NOT NULL,
    blueprint TEXT NOT NULL,
    stage     TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (team, blueprint, stage)
);
