//! `processops hub …` (run and administer a hub) and `processops sync` (this project's store
//! as a device of a hub).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use processops_hub::http::Listen;
use processops_hub::{AnyStore, Hub, HubOptions, PgHub, SqliteHub, UserRecord};
use processops_sync::{EnrolRequest, EnrolResponse, HttpTransport, Options, Role, sync_once};
use serde::{Deserialize, Serialize};

use crate::project::Project;

#[derive(Subcommand)]
pub enum HubCommand {
    /// Run the hub server (loopback only, unless a TLS certificate is given).
    Serve(ServeArgs),
    /// Create a team and its first admin; prints the admin's one-time enrolment code.
    InitTeam {
        team: String,
        #[arg(long)]
        admin: String,
        #[command(flatten)]
        db: HubDb,
    },
    /// Add a user or change their roles and approval scopes.
    User {
        team: String,
        name: String,
        /// Comma-separated: admin, approver, evaluator, publisher, engine.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// The task roles they may decide, comma-separated (`*`: all).
        #[arg(long, value_delimiter = ',', default_value = "*")]
        scopes: Vec<String>,
        #[command(flatten)]
        db: HubDb,
    },
    /// A one-time enrolment code for a user (valid 24 hours).
    Code {
        team: String,
        user: String,
        #[command(flatten)]
        db: HubDb,
    },
    /// Revoke a device's token.
    Revoke {
        team: String,
        device: uuid::Uuid,
        #[command(flatten)]
        db: HubDb,
    },
    /// Enrol this project's store as a device of a hub, with a code from its admin.
    Enrol {
        /// The hub's address, e.g. https://hub.example.com or http://127.0.0.1:8687.
        url: String,
        code: String,
        /// A name for this device, shown to admins.
        #[arg(long, default_value = "processops CLI")]
        name: String,
    },
}

/// Which store the hub runs on.
#[derive(Args, Clone)]
pub struct HubDb {
    /// The SQLite file (the embedded default).
    #[arg(long, default_value = "hub.db")]
    db: PathBuf,
    /// A PostgreSQL URL instead (teams; several hub processes may share it).
    #[arg(long, env = "PROCESSOPS_HUB_POSTGRES")]
    postgres: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    db: HubDb,
    #[arg(long, default_value = "127.0.0.1:8687")]
    addr: SocketAddr,
    /// PEM certificate chain: serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

async fn open(db: &HubDb) -> Result<Hub> {
    let store = match &db.postgres {
        Some(url) => AnyStore::Postgres(PgHub::connect(url, None).await?),
        None => AnyStore::Sqlite(SqliteHub::open(&db.db)?),
    };
    Ok(Hub::new(store, HubOptions::default()))
}

fn print_code(code: &processops_hub::EnrolCode) {
    println!(
        "enrolment code for {} in team {}: {}\n(valid once, for 24 hours; on the device run `processops hub enrol <hub-url> {}`)",
        code.user, code.team, code.code, code.code
    );
}

pub async fn hub(project: &Project, command: HubCommand) -> Result<ExitCode> {
    match command {
        HubCommand::Serve(a) => {
            if a.tls_cert.is_none() && !a.addr.ip().is_loopback() {
                bail!(
                    "{} is not a loopback address: give --tls-cert and --tls-key to serve the network, or bind 127.0.0.1",
                    a.addr
                );
            }
            let hub = open(&a.db).await?;
            let scheme = if a.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            let store = a.db.postgres.as_ref().map_or_else(
                || format!("SQLite {}", a.db.db.display()),
                |_| "PostgreSQL".to_owned(),
            );
            println!("hub listening on {scheme}://{} ({store})", a.addr);
            processops_hub::http::serve(
                hub,
                Listen {
                    addr: a.addr,
                    tls: a.tls_cert.zip(a.tls_key),
                },
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        HubCommand::InitTeam { team, admin, db } => {
            let code = open(&db).await?.create_team(&team, &admin).await?;
            println!("created team {team} with admin {admin}");
            print_code(&code);
            Ok(ExitCode::SUCCESS)
        }
        HubCommand::User {
            team,
            name,
            roles,
            scopes,
            db,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.trim().parse::<Role>())
                .collect::<Result<Vec<_>, String>>()
                .map_err(anyhow::Error::msg)?;
            let user = open(&db)
                .await?
                .put_user(
                    None,
                    &team,
                    UserRecord {
                        name,
                        roles,
                        scopes,
                    },
                )
                .await?;
            let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
            println!(
                "{} in {team}: roles {}, decides {}",
                user.name,
                roles.join(", "),
                user.scopes.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        HubCommand::Code { team, user, db } => {
            print_code(&open(&db).await?.enrolment(None, &team, &user).await?);
            Ok(ExitCode::SUCCESS)
        }
        HubCommand::Revoke { team, device, db } => {
            open(&db).await?.revoke(None, &team, device).await?;
            println!("revoked device {device}; its next request will be refused");
            Ok(ExitCode::SUCCESS)
        }
        HubCommand::Enrol { url, code, name } => enrol(project, &url, &code, &name).await,
    }
}

/// What a device keeps about its hub: the token is a secret (file mode 0600).
#[derive(Serialize, Deserialize)]
struct Credentials {
    url: String,
    team: String,
    user: String,
    device: uuid::Uuid,
    token: String,
}

fn credentials_path(project: &Project) -> PathBuf {
    project.db().with_file_name("hub.json")
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

async fn enrol(project: &Project, url: &str, code: &str, name: &str) -> Result<ExitCode> {
    let store = project.open_store()?;
    if let Some(me) = store.sync_identity()? {
        bail!(
            "this project is already device {} on a hub; a store syncs as one device",
            me.device
        );
    }
    let url = url.trim_end_matches('/');
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/enrol"))
        .json(&EnrolRequest {
            code: code.to_owned(),
            device_name: name.to_owned(),
        })
        .send()
        .await
        .with_context(|| format!("cannot reach the hub at {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        bail!(
            "the hub refused the enrolment ({status}): {}",
            body["message"].as_str().unwrap_or("no reason given")
        );
    }
    let answer: EnrolResponse = response.json().await?;
    let creds = Credentials {
        url: url.to_owned(),
        team: answer.team.clone(),
        user: answer.user.clone(),
        device: answer.device,
        token: answer.token,
    };
    let path = credentials_path(project);
    write_secret(&path, &serde_json::to_string_pretty(&creds)?)?;
    store.sync_enrol(answer.device, answer.user.clone()).await?;
    println!(
        "enrolled as {} in team {} (device {}); token saved in {} (readable only by you)",
        answer.user,
        answer.team,
        answer.device,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `processops sync`: one round, then the sync state.
pub async fn sync(project: &Project) -> Result<ExitCode> {
    let path = credentials_path(project);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        anyhow::anyhow!(
            "this project is not enrolled with a hub ({} is missing); run `processops hub enrol <hub-url> <code>`",
            path.display()
        )
    })?;
    let creds: Credentials = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid; enrol again", path.display()))?;
    let store = project.open_store()?;
    let transport = HttpTransport::new(&creds.url, &creds.token)?;
    let result = sync_once(&store, &transport, Options::default()).await;
    let status = store.sync_status()?;
    match result {
        Ok(report) => {
            println!(
                "synced with {}: pushed {}, pulled {}, hub position {}",
                creds.url, report.pushed, report.pulled, report.cursor.hub_seq
            );
            if let Some(s) = status {
                println!(
                    "pending: {} · open conflicts: {}",
                    s.pending, s.open_conflicts
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("sync failed: {e}");
            if let Some(s) = status {
                eprintln!(
                    "{} change(s) wait for the next sync; nothing is lost",
                    s.pending
                );
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
