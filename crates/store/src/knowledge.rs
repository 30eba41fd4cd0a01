//! Knowledge passages (BM25 via FTS5) and recent memory.

use rusqlite::params;
use serde::Serialize;

use crate::{Result, Store, now_ms};

/// A retrieved passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    pub source: String,
    pub text: String,
    /// BM25 relevance, higher is better.
    pub score: f64,
}

impl Store {
    /// Add passages to a collection; a passage already present (same source and content) is skipped.
    /// Returns how many were new.
    pub async fn ingest(
        &self,
        collection: String,
        passages: Vec<(String, String)>,
    ) -> Result<usize> {
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached("INSERT OR IGNORE INTO passages (collection, source, hash, text) VALUES (?1, ?2, ?3, ?4)")?;
            let mut added = 0;
            for (source, text) in &passages {
                let hash = format!("{:x}", fxhash(text));
                added += stmt.execute(params![collection, source, hash, text])?;
            }
            Ok(added)
        })
        .await
    }

    /// Best passages for a free-text query.
    pub fn search(&self, collection: &str, query: &str, limit: u32) -> Result<Vec<Passage>> {
        let Some(fts_query) = to_fts_query(query) else {
            return Ok(Vec::new());
        };
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT p.source, p.text, -bm25(passages_fts) AS score
                 FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid
                 WHERE passages_fts MATCH ?1 AND p.collection = ?2
                 ORDER BY bm25(passages_fts) LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![fts_query, collection, limit], |r| {
                    Ok(Passage {
                        source: r.get(0)?,
                        text: r.get(1)?,
                        score: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
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
mod tests {
    use super::to_fts_query;

    #[test]
    fn hostile_text_becomes_plain_terms() {
        assert_eq!(
            to_fts_query("NEAR(\"a\" b) OR *"),
            Some("\"near\" OR \"or\"".to_owned())
        );
        assert_eq!(to_fts_query("!!"), None);
    }
}
