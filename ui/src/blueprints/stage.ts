// Lifecycle stages of a blueprint, in order, with how each is shown. The engine's stages are
// draft → pilot → monitored → approved (→ retired); "governed" and "scaled" are accepted as
// aliases from the product vocabulary so a rename on the engine side does not break the badge.

export type StageTone = "neutral" | "info" | "warn" | "ok" | "accent" | "danger";

interface StageInfo {
  label: string;
  tone: StageTone;
  /** Position on the lifecycle bar (0-based); -1 = off the bar (retired). */
  step: number;
  hint: string;
}

export const LIFECYCLE = ["draft", "pilot", "monitored", "approved"] as const;

const STAGES: Record<string, StageInfo> = {
  draft: { label: "Draft", tone: "neutral", step: 0, hint: "Being designed; runs only by hand or as a dry run" },
  pilot: { label: "Pilot", tone: "info", step: 1, hint: "Live for the pilot cohort only" },
  monitored: { label: "Monitored", tone: "warn", step: 2, hint: "Live and watched closely: feedback loops, prompt tracing" },
  governed: { label: "Governed", tone: "warn", step: 2, hint: "Live under governance review" },
  approved: { label: "Approved", tone: "ok", step: 3, hint: "Approved and scaled to the whole organisation" },
  scaled: { label: "Scaled", tone: "ok", step: 3, hint: "Scaled to the whole organisation" },
  retired: { label: "Retired", tone: "danger", step: -1, hint: "No longer starts new runs" },
};

export function stageInfo(stage: string): StageInfo {
  return STAGES[stage] ?? { label: stage.charAt(0).toUpperCase() + stage.slice(1), tone: "neutral", step: 0, hint: stage };
}
