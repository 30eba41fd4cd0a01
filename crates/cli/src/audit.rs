//! `processops audit`: list, verify and export the audit log, and `processops bench audit`.
//!
//! These commands read the project's database directly (SQLite lets them share it with a
//! running `processops serve`), so they work while the engine runs and without it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use processops_core::audit::{AuditEntry, Verdict};
use processops_store::{AuditFilter, AuditFormat, Durability, Store};
use serde_json::{Value, json};

use crate::project::Project;
use crate::render;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Who did what and when, newest first: decisions, tags, versions, settings.
    List(ListArgs),
    /// Check that no entry was edited, deleted or reordered since it was written.
    Verify {
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every entry, oldest first, for compliance: JSON lines or CSV. Each entry carries its
    /// hashes, so the export can be verified on its own.
    Export(ExportArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// Only entries since a time ago (30m, 12h, 7d, 2w) or a date (2025-01-31,
    /// 2025-01-31T09:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only this person's (or `engine`'s) entries.
    #[arg(long)]
    actor: Option<String>,
    /// Only actions starting with this, e.g. `task` or `tag.added`.
    #[arg(long)]
    action: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print the entries as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, value_enum)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

pub async fn audit(project: &Project, command: AuditCommand) -> Result<ExitCode> {
    let store = project.open_store()?;
    match command {
        AuditCommand::List(a) => list(&store, &a),
        AuditCommand::Verify { json } => verify(&store, project, json),
        AuditCommand::Export(a) => export(&store, &a),
    }
}

fn list(store: &Store, a: &ListArgs) -> Result<ExitCode> {
    let since = a
        .since
        .as_deref()
        .map(|s| parse_since(s, Utc::now().timestamp_millis()))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let entries = store.audit_entries(&AuditFilter {
        since,
        actor: a.actor.clone(),
        action: a.action.clone(),
        limit: Some(a.limit),
        newest_first: true,
        ..AuditFilter::default()
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        print!("{}", table(&entries));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return "No audit entries match.\n".into();
    }
    let mut t = render::table(&["SEQ", "WHEN", "WHO", "ACTION", "SUBJECT", "CHANGE"]);
    for e in entries {
        t.add_row(vec![
            e.seq.to_string(),
            time(e.at),
            e.actor.clone(),
            e.action.clone(),
            subject(&e.subject),
            change(e.before.as_ref(), e.after.as_ref()),
        ]);
    }
    format!(
        "{t}\n{} entr{}, newest first. Check the whole log with `processops audit verify`.\n",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    )
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || "?".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Ids as the rest of the CLI shows them (their last 8 characters), in `run:node:visit` too.
fn subject(s: &str) -> String {
    match s.split_once(':') {
        Some((id, rest)) if uuid::Uuid::parse_str(id).is_ok() => {
            format!("{}:{rest}", render::short(id))
        }
        _ if uuid::Uuid::parse_str(s).is_ok() => render::short(s),
        // `blueprint@hash`: the hash's start, as git shows commits.
        _ => match s.split_once('@') {
            Some((bp, hash)) if hash.len() > 12 => format!("{bp}@{}", clip(hash, 13)),
            _ => s.to_owned(),
        },
    }
}

/// `before → after`, compact and clipped so the table stays one line per entry.
fn change(before: Option<&Value>, after: Option<&Value>) -> String {
    let show = |v: Option<&Value>| {
        v.map_or_else(
            || "-".to_owned(),
            |v| {
                // Nulls say nothing in a one-line summary.
                let v = match v {
                    Value::Object(m) => Value::Object(
                        m.iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    other => other.clone(),
                };
                clip(&v.to_string(), 60)
            },
        )
    };
    match (before, after) {
        (None, None) => String::new(),
        (None, Some(_)) => show(after),
        _ => format!("{} → {}", show(before), show(after)),
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn verify(store: &Store, project: &Project, json: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let verdict = store.audit_verify()?;
    let elapsed = started.elapsed();
    let code = if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
        return Ok(code);
    }
    match &verdict {
        Verdict::Ok { count, head_hash } => println!(
            "{} audit chain intact: {count} entries, head {} (checked in {:.2} s)",
            render::mark(true),
            head_hash.get(..12).unwrap_or(head_hash),
            elapsed.as_secs_f64()
        ),
        Verdict::Broken { seq, kind, message } => {
            println!(
                "{} audit chain BROKEN at entry {seq} ({kind})",
                render::mark(false)
            );
            println!("  {message}");
            // The entry itself, or (deleted) the last one before it.
            let near = [*seq, seq.saturating_sub(1)]
                .into_iter()
                .filter(|&s| s >= 1)
                .find_map(|s| entry(store, s).map(|e| (s == *seq, e)));
            if let Some((itself, e)) = near {
                println!(
                    "  {}entry {}: {} by {} on {}, {}",
                    if itself { "" } else { "after the last intact " },
                    e.seq,
                    e.action,
                    e.actor,
                    e.subject,
                    time(e.at)
                );
            }
            println!(
                "The audit log was changed outside ProcessOps. Keep a copy of {} as evidence, compare it with your last backup (or the hub's copy), and find out who could write to that file.",
                project.db().display()
            );
        }
    }
    Ok(code)
}

/// One entry as stored, if it is there and readable (a tampered row may not be).
fn entry(store: &Store, seq: u64) -> Option<AuditEntry> {
    store
        .audit_entries(&AuditFilter {
            after_seq: Some(seq - 1),
            limit: Some(1),
            ..AuditFilter::default()
        })
        .ok()?
        .into_iter()
        .find(|e| e.seq == seq)
}

fn export(store: &Store, a: &ExportArgs) -> Result<ExitCode> {
    let format = match a.format {
        Format::Jsonl => AuditFormat::Jsonl,
        Format::Csv => AuditFormat::Csv,
    };
    match &a.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let n = store.audit_export(format, &mut out)?;
            out.flush()?;
            eprintln!("exported {n} audit entries to {}", path.display());
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            store.audit_export(format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: a time ago (`30m`, `12h`, `7d`, `2w`) or a date, as Unix ms.
fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    let unit_ms = |u: char| match u {
        's' => Some(1_000),
        'm' => Some(60_000),
        'h' => Some(3_600_000),
        'd' => Some(86_400_000),
        'w' => Some(7 * 86_400_000),
        _ => None,
    };
    if let Some(last) = text.chars().last()
        && let Some(unit) = unit_ms(last)
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
        && n >= 0
    {
        return Ok(now_ms.saturating_sub(n.saturating_mul(unit)));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(format!(
        "`{text}` is not a time: write a time ago (30m, 12h, 7d, 2w) or a date (2025-01-31, 2025-01-31T09:00:00Z)"
    ))
}

// ---------------------------------------------------------------------------------------------
// The benchmark

#[derive(Args)]
pub struct AuditBenchArgs {
    /// Entries in the log.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Repeats (the report gives medians over them).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `audit_verify` over a log of `entries`, against two baselines measured in the same run on
/// the same rows: a bare scan of the table, and SHA-256 of every entry's hashed bytes.
pub async fn bench(a: AuditBenchArgs) -> Result<ExitCode> {
    use sha2::{Digest as _, Sha256};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let store = Store::open(&path, Durability::Process)?;
    let started = Instant::now();
    store.insert_synthetic_audit(a.entries, 42).await?;
    let load_s = started.elapsed().as_secs_f64();
    let (bytes, ends) = store.audit_hash_inputs()?;
    if !a.json {
        eprintln!(
            "generated {} sealed entries in {load_s:.1} s ({:.0} MB hashed per verify)",
            a.entries,
            bytes.len() as f64 / 1e6
        );
    }
    // Warm the page cache once, so every repeat reads the same way.
    anyhow::ensure!(store.audit_verify()?.is_ok(), "the synthetic log is broken");

    let (mut verify, mut scan, mut sha) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..a.repeats.max(1) {
        let t = Instant::now();
        let verdict = store.audit_verify()?;
        verify.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            matches!(verdict, Verdict::Ok { count, .. } if count == a.entries),
            "verify: {verdict:?}"
        );

        let t = Instant::now();
        let (rows, _) = store.audit_scan_baseline()?;
        scan.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(rows == a.entries, "the scan read {rows} rows");

        let t = Instant::now();
        let mut start = 0;
        let mut acc = 0u8;
        for &end in &ends {
            acc ^= Sha256::digest(&bytes[start..end])[0];
            start = end;
        }
        sha.push(t.elapsed().as_secs_f64());
        std::hint::black_box(acc);
        if !a.json {
            eprintln!(
                "repeat {}/{}: verify {:.3} s, bare scan {:.3} s, SHA-256 {:.3} s",
                i + 1,
                a.repeats.max(1),
                verify[i],
                scan[i],
                sha[i]
            );
        }
    }
    let (v, s, h) = (
        crate::bench::median(verify),
        crate::bench::median(scan),
        crate::bench::median(sha),
    );
    let db_bytes = std::fs::metadata(&path).map_or(0, |m| m.len())
        + std::fs::metadata(dir.path().join("audit.db-wal")).map_or(0, |m| m.len());
    let report = json!({
        "entries": a.entries,
        "repeats": a.repeats.max(1),
        "load_s": load_s,
        "verify_s": v,
        "verify_entries_per_s": a.entries as f64 / v,
        "baseline_bare_scan_s": s,
        "baseline_sha256_s": h,
        "hashed_bytes": bytes.len(),
        "verify_vs_bare_scan": v / s,
        "verify_vs_scan_plus_sha256": v / (s + h),
        "db_bytes": db_bytes,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "\nAudit benchmark: {} entries, medians over {} repeats",
            a.entries,
            a.repeats.max(1)
        );
        println!("{:>48}    target", "value");
        println!("  audit verify (s)                    {v:>10.3}    ≤ 2");
        println!(
            "  entries verified per second         {:>10.0}",
            a.entries as f64 / v
        );
        println!("baseline measured in the same run");
        println!("  bare SELECT scan of the rows (s)    {s:>10.3}");
        println!("  SHA-256 of the same bytes (s)       {h:>10.3}");
        println!("ratios");
        println!("  verify ÷ bare scan                  {:>10.2}", v / s);
        println!(
            "  verify ÷ (scan + SHA-256)           {:>10.2}",
            v / (s + h)
        );
        println!(
            "database: {:.0} MB; generated in {load_s:.1} s",
            db_bytes as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::json;

    use super::{change, parse_since, subject};

    #[test]
    fn since_takes_a_time_ago_or_a_date() {
        let now = 1_700_000_000_000;
        let cases: &[(&str, Option<i64>)] = &[
            ("30m", Some(now - 30 * 60_000)),
            ("12h", Some(now - 12 * 3_600_000)),
            ("7d", Some(now - 7 * 86_400_000)),
            ("2w", Some(now - 14 * 86_400_000)),
            ("90s", Some(now - 90_000)),
            (" 1d ", Some(now - 86_400_000)),
            ("2023-11-14", Some(1_699_920_000_000)),
            ("2023-11-14T22:13:20Z", Some(now)),
            ("2023-11-14T23:13:20+01:00", Some(now)),
            ("-3d", None),
            ("d", None),
            ("7 days", None),
            ("yesterday", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_since(text, now).ok(), *want, "{text:?}");
        }
        assert!(
            parse_since("soon", now)
                .unwrap_err()
                .contains("30m, 12h, 7d")
        );
    }

    #[test]
    fn the_table_shows_short_ids_and_a_compact_change() {
        let id = "0190a8f2-3c4d-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(subject(id), "2e3f4a5b");
        assert_eq!(subject(&format!("{id}:review:2")), "2e3f4a5b:review:2");
        assert_eq!(subject("bp@abc"), "bp@abc");
        assert_eq!(
            subject(&format!("bp@{}", "a".repeat(64))),
            "bp@aaaaaaaaaaaa…"
        );
        assert_eq!(
            change(
                Some(&json!({"status": "pending"})),
                Some(&json!({"status": "decided", "text": null}))
            ),
            r#"{"status":"pending"} → {"status":"decided"}"#
        );
        assert_eq!(change(None, Some(&json!(3))), "3");
        assert_eq!(change(None, None), "");
        assert_eq!(
            change(None, Some(&json!("x".repeat(100)))).chars().count(),
            60
        );
    }
}
