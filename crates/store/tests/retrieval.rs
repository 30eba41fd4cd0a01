//! Retrieval quality on the committed corpus (`tests/fixtures/retrieval/`): recall@3 of BM25,
//! and of vector and hybrid search with a test embedder. A real model is measured the same way
//! with `processops_store::eval::recall_at_k(&store, &corpus, Some(&model), 3)`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use processops_llm::{Embedder, LlmError};
use processops_store::eval::{Corpus, recall_at_k};
use processops_store::{Durability, Store};

/// BM25's recall@3 on the corpus, measured when it was written: 17 of 17 keyword queries and
/// 3 of 10 paraphrases (20 of 27 ≈ 0.74). The floor allows one more miss (19 of 27 ≈ 0.70);
/// falling below it means splitting or ranking got worse.
const BM25_RECALL_FLOOR: f64 = 0.70;

/// A test double, NOT a semantic model: a hashed bag of words (lowercase words of three or
/// more letters, a trailing `s` dropped, each hashed to one of 256 signed buckets), L2-normalised.
/// It only knows word overlap, so it behaves like a weaker BM25; it exercises the vector and
/// hybrid paths without a model download.
struct HashedBagOfWords;

impl HashedBagOfWords {
    const DIMENSIONS: usize = 256;
}

impl Embedder for HashedBagOfWords {
    fn model_id(&self) -> &str {
        "test-hashed-bag-of-words-256"
    }

    fn dimensions(&self) -> usize {
        Self::DIMENSIONS
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0.0f32; Self::DIMENSIONS];
                for word in text
                    .to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() >= 3)
                {
                    let word = word.strip_suffix('s').unwrap_or(word);
                    let h = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                    });
                    let bucket = (h % Self::DIMENSIONS as u64) as usize;
                    v[bucket] += if h >> 63 == 0 { 1.0 } else { -1.0 };
                }
                let norm = v
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt()
                    .max(f32::MIN_POSITIVE);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("eval.db"), Durability::Process).unwrap();
    (dir, store)
}

#[test]
fn the_fixture_has_distinct_topics_and_paraphrased_queries() {
    let corpus = Corpus::fixture().unwrap();
    assert!((12..=20).contains(&corpus.documents.len()));
    assert!(corpus.queries.len() >= 25);
    assert!(corpus.queries.iter().filter(|q| q.paraphrase).count() >= 8);
    // Every document answers at least one query.
    for (source, _) in &corpus.documents {
        assert!(
            corpus.queries.iter().any(|q| q.expected == *source),
            "{source} answers no query"
        );
    }
}

#[tokio::test]
async fn bm25_recall_at_3_stays_above_its_measured_floor() {
    let (_dir, store) = fresh_store();
    let corpus = Corpus::fixture().unwrap();
    let report = recall_at_k(&store, &corpus, None, 3).await.unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(report.queries, corpus.queries.len());
    assert!(
        report.bm25.all >= BM25_RECALL_FLOOR,
        "BM25 recall@3 {:.2} fell below {BM25_RECALL_FLOOR}; missed: {:#?}",
        report.bm25.all,
        report.bm25_misses
    );
    assert!(
        report.bm25.keyword > report.bm25.paraphrase,
        "keyword queries are BM25's strength: {:?}",
        report.bm25
    );
    assert_eq!(report.vector, None);
    assert_eq!(report.hybrid, None);
    assert_eq!(report.model_id, None);
}

#[tokio::test]
async fn vector_and_hybrid_recall_are_measured_with_any_embedder() {
    let (_dir, store) = fresh_store();
    let corpus = Corpus::fixture().unwrap();
    let report = recall_at_k(&store, &corpus, Some(&HashedBagOfWords), 3)
        .await
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(
        report.model_id.as_deref(),
        Some("test-hashed-bag-of-words-256")
    );
    let vector = report.vector.expect("vector recall with an embedder");
    let hybrid = report.hybrid.expect("hybrid recall with an embedder");
    // Word overlap through hashed buckets finds most keyword queries…
    assert!(vector.keyword >= 0.6, "{vector:?}");
    // …and fusing it with BM25 keeps BM25's keyword recall.
    assert!(
        hybrid.keyword >= report.bm25.keyword - 0.1,
        "{hybrid:?} vs {:?}",
        report.bm25
    );
    let (all, embedded) = store
        .passage_counts(
            processops_store::eval::COLLECTION,
            "test-hashed-bag-of-words-256",
        )
        .unwrap();
    assert!(
        all > 0 && embedded == all,
        "every passage was embedded: {embedded} of {all}"
    );
}
