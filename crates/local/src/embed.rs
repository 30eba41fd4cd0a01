//! Sentence embeddings with all-MiniLM-L6-v2 (BERT), mean-pooled and L2-normalised, as
//! sentence-transformers computes them.

use std::path::Path;
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::LocalError;
use crate::catalog::{MINILM, io};

/// The model's own limit, from its `sentence_bert_config.json`.
const MAX_TOKENS: usize = 256;
/// Texts per forward pass: bounds memory on long ingests.
const BATCH: usize = 32;
/// Stored with every vector: vectors of different models or settings never mix.
pub(crate) const MODEL_ID: &str = "all-minilm-l6-v2@256";
pub(crate) const DIMENSIONS: usize = 384;

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    // The model is immutable, but one forward pass at a time keeps memory bounded and the
    // single CPU thread we use busy with one job.
    lock: Mutex<()>,
}

impl MiniLm {
    /// Load from the models directory (see [`crate::catalog::models_dir`]).
    pub fn load(models: &Path) -> Result<Self, LocalError> {
        MINILM.require(models)?;
        Self::load_from(&MINILM.dir(models))
    }

    /// Load from a folder holding `model.safetensors`, `tokenizer.json` and `config.json`.
    pub fn load_from(dir: &Path) -> Result<Self, LocalError> {
        let config_path = dir.join("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| io(&config_path, &e))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| LocalError::Unsupported {
                path: config_path.clone(),
                message: format!("not a BERT config: {e}"),
            })?;
        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| io(&weights_path, &e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
        let model = BertModel::load(vb, &config).map_err(|e| LocalError::Unsupported {
            path: weights_path.clone(),
            message: format!("cannot load the BERT weights: {e}"),
        })?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| LocalError::Unsupported {
                path: tokenizer_path.clone(),
                message: format!("cannot read the tokenizer: {e}"),
            })?;
        // The file pads every text to 128; pad a batch only to its longest text instead.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| LocalError::Unsupported {
                path: tokenizer_path,
                message: e.to_string(),
            })?;
        Ok(Self {
            model,
            tokenizer,
            lock: Mutex::new(()),
        })
    }

    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LocalError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| LocalError::Compute(format!("tokenizer: {e}")))?;
        let device = &self.model.device;
        let ids = encodings
            .iter()
            .map(|e| Tensor::new(e.get_ids(), device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let masks = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&masks, 0)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?;
        // Mean over real tokens only: padding must not pull the vector towards zero.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let normalised = mean.broadcast_div(&norm)?;
        Ok(normalised.to_vec2::<f32>()?)
    }
}

impl processops_llm::Embedder for MiniLm {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, processops_llm::LlmError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            // An empty string tokenises to [CLS][SEP]: still a valid (if bland) vector.
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }
}
