//! TypeScript declarations of the API's types for the UI (`ui/src/api/types.gen.ts`),
//! generated from these Rust types so the two never drift; a test fails when the committed
//! file is stale.

use processops_core::journal::{Action, Decision, Exchange, StepMeta, Task, TaskPolicy};
use processops_core::metrics::{
    DecisionMix, Drift, DriftComponent, Escalation, PromptMix, Ratio, Summary,
};
use processops_core::timeline::{StepStatus, TimelineStep};
use processops_store::{Drill, DrillRow};
use ts_rs::TS;

use crate::dto::*;
use crate::feedback::*;
use crate::metrics::*;
use crate::versions::*;
use processops_core::blueprint::diff::{Area, ChangeKind, DiffEntry, DiffLine};
use processops_core::gate::{GateCase, GateReport};

/// The whole `types.gen.ts` file.
pub fn typescript_bindings() -> String {
    // Times are Unix milliseconds: well inside a JavaScript number.
    let cfg = ts_rs::Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types of crates/api and crates/core by\n\
         // `PROCESSOPS_BLESS=1 cargo test -p processops-api --test committed`. Do not edit.\n\n",
    );
    macro_rules! declare {
        ($($t:ty),* $(,)?) => {$(
            out.push_str("export ");
            out.push_str(&<$t as TS>::decl(&cfg));
            out.push_str("\n\n");
        )*};
    }
    declare!(
        serde_json::Value,
        Health,
        Me,
        UserDto,
        BlueprintSummary,
        TriggerSummary,
        DiagnosticDto,
        LoadProblemDto,
        ValidationReport,
        ValidateRequest,
        BlueprintSource,
        SaveBlueprintRequest,
        SaveBlueprintResponse,
        DryRunRequest,
        DryRunReport,
        StartRunRequest,
        StartRunResponse,
        RunsQuery,
        TasksQuery,
        QueueQuery,
        FeedbackQuery,
        RunSummary,
        RunDetail,
        StepStatus,
        TimelineStep,
        StepMeta,
        Exchange,
        TaskSummary,
        TaskDetail,
        Task,
        TaskPolicy,
        Action,
        Decision,
        DecisionRequest,
        DecisionResponse,
        SyncStatusDto,
        ConflictDto,
        ResolveRequest,
        EnrolHubRequest,
        ClaimRequest,
        WebhookResponse,
        TagRequest,
        UntagRequest,
        OutputFeedback,
        TagResponse,
        QueueItem,
        EvalProgress,
        ProviderView,
        AgentView,
        SettingsView,
        StoreKeyRequest,
        MetricsQuery,
        MetricRunsQuery,
        MetricsReport,
        BlueprintMetrics,
        VersionMetrics,
        DayMetrics,
        Summary,
        Ratio,
        PromptMix,
        DecisionMix,
        Escalation,
        Drift,
        DriftComponent,
        DriftAlert,
        AlertsQuery,
        Drill,
        DrillRow,
        VersionsQuery,
        VersionInfo,
        StageChangeDto,
        BlueprintVersions,
        ProposeRequest,
        StageRequest,
        RollbackRequest,
        DiffQuery,
        GateRequest,
        GateReport,
        GateCase,
        VersionDiff,
        DiffEntry,
        DiffLine,
        Area,
        ChangeKind,
    );
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}
