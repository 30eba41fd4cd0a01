//! The ProcessOps metrics per blueprint and version, with drift, day-by-day series and the runs
//! behind each number (the math is `processops_core::metrics`, the counters the store's).

use std::collections::BTreeMap;

use processops_core::metrics::{
    self, Counts, Drift, DriftOptions, Summary, day_date, day_of, merge, parse_day, summarize,
};
use processops_store::{Drill, DrillRow, MetricsWindow, VersionCounts};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::service::{Service, resolve};

/// Query of `GET /api/metrics`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ts_rs::TS)]
#[into_params(parameter_in = Query)]
#[ts(optional_fields)]
pub struct MetricsQuery {
    pub blueprint: Option<String>,
    /// Blueprint version (content hash, or a prefix of at least 4 characters).
    pub version: Option<String>,
    /// First day: a date (2026-11-01), `today`, or a span back from today (`30d`, `4w`).
    /// Default: 30 days before `until`.
    pub since: Option<String>,
    /// Last day, included; same forms as `since`. Default: today.
    pub until: Option<String>,
    /// Days at the end of the window compared against the baseline for drift (default 7).
    pub recent_days: Option<u32>,
    /// Days before the recent ones that drift compares against (default 28).
    pub baseline_days: Option<u32>,
}

/// The five metrics and drift of one blueprint version over the window.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct VersionMetrics {
    pub version: String,
    /// First and last day (`2026-11-01`) with activity in the window.
    pub first_day: String,
    pub last_day: String,
    #[schema(value_type = Object)]
    pub summary: Summary,
    #[schema(value_type = Object)]
    pub drift: Drift,
}

/// A blueprint's metrics, all its versions together and each version side by side.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct BlueprintMetrics {
    pub blueprint: String,
    /// Its display name, when the blueprint is still in the project.
    pub name: Option<String>,
    #[schema(value_type = Object)]
    pub summary: Summary,
    #[schema(value_type = Object)]
    pub drift: Drift,
    /// Newest activity first.
    pub versions: Vec<VersionMetrics>,
}

/// One day of the window, every selected blueprint together.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct DayMetrics {
    pub day: String,
    #[schema(value_type = Object)]
    pub summary: Summary,
}

/// `GET /api/metrics`.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct MetricsReport {
    /// The window, both days included.
    pub since: String,
    pub until: String,
    /// The drift windows: recent days against the baseline days before them.
    pub recent_since: String,
    pub baseline_since: String,
    #[schema(value_type = Object)]
    pub total: Summary,
    /// Most runs first.
    pub blueprints: Vec<BlueprintMetrics>,
    pub series: Vec<DayMetrics>,
}

/// Query of `GET /api/metrics/runs`.
#[derive(Debug, Clone, Deserialize, IntoParams, ts_rs::TS)]
#[into_params(parameter_in = Query)]
#[ts(optional_fields)]
pub struct MetricRunsQuery {
    /// Which number to explain: overrides, automated, touched, prompt_issues, escalated,
    /// breached, slowest or failed.
    pub metric: String,
    pub blueprint: Option<String>,
    pub version: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// At most this many runs (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The resolved window of a query: [since, until) in days, plus the drift windows.
#[derive(Debug)]
struct Window {
    since: i64,
    until: i64,
    recent: i64,
    baseline: i64,
}

fn window(
    since: Option<&str>,
    until: Option<&str>,
    recent_days: Option<u32>,
    baseline_days: Option<u32>,
    today: i64,
) -> Result<Window, ApiError> {
    let parse = |what: &str, text: &str| {
        parse_day(text, today).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
    };
    let until = match until {
        Some(t) => parse("until", t)? + 1,
        None => today + 1,
    };
    let since = match since {
        Some(t) => parse("since", t)?,
        None => until - 30,
    };
    if since >= until {
        return Err(ApiError::bad_request(format!(
            "the window is empty: since {} is after until {}; pick an earlier `since`",
            day_date(since),
            day_date(until - 1)
        )));
    }
    let recent = i64::from(recent_days.unwrap_or(7).max(1));
    let baseline = i64::from(baseline_days.unwrap_or(28).max(1));
    Ok(Window {
        since,
        until,
        recent: until - recent,
        baseline: until - recent - baseline,
    })
}

fn by_version(rows: Vec<VersionCounts>) -> BTreeMap<(String, String), Counts> {
    rows.into_iter()
        .map(|r| ((r.blueprint, r.version), r.counts))
        .collect()
}

impl Service {
    /// A version hash as typed: whole, or a unique prefix of at least 4 characters.
    pub(crate) fn metrics_version(
        &self,
        version: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        match version {
            None => Ok(None),
            Some(v) if v.len() >= 64 => Ok(Some(v.to_owned())),
            Some(v) if v.len() < 4 => Err(ApiError::bad_request(
                "give at least 4 characters of the version hash".to_owned(),
            )),
            Some(v) => {
                let found = self.engine().store().resolve_version_prefix(v)?;
                resolve(v, "version", &found).map(Some)
            }
        }
    }

    /// The metrics of a window: per blueprint, per version, day by day, with drift.
    pub fn metrics(&self, q: &MetricsQuery) -> Result<MetricsReport, ApiError> {
        let today = day_of(processops_store::now_ms());
        let w = window(
            q.since.as_deref(),
            q.until.as_deref(),
            q.recent_days,
            q.baseline_days,
            today,
        )?;
        let store = self.engine().store();
        let select = |since, until| MetricsWindow {
            blueprint: q.blueprint.clone(),
            version: None,
            since_day: Some(since),
            until_day: Some(until),
        };
        let mut selected = select(w.since, w.until);
        selected.version = self.metrics_version(q.version.as_deref())?;
        let counts = store.metric_counts(&selected)?;
        let recent = by_version(store.metric_counts(&MetricsWindow {
            version: selected.version.clone(),
            ..select(w.recent, w.until)
        })?);
        let baseline = by_version(store.metric_counts(&MetricsWindow {
            version: selected.version.clone(),
            ..select(w.baseline, w.recent)
        })?);
        let names: BTreeMap<String, String> = self
            .blueprints()
            .into_iter()
            .map(|b| (b.id, b.name))
            .collect();
        let options = DriftOptions::default();
        let empty = Counts::new();

        let mut total = Counts::new();
        let mut blueprints: BTreeMap<String, (Counts, Counts, Counts, Vec<VersionMetrics>)> =
            BTreeMap::new();
        for row in counts {
            let key = (row.blueprint.clone(), row.version.clone());
            let r = recent.get(&key).unwrap_or(&empty);
            let b = baseline.get(&key).unwrap_or(&empty);
            merge(&mut total, &row.counts);
            let entry = blueprints.entry(row.blueprint.clone()).or_default();
            merge(&mut entry.0, &row.counts);
            merge(&mut entry.1, r);
            merge(&mut entry.2, b);
            entry.3.push(VersionMetrics {
                version: row.version,
                first_day: day_date(row.first_day),
                last_day: day_date(row.last_day),
                summary: summarize(&row.counts),
                drift: metrics::drift(b, r, options),
            });
        }
        let mut blueprints: Vec<BlueprintMetrics> = blueprints
            .into_iter()
            .map(|(blueprint, (all, r, b, mut versions))| {
                versions.sort_by(|x, y| {
                    y.last_day
                        .cmp(&x.last_day)
                        .then(y.first_day.cmp(&x.first_day))
                });
                BlueprintMetrics {
                    name: names.get(&blueprint).cloned(),
                    blueprint,
                    summary: summarize(&all),
                    drift: metrics::drift(&b, &r, options),
                    versions,
                }
            })
            .collect();
        blueprints.sort_by(|a, b| {
            b.summary
                .runs_started
                .total_cmp(&a.summary.runs_started)
                .then_with(|| a.blueprint.cmp(&b.blueprint))
        });
        let series = store
            .metric_series(&selected)?
            .into_iter()
            .map(|(day, counts)| DayMetrics {
                day: day_date(day),
                summary: summarize(&counts),
            })
            .collect();
        Ok(MetricsReport {
            since: day_date(w.since),
            until: day_date(w.until - 1),
            recent_since: day_date(w.recent),
            baseline_since: day_date(w.baseline),
            total: summarize(&total),
            blueprints,
            series,
        })
    }

    /// The runs behind one of the numbers.
    pub fn metric_runs(&self, q: &MetricRunsQuery) -> Result<Vec<DrillRow>, ApiError> {
        let drill = Drill::parse(&q.metric).ok_or_else(|| {
            let known: Vec<&str> = Drill::ALL.iter().map(|d| d.as_str()).collect();
            ApiError::bad_request(format!(
                "unknown metric `{}`; use one of: {}",
                q.metric,
                known.join(", ")
            ))
        })?;
        let today = day_of(processops_store::now_ms());
        let w = window(q.since.as_deref(), q.until.as_deref(), None, None, today)?;
        let selected = MetricsWindow {
            blueprint: q.blueprint.clone(),
            version: self.metrics_version(q.version.as_deref())?,
            since_day: Some(w.since),
            until_day: Some(w.until),
        };
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        Ok(self.engine().store().metric_runs(&selected, drill, limit)?)
    }

    /// Recompute the counters from the journal; returns the events replayed.
    pub async fn rebuild_metrics(&self) -> Result<u64, ApiError> {
        Ok(self.engine().store().rebuild_metrics().await?)
    }
}

/// How long a drifting version stays quiet after an alert: once a week, not on every check.
const DRIFT_ALERT_QUIET_MS: i64 = 7 * 86_400_000;

/// A version whose drift index crossed the threshold, and the owner it was sent to.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct DriftAlert {
    pub id: i64,
    pub blueprint: String,
    pub version: String,
    pub drift: f64,
    /// decisions, tags, output_length or prompt_failures: what moved most.
    pub component: String,
    /// The blueprint's `lifecycle.owner` (a person or a role); null when it names none.
    pub owner: Option<String>,
    pub at: i64,
}

/// Query of `GET /api/alerts`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ts_rs::TS)]
#[into_params(parameter_in = Query)]
#[ts(optional_fields)]
pub struct AlertsQuery {
    /// Only alerts this person owns (by name or by one of their roles).
    pub owner: Option<String>,
    /// Since this time (Unix ms); default the last 30 days.
    pub since: Option<i64>,
}

impl From<processops_store::DriftAlertRow> for DriftAlert {
    fn from(r: processops_store::DriftAlertRow) -> Self {
        Self {
            id: r.id,
            blueprint: r.blueprint_id,
            version: r.version,
            drift: r.drift,
            component: r.component,
            owner: r.owner,
            at: r.at,
        }
    }
}

impl Service {
    /// Compare every version's recent days with its baseline and alert the owner of each
    /// newly drifting one (once per quiet period). Returns the alerts sent now.
    pub async fn check_drift(&self) -> Result<Vec<DriftAlert>, ApiError> {
        let report = self.metrics(&MetricsQuery::default())?;
        let mut sent = Vec::new();
        for b in &report.blueprints {
            for v in b.versions.iter().filter(|v| v.drift.flagged) {
                let Some(drift) = v.drift.index else { continue };
                let component = v
                    .drift
                    .components
                    .iter()
                    .filter_map(|c| c.psi.map(|p| (p, c.name.clone())))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, name)| name)
                    .unwrap_or_default();
                // The version's own owner; a version no longer stored falls back to the file's.
                let owner = self
                    .engine()
                    .version(&v.version)
                    .ok()
                    .or_else(|| self.engine().registry().get(&b.blueprint))
                    .and_then(|c| c.blueprint.lifecycle.owner.clone());
                let alert = processops_store::NewDriftAlert {
                    blueprint_id: b.blueprint.clone(),
                    version: v.version.clone(),
                    drift,
                    component,
                    owner,
                };
                if let Some(row) = self
                    .engine()
                    .store()
                    .record_drift_alert(alert, DRIFT_ALERT_QUIET_MS)
                    .await?
                {
                    tracing::warn!(
                        blueprint = %row.blueprint_id, version = %row.version, drift = row.drift,
                        owner = row.owner.as_deref().unwrap_or("-"), "process drift flagged"
                    );
                    sent.push(row.into());
                }
            }
        }
        Ok(sent)
    }

    /// Drift alerts, newest first; `owner` keeps those addressed to a person or their roles.
    pub fn drift_alerts(&self, q: &AlertsQuery) -> Result<Vec<DriftAlert>, ApiError> {
        let since = q
            .since
            .unwrap_or_else(|| processops_store::now_ms() - 30 * 86_400_000);
        let rows = self.engine().store().drift_alerts(since, 1000)?;
        let directory = self.engine().directory();
        let addressed = |owner: &Option<String>| match (&q.owner, owner) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(me), Some(owner)) => {
                me == owner
                    || directory
                        .roles(me)
                        .is_some_and(|roles| roles.iter().any(|r| r == owner))
            }
        };
        Ok(rows
            .into_iter()
            .filter(|r| addressed(&r.owner))
            .map(Into::into)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn windows_from_queries() {
        let today = 20_417;
        let w = window(None, None, None, None, today).unwrap();
        assert_eq!(
            (w.since, w.until, w.recent, w.baseline),
            (today - 29, today + 1, today - 6, today - 34)
        );
        let w = window(Some("7d"), Some("yesterday"), Some(2), Some(3), today).unwrap();
        assert_eq!(
            (w.since, w.until, w.recent, w.baseline),
            (today - 6, today, today - 2, today - 5)
        );
        let err = window(Some("today"), Some("8d"), None, None, today).unwrap_err();
        assert!(
            err.message.contains("the window is empty"),
            "{}",
            err.message
        );
        let err = window(Some("soon"), None, None, None, today).unwrap_err();
        assert!(err.message.starts_with("since:"), "{}", err.message);
    }
}
