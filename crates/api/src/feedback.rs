//! Evaluators' feedback: tags, ratings and comments on outputs (finished run steps), the
//! evaluation queue, agreement between evaluators, and exports of approved outputs as JSONL.
//!
//! The tag taxonomy comes from the project's `evaluation.toml` ([`load_taxonomy`]); the
//! service functions that check tags take it as an argument.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use processops_core::feedback::{
    self as core_feedback, FeedbackSummary, Intent, OutputKind, OutputRef, OutputSpec, Provenance,
    StepRecord, TagKey, Taxonomy,
};
use processops_store::{
    FeedbackFilter, FinishedStep, NoteChange, NoteRow, OutputQuery, OutputRow, TagChange, TagRow,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::service::Service;

/// The file that extends the tag taxonomy, in the project folder.
pub const EVALUATION_FILE: &str = "evaluation.toml";

/// Longest comment accepted.
const MAX_COMMENT: usize = 10_000;

/// Read the project's `evaluation.toml`; a missing file means the built-in taxonomy.
pub fn load_taxonomy(project: &Path) -> Result<Taxonomy, ApiError> {
    let path = project.join(EVALUATION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_taxonomy(&text)
            .map_err(|e| ApiError::new(422, "invalid_request", format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Taxonomy::default()),
        Err(e) => Err(ApiError::new(
            500,
            "internal",
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// `evaluation.toml`: a `[taxonomy]` table of tag lists, `default` for every blueprint.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationFile {
    #[serde(default)]
    taxonomy: BTreeMap<String, Vec<toml::Spanned<String>>>,
}

/// Parse `evaluation.toml`; errors name the line.
fn parse_taxonomy(text: &str) -> Result<Taxonomy, String> {
    let file: EvaluationFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        format!("line {line}: {}", e.message())
    })?;
    let mut out = Taxonomy::default();
    for (key, tags) in file.taxonomy {
        let mut names = Vec::with_capacity(tags.len());
        for tag in tags {
            if !core_feedback::is_tag_name(tag.get_ref()) {
                return Err(format!(
                    "line {}: `{}` is not a tag name; use lowercase letters, digits and dashes, e.g. `off-topic`",
                    line_of(text, tag.span().start),
                    tag.get_ref()
                ));
            }
            names.push(tag.into_inner());
        }
        if key == "default" {
            out.default = names;
        } else {
            out.blueprints.insert(key, names);
        }
    }
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |t| t.matches('\n').count() + 1)
}

#[cfg(test)]
mod taxonomy_tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_taxonomy;

    #[test]
    fn taxonomy_files_are_read_and_mistakes_name_their_line() {
        let t = parse_taxonomy("# ours\n[taxonomy]\ndefault = [\"off-topic\"]\n\"hr-onboarding\" = [\n  'wrong-start-date',\n]\n").unwrap();
        assert_eq!(t.default, vec!["off-topic"]);
        assert_eq!(t.blueprints["hr-onboarding"], vec!["wrong-start-date"]);
        assert_eq!(
            parse_taxonomy("").unwrap(),
            processops_core::feedback::Taxonomy::default()
        );
        for (text, expected) in [
            (
                "[taxonomy]\ndefault = [\"Bad Tag\"]\n",
                "line 2: `Bad Tag` is not a tag name",
            ),
            ("[taxonomi]\n", "line 1: unknown field `taxonomi`"),
            ("[taxonomy]\ndefault = \"x\"\n", "line 2: invalid type"),
            ("[taxonomy]\na = [\"x\" \"y\"]\n", "line 2:"),
            ("[taxonomy]\na = []\na = []\n", "line 3:"),
        ] {
            let err = parse_taxonomy(text).unwrap_err();
            assert!(err.starts_with(expected), "{text:?}: {err}");
        }
    }
}

/// Add tags to an output, and optionally rate it or comment on it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[ts(optional_fields = nullable)]
pub struct TagRequest {
    /// `<run>:<node>[:<visit>]`; the run may be the last 8 characters of its id, the visit
    /// defaults to the node's latest.
    pub output: String,
    #[serde(default)]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub tags: Vec<String>,
    /// 1 to 5.
    #[serde(default)]
    pub rating: Option<u8>,
    /// Free text; an empty comment clears the previous one.
    #[serde(default)]
    pub comment: Option<String>,
    /// The evaluator.
    pub by: String,
}

/// Remove tags from an output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct UntagRequest {
    pub output: String,
    pub tags: Vec<String>,
    pub by: String,
}

/// One evaluator's feedback on one output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct OutputFeedback {
    /// `<run>:<node>:<visit>`.
    pub output: String,
    /// The short form people type: `<last 8 of run>:<node>:<visit>`.
    pub handle: String,
    pub run: Uuid,
    pub node: String,
    pub visit: u32,
    pub blueprint: Option<String>,
    pub evaluator: String,
    /// Tags present, sorted.
    pub tags: Vec<String>,
    pub rating: Option<u8>,
    pub comment: Option<String>,
    /// Unix ms of the last change.
    pub updated_at: i64,
}

/// What a tag change did, and the evaluator's feedback on the output after it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct TagResponse {
    /// Tags whose state this request changed.
    pub changed: Vec<String>,
    /// Tags that were already as asked.
    pub unchanged: Vec<String>,
    pub feedback: OutputFeedback,
}

/// Which feedback to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[ts(optional_fields)]
pub struct FeedbackQuery {
    /// `<run>:<node>[:<visit>]`, or just a run id for all of its outputs.
    pub output: Option<String>,
    pub by: Option<String>,
    pub blueprint: Option<String>,
    pub tag: Option<String>,
}

/// The evaluation queue: outputs this evaluator has not tagged, rated or commented on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[ts(optional_fields)]
pub struct QueueQuery {
    pub by: String,
    pub blueprint: Option<String>,
    /// `prompt` (drafts) or `review` (approved texts); both by default.
    pub kind: Option<String>,
    pub limit: Option<u32>,
    /// Sample with this seed instead of newest first.
    pub seed: Option<u64>,
}

/// An output waiting for an evaluator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct QueueItem {
    pub output: String,
    pub handle: String,
    pub run: Uuid,
    pub node: String,
    pub visit: u32,
    /// `prompt` or `review`.
    pub kind: String,
    pub blueprint: String,
    pub version: String,
    /// Unix ms.
    pub finished_at: i64,
    /// The draft (prompt) or the approved text (review).
    pub text: String,
    /// For reviews: the draft that was reviewed, and whether the reviewer edited it.
    pub draft: Option<String>,
    pub edited: bool,
    pub allowed_tags: Vec<String>,
}

/// Agreement between evaluators, per tag.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct AgreementQuery {
    pub blueprint: Option<String>,
    /// The evaluators to compare (default: everyone who gave feedback in scope).
    #[serde(default)]
    pub evaluators: Vec<String>,
    /// The tags to report (default: the taxonomy's and every tag used in scope).
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct AgreementReport {
    pub blueprint: Option<String>,
    pub evaluators: Vec<String>,
    /// `cohen` (two evaluators) or `fleiss` (more); none with fewer than two.
    pub method: Option<String>,
    /// Outputs every one of the evaluators gave feedback on: the items compared.
    pub outputs: usize,
    pub tags: Vec<TagAgreementDto>,
    /// Why there is nothing to compare, when there is not.
    pub note: Option<String>,
}

/// Agreement on one tag (present or absent).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct TagAgreementDto {
    pub tag: String,
    /// How many of the compared judgements said "present".
    pub present: usize,
    /// Observed agreement (0–1).
    pub observed: Option<f64>,
    /// Agreement expected by chance (0–1).
    pub chance: Option<f64>,
    /// Cohen's or Fleiss' kappa; `null` when undefined (no outputs, or everyone always gave
    /// the same answer).
    pub kappa: Option<f64>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// `{"messages": [system, user, assistant]}` per line, the assistant's reply being the
    /// approved text.
    Chat,
    /// `{"input", "approved_output", "tags", "ratings", ...}` per line.
    Evalset,
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "chat" => Ok(Self::Chat),
            "evalset" => Ok(Self::Evalset),
            other => Err(format!(
                "`{other}` is not an export format; use chat or evalset"
            )),
        }
    }
}

/// Which approved outputs to export.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct ExportQuery {
    pub format: ExportFormat,
    pub blueprint: Option<String>,
    /// Only outputs with all of these tags (given by any evaluator, on the approved text or
    /// on the draft it came from).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The exported lines and what was left out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct Export {
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Value>,
    /// Approved outputs of finished runs in scope.
    pub approved: usize,
    /// Left out by the tag filter.
    pub filtered: usize,
    /// Left out of `chat` because no prompt with recorded messages drafted them.
    pub without_prompt: usize,
}

fn handle(o: &OutputRef) -> String {
    let run = o.run.to_string();
    format!(
        "{}:{}:{}",
        &run[run.len().saturating_sub(8)..],
        o.node,
        o.visit
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(422, "invalid_request", message)
}

fn evaluator(by: &str) -> Result<String, ApiError> {
    core_feedback::check_evaluator(by)
        .map(ToOwned::to_owned)
        .map_err(invalid)
}

/// Trimmed, de-duplicated tag names in the order given; each must look like a tag.
fn tag_names(tags: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if !core_feedback::is_tag_name(t) {
            return Err(invalid(format!(
                "`{t}` is not a tag name; tags are lowercase letters, digits and dashes, e.g. `tone`"
            )));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

impl Service {
    /// The tags a blueprint accepts.
    pub fn taxonomy(&self, taxonomy: &Taxonomy, blueprint: &str) -> Vec<String> {
        taxonomy.allowed(blueprint)
    }

    /// Find the finished step `<run>:<node>[:<visit>]` names.
    pub fn resolve_output(&self, spec: &str) -> Result<FinishedStep, ApiError> {
        let spec = OutputSpec::parse(spec).map_err(invalid)?;
        let run = self.resolve_run(&spec.run)?;
        let store = self.engine().store();
        if let Some(step) = store.finished_step(run, &spec.node, spec.visit)? {
            return Ok(step);
        }
        let steps = store.finished_steps(run)?;
        let run_text = run.to_string();
        let short = &run_text[run_text.len().saturating_sub(8)..];
        let listed = if steps.is_empty() {
            "it has no finished steps yet".to_owned()
        } else {
            format!(
                "finished steps: {}",
                steps
                    .iter()
                    .map(|(n, v)| format!("{n}:{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let what = match spec.visit {
            Some(v) => format!("no visit {v} of `{}`", spec.node),
            None => format!("no finished step `{}`", spec.node),
        };
        let hint = processops_core::diagnostic::did_you_mean(
            &spec.node,
            steps.iter().map(|(n, _)| n.as_str()),
        )
        .filter(|_| !steps.iter().any(|(n, _)| *n == spec.node))
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
        Err(ApiError::not_found(format!(
            "run {short} has {what}{hint}; {listed}"
        )))
    }

    /// Add tags (checked against the blueprint's taxonomy), and set a rating or comment.
    pub async fn tag_add(
        &self,
        taxonomy: &Taxonomy,
        req: TagRequest,
    ) -> Result<TagResponse, ApiError> {
        let by = evaluator(&req.by)?;
        self.engine().check_role(&by, "evaluator", "tag outputs")?;
        let tags = tag_names(&req.tags)?;
        if let Some(r) = req.rating {
            core_feedback::check_rating(r).map_err(invalid)?;
        }
        if req.comment.as_ref().is_some_and(|c| c.len() > MAX_COMMENT) {
            return Err(invalid(format!(
                "the comment is longer than {MAX_COMMENT} bytes"
            )));
        }
        if tags.is_empty() && req.rating.is_none() && req.comment.is_none() {
            return Err(invalid(
                "nothing to record: give at least one tag, a rating or a comment",
            ));
        }
        let step = self.resolve_output(&req.output)?;
        for t in &tags {
            taxonomy.check(&step.blueprint_id, t).map_err(invalid)?;
        }
        let changes = tags
            .iter()
            .map(|t| TagChange {
                key: TagKey {
                    output: step.output.clone(),
                    evaluator: by.clone(),
                    tag: t.clone(),
                },
                intent: Intent::Add,
            })
            .collect();
        let store = self.engine().store();
        let ops = store.change_tags(changes).await?;
        if req.rating.is_some() || req.comment.is_some() {
            store
                .change_note(NoteChange {
                    output: step.output.clone(),
                    evaluator: by.clone(),
                    rating: req.rating,
                    comment: req.comment,
                })
                .await?;
        }
        self.tag_response(&step, &by, &tags, &ops)
    }

    /// Remove tags. Tags the taxonomy no longer lists can still be removed.
    pub async fn tag_remove(&self, req: UntagRequest) -> Result<TagResponse, ApiError> {
        let by = evaluator(&req.by)?;
        self.engine().check_role(&by, "evaluator", "tag outputs")?;
        let tags = tag_names(&req.tags)?;
        if tags.is_empty() {
            return Err(invalid("name the tags to remove"));
        }
        let step = self.resolve_output(&req.output)?;
        let changes = tags
            .iter()
            .map(|t| TagChange {
                key: TagKey {
                    output: step.output.clone(),
                    evaluator: by.clone(),
                    tag: t.clone(),
                },
                intent: Intent::Remove,
            })
            .collect();
        let ops = self.engine().store().change_tags(changes).await?;
        self.tag_response(&step, &by, &tags, &ops)
    }

    fn tag_response(
        &self,
        step: &FinishedStep,
        by: &str,
        tags: &[String],
        ops: &[core_feedback::TagOp],
    ) -> Result<TagResponse, ApiError> {
        let changed: Vec<String> = ops.iter().map(|o| o.key.tag.clone()).collect();
        let unchanged = tags
            .iter()
            .filter(|t| !changed.contains(t))
            .cloned()
            .collect();
        let filter = FeedbackFilter {
            output: Some(step.output.clone()),
            evaluator: Some(by.to_owned()),
            ..FeedbackFilter::default()
        };
        let feedback = self
            .group_feedback(&filter, None)?
            .into_iter()
            .next()
            .unwrap_or_else(|| OutputFeedback {
                output: step.output.to_string(),
                handle: handle(&step.output),
                run: step.output.run,
                node: step.output.node.clone(),
                visit: step.output.visit,
                blueprint: Some(step.blueprint_id.clone()),
                evaluator: by.to_owned(),
                tags: Vec::new(),
                rating: None,
                comment: None,
                updated_at: 0,
            });
        Ok(TagResponse {
            changed,
            unchanged,
            feedback,
        })
    }

    /// Feedback per (output, evaluator): present tags, rating, comment.
    pub fn feedback(&self, q: &FeedbackQuery) -> Result<Vec<OutputFeedback>, ApiError> {
        let mut filter = FeedbackFilter {
            evaluator: q.by.clone(),
            blueprint_id: q.blueprint.clone(),
            ..FeedbackFilter::default()
        };
        if let Some(o) = q.output.as_deref() {
            if o.contains(':') {
                filter.output = Some(self.resolve_output(o)?.output);
            } else {
                filter.run_id = Some(self.resolve_run(o)?);
            }
        }
        let tag = match q.tag.as_deref() {
            Some(t) => Some(tag_names(&[t.to_owned()])?.remove(0)),
            None => None,
        };
        self.group_feedback(&filter, tag.as_deref())
    }

    fn group_feedback(
        &self,
        filter: &FeedbackFilter,
        tag: Option<&str>,
    ) -> Result<Vec<OutputFeedback>, ApiError> {
        let store = self.engine().store();
        let tags = store.list_tags(filter)?;
        let notes = store.list_notes(filter)?;
        // Per (output, evaluator): present tags, the note, the last change.
        #[derive(Default)]
        struct Group<'a> {
            tags: Vec<String>,
            note: Option<&'a NoteRow>,
            updated_at: i64,
        }
        let mut grouped: BTreeMap<(OutputRef, String), Group<'_>> = BTreeMap::new();
        for t in tags.iter().filter(|t| t.present()) {
            let g = grouped
                .entry((t.key.output.clone(), t.key.evaluator.clone()))
                .or_default();
            g.tags.push(t.key.tag.clone());
            g.updated_at = g.updated_at.max(t.updated_at);
        }
        for n in &notes {
            let g = grouped
                .entry((n.output.clone(), n.evaluator.clone()))
                .or_default();
            g.note = Some(n);
            g.updated_at = g.updated_at.max(n.updated_at);
        }
        let mut blueprints: BTreeMap<Uuid, Option<String>> = BTreeMap::new();
        let mut out = Vec::new();
        for ((output, evaluator), group) in grouped {
            let Group {
                mut tags,
                note,
                updated_at,
            } = group;
            if tag.is_some_and(|t| !tags.iter().any(|x| x == t)) {
                continue;
            }
            let note = note.map(|n| &n.note);
            if tags.is_empty() && note.is_none_or(|n| n.rating.is_none() && n.comment.is_none()) {
                continue;
            }
            tags.sort();
            let blueprint = match blueprints.get(&output.run) {
                Some(b) => b.clone(),
                None => {
                    let b = store.run_blueprint(output.run)?;
                    blueprints.insert(output.run, b.clone());
                    b
                }
            };
            out.push(OutputFeedback {
                output: output.to_string(),
                handle: handle(&output),
                run: output.run,
                node: output.node.clone(),
                visit: output.visit,
                blueprint,
                evaluator,
                tags,
                rating: note.and_then(|n| n.rating),
                comment: note.and_then(|n| n.comment.clone()),
                updated_at,
            });
        }
        Ok(out)
    }

    /// Outputs of finished runs that `by` has not given feedback on yet, newest first or
    /// sampled by a seed.
    pub fn eval_queue(
        &self,
        taxonomy: &Taxonomy,
        q: &QueueQuery,
    ) -> Result<Vec<QueueItem>, ApiError> {
        let by = evaluator(&q.by)?;
        let kind = match q.kind.as_deref() {
            None | Some("all") => None,
            Some("prompt") => Some(OutputKind::Prompt),
            Some("review") => Some(OutputKind::Review),
            Some(k) => {
                return Err(invalid(format!(
                    "`{k}` is not an output kind; use prompt, review or all"
                )));
            }
        };
        let rows = self.engine().store().finished_outputs(&OutputQuery {
            blueprint_id: q.blueprint.clone(),
            run_id: None,
            kind,
            not_evaluated_by: Some(by),
            limit: Some(q.limit.unwrap_or(20).min(1000) as usize),
            seed: q.seed,
        })?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let s = &r.step;
                QueueItem {
                    output: s.output.to_string(),
                    handle: handle(&s.output),
                    run: s.output.run,
                    node: s.output.node.clone(),
                    visit: s.output.visit,
                    kind: s.kind.as_str().into(),
                    allowed_tags: taxonomy.allowed(&r.blueprint_id),
                    blueprint: r.blueprint_id.clone(),
                    version: r.version.clone(),
                    finished_at: r.at,
                    text: s.text().to_owned(),
                    draft: (s.kind == OutputKind::Review)
                        .then(|| s.value.get("draft").and_then(Value::as_str))
                        .flatten()
                        .map(ToOwned::to_owned),
                    edited: s.value.get("edited").and_then(Value::as_bool) == Some(true),
                }
            })
            .collect())
    }

    /// Per-tag agreement between evaluators over the outputs they all gave feedback on:
    /// Cohen's kappa for two, Fleiss' kappa for more.
    pub fn agreement(
        &self,
        taxonomy: &Taxonomy,
        q: &AgreementQuery,
    ) -> Result<AgreementReport, ApiError> {
        let store = self.engine().store();
        let filter = FeedbackFilter {
            blueprint_id: q.blueprint.clone(),
            ..FeedbackFilter::default()
        };
        let tag_rows: Vec<TagRow> = store.list_tags(&filter)?;
        let notes = store.list_notes(&filter)?;
        let mut evaluated: BTreeMap<OutputRef, BTreeSet<String>> = BTreeMap::new();
        for t in &tag_rows {
            evaluated
                .entry(t.key.output.clone())
                .or_default()
                .insert(t.key.evaluator.clone());
        }
        for n in &notes {
            evaluated
                .entry(n.output.clone())
                .or_default()
                .insert(n.evaluator.clone());
        }
        let present: BTreeSet<TagKey> = tag_rows
            .iter()
            .filter(|t| t.present())
            .map(|t| t.key.clone())
            .collect();
        let everyone: BTreeSet<String> = evaluated.values().flatten().cloned().collect();
        let evaluators: Vec<String> = if q.evaluators.is_empty() {
            everyone.iter().cloned().collect()
        } else {
            let mut chosen = Vec::new();
            for e in &q.evaluators {
                let e = evaluator(e)?;
                if !everyone.contains(&e) {
                    return Err(ApiError::not_found(format!(
                        "{e} gave no feedback{}; evaluators: {}",
                        q.blueprint
                            .as_deref()
                            .map(|b| format!(" on `{b}`"))
                            .unwrap_or_default(),
                        if everyone.is_empty() {
                            "none yet".to_owned()
                        } else {
                            everyone.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    )));
                }
                if !chosen.contains(&e) {
                    chosen.push(e);
                }
            }
            chosen
        };
        let tags: Vec<String> = if q.tags.is_empty() {
            let mut tags = taxonomy.allowed(q.blueprint.as_deref().unwrap_or_default());
            let used: BTreeSet<&String> = present.iter().map(|k| &k.tag).collect();
            for t in used {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
            tags
        } else {
            tag_names(&q.tags)?
        };
        let outputs = evaluated
            .values()
            .filter(|who| evaluators.iter().all(|e| who.contains(e)))
            .count();
        let note = if evaluators.len() < 2 {
            Some(format!(
                "agreement needs feedback from at least two evaluators; {}",
                if evaluators.is_empty() {
                    "there is none yet".to_owned()
                } else {
                    format!("only {} gave some", evaluators.join(", "))
                }
            ))
        } else if outputs == 0 {
            Some(format!(
                "no output has feedback from all of {}; share some outputs between them (eval queue --seed gives everyone the same sample)",
                evaluators.join(", ")
            ))
        } else {
            None
        };
        let results = core_feedback::tag_agreement(&evaluated, &present, &evaluators, &tags);
        Ok(AgreementReport {
            blueprint: q.blueprint.clone(),
            method: results.first().map(|r| r.method.to_owned()),
            outputs,
            tags: results
                .into_iter()
                .map(|r| TagAgreementDto {
                    tag: r.tag,
                    present: r.present,
                    observed: r.kappa.observed,
                    chance: r.kappa.chance,
                    kappa: r.kappa.kappa,
                })
                .collect(),
            evaluators,
            note,
        })
    }

    /// Approved outputs of finished runs as JSONL records, oldest first: the chat fine-tuning
    /// format or an eval set.
    pub fn export(&self, q: &ExportQuery) -> Result<Export, ApiError> {
        let want = tag_names(&q.tags)?;
        let store = self.engine().store();
        let rows = store.finished_outputs(&OutputQuery {
            blueprint_id: q.blueprint.clone(),
            ..OutputQuery::default()
        })?;
        let filter = FeedbackFilter {
            blueprint_id: q.blueprint.clone(),
            ..FeedbackFilter::default()
        };
        // Per output: tag → evaluators; evaluator → note.
        let mut tagged: BTreeMap<OutputRef, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for t in store
            .list_tags(&filter)?
            .into_iter()
            .filter(TagRow::present)
        {
            tagged
                .entry(t.key.output)
                .or_default()
                .entry(t.key.tag)
                .or_default()
                .insert(t.key.evaluator);
        }
        let mut notes: BTreeMap<OutputRef, Vec<NoteRow>> = BTreeMap::new();
        for n in store.list_notes(&filter)? {
            notes.entry(n.output.clone()).or_default().push(n);
        }

        // Rows come newest run first, latest step first: regroup per run, oldest first.
        let mut runs: Vec<Vec<OutputRow>> = Vec::new();
        for row in rows {
            match runs.last_mut() {
                Some(run) if run[0].step.output.run == row.step.output.run => run.push(row),
                _ => runs.push(vec![row]),
            }
        }
        runs.reverse();
        let mut export = Export {
            records: Vec::new(),
            approved: 0,
            filtered: 0,
            without_prompt: 0,
        };
        for mut run in runs {
            run.reverse();
            let steps: Vec<StepRecord> = run.iter().map(|r| r.step.clone()).collect();
            for (ri, pi) in core_feedback::pair_drafts(&steps) {
                export.approved += 1;
                let review = &steps[ri];
                let prompt = pi.map(|i| &steps[i]);
                let mut summary = FeedbackSummary::default();
                let mut by_tag: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
                // The approved text's feedback first, so its ratings win over the draft's.
                for output in std::iter::once(review).chain(prompt) {
                    for (tag, who) in tagged.get(&output.output).into_iter().flatten() {
                        by_tag.entry(tag).or_default().extend(who);
                    }
                    for n in notes.get(&output.output).into_iter().flatten() {
                        if let Some(r) = n.note.rating {
                            summary.ratings.entry(n.evaluator.clone()).or_insert(r);
                        }
                        if let Some(c) = &n.note.comment {
                            summary
                                .comments
                                .entry(n.evaluator.clone())
                                .or_insert_with(|| c.clone());
                        }
                    }
                }
                summary.tags = by_tag
                    .into_iter()
                    .map(|(t, who)| (t.clone(), who.len()))
                    .collect();
                if !want.iter().all(|t| summary.tags.contains_key(t)) {
                    export.filtered += 1;
                    continue;
                }
                match q.format {
                    ExportFormat::Chat => {
                        match prompt
                            .and_then(StepRecord::messages)
                            .and_then(|m| core_feedback::chat_record(m, review.text()))
                        {
                            Some(line) => export.records.push(line),
                            None => export.without_prompt += 1,
                        }
                    }
                    ExportFormat::Evalset => {
                        let row = &run[ri];
                        export.records.push(core_feedback::evalset_record(
                            &Provenance {
                                output: &review.output,
                                blueprint: &row.blueprint_id,
                                version: &row.version,
                            },
                            review,
                            prompt,
                            &summary,
                        ));
                    }
                }
            }
        }
        Ok(export)
    }
}
