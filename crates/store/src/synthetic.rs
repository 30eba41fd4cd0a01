//! Synthetic inbox data for benchmarks and load tests (`processops bench inbox`).

use rusqlite::params;

use crate::{Result, Store, now_ms};

/// The common words drafts are made of (the rest is a long tail of `term<N>` words).
pub const VOCABULARY: &[&str] = &[
    "invoice",
    "laptop",
    "onboarding",
    "contract",
    "renewal",
    "refund",
    "policy",
    "benefits",
    "security",
    "training",
    "vendor",
    "budget",
    "approval",
    "customer",
    "ticket",
    "outage",
    "billing",
    "clause",
    "liability",
    "warranty",
    "shipment",
    "delay",
    "discount",
    "pricing",
    "proposal",
    "deadline",
    "manager",
    "review",
    "escalation",
    "payroll",
    "expense",
    "travel",
    "hardware",
    "license",
    "contract-end",
    "migration",
    "database",
    "latency",
    "roadmap",
    "feature",
    "release",
    "compliance",
    "audit",
    "privacy",
    "retention",
    "access",
    "password",
    "account",
    "welcome",
    "schedule",
];

/// (id, role, title, draft, pending, created_at, due_at)
type SyntheticTask = (String, String, String, String, bool, i64, Option<i64>);

/// A small deterministic generator (SplitMix64), so runs of the benchmark are comparable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl Store {
    /// Insert `count` synthetic tasks (90% pending) spread over `roles`, with drafts of 30
    /// words from [`VOCABULARY`], in commits of 20,000. Returns the number inserted.
    pub async fn insert_synthetic_tasks(
        &self,
        count: usize,
        roles: Vec<String>,
        seed: u64,
    ) -> Result<usize> {
        let mut rng = Rng(seed);
        let mut done = 0;
        let now = now_ms();
        while done < count {
            let batch = (count - done).min(20_000);
            let rows: Vec<SyntheticTask> = (0..batch)
                .map(|i| {
                    let n = done + i;
                    // Like real text, a few words are common and most are rare: each draft has 5
                    // words of the business vocabulary and 25 from a long tail of 20,000.
                    let mut words: Vec<String> = (0..5)
                        .map(|_| VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize].to_owned())
                        .collect();
                    words.extend((0..25).map(|_| format!("term{}", rng.below(20_000))));
                    let role = roles[rng.below(roles.len() as u64) as usize].clone();
                    let pending = rng.below(10) != 0;
                    let created = now - i64::try_from(rng.below(30 * 86_400_000)).unwrap_or(0);
                    let due = (rng.below(5) != 0)
                        .then(|| created + i64::try_from(rng.below(7 * 86_400_000)).unwrap_or(0));
                    (
                        format!("00000000-0000-7000-8000-{n:012x}"),
                        role,
                        format!("Synthetic task {n}: {}", words[0]),
                        words.join(" "),
                        pending,
                        created,
                        due,
                    )
                })
                .collect();
            self.write(move |conn| {
                let mut task = conn.prepare_cached(
                    "INSERT INTO tasks (id, run_id, node, visit, blueprint_id, version, title, draft, role, users, status, created_at, due_at, body)
                     VALUES (?1, ?1, 'review', 1, 'synthetic', 'synthetic', ?2, ?3, ?4, '[]', ?5, ?6, ?7, ?8)",
                )?;
                let mut fts = conn.prepare_cached("INSERT INTO tasks_fts (task_id, title, draft) VALUES (?1, ?2, ?3)")?;
                for (id, role, title, draft, pending, created, due) in &rows {
                    let body = serde_json::json!({
                        "id": id, "node": "review", "visit": 1, "title": title, "draft": draft, "role": role, "context": {},
                    });
                    task.execute(params![id, title, draft, role, if *pending { "pending" } else { "decided" }, created, due, body.to_string()])?;
                    fts.execute(params![id, title, draft])?;
                }
                Ok(())
            })
            .await?;
            done += batch;
        }
        Ok(done)
    }

    /// Update the planner's statistics (after a bulk load).
    pub async fn analyze(&self) -> Result<()> {
        self.write(|conn| Ok(conn.execute_batch("ANALYZE")?)).await
    }
}

/// Actions of the synthetic audit log, with the shapes of their before/after.
const AUDIT_ACTIONS: &[&str] = &[
    "task.decided",
    "task.voted",
    "task.escalated",
    "tag.added",
    "tag.removed",
    "note.changed",
    "version.added",
    "setting.changed",
    "role.changed",
];

impl Store {
    /// Append `count` synthetic entries to the audit log (`processops bench audit`), sealed
    /// one after another like real ones, in one transaction. Returns the chain's length.
    pub async fn insert_synthetic_audit(&self, count: u64, seed: u64) -> Result<u64> {
        use processops_core::audit::{EntryRef, hash_of, json_text};
        self.write(move |conn| {
            let mut rng = Rng(seed);
            let mut head = crate::audit::head_in(conn)?.unwrap_or_default();
            let start = now_ms() - i64::try_from(count).unwrap_or(0) * 1000;
            for i in 0..count {
                let n = head.count + 1;
                let action = AUDIT_ACTIONS[rng.below(AUDIT_ACTIONS.len() as u64) as usize];
                let word = VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize];
                let before = serde_json::json!({ "status": "pending" });
                let after = serde_json::json!({
                    "status": "decided",
                    "action": if rng.below(4) == 0 { "reject" } else { "approve" },
                    "text": null,
                    "reason": format!("checked the {word} against policy term{}", rng.below(20_000)),
                });
                let (before, after) = (json_text(Some(&before)), json_text(Some(&after)));
                let id = format!("00000000-0000-7000-8000-{n:012x}");
                let actor = format!("user-{}", rng.below(50));
                let subject = format!("00000000-0000-7000-9000-{:012x}", rng.below(1 << 40));
                let entry = EntryRef {
                    seq: n,
                    id: &id,
                    at: start + i64::try_from(i).unwrap_or(0) * 1000,
                    device: "local",
                    actor: &actor,
                    action,
                    subject: &subject,
                    before: before.as_deref(),
                    after: after.as_deref(),
                    prev_hash: &head.hash,
                    hash: "",
                };
                let hash = hash_of(&entry);
                crate::audit::insert(conn, &EntryRef { hash: &hash, ..entry })?;
                head = processops_core::audit::Head { count: n, hash };
            }
            crate::audit::set_head(conn, head.count, &head.hash)?;
            Ok(head.count)
        })
        .await
    }

    /// Benchmark baseline for `audit_verify`: the same rows read by a bare scan, touching
    /// every column. Returns (rows, bytes).
    pub fn audit_scan_baseline(&self) -> Result<(u64, u64)> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, id, at, device, actor, action, subject, before, after, prev_hash, hash FROM audit ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            let (mut n, mut bytes) = (0u64, 0u64);
            while let Some(r) = rows.next()? {
                for i in 0..11 {
                    bytes += r.get_ref(i)?.as_bytes().map_or(8, |b| b.len() as u64);
                }
                n += 1;
            }
            Ok((n, bytes))
        })
    }

    /// Benchmark baseline input: every entry's hashed bytes (the audit layout), concatenated,
    /// with the end offset of each entry.
    pub fn audit_hash_inputs(&self) -> Result<(Vec<u8>, Vec<usize>)> {
        let entries = self.audit_entries(&crate::AuditFilter {
            limit: Some(u32::MAX),
            ..crate::AuditFilter::default()
        })?;
        let (mut bytes, mut ends) = (Vec::new(), Vec::with_capacity(entries.len()));
        for e in &entries {
            use processops_core::audit::{EntryRef, encode, json_text};
            let (before, after) = (json_text(e.before.as_ref()), json_text(e.after.as_ref()));
            encode(
                &EntryRef {
                    seq: e.seq,
                    id: &e.id,
                    at: e.at,
                    device: &e.device,
                    actor: &e.actor,
                    action: &e.action,
                    subject: &e.subject,
                    before: before.as_deref(),
                    after: after.as_deref(),
                    prev_hash: &e.prev_hash,
                    hash: &e.hash,
                },
                &mut bytes,
            );
            ends.push(bytes.len());
        }
        Ok((bytes, ends))
    }
}
