import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RunDetail, TimelineStep } from "../api/types.gen";
import { renderScreen } from "./testing";

const api = vi.hoisted(() => ({ run: vi.fn(), retryRun: vi.fn() }));
vi.mock("../api/client", () => ({ api }));

const { RunDetailPane } = await import("./RunDetailPane");

const base: Omit<TimelineStep, "node"> = {
  visit: 1,
  status: "done",
  started_at: 1_000,
  finished_at: 1_200,
  attempts: 1,
  label: null,
  next: [],
  output: null,
  meta: null,
  error: null,
  task: null,
  decision: null,
};

function detail(status: string, steps: TimelineStep[]): RunDetail {
  return {
    run: { id: "01a2109d-0000-run", blueprint: "support-triage", version: "f808", trigger: "ticket-created", status, created_at: 1_000, updated_at: 2_000, error: null, events: 4 },
    payload: { ticket_id: "48227" },
    steps,
  };
}

const classify: TimelineStep = {
  ...base,
  node: "classify",
  next: ["by_category"],
  output: { text: '{"category":"billing"}', json: { category: "billing" } },
  meta: {
    duration_ms: 812,
    model: "gpt-4o-mini",
    prompt_tokens: 100,
    completion_tokens: 6,
    retries: 2,
    fallback: "triage_backup",
    input: { messages: [{ role: "system", content: "You classify tickets." }, { role: "user", content: "Classify this ticket." }] },
    exchanges: [
      { agent: "triage", provider: "default", purpose: "call", request: { model: "gpt-4o-mini" }, error: "HTTP 500", prompt_tokens: 100, completion_tokens: 0, latency_ms: 300, attempts: 3 },
      { agent: "triage_backup", provider: "default", purpose: "call", request: { model: "gpt-4o" }, response: '{"category":"billing"}', model: "gpt-4o", prompt_tokens: 100, completion_tokens: 6, latency_ms: 512, attempts: 1 },
    ],
  },
};
const failed: TimelineStep = { ...base, node: "send_reply", status: "failed", finished_at: null, error: "POST http://helpdesk: connection refused" };

afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

describe("RunDetailPane", () => {
  it("shows one card per step with model, tokens, retries and fallback", async () => {
    api.run.mockResolvedValue(detail("completed", [classify, { ...base, node: "by_category", label: "billing" }]));
    renderScreen(<RunDetailPane runId="r" blueprintName={(id) => id} />);
    const steps = await screen.findAllByTestId("run-step");
    expect(steps.map((s) => s.dataset.node)).toEqual(["classify", "by_category"]);
    const card = steps[0]!;
    expect(card).toHaveTextContent("gpt-4o-mini");
    expect(card).toHaveTextContent("100 → 6 tok");
    expect(card).toHaveTextContent("2 retries");
    expect(card).toHaveTextContent("fallback triage_backup");
    expect(card).toHaveTextContent("812 ms");
    expect(steps[1]).toHaveTextContent("billing");
    expect(screen.queryByTestId("run-retry")).toBeNull();
  });

  it("expands a step to its prompt and model calls", async () => {
    api.run.mockResolvedValue(detail("completed", [classify, { ...base, node: "end" }]));
    renderScreen(<RunDetailPane runId="r" blueprintName={(id) => id} />);
    const [card] = await screen.findAllByTestId("run-step");
    fireEvent.click(card!.querySelector("button")!);
    fireEvent.click(screen.getByRole("tab", { name: "Input" }));
    expect(card).toHaveTextContent("You classify tickets.");
    fireEvent.click(screen.getByRole("tab", { name: /Model calls · 2/ }));
    expect(card).toHaveTextContent("HTTP 500");
    expect(card).toHaveTextContent("512 ms");
  });

  it("offers Retry for a run that needs attention and shows the failed step's error", async () => {
    api.run.mockResolvedValue(detail("attention", [classify, failed]));
    api.retryRun.mockResolvedValue({ ...detail("completed", []).run });
    renderScreen(<RunDetailPane runId="r" blueprintName={(id) => id} />);
    await screen.findAllByTestId("run-step");
    expect(screen.getByText("POST http://helpdesk: connection refused")).toBeInTheDocument();
    fireEvent.click(screen.getByTestId("run-retry"));
    await waitFor(() => expect(api.retryRun).toHaveBeenCalledWith("01a2109d-0000-run"));
  });

  it("polls while the run is live", async () => {
    api.run.mockResolvedValue(detail("running", [classify]));
    renderScreen(<RunDetailPane runId="r" blueprintName={(id) => id} />);
    await screen.findAllByTestId("run-step");
    await waitFor(() => expect(api.run.mock.calls.length).toBeGreaterThan(1), { timeout: 3_000 });
  });
});
