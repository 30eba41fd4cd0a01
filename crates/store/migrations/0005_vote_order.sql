-- Votes in the order they arrived (two can share a millisecond).
ALTER TABLE votes ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
