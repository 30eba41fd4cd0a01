-- The inbox's default order (soonest due first, undated last) as a column an index can serve,
-- so "my pending tasks by due time" reads the first page straight off an index.
ALTER TABLE tasks ADD COLUMN due_key INTEGER GENERATED ALWAYS AS (coalesce(due_at, 9223372036854775807)) VIRTUAL;
CREATE INDEX tasks_by_role_due ON tasks (role, status, due_key, created_at);
CREATE INDEX tasks_by_status_due_key ON tasks (status, due_key, created_at);
