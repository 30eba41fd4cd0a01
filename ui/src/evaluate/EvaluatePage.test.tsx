import { act, cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { QueueItem } from "../api/types.gen";
import { renderScreen } from "../runs/testing";

const TAGS = ["hallucination", "tone", "missing-policy", "factual-error", "great-example", "needs-edit"];

function item(node: string, run = "01a2109d-d7c0-7246-b7c1-dbdc3349bdf7"): QueueItem {
  return {
    output: `${run}:${node}:1`,
    handle: `${run.slice(-8)}:${node}:1`,
    run,
    node,
    visit: 1,
    kind: "prompt",
    blueprint: "support-triage",
    version: "v1",
    finished_at: Date.now() - 60_000,
    text: `Output of ${node}`,
    draft: null,
    edited: false,
    allowed_tags: TAGS,
  };
}

const api = vi.hoisted(() => ({
  evalQueue: vi.fn(),
  evalProgress: vi.fn(),
  blueprints: vi.fn(),
  tag: vi.fn(),
  untag: vi.fn(),
  health: vi.fn(),
}));
vi.mock("../api/client", () => ({ api }));
vi.mock("../app/me", () => ({ useMe: () => ({ name: "dana", roles: [], me: undefined, setActAs: () => {} }) }));

const { EvaluatePage } = await import("./EvaluatePage");

beforeEach(() => {
  localStorage.clear();
  api.evalQueue.mockResolvedValue([item("draft_reply"), item("classify")]);
  api.evalProgress.mockResolvedValue([{ evaluator: "dana", done: 3, remaining: 2 }]);
  api.blueprints.mockResolvedValue([]);
  api.health.mockResolvedValue({ status: "ok", version: "0.1.0", blueprints: 1 });
  api.tag.mockResolvedValue({ changed: [], unchanged: [], feedback: {} });
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

/** Wait until the centre pane shows the output of `node`. */
const shows = (node: string) => waitFor(() => expect(screen.getByTestId("eval-text")).toHaveTextContent(`Output of ${node}`));

const press = (code: string, key: string, shiftKey = false) => fireEvent.keyDown(window, { code, key, shiftKey });
const pressed = (tag: string) => screen.getByTestId(`eval-tag-${tag}`).getAttribute("aria-pressed");

describe("EvaluatePage", () => {
  it("toggles the tag at each number key's position", async () => {
    renderScreen(<EvaluatePage />);
    await shows("draft_reply");
    press("Digit2", "2");
    expect(pressed("tone")).toBe("true");
    expect(pressed("hallucination")).toBe("false");
    press("Digit4", "4");
    expect(pressed("factual-error")).toBe("true");
    press("Digit2", "2");
    expect(pressed("tone")).toBe("false");
    expect(pressed("factual-error")).toBe("true");
    // Beyond the taxonomy: nothing happens.
    press("Digit8", "8");
    expect(screen.getAllByRole("button", { pressed: true }).map((b) => b.dataset.testid)).toEqual(["eval-tag-factual-error"]);
  });

  it("rates with Shift+digit and clicks", async () => {
    renderScreen(<EvaluatePage />);
    await shows("draft_reply");
    press("Digit4", "$", true);
    expect(screen.getByTestId("eval-rating-4")).toHaveAttribute("aria-checked", "true");
    expect(pressed("factual-error")).toBe("false");
    fireEvent.click(screen.getByTestId("eval-rating-2"));
    expect(screen.getByTestId("eval-rating-2")).toHaveAttribute("aria-checked", "true");
    expect(screen.getByTestId("eval-rating-4")).toHaveAttribute("aria-checked", "false");
  });

  it("ignores number keys while typing a comment", async () => {
    renderScreen(<EvaluatePage />);
    await shows("draft_reply");
    const comment = screen.getByTestId("eval-comment");
    fireEvent.keyDown(comment, { code: "Digit1", key: "1" });
    expect(pressed("hallucination")).toBe("false");
  });

  it("n submits through the outbox and moves to the next output", async () => {
    renderScreen(<EvaluatePage />);
    await shows("draft_reply");
    press("Digit1", "1");
    press("Digit3", "#", true);
    fireEvent.change(screen.getByTestId("eval-comment"), { target: { value: "made up a policy" } });
    act(() => {
      press("KeyN", "n");
    });
    await shows("classify");
    await waitFor(() =>
      expect(api.tag).toHaveBeenCalledWith({
        output: item("draft_reply").output,
        tags: ["hallucination"],
        rating: 3,
        comment: "made up a policy",
        by: "dana",
      }),
    );
    await waitFor(() => expect(screen.getByTestId("eval-pending-sync")).toHaveAttribute("data-pending", "0"));
    expect(screen.getByTestId("eval-pending-sync")).toHaveTextContent("All changes synced");
  });

  it("keeps the change pending (and stored) while the engine is unreachable", async () => {
    const { ApiError } = await import("../api/transport");
    api.tag.mockRejectedValue(new ApiError("unreachable", "cannot reach the ProcessOps engine"));
    renderScreen(<EvaluatePage />);
    await shows("draft_reply");
    fireEvent.click(screen.getByTestId("eval-tag-tone"));
    fireEvent.click(screen.getByTestId("eval-submit"));
    await waitFor(() => expect(api.tag).toHaveBeenCalled());
    await waitFor(() => expect(screen.getByTestId("eval-pending-sync")).toHaveTextContent("1 pending sync"));
    const stored = JSON.parse(localStorage.getItem("processops.eval.outbox") ?? "[]") as { output: string; tags: string[] }[];
    expect(stored).toEqual([expect.objectContaining({ output: item("draft_reply").output, tags: ["tone"] })]);
    // The submitted output leaves the queue even though it is not synced yet.
    expect(screen.queryAllByTestId("eval-item").map((e) => e.dataset.output)).toEqual([
      item("classify").output,
    ]);
    expect(screen.getAllByTestId("eval-done-item").map((e) => e.dataset.output)).toEqual([item("draft_reply").output]);
  });
});
