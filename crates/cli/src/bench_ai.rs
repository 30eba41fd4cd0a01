//! `processops bench providers` and `processops bench model`.
//!
//! Like the other benches, every figure is a median over repeats beside a baseline measured
//! in the same run, because this machine is shared and noisy.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{
    Anthropic, AnthropicConfig, CallContext, ChatMessage, ChatModel, ChatRequest, Embedder,
    OpenAiCompatible, OpenAiConfig,
};
use serde_json::json;

use crate::bench::{median, percentile};

#[derive(Args)]
pub struct ProvidersBenchArgs {
    /// Calls per repeat and client.
    #[arg(long, default_value_t = 500)]
    calls: usize,
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Our clients against the loopback server, beside a bare HTTP round trip with the same body.
pub async fn providers(a: ProvidersBenchArgs) -> Result<ExitCode> {
    let server = ScriptedServer::start(ScriptedConfig::with_responder(|_| {
        "Welcome aboard! Your laptop is ready on day one.".to_owned()
    }))
    .await?;
    let base = server.base_url();
    let root = base.trim_end_matches("/v1").to_owned();
    let openai = OpenAiCompatible::new(OpenAiConfig::new(base.clone()))?;
    let anthropic = Anthropic::new(AnthropicConfig::new(root.clone()))?;
    let raw = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let request = || {
        ChatRequest::new(
            "scripted",
            vec![
                ChatMessage::system("You write onboarding notes."),
                ChatMessage::user("Welcome kit for Marcus, data analyst, starting Monday."),
            ],
        )
    };
    let openai_body = json!({ "model": "scripted", "messages": [
        { "role": "system", "content": "You write onboarding notes." },
        { "role": "user", "content": "Welcome kit for Marcus, data analyst, starting Monday." } ] });
    let anthropic_body = json!({ "model": "scripted", "max_tokens": 1024, "system": "You write onboarding notes.",
        "messages": [ { "role": "user", "content": "Welcome kit for Marcus, data analyst, starting Monday." } ] });

    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("raw HTTP round trip (OpenAI body)", vec![]),
        ("OpenAI-compatible client", vec![]),
        ("OpenAI-compatible client, SSE", vec![]),
        ("raw HTTP round trip (Anthropic body)", vec![]),
        ("Anthropic client", vec![]),
        ("Anthropic client, SSE", vec![]),
    ];
    let openai_url = format!("{base}/chat/completions");
    let anthropic_url = format!("{root}/v1/messages");
    for _ in 0..a.repeats {
        let p50 = [
            time_raw(a.calls, raw.post(&openai_url).json(&openai_body)).await?,
            time_client(a.calls, &openai, request(), false).await?,
            time_client(a.calls, &openai, request(), true).await?,
            time_raw(
                a.calls,
                raw.post(&anthropic_url)
                    .header("anthropic-version", "2023-06-01")
                    .json(&anthropic_body),
            )
            .await?,
            time_client(a.calls, &anthropic, request(), false).await?,
            time_client(a.calls, &anthropic, request(), true).await?,
        ];
        for (row, v) in rows.iter_mut().zip(p50) {
            row.1.push(v);
        }
    }
    let medians: Vec<(&str, f64)> = rows.iter().map(|(n, v)| (*n, median(v.clone()))).collect();
    let raw_openai = medians[0].1;
    let raw_anthropic = medians[3].1;
    if a.json {
        let report: Vec<_> = medians
            .iter()
            .enumerate()
            .map(|(i, (name, ms))| {
                let baseline = if i < 3 { raw_openai } else { raw_anthropic };
                json!({ "case": name, "p50_ms": ms, "added_ms": ms - baseline, "ratio": ms / baseline })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Provider overhead: {} calls × {} repeats against the loopback server (median of per-repeat p50s)",
            a.calls, a.repeats
        );
        for (i, (name, ms)) in medians.iter().enumerate() {
            let baseline = if i < 3 { raw_openai } else { raw_anthropic };
            println!(
                "  {name:<38} p50 {ms:>7.3} ms   added {:>+7.3} ms   ×{:.2}",
                ms - baseline,
                ms / baseline
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// p50 of a bare HTTP round trip: send the prepared request, read the whole body.
async fn time_raw(n: usize, request: reqwest::RequestBuilder) -> Result<f64> {
    time_calls(n, || async {
        let req = request
            .try_clone()
            .context("the benchmark request cannot be cloned")?;
        req.send().await?.bytes().await?;
        Ok(())
    })
    .await
}

/// p50 of one of our clients answering `request`, over JSON or SSE.
async fn time_client(
    n: usize,
    client: &dyn ChatModel,
    mut request: ChatRequest,
    stream: bool,
) -> Result<f64> {
    request.stream = stream;
    time_calls(n, || async {
        client.chat(request.clone(), CallContext::default()).await?;
        Ok(())
    })
    .await
}

async fn time_calls<F, Fut>(n: usize, mut call: F) -> Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    // Warm the connection pool first: we measure steady-state calls.
    for _ in 0..10 {
        call().await?;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        call().await?;
        times.push(t.elapsed());
    }
    Ok(percentile(&mut times, 0.5))
}

#[derive(Args)]
pub struct ModelBenchArgs {
    /// Tokens to generate per repeat.
    #[arg(long, default_value_t = 64)]
    tokens: u32,
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// A GGUF file to measure instead of the built-in model.
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The built-in chat model's time to first token and decode speed, and embedding throughput.
pub async fn model(a: ModelBenchArgs) -> Result<ExitCode> {
    let dir = processops_local::catalog::models_dir();
    let threads = std::env::var("CANDLE_NUM_THREADS").unwrap_or_default();
    let load_started = Instant::now();
    let chat = match &a.model {
        Some(p) => processops_local::LocalChat::load(p),
        None => processops_local::LocalChat::load_builtin(&dir),
    }
    .context("loading the chat model")?;
    let load = load_started.elapsed();
    let embedder = processops_local::MiniLm::load(&dir).context("loading the embedding model")?;
    let prompt = "You are the people-operations assistant of Northwind Labs. Using the policies below, write a short welcome kit for Marcus, a data analyst starting Monday in Berlin.\n\nPolicies:\n[benefits.md] Health insurance starts on day one; dental after three months.\n[equipment.md] Laptops are picked up from IT on the first morning; bring an ID.\n[security.md] Complete the security training within the first week.";
    let mut ttft = Vec::new();
    let mut decode = Vec::new();
    let mut reference = Vec::new();
    let mut prompt_tokens = 0;
    let mut sample = String::new();
    for _ in 0..a.repeats {
        reference.push(cpu_reference());
        let mut req = ChatRequest::new("", vec![ChatMessage::user(prompt)]);
        req.max_tokens = Some(a.tokens);
        let (text, g) = chat.generate(&req)?;
        prompt_tokens = g.prompt_tokens;
        ttft.push(g.time_to_first_token.as_secs_f64() * 1000.0);
        let decode_time = g.total.saturating_sub(g.time_to_first_token);
        if g.completion_tokens > 1 {
            decode.push((g.completion_tokens - 1) as f64 / decode_time.as_secs_f64());
        }
        sample = text;
    }
    let passages: Vec<String> = (0..128)
        .map(|i| format!("Policy {i}: travel expenses above 500 EUR need a manager's approval before booking; receipts are due within 30 days."))
        .collect();
    let mut embed_rate = Vec::new();
    let mut query_ms = Vec::new();
    let query = vec!["how do I get my travel expenses refunded".to_owned()];
    for _ in 0..a.repeats {
        let t = Instant::now();
        embedder.embed(&passages)?;
        embed_rate.push(passages.len() as f64 / t.elapsed().as_secs_f64());
        // What a hybrid retrieval adds before it searches: one short query.
        for _ in 0..20 {
            let t = Instant::now();
            embedder.embed(&query)?;
            query_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let query_ms = median(query_ms);
    let ttft = median(ttft);
    let tps = median(decode);
    let reference = median(reference);
    let embed = median(embed_rate);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": chat.name(), "threads": threads, "load_s": load.as_secs_f64(),
                "prompt_tokens": prompt_tokens, "ttft_ms": ttft, "decode_tokens_per_s": tps,
                "cpu_reference_ms": reference, "ttft_in_references": ttft / reference,
                "embeddings_per_s": embed, "query_embedding_p50_ms": query_ms, "sample": sample,
            }))?
        );
    } else {
        println!(
            "Built-in model {} (CANDLE_NUM_THREADS={threads}), {} repeats, medians",
            chat.name(),
            a.repeats
        );
        println!(
            "  load (incl. Q4_1 → Q8_0 conversion)  {:>8.2} s",
            load.as_secs_f64()
        );
        println!(
            "  time to first token ({prompt_tokens} prompt tokens) {ttft:>8.1} ms  = {:.1} × CPU reference",
            ttft / reference
        );
        println!("  decode                               {tps:>8.1} tokens/s");
        println!("  embeddings (MiniLM, batches of 32)   {embed:>8.1} passages/s");
        println!("  one query embedding (hybrid search)  {query_ms:>8.2} ms p50");
        println!("  CPU reference (f32 dot products)     {reference:>8.2} ms");
        println!("  sample: {}", sample.replace('\n', " "));
    }
    Ok(ExitCode::SUCCESS)
}

/// A fixed amount of plain float work, measured in the same run so the model's figures can
/// be read against what this machine gave at the time.
fn cpu_reference() -> f64 {
    let a: Vec<f32> = (0..576 * 576).map(|i| (i % 17) as f32 * 0.01).collect();
    let x: Vec<f32> = (0..576).map(|i| (i % 5) as f32 * 0.1).collect();
    let t = Instant::now();
    let mut sink = 0.0f32;
    for _ in 0..20 {
        for row in a.chunks(576) {
            sink += row.iter().zip(&x).map(|(p, q)| p * q).sum::<f32>();
        }
    }
    std::hint::black_box(sink);
    t.elapsed().as_secs_f64() * 1000.0
}
