// The service API as the UI sees it: one function per operation, each described once for
// both transports (see transport.ts). Types are generated from the Rust DTOs (types.gen.ts).
import type {
  BlueprintSource,
  BlueprintSummary,
  ClaimRequest,
  ConflictDto,
  DecisionRequest,
  DecisionResponse,
  DryRunReport,
  DryRunRequest,
  EnrolHubRequest,
  EvalProgress,
  FeedbackQuery,
  GateReport,
  GateRequest,
  Health,
  Me,
  OutputFeedback,
  QueueItem,
  QueueQuery,
  RunDetail,
  RunSummary,
  RunsQuery,
  SaveBlueprintRequest,
  SaveBlueprintResponse,
  SettingsView,
  StartRunRequest,
  StartRunResponse,
  StoreKeyRequest,
  SyncStatusDto,
  TagRequest,
  TagResponse,
  TaskDetail,
  TaskSummary,
  TasksQuery,
  UntagRequest,
  ValidationReport,
} from "./types.gen";
import type { DrillRow, MetricRunsQuery, MetricsQuery, MetricsReport } from "./types.gen";
import type {
  BlueprintVersions,
  DiffQuery,
  ProposeRequest,
  RollbackRequest,
  StageRequest,
  VersionDiff,
  VersionInfo,
} from "./types.gen";
import { httpTransport, isTauri, tauriTransport, type Transport } from "./transport";

// Query types are generated too; re-exported for the screens.
export type { DiffQuery, FeedbackQuery, MetricRunsQuery, MetricsQuery, QueueQuery, RunsQuery, TasksQuery };

const enc = encodeURIComponent;

export function createClient(transport: Transport) {
  const t = transport;
  return {
    transport: t.kind,
    health: () => t.send<Health>({ command: "health", method: "GET", path: "/healthz" }),
    me: () => t.send<Me>({ command: "me", method: "GET", path: "/api/me" }),
    settings: () => t.send<SettingsView>({ command: "settings", method: "GET", path: "/api/settings" }),
    storeKey: (req: StoreKeyRequest) =>
      t.send<void>({ command: "store_key", args: { request: req }, method: "POST", path: "/api/settings/keys", body: req }),

    blueprints: () =>
      t.send<BlueprintSummary[]>({ command: "list_blueprints", method: "GET", path: "/api/blueprints" }),
    blueprintSource: (id: string) =>
      t.send<BlueprintSource>({ command: "blueprint_source", args: { id }, method: "GET", path: `/api/blueprints/${enc(id)}/source` }),
    saveBlueprint: (id: string, req: SaveBlueprintRequest) =>
      t.send<SaveBlueprintResponse>({ command: "save_blueprint", args: { id, request: req }, method: "PUT", path: `/api/blueprints/${enc(id)}/source`, body: req }),
    createBlueprint: (req: SaveBlueprintRequest) =>
      t.send<SaveBlueprintResponse>({ command: "create_blueprint", args: { request: req }, method: "POST", path: "/api/blueprints", body: req }),
    blueprintSchema: () =>
      t.send<Record<string, unknown>>({ command: "blueprint_schema", method: "GET", path: "/api/blueprint-schema" }),
    validate: (source: string) =>
      t.send<ValidationReport>({ command: "validate", args: { request: { source } }, method: "POST", path: "/api/validate", body: { source } }),
    dryRun: (req: DryRunRequest) =>
      t.send<DryRunReport>({ command: "dry_run", args: { request: req }, method: "POST", path: "/api/dry-run", body: req }),

    runs: (q: RunsQuery = {}) =>
      t.send<RunSummary[]>({ command: "list_runs", args: { query: q }, method: "GET", path: "/api/runs", query: { ...q } }),
    run: (id: string) =>
      t.send<RunDetail>({ command: "get_run", args: { id }, method: "GET", path: `/api/runs/${enc(id)}` }),
    startRun: (req: StartRunRequest) =>
      t.send<StartRunResponse>({ command: "start_run", args: { request: req }, method: "POST", path: "/api/runs", body: req }),
    retryRun: (id: string) =>
      t.send<RunSummary>({ command: "retry_run", args: { id }, method: "POST", path: `/api/runs/${enc(id)}/retry` }),

    tasks: (q: TasksQuery = {}) =>
      t.send<TaskSummary[]>({ command: "list_tasks", args: { query: q }, method: "GET", path: "/api/tasks", query: { ...q } }),
    task: (id: string) =>
      t.send<TaskDetail>({ command: "get_task", args: { id }, method: "GET", path: `/api/tasks/${enc(id)}` }),
    decide: (id: string, req: DecisionRequest) =>
      t.send<DecisionResponse>({ command: "decide", args: { id, request: req }, method: "POST", path: `/api/tasks/${enc(id)}/decision`, body: req }),
    claim: (id: string, req: ClaimRequest) =>
      t.send<TaskSummary>({ command: "claim", args: { id, request: req }, method: "POST", path: `/api/tasks/${enc(id)}/claim`, body: req }),
    unclaim: (id: string, req: ClaimRequest) =>
      t.send<TaskSummary>({ command: "unclaim", args: { id, request: req }, method: "POST", path: `/api/tasks/${enc(id)}/unclaim`, body: req }),

    taskConflicts: (id: string) =>
      t.send<ConflictDto[]>({ command: "task_conflicts", args: { id }, method: "GET", path: `/api/tasks/${enc(id)}/conflicts` }),
    resolveConflict: (id: string, note: string | null) =>
      t.send<ConflictDto>({ command: "resolve_conflict", args: { id, request: { note } }, method: "POST", path: `/api/conflicts/${enc(id)}/resolve`, body: { note } }),
    syncStatus: () => t.send<SyncStatusDto>({ command: "sync_status", method: "GET", path: "/api/sync" }),
    syncNow: () => t.send<SyncStatusDto>({ command: "sync_now", method: "POST", path: "/api/sync" }),
    enrolHub: (req: EnrolHubRequest) =>
      t.send<SyncStatusDto>({ command: "enrol_hub", args: { request: req }, method: "POST", path: "/api/sync/enrol", body: req }),

    evalQueue: (q: QueueQuery) =>
      t.send<QueueItem[]>({ command: "eval_queue", args: { query: q }, method: "GET", path: "/api/eval/queue", query: { ...q } }),
    evalProgress: (blueprint?: string) =>
      t.send<EvalProgress[]>({ command: "eval_progress", args: { blueprint: blueprint ?? null }, method: "GET", path: "/api/eval/progress", query: { blueprint } }),
    taxonomy: (blueprint: string) =>
      t.send<string[]>({ command: "taxonomy", args: { blueprint }, method: "GET", path: "/api/taxonomy", query: { blueprint } }),
    feedback: (q: FeedbackQuery = {}) =>
      t.send<OutputFeedback[]>({ command: "list_feedback", args: { query: q }, method: "GET", path: "/api/feedback", query: { ...q } }),
    tag: (req: TagRequest) =>
      t.send<TagResponse>({ command: "tag", args: { request: req }, method: "POST", path: "/api/feedback/tags", body: req }),
    untag: (req: UntagRequest) =>
      t.send<TagResponse>({ command: "untag", args: { request: req }, method: "POST", path: "/api/feedback/untag", body: req }),

    metrics: (q: MetricsQuery) =>
      t.send<MetricsReport>({ command: "metrics", args: { query: q }, method: "GET", path: "/api/metrics", query: { ...q } }),
    metricRuns: (q: MetricRunsQuery) =>
      t.send<DrillRow[]>({ command: "metric_runs", args: { query: q }, method: "GET", path: "/api/metrics/runs", query: { ...q } }),

    // Change control: a blueprint's versions, their stages and history, and the diff between two.
    versions: (blueprint: string) =>
      t.send<BlueprintVersions>({ command: "list_versions", args: { blueprint }, method: "GET", path: "/api/versions", query: { blueprint } }),
    proposeVersion: (req: ProposeRequest) =>
      t.send<VersionInfo>({ command: "propose_version", args: { request: req }, method: "POST", path: "/api/versions/propose", body: req }),
    stageVersion: (req: StageRequest) =>
      t.send<BlueprintVersions>({ command: "stage_version", args: { request: req }, method: "POST", path: "/api/versions/stage", body: req }),
    rollbackVersion: (req: RollbackRequest) =>
      t.send<BlueprintVersions>({ command: "rollback_version", args: { request: req }, method: "POST", path: "/api/versions/rollback", body: req }),
    gateVersion: (req: GateRequest) =>
      t.send<GateReport>({ command: "gate_version", args: { request: req }, method: "POST", path: "/api/versions/gate", body: req }),
    versionDiff: (q: DiffQuery) =>
      t.send<VersionDiff>({ command: "version_diff", args: { query: q }, method: "GET", path: "/api/versions/diff", query: { ...q } }),
  };
}

export type Client = ReturnType<typeof createClient>;

/** The client for where the UI runs: the desktop webview or a browser. */
export const api: Client = createClient(isTauri() ? tauriTransport() : httpTransport());
