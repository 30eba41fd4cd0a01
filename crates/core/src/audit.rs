//! The audit log: an append-only chain of who did what, when, with the state before and after.
//!
//! Each entry carries the hash of the entry before it (`prev_hash`) and its own `hash`, so
//! editing, deleting or reordering any entry breaks the chain at that entry. The store also
//! keeps the chain's head (entry count and last hash) in the transaction of every append, so
//! removing entries from the end is caught too.
//!
//! # Hash layout (version 1)
//!
//! `hash` is the lowercase hexadecimal SHA-256 of this byte string:
//!
//! ```text
//! str("processops.audit.v1")
//! str(prev_hash)            64 lowercase hex characters; the first entry's is 64 "0"s
//! u64(seq)                  1 for the first entry, then +1 per entry
//! str(id)                   the entry's UUIDv7, hyphenated lowercase
//! i64(at)                   Unix milliseconds
//! str(device)               the hub device id, or "local"
//! str(actor)
//! str(action)               e.g. "task.decided"
//! str(subject)              e.g. a task id, an output "run:node:visit", "blueprint@hash"
//! opt(before)
//! opt(after)
//!
//! u64(n)  = n as 8 bytes, big-endian
//! i64(n)  = n as 8 bytes, big-endian two's complement
//! str(s)  = u64(byte length of s) followed by the UTF-8 bytes of s
//! opt(j)  = the byte 0x00 when absent, else 0x01 followed by str(j)
//! ```
//!
//! `before` and `after` are JSON in canonical form: no whitespace, object members sorted by
//! key (UTF-8 byte order), strings and numbers as serde_json writes them. This is exactly the
//! text stored in the database and in CSV exports; a JSON `null` counts as absent. To check an
//! export, recompute each entry's hash with this layout, compare it with `hash`, and compare
//! each `prev_hash` with the previous entry's `hash` (see [`encode`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Names the layout inside every hash, so a future layout can never verify as this one.
const DOMAIN: &str = "processops.audit.v1";

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The hub device that wrote it, or "local".
    pub device: String,
    pub actor: String,
    /// A dotted name: `task.decided`, `tag.added`, `version.added`, `setting.changed`…
    pub action: String,
    /// What it concerns: a task id, an output `run:node:visit`, `blueprint@hash`…
    pub subject: String,
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// What happened, before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub at: i64,
    pub device: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Record {
    /// The entry this record becomes at `seq`, after the entry whose hash is `prev_hash`.
    pub fn seal(self, seq: u64, prev_hash: &str) -> AuditEntry {
        let (before, after) = (
            json_text(self.before.as_ref()),
            json_text(self.after.as_ref()),
        );
        let hash = hash_of(&EntryRef {
            seq,
            id: &self.id,
            at: self.at,
            device: &self.device,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            before: before.as_deref(),
            after: after.as_deref(),
            prev_hash,
            hash: "",
        });
        AuditEntry {
            seq,
            id: self.id,
            at: self.at,
            device: self.device,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            // `null` and absent hash alike; keep one form so exports re-verify.
            before: self.before.filter(|v| !v.is_null()),
            after: self.after.filter(|v| !v.is_null()),
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

impl AuditEntry {
    /// The hash this entry's fields give (equal to `hash` unless it was tampered with).
    pub fn computed_hash(&self) -> String {
        let (before, after) = (
            json_text(self.before.as_ref()),
            json_text(self.after.as_ref()),
        );
        hash_of(&self.as_ref(before.as_deref(), after.as_deref()))
    }

    fn as_ref<'a>(&'a self, before: Option<&'a str>, after: Option<&'a str>) -> EntryRef<'a> {
        EntryRef {
            seq: self.seq,
            id: &self.id,
            at: self.at,
            device: &self.device,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            before,
            after,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
}

/// An entry as stored, borrowed: `before` and `after` are their canonical JSON text. The
/// store verifies rows through this without copying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub at: i64,
    pub device: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

/// The end of a chain: how many entries it has and the last one's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub count: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            count: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// Builds a chain: each appended record is sealed after the previous one.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    head: Head,
}

impl Chain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Continue a chain that ends at `head`.
    pub fn resume(head: Head) -> Self {
        Self { head }
    }

    pub fn append(&mut self, record: Record) -> AuditEntry {
        let entry = record.seal(self.head.count + 1, &self.head.hash);
        self.head = Head {
            count: entry.seq,
            hash: entry.hash.clone(),
        };
        entry
    }

    pub fn head(&self) -> &Head {
        &self.head
    }
}

/// `value` as canonical JSON (see the module doc); `None` for absent or `null`.
pub fn json_text(value: Option<&Value>) -> Option<String> {
    let value = value.filter(|v| !v.is_null())?;
    let mut out = String::new();
    write_canonical(value, &mut out);
    Some(out)
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            // Sorted here rather than trusting the map's order: serde_json keeps insertion
            // order when any crate in the build enables `preserve_order`.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's `Display` is compact JSON.
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The bytes an entry's hash is taken over (the layout in the module doc), appended to `out`.
/// `e.hash` is not part of them.
pub fn encode(e: &EntryRef<'_>, out: &mut Vec<u8>) {
    fn str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn opt(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                str(out, s);
            }
        }
    }
    str(out, DOMAIN);
    str(out, e.prev_hash);
    out.extend_from_slice(&e.seq.to_be_bytes());
    str(out, e.id);
    out.extend_from_slice(&e.at.to_be_bytes());
    str(out, e.device);
    str(out, e.actor);
    str(out, e.action);
    str(out, e.subject);
    opt(out, e.before);
    opt(out, e.after);
}

/// The hash of an entry's fields (`e.hash` is ignored).
pub fn hash_of(e: &EntryRef<'_>) -> String {
    let mut buf = Vec::with_capacity(256);
    let hex = hex_digest(e, &mut buf);
    // Hex digits are ASCII.
    String::from_utf8_lossy(&hex).into_owned()
}

/// Lowercase hex SHA-256 of `e`'s encoding, using `buf` as scratch space (no allocation once
/// it is large enough).
fn hex_digest(e: &EntryRef<'_>, buf: &mut Vec<u8>) -> [u8; 64] {
    buf.clear();
    encode(e, buf);
    let digest = Sha256::digest(buf.as_slice());
    let mut hex = [0u8; 64];
    // Cannot fail: 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(digest, &mut hex);
    hex
}

/// How a chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The entry's content no longer matches its hash (or it was re-sealed and the next
    /// entry no longer links to it).
    Edited,
    /// The entry is not there: the sequence jumps over it (a deletion).
    Missing,
    /// The entry is intact but in the wrong place (rows were reordered or duplicated).
    OutOfOrder,
    /// The chain ends before the count its head records (entries removed from the end).
    Truncated,
    /// The chain does not end where its head says (entries added or replaced at the end).
    HeadMismatch,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edited => "edited",
            Self::Missing => "missing",
            Self::OutOfOrder => "out of order",
            Self::Truncated => "truncated",
            Self::HeadMismatch => "head mismatch",
        }
    }
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    Ok {
        count: u64,
        head_hash: String,
    },
    /// The first broken entry.
    Broken {
        seq: u64,
        kind: BreakKind,
        message: String,
    },
}

impl Verdict {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }

    fn broken(seq: u64, kind: BreakKind, message: String) -> Self {
        Self::Broken { seq, kind, message }
    }
}

/// How far from its position a moved entry is looked for (only once a chain is broken), to
/// tell a reordered entry from an edited one.
const MOVE_SEARCH: u64 = 1 << 16;

/// Verifies a chain one entry at a time, in `seq` order, stopping at the first broken entry.
#[derive(Debug)]
pub struct Verifier {
    /// The seq the next entry must have.
    next: u64,
    /// The hash the next entry must link to.
    prev: [u8; 64],
    /// The stream jumped from `next` to a later seq: a deletion, unless the skipped entry
    /// comes next (two entries swapped).
    gap: Option<u64>,
    done: Option<Verdict>,
    buf: Vec<u8>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        let mut prev = [0u8; 64];
        prev.copy_from_slice(GENESIS.as_bytes());
        Self {
            next: 1,
            prev,
            gap: None,
            done: None,
            buf: Vec::with_capacity(512),
        }
    }

    /// Check the next entry. `Some` when the chain is broken (at this entry or an earlier
    /// one): stop feeding entries; the same verdict is returned from then on.
    pub fn push(&mut self, e: &EntryRef<'_>) -> Option<&Verdict> {
        if self.done.is_none() {
            self.done = self.check(e);
        }
        self.done.as_ref()
    }

    fn check(&mut self, e: &EntryRef<'_>) -> Option<Verdict> {
        let expected = self.next;
        if let Some(jumped) = self.gap {
            return Some(if e.seq == expected {
                Verdict::broken(
                    jumped,
                    BreakKind::OutOfOrder,
                    format!("entry {jumped} comes before entry {expected}: entries were reordered"),
                )
            } else {
                missing(expected, jumped)
            });
        }
        if e.seq > expected {
            self.gap = Some(e.seq);
            return None;
        }
        if e.seq < expected {
            return Some(Verdict::broken(
                e.seq,
                BreakKind::OutOfOrder,
                format!(
                    "entry {} appears again after entry {}: entries were duplicated or reordered",
                    e.seq,
                    expected - 1
                ),
            ));
        }
        let linked = e.prev_hash.as_bytes() == self.prev;
        let computed = hex_digest(e, &mut self.buf);
        let intact = e.hash.as_bytes() == computed;
        match (linked, intact) {
            (true, true) => {
                self.prev = computed;
                self.next += 1;
                None
            }
            (true, false) => Some(Verdict::broken(
                e.seq,
                BreakKind::Edited,
                format!(
                    "entry {} was changed after it was written: its content no longer matches its hash",
                    e.seq
                ),
            )),
            // Intact, and sealed at this seq: whatever precedes it is not what it was chained to.
            (false, true) if e.seq > 1 => Some(Verdict::broken(
                e.seq - 1,
                BreakKind::Edited,
                format!(
                    "entry {} was changed and its hash recomputed: entry {} was chained to a different entry {}",
                    e.seq - 1,
                    e.seq,
                    e.seq - 1
                ),
            )),
            (false, true) => Some(Verdict::broken(
                1,
                BreakKind::Edited,
                "entry 1 does not start the chain: it links to an entry that does not exist"
                    .to_owned(),
            )),
            (false, false) => Some(match self.sealed_at(e) {
                Some(original) => Verdict::broken(
                    e.seq,
                    BreakKind::OutOfOrder,
                    format!(
                        "entry {} holds the entry written as number {original}: entries were reordered",
                        e.seq
                    ),
                ),
                None => Verdict::broken(
                    e.seq,
                    BreakKind::Edited,
                    format!(
                        "entry {} was changed after it was written: it neither matches its hash nor links to the entry before it",
                        e.seq
                    ),
                ),
            }),
        }
    }

    /// The seq near `e.seq` at which `e`'s content was sealed, if it was (a moved entry).
    fn sealed_at(&mut self, e: &EntryRef<'_>) -> Option<u64> {
        (1..=MOVE_SEARCH).find_map(|d| {
            [e.seq.checked_sub(d), e.seq.checked_add(d)]
                .into_iter()
                .flatten()
                .filter(|&s| s >= 1)
                .find(|&s| {
                    let moved = EntryRef { seq: s, ..*e };
                    hex_digest(&moved, &mut self.buf) == e.hash.as_bytes()
                })
        })
    }

    /// The verdict once every entry was pushed; `head` is where the chain must end.
    pub fn finish(self, head: Option<&Head>) -> Verdict {
        if let Some(done) = self.done {
            return done;
        }
        let count = self.next - 1;
        if let Some(jumped) = self.gap {
            return missing(self.next, jumped);
        }
        let last = String::from_utf8_lossy(&self.prev).into_owned();
        match head {
            Some(h) if h.count > count => {
                let removed = if h.count == count + 1 {
                    format!("entry {} was removed", h.count)
                } else {
                    format!("entries {} to {} were removed", count + 1, h.count)
                };
                Verdict::broken(
                    count + 1,
                    BreakKind::Truncated,
                    format!(
                        "the chain ends at entry {count} but its head records {} entries: {removed}",
                        h.count
                    ),
                )
            }
            Some(h) if h.count < count => Verdict::broken(
                h.count + 1,
                BreakKind::HeadMismatch,
                format!(
                    "the chain has {count} entries but its head records {}: entries from {} on were added outside ProcessOps",
                    h.count,
                    h.count + 1
                ),
            ),
            Some(h) if h.hash != last => Verdict::broken(
                count.max(1),
                BreakKind::HeadMismatch,
                if count == 0 {
                    "the chain is empty but its head records a last entry".to_owned()
                } else {
                    format!(
                        "entry {count} is not the last entry the chain's head records: it was replaced"
                    )
                },
            ),
            _ => Verdict::Ok {
                count,
                head_hash: last,
            },
        }
    }
}

fn missing(expected: u64, jumped: u64) -> Verdict {
    let what = if jumped == expected + 1 {
        format!("entry {expected} is")
    } else {
        format!("entries {expected} to {} are", jumped - 1)
    };
    let jump = if expected == 1 {
        format!("the chain starts at entry {jumped}")
    } else {
        format!(
            "the chain jumps from entry {} to entry {jumped}",
            expected - 1
        )
    };
    Verdict::broken(
        expected,
        BreakKind::Missing,
        format!("{what} missing: {jump}"),
    )
}

/// Verify `entries` (in `seq` order) and, when given, that the chain ends at `head`.
pub fn verify(entries: impl IntoIterator<Item = AuditEntry>, head: Option<&Head>) -> Verdict {
    let mut v = Verifier::new();
    for e in entries {
        let (before, after) = (json_text(e.before.as_ref()), json_text(e.after.as_ref()));
        if let Some(broken) = v.push(&e.as_ref(before.as_deref(), after.as_deref())) {
            return broken.clone();
        }
    }
    v.finish(head)
}
