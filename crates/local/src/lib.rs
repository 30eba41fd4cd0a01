//! The built-in offline models, run in process on the CPU with candle:
//!
//! - [`LocalChat`]: a GGUF chat model (SmolLM2-135M-Instruct by default; any llama, qwen2 or
//!   qwen3 GGUF) implementing [`processops_llm::ChatModel`];
//! - [`MiniLm`]: all-MiniLM-L6-v2 sentence embeddings implementing
//!   [`processops_llm::Embedder`];
//! - [`catalog`]: where the files come from (pinned PyPI wheels with SHA-256 checksums), where
//!   they live, and fetching them.
//!
//! These are small defaults for trying things out offline, not production models.
//!
//! Threads: candle sizes its CPU pool from `CANDLE_NUM_THREADS` when it is first used. On a
//! busy 2-core machine one thread is about ten times faster than two (its workers spin), so
//! the binaries set it to 1 unless the user chose a value.

pub mod catalog;
mod chat;
mod embed;
mod error;

pub use chat::{Generation, LocalChat, builtin_path};
pub use embed::MiniLm;
pub use error::LocalError;

mod lazy;
pub use lazy::{LazyChat, LazyMiniLm};
