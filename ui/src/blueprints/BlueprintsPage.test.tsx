import { cleanup, fireEvent, screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BlueprintSummary } from "../api/types.gen";
import { renderScreen } from "../runs/testing";
import { stageInfo } from "./stage";

const api = vi.hoisted(() => ({ blueprints: vi.fn(), runs: vi.fn() }));
vi.mock("../api/client", () => ({ api }));

const { BlueprintsPage } = await import("./BlueprintsPage");

const bp = (id: string, stage: string, extra: Partial<BlueprintSummary> = {}): BlueprintSummary => ({
  id,
  name: `Name of ${id}`,
  description: `About ${id}`,
  domain: "Finance",
  version: "2c417f5895ba6c2fa90ac9a64c11db98",
  stage,
  nodes: 6,
  triggers: [{ id: "form", kind: "manual", input: null }],
  ...extra,
});

beforeEach(() => {
  api.blueprints.mockResolvedValue([bp("invoice", "approved"), bp("onboarding", "pilot"), bp("old", "retired")]);
  api.runs.mockResolvedValue([
    { id: "r1", blueprint: "invoice", version: "v", trigger: "form", status: "attention", created_at: 0, updated_at: 0, error: null, events: 1 },
    { id: "r2", blueprint: "invoice", version: "v", trigger: "form", status: "completed", created_at: 0, updated_at: 0, error: null, events: 1 },
  ]);
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

describe("BlueprintsPage", () => {
  it("shows a card per blueprint with stage, triggers, nodes, short version and runs", async () => {
    renderScreen(<BlueprintsPage />);
    const cards = await screen.findAllByTestId("blueprint-card");
    expect(cards.map((c) => c.dataset.blueprintId)).toEqual(["invoice", "onboarding", "old"]);
    const invoice = within(cards[0]!);
    expect(invoice.getByText("Approved")).toBeInTheDocument();
    expect(invoice.getByText("form")).toBeInTheDocument();
    expect(invoice.getByText("6 nodes")).toBeInTheDocument();
    expect(invoice.getByText("2c417f58")).toBeInTheDocument();
    expect(await invoice.findByText(/2 runs/)).toHaveTextContent("1 need attention");
    expect(invoice.getByTestId("blueprint-open")).toHaveAttribute("href", "/designer/invoice");
  });

  it("cannot start runs of a retired blueprint", async () => {
    renderScreen(<BlueprintsPage />);
    const cards = await screen.findAllByTestId("blueprint-card");
    expect(within(cards[2]!).getByTestId("blueprint-start")).toBeDisabled();
    expect(within(cards[0]!).getByTestId("blueprint-start")).toBeEnabled();
  });

  it("filters by text", async () => {
    renderScreen(<BlueprintsPage />);
    await screen.findAllByTestId("blueprint-card");
    fireEvent.change(screen.getByLabelText("Filter blueprints"), { target: { value: "onboard" } });
    expect(screen.getAllByTestId("blueprint-card").map((c) => c.dataset.blueprintId)).toEqual(["onboarding"]);
  });
});

describe("stageInfo", () => {
  it("orders the lifecycle and knows the aliases", () => {
    expect(["draft", "pilot", "monitored", "approved"].map((s) => stageInfo(s).step)).toEqual([0, 1, 2, 3]);
    expect(stageInfo("governed").step).toBe(2);
    expect(stageInfo("scaled").tone).toBe("ok");
    expect(stageInfo("retired").step).toBe(-1);
    expect(stageInfo("experimental").label).toBe("Experimental");
  });
});
