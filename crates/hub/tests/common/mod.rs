//! Shared test scaffolding: hubs on SQLite or PostgreSQL, enrolled devices backed by real
//! device stores, and a transport that talks to a hub in-process with injectable faults.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use processops_hub::{AnyStore, Hub, HubError, HubOptions, PgHub, Planted, SqliteHub, UserRecord};
use processops_store::{Durability, Store};
use processops_sync::{
    EnrolRequest, PullResponse, PushRequest, PushResponse, Role, Transport, TransportError,
};

/// The PostgreSQL the team backend's tests use (this machine kind runs one; CI too).
pub fn postgres_url() -> String {
    std::env::var("PROCESSOPS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema name, so parallel tests never share tables.
pub fn fresh_schema() -> String {
    format!("hub_test_{}", uuid::Uuid::now_v7().simple())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's hub data lives; several hub processes may open it.
pub struct HubSite {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub schema: String,
}

impl HubSite {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            dir: tempfile::tempdir().expect("tempdir"),
            schema: fresh_schema(),
        }
    }

    /// Open one more hub process over the site.
    pub async fn open(&self, planted: Planted, options: HubOptions) -> Hub {
        let store = match self.backend {
            Backend::Sqlite => AnyStore::Sqlite(
                SqliteHub::open_with(&self.dir.path().join("hub.db"), planted).expect("sqlite hub"),
            ),
            Backend::Postgres => AnyStore::Postgres(
                PgHub::connect_with(&postgres_url(), Some(&self.schema), planted)
                    .await
                    .expect("PostgreSQL hub: is PostgreSQL running at 127.0.0.1:5432?"),
            ),
        };
        Hub::new(store, options)
    }
}

impl Drop for HubSite {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            let url = postgres_url();
            let schema = self.schema.clone();
            // Best effort: a dropped schema keeps the shared test database small.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async move {
                    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .ok()?;
                    let task = tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                    drop(client);
                    let _ = task.await;
                    Some(())
                })
            })
            .join();
        }
    }
}

pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Generous limits: the tests make many requests from one address.
pub fn test_options() -> HubOptions {
    HubOptions {
        enrolments_per_minute: 10_000,
        failed_logins_per_minute: 10_000,
    }
}

/// Create team `t` with an admin, and a user per name with every role.
pub async fn team(hub: &Hub, users: &[&str]) -> String {
    let code = hub.create_team("t", "admin").await.expect("team");
    for u in users {
        hub.put_user(
            None,
            "t",
            UserRecord {
                name: (*u).to_owned(),
                roles: vec![
                    Role::Approver,
                    Role::Evaluator,
                    Role::Publisher,
                    Role::Engine,
                ],
                scopes: vec!["*".into()],
            },
        )
        .await
        .expect("user");
    }
    code.code
}

/// Enrol a device for `user`; returns its token and a device store enrolled with the hub.
pub async fn device(hub: &Hub, dir: &std::path::Path, user: &str) -> (String, Store) {
    let code = hub.enrolment(None, "t", user).await.expect("code");
    let answer = hub
        .enrol(
            EnrolRequest {
                code: code.code,
                device_name: format!("{user}'s laptop"),
            },
            LOCAL,
        )
        .await
        .expect("enrol");
    let store = Store::open(&dir.join(format!("{user}.db")), Durability::Process).expect("store");
    store
        .sync_enrol(answer.device, answer.user.clone())
        .await
        .expect("sync enrol");
    (answer.token, store)
}

/// What can go wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The request never reaches the hub.
    DropRequest,
    /// The hub handles it, the answer is lost.
    DropResponse,
    /// The request arrives twice.
    Duplicate,
    /// A push arrives split in two, second half first; a pull re-delivers earlier events.
    Reorder,
}

/// The hub in-process, with a fault applied to each request in turn (then none).
pub struct SimTransport {
    pub hub: Hub,
    pub token: String,
    pub faults: Mutex<Vec<Fault>>,
}

impl SimTransport {
    pub fn new(hub: Hub, token: String, faults: Vec<Fault>) -> Self {
        Self {
            hub,
            token,
            faults: Mutex::new(faults),
        }
    }

    fn next_fault(&self) -> Fault {
        self.faults
            .lock()
            .map(|mut f| {
                if f.is_empty() {
                    Fault::None
                } else {
                    f.remove(0)
                }
            })
            .unwrap_or(Fault::None)
    }

    async fn push_once(&self, request: PushRequest) -> Result<PushResponse, TransportError> {
        let p = self
            .hub
            .authenticate(Some(&self.token), LOCAL)
            .await
            .map_err(refused)?;
        self.hub.push(&p, request).await.map_err(refused)
    }

    async fn pull_once(&self, after: u64, limit: u32) -> Result<PullResponse, TransportError> {
        let p = self
            .hub
            .authenticate(Some(&self.token), LOCAL)
            .await
            .map_err(refused)?;
        self.hub.pull(&p, after, Some(limit)).await.map_err(refused)
    }
}

pub fn refused(e: HubError) -> TransportError {
    match e {
        HubError::Gap { expected } => TransportError::Gap { expected },
        HubError::Storage(m) => TransportError::Unavailable(m),
        other => TransportError::Refused {
            status: other.status(),
            code: other.code().into(),
            message: other.to_string(),
        },
    }
}

fn lost() -> TransportError {
    TransportError::Unavailable("connection reset (injected)".into())
}

impl Transport for SimTransport {
    async fn push(&self, request: PushRequest) -> Result<PushResponse, TransportError> {
        match self.next_fault() {
            Fault::None => self.push_once(request).await,
            Fault::DropRequest => Err(lost()),
            Fault::DropResponse => {
                let _ = self.push_once(request).await;
                Err(lost())
            }
            Fault::Duplicate => {
                let _ = self.push_once(request.clone()).await;
                self.push_once(request).await
            }
            Fault::Reorder => {
                let mid = request.events.len() / 2;
                if mid == 0 {
                    return self.push_once(request).await;
                }
                let mut first = request.clone();
                let second = PushRequest {
                    wire: request.wire,
                    events: first.events.split_off(mid),
                };
                let _ = self.push_once(second).await;
                self.push_once(first).await
            }
        }
    }

    async fn pull(&self, after: u64, limit: u32) -> Result<PullResponse, TransportError> {
        match self.next_fault() {
            Fault::None => self.pull_once(after, limit).await,
            Fault::DropRequest | Fault::DropResponse => Err(lost()),
            Fault::Duplicate => {
                let _ = self.pull_once(after, limit).await;
                self.pull_once(after, limit).await
            }
            // Re-deliver events the device has already applied.
            Fault::Reorder => self.pull_once(after.saturating_sub(3), limit).await,
        }
    }
}
