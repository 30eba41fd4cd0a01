//! Evaluators' feedback: tags (a counter per key, merged by max), ratings and comments, and the
//! finished outputs they are about, read from the journal.

use std::collections::{BinaryHeap, HashMap, HashSet};

use processops_core::blueprint;
use processops_core::feedback::{
    Intent, Note, OutputKind, OutputRef, StepRecord, TagKey, TagOp, next_counter, sample_rank,
};
use processops_core::journal::{Event, Visit};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{Result, Store, StoreError, now_ms};

/// A change the owner of a tag key makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    pub key: TagKey,
    pub intent: Intent,
}

/// A change of an evaluator's rating and comment on an output: `Some` replaces, `None`
/// keeps, an empty comment clears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteChange {
    pub output: OutputRef,
    pub evaluator: String,
    pub rating: Option<u8>,
    pub comment: Option<String>,
}

/// A tag key and its counter (odd = present; removed tags stay with an even counter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagRow {
    pub key: TagKey,
    pub counter: u64,
    pub updated_at: i64,
}

impl TagRow {
    pub fn present(&self) -> bool {
        processops_core::feedback::is_present(self.counter)
    }
}

/// An evaluator's rating and comment on an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteRow {
    pub output: OutputRef,
    pub evaluator: String,
    pub note: Note,
    pub updated_at: i64,
}

/// Which feedback to read.
#[derive(Debug, Clone, Default)]
pub struct FeedbackFilter {
    pub output: Option<OutputRef>,
    pub run_id: Option<Uuid>,
    pub evaluator: Option<String>,
    pub blueprint_id: Option<String>,
    pub tag: Option<String>,
}

/// A finished step of a finished run, as the evaluation queue and the exports offer it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRow {
    pub blueprint_id: String,
    pub version: String,
    /// When the step finished (Unix ms).
    pub at: i64,
    pub step: StepRecord,
}

/// Which finished outputs to read: prompt drafts and approved reviews of completed or failed
/// runs, newest run first (within a run, latest step first).
#[derive(Debug, Clone, Default)]
pub struct OutputQuery {
    pub blueprint_id: Option<String>,
    pub run_id: Option<Uuid>,
    pub kind: Option<OutputKind>,
    /// Leave out the outputs this evaluator tagged (even if they removed the tags since),
    /// rated or commented on.
    pub not_evaluated_by: Option<String>,
    pub limit: Option<usize>,
    /// Sample instead of newest first: a stable pseudo-random order per seed.
    pub seed: Option<u64>,
}

/// A finished step of any run, any node kind: what can be tagged.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedStep {
    pub output: OutputRef,
    pub blueprint_id: String,
    pub version: String,
    pub value: Value,
}

const UPSERT_TAG: &str =
    "INSERT INTO feedback_tags (run_id, node, visit, evaluator, tag, counter, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (run_id, node, visit, evaluator, tag) DO UPDATE
     SET counter = excluded.counter, updated_at = excluded.updated_at
     WHERE excluded.counter > feedback_tags.counter";

pub(crate) fn upsert_tag(conn: &Connection, op: &TagOp, now: i64) -> Result<bool> {
    let k = &op.key;
    let changed = conn.prepare_cached(UPSERT_TAG)?.execute(params![
        k.output.run.to_string(),
        k.output.node,
        k.output.visit,
        k.evaluator,
        k.tag,
        i64::try_from(op.counter).unwrap_or(i64::MAX),
        now,
    ])?;
    Ok(changed > 0)
}

fn counter_of(conn: &Connection, k: &TagKey) -> Result<u64> {
    let c: Option<i64> = conn
        .prepare_cached(
            "SELECT counter FROM feedback_tags
             WHERE run_id = ?1 AND node = ?2 AND visit = ?3 AND evaluator = ?4 AND tag = ?5",
        )?
        .query_row(
            params![
                k.output.run.to_string(),
                k.output.node,
                k.output.visit,
                k.evaluator,
                k.tag
            ],
            |r| r.get(0),
        )
        .optional()?;
    Ok(c.and_then(|c| u64::try_from(c).ok()).unwrap_or(0))
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::Internal(format!("stored id `{text}`: {e}")))
}

const FEEDBACK_WHERE: &str = "(?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR node = ?2)
    AND (?3 IS NULL OR visit = ?3) AND (?4 IS NULL OR evaluator = ?4)
    AND (?5 IS NULL OR run_id IN (SELECT id FROM runs WHERE blueprint_id = ?5))";

fn feedback_params(f: &FeedbackFilter) -> [Option<String>; 5] {
    let run = f
        .output
        .as_ref()
        .map(|o| o.run)
        .or(f.run_id)
        .map(|u| u.to_string());
    [
        run,
        f.output.as_ref().map(|o| o.node.clone()),
        f.output.as_ref().map(|o| o.visit.to_string()),
        f.evaluator.clone(),
        f.blueprint_id.clone(),
    ]
}

pub(crate) fn change_tags_in(conn: &Connection, changes: Vec<TagChange>) -> Result<Vec<TagOp>> {
    let now = now_ms();
    let mut ops = Vec::new();
    for change in changes {
        let current = counter_of(conn, &change.key)?;
        if let Some(counter) = next_counter(current, change.intent) {
            let op = TagOp {
                key: change.key,
                counter,
            };
            upsert_tag(conn, &op, now)?;
            let (action, present) = match change.intent {
                Intent::Add => ("tag.added", true),
                Intent::Remove => ("tag.removed", false),
            };
            let k = &op.key;
            crate::audit::record_in(
                conn,
                &k.evaluator,
                action,
                &k.output.to_string(),
                Some(&serde_json::json!({ "tag": k.tag, "present": !present })),
                Some(&serde_json::json!({ "tag": k.tag, "present": present })),
            )?;
            ops.push(op);
        }
    }
    crate::sync::publish_tags_in(conn, &ops)?;
    Ok(ops)
}

/// Every tag counter in the store, as ops (removed tags included).
pub(crate) fn all_tag_ops(conn: &Connection) -> Result<Vec<TagOp>> {
    let mut stmt = conn
        .prepare_cached("SELECT run_id, node, visit, evaluator, tag, counter FROM feedback_tags")?;
    let rows: Vec<(String, String, u32, String, String, i64)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(run, node, visit, evaluator, tag, counter)| {
            Ok(TagOp {
                key: TagKey {
                    output: OutputRef {
                        run: parse_uuid(&run)?,
                        node,
                        visit,
                    },
                    evaluator,
                    tag,
                },
                counter: u64::try_from(counter).unwrap_or(0),
            })
        })
        .collect()
}

impl Store {
    /// Apply changes by the owners of tag keys, in one write. Each change reads the key's
    /// counter and bumps it when the change changes something. Returns the ops to replicate
    /// (one per effective change). With a hub, the evaluator's own ops go out in the same
    /// transaction.
    pub async fn change_tags(&self, changes: Vec<TagChange>) -> Result<Vec<TagOp>> {
        self.write(move |conn| change_tags_in(conn, changes)).await
    }

    /// Merge replicated ops, in one write: each key keeps the larger counter, so this is
    /// idempotent and order-free. Returns how many keys changed.
    pub async fn merge_tag_ops(&self, ops: Vec<TagOp>) -> Result<usize> {
        self.write(move |conn| {
            let now = now_ms();
            let mut changed = 0;
            for op in ops.iter().filter(|op| op.counter > 0) {
                if upsert_tag(conn, op, now)? {
                    changed += 1;
                }
            }
            Ok(changed)
        })
        .await
    }

    /// Change an evaluator's rating and comment on an output; returns the note as it is now.
    pub async fn change_note(&self, change: NoteChange) -> Result<Note> {
        self.write(move |conn| {
            let o = &change.output;
            let run = o.run.to_string();
            let current: Option<(Option<i64>, Option<String>, i64)> = conn
                .prepare_cached(
                    "SELECT rating, comment, revision FROM feedback_notes
                     WHERE run_id = ?1 AND node = ?2 AND visit = ?3 AND evaluator = ?4",
                )?
                .query_row(params![run, o.node, o.visit, change.evaluator], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let current = current.map_or_else(Note::default, |(rating, comment, revision)| Note {
                rating: rating.and_then(|r| u8::try_from(r).ok()),
                comment,
                revision: u64::try_from(revision).unwrap_or(0),
            });
            let note = current.changed(change.rating, change.comment);
            if (note.rating, &note.comment) != (current.rating, &current.comment) {
                crate::audit::record_in(
                    conn,
                    &change.evaluator,
                    "note.changed",
                    &o.to_string(),
                    Some(&serde_json::json!({ "rating": current.rating, "comment": current.comment })),
                    Some(&serde_json::json!({ "rating": note.rating, "comment": note.comment })),
                )?;
            }
            conn.prepare_cached(
                "INSERT INTO feedback_notes (run_id, node, visit, evaluator, rating, comment, revision, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run_id, node, visit, evaluator) DO UPDATE
                 SET rating = excluded.rating, comment = excluded.comment,
                     revision = excluded.revision, updated_at = excluded.updated_at",
            )?
            .execute(params![
                run,
                o.node,
                o.visit,
                change.evaluator,
                note.rating,
                note.comment,
                i64::try_from(note.revision).unwrap_or(i64::MAX),
                now_ms(),
            ])?;
            Ok(note)
        })
        .await
    }

    /// Tag keys with their counters (removed tags included), ordered by output, evaluator, tag.
    pub fn list_tags(&self, f: &FeedbackFilter) -> Result<Vec<TagRow>> {
        self.read(|conn| {
            let [run, node, visit, evaluator, blueprint] = feedback_params(f);
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT run_id, node, visit, evaluator, tag, counter, updated_at FROM feedback_tags
                 WHERE {FEEDBACK_WHERE} AND (?6 IS NULL OR tag = ?6)
                 ORDER BY run_id, node, visit, evaluator, tag"
            ))?;
            let rows = stmt
                .query_map(
                    params![run, node, visit, evaluator, blueprint, f.tag],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Visit>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )?
                .map(|r| {
                    let (run, node, visit, evaluator, tag, counter, updated_at) = r?;
                    Ok(TagRow {
                        key: TagKey {
                            output: OutputRef {
                                run: parse_uuid(&run)?,
                                node,
                                visit,
                            },
                            evaluator,
                            tag,
                        },
                        counter: u64::try_from(counter).unwrap_or(0),
                        updated_at,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Ratings and comments, ordered by output and evaluator.
    pub fn list_notes(&self, f: &FeedbackFilter) -> Result<Vec<NoteRow>> {
        self.read(|conn| {
            let [run, node, visit, evaluator, blueprint] = feedback_params(f);
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT run_id, node, visit, evaluator, rating, comment, revision, updated_at
                 FROM feedback_notes WHERE {FEEDBACK_WHERE}
                 ORDER BY run_id, node, visit, evaluator"
            ))?;
            let rows = stmt
                .query_map(params![run, node, visit, evaluator, blueprint], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Visit>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })?
                .map(|r| {
                    let (run, node, visit, evaluator, rating, comment, revision, updated_at) = r?;
                    Ok(NoteRow {
                        output: OutputRef {
                            run: parse_uuid(&run)?,
                            node,
                            visit,
                        },
                        evaluator,
                        note: Note {
                            rating: rating.and_then(|r| u8::try_from(r).ok()),
                            comment,
                            revision: u64::try_from(revision).unwrap_or(0),
                        },
                        updated_at,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// The blueprint a run belongs to.
    pub fn run_blueprint(&self, run_id: Uuid) -> Result<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT blueprint_id FROM runs WHERE id = ?1")?
                .query_row([run_id.to_string()], |r| r.get(0))
                .optional()?)
        })
    }

    /// A run's finished steps as `(node, visit)`, in journal order (for error messages).
    pub fn finished_steps(&self, run_id: Uuid) -> Result<Vec<(String, Visit)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT body FROM journal WHERE run_id = ?1 AND kind = 'node_finished' ORDER BY seq",
            )?;
            let steps = stmt
                .query_map([run_id.to_string()], |r| r.get::<_, String>(0))?
                .map(|body| match serde_json::from_str(&body?)? {
                    Event::NodeFinished { node, visit, .. } => Ok(Some((node, visit))),
                    _ => Ok(None),
                })
                .filter_map(Result::transpose)
                .collect::<Result<Vec<_>>>()?;
            Ok(steps)
        })
    }

    /// A finished step of a run (any node kind, any run status); `visit: None` is the node's
    /// latest finished visit.
    pub fn finished_step(
        &self,
        run_id: Uuid,
        node: &str,
        visit: Option<Visit>,
    ) -> Result<Option<FinishedStep>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.blueprint_id, r.version, j.body FROM runs r JOIN journal j ON j.run_id = r.id
                 WHERE r.id = ?1 AND j.kind = 'node_finished' AND j.node = ?2 ORDER BY j.seq DESC",
            )?;
            let mut rows = stmt.query(params![run_id.to_string(), node])?;
            while let Some(r) = rows.next()? {
                let body: String = r.get(2)?;
                let Event::NodeFinished {
                    node: n,
                    visit: v,
                    output,
                    ..
                } = serde_json::from_str(&body)?
                else {
                    continue;
                };
                if visit.is_none_or(|want| want == v) {
                    return Ok(Some(FinishedStep {
                        output: OutputRef {
                            run: run_id,
                            node: n,
                            visit: v,
                        },
                        blueprint_id: r.get(0)?,
                        version: r.get(1)?,
                        value: output,
                    }));
                }
            }
            Ok(None)
        })
    }

    /// Prompt drafts and approved reviews of finished runs, read from the journal. Newest run
    /// first (latest step first within a run), or sampled by `seed`.
    pub fn finished_outputs(&self, q: &OutputQuery) -> Result<Vec<OutputRow>> {
        self.read(|conn| {
            let evaluated = match &q.not_evaluated_by {
                Some(e) => evaluated_by(conn, e)?,
                None => HashSet::new(),
            };
            let mut kinds = NodeKinds::default();
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, r.blueprint_id, r.version, j.seq, j.at, j.body
                 FROM runs r JOIN journal j ON j.run_id = r.id AND j.kind = 'node_finished'
                 WHERE r.status IN ('completed', 'failed')
                   AND (?1 IS NULL OR r.blueprint_id = ?1) AND (?2 IS NULL OR r.id = ?2)
                 ORDER BY r.created_at DESC, r.id DESC, j.seq DESC",
            )?;
            let mut rows = stmt.query(params![q.blueprint_id, q.run_id.map(|u| u.to_string())])?;
            let limit = q.limit.unwrap_or(usize::MAX);
            let mut newest: Vec<OutputRow> = Vec::new();
            // With a seed: the `limit` smallest ranks (a max-heap of them).
            let mut sampled: BinaryHeap<Ranked> = BinaryHeap::new();
            while let Some(r) = rows.next()? {
                if limit == 0 || (q.seed.is_none() && newest.len() >= limit) {
                    break;
                }
                let run: String = r.get(0)?;
                let version: String = r.get(2)?;
                let body: String = r.get(5)?;
                let Event::NodeFinished {
                    node,
                    visit,
                    output,
                    meta,
                    ..
                } = serde_json::from_str(&body)?
                else {
                    continue;
                };
                let node_kind = kinds.get(conn, &version, &node)?;
                let Some(kind) = OutputKind::of_step(node_kind, &output) else {
                    continue;
                };
                if q.kind.is_some_and(|k| k != kind)
                    || evaluated.contains(&(run.clone(), node.clone(), visit))
                {
                    continue;
                }
                let row = OutputRow {
                    blueprint_id: r.get(1)?,
                    version,
                    at: r.get(4)?,
                    step: StepRecord {
                        output: OutputRef {
                            run: parse_uuid(&run)?,
                            node,
                            visit,
                        },
                        kind,
                        seq: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                        value: output,
                        input: meta.input,
                    },
                };
                match q.seed {
                    None => newest.push(row),
                    Some(seed) => {
                        let rank = sample_rank(seed, &row.step.output);
                        sampled.push(Ranked(rank, row));
                        if sampled.len() > limit {
                            sampled.pop();
                        }
                    }
                }
            }
            if q.seed.is_some() {
                return Ok(sampled.into_sorted_vec().into_iter().map(|r| r.1).collect());
            }
            Ok(newest)
        })
    }
}

/// An output with its sampling rank; ordered by rank (then output, for ties).
struct Ranked(u64, OutputRow);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, &self.1.step.output).cmp(&(other.0, &other.1.step.output))
    }
}

/// The outputs an evaluator tagged (removed tags included), rated or commented on.
fn evaluated_by(conn: &Connection, evaluator: &str) -> Result<HashSet<(String, String, Visit)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT run_id, node, visit FROM feedback_tags WHERE evaluator = ?1
         UNION SELECT run_id, node, visit FROM feedback_notes WHERE evaluator = ?1",
    )?;
    let set = stmt
        .query_map([evaluator], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<HashSet<_>>>()?;
    Ok(set)
}

/// Node kinds per stored blueprint version, parsed once per query. A version that is not
/// stored or no longer parses gives `None`, and the output's recorded shape decides.
#[derive(Default)]
struct NodeKinds(HashMap<String, Option<HashMap<String, &'static str>>>);

impl NodeKinds {
    fn get(
        &mut self,
        conn: &Connection,
        version: &str,
        node: &str,
    ) -> Result<Option<&'static str>> {
        if !self.0.contains_key(version) {
            let source: Option<String> = conn
                .prepare_cached("SELECT source FROM blueprint_versions WHERE hash = ?1")?
                .query_row([version], |r| r.get(0))
                .optional()?;
            let kinds = source.and_then(|s| blueprint::parse(&s).0).map(|bp| {
                bp.nodes
                    .iter()
                    .map(|n| (n.id().to_owned(), n.kind_name()))
                    .collect::<HashMap<_, _>>()
            });
            self.0.insert(version.to_owned(), kinds);
        }
        Ok(self
            .0
            .get(version)
            .and_then(Option::as_ref)
            .and_then(|k| k.get(node).copied()))
    }
}
