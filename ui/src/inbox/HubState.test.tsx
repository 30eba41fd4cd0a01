import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConflictDto, TaskSummary } from "../api/types.gen";
import { renderScreen } from "../runs/testing";

const api = vi.hoisted(() => ({ taskConflicts: vi.fn(), resolveConflict: vi.fn() }));
vi.mock("../api/client", () => ({ api }));
const { HubChip, HubPanel } = await import("./HubState");

const NOW = Date.UTC(2026, 10, 25, 9, 0);

function task(over: Partial<TaskSummary> = {}): TaskSummary {
  return {
    id: "t1", run_id: "r1", blueprint: "purchase", version: "v1", node: "check", title: "Buy a desk",
    role: "manager", status: "decided", created_at: NOW - 3_600_000, due_at: null, decided_at: NOW - 60_000,
    draft: "", decision: { action: "approve", by: "ana", text: null, reason: null }, attention: false,
    breached_at: null, claimed_by: null, sync: "conflict", owner: null, ...over,
  };
}

function conflict(over: Partial<ConflictDto> = {}): ConflictDto {
  return {
    id: "c1", task_id: "t1", actor: "ben", at: NOW - 120_000,
    decision: { action: "reject", by: "ben", text: null, reason: "the budget is spent" },
    reason: "the task was decided by someone else first", resolved: false, resolved_by: null,
    resolved_at: null, note: null, ...over,
  };
}

afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

describe("HubState", () => {
  it("chips: conflict and pending sync; nothing without a hub", () => {
    const { rerender } = renderScreen(<HubChip task={task()} />);
    expect(screen.getByText("Conflict")).toBeInTheDocument();
    rerender(<></>);
    cleanup();
    renderScreen(<HubChip task={task({ sync: "pending" })} />);
    expect(screen.getByText("Pending sync")).toBeInTheDocument();
    cleanup();
    const { container } = renderScreen(<HubChip task={task({ sync: null })} />);
    expect(container).toHaveTextContent("");
  });

  it("explains a conflict and closes it with a note", async () => {
    api.taskConflicts.mockResolvedValue([conflict()]);
    api.resolveConflict.mockResolvedValue(conflict({ resolved: true, resolved_by: "ben", note: "fine" }));
    renderScreen(<HubPanel task={task()} now={NOW} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Ben's rejection (2m ago) was not accepted: the task was decided by someone else first.");
    expect(alert).toHaveTextContent("Ana's approval stands");
    expect(alert).toHaveTextContent("Their reason: “the budget is spent”");
    fireEvent.change(screen.getByTestId("conflict-note"), { target: { value: "fine" } });
    fireEvent.click(screen.getByTestId("resolve-conflict"));
    await waitFor(() => expect(api.resolveConflict).toHaveBeenCalledWith("c1", "fine"));
  });

  it("asks to decide again when no decision stands, and says pending sync plainly", async () => {
    api.taskConflicts.mockResolvedValue([conflict({ reason: "the task changed after you opened it" })]);
    renderScreen(<HubPanel task={task({ status: "pending", decision: null })} now={NOW} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("decide the task again");
    expect(screen.queryByTestId("resolve-conflict")).toBeNull();
    cleanup();
    renderScreen(<HubPanel task={task({ sync: "pending" })} now={NOW} />);
    expect(screen.getByRole("status")).toHaveTextContent("Approved here — pending sync");
    expect(api.taskConflicts).toHaveBeenCalledTimes(1); // no conflicts to fetch while pending
  });
});
