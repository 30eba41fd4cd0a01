//! Turning documents into the passages `retrieve` nodes search, and the pure rules retrieval
//! follows (source filters, token budgets). No IO: callers read the bytes (and turn a PDF
//! into text) and store the passages.
//!
//! A passage is a paragraph, prefixed with the heading above it (`Benefits: Health from day
//! one.`), so a passage read on its own still says what it is about. Paragraphs longer than
//! [`TARGET_WORDS`] are split at sentence boundaries (Unicode UAX #29), and a single sentence
//! longer than [`MAX_WORDS`] is cut between words, so no passage is longer than
//! [`MAX_WORDS`] words plus its heading.

use ego_tree::iter::Edge;
use sha2::{Digest as _, Sha256};
use unicode_segmentation::UnicodeSegmentation as _;

/// Passages longer than this many words are split at sentence boundaries.
pub const TARGET_WORDS: usize = 200;
/// No passage body is longer than this many words.
pub const MAX_WORDS: usize = 300;

/// The document formats `knowledge ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.md`, `.markdown`: `#` headings are kept on the paragraphs below them.
    Markdown,
    /// `.txt`, `.text`: paragraphs separated by blank lines.
    Text,
    /// `.html`, `.htm`: visible text; scripts and styles dropped, `<h1>`–`<h6>` kept as headings.
    Html,
    /// `.pdf`: the text layer (the caller extracts it; scanned pages without text have none).
    Pdf,
}

impl Format {
    /// The format of a file by its extension (case-insensitive), or `None` for one we do not read.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Self::Markdown),
            "txt" | "text" => Some(Self::Text),
            "html" | "htm" => Some(Self::Html),
            "pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    /// The extensions [`Format::from_extension`] accepts, for messages.
    pub const EXTENSIONS: &'static str = ".md, .markdown, .txt, .text, .html, .htm, .pdf";
}

/// The passages of a document's text. For [`Format::Pdf`], `text` is the extracted text layer.
pub fn passages(format: Format, text: &str) -> Vec<String> {
    match format {
        Format::Markdown => split_passages(text),
        Format::Html => split_passages(&html_to_text(text)),
        Format::Text => split_plain(text),
        // Page breaks are paragraph breaks.
        Format::Pdf => split_plain(&text.replace('\u{c}', "\n\n")),
    }
}

/// Markdown passages: paragraphs, with the nearest `#` heading kept on the paragraphs it
/// introduces, and long paragraphs split at sentence boundaries.
pub fn split_passages(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    let mut heading = String::new();
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        let (first, rest) = block.split_once('\n').unwrap_or((block, ""));
        let body = match atx_heading(first) {
            Some(h) => {
                heading = h.to_owned();
                rest.trim()
            }
            None => block,
        };
        if !body.is_empty() {
            push_bounded(&mut out, &heading, body);
        }
    }
    out
}

/// Plain-text passages: paragraphs separated by blank lines, no headings.
fn split_plain(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in split_blank_lines(&text) {
        push_bounded(&mut out, "", block);
    }
    out
}

/// Blocks separated by lines that are empty or only whitespace.
fn split_blank_lines(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                blocks.push(text[s..end].trim());
            }
        } else {
            start.get_or_insert(offset);
            end = offset + line.len();
        }
        offset += line.len();
    }
    if let Some(s) = start {
        blocks.push(text[s..end].trim());
    }
    blocks.retain(|b| !b.is_empty());
    blocks
}

/// The text of an ATX heading line (`## Travel`), or `None`.
fn atx_heading(line: &str) -> Option<&str> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim())
}

/// Push `body` as one or more passages of at most [`MAX_WORDS`] words, each with `heading`.
fn push_bounded(out: &mut Vec<String>, heading: &str, body: &str) {
    let with_heading = |chunk: &str| {
        if heading.is_empty() {
            chunk.to_owned()
        } else {
            format!("{heading}: {chunk}")
        }
    };
    if word_count(body) <= TARGET_WORDS {
        out.push(with_heading(body));
        return;
    }
    for chunk in bounded_chunks(body) {
        out.push(with_heading(&chunk));
    }
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Whole sentences gathered into chunks of about [`TARGET_WORDS`] words; a sentence longer
/// than [`MAX_WORDS`] is cut into pieces of [`TARGET_WORDS`] words.
fn bounded_chunks(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut words = 0;
    let mut flush = |current: &mut String, words: &mut usize| {
        let c = current.trim();
        if !c.is_empty() {
            chunks.push(c.to_owned());
        }
        current.clear();
        *words = 0;
    };
    for sentence in text.split_sentence_bounds() {
        let n = word_count(sentence);
        if n > MAX_WORDS {
            flush(&mut current, &mut words);
            let all: Vec<&str> = sentence.split_whitespace().collect();
            for piece in all.chunks(TARGET_WORDS) {
                current = piece.join(" ");
                words = piece.len();
                flush(&mut current, &mut words);
            }
            continue;
        }
        if words > 0 && words + n > TARGET_WORDS {
            flush(&mut current, &mut words);
        }
        current.push_str(sentence);
        words += n;
    }
    flush(&mut current, &mut words);
    chunks
}

/// Elements whose content is never visible text.
const HIDDEN: &[&str] = &[
    "head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
    "select", "button",
];

/// Elements that end the paragraph before them and start a new one.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
];

/// The visible text of an HTML document as Markdown-like blocks: one paragraph per block
/// element, separated by blank lines, table cells joined with ` | `, and `<h1>`–`<h6>` as `#`
/// heading lines, so [`split_passages`] keeps each heading on the paragraphs below it. Scripts,
/// styles and the `<head>` are dropped; whitespace is collapsed except inside `<pre>`. Never
/// panics, on any input (html5ever recovers from any markup, and the walk is not recursive).
pub fn html_to_text(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let mut out = HtmlText::default();
    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                scraper::Node::Element(e) => out.open(e.name()),
                scraper::Node::Text(t) if out.hidden == 0 => out.line.push_str(t),
                _ => {}
            },
            Edge::Close(node) => {
                if let scraper::Node::Element(e) = node.value() {
                    out.close(e.name());
                }
            }
        }
    }
    out.flush();
    out.blocks.join("\n\n")
}

/// The state of [`html_to_text`]'s walk.
#[derive(Default)]
struct HtmlText {
    blocks: Vec<String>,
    line: String,
    /// Depth inside elements whose text is not shown.
    hidden: usize,
    /// Depth inside `<pre>`.
    pre: usize,
    /// The level of the heading being read.
    heading: Option<usize>,
}

impl HtmlText {
    fn open(&mut self, name: &str) {
        if HIDDEN.contains(&name) {
            self.hidden += 1;
        } else if self.hidden > 0 {
            // Inside a hidden element nothing counts.
        } else if let Some(level) = heading_level(name) {
            self.flush();
            self.heading = Some(level);
        } else if BLOCKS.contains(&name) {
            self.flush();
            self.pre += usize::from(name == "pre");
        } else if matches!(name, "td" | "th") && !self.line.trim().is_empty() {
            self.line.push_str(" | ");
        }
    }

    fn close(&mut self, name: &str) {
        if HIDDEN.contains(&name) {
            self.hidden = self.hidden.saturating_sub(1);
        } else if self.hidden > 0 {
            // Inside a hidden element nothing counts.
        } else if heading_level(name).is_some() {
            self.flush();
            self.heading = None;
        } else if BLOCKS.contains(&name) {
            self.flush();
            self.pre = self.pre.saturating_sub(usize::from(name == "pre"));
        } else if matches!(name, "td" | "th") {
            self.line.push(' ');
        }
    }

    /// End the current paragraph.
    fn flush(&mut self) {
        let text = if self.pre > 0 && self.heading.is_none() {
            // Keep the lines, but a blank line inside `<pre>` must not split the passage.
            let kept = self.line.trim_matches(['\n', '\r']).trim_end();
            kept.split('\n')
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            self.line.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        if !text.trim().is_empty() {
            self.blocks.push(match self.heading {
                Some(level) => format!("{} {text}", "#".repeat(level)),
                None => text,
            });
        }
        self.line.clear();
    }
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// The SHA-256 of a file's bytes, lowercase hex: what incremental re-ingest compares.
pub fn content_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The estimated number of tokens in `text`: its characters divided by 4, rounded up (the
/// usual rule of thumb for English with BPE tokenizers; no tokenizer is loaded).
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// How many of `entries`, taken in order, fit in `max_tokens` (by [`estimate_tokens`] of each
/// entry; separators are not counted). Always at least one when there is one, so a budget
/// smaller than the best passage still returns it.
pub fn fit_token_budget<'a>(entries: impl IntoIterator<Item = &'a str>, max_tokens: u32) -> usize {
    let budget = usize::try_from(max_tokens).unwrap_or(usize::MAX);
    let mut used = 0usize;
    let mut taken = 0usize;
    for entry in entries {
        let cost = estimate_tokens(entry);
        if taken > 0 && used.saturating_add(cost) > budget {
            break;
        }
        used = used.saturating_add(cost);
        taken += 1;
    }
    taken
}

/// Check a `retrieve` node's `filter`: a glob over passage sources (the file's path relative
/// to the folder that was ingested, with `/` between folders). `*` matches any run of
/// characters, including `/`; `?` matches one character; everything else matches itself,
/// case-sensitively. So `policies/*` is everything under `policies/`, and `*.md` every
/// Markdown file. The error says what is wrong.
pub fn check_source_filter(filter: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err("the filter is empty".into());
    }
    if filter.contains(['[', ']']) {
        return Err("`[` and `]` are not supported in filters; use `*` and `?`".into());
    }
    if filter.contains('\\') {
        return Err("sources use `/` between folders, not `\\`".into());
    }
    if filter.starts_with('/') {
        return Err("sources are relative to the ingested folder; remove the leading `/`".into());
    }
    if filter.split('/').any(|s| s == "..") {
        return Err("`..` never appears in a source".into());
    }
    if filter.chars().any(char::is_control) {
        return Err("the filter contains a control character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_carry_their_heading() {
        let text = "Intro line.\n\n# Benefits\n\nHealth from day one.\n\nDental after 3 months.\n\n## Laptop\n\nPick up at IT.\n";
        assert_eq!(
            split_passages(text),
            vec![
                "Intro line.",
                "Benefits: Health from day one.",
                "Benefits: Dental after 3 months.",
                "Laptop: Pick up at IT."
            ]
        );
        assert!(split_passages("\n\n  \n").is_empty());
    }

    #[test]
    fn a_heading_directly_above_text_and_windows_line_ends_still_count() {
        let text = "# Travel\r\nBook economy.\r\n\r\n#hashtag is text\r\n";
        assert_eq!(
            split_passages(text),
            vec!["Travel: Book economy.", "Travel: #hashtag is text"]
        );
    }

    #[test]
    fn long_paragraphs_split_at_sentences_and_every_piece_keeps_the_heading() {
        let sentence = "Every receipt over fifty euros must be attached to the claim in the tool.";
        let para = vec![sentence; 60].join(" "); // 60 × 14 = 840 words
        let out = split_passages(&format!("## Expenses\n\n{para}"));
        assert!(out.len() >= 4, "{} passages", out.len());
        for p in &out {
            assert!(p.starts_with("Expenses: Every receipt"), "{p}");
            assert!(p.ends_with("tool."), "split mid-sentence: {p}");
            let words = word_count(p.trim_start_matches("Expenses: "));
            assert!(words <= TARGET_WORDS, "{words} words");
        }
        let total: usize = out
            .iter()
            .map(|p| word_count(p.trim_start_matches("Expenses: ")))
            .sum();
        assert_eq!(total, 840, "no words lost");
    }

    #[test]
    fn a_sentence_without_punctuation_is_cut_between_words() {
        let text = vec!["word"; 1000].join(" ");
        let out = passages(Format::Text, &text);
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|p| word_count(p) <= MAX_WORDS));
    }

    #[test]
    fn plain_text_and_pdf_text_have_no_headings() {
        assert_eq!(
            passages(Format::Text, "# not a heading\n\nsecond\n   \nthird"),
            vec!["# not a heading", "second", "third"]
        );
        assert_eq!(
            passages(Format::Pdf, "page one\u{c}page two"),
            vec!["page one", "page two"]
        );
    }

    #[test]
    fn html_keeps_visible_text_and_headings_and_drops_scripts() {
        let html = r#"<!doctype html><html><head><title>T</title><style>p{color:red}</style>
            <script>var secret = "do not index";</script></head>
            <body><nav>Home</nav><h1>Refund policy</h1>
            <p>Refunds are issued   within <b>14 days</b>.</p>
            <div>Contact <a href="/x">billing</a>.<script>alert(1)</script></div>
            <h2>Exceptions</h2><ul><li>Gift cards</li><li>Custom orders</li></ul>
            <table><tr><th>Item</th><th>Days</th></tr><tr><td>Shoes</td><td>30</td></tr></table>
            <pre>keep
  this</pre></body></html>"#;
        let text = html_to_text(html);
        assert!(!text.contains("secret") && !text.contains("color") && !text.contains("alert"));
        assert_eq!(
            passages(Format::Html, html),
            vec![
                "Home",
                "Refund policy: Refunds are issued within 14 days.",
                "Refund policy: Contact billing.",
                "Exceptions: Gift cards",
                "Exceptions: Custom orders",
                "Exceptions: Item | Days",
                "Exceptions: Shoes | 30",
                "Exceptions: keep\n  this",
            ]
        );
        // Broken markup and non-HTML never panic.
        for junk in [
            "<h1>unclosed",
            "</p></p><<>>",
            "",
            "\u{0}<script>",
            "<h2></h2>",
        ] {
            let _ = passages(Format::Html, junk);
        }
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::from_extension("MD"), Some(Format::Markdown));
        assert_eq!(Format::from_extension("htm"), Some(Format::Html));
        assert_eq!(Format::from_extension("pdf"), Some(Format::Pdf));
        assert_eq!(Format::from_extension("docx"), None);
    }

    #[test]
    fn token_budget_stops_before_overflow_but_keeps_one() {
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("é"), 1, "characters, not bytes");
        let entries = ["a".repeat(40), "b".repeat(40), "c".repeat(40)]; // 10 tokens each
        let refs = || entries.iter().map(String::as_str);
        assert_eq!(fit_token_budget(refs(), 25), 2);
        assert_eq!(fit_token_budget(refs(), 30), 3);
        assert_eq!(fit_token_budget(refs(), 1), 1, "always at least one");
        assert_eq!(fit_token_budget(std::iter::empty(), 100), 0);
    }

    #[test]
    fn source_filters() {
        for ok in ["policies/*.md", "*.pdf", "handbook.md", "a?c/*"] {
            assert_eq!(check_source_filter(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", " ", "/abs/*", "../x", "a/../b", "[ab].md", "a\\b", "a\u{7}",
        ] {
            assert!(check_source_filter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_hash_is_sha256_hex() {
        assert_eq!(
            content_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
