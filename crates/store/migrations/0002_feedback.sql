-- Feedback tags, ratings and comments on outputs (finished run steps).
--
-- One row per (output, evaluator, tag) with a counter its single writer bumps on every
-- effective add or remove: odd = present. Merging takes the larger counter, so applying the
-- same change twice or out of order changes nothing. Removed tags keep their row (an even
-- counter) so a late, older add cannot bring them back. No foreign key to `runs`: synced tags
-- may arrive before the run they are about.
CREATE TABLE feedback_tags (
    run_id     TEXT NOT NULL,
    node       TEXT NOT NULL,
    visit      INTEGER NOT NULL,
    evaluator  TEXT NOT NULL,
    tag        TEXT NOT NULL,
    counter    INTEGER NOT NULL CHECK (counter >= 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, node, visit, evaluator, tag)
) WITHOUT ROWID;
CREATE INDEX feedback_tags_by_evaluator ON feedback_tags (evaluator, run_id);

-- An evaluator's rating (1-5) and comment on an output; the higher revision wins a merge.
CREATE TABLE feedback_notes (
    run_id     TEXT NOT NULL,
    node       TEXT NOT NULL,
    visit      INTEGER NOT NULL,
    evaluator  TEXT NOT NULL,
    rating     INTEGER CHECK (rating BETWEEN 1 AND 5),
    comment    TEXT,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, node, visit, evaluator)
) WITHOUT ROWID;
CREATE INDEX feedback_notes_by_evaluator ON feedback_notes (evaluator, run_id);

