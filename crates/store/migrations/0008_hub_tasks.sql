-- Tasks with a hub (DESIGN.md §5): where a task's decision stands on the hub, and whose engine
-- owns its run.

-- NULL without a hub; 'pending' (decided here, not judged by the hub yet), 'accepted' (the
-- hub accepted a final decision), 'conflict' (a decision on it lost; see sync_conflicts).
ALTER TABLE tasks ADD COLUMN sync TEXT;
-- The hub device whose engine owns the task's run; NULL: this engine's own task.
ALTER TABLE tasks ADD COLUMN owner TEXT;

-- Who this device is on the hub (roles and scopes, JSON), so a change the hub would refuse is
-- refused here instead of blocking the outbox. NULL: not known yet (everything is sent).
ALTER TABLE sync_state ADD COLUMN principal TEXT;
