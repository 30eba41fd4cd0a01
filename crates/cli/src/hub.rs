//! `processops hub …` (run and administer a hub) and `processops sync` (this project's store
//! as a device of a hub).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use processops_hub::http::Listen;
use processops_hub::{AnyStore, Hub, HubOptions, PgHub, SqliteHub, UserRecord};
use processops_sync::{HttpTransport, Options, Role, sync_once};

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
    /// Start a new epoch after restoring the hub from a backup: every device pulls the whole
    /// log again and re-sends what the hub lost.
    NewEpoch {
        team: String,
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
        HubCommand::NewEpoch { team, db } => {
            let epoch = open(&db).await?.new_epoch(None, &team).await?;
            println!(
                "team {team} is at epoch {epoch}: each device pulls the whole log again on its next sync"
            );
            Ok(ExitCode::SUCCESS)
        }
        HubCommand::Enrol { url, code, name } => enrol(project, &url, &code, &name).await,
    }
}

async fn enrol(project: &Project, url: &str, code: &str, name: &str) -> Result<ExitCode> {
    let store = project.open_store()?;
    let (creds, path) = processops_api::hub::enrol(&project.data, &store, url, code, name).await?;
    println!(
        "enrolled as {} in team {} (device {}); token saved in {} (readable only by you)",
        creds.user,
        creds.team,
        creds.device,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `processops sync`: one round, then the sync state. When `processops serve` (or the
/// desktop app) runs the project, it syncs for us (it wakes the runs the hub's decisions
/// resume); otherwise the round runs here and the runs go on when an engine next starts.
pub async fn sync(project: &Project) -> Result<ExitCode> {
    let creds = processops_api::hub::load_credentials(&project.data)?.ok_or_else(|| {
        anyhow::anyhow!(
            "this project is not enrolled with a hub; run `processops hub enrol <hub-url> <code>`"
        )
    })?;
    if let processops_api::local::Lock::Server(url) = project.lock()? {
        let status: processops_api::SyncStatusDto = crate::remote::Remote::new(url.clone())
            .post("/api/sync", &serde_json::json!({}))
            .await?;
        println!(
            "synced with {} (through the engine at {url}): hub position {}",
            creds.url, status.cursor
        );
        println!(
            "pending: {} · open conflicts: {}",
            status.pending, status.open_conflicts
        );
        return Ok(ExitCode::SUCCESS);
    }
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
