//! Knowledge collections: incremental re-ingest by content hash, pruning, source filters,
//! embeddings and hybrid search, against a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use processops_llm::{Embedder, LlmError};
use processops_store::{
    DocumentChange, Durability, NewDocument, QueryVector, SearchFilter, SearchMode, Store,
};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    (dir, store)
}

fn doc(source: &str, version: &str, passages: &[&str]) -> NewDocument {
    NewDocument {
        source: source.into(),
        sha256: format!("sha-{source}-{version}"),
        passages: passages.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn sources(store: &Store, collection: &str, query: &str) -> Vec<String> {
    store
        .search(collection, query, 10)
        .unwrap()
        .into_iter()
        .map(|p| p.source)
        .collect()
}

/// FTS5's own consistency check of the external-content index against `passages`.
fn fts_is_consistent(dir: &tempfile::TempDir) {
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    conn.execute(
        "INSERT INTO passages_fts (passages_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .expect("the FTS index matches the passages");
}

#[tokio::test]
async fn re_ingest_skips_unchanged_documents_and_replaces_changed_ones() {
    let (dir, store) = store();
    let changes = store
        .ingest_documents(
            "hr".into(),
            vec![
                doc(
                    "travel.md",
                    "1",
                    &[
                        "Book flights through the portal.",
                        "Hotels up to 150 euros.",
                    ],
                ),
                doc("leave.md", "1", &["26 days of annual leave."]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(changes, vec![DocumentChange::Added, DocumentChange::Added]);
    let docs = store.documents("hr").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        (docs[1].source.as_str(), docs[1].passages),
        ("travel.md", 2)
    );
    let first_ingest = docs[1].ingested_at;

    // Same bytes: nothing is written, not even the timestamp.
    let changes = store
        .ingest_documents("hr".into(), vec![doc("travel.md", "1", &["ignored text"])])
        .await
        .unwrap();
    assert_eq!(changes, vec![DocumentChange::Unchanged]);
    assert_eq!(store.documents("hr").unwrap()[1].ingested_at, first_ingest);
    assert!(sources(&store, "hr", "ignored").is_empty());

    // Changed bytes: the old passages go, from the FTS index too.
    let changes = store
        .ingest_documents(
            "hr".into(),
            vec![doc(
                "travel.md",
                "2",
                &["Trains are preferred for short journeys."],
            )],
        )
        .await
        .unwrap();
    assert_eq!(changes, vec![DocumentChange::Updated]);
    assert!(
        sources(&store, "hr", "hotels flights").is_empty(),
        "old passages are gone"
    );
    assert_eq!(sources(&store, "hr", "trains"), vec!["travel.md"]);
    assert_eq!(store.documents("hr").unwrap()[1].passages, 1);
    assert_eq!(store.passage_counts("hr", "m").unwrap(), (2, 0));
    fts_is_consistent(&dir);

    // Another collection with the same source is separate.
    let changes = store
        .ingest_documents("other".into(), vec![doc("travel.md", "2", &["Hotels."])])
        .await
        .unwrap();
    assert_eq!(changes, vec![DocumentChange::Added]);
    assert_eq!(sources(&store, "hr", "trains"), vec!["travel.md"]);
}

#[tokio::test]
async fn a_document_replaces_passages_ingested_without_one() {
    let (dir, store) = store();
    store
        .ingest(
            "hr".into(),
            vec![("travel.md".into(), "Old flights text.".into())],
        )
        .await
        .unwrap();
    store
        .ingest_documents(
            "hr".into(),
            vec![doc("travel.md", "1", &["New trains text."])],
        )
        .await
        .unwrap();
    assert!(sources(&store, "hr", "flights").is_empty());
    assert_eq!(sources(&store, "hr", "trains"), vec!["travel.md"]);
    fts_is_consistent(&dir);
}

#[tokio::test]
async fn prune_removes_only_documents_not_kept() {
    let (dir, store) = store();
    store
        .ingest_documents(
            "hr".into(),
            vec![
                doc("a.md", "1", &["alpha words"]),
                doc("b.md", "1", &["bravo words"]),
                doc("c.md", "1", &["charlie words"]),
            ],
        )
        .await
        .unwrap();
    store
        .ingest("hr".into(), vec![("loose.md".into(), "loose words".into())])
        .await
        .unwrap();
    let gone = store
        .prune_documents("hr".into(), vec!["b.md".into()])
        .await
        .unwrap();
    assert_eq!(gone, vec!["a.md", "c.md"]);
    let mut left = sources(&store, "hr", "words");
    left.sort();
    assert_eq!(
        left,
        vec!["b.md", "loose.md"],
        "passages without a document stay"
    );
    assert_eq!(store.documents("hr").unwrap().len(), 1);
    fts_is_consistent(&dir);
}

#[tokio::test]
async fn source_filters_are_globs_over_the_relative_path() {
    let (_dir, store) = store();
    store
        .ingest_documents(
            "kb".into(),
            vec![
                doc("policies/travel.md", "1", &["travel policy text"]),
                doc("policies/eu/leave.md", "1", &["leave policy text"]),
                doc("policies/scan.pdf", "1", &["scanned policy text"]),
                doc("notes/policy.md", "1", &["policy notes text"]),
            ],
        )
        .await
        .unwrap();
    let found = |glob: &str| {
        let mut s: Vec<String> = store
            .search_hybrid(
                "kb",
                "policy text",
                None,
                10,
                &SearchFilter {
                    source_glob: Some(glob.into()),
                },
            )
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.source)
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        found("policies/*.md"),
        vec!["policies/eu/leave.md", "policies/travel.md"]
    );
    assert_eq!(found("*.pdf"), vec!["policies/scan.pdf"]);
    assert_eq!(found("notes/policy.md"), vec!["notes/policy.md"]);
    assert_eq!(found("policies/????el.md"), vec!["policies/travel.md"]);
    assert!(found("Policies/*").is_empty(), "case-sensitive");
    assert_eq!(found("*").len(), 4);
}

/// A test double: a text's vector is the axis of the first topic one of whose words it
/// contains. Not a semantic model: it only lets the tests decide what the vector side finds.
struct TopicEmbedder {
    id: &'static str,
    topics: &'static [&'static [&'static str]],
}

impl Embedder for TopicEmbedder {
    fn model_id(&self) -> &str {
        self.id
    }
    fn dimensions(&self) -> usize {
        self.topics.len() + 1
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0; self.dimensions()];
                let axis = self
                    .topics
                    .iter()
                    .position(|words| words.iter().any(|w| t.to_lowercase().contains(w)))
                    .unwrap_or(self.topics.len());
                v[axis] = 3.0; // not normalised: the store normalises
                v
            })
            .collect())
    }
}

const TOPICS: TopicEmbedder = TopicEmbedder {
    id: "test-topics-v1",
    topics: &[
        &["baby", "parental"],
        &["money", "refund"],
        &["stolen", "laptop"],
    ],
};

#[tokio::test]
async fn hybrid_search_fuses_bm25_with_vectors_of_the_same_model() {
    let (_dir, store) = store();
    store
        .ingest_documents(
            "kb".into(),
            vec![
                doc("leave.md", "1", &["Parental leave is 16 weeks."]),
                doc("refunds.md", "1", &["Refunds within 30 days."]),
                doc("security.md", "1", &["Call IT to wipe a missing laptop."]),
                doc("time.md", "1", &["Time off requests go to your manager."]),
            ],
        )
        .await
        .unwrap();
    let none = SearchFilter::default();
    let query = "how much time off when I have a baby";

    // Without vectors: BM25 only, and the words find only the wrong document.
    let r = store.search_hybrid("kb", query, None, 2, &none).unwrap();
    assert_eq!(r.mode, SearchMode::Bm25);
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].source, "time.md");
    assert!(
        r.hits[0].snippet.contains("**Time**"),
        "{}",
        r.hits[0].snippet
    );

    // A query vector but no stored vectors of its model: still BM25.
    let qv = TOPICS.embed(&[query.to_owned()]).unwrap().remove(0);
    let q = QueryVector {
        model_id: TOPICS.id,
        vector: &qv,
    };
    assert_eq!(
        store
            .search_hybrid("kb", query, Some(q), 2, &none)
            .unwrap()
            .mode,
        SearchMode::Bm25
    );

    let embedder: std::sync::Arc<dyn Embedder> = std::sync::Arc::new(TOPICS);
    let mut seen = Vec::new();
    let n = store
        .embed_missing("kb", embedder.clone(), 3, &mut |done| seen.push(done))
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(seen, vec![3, 4], "progress per batch");
    assert_eq!(store.passage_counts("kb", TOPICS.id).unwrap(), (4, 4));
    assert_eq!(
        store
            .embed_missing("kb", embedder, 3, &mut |_| {})
            .await
            .unwrap(),
        0,
        "nothing left to embed"
    );

    // Vector only: the baby passage is the nearest (cosine 1 after normalisation).
    let v = store.search_vector("kb", q, 4, &none).unwrap();
    assert_eq!(v[0].source, "leave.md");
    assert!((v[0].score - 1.0).abs() < 1e-6, "{}", v[0].score);
    assert_eq!(v[0].vector_rank, Some(1));

    // Hybrid: the vector's first pick rises to the top by reciprocal rank fusion.
    let r = store.search_hybrid("kb", query, Some(q), 2, &none).unwrap();
    assert_eq!(r.mode, SearchMode::Hybrid);
    let top: Vec<&str> = r.hits.iter().map(|h| h.source.as_str()).collect();
    assert!(
        top.contains(&"leave.md") && top.contains(&"time.md"),
        "{top:?}"
    );
    let leave = r.hits.iter().find(|h| h.source == "leave.md").unwrap();
    assert_eq!((leave.bm25_rank, leave.vector_rank), (None, Some(1)));
    assert!((leave.score - 1.0 / 61.0).abs() < 1e-12, "RRF score");
    assert!(
        !leave.snippet.is_empty(),
        "a vector-only hit still has a snippet"
    );
    assert!(r.hits[0].score >= r.hits[1].score);

    // A filter applies to the vector side too.
    let only_refunds = SearchFilter {
        source_glob: Some("refunds.md".into()),
    };
    let r = store
        .search_hybrid("kb", query, Some(q), 5, &only_refunds)
        .unwrap();
    assert!(
        r.hits.iter().all(|h| h.source == "refunds.md"),
        "{:?}",
        r.hits
    );

    // Another model's query vector never meets these vectors.
    let other = QueryVector {
        model_id: "another-model",
        vector: &qv,
    };
    assert!(
        store
            .search_vector("kb", other, 4, &none)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .search_hybrid("kb", query, Some(other), 2, &none)
            .unwrap()
            .mode,
        SearchMode::Bm25
    );

    // A changed document's new passages need embedding again; the others keep theirs.
    store
        .ingest_documents("kb".into(), vec![doc("time.md", "2", &["Overtime rules."])])
        .await
        .unwrap();
    let missing = store
        .passages_missing_embedding("kb", TOPICS.id, 10)
        .unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].1, "Overtime rules.");
    assert_eq!(
        store.passage_counts("kb", TOPICS.id).unwrap(),
        (4, 3),
        "the replaced passage's vector went with it"
    );
    // And a new model needs every passage embedded.
    assert_eq!(
        store
            .passages_missing_embedding("kb", "model-2", 10)
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn unusable_vectors_are_refused_with_the_model_named() {
    let (_dir, store) = store();
    store
        .ingest_documents("kb".into(), vec![doc("a.md", "1", &["text"])])
        .await
        .unwrap();
    let id = store.passages_missing_embedding("kb", "m", 1).unwrap()[0].0;
    let err = store
        .set_embeddings("m".into(), vec![(id, vec![0.0, 0.0])])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("model `m`"), "{err}");
    let err = store
        .set_embeddings("m".into(), vec![(id, vec![f32::NAN])])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
    assert_eq!(
        store
            .set_embeddings("m".into(), vec![(id, vec![1.0]), (9999, vec![1.0])])
            .await
            .unwrap(),
        1,
        "a deleted passage is skipped"
    );
}

#[tokio::test]
async fn hostile_queries_never_break_any_search() {
    let (_dir, store) = store();
    store
        .ingest_documents("kb".into(), vec![doc("a.md", "1", &["plain text"])])
        .await
        .unwrap();
    let v = [1.0f32];
    for hostile in [
        "\"",
        "NEAR(",
        "*",
        "a AND OR",
        "'; DROP TABLE passages; --",
        "",
    ] {
        store
            .search_hybrid("kb", hostile, None, 5, &SearchFilter::default())
            .unwrap();
        store
            .search_hybrid(
                "kb",
                hostile,
                Some(QueryVector {
                    model_id: "m",
                    vector: &v,
                }),
                5,
                &SearchFilter {
                    source_glob: Some(hostile.into()),
                },
            )
            .unwrap();
    }
}
