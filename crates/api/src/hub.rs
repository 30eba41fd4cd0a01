//! This project as a device of a hub: its credentials (a 0600 file next to the store), and the
//! sync loop that keeps it in step while an engine serves it (`processops serve`, the desktop
//! app). Each round pushes the outbox, pulls the team's events, then wakes the runs whose
//! decisions the hub accepted.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use processops_engine::{Engine, EngineError, TriggerClaims};
use processops_store::Store;
use processops_sync::{HttpTransport, Options, Report, SyncError, sync_once};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ApiError;

/// What a device keeps about its hub. The token is a secret: the file is readable only by
/// its owner, and the token never appears in a log line, an error or the API.
#[derive(Clone, Serialize, Deserialize)]
pub struct HubCredentials {
    pub url: String,
    pub team: String,
    pub user: String,
    pub device: uuid::Uuid,
    pub token: String,
}

impl std::fmt::Debug for HubCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubCredentials")
            .field("url", &self.url)
            .field("team", &self.team)
            .field("user", &self.user)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Where a project keeps its hub credentials: next to its store.
pub fn credentials_path(data: &Path) -> PathBuf {
    data.join("hub.json")
}

/// The project's hub credentials; `None` when it is not enrolled.
pub fn load_credentials(data: &Path) -> Result<Option<HubCredentials>, ApiError> {
    let path = credentials_path(data);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ApiError::new(
                500,
                "io",
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        ApiError::new(
            422,
            "invalid_credentials",
            format!(
                "{} is not valid ({e}); remove it and enrol again with `processops hub enrol <hub-url> <code>`",
                path.display()
            ),
        )
    })
}

/// Write the credentials readable only by this user.
pub fn save_credentials(data: &Path, creds: &HubCredentials) -> Result<PathBuf, ApiError> {
    use std::io::Write as _;
    let path = credentials_path(data);
    let io = |e: std::io::Error| {
        ApiError::new(500, "io", format!("cannot write {}: {e}", path.display()))
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let text = serde_json::to_string_pretty(creds)
        .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
    options
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io)?;
    Ok(path)
}

/// Enrol this project's store as a device of the hub at `url` with a one-time code from its
/// admin, and keep the token in a file readable only by this user. Returns the credentials
/// and where they are kept.
pub async fn enrol(
    data: &Path,
    store: &processops_store::Store,
    url: &str,
    code: &str,
    device_name: &str,
) -> Result<(HubCredentials, PathBuf), ApiError> {
    if let Some(me) = store.sync_identity()? {
        return Err(ApiError::new(
            409,
            "conflict",
            format!(
                "this project is already device {} on a hub; a store syncs as one device",
                me.device
            ),
        ));
    }
    let url = url.trim().trim_end_matches('/');
    let answer = processops_sync::enrol(
        url,
        &processops_sync::EnrolRequest {
            code: code.trim().to_owned(),
            device_name: device_name.to_owned(),
        },
    )
    .await
    .map_err(|e| match e {
        processops_sync::TransportError::Unavailable(m) => ApiError::new(
            503,
            "hub_unavailable",
            format!("cannot reach the hub at {url}: {m}"),
        ),
        other => ApiError::new(
            422,
            "enrolment_refused",
            format!("the hub at {url} refused the enrolment: {other}"),
        ),
    })?;
    let creds = HubCredentials {
        url: url.to_owned(),
        team: answer.team,
        user: answer.user,
        device: answer.device,
        token: answer.token,
    };
    // Credentials first: a store marked as a device without them could never sync.
    let path = save_credentials(data, &creds)?;
    store.sync_enrol(creds.device, creds.user.clone()).await?;
    store
        .sync_set_principal(processops_sync::Principal {
            team: creds.team.clone(),
            user: creds.user.clone(),
            device: creds.device,
            roles: answer.roles,
            scopes: answer.scopes,
        })
        .await?;
    Ok((creds, path))
}

/// How often an idle device asks the hub for news (a local change syncs at once).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// The longest pause between tries while the hub is unreachable ("Sync now" tries at once).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The live link to the hub: one round at a time, a poke to sync now, and whether the last
/// round reached the hub.
#[derive(Clone)]
pub struct HubLink {
    creds: Arc<HubCredentials>,
    transport: Arc<HttpTransport>,
    round: Arc<tokio::sync::Mutex<()>>,
    poke: Arc<Notify>,
    online: Arc<Mutex<Option<bool>>>,
}

impl HubLink {
    pub fn new(creds: HubCredentials) -> Result<Self, ApiError> {
        let transport = HttpTransport::new(&creds.url, &creds.token)
            .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        Ok(Self {
            creds: Arc::new(creds),
            transport: Arc::new(transport),
            round: Arc::default(),
            poke: Arc::default(),
            online: Arc::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.creds.url
    }

    pub fn team(&self) -> &str {
        &self.creds.team
    }

    pub fn user(&self) -> &str {
        &self.creds.user
    }

    /// Whether the last round reached the hub (`None` before the first).
    pub fn online(&self) -> Option<bool> {
        self.online.lock().ok().and_then(|o| *o)
    }

    /// Ask the loop to sync now (after a local decision, say).
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// Push and pull, one exchange at a time.
    async fn exchange(&self, store: &Store) -> Result<Report, SyncError> {
        let _one_at_a_time = self.round.lock().await;
        let result = sync_once(store, self.transport.as_ref(), Options::default()).await;
        if let Ok(mut online) = self.online.lock() {
            *online = Some(!matches!(&result, Err(e) if e.is_transient()));
        }
        result
    }

    /// One round: push, pull, then wake the runs whose decisions the hub accepted.
    pub async fn round(&self, engine: &Engine) -> Result<Report, SyncError> {
        let report = self.exchange(engine.store()).await?;
        engine
            .act_on_hub_decisions()
            .await
            .map_err(|e| SyncError::Local(e.to_string()))?;
        Ok(report)
    }

    /// Learn the user's current roles and scopes from the hub (an admin may have changed
    /// them), so this device keeps refusing what the hub would refuse.
    pub async fn refresh_principal(&self, store: &Store) -> Result<(), SyncError> {
        let p = self.transport.me().await?;
        store.sync_set_principal(p).await.map_err(SyncError::from)
    }

    /// Keep syncing until `cancel`: every [`SYNC_INTERVAL`] or when poked; after a failure,
    /// back off (with jitter) so a team's devices do not hammer a hub that is down.
    pub fn spawn(&self, engine: Engine, cancel: CancellationToken) {
        let link = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            for round in 0u64.. {
                // About once a minute (and at start): roles may have changed on the hub.
                if round % 30 == 0
                    && let Err(e) = link.refresh_principal(engine.store()).await
                {
                    tracing::debug!(error = %e, "cannot refresh this device's roles from the hub");
                }
                let wait = match link.round(&engine).await {
                    Ok(report) => {
                        failures = 0;
                        if report.pushed + report.pulled > 0 {
                            tracing::info!(
                                pushed = report.pushed,
                                pulled = report.pulled,
                                hub_seq = report.cursor.hub_seq,
                                "synced with the hub"
                            );
                        }
                        SYNC_INTERVAL
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        // Capped well below the protocol's 5 minutes: a person waits for it.
                        let wait = processops_sync::client::backoff(failures).min(MAX_RETRY_WAIT);
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "sync with the hub failed; local changes wait in the outbox");
                        wait
                    }
                };
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                    () = link.poke.notified() => {}
                }
            }
        });
    }
}

/// Trigger claims through the hub, for engines that share their blueprints' triggers
/// (`processops serve --share-triggers`). A claim is a `claimed` event pushed at once; the
/// hub's verdict comes back with the same exchange. Answers are remembered, so a file another
/// engine took is not claimed again on every scan.
pub struct HubClaims {
    link: HubLink,
    store: Store,
    answered: Mutex<std::collections::HashMap<String, bool>>,
}

impl HubClaims {
    pub fn new(link: HubLink, store: Store) -> Self {
        Self {
            link,
            store,
            answered: Mutex::default(),
        }
    }

    async fn claim_now(&self, blueprint: &str, key: &str) -> Result<bool, EngineError> {
        let unanswered = |message: String| EngineError::ClaimUnanswered {
            key: key.to_owned(),
            message,
        };
        let memo = format!("{blueprint}/{key}");
        if let Some(known) = self
            .answered
            .lock()
            .ok()
            .and_then(|a| a.get(&memo).copied())
        {
            return Ok(known);
        }
        let event = self
            .store
            .sync_record(processops_sync::Change::Claimed {
                blueprint: blueprint.to_owned(),
                key: key.to_owned(),
            })
            .await?
            .ok_or_else(|| unanswered("this project is not enrolled with a hub".into()))?;
        self.link
            .exchange(&self.store)
            .await
            .map_err(|e| unanswered(e.to_string()))?;
        let held = match self.store.sync_verdict(event.id)? {
            Some(v) => v.is_accepted(),
            None => return Err(unanswered("the hub has not answered yet".into())),
        };
        if let Ok(mut answered) = self.answered.lock() {
            if answered.len() >= 10_000 {
                answered.clear(); // a memo, not a record: the hub keeps the claims
            }
            answered.insert(memo, held);
        }
        Ok(held)
    }
}

impl TriggerClaims for HubClaims {
    fn claim<'a>(
        &'a self,
        blueprint: &'a str,
        key: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, EngineError>> + Send + 'a>>
    {
        Box::pin(self.claim_now(blueprint, key))
    }
}
