// Reports for the metrics tests: hand-made numbers whose formatted forms are easy to check.
import type { BlueprintMetrics, Drift, MetricsReport, Ratio, Summary } from "../api/types.gen";

export const ratio = (num: number, den: number): Ratio => ({ num, den, value: den > 0 ? num / den : null });

export function summary(patch: Partial<Summary> = {}): Summary {
  return {
    runs_started: 0,
    runs_finished: 0,
    runs_failed: 0,
    prompt_success: ratio(0, 0),
    prompts: { clean: 0, repaired: 0, fallback: 0, attention: 0, failed: 0 },
    tokens: 0,
    human_override: ratio(0, 0),
    decisions: { approve: 0, edit: 0, reject: 0, escalate: 0 },
    edit_distance: null,
    automation_coverage: ratio(0, 0),
    auto_approved_reviews: 0,
    tasks_created: 0,
    escalation: { decided: 0, p50_ms: null, p95_ms: null, escalated: ratio(0, 0), breached: ratio(0, 0) },
    ...patch,
  };
}

const busy = (scale = 1): Summary =>
  summary({
    runs_started: 60 * scale,
    runs_finished: 49 * scale,
    runs_failed: 3 * scale,
    prompt_success: ratio(348 * scale, 400 * scale),
    prompts: { clean: 348 * scale, repaired: 30 * scale, fallback: 12 * scale, attention: 4 * scale, failed: 6 * scale },
    human_override: ratio(12 * scale, 40 * scale),
    decisions: { approve: 28 * scale, edit: 9 * scale, reject: 3 * scale, escalate: 0 },
    edit_distance: 0.18,
    automation_coverage: ratio(20 * scale, 49 * scale),
    auto_approved_reviews: 5 * scale,
    tasks_created: 55 * scale,
    escalation: {
      decided: 52 * scale,
      p50_ms: 12_000_000, // 3h 20m
      p95_ms: 104_400_000, // 1d 5h
      escalated: ratio(6 * scale, 52 * scale),
      breached: ratio(2 * scale, 52 * scale),
    },
  });

export function drift(index: number | null, patch: Partial<Drift> = {}): Drift {
  const known = index !== null;
  return {
    index,
    flagged: known && index >= 0.25,
    threshold: 0.25,
    components: [
      { name: "decisions", psi: known ? index : null, baseline_n: known ? 412 : 3, recent_n: known ? 96 : 2 },
      { name: "tags", psi: null, baseline_n: 4, recent_n: 1 },
      { name: "output_length", psi: known ? 0.03 : null, baseline_n: known ? 380 : 3, recent_n: known ? 90 : 2 },
      { name: "prompt_failures", psi: known ? 0.01 : null, baseline_n: known ? 380 : 3, recent_n: known ? 90 : 2 },
    ],
    ...patch,
  };
}

export const V1 = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
export const V2 = "ffee0011223344556677889900aabbccddeeff00112233445566778899aabbcc";
export const V3 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

export const invoice: BlueprintMetrics = {
  blueprint: "invoice",
  name: "Invoice approval",
  summary: busy(),
  drift: drift(0.41),
  versions: [
    { version: V1, first_day: "2026-11-10", last_day: "2026-11-30", summary: busy(), drift: drift(0.41) },
    { version: V2, first_day: "2026-11-01", last_day: "2026-11-09", summary: busy(), drift: drift(0.05) },
  ],
};

export const onboarding: BlueprintMetrics = {
  blueprint: "onboarding",
  name: "Employee onboarding",
  summary: summary({ runs_started: 2 }),
  drift: drift(null),
  versions: [{ version: V3, first_day: "2026-11-20", last_day: "2026-11-21", summary: summary({ runs_started: 2 }), drift: drift(null) }],
};

export function report(patch: Partial<MetricsReport> = {}): MetricsReport {
  return {
    since: "2026-11-01",
    until: "2026-11-30",
    recent_since: "2026-11-24",
    baseline_since: "2026-10-27",
    total: busy(),
    blueprints: [invoice, onboarding],
    series: [
      { day: "2026-11-02", summary: busy() },
      { day: "2026-11-05", summary: summary({ runs_started: 4 }) },
    ],
    ...patch,
  };
}
