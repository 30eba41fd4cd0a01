use std::path::PathBuf;

/// Everything that can go wrong with the built-in models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A model file is not on disk yet.
    #[error(
        "the built-in model file {} is missing; run `processops models pull` (it downloads and checks the files once, about 190 MB)",
        path.display()
    )]
    Missing { path: PathBuf },

    /// A file could not be read or written.
    #[error("{path}: {message}", path = path.display())]
    Io { path: PathBuf, message: String },

    /// A download failed or its checksum did not match.
    #[error("cannot fetch {what}: {message}")]
    Fetch { what: String, message: String },

    /// The model file is readable but not a model this runtime can run.
    #[error("{path}: {message}", path = path.display())]
    Unsupported { path: PathBuf, message: String },

    /// The prompt does not fit the model's context window.
    #[error(
        "the prompt is {prompt} tokens and the reply may need {reply}, but the model holds {context}; shorten the prompt (fewer passages, a lower `max_tokens` budget) or use a larger model"
    )]
    ContextFull {
        prompt: usize,
        reply: usize,
        context: usize,
    },

    /// The tensor runtime failed while computing.
    #[error("the built-in model failed: {0}")]
    Compute(String),
}

impl From<candle_core::Error> for LocalError {
    fn from(e: candle_core::Error) -> Self {
        Self::Compute(e.to_string())
    }
}

impl From<LocalError> for processops_llm::LlmError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::ContextFull { .. } => Self::InvalidRequest(e.to_string()),
            _ => Self::InvalidConfig(e.to_string()),
        }
    }
}
