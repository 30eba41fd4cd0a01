// Look and words of each node and trigger kind (palette, canvas, inspector).
import {
  Braces,
  CalendarClock,
  FolderInput,
  MousePointerClick,
  Radio,
  Search,
  Send,
  Signpost,
  Sparkles,
  Split,
  UserCheck,
  Webhook,
  type LucideIcon,
} from "lucide-react";
import type { StepKind, TriggerKind } from "./graph";

export interface KindMeta {
  label: string;
  icon: LucideIcon;
  /** Icon chip colours (light and dark). */
  chip: string;
  /** Accent for the node's top edge / minimap. */
  color: string;
  blurb: string;
}

export const STEP_META: Record<StepKind, KindMeta> = {
  retrieve: {
    label: "Retrieve",
    icon: Search,
    chip: "bg-sky-500/12 text-sky-600 dark:text-sky-400",
    color: "#0ea5e9",
    blurb: "Knowledge passages and recent memory",
  },
  prompt: {
    label: "Prompt",
    icon: Sparkles,
    chip: "bg-violet-500/12 text-violet-600 dark:text-violet-400",
    color: "#8b5cf6",
    blurb: "Ask an agent with a template",
  },
  route: {
    label: "Route",
    icon: Signpost,
    chip: "bg-amber-500/14 text-amber-600 dark:text-amber-400",
    color: "#f59e0b",
    blurb: "Pick one path by rules",
  },
  review: {
    label: "Review",
    icon: UserCheck,
    chip: "bg-emerald-500/12 text-emerald-600 dark:text-emerald-400",
    color: "#10b981",
    blurb: "A person approves, edits or rejects",
  },
  branch: {
    label: "Branch",
    icon: Split,
    chip: "bg-cyan-500/12 text-cyan-600 dark:text-cyan-400",
    color: "#06b6d4",
    blurb: "Run several paths in parallel",
  },
  transform: {
    label: "Transform",
    icon: Braces,
    chip: "bg-slate-500/12 text-slate-600 dark:text-slate-300",
    color: "#64748b",
    blurb: "Set variables for later steps",
  },
  output: {
    label: "Output",
    icon: Send,
    chip: "bg-rose-500/12 text-rose-600 dark:text-rose-400",
    color: "#f43f5e",
    blurb: "HTTP, file, dataset or event",
  },
};

export const TRIGGER_META: Record<TriggerKind, KindMeta> = {
  manual: {
    label: "Manual",
    icon: MousePointerClick,
    chip: "bg-indigo-500/12 text-indigo-600 dark:text-indigo-400",
    color: "#6366f1",
    blurb: "Started by hand with a form",
  },
  webhook: {
    label: "Webhook",
    icon: Webhook,
    chip: "bg-indigo-500/12 text-indigo-600 dark:text-indigo-400",
    color: "#6366f1",
    blurb: "HTTP POST from another system",
  },
  schedule: {
    label: "Schedule",
    icon: CalendarClock,
    chip: "bg-indigo-500/12 text-indigo-600 dark:text-indigo-400",
    color: "#6366f1",
    blurb: "On a cron schedule",
  },
  folder_drop: {
    label: "Folder drop",
    icon: FolderInput,
    chip: "bg-indigo-500/12 text-indigo-600 dark:text-indigo-400",
    color: "#6366f1",
    blurb: "When a file lands in a folder",
  },
  event: {
    label: "Event",
    icon: Radio,
    chip: "bg-indigo-500/12 text-indigo-600 dark:text-indigo-400",
    color: "#6366f1",
    blurb: "When another blueprint emits",
  },
};

export function stepMeta(kind: string): KindMeta {
  return STEP_META[kind as StepKind] ?? STEP_META.transform;
}

export function triggerMeta(kind: string): KindMeta {
  return TRIGGER_META[kind as TriggerKind] ?? TRIGGER_META.manual;
}

export const TONE_STROKE: Record<string, string> = {
  ok: "var(--ok)",
  danger: "var(--danger)",
  warn: "var(--warn)",
  info: "var(--info)",
  neutral: "var(--faint)",
};
