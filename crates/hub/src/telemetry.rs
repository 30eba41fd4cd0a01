//! The hub's Prometheus metrics (`GET /metrics`, OpenMetrics text): requests and push outcomes
//! counted by this process, teams' devices, events and conflicts read from the store at each
//! scrape (so every hub process over one PostgreSQL database reports the same team totals).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use processops_sync::{PushResponse, Verdict};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::HubError;
use crate::store::TeamStats;

/// The content type of the metrics' text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/v1/devices/{id}/revoke`), never the raw path.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    team: String,
    /// `accepted`, `conflict` or `ignored`: the hub's verdict on a stored event.
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    team: String,
    /// The error code of the refused push (`sequence_gap`, `forbidden`, …).
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Team {
    team: String,
}

/// What this hub process counted. One per [`crate::Hub`], shared by its clones.
#[derive(Debug, Default)]
pub struct HubMeters {
    requests: Family<RequestLabels, Counter>,
    events: Family<EventLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    /// When this process last stored an event of each team.
    last_event: Mutex<HashMap<String, Instant>>,
}

impl HubMeters {
    /// One HTTP request answered.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// A push of `sent` events by a device of `team`, and what became of it.
    pub fn pushed(&self, team: &str, sent: usize, outcome: &Result<PushResponse, HubError>) {
        match outcome {
            Ok(response) => {
                for r in &response.results {
                    let verdict = match r.verdict {
                        Verdict::Accepted => "accepted",
                        Verdict::Conflict { .. } => "conflict",
                        Verdict::Ignored { .. } => "ignored",
                    };
                    self.events
                        .get_or_create(&EventLabels {
                            team: team.to_owned(),
                            verdict: verdict.to_owned(),
                        })
                        .inc();
                }
                if !response.results.is_empty()
                    && let Ok(mut last) = self.last_event.lock()
                {
                    last.insert(team.to_owned(), Instant::now());
                }
            }
            Err(e) => {
                self.refused
                    .get_or_create(&RefusedLabels {
                        team: team.to_owned(),
                        code: e.code().to_owned(),
                    })
                    .inc_by(u64::try_from(sent).unwrap_or(u64::MAX));
            }
        }
    }

    /// The metrics' text, with the teams' counts read from the store.
    pub fn render(&self, teams: &[TeamStats]) -> Result<String, HubError> {
        let mut r = Registry::with_prefix("processops_hub");
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            self.requests.clone(),
        );
        r.register(
            "events",
            "Events stored by this hub process, by team and verdict",
            self.events.clone(),
        );
        r.register(
            "events_refused",
            "Events in pushes this hub process refused, by team and error code",
            self.refused.clone(),
        );
        // Read per scrape, so fresh gauges: a team that disappeared leaves no stale series.
        let devices = Family::<Team, Gauge>::default();
        let events = Family::<Team, Counter>::default();
        let conflicts = Family::<Team, Counter>::default();
        let open = Family::<Team, Gauge>::default();
        for t in teams {
            let team = Team {
                team: t.team.clone(),
            };
            devices.get_or_create(&team).set(gauge(t.devices));
            events.get_or_create(&team).inc_by(t.events);
            conflicts.get_or_create(&team).inc_by(t.conflicts);
            open.get_or_create(&team).set(gauge(t.open_conflicts));
        }
        r.register(
            "devices",
            "Enrolled devices (not revoked), by team",
            devices,
        );
        r.register(
            "team_events",
            "Events the team's log holds (every hub process)",
            events,
        );
        r.register("conflicts", "Conflicts ever recorded, by team", conflicts);
        r.register(
            "open_conflicts",
            "Conflicts nobody has resolved, by team",
            open,
        );
        let age = Family::<Team, Gauge<f64, AtomicU64>>::default();
        if let Ok(last) = self.last_event.lock() {
            for (team, at) in last.iter() {
                age.get_or_create(&Team { team: team.clone() })
                    .set(at.elapsed().as_secs_f64());
            }
        }
        r.register_with_unit(
            "last_event_age",
            "Time since this hub process last stored an event of the team",
            Unit::Seconds,
            age,
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r)
            .map_err(|e| HubError::Storage(format!("cannot encode the metrics: {e}")))?;
        Ok(text)
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
