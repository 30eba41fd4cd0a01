//! Change control's rows: each proposed version's stage and the history of its moves. The
//! rules (who may move what where) are `processops_core::lifecycle`'s; this module writes the
//! moves they plan, compare-and-set, with an audit entry for each.

use processops_core::blueprint::Stage;
use processops_core::lifecycle::{
    MoveReason, StageMove, VersionState, parse_stage, short, stage_name,
};
use rusqlite::{Connection, OptionalExtension as _, Row, params};
use serde_json::json;

use crate::{Result, Store, StoreError, now_ms};

/// A version under change control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRow {
    pub version: String,
    pub blueprint_id: String,
    pub stage: Stage,
    pub author: String,
    pub note: String,
    /// References to the feedback that motivated it.
    pub feedback: Vec<String>,
    pub proposed_at: i64,
    pub updated_at: i64,
    pub approved_at: Option<i64>,
    pub rolled_back: bool,
}

impl StageRow {
    pub fn state(&self) -> VersionState {
        VersionState {
            hash: self.version.clone(),
            stage: self.stage,
            author: self.author.clone(),
            approved_at: self.approved_at,
            rolled_back: self.rolled_back,
        }
    }
}

/// One move between stages (a proposal is a move from nothing to draft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageChangeRow {
    pub seq: i64,
    pub blueprint_id: String,
    pub version: String,
    pub from: Option<Stage>,
    pub to: Stage,
    /// `proposed`, `asked`, `superseded`, `rolled_back` or `restored`.
    pub reason: String,
    pub by: String,
    pub at: i64,
    pub note: Option<String>,
}

fn reason_name(reason: MoveReason) -> &'static str {
    match reason {
        MoveReason::Asked => "asked",
        MoveReason::Superseded => "superseded",
        MoveReason::RolledBack => "rolled_back",
        MoveReason::Restored => "restored",
    }
}

fn stage_of(text: &str) -> rusqlite::Result<Stage> {
    parse_stage(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown stage `{text}`").into(),
        )
    })
}

const STAGE_COLUMNS: &str = "version, blueprint_id, stage, author, note, feedback, proposed_at, updated_at, approved_at, rolled_back";

fn stage_row(r: &Row<'_>) -> rusqlite::Result<StageRow> {
    let feedback: String = r.get(5)?;
    Ok(StageRow {
        version: r.get(0)?,
        blueprint_id: r.get(1)?,
        stage: stage_of(&r.get::<_, String>(2)?)?,
        author: r.get(3)?,
        note: r.get(4)?,
        feedback: serde_json::from_str(&feedback).unwrap_or_default(),
        proposed_at: r.get(6)?,
        updated_at: r.get(7)?,
        approved_at: r.get(8)?,
        rolled_back: r.get::<_, i64>(9)? != 0,
    })
}

/// A row of `stage_changes`.
struct Change<'a> {
    blueprint: &'a str,
    version: &'a str,
    from: Option<Stage>,
    to: Stage,
    reason: &'a str,
    by: &'a str,
    note: Option<&'a str>,
}

fn log_change(conn: &Connection, c: &Change<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO stage_changes (blueprint_id, version, from_stage, to_stage, reason, by_user, at, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        c.blueprint,
        c.version,
        c.from.map(stage_name),
        stage_name(c.to),
        c.reason,
        c.by,
        now_ms(),
        c.note
    ])?;
    Ok(())
}

impl Store {
    /// Put a stored version of `blueprint` under change control as a draft, with the change
    /// note and the feedback that motivated it.
    pub async fn propose_version(
        &self,
        blueprint: String,
        version: String,
        author: String,
        note: String,
        feedback: Vec<String>,
    ) -> Result<StageRow> {
        self.write(move |conn| {
            let stored: Option<String> = conn
                .prepare_cached("SELECT blueprint_id FROM blueprint_versions WHERE hash = ?1")?
                .query_row([&version], |r| r.get(0))
                .optional()?;
            match stored {
                None => {
                    return Err(StoreError::Lifecycle(format!(
                        "version {version} is not stored; load the blueprint (`processops check`) first"
                    )));
                }
                Some(b) if b != blueprint => {
                    return Err(StoreError::Lifecycle(format!(
                        "version {version} is a version of `{b}`, not of `{blueprint}`"
                    )));
                }
                Some(_) => {}
            }
            if let Some(existing) = stage_in(conn, &version)? {
                return Err(StoreError::Lifecycle(format!(
                    "version {} was already proposed by {} and is {}",
                    short(&version),
                    existing.author,
                    stage_name(existing.stage)
                )));
            }
            let now = now_ms();
            let links = serde_json::to_string(&feedback)?;
            conn.prepare_cached(
                "INSERT INTO version_stages (version, blueprint_id, stage, author, note, feedback, proposed_at, updated_at)
                 VALUES (?1, ?2, 'draft', ?3, ?4, ?5, ?6, ?6)",
            )?
            .execute(params![version, blueprint, author, note, links, now])?;
            log_change(
                conn,
                &Change {
                    blueprint: &blueprint,
                    version: &version,
                    from: None,
                    to: Stage::Draft,
                    reason: "proposed",
                    by: &author,
                    note: Some(&note),
                },
            )?;
            crate::audit::record_in(
                conn,
                &author,
                "version.proposed",
                &format!("{blueprint}@{version}"),
                None,
                Some(&json!({ "stage": "draft", "note": note, "feedback": feedback })),
            )?;
            stage_in(conn, &version)?
                .ok_or_else(|| StoreError::Internal("a proposed version vanished".into()))
        })
        .await
    }

    /// Write planned moves at once. Each is compare-and-set on its `from` stage: when another
    /// person moved a version meanwhile, nothing is written and the error says so.
    pub async fn apply_stage_moves(
        &self,
        blueprint: String,
        moves: Vec<StageMove>,
        by: String,
        note: Option<String>,
        evidence: Option<serde_json::Value>,
    ) -> Result<Vec<StageRow>> {
        self.write(move |conn| {
            let now = now_ms();
            let mut rows = Vec::with_capacity(moves.len());
            for m in &moves {
                let changed = conn
                    .prepare_cached(
                        "UPDATE version_stages
                         SET stage = ?3, updated_at = ?4,
                             approved_at = CASE WHEN ?3 = 'approved' THEN ?4 ELSE approved_at END,
                             rolled_back = CASE WHEN ?5 THEN 1 WHEN ?3 = 'approved' THEN 0 ELSE rolled_back END
                         WHERE version = ?1 AND stage = ?2 AND blueprint_id = ?6",
                    )?
                    .execute(params![
                        m.hash,
                        stage_name(m.from),
                        stage_name(m.to),
                        now,
                        m.reason == MoveReason::RolledBack,
                        blueprint
                    ])?;
                if changed != 1 {
                    let now_stage = stage_in(conn, &m.hash)?
                        .map(|r| stage_name(r.stage))
                        .unwrap_or("not proposed");
                    return Err(StoreError::Lifecycle(format!(
                        "version {} changed meanwhile (it is {now_stage} now, not {}); look again and retry",
                        short(&m.hash),
                        stage_name(m.from)
                    )));
                }
                let reason = reason_name(m.reason);
                log_change(
                    conn,
                    &Change {
                        blueprint: &blueprint,
                        version: &m.hash,
                        from: Some(m.from),
                        to: m.to,
                        reason,
                        by: &by,
                        note: note.as_deref(),
                    },
                )?;
                crate::audit::record_in(
                    conn,
                    &by,
                    "version.staged",
                    &format!("{blueprint}@{}", m.hash),
                    Some(&json!({ "stage": stage_name(m.from) })),
                    Some(&json!({ "stage": stage_name(m.to), "reason": reason, "note": note,
                                  "gate": if m.reason == MoveReason::Asked { evidence.clone() } else { None } })),
                )?;
                rows.push(
                    stage_in(conn, &m.hash)?
                        .ok_or_else(|| StoreError::Internal("a staged version vanished".into()))?,
                );
            }
            Ok(rows)
        })
        .await
    }

    /// Versions under change control, newest proposal first; one blueprint's or everyone's.
    pub fn version_stages(&self, blueprint: Option<&str>) -> Result<Vec<StageRow>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {STAGE_COLUMNS} FROM version_stages WHERE ?1 IS NULL OR blueprint_id = ?1
                 ORDER BY proposed_at DESC, version"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map([blueprint], stage_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Keep a version's latest regression gate report, with an audit entry.
    pub async fn put_gate_report(
        &self,
        blueprint: String,
        version: String,
        by: String,
        report: serde_json::Value,
        summary: String,
    ) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO version_gates (version, report, by_user, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (version) DO UPDATE SET report = excluded.report, by_user = excluded.by_user, at = excluded.at",
            )?
            .execute(params![version, serde_json::to_string(&report)?, by, now_ms()])?;
            crate::audit::record_in(
                conn,
                &by,
                "version.gated",
                &format!("{blueprint}@{version}"),
                None,
                Some(&json!({ "summary": summary, "passed": report.get("passed") })),
            )?;
            Ok(())
        })
        .await
    }

    /// A version's latest regression gate report.
    pub fn gate_report(&self, version: &str) -> Result<Option<serde_json::Value>> {
        self.read(|conn| {
            let text: Option<String> = conn
                .prepare_cached("SELECT report FROM version_gates WHERE version = ?1")?
                .query_row([version], |r| r.get(0))
                .optional()?;
            Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
        })
    }

    /// One version's stage row.
    pub fn version_stage(&self, version: &str) -> Result<Option<StageRow>> {
        self.read(|conn| stage_in(conn, version))
    }

    /// Every move of `blueprint`'s versions, oldest first.
    pub fn stage_changes(&self, blueprint: &str) -> Result<Vec<StageChangeRow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, blueprint_id, version, from_stage, to_stage, reason, by_user, at, note
                 FROM stage_changes WHERE blueprint_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt
                .query_map([blueprint], |r| {
                    Ok(StageChangeRow {
                        seq: r.get(0)?,
                        blueprint_id: r.get(1)?,
                        version: r.get(2)?,
                        from: r
                            .get::<_, Option<String>>(3)?
                            .map(|s| stage_of(&s))
                            .transpose()?,
                        to: stage_of(&r.get::<_, String>(4)?)?,
                        reason: r.get(5)?,
                        by: r.get(6)?,
                        at: r.get(7)?,
                        note: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Every stored version of `blueprint`, newest first.
    pub fn versions_of(&self, blueprint: &str) -> Result<Vec<crate::VersionRow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT hash, blueprint_id, name, source, created_at FROM blueprint_versions
                 WHERE blueprint_id = ?1 ORDER BY created_at DESC, hash",
            )?;
            let rows = stmt
                .query_map([blueprint], crate::versions::version_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

fn stage_in(conn: &Connection, version: &str) -> Result<Option<StageRow>> {
    let sql = format!("SELECT {STAGE_COLUMNS} FROM version_stages WHERE version = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([version], stage_row)
        .optional()?)
}
