import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { createMemoryRouter, RouterProvider } from "react-router";
import { toast } from "sonner";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/transport";
import type { TasksQuery } from "../api/client";
import type { DecisionRequest, DecisionResponse, RunDetail, TaskDetail, TaskSummary } from "../api/types.gen";
import type { InboxClient } from "./data";
import { InboxPage } from "./InboxPage";

vi.mock("../app/me", () => ({
  useMe: () => ({ name: "alice", roles: [], me: { name: "alice", roles: [], single_user: true, users: [] }, setActAs: () => {} }),
}));
vi.mock("sonner", () => ({ toast: { error: vi.fn(), success: vi.fn(), warning: vi.fn() } }));

const NOW = Date.now();

function task(id: string, over: Partial<TaskSummary> = {}): TaskSummary {
  return {
    id,
    run_id: `run-${id}`,
    blueprint: "support-triage",
    version: "abcdef0123456789",
    node: "agent_review",
    title: `Task ${id}`,
    role: "support-agent",
    status: "pending",
    created_at: NOW - 60_000,
    due_at: NOW + 3_600_000 * 3 + 30_000,
    decided_at: null,
    draft: `Draft of ${id}`,
    decision: null,
    attention: false,
    breached_at: null,
    claimed_by: null,
    sync: null,
    owner: null,
    ...over,
  };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A fake engine with state: decided tasks leave the pending list, like the real one. */
function fakeClient(initial: TaskSummary[]) {
  let tasks = initial;
  const client = {
    tasks: vi.fn(async (q: TasksQuery = {}) => tasks.filter((t) => q.status === "all" || t.status === (q.status ?? "pending"))),
    task: vi.fn(
      async (id: string): Promise<TaskDetail> => ({
        task: tasks.find((t) => t.id === id) ?? task(id),
        context: { trigger: { customer: "Bluebird" }, steps: {} },
        users: [],
        escalation: ["support-lead"],
        reasons: ["Wrong facts", "Wrong tone"],
        diff: null,
        decision_latency_ms: null,
      }),
    ),
    decide: vi.fn(async (id: string, _req?: DecisionRequest): Promise<DecisionResponse> => {
      tasks = tasks.map((t) => (t.id === id ? { ...t, status: "decided" } : t));
      return { task_id: id, run_id: `run-${id}`, pending_sync: false };
    }),
    claim: vi.fn(async (id: string) => tasks.find((t) => t.id === id)!),
    unclaim: vi.fn(async (id: string) => tasks.find((t) => t.id === id)!),
    run: vi.fn(async (): Promise<RunDetail> => {
      throw new ApiError("not_found", "no such run", 404);
    }),
  } satisfies InboxClient;
  return client;
}

function renderInbox(client: InboxClient, path = "/inbox") {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const router = createMemoryRouter(
    [
      { path: "/inbox", element: <InboxPage client={client} /> },
      { path: "/inbox/:taskId", element: <InboxPage client={client} /> },
    ],
    { initialEntries: [path] },
  );
  render(
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return router;
}

const press = (key: string, init: KeyboardEventInit = {}) => act(() => void fireEvent.keyDown(window, { key, ...init }));
const rows = () => screen.queryAllByTestId("inbox-row");
const row = (id: string) => rows().find((r) => r.dataset.taskId === id);
const focused = () => rows().find((r) => r.dataset.focused)?.dataset.taskId;

beforeEach(() => {
  localStorage.clear();
  // jsdom has no layout: give the list a height so the virtualizer renders rows.
  vi.spyOn(HTMLElement.prototype, "clientHeight", "get").mockReturnValue(800);
  vi.spyOn(HTMLElement.prototype, "clientWidth", "get").mockReturnValue(440);
});

afterEach(() => {
  // Vitest runs without globals here, so Testing Library cannot register its own cleanup.
  cleanup();
  vi.restoreAllMocks();
  vi.mocked(toast.error).mockClear();
});

describe("InboxPage", () => {
  it("lists tasks and opens the first one in the detail pane", async () => {
    const router = renderInbox(fakeClient([task("t1"), task("t2"), task("t3")]));
    await waitFor(() => expect(rows()).toHaveLength(3));
    await waitFor(() => expect(router.state.location.pathname).toBe("/inbox/t1"));
    const detail = await screen.findByTestId("inbox-detail");
    expect(await within(detail).findByRole("heading", { name: "Task t1" })).toBeInTheDocument();
    // The pane shows "Loading the draft…" until the detail arrives (the list carries no drafts).
    await waitFor(() => expect(within(detail).getByTestId("task-draft")).toHaveTextContent("Draft of t1"));
    expect(within(row("t1")!).getByText("3h 0m")).toBeInTheDocument();
  });

  it("j moves focus; a approves the focused task, marks it pending sync and moves on", async () => {
    const client = fakeClient([task("t1"), task("t2"), task("t3")]);
    const sent = deferred<DecisionResponse>();
    const decideForReal = client.decide.getMockImplementation()!;
    client.decide.mockImplementationOnce((id) => sent.promise.then(() => decideForReal(id)));
    const router = renderInbox(client, "/inbox/t1");
    await waitFor(() => expect(rows()).toHaveLength(3));

    press("j");
    await waitFor(() => expect(focused()).toBe("t2"));
    expect(router.state.location.pathname).toBe("/inbox/t2");

    press("a");
    await waitFor(() => expect(client.decide).toHaveBeenCalledWith("t2", { action: "approve", by: "alice" }));
    // Optimistic: the row says "pending sync" at once and focus moved to the next task.
    await waitFor(() => expect(row("t2")?.dataset.syncing).toBe("true"));
    expect(within(row("t2")!).getByText("Pending sync")).toBeInTheDocument();
    await waitFor(() => expect(focused()).toBe("t3"));

    // Confirmed: the task leaves the pending list.
    await act(async () => sent.resolve({ task_id: "t2", run_id: "run-t2", pending_sync: false }));
    await waitFor(() => expect(row("t2")).toBeUndefined());
  });

  it("a failed decision rolls back and shows the engine's message", async () => {
    const client = fakeClient([task("t1"), task("t2")]);
    const sent = deferred<DecisionResponse>();
    client.decide.mockImplementationOnce(() => sent.promise);
    renderInbox(client, "/inbox/t1");
    await waitFor(() => expect(rows()).toHaveLength(2));

    press("a");
    await waitFor(() => expect(row("t1")?.dataset.syncing).toBe("true"));
    await act(async () => sent.reject(new ApiError("conflict", "bob decided this task already; reload the inbox", 409)));

    await waitFor(() => expect(row("t1")?.dataset.syncing).toBeUndefined());
    expect(row("t1")).toBeDefined();
    expect(toast.error).toHaveBeenCalledWith(
      "Could not approve “Task t1”",
      expect.objectContaining({ description: "bob decided this task already; reload the inbox" }),
    );
  });

  it("x selects rows and a approves every selected task", async () => {
    const client = fakeClient([task("t1"), task("t2"), task("t3")]);
    renderInbox(client, "/inbox/t1");
    await waitFor(() => expect(rows()).toHaveLength(3));

    press("x");
    press("j");
    await waitFor(() => expect(focused()).toBe("t2"));
    press("x");
    const bar = await screen.findByTestId("batch-bar");
    expect(bar).toHaveTextContent("2 selected");
    expect(row("t3")?.dataset.selected).toBeUndefined();

    press("a");
    await waitFor(() => expect(client.decide).toHaveBeenCalledTimes(2));
    expect(client.decide.mock.calls.map((c) => c[0]).sort()).toEqual(["t1", "t2"]);
    expect(client.decide).toHaveBeenCalledWith("t1", { action: "approve", by: "alice" });
    await waitFor(() => expect(screen.queryByTestId("batch-bar")).toBeNull());
  });

  it("the batch bar's approve button decides the selection (checkbox, shift-click range)", async () => {
    const client = fakeClient([task("t1"), task("t2"), task("t3"), task("t4")]);
    renderInbox(client, "/inbox/t1");
    await waitFor(() => expect(rows()).toHaveLength(4));

    fireEvent.click(within(row("t1")!).getByTestId("row-checkbox"));
    fireEvent.click(within(row("t3")!).getByTestId("row-checkbox"), { shiftKey: true });
    expect(await screen.findByTestId("batch-bar")).toHaveTextContent("3 selected");
    fireEvent.click(screen.getByTestId("batch-approve"));
    await waitFor(() => expect(client.decide).toHaveBeenCalledTimes(3));
    expect(client.decide.mock.calls.map((c) => c[0]).sort()).toEqual(["t1", "t2", "t3"]);
  });

  it("/ focuses search, and keys typed there do not act on tasks", async () => {
    const client = fakeClient([task("t1"), task("t2")]);
    renderInbox(client, "/inbox/t1");
    await waitFor(() => expect(rows()).toHaveLength(2));

    press("/");
    const search = screen.getByTestId("search-input");
    expect(document.activeElement).toBe(search);

    for (const key of ["j", "a", "x", "e"]) fireEvent.keyDown(search, { key });
    expect(client.decide).not.toHaveBeenCalled();
    expect(focused()).toBe("t1");
    expect(screen.queryByTestId("batch-bar")).toBeNull();
    expect(screen.queryByTestId("edit-textarea")).toBeNull();
  });

  it("e opens the editor with the draft; the edit is kept locally and ⌘↵ sends it", async () => {
    const client = fakeClient([task("t1"), task("t2")]);
    renderInbox(client, "/inbox/t1");
    await waitFor(() => expect(rows()).toHaveLength(2));

    press("e");
    const editor = await screen.findByTestId("edit-textarea");
    expect(editor).toHaveValue("Draft of t1");
    expect(document.activeElement).toBe(editor);

    fireEvent.change(editor, { target: { value: "Draft of t1, corrected" } });
    expect(localStorage.getItem("processops.inbox.edit.t1")).toBe("Draft of t1, corrected");
    const diff = screen.getByTestId("edit-diff");
    expect(diff).toHaveTextContent("+1−0words");
    expect(diff.querySelector("ins")).toHaveTextContent(", corrected");

    // While typing, a is a letter, not "approve".
    fireEvent.keyDown(editor, { key: "a" });
    expect(client.decide).not.toHaveBeenCalled();

    fireEvent.keyDown(editor, { key: "Enter", ctrlKey: true });
    await waitFor(() =>
      expect(client.decide).toHaveBeenCalledWith("t1", { action: "edit", by: "alice", text: "Draft of t1, corrected" }),
    );
    await waitFor(() => expect(localStorage.getItem("processops.inbox.edit.t1")).toBeNull());
  });

  it("r asks for a reason from the review's list before rejecting", async () => {
    const client = fakeClient([task("t1")]);
    renderInbox(client, "/inbox/t1");
    await waitFor(() => expect(rows()).toHaveLength(1));

    press("r");
    const dialog = await screen.findByTestId("reject-dialog");
    const submit = within(dialog).getByTestId("submit-reject");
    await within(dialog).findByText("Wrong tone");
    expect(submit).toBeDisabled();

    fireEvent.click(within(dialog).getByText("Wrong tone"));
    fireEvent.change(within(dialog).getByTestId("reject-note"), { target: { value: "too casual" } });
    expect(submit).toBeEnabled();
    fireEvent.click(submit);
    await waitFor(() =>
      expect(client.decide).toHaveBeenCalledWith("t1", { action: "reject", by: "alice", reason: "Wrong tone: too casual" }),
    );
  });

  it("shows inbox zero when nothing is pending", async () => {
    renderInbox(fakeClient([]));
    expect(await screen.findByText("Inbox zero")).toBeInTheDocument();
  });
});
