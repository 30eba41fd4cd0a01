//! The hub's operations: authentication, enrolment and administration, push and pull. The
//! HTTP handlers call exactly one of these each.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use processops_sync::{
    EnrolRequest, EnrolResponse, Event, MAX_PULL_EVENTS, MAX_PUSH_EVENTS, Principal, PullResponse,
    PushRequest, PushResponse, Role, WIRE_VERSION,
};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::HubError;
use crate::store::{
    AnyStore, DeviceRecord, HubStore, NewDevice, PushOutcome, Result, UserRecord, now_ms,
};

/// How long an enrolment code stays valid.
pub const ENROLMENT_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Limits, per client address.
#[derive(Debug, Clone, Copy)]
pub struct HubOptions {
    /// Enrolment attempts per minute.
    pub enrolments_per_minute: u32,
    /// Requests with a bad token per minute (then 429 instead of 401).
    pub failed_logins_per_minute: u32,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            enrolments_per_minute: 10,
            failed_logins_per_minute: 30,
        }
    }
}

/// A one-time enrolment code, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrolCode {
    pub team: String,
    pub user: String,
    pub code: String,
    pub expires_at: i64,
}

/// The hub service. Cheap to clone; one per process, several processes per database.
#[derive(Clone)]
pub struct Hub {
    store: Arc<AnyStore>,
    enrol_limit: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    login_limit: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    meters: Arc<crate::telemetry::HubMeters>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// SHA-256 of a secret. Tokens and codes are long random strings, so a fast hash is enough:
/// there is nothing to brute-force from a leaked hash (a password would need a slow one).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("poh_{}", hex::encode(bytes))
}

/// Ten characters from an alphabet without look-alikes, grouped for reading aloud.
fn random_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
    let mut rng = rand::rng();
    let chars: String = (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

fn normalise_code(code: &str) -> String {
    code.trim().to_ascii_uppercase().replace(' ', "")
}

fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(HubError::Invalid(format!(
            "{what} `{name}`: use 1–64 letters, digits, `-`, `_`, `.` or `@`"
        )))
    }
}

impl Hub {
    pub fn new(store: AnyStore, options: HubOptions) -> Self {
        Self {
            store: Arc::new(store),
            enrol_limit: Arc::new(RateLimiter::keyed(per_minute(
                options.enrolments_per_minute,
            ))),
            login_limit: Arc::new(RateLimiter::keyed(per_minute(
                options.failed_logins_per_minute,
            ))),
            meters: Arc::default(),
        }
    }

    /// What this process counts for `/metrics` (requests are counted by the HTTP layer).
    pub fn meters(&self) -> &crate::telemetry::HubMeters {
        &self.meters
    }

    /// `/metrics`: this process's counters and every team's counts from the store.
    pub async fn metrics_text(&self) -> Result<String> {
        let teams = self.store.stats().await?;
        self.meters.render(&teams)
    }

    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    /// Who holds this bearer token. Failed attempts count towards the address's login limit.
    pub async fn authenticate(&self, bearer: Option<&str>, from: IpAddr) -> Result<Principal> {
        let failed = |message: &str| {
            if self.login_limit.check_key(&from).is_err() {
                HubError::RateLimited
            } else {
                HubError::Unauthorized(message.to_owned())
            }
        };
        let Some(token) = bearer.filter(|t| !t.is_empty()) else {
            return Err(failed(
                "this request needs `Authorization: Bearer <device token>`; enrol the device with `processops hub enrol`",
            ));
        };
        match self.store.principal(&secret_hash(token)).await? {
            Some(p) => Ok(p),
            None => Err(failed(
                "this token is unknown or revoked; enrol the device again",
            )),
        }
    }

    /// Bootstrap (run on the hub's machine, no token): create a team and its first admin, and
    /// return the admin's enrolment code.
    pub async fn create_team(&self, team: &str, admin: &str) -> Result<EnrolCode> {
        check_name("team", team)?;
        check_name("user", admin)?;
        self.store.create_team(team).await?;
        self.store
            .put_user(
                team,
                &UserRecord {
                    name: admin.to_owned(),
                    roles: Role::ALL.to_vec(),
                    scopes: vec!["*".into()],
                },
            )
            .await?;
        self.issue_code(team, admin).await
    }

    async fn issue_code(&self, team: &str, user: &str) -> Result<EnrolCode> {
        let code = random_code();
        let expires_at = now_ms() + ENROLMENT_TTL_MS;
        self.store
            .add_enrolment(team, user, &secret_hash(&normalise_code(&code)), expires_at)
            .await?;
        Ok(EnrolCode {
            team: team.to_owned(),
            user: user.to_owned(),
            code,
            expires_at,
        })
    }

    fn admin(p: &Principal) -> Result<()> {
        if p.has(Role::Admin) {
            Ok(())
        } else {
            Err(HubError::Forbidden(format!(
                "`{}` is not an admin of team `{}`",
                p.user, p.team
            )))
        }
    }

    /// Admin: create or change a user of the caller's team (local bootstrap passes `None`).
    pub async fn put_user(
        &self,
        p: Option<&Principal>,
        team: &str,
        user: UserRecord,
    ) -> Result<UserRecord> {
        if let Some(p) = p {
            Self::admin(p)?;
        }
        check_name("user", &user.name)?;
        for scope in &user.scopes {
            if scope != "*" {
                check_name("scope", scope)?;
            }
        }
        self.store.put_user(team, &user).await?;
        Ok(user)
    }

    pub async fn users(&self, p: &Principal) -> Result<Vec<UserRecord>> {
        Self::admin(p)?;
        self.store.users(&p.team).await
    }

    /// Admin: a one-time enrolment code for a user of the caller's team.
    pub async fn enrolment(
        &self,
        p: Option<&Principal>,
        team: &str,
        user: &str,
    ) -> Result<EnrolCode> {
        if let Some(p) = p {
            Self::admin(p)?;
        }
        self.issue_code(team, user).await
    }

    pub async fn devices(&self, p: &Principal) -> Result<Vec<DeviceRecord>> {
        Self::admin(p)?;
        self.store.devices(&p.team).await
    }

    /// Admin: start a new epoch (after restoring the hub from a backup). Every device pulls
    /// the whole log again on its next round, and re-sends the events the hub lost (devices
    /// keep their outbox). Returns the new epoch.
    pub async fn new_epoch(&self, p: Option<&Principal>, team: &str) -> Result<u64> {
        if let Some(p) = p {
            Self::admin(p)?;
        }
        self.store.bump_epoch(team).await
    }

    /// Admin: revoke a device's token; its next request is refused.
    pub async fn revoke(&self, p: Option<&Principal>, team: &str, device: Uuid) -> Result<()> {
        if let Some(p) = p {
            Self::admin(p)?;
        }
        if self.store.revoke_device(team, device, now_ms()).await? {
            Ok(())
        } else {
            Err(HubError::NotFound(format!(
                "team `{team}` has no device {device}"
            )))
        }
    }

    /// Spend an enrolment code: the device gets a token (stored here only as a hash).
    pub async fn enrol(&self, request: EnrolRequest, from: IpAddr) -> Result<EnrolResponse> {
        if self.enrol_limit.check_key(&from).is_err() {
            return Err(HubError::RateLimited);
        }
        let name = request.device_name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(HubError::Invalid(
                "name the device (1–100 characters), e.g. \"Ana's laptop\"".into(),
            ));
        }
        let token = random_token();
        let device = NewDevice {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            token_hash: secret_hash(&token),
        };
        let principal = self
            .store
            .redeem_enrolment(
                &secret_hash(&normalise_code(&request.code)),
                &device,
                now_ms(),
            )
            .await?
            .ok_or_else(|| {
                HubError::Unauthorized(
                    "this enrolment code is unknown, used or expired; ask an admin for a new one"
                        .into(),
                )
            })?;
        Ok(EnrolResponse {
            team: principal.team,
            user: principal.user,
            roles: principal.roles,
            scopes: principal.scopes,
            device: device.id,
            token,
        })
    }

    /// Store the caller's events (idempotent; a gap is refused with the expected number).
    pub async fn push(&self, p: &Principal, request: PushRequest) -> Result<PushResponse> {
        let sent = request.events.len();
        let outcome = self.store_events(p, request).await;
        self.meters.pushed(&p.team, sent, &outcome);
        outcome
    }

    async fn store_events(&self, p: &Principal, request: PushRequest) -> Result<PushResponse> {
        if request.wire != WIRE_VERSION {
            return Err(HubError::Invalid(format!(
                "this hub speaks sync protocol {WIRE_VERSION}, the device sent {}; update the older side",
                request.wire
            )));
        }
        if request.events.len() > MAX_PUSH_EVENTS {
            return Err(HubError::Invalid(format!(
                "at most {MAX_PUSH_EVENTS} events per push"
            )));
        }
        check_events(&request.events)?;
        match self.store.push(p, request.events).await? {
            PushOutcome::Stored(response) => Ok(response),
            PushOutcome::Gap { expected } => Err(HubError::Gap { expected }),
        }
    }

    /// The caller's team's events after `after`, in hub order.
    pub async fn pull(
        &self,
        p: &Principal,
        after: u64,
        limit: Option<u32>,
    ) -> Result<PullResponse> {
        let limit = limit.unwrap_or(MAX_PULL_EVENTS).clamp(1, MAX_PULL_EVENTS);
        self.store.pull(&p.team, after, limit).await
    }
}

/// Shape checks that need nothing stored.
fn check_events(events: &[Event]) -> Result<()> {
    for e in events {
        if e.id.get_version_num() != 7 {
            return Err(HubError::Invalid(format!(
                "event {} must have a UUIDv7 id",
                e.id
            )));
        }
    }
    Ok(())
}
