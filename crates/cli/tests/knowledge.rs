//! `processops knowledge ingest` as a person runs it: counts, notes, exit codes, re-ingest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json, processops, project, stdout};

#[test]
fn ingest_reports_counts_and_re_ingest_changes_nothing() {
    let dir = project();
    // The built-in embedding model (fetched by the test command) embeds every new passage.
    std::fs::write(
        dir.path().join("processops.toml"),
        "[providers.default]\nkind = \"scripted\"\n\n[retrieval]\nembeddings = \"builtin\"\n",
    )
    .unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("policies")).unwrap();
    std::fs::write(
        docs.join("policies/travel.md"),
        "# Travel\n\nBook trains early.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("handbook.html"),
        "<h1>Parking</h1><p>Free in the garage.</p>",
    )
    .unwrap();
    std::fs::write(docs.join("logo.png"), b"\x89PNG").unwrap();
    let docs_arg = docs.to_str().unwrap();

    let out = processops(dir.path(), &["knowledge", "ingest", "hr", docs_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert_eq!(
        text.trim(),
        "`hr`: 2 added, 0 updated, 0 unchanged, 1 skipped (2 passage(s) written, 2 embedded)"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no progress bar when stdout is not a terminal"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: skipped") && err.contains("logo.png"),
        "{err}"
    );

    let report = json(&processops(
        dir.path(),
        &["knowledge", "ingest", "hr", docs_arg, "--json"],
    ));
    assert_eq!(report["unchanged"], 2);
    assert_eq!(report["added"], 0);
    assert_eq!(report["passages"], 0);

    // A file that cannot be read is named, the rest still go in, and the exit code says so.
    std::fs::write(docs.join("scan.pdf"), b"%PDF-1.7 cut off").unwrap();
    std::fs::remove_file(docs.join("handbook.html")).unwrap();
    let out = processops(
        dir.path(),
        &["knowledge", "ingest", "hr", docs_arg, "--prune"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scan.pdf: cannot read the PDF"), "{err}");
    assert!(
        stdout(&out).contains("removed 1 document(s): handbook.html"),
        "{}",
        stdout(&out)
    );

    let out = processops(
        dir.path(),
        &["knowledge", "ingest", "hr", "/no/such/folder"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read /no/such/folder"), "{err}");
}
