//! The built-in models on real files. They need `processops models pull` (the test command
//! runs it first); a missing file fails with that instruction rather than skipping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use processops_llm::{CallContext, ChatMessage, ChatModel, ChatRequest, Embedder};
use processops_local::catalog::{self, MINILM, SMOLLM2};
use processops_local::{LocalChat, MiniLm};

fn models() -> std::path::PathBuf {
    let dir = catalog::models_dir();
    for p in catalog::PACKAGES {
        if let Err(e) = p.require(&dir) {
            panic!("{e}");
        }
    }
    dir
}

fn chat() -> &'static LocalChat {
    static CHAT: OnceLock<LocalChat> = OnceLock::new();
    CHAT.get_or_init(|| LocalChat::load_builtin(&models()).unwrap())
}

fn minilm() -> &'static MiniLm {
    static M: OnceLock<MiniLm> = OnceLock::new();
    M.get_or_init(|| MiniLm::load(&models()).unwrap())
}

fn request(user: &str, max_tokens: u32) -> ChatRequest {
    let mut req = ChatRequest::new(
        "",
        vec![
            ChatMessage::system("You are a concise HR assistant."),
            ChatMessage::user(user),
        ],
    );
    req.max_tokens = Some(max_tokens);
    req
}

#[tokio::test]
async fn the_builtin_model_writes_a_deterministic_reply() {
    let req = request(
        "Write one sentence welcoming Marcus, a new data analyst.",
        40,
    );
    let first = chat()
        .chat(req.clone(), CallContext::default())
        .await
        .unwrap();
    assert!(!first.text.trim().is_empty(), "empty reply");
    assert!(first.usage.prompt_tokens > 10, "{:?}", first.usage);
    assert!(
        first.usage.completion_tokens > 0 && first.usage.completion_tokens <= 40,
        "{:?}",
        first.usage
    );
    let second = chat().chat(req, CallContext::default()).await.unwrap();
    assert_eq!(
        first.text, second.text,
        "greedy decoding must repeat itself"
    );
}

#[test]
fn a_prompt_larger_than_the_context_is_refused_with_advice() {
    let huge = "policy ".repeat(20_000);
    let err = chat().generate(&request(&huge, 16)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("tokens") && msg.contains("shorten"), "{msg}");
}

#[test]
fn the_tokenizer_round_trips_text_and_knows_the_chat_tokens() {
    // Generation decodes what it encodes; a broken merge table shows up as garbled text.
    let (text, stats) = chat()
        .generate(&request("Reply with the word: hello", 8))
        .unwrap();
    assert!(
        stats.prompt_tokens < 60,
        "chat tokens were split into pieces: {stats:?}"
    );
    assert!(!text.contains("<|im_start|>"), "{text}");
}

#[test]
fn embeddings_are_normalised_and_put_paraphrases_closer_than_unrelated_text() {
    let texts: Vec<String> = [
        "How do I get reimbursed for a business trip?",
        "Travel expenses are refunded after you submit receipts.",
        "The office printer on floor 3 is out of toner.",
    ]
    .map(String::from)
    .to_vec();
    let v = minilm().embed(&texts).unwrap();
    assert_eq!(v.len(), 3);
    for x in &v {
        assert_eq!(x.len(), minilm().dimensions());
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let related = dot(&v[0], &v[1]);
    let unrelated = dot(&v[0], &v[2]);
    assert!(
        related > unrelated + 0.1,
        "related {related} vs unrelated {unrelated}"
    );
}

#[test]
fn batching_does_not_change_a_vector() {
    // Padding in a batch must not leak into the mean: alone or with a longer text, the same.
    let short = "Leave requests go to your manager.".to_owned();
    let long = "Annual leave is 25 days; carry-over of up to five days is allowed until March, after which unused days lapse.".to_owned();
    let alone = minilm().embed(std::slice::from_ref(&short)).unwrap();
    let together = minilm().embed(&[short, long]).unwrap();
    let diff: f32 = alone[0]
        .iter()
        .zip(&together[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-4, "max difference {diff}");
}

#[test]
fn missing_files_name_the_command_that_fetches_them() {
    let empty = tempfile::tempdir().unwrap();
    let err = LocalChat::load_builtin(empty.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("processops models pull"), "{err}");
    let err = MiniLm::load(empty.path()).err().unwrap().to_string();
    assert!(err.contains("processops models pull"), "{err}");
    assert!(!SMOLLM2.is_present(empty.path()) && !MINILM.is_present(empty.path()));
}

#[test]
fn a_file_that_is_not_a_gguf_model_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    std::fs::write(&path, b"this is not a model").unwrap();
    let err = LocalChat::load(&path).err().unwrap().to_string();
    assert!(err.contains("notes.gguf") && err.contains("GGUF"), "{err}");
}
