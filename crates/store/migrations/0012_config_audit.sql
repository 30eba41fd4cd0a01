-- The roles (`[users]`) and settings of processops.toml as last seen, so an edit made to the
-- file between two starts is recorded in the audit log with its before and after.
CREATE TABLE config_snapshot (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
