//! The audit log: an append-only, hash-chained record of decisions, tags, versions and
//! settings (see `processops_core::audit` for the chain and the hash's byte layout).
//!
//! Entries are appended in the transaction of the change they describe, together with the
//! chain's head, so the log never says something happened that did not commit (or the
//! reverse). Only this device's own actions are recorded: what other devices did arrives from
//! the hub and is audited on the device that did it.

use std::io::Write;

use processops_core::audit::{AuditEntry, EntryRef, GENESIS, Head, Verdict, Verifier, json_text};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::Value;
use uuid::Uuid;

use crate::{Result, Store, StoreError, now_ms};

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after (Unix ms).
    pub since: Option<i64>,
    /// Before (Unix ms).
    pub until: Option<i64>,
    pub actor: Option<String>,
    /// Actions starting with this (`task` matches `task.decided` and `task.escalated`).
    pub action: Option<String>,
    pub subject: Option<String>,
    /// Entries after this seq (paging forwards).
    pub after_seq: Option<u64>,
    /// Entries before this seq (paging backwards).
    pub before_seq: Option<u64>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

/// How the log is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    /// One entry per line, as `AuditEntry` serialises.
    Jsonl,
    /// A header, then one row per entry; `before` and `after` hold the hashed JSON text.
    Csv,
}

const COLUMNS: &str = "seq, id, at, device, actor, action, subject, before, after, prev_hash, hash";

/// Append an entry in the caller's transaction; returns its seq.
pub(crate) fn record_in(
    conn: &Connection,
    actor: &str,
    action: &str,
    subject: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<u64> {
    let head = head_in(conn)?.ok_or_else(|| {
        StoreError::Audit(
            "the chain's head row is missing: the database was changed outside ProcessOps; run `processops audit verify`".into(),
        )
    })?;
    let device: String = conn
        .prepare_cached("SELECT device FROM sync_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| "local".to_owned());
    let (before, after) = (json_text(before), json_text(after));
    let seq = head.count + 1;
    let id = Uuid::now_v7().to_string();
    let at = now_ms();
    let entry = EntryRef {
        seq,
        id: &id,
        at,
        device: &device,
        actor,
        action,
        subject,
        before: before.as_deref(),
        after: after.as_deref(),
        prev_hash: &head.hash,
        hash: "",
    };
    let hash = processops_core::audit::hash_of(&entry);
    insert(
        conn,
        &EntryRef {
            hash: &hash,
            ..entry
        },
    )?;
    set_head(conn, seq, &hash)?;
    Ok(seq)
}

pub(crate) fn head_in(conn: &Connection) -> Result<Option<Head>> {
    Ok(conn
        .prepare_cached("SELECT count, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| {
            Ok(Head {
                count: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                hash: r.get(1)?,
            })
        })
        .optional()?)
}

pub(crate) fn insert(conn: &Connection, e: &EntryRef<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (seq, id, at, device, actor, action, subject, before, after, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        i64::try_from(e.seq).unwrap_or(i64::MAX),
        e.id,
        e.at,
        e.device,
        e.actor,
        e.action,
        e.subject,
        e.before,
        e.after,
        e.prev_hash,
        e.hash
    ])?;
    Ok(())
}

pub(crate) fn set_head(conn: &Connection, count: u64, hash: &str) -> Result<()> {
    conn.prepare_cached("UPDATE audit_head SET count = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![i64::try_from(count).unwrap_or(i64::MAX), hash])?;
    Ok(())
}

/// Stands in for a column that is not text (only a tampered row has one): it never hashes
/// like the original, so the row is reported as edited.
const NOT_TEXT: &str = "\u{0}not text";

fn text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'a str>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(t) => Some(std::str::from_utf8(t).unwrap_or(NOT_TEXT)),
        _ => Some(NOT_TEXT),
    })
}

fn entry_ref<'a>(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<EntryRef<'a>> {
    let required = |i| text(r, i).map(|t| t.unwrap_or(NOT_TEXT));
    Ok(EntryRef {
        // A negative seq (tampering) is out of order wherever it is.
        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        id: required(1)?,
        at: r
            .get::<_, Option<i64>>(2)
            .ok()
            .flatten()
            .unwrap_or(i64::MIN),
        device: required(3)?,
        actor: required(4)?,
        action: required(5)?,
        subject: required(6)?,
        before: text(r, 7)?,
        after: text(r, 8)?,
        prev_hash: required(9)?,
        hash: required(10)?,
    })
}

fn parse_json(seq: u64, text: Option<&str>) -> Result<Option<Value>> {
    text.map(|t| {
        serde_json::from_str(t).map_err(|e| {
            StoreError::Audit(format!(
                "entry {seq} holds JSON that does not parse ({e}); run `processops audit verify`"
            ))
        })
    })
    .transpose()
}

fn owned(e: &EntryRef<'_>) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: e.seq,
        id: e.id.to_owned(),
        at: e.at,
        device: e.device.to_owned(),
        actor: e.actor.to_owned(),
        action: e.action.to_owned(),
        subject: e.subject.to_owned(),
        before: parse_json(e.seq, e.before)?,
        after: parse_json(e.seq, e.after)?,
        prev_hash: e.prev_hash.to_owned(),
        hash: e.hash.to_owned(),
    })
}

impl Store {
    /// Append an entry for a change made outside a store transaction (a setting, a role).
    /// Returns its seq.
    pub async fn audit_record(
        &self,
        actor: String,
        action: String,
        subject: String,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<u64> {
        self.write(move |conn| {
            record_in(
                conn,
                &actor,
                &action,
                &subject,
                before.as_ref(),
                after.as_ref(),
            )
        })
        .await
    }

    /// Compare `entries` (a kind of configuration: `role` per user, `setting` per table of
    /// processops.toml) with what was last seen, and audit each change as `<kind>.changed`
    /// with its before and after, in one transaction. Returns how many changed.
    pub async fn audit_config(
        &self,
        kind: String,
        entries: std::collections::BTreeMap<String, Value>,
        actor: String,
    ) -> Result<usize> {
        self.write(move |conn| {
            let seen: std::collections::BTreeMap<String, String> = conn
                .prepare_cached("SELECT key, value FROM config_snapshot WHERE kind = ?1")?
                .query_map([&kind], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let now: std::collections::BTreeMap<String, String> = entries
                .iter()
                .map(|(k, v)| (k.clone(), json_text(Some(v)).unwrap_or_default()))
                .collect();
            let keys: std::collections::BTreeSet<&String> = seen.keys().chain(now.keys()).collect();
            let mut changed = 0;
            for key in keys {
                let (before, after) = (seen.get(key), now.get(key));
                if before == after {
                    continue;
                }
                let parse =
                    |t: Option<&String>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
                record_in(
                    conn,
                    &actor,
                    &format!("{kind}.changed"),
                    &format!("{kind}:{key}"),
                    parse(before).as_ref(),
                    parse(after).as_ref(),
                )?;
                match after {
                    Some(v) => conn
                        .prepare_cached(
                            "INSERT INTO config_snapshot (kind, key, value) VALUES (?1, ?2, ?3)
                             ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute(params![kind, key, v])?,
                    None => conn
                        .prepare_cached("DELETE FROM config_snapshot WHERE kind = ?1 AND key = ?2")?
                        .execute(params![kind, key])?,
                };
                changed += 1;
            }
            Ok(changed)
        })
        .await
    }

    /// Entries matching `filter`, in seq order (or newest first).
    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        use rusqlite::types::Value as V;
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<V> = Vec::new();
        let to_i64 = |v: u64| V::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        if let Some(s) = filter.since {
            conditions.push("at >= ?");
            values.push(V::Integer(s));
        }
        if let Some(u) = filter.until {
            conditions.push("at < ?");
            values.push(V::Integer(u));
        }
        if let Some(a) = &filter.actor {
            conditions.push("actor = ?");
            values.push(V::Text(a.clone()));
        }
        if let Some(p) = &filter.action {
            // A plain prefix (LIKE would fold case and treat `_` as a wildcard).
            conditions.push("substr(action, 1, length(?)) = ?");
            values.push(V::Text(p.clone()));
            values.push(V::Text(p.clone()));
        }
        if let Some(s) = &filter.subject {
            conditions.push("subject = ?");
            values.push(V::Text(s.clone()));
        }
        if let Some(s) = filter.after_seq {
            conditions.push("seq > ?");
            values.push(to_i64(s));
        }
        if let Some(s) = filter.before_seq {
            conditions.push("seq < ?");
            values.push(to_i64(s));
        }
        values.push(V::Integer(i64::from(filter.limit.unwrap_or(100))));
        let sql = format!(
            "SELECT {COLUMNS} FROM audit {} {} ORDER BY seq {} LIMIT ?",
            if conditions.is_empty() { "" } else { "WHERE" },
            conditions.join(" AND "),
            if filter.newest_first { "DESC" } else { "" },
        );
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(owned(&entry_ref(r)?)?);
            }
            Ok(out)
        })
    }

    /// The chain's head as recorded (count and last hash).
    pub fn audit_head(&self) -> Result<Head> {
        self.read(|conn| Ok(head_in(conn)?.unwrap_or_default()))
    }

    /// Check the whole chain: every entry's hash, its link to the one before, no gaps, and
    /// that it ends at the recorded head. Streams the rows without copying them.
    pub fn audit_verify(&self) -> Result<Verdict> {
        self.read(|conn| {
            // One snapshot for the head and the rows, so an append meanwhile is not a mismatch.
            let tx = conn.unchecked_transaction()?;
            // A missing head row counts as an empty chain's: any entry is then past the head.
            let head = head_in(&tx)?.unwrap_or_else(|| Head {
                count: 0,
                hash: GENESIS.to_owned(),
            });
            let mut v = Verifier::new();
            {
                let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"))?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    if let Some(broken) = v.push(&entry_ref(r)?) {
                        return Ok(broken.clone());
                    }
                }
            }
            tx.finish()?;
            Ok(v.finish(Some(&head)))
        })
    }

    /// Write every entry, in seq order, to `out`; returns how many.
    pub fn audit_export(&self, format: AuditFormat, out: &mut dyn Write) -> Result<u64> {
        let io = StoreError::AuditExport;
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            let mut count = 0u64;
            match format {
                AuditFormat::Jsonl => {
                    while let Some(r) = rows.next()? {
                        let entry = owned(&entry_ref(r)?)?;
                        serde_json::to_writer(&mut *out, &entry).map_err(|e| io(e.into()))?;
                        out.write_all(b"\n").map_err(io)?;
                        count += 1;
                    }
                    out.flush().map_err(io)?;
                }
                AuditFormat::Csv => {
                    let mut w = csv::Writer::from_writer(&mut *out);
                    w.write_record([
                        "seq",
                        "id",
                        "at",
                        "time",
                        "device",
                        "actor",
                        "action",
                        "subject",
                        "before",
                        "after",
                        "prev_hash",
                        "hash",
                    ])
                    .map_err(|e| io(e.into()))?;
                    while let Some(r) = rows.next()? {
                        let e = entry_ref(r)?;
                        let time = chrono::DateTime::from_timestamp_millis(e.at)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            .unwrap_or_default();
                        w.write_record([
                            e.seq.to_string().as_str(),
                            e.id,
                            e.at.to_string().as_str(),
                            &time,
                            e.device,
                            e.actor,
                            e.action,
                            e.subject,
                            e.before.unwrap_or(""),
                            e.after.unwrap_or(""),
                            e.prev_hash,
                            e.hash,
                        ])
                        .map_err(|e| io(e.into()))?;
                        count += 1;
                    }
                    w.flush().map_err(io)?;
                }
            }
            Ok(count)
        })
    }
}
