import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RunSummary } from "../api/types.gen";
import { renderScreen } from "./testing";

const api = vi.hoisted(() => ({ runs: vi.fn(), run: vi.fn(), blueprints: vi.fn(), retryRun: vi.fn() }));
vi.mock("../api/client", () => ({ api }));

const { RunsPage } = await import("./RunsPage");

const run = (id: string, status: string, blueprint = "support-triage"): RunSummary => ({
  id,
  blueprint,
  version: "v",
  trigger: "ticket-created",
  status,
  created_at: Date.now() - 60_000,
  updated_at: Date.now(),
  error: status === "attention" ? "send_reply: connection refused" : null,
  events: 3,
});

const all = [run("run-a", "waiting"), run("run-b", "attention"), run("run-c", "completed", "hr-onboarding")];

beforeEach(() => {
  api.runs.mockImplementation(async (q: { status?: string }) => (q.status ? all.filter((r) => r.status === q.status) : all));
  api.blueprints.mockResolvedValue([{ id: "support-triage", name: "Ticket triage", triggers: [], description: "", domain: null, version: "v", stage: "pilot", nodes: 3 }]);
  api.run.mockImplementation(async (id: string) => ({ run: all.find((r) => r.id === id), payload: {}, steps: [] }));
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

const rows = () => screen.getAllByTestId("run-row").map((r) => r.dataset.runId);

describe("RunsPage", () => {
  it("lists runs with names, counts per status, and opens the newest", async () => {
    const { router } = renderScreen(<RunsPage />, { path: "/runs/:runId?", route: "/runs" });
    await waitFor(() => expect(rows()).toEqual(["run-a", "run-b", "run-c"]));
    expect(screen.getAllByText("Ticket triage")).not.toHaveLength(0);
    expect(screen.getByTestId("runs-filter-attention")).toHaveTextContent("1");
    await waitFor(() => expect(router.state.location.pathname).toBe("/runs/run-a"));
  });

  it("filters by status through the engine and keeps it in the URL", async () => {
    const { router } = renderScreen(<RunsPage />, { path: "/runs/:runId?", route: "/runs/run-a" });
    await waitFor(() => expect(rows()).toHaveLength(3));
    fireEvent.click(screen.getByTestId("runs-filter-attention"));
    await waitFor(() => expect(rows()).toEqual(["run-b"]));
    expect(api.runs).toHaveBeenCalledWith(expect.objectContaining({ status: "attention" }));
    expect(router.state.location.search).toBe("?status=attention");
  });

  it("j and k move through the list", async () => {
    const { router } = renderScreen(<RunsPage />, { path: "/runs/:runId?", route: "/runs/run-a" });
    await waitFor(() => expect(rows()).toHaveLength(3));
    fireEvent.keyDown(window, { key: "j" });
    await waitFor(() => expect(router.state.location.pathname).toBe("/runs/run-b"));
    fireEvent.keyDown(window, { key: "j" });
    await waitFor(() => expect(router.state.location.pathname).toBe("/runs/run-c"));
    fireEvent.keyDown(window, { key: "k" });
    await waitFor(() => expect(router.state.location.pathname).toBe("/runs/run-b"));
  });
});
