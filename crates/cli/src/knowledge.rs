//! `processops knowledge ingest`: files and folders → passages → a collection, incrementally.
//!
//! Folders are walked recursively (hidden entries and symlinked folders are skipped). A
//! file's source is its path relative to the folder given (`policies/travel.md`), or its file
//! name when the file itself was given. A file whose SHA-256 matches the stored one is not
//! read again; a changed file replaces its passages; a file gone from disk stays unless
//! `--prune` is given. Markdown, text, HTML and PDF (text layer) are read; other files are
//! skipped with a note. A file that cannot be read is reported by name and the rest go on.

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use processops_core::knowledge::{Format, content_sha256, passages};
use processops_llm::Embedder;
use processops_store::{DocumentChange, NewDocument, Store};
use serde::Serialize;

use crate::project::Project;

/// Documents written per commit.
const BATCH_DOCUMENTS: usize = 64;
/// Passages written per commit (whichever limit comes first).
const BATCH_PASSAGES: usize = 4000;
/// Passages embedded per call of the embedder.
const EMBED_BATCH: u32 = 32;

#[derive(clap::Args)]
pub struct IngestArgs {
    /// The collection `retrieve` nodes name in `collection:`.
    pub collection: String,
    /// Files and folders (walked recursively). A source is the path relative to the folder.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Remove the collection's documents that are not among these paths any more.
    #[arg(long)]
    pub prune: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `processops knowledge ingest`. Exit 1 when a file could not be read (the others are
/// ingested all the same).
pub async fn run(project: &Project, a: IngestArgs) -> Result<ExitCode> {
    let store = project.open_store()?;
    // With the built-in embedding model present (or configured), every passage gets a vector
    // and `retrieve` nodes search in hybrid mode.
    let embedder = processops_engine::settings::Settings::load(&project.root)?.embedder()?;
    let report = ingest_paths(&store, &a.collection, &a.paths, a.prune, embedder).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What an ingest did.
#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub collection: String,
    /// Documents new to the collection.
    pub added: usize,
    /// Documents whose content changed (their passages were replaced).
    pub updated: usize,
    /// Documents with the same content as last time (not read again).
    pub unchanged: usize,
    /// Files not ingested: unknown extensions and files that could not be read.
    pub skipped: usize,
    /// Passages written for added and updated documents.
    pub passages: usize,
    /// Passages that got an embedding (0 without an embedder).
    pub embedded: usize,
    /// Documents removed by `--prune`.
    pub removed: Vec<String>,
    /// Documents of the collection that this ingest did not see (kept without `--prune`).
    pub not_seen: Vec<String>,
    /// Files skipped for their extension.
    pub notes: Vec<String>,
    /// Files that could not be read, each with the reason.
    pub problems: Vec<String>,
}

/// A file to ingest and its source name in the collection.
struct Candidate {
    path: PathBuf,
    source: String,
}

/// Ingest `paths` into `collection`. `embedder`, when given, embeds every passage of the
/// collection that has no vector of its model, after the documents are written.
///
pub async fn ingest_paths(
    store: &Store,
    collection: &str,
    paths: &[PathBuf],
    prune: bool,
    embedder: Option<Arc<dyn Embedder>>,
) -> Result<IngestReport> {
    let mut report = IngestReport {
        collection: collection.to_owned(),
        ..IngestReport::default()
    };
    let mut candidates = Vec::new();
    for root in paths {
        collect(root, &mut candidates, &mut report)?;
    }
    let stored = store.document_hashes(collection)?;
    let mut seen: HashSet<String> = HashSet::new();
    let bar = progress_bar(candidates.len() as u64, "reading");
    let mut batch: Vec<NewDocument> = Vec::new();
    let mut batch_passages = 0;
    for c in candidates {
        bar.set_message(c.source.clone());
        bar.inc(1);
        if !seen.insert(c.source.clone()) {
            report.skipped += 1;
            report.problems.push(format!(
                "{}: another file already has the source `{}` in this ingest; ingest the folders separately or rename one",
                c.path.display(),
                c.source
            ));
            continue;
        }
        let doc = match read_document(&c, stored.get(&c.source)) {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                report.unchanged += 1;
                continue;
            }
            Err(problem) => {
                report.skipped += 1;
                report.problems.push(problem);
                continue;
            }
        };
        batch_passages += doc.passages.len();
        batch.push(doc);
        if batch.len() >= BATCH_DOCUMENTS || batch_passages >= BATCH_PASSAGES {
            write_batch(store, collection, std::mem::take(&mut batch), &mut report).await?;
            batch_passages = 0;
        }
    }
    write_batch(store, collection, batch, &mut report).await?;
    bar.finish_and_clear();

    let mut not_seen: Vec<String> = stored
        .keys()
        .filter(|s| !seen.contains(*s))
        .cloned()
        .collect();
    not_seen.sort();
    if prune {
        report.removed = store
            .prune_documents(collection.to_owned(), seen.into_iter().collect())
            .await?;
    } else {
        report.not_seen = not_seen;
    }

    if let Some(embedder) = embedder {
        let (all, done) = store.passage_counts(collection, embedder.model_id())?;
        let bar = progress_bar(all.saturating_sub(done), "embedding");
        let mut tick = |n: usize| bar.set_position(n as u64);
        report.embedded = store
            .embed_missing(collection, embedder, EMBED_BATCH, &mut tick)
            .await?;
        bar.finish_and_clear();
    }
    Ok(report)
}

/// A progress bar on stderr while stdout is a terminal; hidden otherwise (pipes, tests).
fn progress_bar(len: u64, what: &'static str) -> ProgressBar {
    let target = if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{what} {{bar:30}} {{pos}}/{{len}} {{wide_msg}}"))
    {
        bar.set_style(style);
    }
    bar
}

async fn write_batch(
    store: &Store,
    collection: &str,
    batch: Vec<NewDocument>,
    report: &mut IngestReport,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let counts: Vec<usize> = batch.iter().map(|d| d.passages.len()).collect();
    let changes = store
        .ingest_documents(collection.to_owned(), batch)
        .await
        .with_context(|| format!("cannot write to collection `{collection}`"))?;
    for (change, n) in changes.into_iter().zip(counts) {
        match change {
            DocumentChange::Added => report.added += 1,
            DocumentChange::Updated => report.updated += 1,
            DocumentChange::Unchanged => {
                report.unchanged += 1;
                continue;
            }
        }
        report.passages += n;
    }
    Ok(())
}

/// The files under `root` (or `root` itself), with their sources; files of unknown formats
/// are noted and left out.
fn collect(root: &Path, out: &mut Vec<Candidate>, report: &mut IngestReport) -> Result<()> {
    let meta =
        std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    if !meta.is_dir() {
        let source = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string());
        push_candidate(root.to_owned(), source, out, report);
        return Ok(());
    }
    let mut stack = vec![root.to_owned()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            // `file_type` does not follow symlinks, so a link to a parent cannot loop.
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in files {
        let source = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        push_candidate(path, source, out, report);
    }
    Ok(())
}

fn push_candidate(
    path: PathBuf,
    source: String,
    out: &mut Vec<Candidate>,
    report: &mut IngestReport,
) {
    let known = path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(Format::from_extension)
        .is_some();
    if known {
        out.push(Candidate { path, source });
    } else {
        report.skipped += 1;
        report.notes.push(format!(
            "skipped {}: not a format knowledge ingest reads ({})",
            path.display(),
            Format::EXTENSIONS
        ));
    }
}

/// The document of a file, `None` when its bytes hash to `stored`, or a problem naming it.
fn read_document(
    c: &Candidate,
    stored: Option<&String>,
) -> std::result::Result<Option<NewDocument>, String> {
    let name = c.path.display();
    let bytes = std::fs::read(&c.path).map_err(|e| format!("{name}: cannot read it: {e}"))?;
    let sha256 = content_sha256(&bytes);
    if stored == Some(&sha256) {
        return Ok(None);
    }
    let format = c
        .path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(Format::from_extension)
        .ok_or_else(|| format!("{name}: unknown format"))?;
    let text = match format {
        Format::Pdf => pdf_text(&bytes).map_err(|e| format!("{name}: {e}"))?,
        _ => String::from_utf8(bytes).map_err(|e| {
            format!(
                "{name}: not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
                e.utf8_error().valid_up_to()
            )
        })?,
    };
    let passages = passages(format, &text);
    if format == Format::Pdf && passages.is_empty() {
        return Err(format!(
            "{name}: the PDF has no extractable text (scanned pages are images); run OCR on it first, or export it with a text layer"
        ));
    }
    Ok(Some(NewDocument {
        source: c.source.clone(),
        sha256,
        passages,
    }))
}

/// The text layer of a PDF. The PDF parser may panic on malformed files; that becomes an error
/// here, so one bad file never stops an ingest (its panic message is not printed either).
pub fn pdf_text(bytes: &[u8]) -> std::result::Result<String, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
    std::panic::set_hook(previous);
    match result {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(format!("cannot read the PDF: {e}")),
        Err(_) => Err(
            "cannot read the PDF: it is malformed or uses features the reader does not support"
                .into(),
        ),
    }
}

/// A person's summary of a report (stdout), and its notes and problems (stderr).
pub fn print(report: &IngestReport) {
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    for problem in &report.problems {
        eprintln!("error: {problem}");
    }
    println!(
        "`{}`: {} added, {} updated, {} unchanged, {} skipped ({} passage(s) written{})",
        report.collection,
        report.added,
        report.updated,
        report.unchanged,
        report.skipped,
        report.passages,
        if report.embedded > 0 {
            format!(", {} embedded", report.embedded)
        } else {
            String::new()
        }
    );
    if !report.removed.is_empty() {
        println!(
            "removed {} document(s): {}",
            report.removed.len(),
            report.removed.join(", ")
        );
    }
    if !report.not_seen.is_empty() {
        println!(
            "{} document(s) of `{}` were not in these paths and were kept ({}); add --prune to remove them",
            report.not_seen.len(),
            report.collection,
            abbreviate(&report.not_seen)
        );
    }
}

fn abbreviate(items: &[String]) -> String {
    const SHOWN: usize = 5;
    if items.len() <= SHOWN {
        items.join(", ")
    } else {
        format!(
            "{}, and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use processops_llm::{Embedder, LlmError};
    use processops_store::{Durability, SearchFilter, Store};

    use super::{ingest_paths, pdf_text};

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// A test double, not a semantic model: a text's vector is (length, 1).
    struct LengthEmbedder;

    impl Embedder for LengthEmbedder {
        fn model_id(&self) -> &str {
            "test-length-v1"
        }
        fn dimensions(&self) -> usize {
            2
        }
        fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
    }

    #[tokio::test]
    async fn ingest_reads_every_format_recursively_and_only_changed_files_again() {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        write(
            &docs,
            "policies/travel.md",
            b"# Travel\n\nBook trains early.\n",
        );
        write(
            &docs,
            "policies/eu/leave.txt",
            b"26 days of leave.\n\nCarry over five.",
        );
        write(
            &docs,
            "handbook.html",
            b"<h1>Parking</h1><script>x()</script><p>Free in the garage.</p>",
        );
        write(
            &docs,
            "security.pdf",
            &pdf("Report lost laptops within one hour."),
        );
        write(&docs, "scans/contract.pdf", &pdf(""));
        write(&docs, "broken.pdf", b"%PDF-1.7 truncated");
        write(&docs, "latin1.txt", b"caf\xe9");
        write(&docs, "logo.png", b"\x89PNG");
        write(&docs, ".git/config", b"[core]");
        let store = Store::open(&dir.path().join("db"), Durability::Process).unwrap();
        let paths = [docs.clone()];

        let r = ingest_paths(&store, "kb", &paths, false, None)
            .await
            .unwrap();
        assert_eq!(
            (r.added, r.updated, r.unchanged, r.skipped),
            (4, 0, 0, 4),
            "{r:#?}"
        );
        assert_eq!(r.passages, 5);
        assert_eq!(r.notes.len(), 1);
        assert!(r.notes[0].contains("logo.png"), "{:?}", r.notes);
        let problems = r.problems.join("\n");
        assert!(
            problems.contains("scans/contract.pdf: the PDF has no extractable text"),
            "{problems}"
        );
        assert!(
            problems.contains("broken.pdf: cannot read the PDF"),
            "{problems}"
        );
        assert!(
            problems.contains("latin1.txt: not UTF-8 text"),
            "{problems}"
        );
        let sources: Vec<String> = store
            .documents("kb")
            .unwrap()
            .into_iter()
            .map(|d| d.source)
            .collect();
        assert_eq!(
            sources,
            vec![
                "handbook.html",
                "policies/eu/leave.txt",
                "policies/travel.md",
                "security.pdf"
            ]
        );
        let hit = |q: &str| {
            let r = store
                .search_hybrid("kb", q, None, 1, &SearchFilter::default())
                .unwrap();
            r.hits.first().map(|h| (h.source.clone(), h.text.clone()))
        };
        assert_eq!(
            hit("garage"),
            Some((
                "handbook.html".into(),
                "Parking: Free in the garage.".into()
            ))
        );
        assert_eq!(hit("laptops").unwrap().0, "security.pdf");
        assert_eq!(hit("trains").unwrap().1, "Travel: Book trains early.");

        // Again: nothing changed, nothing is written.
        let r = ingest_paths(&store, "kb", &paths, false, None)
            .await
            .unwrap();
        assert_eq!((r.added, r.updated, r.unchanged, r.passages), (0, 0, 4, 0));

        // One file changed, one deleted: the change replaces, the deletion is only reported.
        write(&docs, "policies/travel.md", b"# Travel\n\nFly economy.\n");
        std::fs::remove_file(docs.join("handbook.html")).unwrap();
        let r = ingest_paths(&store, "kb", &paths, false, None)
            .await
            .unwrap();
        assert_eq!((r.added, r.updated, r.unchanged, r.passages), (0, 1, 2, 1));
        assert_eq!(r.not_seen, vec!["handbook.html"]);
        assert!(r.removed.is_empty());
        assert_eq!(hit("trains"), None, "the old passage is gone");
        assert!(hit("garage").is_some(), "kept without --prune");

        // --prune removes it; the embedder hook embeds every passage.
        let embedder: Arc<dyn Embedder> = Arc::new(LengthEmbedder);
        let r = ingest_paths(&store, "kb", &paths, true, Some(embedder))
            .await
            .unwrap();
        assert_eq!(r.removed, vec!["handbook.html"]);
        assert_eq!(hit("garage"), None);
        assert_eq!(r.embedded, 4);
        assert_eq!(
            store.passage_counts("kb", "test-length-v1").unwrap(),
            (4, 4)
        );
    }

    #[tokio::test]
    async fn a_file_given_directly_is_named_by_its_file_name() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a/b/notes.md", b"Some notes.");
        let store = Store::open(&dir.path().join("db"), Durability::Process).unwrap();
        let r = ingest_paths(
            &store,
            "kb",
            &[dir.path().join("a/b/notes.md")],
            false,
            None,
        )
        .await
        .unwrap();
        assert_eq!(r.added, 1);
        assert_eq!(store.documents("kb").unwrap()[0].source, "notes.md");
        let missing = ingest_paths(&store, "kb", &[dir.path().join("nope")], false, None).await;
        let err = format!("{:#}", missing.unwrap_err());
        assert!(err.contains("nope"), "{err}");
    }

    /// A one-page PDF whose page shows `text` (empty: a page without any text).
    fn pdf(text: &str) -> Vec<u8> {
        use lopdf::content::{Content, Operation};
        use lopdf::{Document, Object, Stream, dictionary};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let resources_id =
            doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
        let mut operations = Vec::new();
        if !text.is_empty() {
            operations = vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), 700.into()]),
                Operation::new("Tj", vec![Object::string_literal(text)]),
                Operation::new("ET", vec![]),
            ];
        }
        let content = Content { operations };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
                "Resources" => resources_id,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    #[test]
    fn pdf_text_reads_the_text_layer() {
        let text = pdf_text(&pdf("Refunds are issued within 14 days.")).unwrap();
        assert!(
            text.contains("Refunds are issued within 14 days."),
            "{text:?}"
        );
    }

    #[test]
    fn a_pdf_without_text_has_none_and_garbage_is_an_error_not_a_panic() {
        assert_eq!(pdf_text(&pdf("")).unwrap().trim(), "");
        for junk in [&b""[..], b"%PDF-1.5\n", b"not a pdf at all", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF"] {
            let err = pdf_text(junk).unwrap_err();
            assert!(err.starts_with("cannot read the PDF"), "{err}");
        }
    }
}
