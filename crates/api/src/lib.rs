//! The one service API of ProcessOps. The HTTP server (`http`), the CLI and the desktop app
//! call [`Service`]; transports stay thin: parse, call one service function, map the result.

mod designer;
mod dto;
mod error;
mod feedback;
pub mod http;
pub mod hub;
pub mod local;
mod metrics;
mod service;
pub mod telemetry;
mod typescript;
mod versions;
mod workspace;

pub use dto::*;
pub use error::ApiError;
pub use feedback::{
    AgreementQuery, AgreementReport, EVALUATION_FILE, Export, ExportFormat, ExportQuery,
    FeedbackQuery, OutputFeedback, QueueItem, QueueQuery, TagAgreementDto, TagRequest, TagResponse,
    UntagRequest, load_taxonomy,
};
pub use metrics::{
    AlertsQuery, BlueprintMetrics, DayMetrics, DriftAlert, MetricRunsQuery, MetricsQuery,
    MetricsReport, VersionMetrics,
};
pub use processops_core::gate::{GateCase, GateReport};
pub use processops_store::{Drill, DrillRow};
pub use service::{ProjectInfo, Service};
pub use typescript::typescript_bindings;
pub use versions::{
    BlueprintVersions, DiffQuery, GateRequest, ProposeRequest, RollbackRequest, StageChangeDto,
    StageRequest, VersionDiff, VersionInfo, VersionsQuery,
};
