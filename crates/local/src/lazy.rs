//! Models that load on first use, so commands that never call a model (listing the inbox,
//! validating a blueprint) do not pay a second of loading.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use futures::future::BoxFuture;
use processops_llm::{CallContext, ChatModel, ChatRequest, ChatResponse, Embedder, LlmError};

use crate::{LocalChat, MiniLm};

/// A GGUF chat model loaded on its first call.
pub struct LazyChat {
    /// `None`: the built-in model from this models directory.
    file: Option<PathBuf>,
    models: PathBuf,
    cell: tokio::sync::OnceCell<LocalChat>,
}

impl LazyChat {
    pub fn builtin(models: PathBuf) -> Self {
        Self {
            file: None,
            models,
            cell: tokio::sync::OnceCell::new(),
        }
    }

    pub fn file(path: PathBuf) -> Self {
        Self {
            file: Some(path),
            models: PathBuf::new(),
            cell: tokio::sync::OnceCell::new(),
        }
    }

    async fn model(&self) -> Result<&LocalChat, LlmError> {
        self.cell
            .get_or_try_init(|| async {
                let (file, models) = (self.file.clone(), self.models.clone());
                tokio::task::spawn_blocking(move || match file {
                    Some(path) => LocalChat::load(&path),
                    None => LocalChat::load_builtin(&models),
                })
                .await
                .map_err(|e| LlmError::InvalidConfig(format!("loading the model stopped: {e}")))?
                .map_err(LlmError::from)
            })
            .await
    }
}

impl ChatModel for LazyChat {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move { self.model().await?.chat(req, ctx).await })
    }

    fn system(&self) -> &'static str {
        "processops.builtin"
    }
}

/// MiniLM loaded on its first use.
pub struct LazyMiniLm {
    models: PathBuf,
    cell: OnceLock<MiniLm>,
    loading: Mutex<()>,
}

impl LazyMiniLm {
    pub fn new(models: PathBuf) -> Self {
        Self {
            models,
            cell: OnceLock::new(),
            loading: Mutex::new(()),
        }
    }

    fn model(&self) -> Result<&MiniLm, LlmError> {
        if let Some(m) = self.cell.get() {
            return Ok(m);
        }
        let _guard = self
            .loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.cell.get().is_none() {
            let loaded = MiniLm::load(&self.models)?;
            let _ = self.cell.set(loaded);
        }
        self.cell
            .get()
            .ok_or_else(|| LlmError::InvalidConfig("the embedding model did not load".into()))
    }
}

impl Embedder for LazyMiniLm {
    fn model_id(&self) -> &str {
        crate::embed::MODEL_ID
    }

    fn dimensions(&self) -> usize {
        crate::embed::DIMENSIONS
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        self.model()?.embed(texts)
    }
}
