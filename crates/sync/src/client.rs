//! The client: one sync round pushes the outbox and pulls the hub's log, over any transport,
//! into any replica. Every step is safe to interrupt: the next round resumes from what was
//! committed (the acknowledged sequence and the cursor), never from what was merely sent.

use std::future::Future;
use std::time::Duration;

use crate::SyncError;
use crate::replica::{Cursor, PageStep, acknowledged_after_gap, advance};
use crate::wire::{
    EnrolRequest, EnrolResponse, Event, HubErrorBody, HubEvent, MAX_PULL_EVENTS, MAX_PUSH_EVENTS,
    Principal, PullResponse, PushRequest, PushResponse, WIRE_VERSION,
};

/// Why a request to the hub failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The hub wants the device's events from `expected` on.
    #[error("the hub expects event {expected} next")]
    Gap { expected: u64 },
    /// Try again later (no connection, a timeout, a 5xx).
    #[error("the hub is unreachable: {0}")]
    Unavailable(String),
    /// The hub refused the request; retrying will not help.
    #[error("the hub refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

/// How a device reaches a hub.
pub trait Transport: Send + Sync {
    fn push(
        &self,
        request: PushRequest,
    ) -> impl Future<Output = Result<PushResponse, TransportError>> + Send;
    fn pull(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<PullResponse, TransportError>> + Send;
}

/// Where a device keeps its side: the outbox of its own events and the applied log.
pub trait LocalReplica: Send + Sync {
    /// The device's acknowledged sequence, last sequence and cursor.
    fn sync_position(&self) -> impl Future<Output = Result<Position, SyncError>> + Send;
    /// Up to `limit` own events after sequence `after`, in order.
    fn outbox(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Event>, SyncError>> + Send;
    /// The hub holds every own event up to `through`.
    fn acknowledge(&self, through: u64) -> impl Future<Output = Result<(), SyncError>> + Send;
    /// Apply pulled events and save the cursor, in one transaction; applying an event twice
    /// must change nothing.
    fn apply(
        &self,
        events: Vec<HubEvent>,
        cursor: Cursor,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;
    /// Record the outcome of a round (for the visible sync state).
    fn record_round(
        &self,
        outcome: Result<&Report, &SyncError>,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;
}

/// A device's position in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub acknowledged: u64,
    pub last_seq: u64,
    pub cursor: Cursor,
}

/// Page sizes for one round.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub push_page: usize,
    pub pull_page: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            push_page: MAX_PUSH_EVENTS,
            pull_page: MAX_PULL_EVENTS,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub pushed: u64,
    pub pulled: u64,
    pub cursor: Cursor,
    /// Own events the hub does not hold yet (0 after a clean round).
    pub pending: u64,
}

/// Push everything not yet acknowledged, then pull everything after the cursor.
pub async fn sync_once<R: LocalReplica, T: Transport>(
    replica: &R,
    transport: &T,
    options: Options,
) -> Result<Report, SyncError> {
    let result = round(replica, transport, options).await;
    replica.record_round(result.as_ref()).await?;
    result
}

async fn round<R: LocalReplica, T: Transport>(
    replica: &R,
    transport: &T,
    options: Options,
) -> Result<Report, SyncError> {
    let mut report = Report::default();
    push_all(replica, transport, options, &mut report).await?;
    pull_all(replica, transport, options, &mut report).await?;
    let position = replica.sync_position().await?;
    report.pending = position.last_seq.saturating_sub(position.acknowledged);
    report.cursor = position.cursor;
    Ok(report)
}

async fn push_all<R: LocalReplica, T: Transport>(
    replica: &R,
    transport: &T,
    options: Options,
    report: &mut Report,
) -> Result<(), SyncError> {
    // Each answer moves the acknowledgement forward (or back, after a gap); the bound stops a
    // hub that answers nonsense from looping forever.
    let position = replica.sync_position().await?;
    let mut budget = 8 + 2 * position.last_seq / (options.push_page.max(1) as u64);
    loop {
        let position = replica.sync_position().await?;
        let events = replica
            .outbox(position.acknowledged, options.push_page.max(1))
            .await?;
        if events.is_empty() {
            return Ok(());
        }
        if budget == 0 {
            return Err(SyncError::Protocol(
                "the hub keeps asking for events it was sent; sync stopped".into(),
            ));
        }
        budget -= 1;
        let sent = events.len() as u64;
        match transport
            .push(PushRequest {
                wire: WIRE_VERSION,
                events,
            })
            .await
        {
            Ok(answer) => {
                if answer.accepted_through > position.last_seq {
                    return Err(SyncError::Protocol(format!(
                        "the hub acknowledged event {} of this device, which made only {}",
                        answer.accepted_through, position.last_seq
                    )));
                }
                report.pushed += answer.results.len() as u64;
                replica.acknowledge(answer.accepted_through).await?;
                if answer.accepted_through <= position.acknowledged && sent > 0 {
                    return Err(SyncError::Protocol(
                        "the hub acknowledged nothing of a push".into(),
                    ));
                }
            }
            Err(TransportError::Gap { expected }) => {
                let held = acknowledged_after_gap(position.last_seq, expected)
                    .map_err(SyncError::Protocol)?;
                replica.acknowledge(held).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn pull_all<R: LocalReplica, T: Transport>(
    replica: &R,
    transport: &T,
    options: Options,
    report: &mut Report,
) -> Result<(), SyncError> {
    let mut rebootstraps = 0;
    loop {
        let cursor = replica.sync_position().await?.cursor;
        let page = transport
            .pull(cursor.hub_seq, options.pull_page.clamp(1, MAX_PULL_EVENTS))
            .await?;
        let more = page.more;
        match advance(cursor, page).map_err(|e| SyncError::Protocol(e.to_string()))? {
            PageStep::Apply { events, cursor } => {
                report.pulled += events.len() as u64;
                let progressed = !events.is_empty();
                replica.apply(events, cursor).await?;
                if !more {
                    return Ok(());
                }
                if !progressed {
                    return Err(SyncError::Protocol(
                        "the hub said more events follow but sent none".into(),
                    ));
                }
            }
            PageStep::Rebootstrap { epoch } => {
                rebootstraps += 1;
                if rebootstraps > 1 {
                    return Err(SyncError::Protocol(
                        "the hub changed its epoch twice in one round".into(),
                    ));
                }
                replica
                    .apply(Vec::new(), Cursor { epoch, hub_seq: 0 })
                    .await?;
            }
        }
    }
}

/// The wait before retry `attempt` (1-based): exponential from 1 s, capped at 5 minutes, with
/// full jitter so a fleet of devices coming back online does not hit the hub in step.
pub fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_secs(300);
    let base = Duration::from_secs(1)
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
        .min(cap);
    let jitter = rand::random::<f64>();
    base.mul_f64(0.5 + jitter / 2.0)
}

/// The hub over HTTP(S): `POST /v1/events`, `GET /v1/events?after=&limit=`.
#[derive(Clone)]
pub struct HttpTransport {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("HttpTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    pub fn new(base: &str, token: &str) -> Result<Self, SyncError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SyncError::Protocol(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            client,
        })
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        response: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<T, TransportError> {
        let response = response.map_err(|e| TransportError::Unavailable(without_url(&e)))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<T>()
                .await
                .map_err(|e| TransportError::Unavailable(without_url(&e)));
        }
        let body: Option<HubErrorBody> = response.json().await.ok();
        if status.as_u16() == 409
            && let Some(HubErrorBody {
                expected: Some(expected),
                ..
            }) = body
        {
            return Err(TransportError::Gap { expected });
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(TransportError::Unavailable(format!(
                "{status}: {}",
                body.map(|b| b.message).unwrap_or_default()
            )));
        }
        let body = body.unwrap_or(HubErrorBody {
            code: "unknown".into(),
            message: "the hub gave no reason".into(),
            expected: None,
        });
        Err(TransportError::Refused {
            status: status.as_u16(),
            code: body.code,
            message: body.message,
        })
    }
}

/// Enrol a device with a one-time code (`POST /v1/enrol`, the one call without a token).
pub async fn enrol(base: &str, request: &EnrolRequest) -> Result<EnrolResponse, TransportError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| TransportError::Unavailable(format!("cannot build an HTTP client: {e}")))?;
    let response = client
        .post(format!("{}/v1/enrol", base.trim_end_matches('/')))
        .json(request)
        .send()
        .await;
    HttpTransport::answer(response).await
}

/// reqwest's errors carry the URL; ours carry no query strings or tokens, but keep messages
/// short and uniform anyway.
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url") {
        e.truncate(i);
    }
    e
}

impl HttpTransport {
    /// Who the token belongs to (`GET /v1/me`): the user's current roles and scopes.
    pub async fn me(&self) -> Result<Principal, TransportError> {
        let response = self
            .client
            .get(format!("{}/v1/me", self.base))
            .bearer_auth(&self.token)
            .send()
            .await;
        Self::answer(response).await
    }
}

impl Transport for HttpTransport {
    async fn push(&self, request: PushRequest) -> Result<PushResponse, TransportError> {
        let response = self
            .client
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(&self.token)
            .json(&request)
            .send()
            .await;
        Self::answer(response).await
    }

    async fn pull(&self, after: u64, limit: u32) -> Result<PullResponse, TransportError> {
        let response = self
            .client
            .get(format!("{}/v1/events", self.base))
            .query(&[("after", after), ("limit", u64::from(limit))])
            .bearer_auth(&self.token)
            .send()
            .await;
        Self::answer(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..40 {
            let d = backoff(attempt);
            let base = 2f64
                .powi(i32::try_from(attempt.min(17)).unwrap_or(17) - 1)
                .min(300.0);
            assert!(d.as_secs_f64() >= base * 0.5 - 1e-9, "{attempt}: {d:?}");
            assert!(d.as_secs_f64() <= base + 1e-9, "{attempt}: {d:?}");
        }
    }
}
