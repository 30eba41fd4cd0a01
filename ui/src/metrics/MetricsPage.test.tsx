import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { renderScreen } from "../runs/testing";
import { invoice, onboarding, report, summary, V1, V3 } from "./fixtures";

const api = vi.hoisted(() => ({ metrics: vi.fn(), metricRuns: vi.fn(), blueprints: vi.fn() }));
vi.mock("../api/client", () => ({ api }));
// jsdom has no canvas: the uPlot chart is exercised in the browser, not here.
vi.mock("./MetricsChart", () => ({ MetricsChart: () => <div data-testid="metrics-chart" /> }));

const { MetricsPage } = await import("./MetricsPage");

const RUN_A = "0193a1b2-0000-7000-8000-00000000000a";
const RUN_B = "0193a1b2-0000-7000-8000-00000000000b";

beforeEach(() => {
  api.metrics.mockResolvedValue(report());
  api.blueprints.mockResolvedValue([]);
  api.metricRuns.mockResolvedValue([
    { run_id: RUN_A, blueprint: "invoice", version: V1, at: Date.UTC(2026, 10, 20, 9), detail: "edit by ana" },
    { run_id: RUN_B, blueprint: "invoice", version: V1, at: Date.UTC(2026, 10, 21, 9), detail: "reject by ben" },
  ]);
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

const show = (route = "/metrics") => renderScreen(<MetricsPage />, { path: "/metrics", route });
const kpi = async (id: string) => within(await screen.findByTestId(`kpi-${id}`));

describe("MetricsPage", () => {
  it("shows the five KPIs with the fractions behind them", async () => {
    show();
    const prompt = await kpi("prompt");
    expect(prompt.getByTestId("kpi-value")).toHaveTextContent("87%");
    expect(prompt.getByTestId("kpi-fraction")).toHaveTextContent("348 of 400 prompt steps");
    const override = await kpi("override");
    expect(override.getByTestId("kpi-value")).toHaveTextContent("30%");
    expect(override.getByTestId("kpi-fraction")).toHaveTextContent("12 of 40 human decisions");
    expect(override.getByText("edited: 18% of the draft changed on average")).toBeInTheDocument();
    const automation = await kpi("automation");
    expect(automation.getByTestId("kpi-value")).toHaveTextContent("41%");
    expect(automation.getByTestId("kpi-fraction")).toHaveTextContent("20 of 49 finished runs");
    const latency = await kpi("latency");
    expect(latency.getByTestId("kpi-value")).toHaveTextContent("3h 20m");
    expect(latency.getByTestId("kpi-fraction")).toHaveTextContent("p95 1d 5h · 52 decided");
    expect(latency.getByText("12% escalated · 4% breached SLA")).toBeInTheDocument();
    const drift = await kpi("drift");
    expect(drift.getByTestId("kpi-value")).toHaveTextContent("0.41");
    expect(drift.getByTestId("kpi-fraction")).toHaveTextContent("1 of 3 versions flagged");
    expect(drift.getByText("1 flagged")).toBeInTheDocument();
    expect(screen.getByTestId("metrics-chart")).toBeInTheDocument();
    expect(api.metrics).toHaveBeenCalledWith({ since: "30d", blueprint: undefined });
  });

  it("shows — for ratios with no data", async () => {
    api.metrics.mockResolvedValue(report({ total: summary({ runs_started: 2 }), blueprints: [onboarding], series: [] }));
    show();
    for (const id of ["prompt", "override", "automation", "latency", "drift"]) {
      expect((await kpi(id)).getByTestId("kpi-value")).toHaveTextContent("—");
    }
    expect((await kpi("prompt")).getByTestId("kpi-fraction")).toHaveTextContent("no prompt steps");
    expect((await kpi("latency")).getByText("— escalated · — breached SLA")).toBeInTheDocument();
  });

  it("flags drifting versions in the table, with each component's PSI", async () => {
    show();
    const rows = await screen.findAllByTestId("metrics-blueprint");
    expect(rows.map((r) => r.dataset.blueprint)).toEqual(["invoice", "onboarding"]);
    // The blueprint with a flagged version opens by itself; the flagged version stands out.
    const versions = within(rows[0]!).getAllByTestId("metrics-version");
    expect(versions.map((v) => v.textContent?.slice(0, 8))).toEqual([V1.slice(0, 8), invoice.versions[1]!.version.slice(0, 8)]);
    expect(versions[0]).toHaveAttribute("data-flagged", "true");
    expect(versions[1]).not.toHaveAttribute("data-flagged");
    const flagged = within(versions[0]!);
    expect(flagged.getByText("Flagged")).toBeInTheDocument();
    const tip = flagged.getByRole("tooltip", { hidden: true });
    expect(tip).toHaveTextContent("Decision mix0.41412 → 96");
    expect(tip).toHaveTextContent("Tag mixtoo few observations4 → 1");
    // The other blueprint opens on a click; its version has too little data to compare.
    const other = within(rows[1]!);
    expect(other.queryByTestId("metrics-version")).toBeNull();
    fireEvent.click(other.getByRole("button", { name: /Show the versions of Employee onboarding/ }));
    const v3 = other.getByTestId("metrics-version");
    expect(v3).toHaveAttribute("data-version", V3);
    expect(within(v3).getByTestId("drift-index")).toHaveTextContent("—");
    expect(within(v3).getByRole("tooltip", { hidden: true })).toHaveTextContent("Too few observations to compare");
  });

  it("asks for another window or process and keeps the choice in the URL", async () => {
    const { router } = show();
    await kpi("prompt");
    fireEvent.click(screen.getByTestId("metrics-window-7d"));
    await waitFor(() => expect(api.metrics).toHaveBeenLastCalledWith({ since: "7d", blueprint: undefined }));
    expect(router.state.location.search).toBe("?since=7d");
    expect(screen.getByTestId("metrics-window-7d")).toHaveAttribute("aria-checked", "true");
    fireEvent.change(screen.getByTestId("metrics-process"), { target: { value: "invoice" } });
    await waitFor(() => expect(api.metrics).toHaveBeenLastCalledWith({ since: "7d", blueprint: "invoice" }));
    expect(new URLSearchParams(router.state.location.search).get("blueprint")).toBe("invoice");
  });

  it("reads the window and the process from the URL", async () => {
    show("/metrics?since=90d&blueprint=invoice");
    await kpi("prompt");
    expect(api.metrics).toHaveBeenCalledWith({ since: "90d", blueprint: "invoice" });
    expect(screen.getByTestId("metrics-process")).toHaveValue("invoice");
    expect(screen.getByTestId("metrics-window-90d")).toHaveAttribute("aria-checked", "true");
  });

  it("opens the runs behind a KPI, each linking to its run", async () => {
    show();
    fireEvent.click(await screen.findByTestId("kpi-override"));
    const panel = within(await screen.findByTestId("drill-panel"));
    expect(api.metricRuns).toHaveBeenCalledWith({ metric: "overrides", blueprint: undefined, version: undefined, since: "30d", limit: 100 });
    const rows = await panel.findAllByTestId("drill-run");
    expect(rows.map((r) => r.getAttribute("href"))).toEqual([`/runs/${RUN_A}`, `/runs/${RUN_B}`]);
    expect(rows[0]).toHaveTextContent("edit by ana");
    expect(rows[0]).toHaveTextContent("Invoice approval");
    fireEvent.click(rows[0]!);
    expect(await screen.findByTestId("elsewhere")).toBeInTheDocument();
  });

  it("drills latency into the slowest, escalated and breached runs", async () => {
    show();
    fireEvent.click(await screen.findByTestId("kpi-latency"));
    await screen.findAllByTestId("drill-run");
    expect(api.metricRuns).toHaveBeenLastCalledWith(expect.objectContaining({ metric: "slowest" }));
    fireEvent.click(screen.getByTestId("drill-tab-breached"));
    await waitFor(() => expect(api.metricRuns).toHaveBeenLastCalledWith(expect.objectContaining({ metric: "breached" })));
    fireEvent.keyDown(window, { key: "Escape" });
    expect(screen.queryByTestId("drill-panel")).toBeNull();
  });

  it("drills a table cell into one version, and drift into its components", async () => {
    show();
    const version = (await screen.findAllByTestId("metrics-version"))[0]!;
    fireEvent.click(within(version).getByTitle("20 of 49 finished runs"));
    await screen.findAllByTestId("drill-run");
    expect(api.metricRuns).toHaveBeenLastCalledWith({ metric: "automated", blueprint: "invoice", version: V1, since: "30d", limit: 100 });
    fireEvent.click(screen.getByRole("button", { name: "Close" }));
    fireEvent.click(screen.getByTestId("kpi-drift"));
    const drift = await screen.findAllByTestId("drift-version");
    expect(drift.map((d) => d.textContent?.includes("Flagged"))).toEqual([true, false, false]);
  });

  it("shows how to get data when the window has no runs", async () => {
    api.metrics.mockResolvedValue(report({ total: summary(), blueprints: [], series: [] }));
    show();
    expect(await screen.findByText("No runs in the last 30 days.")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Blueprints" })).toHaveAttribute("href", "/blueprints");
    fireEvent.click(screen.getByRole("button", { name: "widen the window" }));
    await waitFor(() => expect(api.metrics).toHaveBeenLastCalledWith({ since: "90d", blueprint: undefined }));
  });

  it("shows the API's error", async () => {
    api.metrics.mockRejectedValue(new Error("since: `soon` is not a day"));
    show();
    expect(await screen.findByRole("alert")).toHaveTextContent("since: `soon` is not a day");
  });
});
