-- Trigger occurrences claimed by an engine (`claimed` events): the first claim of a key wins.
CREATE TABLE claims (
    team   TEXT NOT NULL,
    entity TEXT NOT NULL,
    device TEXT NOT NULL,
    PRIMARY KEY (team, entity)
);
