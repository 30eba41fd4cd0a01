-- Change control (issue 7): where each proposed blueprint version stands, and every move
-- between stages. A blueprint with no row here is unmanaged: its file's version runs.

CREATE TABLE version_stages (
    version      TEXT PRIMARY KEY REFERENCES blueprint_versions (hash),
    blueprint_id TEXT NOT NULL,
    stage        TEXT NOT NULL,
    -- Who proposed it, why, and the feedback that motivated it (JSON array of references:
    -- task ids, outputs `run:node:visit`, tags).
    author       TEXT NOT NULL,
    note         TEXT NOT NULL,
    feedback     TEXT NOT NULL DEFAULT '[]',
    proposed_at  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- Last approval (Unix ms); a rollback looks for the version approved before.
    approved_at  INTEGER,
    rolled_back  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX version_stages_by_blueprint ON version_stages (blueprint_id, stage);

CREATE TABLE stage_changes (
    seq          INTEGER PRIMARY KEY,
    blueprint_id TEXT NOT NULL,
    version      TEXT NOT NULL,
    from_stage   TEXT,
    to_stage     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    by_user      TEXT NOT NULL,
    at           INTEGER NOT NULL,
    note         TEXT
);
CREATE INDEX stage_changes_by_blueprint ON stage_changes (blueprint_id, seq);

-- The latest prompt regression gate of a version: its report (JSON), shown at promotion.
CREATE TABLE version_gates (
    version TEXT PRIMARY KEY REFERENCES blueprint_versions (hash),
    report  TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at      INTEGER NOT NULL
);

-- Drift alerts: a version whose process drift index crossed the threshold, and the owner
-- (`lifecycle.owner`, a person or a role) it was sent to. One per version per quiet period.
CREATE TABLE drift_alerts (
    id           INTEGER PRIMARY KEY,
    blueprint_id TEXT NOT NULL,
    version      TEXT NOT NULL,
    drift        REAL NOT NULL,
    component    TEXT NOT NULL,
    owner        TEXT,
    at           INTEGER NOT NULL
);
CREATE INDEX drift_alerts_by_version ON drift_alerts (version, at);
CREATE INDEX drift_alerts_by_at ON drift_alerts (at);
