-- The ProcessOps metrics' counters (processops_core::metrics): per blueprint, version and UTC
-- day, updated in the transaction of the journal event they come from. A dashboard sums a
-- window's rows instead of reading the journal. Filled from the journal when this migration
-- runs (the store rebuilds them), and rebuildable at any time.
CREATE TABLE metric_counts (
    blueprint TEXT NOT NULL,
    version   TEXT NOT NULL,
    day       INTEGER NOT NULL,
    key       TEXT NOT NULL,
    n         REAL NOT NULL,
    PRIMARY KEY (blueprint, version, day, key)
) WITHOUT ROWID;
CREATE INDEX metric_counts_by_day ON metric_counts (day);

-- What a task's final decision is judged with besides its row: was it escalated on the way.
CREATE TABLE metric_task_flags (
    task_id   TEXT PRIMARY KEY,
    escalated INTEGER NOT NULL DEFAULT 0,
    breached  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Human decisions, votes and retries a run received: none means automated end to end.
ALTER TABLE runs ADD COLUMN human_touches INTEGER NOT NULL DEFAULT 0;
