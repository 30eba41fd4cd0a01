//! Retrieval quality with the real embedding model on the committed fixture corpus
//! (`crates/store/tests/fixtures/retrieval/`): recall@3 of BM25, MiniLM vectors and the hybrid
//! of both. Needs `processops models pull`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use processops_local::MiniLm;
use processops_local::catalog;
use processops_store::eval::{Corpus, recall_at_k};
use processops_store::{Durability, Store};

#[tokio::test]
async fn minilm_finds_what_keywords_miss_and_hybrid_keeps_the_best_of_both() {
    let models = catalog::models_dir();
    let model = MiniLm::load(&models).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("eval.db"), Durability::Process).unwrap();
    let corpus = Corpus::fixture().unwrap();
    let report = recall_at_k(&store, &corpus, Some(&model), 3).await.unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    let vector = report.vector.unwrap();
    let hybrid = report.hybrid.unwrap();
    // Paraphrases share few words with their answer: meaning has to find them.
    assert!(
        vector.paraphrase > report.bm25.paraphrase,
        "MiniLM {vector:?} vs BM25 {:?}",
        report.bm25
    );
    assert!(
        hybrid.all >= report.bm25.all && hybrid.all >= vector.all - 0.05,
        "hybrid {hybrid:?}, BM25 {:?}, vector {vector:?}",
        report.bm25
    );
    assert!(hybrid.all >= 0.85, "hybrid recall@3 {:.2}", hybrid.all);
}
