//! Evaluators' feedback on outputs: tags from a taxonomy, a rating and a comment.
//!
//! An *output* is a finished step of a run (run, node, visit). Each evaluator's tags are
//! theirs alone: a key `(output, evaluator, tag)` has exactly one writer. Its state is a
//! counter that the writer bumps on every effective add or remove, so an odd counter means
//! "present". Replicas merge by taking the larger counter per key: the merge is commutative,
//! associative and idempotent, so tags converge whatever order changes arrive in and however
//! often they are repeated (DESIGN §5 "Tags").
//!
//! Also here, because they are pure: the taxonomy (`evaluation.toml`), inter-annotator
//! agreement (Cohen's and Fleiss' kappa), the sampling order of the evaluation queue and the
//! JSONL records of the exports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::journal::Visit;

// ---------------------------------------------------------------------------------------------
// Outputs

/// A finished step of a run: what evaluators tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutputRef {
    pub run: Uuid,
    pub node: String,
    pub visit: Visit,
}

impl fmt::Display for OutputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.run, self.node, self.visit)
    }
}

/// An output as a person types it: `<run>:<node>[:<visit>]`, where the run may be a unique
/// start or end of its id (the last 8 characters are enough) and the visit defaults to the
/// node's latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub run: String,
    pub node: String,
    pub visit: Option<Visit>,
}

impl OutputSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        let usage = |what: &str| {
            format!(
                "`{text}` is not an output: {what}; write <run>:<node>[:<visit>], e.g. 3f9c2a1b:draft or 3f9c2a1b:review:2"
            )
        };
        let parts: Vec<&str> = text.trim().split(':').collect();
        let (run, node, visit) = match parts.as_slice() {
            [run, node] => (*run, *node, None),
            [run, node, visit] => (*run, *node, Some(*visit)),
            [_] => return Err(usage("it names no node")),
            _ => return Err(usage("it has too many `:`")),
        };
        if run.is_empty() {
            return Err(usage("the run id is missing"));
        }
        if node.is_empty() {
            return Err(usage("the node id is missing"));
        }
        let visit = match visit {
            None => None,
            Some(v) => match v.parse::<Visit>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err(usage(&format!("the visit `{v}` is not a number from 1"))),
            },
        };
        Ok(Self {
            run: run.to_owned(),
            node: node.to_owned(),
            visit,
        })
    }
}

/// Which outputs the evaluation queue and the exports offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// A prompt step's draft.
    Prompt,
    /// A review step that approved (possibly edited) text.
    Review,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::Review => "review",
        }
    }

    /// What a finished step is, from its node's kind in the blueprint (when known) and its
    /// recorded output. Only approved reviews count: a rejected review's text is the draft,
    /// which its prompt step already offers.
    pub fn of_step(node_kind: Option<&str>, output: &Value) -> Option<Self> {
        let looks_like_prompt = output.get("agent").is_some() && output.get("tokens").is_some();
        let looks_like_review = output.get("decision").is_some()
            && output.get("draft").is_some()
            && output.get("task").is_some();
        let approved = output.get("decision").and_then(Value::as_str) == Some("approved");
        let has_text = output.get("text").is_some_and(Value::is_string);
        match node_kind {
            Some("prompt") => has_text.then_some(Self::Prompt),
            Some("review") => (approved && has_text).then_some(Self::Review),
            Some(_) => None,
            None if looks_like_prompt && has_text => Some(Self::Prompt),
            None if looks_like_review && approved && has_text => Some(Self::Review),
            None => None,
        }
    }
}

/// Where the evaluation queue puts an output when it samples with `seed`: a stable,
/// well-mixed number (smaller comes first). The same seed gives the same sample on every
/// machine.
pub fn sample_rank(seed: u64, output: &OutputRef) -> u64 {
    // FNV-1a over the output's text form, then SplitMix64 with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in output.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// Tags: one writer per key, a counter per key, merge = max

/// One evaluator's tag on one output: the unit with a single writer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TagKey {
    pub output: OutputRef,
    pub evaluator: String,
    pub tag: String,
}

/// What the owner of a key wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Add,
    Remove,
}

/// A replicated change: the key's counter after its owner's change. Applying it takes the
/// larger counter, so applying it twice, late or out of order changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TagOp {
    pub key: TagKey,
    pub counter: u64,
}

/// Odd counters mean "present".
pub fn is_present(counter: u64) -> bool {
    counter % 2 == 1
}

/// The counter after the key's owner adds or removes the tag; `None` when that changes
/// nothing (adding a present tag, removing an absent one).
pub fn next_counter(counter: u64, intent: Intent) -> Option<u64> {
    match (intent, is_present(counter)) {
        (Intent::Add, false) | (Intent::Remove, true) => Some(counter.saturating_add(1)),
        _ => None,
    }
}

/// A replica's tags: a counter per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagState {
    counters: BTreeMap<TagKey, u64>,
}

impl TagState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counter(&self, key: &TagKey) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    pub fn is_present(&self, key: &TagKey) -> bool {
        is_present(self.counter(key))
    }

    /// A change by the key's owner on this replica; returns the op to replicate, or `None`
    /// when the change changes nothing.
    pub fn change(&mut self, key: TagKey, intent: Intent) -> Option<TagOp> {
        let counter = next_counter(self.counter(&key), intent)?;
        let op = TagOp { key, counter };
        self.apply(&op);
        Some(op)
    }

    /// Apply a replicated op (max per key). Returns whether the state changed.
    pub fn apply(&mut self, op: &TagOp) -> bool {
        if op.counter > self.counter(&op.key) {
            self.counters.insert(op.key.clone(), op.counter);
            true
        } else {
            false
        }
    }

    /// Merge another replica into this one.
    pub fn merge_from(&mut self, other: &Self) {
        for (key, &counter) in &other.counters {
            if counter > self.counter(key) {
                self.counters.insert(key.clone(), counter);
            }
        }
    }

    /// The keys whose tag is present.
    pub fn present(&self) -> impl Iterator<Item = &TagKey> {
        self.counters
            .iter()
            .filter(|(_, c)| is_present(**c))
            .map(|(k, _)| k)
    }

    /// Every key with its counter (removed tags included: their counter must survive so a
    /// late, older add cannot bring them back).
    pub fn counters(&self) -> impl Iterator<Item = (&TagKey, u64)> {
        self.counters.iter().map(|(k, c)| (k, *c))
    }
}

impl FromIterator<TagOp> for TagState {
    fn from_iter<I: IntoIterator<Item = TagOp>>(ops: I) -> Self {
        let mut s = Self::new();
        for op in ops {
            s.apply(&op);
        }
        s
    }
}

/// The order-free merge of two replicas: the larger counter per key.
pub fn merge(a: &TagState, b: &TagState) -> TagState {
    let mut out = a.clone();
    out.merge_from(b);
    out
}

// ---------------------------------------------------------------------------------------------
// Ratings and comments

/// An evaluator's rating (1–5) and comment on one output. Like tags, it has one writer; each
/// change bumps `revision`, and merging keeps the higher revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub revision: u64,
}

impl Note {
    /// The owner's change: `Some` fields replace, `None` keep; an empty comment clears it.
    pub fn changed(&self, rating: Option<u8>, comment: Option<String>) -> Self {
        Self {
            rating: rating.or(self.rating),
            comment: match comment {
                Some(c) if c.trim().is_empty() => None,
                Some(c) => Some(c),
                None => self.comment.clone(),
            },
            revision: self.revision.saturating_add(1),
        }
    }

    /// Keep the higher revision; equal revisions (the same evaluator on two devices) resolve
    /// by content, so every replica picks the same one.
    pub fn merge(a: &Self, b: &Self) -> Self {
        let key = |n: &Self| (n.revision, n.rating, n.comment.clone());
        if key(b) > key(a) {
            b.clone()
        } else {
            a.clone()
        }
    }
}

/// Ratings are 1 to 5.
pub fn check_rating(rating: u8) -> Result<u8, String> {
    if (1..=5).contains(&rating) {
        Ok(rating)
    } else {
        Err(format!("a rating is 1 to 5, not {rating}"))
    }
}

/// Who tags: a name without control characters, at most 128 bytes.
pub fn check_evaluator(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the evaluator's name is empty; pass --by NAME".into());
    }
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(format!(
            "`{}` is not an evaluator name (at most 128 characters, no control characters)",
            name.escape_debug()
        ));
    }
    Ok(name)
}

// ---------------------------------------------------------------------------------------------
// Taxonomy

/// The tags every blueprint accepts.
pub const DEFAULT_TAGS: [&str; 6] = [
    "hallucination",
    "tone",
    "missing-policy",
    "factual-error",
    "great-example",
    "needs-edit",
];

/// Tag names: lowercase letters, digits and dashes, starting with a letter or digit.
pub fn is_tag_name(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && tag.len() <= 48
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The tags allowed per blueprint: [`DEFAULT_TAGS`], plus `default = [...]` and
/// `<blueprint-id> = [...]` from the `[taxonomy]` table of the project's `evaluation.toml`
/// (read by the service API; tag names are checked with [`is_tag_name`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Taxonomy {
    pub default: Vec<String>,
    pub blueprints: BTreeMap<String, Vec<String>>,
}

impl Taxonomy {
    /// The tags a blueprint accepts, built-in ones first, without repeats.
    pub fn allowed(&self, blueprint: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let extra = self.blueprints.get(blueprint).into_iter().flatten();
        for t in DEFAULT_TAGS
            .iter()
            .map(|t| (*t).to_owned())
            .chain(self.default.iter().cloned())
            .chain(extra.cloned())
        {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Refuse a tag the blueprint does not accept, listing those it does.
    pub fn check(&self, blueprint: &str, tag: &str) -> Result<(), String> {
        let allowed = self.allowed(blueprint);
        if allowed.iter().any(|t| t == tag) {
            return Ok(());
        }
        let hint = crate::diagnostic::did_you_mean(tag, allowed.iter().map(String::as_str))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        Err(format!(
            "`{tag}` is not a tag of `{blueprint}`{hint}; allowed: {}. Add tags under [taxonomy] in evaluation.toml",
            allowed.join(", ")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Inter-annotator agreement

/// An agreement statistic. `kappa` is `None` when it is undefined: no items, or chance
/// agreement of 1 (every rating in one category, so observed agreement is 1 as well).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kappa {
    pub items: usize,
    /// Observed agreement (Cohen's p_o, Fleiss' P̄).
    pub observed: Option<f64>,
    /// Agreement expected by chance (p_e, P̄_e).
    pub chance: Option<f64>,
    pub kappa: Option<f64>,
}

impl Kappa {
    fn none() -> Self {
        Self {
            items: 0,
            observed: None,
            chance: None,
            kappa: None,
        }
    }

    fn from(items: usize, observed: f64, chance: f64) -> Self {
        // Chance agreement is a sum of squared proportions: it is 1 only when every rating is
        // the same category. Guard with a tolerance against rounding.
        let kappa = (1.0 - chance > 1e-12).then(|| (observed - chance) / (1.0 - chance));
        Self {
            items,
            observed: Some(observed),
            chance: Some(chance),
            kappa,
        }
    }
}

/// Cohen's kappa for two raters: one `(rater A's label, rater B's label)` pair per item.
pub fn cohen_kappa<L: Ord>(pairs: &[(L, L)]) -> Kappa {
    if pairs.is_empty() {
        return Kappa::none();
    }
    let n = pairs.len() as f64;
    let agree = pairs.iter().filter(|(a, b)| a == b).count() as f64;
    let mut a_counts: BTreeMap<&L, f64> = BTreeMap::new();
    let mut b_counts: BTreeMap<&L, f64> = BTreeMap::new();
    for (a, b) in pairs {
        *a_counts.entry(a).or_default() += 1.0;
        *b_counts.entry(b).or_default() += 1.0;
    }
    let chance = a_counts
        .iter()
        .map(|(label, ca)| (ca / n) * (b_counts.get(label).copied().unwrap_or(0.0) / n))
        .sum();
    Kappa::from(pairs.len(), agree / n, chance)
}

/// Fleiss' kappa for several raters: `counts[i][j]` is how many raters put item `i` in
/// category `j`. Items rated by fewer than two raters carry no agreement and are skipped; items
/// may have different numbers of raters (each item's agreement uses its own count).
pub fn fleiss_kappa(counts: &[Vec<u32>]) -> Kappa {
    let rows: Vec<&Vec<u32>> = counts
        .iter()
        .filter(|r| r.iter().map(|&c| u64::from(c)).sum::<u64>() >= 2)
        .collect();
    if rows.is_empty() {
        return Kappa::none();
    }
    let categories = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut totals = vec![0.0f64; categories];
    let mut ratings = 0.0f64;
    let mut observed = 0.0f64;
    for row in &rows {
        let n: f64 = row.iter().map(|&c| f64::from(c)).sum();
        let squares: f64 = row.iter().map(|&c| f64::from(c) * f64::from(c)).sum();
        observed += (squares - n) / (n * (n - 1.0));
        for (j, &c) in row.iter().enumerate() {
            totals[j] += f64::from(c);
        }
        ratings += n;
    }
    let observed = observed / rows.len() as f64;
    let chance = totals.iter().map(|t| (t / ratings) * (t / ratings)).sum();
    Kappa::from(rows.len(), observed, chance)
}

/// Agreement on one tag (present or absent) among a set of evaluators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagAgreement {
    pub tag: String,
    /// `cohen` for two evaluators, `fleiss` for more.
    pub method: &'static str,
    /// How many (output, evaluator) judgements said "present".
    pub present: usize,
    #[serde(flatten)]
    pub kappa: Kappa,
}

/// Per-tag agreement among `evaluators` over the outputs every one of them evaluated.
/// `evaluated` says who evaluated each output (tagged it, even if the tags were removed
/// later, or rated or commented on it); `present` holds the tags present now. Tags nobody
/// used still count: all-absent gives an undefined kappa with perfect observed agreement.
pub fn tag_agreement(
    evaluated: &BTreeMap<OutputRef, BTreeSet<String>>,
    present: &BTreeSet<TagKey>,
    evaluators: &[String],
    tags: &[String],
) -> Vec<TagAgreement> {
    if evaluators.len() < 2 {
        return Vec::new();
    }
    let items: Vec<&OutputRef> = evaluated
        .iter()
        .filter(|(_, who)| evaluators.iter().all(|e| who.contains(e)))
        .map(|(o, _)| o)
        .collect();
    let has = |output: &OutputRef, evaluator: &str, tag: &str| {
        present.contains(&TagKey {
            output: output.clone(),
            evaluator: evaluator.to_owned(),
            tag: tag.to_owned(),
        })
    };
    tags.iter()
        .map(|tag| {
            let judgements: Vec<Vec<bool>> = items
                .iter()
                .map(|o| evaluators.iter().map(|e| has(o, e, tag)).collect())
                .collect();
            let present = judgements.iter().flatten().filter(|p| **p).count();
            let (method, kappa) = if evaluators.len() == 2 {
                let pairs: Vec<(bool, bool)> = judgements.iter().map(|j| (j[0], j[1])).collect();
                ("cohen", cohen_kappa(&pairs))
            } else {
                let counts: Vec<Vec<u32>> = judgements
                    .iter()
                    .map(|j| {
                        let yes = u32::try_from(j.iter().filter(|p| **p).count()).unwrap_or(0);
                        let no = u32::try_from(j.len()).unwrap_or(0) - yes;
                        vec![yes, no]
                    })
                    .collect();
                ("fleiss", fleiss_kappa(&counts))
            };
            TagAgreement {
                tag: tag.clone(),
                method,
                present,
                kappa,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Exports

/// A finished step as the exports read it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub output: OutputRef,
    pub kind: OutputKind,
    /// The step's journal position within its run.
    pub seq: u64,
    /// The recorded output (`text`, and for reviews `draft`, `edited`…).
    pub value: Value,
    /// The recorded input (`meta.input`: for prompts `{"messages": [...]}`).
    pub input: Option<Value>,
}

impl StepRecord {
    pub fn text(&self) -> &str {
        self.value
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The chat messages this step sent, when it is a prompt that recorded them.
    pub fn messages(&self) -> Option<&Vec<Value>> {
        self.input
            .as_ref()?
            .get("messages")?
            .as_array()
            .filter(|m| !m.is_empty())
    }
}

/// For each approved review among one run's steps, the prompt step that drafted what it
/// reviewed: the latest earlier prompt whose text is the draft, else the latest earlier prompt
/// whose text the draft contains, else the latest earlier prompt. Returns `(review, prompt)`
/// indices into `steps`.
pub fn pair_drafts(steps: &[StepRecord]) -> Vec<(usize, Option<usize>)> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == OutputKind::Review)
        .map(|(i, review)| {
            let draft = review
                .value
                .get("draft")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let earlier: Vec<usize> = steps
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.kind == OutputKind::Prompt
                        && p.output.run == review.output.run
                        && p.seq < review.seq
                })
                .map(|(j, _)| j)
                .collect();
            let latest = |ok: &dyn Fn(&StepRecord) -> bool| {
                earlier.iter().rev().copied().find(|&j| ok(&steps[j]))
            };
            let prompt = latest(&|p| p.text() == draft)
                .or_else(|| latest(&|p| !p.text().is_empty() && draft.contains(p.text())))
                .or_else(|| earlier.last().copied());
            (i, prompt)
        })
        .collect()
}

/// One line of the chat fine-tuning format: the drafting prompt's messages followed by the
/// approved text as the assistant's reply. `None` when the prompt recorded no messages.
pub fn chat_record(messages: &[Value], approved: &str) -> Option<Value> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    for m in messages {
        let role = m.get("role").and_then(Value::as_str)?;
        let content = m.get("content").and_then(Value::as_str)?;
        out.push(json!({ "role": role, "content": content }));
    }
    if out.is_empty() {
        return None;
    }
    out.push(json!({ "role": "assistant", "content": approved }));
    Some(json!({ "messages": out }))
}

/// What an export line says about the feedback on an output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackSummary {
    /// Tags present, each with how many evaluators gave it.
    pub tags: BTreeMap<String, usize>,
    /// Evaluator → rating.
    pub ratings: BTreeMap<String, u8>,
    /// Evaluator → comment.
    pub comments: BTreeMap<String, String>,
}

/// Where an exported line comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance<'a> {
    pub output: &'a OutputRef,
    pub blueprint: &'a str,
    pub version: &'a str,
}

/// One line of the eval set: the input, the approved output and the feedback on it.
pub fn evalset_record(
    from: &Provenance<'_>,
    review: &StepRecord,
    prompt: Option<&StepRecord>,
    feedback: &FeedbackSummary,
) -> Value {
    let input = prompt.and_then(StepRecord::messages);
    json!({
        "input": input.map(|m| json!({ "messages": m })),
        "approved_output": review.text(),
        "draft": review.value.get("draft").cloned().unwrap_or(Value::Null),
        "edited": review.value.get("edited").and_then(Value::as_bool).unwrap_or(false),
        "tags": feedback.tags.keys().collect::<Vec<_>>(),
        "tag_counts": feedback.tags,
        "ratings": feedback.ratings,
        "comments": feedback.comments,
        "run": from.output.run,
        "output": from.output.to_string(),
        "prompt_output": prompt.map(|p| p.output.to_string()),
        "blueprint": from.blueprint,
        "version": from.version,
    })
}
