//! Knowledge collections: documents, their passages (BM25 via FTS5, optional embeddings for
//! hybrid search) and recent memory.
//!
//! A document is a file ingested into a collection, keyed by (collection, source) and
//! remembered with the SHA-256 of its bytes: re-ingesting the same bytes changes nothing, and
//! changed bytes replace the document's passages in one transaction (the FTS index follows
//! through the `passages_ai` / `passages_ad` triggers).
//!
//! Hybrid search fuses two rankings by reciprocal rank fusion (RRF): FTS5's BM25 over the
//! passage text, and cosine similarity between the query vector and every stored vector of the
//! collection made by the same model (brute force: vectors are L2-normalised, so a dot product
//! is the cosine). A passage at rank `r` of a list gets `1 / (60 + r)` from it; passages are
//! ordered by the sum.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use processops_llm::Embedder;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::{Result, Store, StoreError, now_ms};

/// The `k` of reciprocal rank fusion: a passage at rank `r` of a list scores `1 / (RRF_K + r)`.
pub const RRF_K: f64 = 60.0;

/// A retrieved passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    pub source: String,
    pub text: String,
    /// Relevance, higher is better: BM25 for a text search, the fused RRF score for a hybrid
    /// one, the cosine for a vector search.
    pub score: f64,
}

/// A document to ingest: where it came from, the SHA-256 of its bytes, and its passages.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// The file's path relative to the ingested folder, `/` between folders.
    pub source: String,
    /// Lowercase hex SHA-256 of the file's bytes (`core::knowledge::content_sha256`).
    pub sha256: String,
    pub passages: Vec<String>,
}

/// What ingesting a document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentChange {
    /// The collection did not have it.
    Added,
    /// Its content changed: its old passages were replaced.
    Updated,
    /// Same content as last time: nothing was written.
    Unchanged,
}

/// A document of a collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentRow {
    pub source: String,
    pub sha256: String,
    /// Milliseconds since the Unix epoch.
    pub ingested_at: i64,
    pub passages: u32,
}

/// Which passages a search considers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// Only sources matching this glob (SQLite `GLOB`: `*` any characters including `/`, `?`
    /// one character, case-sensitive). Blueprint validation refuses `[` and `]`
    /// (`core::knowledge::check_source_filter`), so only `*` and `?` are special.
    pub source_glob: Option<String>,
}

/// A query's embedding and the model that made it; only vectors of the same model are compared.
#[derive(Debug, Clone, Copy)]
pub struct QueryVector<'a> {
    pub model_id: &'a str,
    pub vector: &'a [f32],
}

/// How a search ranked its hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// BM25 over the text only.
    Bm25,
    /// Cosine similarity only.
    Vector,
    /// BM25 and cosine fused by reciprocal rank fusion.
    Hybrid,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bm25 => "bm25",
            Self::Vector => "vector",
            Self::Hybrid => "hybrid",
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The passage's row id.
    pub id: i64,
    pub source: String,
    pub text: String,
    /// See [`Passage::score`].
    pub score: f64,
    /// The best-matching words of the passage with matches in `**bold**` (FTS5 `snippet()`);
    /// the passage's first words when only the vector found it.
    pub snippet: String,
    /// 1-based rank in the BM25 list, if it was there.
    pub bm25_rank: Option<u32>,
    /// 1-based rank in the cosine list, if it was there.
    pub vector_rank: Option<u32>,
}

impl Hit {
    pub fn passage(&self) -> Passage {
        Passage {
            source: self.source.clone(),
            text: self.text.clone(),
            score: self.score,
        }
    }
}

/// The hits of a search and how they were ranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// `Hybrid` only when a query vector was given and the collection has vectors of its model;
    /// otherwise `Bm25`.
    pub mode: SearchMode,
    pub hits: Vec<Hit>,
}

/// Words of a passage shown as the snippet of a hit found only by its vector.
const SNIPPET_WORDS: usize = 24;

impl Store {
    /// Add passages to a collection without a document; a passage already present (same source
    /// and content) is skipped. Returns how many were new. `knowledge ingest` uses
    /// [`Store::ingest_documents`] instead, which also replaces changed documents.
    pub async fn ingest(
        &self,
        collection: String,
        passages: Vec<(String, String)>,
    ) -> Result<usize> {
        self.write(move |conn| {
            let mut added = 0;
            for (source, text) in &passages {
                added += insert_passage(conn, &collection, source, text)?;
            }
            Ok(added)
        })
        .await
    }

    /// The SHA-256 of every document of a collection, by source: what a re-ingest compares
    /// before it reads (and parses) a file again.
    pub fn document_hashes(&self, collection: &str) -> Result<HashMap<String, String>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT source, sha256 FROM documents WHERE collection = ?1")?;
            let rows = stmt
                .query_map(params![collection], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<HashMap<_, _>>>()?;
            Ok(rows)
        })
    }

    /// The documents of a collection, by source.
    pub fn documents(&self, collection: &str) -> Result<Vec<DocumentRow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT source, sha256, ingested_at, passages FROM documents
                 WHERE collection = ?1 ORDER BY source",
            )?;
            let rows = stmt
                .query_map(params![collection], |r| {
                    Ok(DocumentRow {
                        source: r.get(0)?,
                        sha256: r.get(1)?,
                        ingested_at: r.get(2)?,
                        passages: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Add or replace documents in one commit. A document whose SHA-256 is the stored one is
    /// left alone; otherwise every passage with its (collection, source) is deleted, including
    /// ones added by [`Store::ingest`], and its new passages are added. One change per
    /// document, in order.
    pub async fn ingest_documents(
        &self,
        collection: String,
        documents: Vec<NewDocument>,
    ) -> Result<Vec<DocumentChange>> {
        self.write(move |conn| {
            let mut changes = Vec::with_capacity(documents.len());
            for doc in &documents {
                let stored: Option<String> = conn
                    .prepare_cached(
                        "SELECT sha256 FROM documents WHERE collection = ?1 AND source = ?2",
                    )?
                    .query_row(params![collection, doc.source], |r| r.get(0))
                    .optional()?;
                let change = match stored {
                    Some(hash) if hash == doc.sha256 => {
                        changes.push(DocumentChange::Unchanged);
                        continue;
                    }
                    Some(_) => DocumentChange::Updated,
                    None => DocumentChange::Added,
                };
                conn.prepare_cached("DELETE FROM passages WHERE collection = ?1 AND source = ?2")?
                    .execute(params![collection, doc.source])?;
                let mut count = 0usize;
                for text in &doc.passages {
                    count += insert_passage(conn, &collection, &doc.source, text)?;
                }
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO documents (collection, source, sha256, ingested_at, passages)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![collection, doc.source, doc.sha256, now_ms(), count])?;
                changes.push(change);
            }
            Ok(changes)
        })
        .await
    }

    /// Remove the documents of a collection whose source is not in `keep`, with their passages.
    /// Returns the removed sources, sorted. Passages added without a document are kept.
    pub async fn prune_documents(
        &self,
        collection: String,
        keep: Vec<String>,
    ) -> Result<Vec<String>> {
        self.write(move |conn| {
            let keep: HashSet<&str> = keep.iter().map(String::as_str).collect();
            let mut gone: Vec<String> = conn
                .prepare_cached("SELECT source FROM documents WHERE collection = ?1")?
                .query_map(params![collection], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|s| !keep.contains(s.as_str()))
                .collect();
            gone.sort();
            for source in &gone {
                conn.prepare_cached("DELETE FROM passages WHERE collection = ?1 AND source = ?2")?
                    .execute(params![collection, source])?;
                conn.prepare_cached("DELETE FROM documents WHERE collection = ?1 AND source = ?2")?
                    .execute(params![collection, source])?;
            }
            Ok(gone)
        })
        .await
    }

    /// How many passages a collection has, and how many of them have a vector of `model_id`.
    pub fn passage_counts(&self, collection: &str, model_id: &str) -> Result<(u64, u64)> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM passages WHERE collection = ?1),
                            (SELECT count(*) FROM passage_vectors
                             WHERE collection = ?1 AND model_id = ?2)",
                )?
                .query_row(params![collection, model_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?)
        })
    }

    /// Best passages for a free-text query, by BM25.
    pub fn search(&self, collection: &str, query: &str, limit: u32) -> Result<Vec<Passage>> {
        let hits = self.read(|conn| bm25_hits(conn, collection, query, None, limit))?;
        Ok(hits.iter().map(Hit::passage).collect())
    }

    /// The `top_k` best passages for a query: BM25 over `query_text` fused by reciprocal rank
    /// fusion with the cosine ranking of `query_vector` against the collection's vectors of
    /// the same model. Without a query vector, or when no passage has a vector of its model,
    /// this is a BM25 search ([`SearchResult::mode`] says which).
    pub fn search_hybrid(
        &self,
        collection: &str,
        query_text: &str,
        query_vector: Option<QueryVector<'_>>,
        top_k: u32,
        filter: &SearchFilter,
    ) -> Result<SearchResult> {
        let glob = filter.source_glob.as_deref();
        self.read(|conn| {
            // Each list contributes more candidates than asked for, so a passage ranked
            // moderately by both can rise above one ranked first by only one of them.
            let pool = top_k.saturating_mul(4).max(50);
            let ranked = match query_vector {
                Some(q) => vector_ranking(conn, collection, q, glob, pool)?,
                None => Vec::new(),
            };
            if ranked.is_empty() {
                let hits = bm25_hits(conn, collection, query_text, glob, top_k)?;
                return Ok(SearchResult {
                    mode: SearchMode::Bm25,
                    hits,
                });
            }
            let fts_query = to_fts_query(query_text);
            let bm25 = match &fts_query {
                Some(q) => bm25_ranking(conn, collection, q, glob, pool)?,
                None => Vec::new(),
            };
            Ok(SearchResult {
                mode: SearchMode::Hybrid,
                hits: fuse(conn, fts_query.as_deref(), &bm25, &ranked, top_k)?,
            })
        })
    }

    /// The `top_k` passages whose vectors (of the query's model) are closest to the query
    /// vector, by cosine; for measuring the vector side of hybrid search on its own.
    pub fn search_vector(
        &self,
        collection: &str,
        query_vector: QueryVector<'_>,
        top_k: u32,
        filter: &SearchFilter,
    ) -> Result<Vec<Hit>> {
        let glob = filter.source_glob.as_deref();
        self.read(|conn| {
            let ranked = vector_ranking(conn, collection, query_vector, glob, top_k)?;
            let mut hits = Vec::with_capacity(ranked.len());
            for (i, (id, cosine)) in ranked.into_iter().enumerate() {
                let (source, text) = passage_by_id(conn, id)?;
                hits.push(Hit {
                    id,
                    snippet: leading_words(&text),
                    source,
                    text,
                    score: f64::from(cosine),
                    bm25_rank: None,
                    vector_rank: Some(rank(i)),
                });
            }
            Ok(hits)
        })
    }

    /// Up to `limit` passages of a collection without a vector of `model_id` (none yet, or one
    /// of another model), as (passage id, text).
    pub fn passages_missing_embedding(
        &self,
        collection: &str,
        model_id: &str,
        limit: u32,
    ) -> Result<Vec<(i64, String)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT p.id, p.text FROM passages p
                 LEFT JOIN passage_vectors v ON v.passage_id = p.id
                 WHERE p.collection = ?1 AND (v.passage_id IS NULL OR v.model_id IS NOT ?2)
                 ORDER BY p.id LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![collection, model_id, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Store vectors of `model_id` for passages (replacing any of another model), L2-normalised
    /// here so a dot product is the cosine. Passages deleted meanwhile are skipped. Returns how
    /// many passages got a vector. A vector that is empty, not finite or all zeros is refused.
    pub async fn set_embeddings(
        &self,
        model_id: String,
        vectors: Vec<(i64, Vec<f32>)>,
    ) -> Result<usize> {
        let mut blobs = Vec::with_capacity(vectors.len());
        for (id, v) in vectors {
            let blob = encode_unit_vector(&v).ok_or_else(|| StoreError::Embedding {
                model: model_id.clone(),
                message: format!(
                    "passage {id} got a vector that is empty, all zeros or not finite ({} values)",
                    v.len()
                ),
            })?;
            blobs.push((id, blob));
        }
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT OR REPLACE INTO passage_vectors (passage_id, collection, source, model_id, embedding)
                 SELECT id, collection, source, ?3, ?2 FROM passages WHERE id = ?1",
            )?;
            let mut n = 0;
            for (id, blob) in &blobs {
                n += stmt.execute(params![id, blob, model_id])?;
            }
            Ok(n)
        })
        .await
    }

    /// Embed every passage of a collection that has no vector of `embedder`'s model, `batch`
    /// texts at a time on a blocking thread, calling `progress` with the number done so far.
    /// Returns how many passages were embedded.
    pub async fn embed_missing(
        &self,
        collection: &str,
        embedder: Arc<dyn Embedder>,
        batch: u32,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<usize> {
        let model_id = embedder.model_id().to_owned();
        let mut done = 0;
        loop {
            let missing = self.passages_missing_embedding(collection, &model_id, batch.max(1))?;
            if missing.is_empty() {
                return Ok(done);
            }
            let (ids, texts): (Vec<i64>, Vec<String>) = missing.into_iter().unzip();
            let e = embedder.clone();
            let vectors = tokio::task::spawn_blocking(move || e.embed(&texts))
                .await
                .map_err(|e| StoreError::Embedding {
                    model: model_id.clone(),
                    message: format!("the embedding thread stopped: {e}"),
                })?
                .map_err(|e| StoreError::Embedding {
                    model: model_id.clone(),
                    message: e.to_string(),
                })?;
            if vectors.len() != ids.len() {
                return Err(StoreError::Embedding {
                    model: model_id,
                    message: format!("{} texts gave {} vectors", ids.len(), vectors.len()),
                });
            }
            let n = ids.len();
            self.set_embeddings(model_id.clone(), ids.into_iter().zip(vectors).collect())
                .await?;
            done += n;
            progress(done);
        }
    }

    /// Remember an approved output about a subject.
    pub async fn remember(
        &self,
        subject: String,
        blueprint_id: String,
        run_id: String,
        text: String,
    ) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached("INSERT OR IGNORE INTO memory (subject, blueprint_id, run_id, at, text) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![subject, blueprint_id, run_id, now_ms(), text])?;
            Ok(())
        })
        .await
    }

    /// The last `limit` remembered texts about a subject, newest first.
    pub fn recall(&self, subject: &str, limit: u32) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT text FROM memory WHERE subject = ?1 ORDER BY at DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![subject, limit], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

/// Insert one passage unless the same (collection, source, content) is there; 1 if inserted.
fn insert_passage(conn: &Connection, collection: &str, source: &str, text: &str) -> Result<usize> {
    let hash = format!("{:x}", fxhash(text));
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO passages (collection, source, hash, text) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![collection, source, hash, text])?)
}

/// The BM25 hits of a collection's passages for free text, best first.
fn bm25_hits(
    conn: &Connection,
    collection: &str,
    query: &str,
    glob: Option<&str>,
    limit: u32,
) -> Result<Vec<Hit>> {
    let Some(fts_query) = to_fts_query(query) else {
        return Ok(Vec::new());
    };
    let ranked = bm25_ranking(conn, collection, &fts_query, glob, limit)?;
    let mut hits = Vec::with_capacity(ranked.len());
    for (i, (id, score)) in ranked.into_iter().enumerate() {
        let (source, text, snippet) = with_snippet(conn, &fts_query, id)?;
        hits.push(Hit {
            id,
            source,
            text,
            score,
            snippet,
            bm25_rank: Some(rank(i)),
            vector_rank: None,
        });
    }
    Ok(hits)
}

/// The BM25 ranking as (passage id, BM25 score), best first.
///
/// Snippets are not computed here: `snippet()` in the ranking query would run for every
/// matching row before the sort (with common words, most of the collection), so
/// [`with_snippet`] computes it afterwards for the returned passages only.
fn bm25_ranking(
    conn: &Connection,
    collection: &str,
    fts_query: &str,
    glob: Option<&str>,
    limit: u32,
) -> Result<Vec<(i64, f64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT p.id, -bm25(passages_fts) AS score
             FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid
             WHERE passages_fts MATCH ?1 AND p.collection = ?2 AND (?4 IS NULL OR p.source GLOB ?4)
             ORDER BY bm25(passages_fts) LIMIT ?3",
        )?
        .query_map(params![fts_query, collection, limit, glob], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A passage's source, text and FTS5 snippet for the query (by rowid, so FTS5 seeks to it).
fn with_snippet(conn: &Connection, fts_query: &str, id: i64) -> Result<(String, String, String)> {
    Ok(conn
        .prepare_cached(
            "SELECT p.source, p.text, snippet(passages_fts, 0, '**', '**', '…', 24)
             FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid
             WHERE passages_fts MATCH ?1 AND passages_fts.rowid = ?2",
        )?
        .query_row(params![fts_query, id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?)
}

/// The `limit` passages (of the collection, with a vector of the query's model, matching the
/// filter) closest to the query vector, as (id, cosine), best first. Empty when there are none.
fn vector_ranking(
    conn: &Connection,
    collection: &str,
    q: QueryVector<'_>,
    glob: Option<&str>,
    limit: u32,
) -> Result<Vec<(i64, f32)>> {
    let Some(query) = unit_vector(q.vector) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT passage_id, embedding FROM passage_vectors
         WHERE collection = ?1 AND model_id = ?2 AND (?3 IS NULL OR source GLOB ?3)",
    )?;
    let mut rows = stmt.query(params![collection, q.model_id, glob])?;
    let mut scored: Vec<(i64, f32)> = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let rusqlite::types::ValueRef::Blob(blob) = row.get_ref(1)? else {
            continue;
        };
        // A vector of another length cannot come from the same model; it is not comparable.
        if blob.len() != query.len() * 4 {
            continue;
        }
        let dot: f32 = blob
            .chunks_exact(4)
            .zip(&query)
            .map(|(b, q)| <[u8; 4]>::try_from(b).map_or(0.0, f32::from_le_bytes) * q)
            .sum();
        scored.push((id, dot));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let by_score = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scored.len() > limit && limit > 0 {
        scored.select_nth_unstable_by(limit - 1, by_score);
    }
    scored.truncate(limit);
    scored.sort_unstable_by(by_score);
    Ok(scored)
}

/// Reciprocal rank fusion of the BM25 ranking and the cosine ranking; the best `top_k`, with
/// their text and snippets (read for the winners only).
fn fuse(
    conn: &Connection,
    fts_query: Option<&str>,
    bm25: &[(i64, f64)],
    ranked: &[(i64, f32)],
    top_k: u32,
) -> Result<Vec<Hit>> {
    // id → (BM25 rank, cosine rank)
    let mut ranks: HashMap<i64, (Option<u32>, Option<u32>)> = HashMap::new();
    for (i, (id, _)) in bm25.iter().enumerate() {
        ranks.entry(*id).or_default().0 = Some(rank(i));
    }
    for (i, (id, _)) in ranked.iter().enumerate() {
        ranks.entry(*id).or_default().1 = Some(rank(i));
    }
    let rrf = |r: Option<u32>| r.map_or(0.0, |r| 1.0 / (RRF_K + f64::from(r)));
    let mut fused: Vec<(i64, f64, Option<u32>, Option<u32>)> = ranks
        .into_iter()
        .map(|(id, (b, v))| (id, rrf(b) + rrf(v), b, v))
        .collect();
    fused.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(a.2.unwrap_or(u32::MAX).cmp(&b.2.unwrap_or(u32::MAX)))
            .then(a.0.cmp(&b.0))
    });
    fused.truncate(usize::try_from(top_k).unwrap_or(usize::MAX));
    let mut hits = Vec::with_capacity(fused.len());
    for (id, score, bm25_rank, vector_rank) in fused {
        let (source, text, snippet) = match (bm25_rank, fts_query) {
            (Some(_), Some(q)) => with_snippet(conn, q, id)?,
            _ => {
                let (source, text) = passage_by_id(conn, id)?;
                let snippet = leading_words(&text);
                (source, text, snippet)
            }
        };
        hits.push(Hit {
            id,
            source,
            text,
            score,
            snippet,
            bm25_rank,
            vector_rank,
        });
    }
    Ok(hits)
}

fn passage_by_id(conn: &Connection, id: i64) -> Result<(String, String)> {
    Ok(conn
        .prepare_cached("SELECT source, text FROM passages WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

fn rank(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// The first words of a passage, as the snippet of a hit FTS5 did not find.
fn leading_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() > SNIPPET_WORDS {
        format!("{}…", words[..SNIPPET_WORDS].join(" "))
    } else {
        words.join(" ")
    }
}

/// `v` scaled to length 1, or `None` when it is empty, all zeros or not finite.
fn unit_vector(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (!v.is_empty() && norm.is_finite() && norm > 0.0).then(|| v.iter().map(|x| x / norm).collect())
}

/// A unit vector as little-endian f32 bytes.
fn encode_unit_vector(v: &[f32]) -> Option<Vec<u8>> {
    Some(
        unit_vector(v)?
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    )
}

/// Turn free text into an FTS5 query of OR-ed quoted terms, so user text can never be
/// FTS5 syntax (a stray `"` or `NEAR(` in a payload must not break retrieval).
pub(crate) fn to_fts_query(text: &str) -> Option<String> {
    fts_terms(text, " OR ")
}

/// Like [`to_fts_query`], but every word must be present (for filtering, not ranking).
pub(crate) fn to_fts_all_words(text: &str) -> Option<String> {
    fts_terms(text, " AND ")
}

fn fts_terms(text: &str, joiner: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.chars().count() > 1)
        .take(32)
        .map(|t| format!("\"{}\"", t.to_lowercase()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(joiner))
}

/// A stable content fingerprint for de-duplicating ingests (not security-relevant).
fn fxhash(text: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike std's SipHash seed.
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{encode_unit_vector, leading_words, to_fts_query, unit_vector};

    #[test]
    fn hostile_text_becomes_plain_terms() {
        assert_eq!(
            to_fts_query("NEAR(\"a\" b) OR *"),
            Some("\"near\" OR \"or\"".to_owned())
        );
        assert_eq!(to_fts_query("!!"), None);
    }

    #[test]
    fn vectors_are_normalised_and_degenerate_ones_refused() {
        let u = unit_vector(&[3.0, 4.0]).unwrap();
        assert!((u[0] - 0.6).abs() < 1e-6 && (u[1] - 0.8).abs() < 1e-6);
        assert_eq!(unit_vector(&[]), None);
        assert_eq!(unit_vector(&[0.0, 0.0]), None);
        assert_eq!(unit_vector(&[f32::NAN, 1.0]), None);
        assert_eq!(encode_unit_vector(&[2.0]).unwrap(), 1.0f32.to_le_bytes());
    }

    #[test]
    fn vector_only_snippets_are_the_first_words() {
        assert_eq!(leading_words("a  b\nc"), "a b c");
        let long = vec!["w"; 30].join(" ");
        assert!(leading_words(&long).ends_with("w…"));
    }
}
