-- The hub's tables (PostgreSQL). Every row belongs to a team; nothing is read across teams.
CREATE TABLE teams (
    name       TEXT PRIMARY KEY,
    epoch      BIGINT NOT NULL DEFAULT 1,
    -- The last hub sequence number handed out: dense, allocated inside the push transaction.
    next_seq   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
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
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    team       TEXT NOT NULL,
    member     TEXT NOT NULL,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE events (
    team     TEXT NOT NULL,
    hub_seq  BIGINT NOT NULL,
    id       TEXT NOT NULL UNIQUE,
    device   TEXT NOT NULL,
    seq      BIGINT NOT NULL,
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
    counter BIGINT NOT NULL,
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
-- Only for the planted naive-sequence bug (tests): a sequence is not transactional, so rows
-- numbered from it can commit out of order.
CREATE SEQUENCE naive_hub_seq;
