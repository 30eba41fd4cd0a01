//! Retrieval quality: recall@k of BM25, vector and hybrid search over a small corpus with
//! known answers.
//!
//! The corpus committed in `crates/store/tests/fixtures/retrieval/` ([`Corpus::fixture`]) has
//! one Markdown file per business topic and `queries.json`, each query naming the file that
//! answers it. Some queries are paraphrases that share few words with their answer, so word
//! overlap (BM25) misses them and only a semantic embedder can find them.
//!
//! [`recall_at_k`] works with any [`Embedder`], so a real model can be measured with:
//!
//! ```text
//! let store = Store::open(&dir.join("eval.db"), Durability::Process)?;
//! let report = eval::recall_at_k(&store, &Corpus::fixture()?, Some(&my_embedder), 3).await?;
//! println!("bm25 {:.2} vector {:?} hybrid {:?}", report.bm25.all, report.vector, report.hybrid);
//! ```
//!
//! `crates/store/tests/retrieval.rs` runs it with BM25 and with a hashed bag-of-words test
//! embedder (a test double, not a semantic model).

use std::path::{Path, PathBuf};

use processops_core::knowledge::{Format, content_sha256, passages};
use processops_llm::Embedder;
use serde::{Deserialize, Serialize};

use crate::knowledge::{NewDocument, QueryVector, SearchFilter};
use crate::{Result, Store, StoreError};

/// The collection [`recall_at_k`] ingests the corpus into.
pub const COLLECTION: &str = "retrieval-eval";

/// A query and the source that answers it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EvalQuery {
    pub query: String,
    pub expected: String,
    /// Written to share few words with the answer.
    #[serde(default)]
    pub paraphrase: bool,
}

/// Documents (source, Markdown text) and the queries over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    pub documents: Vec<(String, String)>,
    pub queries: Vec<EvalQuery>,
}

#[derive(Deserialize)]
struct QueryFile {
    queries: Vec<EvalQuery>,
}

impl Corpus {
    /// The folder of the committed corpus (from this crate's source tree).
    pub fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/retrieval")
    }

    /// The committed corpus.
    pub fn fixture() -> Result<Self> {
        Self::load(&Self::fixture_dir())
    }

    /// Every `*.md` file of `dir` and its `queries.json`. Every query's `expected` must be one
    /// of the files.
    pub fn load(dir: &Path) -> Result<Self> {
        let io = |path: &Path, e: std::io::Error| {
            StoreError::Eval(format!("cannot read {}: {e}", path.display()))
        };
        let mut documents = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let path = entry.map_err(|e| io(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                documents.push((name, text));
            }
        }
        documents.sort();
        let qpath = dir.join("queries.json");
        let text = std::fs::read_to_string(&qpath).map_err(|e| io(&qpath, e))?;
        let file: QueryFile = serde_json::from_str(&text)
            .map_err(|e| StoreError::Eval(format!("{}: {e}", qpath.display())))?;
        for q in &file.queries {
            if !documents.iter().any(|(s, _)| *s == q.expected) {
                return Err(StoreError::Eval(format!(
                    "{}: query `{}` expects `{}`, which is not in the folder",
                    qpath.display(),
                    q.query,
                    q.expected
                )));
            }
        }
        Ok(Self {
            documents,
            queries: file.queries,
        })
    }
}

/// Recall@k of one search mode: the share of queries whose expected source is among the top k
/// passages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recall {
    /// Over every query.
    pub all: f64,
    /// Over the queries that share words with their answer.
    pub keyword: f64,
    /// Over the paraphrased queries.
    pub paraphrase: f64,
}

/// Recall@k of BM25, and of vector and hybrid search when an embedder was given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallReport {
    pub k: u32,
    pub queries: usize,
    pub paraphrases: usize,
    /// The embedder's model id, if one was given.
    pub model_id: Option<String>,
    pub bm25: Recall,
    pub vector: Option<Recall>,
    pub hybrid: Option<Recall>,
    /// The queries BM25 missed.
    pub bm25_misses: Vec<String>,
}

/// Ingest `corpus` into [`COLLECTION`] of `store` (passages split as `knowledge ingest` splits
/// Markdown), embed its passages and queries with `embedder` if given, and measure recall@k.
/// Embedding runs on the calling thread. Use a fresh store: other documents in the
/// collection would be searched too.
pub async fn recall_at_k(
    store: &Store,
    corpus: &Corpus,
    embedder: Option<&dyn Embedder>,
    k: u32,
) -> Result<RecallReport> {
    let docs = corpus
        .documents
        .iter()
        .map(|(source, text)| NewDocument {
            source: source.clone(),
            sha256: content_sha256(text.as_bytes()),
            passages: passages(Format::Markdown, text),
        })
        .collect();
    store.ingest_documents(COLLECTION.into(), docs).await?;

    let embed = |texts: &[String]| -> Result<Vec<Vec<f32>>> {
        let Some(e) = embedder else {
            return Ok(Vec::new());
        };
        let vectors = e.embed(texts).map_err(|err| StoreError::Embedding {
            model: e.model_id().to_owned(),
            message: err.to_string(),
        })?;
        if vectors.len() != texts.len() {
            return Err(StoreError::Embedding {
                model: e.model_id().to_owned(),
                message: format!("{} texts gave {} vectors", texts.len(), vectors.len()),
            });
        }
        Ok(vectors)
    };
    let model_id = embedder.map(|e| e.model_id().to_owned());
    if let Some(model) = &model_id {
        loop {
            let missing = store.passages_missing_embedding(COLLECTION, model, 64)?;
            if missing.is_empty() {
                break;
            }
            let (ids, texts): (Vec<i64>, Vec<String>) = missing.into_iter().unzip();
            let vectors = embed(&texts)?;
            store
                .set_embeddings(model.clone(), ids.into_iter().zip(vectors).collect())
                .await?;
        }
    }
    let texts: Vec<String> = corpus.queries.iter().map(|q| q.query.clone()).collect();
    let query_vectors = embed(&texts)?;

    let filter = SearchFilter::default();
    let mut bm25 = Vec::new();
    let mut vector = Vec::new();
    let mut hybrid = Vec::new();
    let mut bm25_misses = Vec::new();
    for (i, q) in corpus.queries.iter().enumerate() {
        let found = |sources: Vec<String>| sources.contains(&q.expected);
        let hits = store.search_hybrid(COLLECTION, &q.query, None, k, &filter)?;
        let hit = found(hits.hits.into_iter().map(|h| h.source).collect());
        if !hit {
            bm25_misses.push(q.query.clone());
        }
        bm25.push(hit);
        if let (Some(model), Some(v)) = (&model_id, query_vectors.get(i)) {
            let qv = QueryVector {
                model_id: model,
                vector: v,
            };
            let hits = store.search_vector(COLLECTION, qv, k, &filter)?;
            vector.push(found(hits.into_iter().map(|h| h.source).collect()));
            let hits = store.search_hybrid(COLLECTION, &q.query, Some(qv), k, &filter)?;
            hybrid.push(found(hits.hits.into_iter().map(|h| h.source).collect()));
        }
    }
    let recall = |found: &[bool]| {
        let share = |keep: &dyn Fn(&EvalQuery) -> bool| {
            let picked: Vec<bool> = corpus
                .queries
                .iter()
                .zip(found)
                .filter(|(q, _)| keep(q))
                .map(|(_, f)| *f)
                .collect();
            if picked.is_empty() {
                0.0
            } else {
                picked.iter().filter(|f| **f).count() as f64 / picked.len() as f64
            }
        };
        Recall {
            all: share(&|_| true),
            keyword: share(&|q| !q.paraphrase),
            paraphrase: share(&|q| q.paraphrase),
        }
    };
    let with_embedder = model_id.is_some();
    Ok(RecallReport {
        k,
        queries: corpus.queries.len(),
        paraphrases: corpus.queries.iter().filter(|q| q.paraphrase).count(),
        bm25: recall(&bm25),
        vector: with_embedder.then(|| recall(&vector)),
        hybrid: with_embedder.then(|| recall(&hybrid)),
        bm25_misses,
        model_id,
    })
}
