//! The built-in chat model: a GGUF file run in process on the CPU with candle.
//!
//! Loading converts tensor types candle has no SIMD kernel for (Q4_1, Q5_0, Q5_1) to Q8_0 once,
//! in memory: for SmolLM2's Q4_1 file this costs about a second and makes decoding several
//! times faster. The tokenizer and the chat template come from the GGUF's own metadata, so
//! any llama-, qwen2- or qwen3-architecture GGUF works, not just the default one.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};
use futures::future::BoxFuture;
use processops_llm::{CallContext, ChatModel, ChatRequest, ChatResponse, LlmError, Role, Usage};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::LocalError;
use crate::catalog::{SMOLLM2, io};

/// Replies stop here unless the request asks for fewer.
const DEFAULT_MAX_TOKENS: usize = 512;
/// Fixed so the same prompt at the same temperature gives the same reply.
const SEED: u64 = 299_792_458;
/// Tiny models repeat themselves without it.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_WINDOW: usize = 64;

enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
}

impl Weights {
    fn forward(&mut self, input: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Self::Llama(m) => m.forward(input, pos),
            Self::Qwen2(m) => m.forward(input, pos),
            Self::Qwen3(m) => m.forward(input, pos),
        }
    }

    fn clear(&mut self) {
        match self {
            Self::Llama(m) => m.clear_kv_cache(),
            Self::Qwen2(m) => m.clear_kv_cache(),
            Self::Qwen3(m) => m.clear_kv_cache(),
        }
    }
}

/// Timings of one generation, for the benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// From the call until the first generated token (includes the prompt's prefill).
    pub time_to_first_token: Duration,
    pub total: Duration,
    /// The reply stopped at `max_tokens`, not at the model's end of turn.
    pub cut_off: bool,
}

struct Loaded {
    weights: Weights,
    tokenizer: Tokenizer,
    template: minijinja::Environment<'static>,
    bos: String,
    eos: String,
    stop_ids: Vec<u32>,
    context: usize,
}

/// A GGUF chat model held in memory. Cheap to clone; calls are served one at a time.
#[derive(Clone)]
pub struct LocalChat {
    inner: Arc<Mutex<Loaded>>,
    name: String,
}

impl LocalChat {
    /// The built-in SmolLM2 model from the models directory.
    pub fn load_builtin(models: &Path) -> Result<Self, LocalError> {
        SMOLLM2.require(models)?;
        Self::load(&SMOLLM2.path(models, SMOLLM2.files[0].name))
    }

    /// Any supported GGUF file.
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let bytes = std::fs::read(path).map_err(|e| io(path, &e))?;
        let unsupported = |message: String| LocalError::Unsupported {
            path: path.to_owned(),
            message,
        };
        let mut cursor = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut cursor)
            .map_err(|e| unsupported(format!("not a readable GGUF file: {e}")))?;
        let meta = Meta(&content.metadata);
        let arch = meta.string("general.architecture").unwrap_or_default();
        let tokenizer = gguf_tokenizer(&meta).map_err(&unsupported)?;
        let (template, bos, eos, stop_ids) =
            chat_template(&meta, &tokenizer).map_err(&unsupported)?;
        let context = meta
            .u32(&format!("{arch}.context_length"))
            .map_or(2048, |c| c as usize);
        let (content, mut cursor) = convert_slow_types(content, cursor).map_err(&unsupported)?;
        let device = Device::Cpu;
        let weights = match arch.as_str() {
            "llama" => Weights::Llama(quantized_llama::ModelWeights::from_gguf(
                content,
                &mut cursor,
                &device,
            )?),
            "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
                content,
                &mut cursor,
                &device,
            )?),
            "qwen3" => Weights::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
                content,
                &mut cursor,
                &device,
            )?),
            other => {
                return Err(unsupported(format!(
                    "its architecture is `{other}`; the built-in runtime runs llama, qwen2 and qwen3 models. Serve other models with llama.cpp or Ollama and use a provider of kind `openai`"
                )));
            }
        };
        let name = path
            .file_stem()
            .map_or_else(|| "local".to_owned(), |s| s.to_string_lossy().into_owned());
        Ok(Self {
            inner: Arc::new(Mutex::new(Loaded {
                weights,
                tokenizer,
                template,
                bos,
                eos,
                stop_ids,
                context,
            })),
            name,
        })
    }

    /// The model's name (its file name without extension).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Generate a reply. Blocking and CPU-bound.
    pub fn generate(&self, req: &ChatRequest) -> Result<(String, Generation), LocalError> {
        let started = Instant::now();
        let mut model = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let model = &mut *model;
        let prompt = render_prompt(model, req)?;
        let encoding = model
            .tokenizer
            .encode(prompt.as_str(), false)
            .map_err(|e| LocalError::Compute(format!("tokenizer: {e}")))?;
        let prompt_ids = encoding.get_ids().to_vec();
        let max_new = req.max_tokens.map_or(DEFAULT_MAX_TOKENS, |m| m as usize);
        if prompt_ids.len() + max_new > model.context {
            return Err(LocalError::ContextFull {
                prompt: prompt_ids.len(),
                reply: max_new,
                context: model.context,
            });
        }
        let sampling = match req.temperature {
            Some(t) if t > 0.0 => Sampling::All {
                temperature: f64::from(t),
            },
            _ => Sampling::ArgMax,
        };
        let mut sampler = LogitsProcessor::from_sampling(SEED, sampling);
        model.weights.clear();
        let device = Device::Cpu;
        let mut tokens = prompt_ids.clone();
        let mut generated: Vec<u32> = Vec::new();
        let mut first_token = None;
        let mut input = Tensor::new(prompt_ids.as_slice(), &device)?.unsqueeze(0)?;
        let mut pos = 0;
        while generated.len() < max_new {
            let logits = model.weights.forward(&input, pos)?;
            let logits = last_position(&logits)?;
            let window = &tokens[tokens.len().saturating_sub(REPEAT_WINDOW)..];
            let logits =
                candle_transformers::utils::apply_repeat_penalty(&logits, REPEAT_PENALTY, window)?;
            let next = sampler.sample(&logits)?;
            first_token.get_or_insert_with(|| started.elapsed());
            pos += input.dim(1)?;
            if model.stop_ids.contains(&next) {
                break;
            }
            generated.push(next);
            tokens.push(next);
            input = Tensor::new(&[next], &device)?.unsqueeze(0)?;
        }
        let text = model
            .tokenizer
            .decode(&generated, true)
            .map_err(|e| LocalError::Compute(format!("tokenizer: {e}")))?;
        let stats = Generation {
            prompt_tokens: prompt_ids.len(),
            completion_tokens: generated.len(),
            time_to_first_token: first_token.unwrap_or_else(|| started.elapsed()),
            total: started.elapsed(),
            cut_off: generated.len() >= max_new,
        };
        Ok((text.trim().to_owned(), stats))
    }
}

impl ChatModel for LocalChat {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        let this = self.clone();
        Box::pin(async move {
            let started = Instant::now();
            let (text, stats) = tokio::task::spawn_blocking(move || this.generate(&req))
                .await
                .map_err(|e| {
                    LlmError::InvalidConfig(format!("the built-in model stopped: {e}"))
                })??;
            Ok(ChatResponse {
                text,
                // The model that really answered, whatever name the agent asked for.
                model: self.name.clone(),
                usage: Usage {
                    prompt_tokens: u32::try_from(stats.prompt_tokens).unwrap_or(u32::MAX),
                    completion_tokens: u32::try_from(stats.completion_tokens).unwrap_or(u32::MAX),
                },
                finish_reason: Some(if stats.cut_off { "length" } else { "stop" }.to_owned()),
                latency: started.elapsed(),
                attempts: 1,
            })
        })
    }
}

/// Logits of the last position as a 1-D tensor: architectures return `[1, vocab]` (last
/// position only) or `[1, positions, vocab]`.
fn last_position(logits: &Tensor) -> candle_core::Result<Tensor> {
    let t = logits.squeeze(0)?;
    if t.rank() == 2 {
        let last = t.dim(0)? - 1;
        t.get(last)
    } else {
        Ok(t)
    }
}

fn render_prompt(model: &Loaded, req: &ChatRequest) -> Result<String, LocalError> {
    let mut messages: Vec<serde_json::Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            serde_json::json!({ "role": role, "content": m.content })
        })
        .collect();
    if let Some(schema) = &req.json_schema {
        // Small local models have no constrained decoding here: ask in words, the engine
        // validates the reply and repairs or falls back.
        let note =
            format!("Reply with only a JSON value matching this JSON Schema, no prose:\n{schema}");
        messages.push(serde_json::json!({ "role": "system", "content": note }));
    } else if req.json_mode {
        messages.push(
            serde_json::json!({ "role": "system", "content": "Reply with only a JSON object." }),
        );
    }
    let template = model
        .template
        .get_template("chat")
        .map_err(|e| LocalError::Compute(e.to_string()))?;
    template
        .render(minijinja::context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => model.bos,
            eos_token => model.eos,
        })
        .map_err(|e| LocalError::Compute(format!("the model's chat template failed: {e}")))
}

/// Typed access to GGUF metadata.
struct Meta<'a>(&'a HashMap<String, gguf_file::Value>);

impl Meta<'_> {
    fn string(&self, key: &str) -> Option<String> {
        self.0.get(key)?.to_string().ok().cloned()
    }

    fn u32(&self, key: &str) -> Option<u32> {
        let v = self.0.get(key)?;
        v.to_u32()
            .ok()
            .or_else(|| v.to_u64().ok().and_then(|x| u32::try_from(x).ok()))
            .or_else(|| v.to_i32().ok().and_then(|x| u32::try_from(x).ok()))
    }

    fn strings(&self, key: &str) -> Option<Vec<String>> {
        self.0
            .get(key)?
            .to_vec()
            .ok()?
            .iter()
            .map(|v| v.to_string().ok().cloned())
            .collect()
    }

    fn i32s(&self, key: &str) -> Option<Vec<i32>> {
        self.0
            .get(key)?
            .to_vec()
            .ok()?
            .iter()
            .map(|v| {
                v.to_i32()
                    .ok()
                    .or_else(|| v.to_u32().ok().map(|x| x as i32))
            })
            .collect()
    }
}

/// Control tokens (`<|im_start|>` and friends) are GGUF token type 3.
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Rebuild the Hugging Face tokenizer from the vocabulary and merges the GGUF carries.
fn gguf_tokenizer(meta: &Meta<'_>) -> Result<Tokenizer, String> {
    let kind = meta.string("tokenizer.ggml.model").unwrap_or_default();
    if kind != "gpt2" {
        return Err(format!(
            "its tokenizer is `{kind}`; the built-in runtime reads byte-level BPE (`gpt2`) tokenizers"
        ));
    }
    let tokens = meta
        .strings("tokenizer.ggml.tokens")
        .ok_or("it has no tokenizer.ggml.tokens")?;
    let merges = meta
        .strings("tokenizer.ggml.merges")
        .ok_or("it has no tokenizer.ggml.merges")?;
    let types = meta.i32s("tokenizer.ggml.token_type").unwrap_or_default();
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges: Vec<(String, String)> = merges
        .iter()
        .filter_map(|m| m.split_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| format!("its tokenizer cannot be built: {e}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    // SmolLM's pre-tokenizer splits digits one by one before the byte-level split.
    let pre = meta.string("tokenizer.ggml.pre").unwrap_or_default();
    if pre == "smollm" {
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(byte_level),
        ])));
    } else {
        tokenizer.with_pre_tokenizer(Some(byte_level));
    }
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(types.iter())
        .filter(|(_, t)| **t == TOKEN_TYPE_CONTROL)
        .map(|(tok, _)| AddedToken::from(tok.clone(), true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

type Template = (minijinja::Environment<'static>, String, String, Vec<u32>);

fn chat_template(meta: &Meta<'_>, tokenizer: &Tokenizer) -> Result<Template, String> {
    let token = |key: &str| {
        meta.u32(key)
            .and_then(|id| tokenizer.id_to_token(id))
            .unwrap_or_default()
    };
    let bos = token("tokenizer.ggml.bos_token_id");
    let eos = token("tokenizer.ggml.eos_token_id");
    // ChatML, what most small instruct models use, when the file carries no template.
    let source = meta.string("tokenizer.chat_template").unwrap_or_else(|| {
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}".to_owned()
    });
    let mut env = minijinja::Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template_owned("chat", source)
        .map_err(|e| format!("its chat template does not parse: {e}"))?;
    let mut stop_ids: Vec<u32> = [eos.as_str(), "<|im_end|>", "<|eot_id|>", "<|endoftext|>"]
        .iter()
        .filter_map(|t| tokenizer.token_to_id(t))
        .collect();
    stop_ids.sort_unstable();
    stop_ids.dedup();
    Ok((env, bos, eos, stop_ids))
}

/// Requantize tensors of types candle has no fast CPU kernel for, and return a reader over
/// the converted file.
fn convert_slow_types(
    content: gguf_file::Content,
    mut cursor: Cursor<Vec<u8>>,
) -> Result<(gguf_file::Content, Cursor<Vec<u8>>), String> {
    let slow = |t: GgmlDType| matches!(t, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1);
    if !content.tensor_infos.values().any(|t| slow(t.ggml_dtype)) {
        return Ok((content, cursor));
    }
    let device = Device::Cpu;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let q = content
            .tensor(&mut cursor, name, &device)
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
        let q = if slow(q.dtype()) && q.shape().dims().last().is_some_and(|d| d % 32 == 0) {
            let f = q.dequantize(&device).map_err(|e| e.to_string())?;
            QTensor::quantize(&f, GgmlDType::Q8_0).map_err(|e| e.to_string())?
        } else {
            q
        };
        tensors.push((name.clone(), q));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::with_capacity(cursor.get_ref().len() * 2));
    gguf_file::write(&mut out, &metadata, &refs).map_err(|e| e.to_string())?;
    drop(cursor);
    out.set_position(0);
    let converted = gguf_file::Content::read(&mut out).map_err(|e| e.to_string())?;
    Ok((converted, out))
}

/// Where the built-in chat model file lives.
pub fn builtin_path(models: &Path) -> PathBuf {
    SMOLLM2.path(models, SMOLLM2.files[0].name)
}
