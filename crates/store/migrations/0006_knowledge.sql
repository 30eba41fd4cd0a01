-- Documents ingested into knowledge collections, so a re-ingest skips unchanged files (same
-- SHA-256) and replaces the passages of changed ones. A passage belongs to the document with
-- the same (collection, source).
CREATE TABLE documents (
    collection  TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    ingested_at INTEGER NOT NULL,
    passages    INTEGER NOT NULL,
    PRIMARY KEY (collection, source)
) WITHOUT ROWID;

-- Optional embeddings for hybrid search, one per passage: little-endian f32, L2-normalised,
-- with the id of the model that made them (vectors of different models are never compared).
-- They live beside `passages` rather than in it, so BM25's join over `passages` keeps reading
-- small rows; `collection` and `source` are copied from the passage (which never changes) so
-- the vector scan needs no join.
CREATE TABLE passage_vectors (
    passage_id INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    source     TEXT NOT NULL,
    model_id   TEXT NOT NULL,
    embedding  BLOB NOT NULL
);
CREATE INDEX passage_vectors_by_model ON passage_vectors (collection, model_id);
CREATE TRIGGER passage_vectors_ad AFTER DELETE ON passages BEGIN
    DELETE FROM passage_vectors WHERE passage_id = old.id;
END;
