-- The audit log (issue 7): who did what, when, with the state before and after. Each entry
-- carries the previous entry's hash and its own (the byte layout is documented in
-- `processops_core::audit`), so an edited, deleted or reordered row breaks the chain.

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL,
    at        INTEGER NOT NULL,
    device    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    -- Canonical JSON text, exactly the bytes that were hashed; NULL: none.
    before    TEXT,
    after     TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_by_at ON audit (at);
CREATE INDEX audit_by_actor ON audit (actor);
CREATE INDEX audit_by_subject ON audit (subject);

-- One row: the end of the chain, updated in the transaction of every append, so entries
-- removed from the end are detected too (the rest would still be a valid chain).
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, count, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only in the schema too, so no code path of ProcessOps can change history by mistake.
-- (Someone with the file can drop these; `processops audit verify` catches what they do next.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
