-- Inbox timers: reminders before the SLA runs out, breaches, and the attention flag.
ALTER TABLE tasks ADD COLUMN remind_at INTEGER;
ALTER TABLE tasks ADD COLUMN reminded_at INTEGER;
ALTER TABLE tasks ADD COLUMN breached_at INTEGER;
ALTER TABLE tasks ADD COLUMN attention INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_by_remind ON tasks (status, remind_at) WHERE remind_at IS NOT NULL;

-- The unified diff of an edit decision, from the draft to the edited text.
ALTER TABLE tasks ADD COLUMN diff TEXT;

-- Claims: a manager takes a task so others do not work on it at the same time.
ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
ALTER TABLE tasks ADD COLUMN claimed_at INTEGER;
CREATE INDEX tasks_by_claim ON tasks (claimed_by, status) WHERE claimed_by IS NOT NULL;

-- Full-text search over task titles and drafts. It keeps its own copy keyed by task id,
-- rather than pointing at `tasks` rowids, which VACUUM may renumber.
CREATE VIRTUAL TABLE tasks_fts USING fts5 (task_id UNINDEXED, title, draft, tokenize = 'porter unicode61');
INSERT INTO tasks_fts (task_id, title, draft) SELECT id, title, draft FROM tasks;

-- Approvals towards a task's quorum: one per person.
CREATE TABLE votes (
    task_id TEXT NOT NULL,
    by      TEXT NOT NULL,
    at      INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (task_id, by)
) WITHOUT ROWID;
