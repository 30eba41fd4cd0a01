import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/transport";
import type { BlueprintVersions, VersionDiff, VersionInfo } from "../api/types.gen";
import { renderScreen } from "../runs/testing";

const api = vi.hoisted(() => ({
  versions: vi.fn(),
  versionDiff: vi.fn(),
  stageVersion: vi.fn(),
  proposeVersion: vi.fn(),
  rollbackVersion: vi.fn(),
  gateVersion: vi.fn(),
  blueprints: vi.fn(),
}));
vi.mock("../api/client", () => ({ api }));
const me = vi.hoisted(() => ({ name: "gwen", roles: ["governance-lead"], single_user: false }));
vi.mock("../app/me", () => ({
  useMe: () => ({
    name: me.name,
    roles: me.roles,
    me: { name: me.name, roles: me.roles, single_user: me.single_user, users: [] },
    setActAs: () => {},
  }),
}));

const { VersionsPage } = await import("./VersionsPage");

const FILE = "f11e000000000000000000000000000000000000000000000000000000000000";
const PILOT = "b0b0000000000000000000000000000000000000000000000000000000000000";
const MONITORED = "c0c0000000000000000000000000000000000000000000000000000000000000";
const APPROVED = "a0a0000000000000000000000000000000000000000000000000000000000000";
const OLD = "0d0d000000000000000000000000000000000000000000000000000000000000";

const v = (version: string, stage: string | null, extra: Partial<VersionInfo> = {}): VersionInfo => ({
  version,
  name: "HR onboarding",
  created_at: Date.now() - 86_400_000,
  stage,
  current_file: false,
  author: stage ? "gil" : null,
  note: stage ? `Note ${version.slice(0, 4)}` : null,
  feedback: [],
  proposed_at: stage ? Date.now() - 3_600_000 : null,
  approved_at: null,
  gate_summary: null,
  gate_passed: null,
  ...extra,
});

const listed = (): BlueprintVersions => ({
  blueprint: "hr-onboarding",
  managed: true,
  versions: [
    v(FILE, null, { current_file: true }),
    v(MONITORED, "monitored", { author: "gil", feedback: ["tag:missing-deadline"], gate_summary: "12 of 12 cases pass", gate_passed: true }),
    v(PILOT, "pilot", { author: "gwen" }),
    v(APPROVED, "approved", { author: "dan", approved_at: 300 }),
    v(OLD, "retired", { author: "dan", approved_at: 200, note: "The first one" }),
  ],
  history: [
    { version: APPROVED, from: null, to: "draft", reason: "proposed", by: "dan", at: 100, note: "Better welcome" },
    { version: OLD, from: "approved", to: "retired", reason: "superseded", by: "gwen", at: 300, note: null },
    { version: APPROVED, from: "monitored", to: "approved", reason: "asked", by: "gwen", at: 300, note: "Looks good" },
  ],
});

const diff = (changes: VersionDiff["changes"] = []): VersionDiff => ({ blueprint: "hr-onboarding", from: APPROVED, to: FILE, changes });

beforeEach(() => {
  Object.assign(me, { name: "gwen", roles: ["governance-lead"], single_user: false });
  api.versions.mockResolvedValue(listed());
  api.blueprints.mockResolvedValue([]);
  api.versionDiff.mockResolvedValue(
    diff([
      {
        area: "prompts",
        subject: "node welcome (prompt)",
        field: "template",
        change: "changed",
        before: "Hello\nWelcome",
        after: "Hello\nWelcome, the benefits deadline is Friday",
        lines: [
          { tag: " ", text: "Hello" },
          { tag: "-", text: "Welcome" },
          { tag: "+", text: "Welcome, the benefits deadline is Friday" },
        ],
      },
      // `lines` is left out of the JSON when empty.
      { area: "policies", subject: "node check (review)", field: "sla/due", change: "changed", before: "4h", after: "8h" } as VersionDiff["changes"][number],
      { area: "graph", subject: "edge check -approved-> send", field: "", change: "added", before: null, after: null, lines: [] },
    ]),
  );
  api.stageVersion.mockImplementation(async () => listed());
  api.rollbackVersion.mockImplementation(async () => listed());
  api.proposeVersion.mockImplementation(async () => v(FILE, "draft", { current_file: true }));
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

const show = (route = "/blueprints/hr-onboarding/versions") =>
  renderScreen(<VersionsPage />, { path: "/blueprints/:id/versions", route });
const row = async (hash: string) => {
  await screen.findAllByTestId("version-row");
  const el = screen.getAllByTestId("version-row").find((r) => r.dataset.version === hash);
  if (!el) throw new Error(`no row for ${hash}`);
  return el;
};

describe("VersionsPage", () => {
  it("lists the versions with stage, author, note, feedback and the file marker", async () => {
    show();
    const rows = await screen.findAllByTestId("version-row");
    expect(rows.map((r) => r.dataset.stage)).toEqual(["unproposed", "monitored", "pilot", "approved", "retired"]);
    const file = within(rows[0]!);
    expect(file.getByText("f11e0000")).toBeInTheDocument();
    expect(file.getByText("file")).toBeInTheDocument();
    expect(file.getByText("not proposed")).toBeInTheDocument();
    const monitored = within(rows[1]!);
    expect(monitored.getByText("Monitored")).toBeInTheDocument();
    expect(monitored.getByText("gil")).toBeInTheDocument();
    expect(monitored.getByText("Note c0c0")).toBeInTheDocument();
    expect(monitored.getByText("tag:missing-deadline")).toBeInTheDocument();
    expect(monitored.getByText("gate passed")).toHaveAttribute("title", "Regression gate: 12 of 12 cases pass");
    expect(screen.getByTestId("versions-managed")).toHaveTextContent("Under change control");
    expect(api.versions).toHaveBeenCalledWith("hr-onboarding");
    // The stepper marks the stages that hold a version.
    const steps = within(screen.getByTestId("versions-stepper")).getAllByRole("listitem");
    expect(steps.map((s) => s.dataset.filled)).toEqual(["false", "true", "true", "true"]);
  });

  it("offers each version only its next steps, and approves as me", async () => {
    show();
    const monitored = within(await row(MONITORED));
    expect(monitored.getAllByTestId(/^version-action-/).map((b) => b.textContent)).toEqual(["Approve", "Retire"]);
    expect(within(await row(APPROVED)).getAllByTestId(/^version-action-/).map((b) => b.textContent)).toEqual(["Retire"]);
    expect(within(await row(OLD)).queryAllByTestId(/^version-action-/)).toEqual([]);
    expect(within(await row(FILE)).queryAllByTestId(/^version-action-/)).toEqual([]);
    fireEvent.click(monitored.getByTestId("version-action-approved"));
    await waitFor(() =>
      expect(api.stageVersion).toHaveBeenCalledWith({ blueprint: "hr-onboarding", version: MONITORED, stage: "approved", by: "gwen" }),
    );
  });

  it("runs the regression gate on a pilot or monitored version only", async () => {
    api.gateVersion.mockResolvedValue({
      blueprint: "hr-onboarding", baseline_version: APPROVED, candidate_version: MONITORED, threshold: 0.8, at: 1,
      by: "gwen", cases: [], baseline_passed: 0, candidate_passed: 0, passed: true,
    });
    show();
    const monitored = within(await row(MONITORED));
    expect(within(await row(APPROVED)).queryByTestId("version-gate")).toBeNull();
    expect(within(await row(FILE)).queryByTestId("version-gate")).toBeNull();
    expect(within(await row(PILOT)).getByTestId("version-gate")).toBeInTheDocument();
    fireEvent.click(monitored.getByTestId("version-gate"));
    await waitFor(() => expect(api.gateVersion).toHaveBeenCalledWith({ blueprint: "hr-onboarding", version: MONITORED, by: "gwen" }));
    // The listing is read again, so the row's gate badge follows.
    await waitFor(() => expect(api.versions.mock.calls.length).toBeGreaterThan(1));
  });

  it("does not let the author promote their own version, and says why", async () => {
    show();
    const pilot = within(await row(PILOT));
    const monitor = pilot.getByTestId("version-action-monitored");
    expect(monitor).toHaveAttribute("aria-disabled", "true");
    expect(monitor).toHaveAttribute("title", expect.stringContaining("You proposed this version"));
    expect(monitor).toHaveAccessibleDescription(/another governance-lead must/);
    fireEvent.click(monitor);
    expect(api.stageVersion).not.toHaveBeenCalled();
  });

  it("explains a missing role", async () => {
    Object.assign(me, { name: "gil", roles: ["workflow-designer"] });
    show();
    const approve = within(await row(MONITORED)).getByTestId("version-action-approved");
    expect(approve).toHaveAttribute("aria-disabled", "true");
    expect(approve).toHaveAttribute("title", "To promote a version you need the role governance-lead (gil has: workflow-designer)");
  });

  it("in a single-user installation only the author rule applies", async () => {
    Object.assign(me, { name: "gil", roles: [], single_user: true });
    show();
    expect(within(await row(PILOT)).getByTestId("version-action-monitored")).toHaveAttribute("data-allowed", "true");
    expect(within(await row(MONITORED)).getByTestId("version-action-approved")).toHaveAttribute("data-allowed", "false");
  });

  it("shows the engine's refusal as it words it", async () => {
    api.stageVersion.mockRejectedValue(new ApiError("forbidden", "`gwen` cannot promote a version: the store says no", 403));
    show();
    fireEvent.click(within(await row(MONITORED)).getByTestId("version-action-approved"));
    expect(await screen.findByTestId("versions-refusal")).toHaveTextContent("`gwen` cannot promote a version: the store says no");
    fireEvent.click(within(screen.getByTestId("versions-refusal")).getByRole("button", { name: "Dismiss" }));
    expect(screen.queryByTestId("versions-refusal")).not.toBeInTheDocument();
  });

  it("retires after a confirmation", async () => {
    show();
    fireEvent.click(within(await row(APPROVED)).getByTestId("version-action-retired"));
    expect(api.stageVersion).not.toHaveBeenCalled();
    fireEvent.click(await screen.findByTestId("confirm-retire"));
    await waitFor(() =>
      expect(api.stageVersion).toHaveBeenCalledWith({ blueprint: "hr-onboarding", version: APPROVED, stage: "retired", by: "gwen" }),
    );
  });

  it("proposes the file's version with a required note and feedback chips", async () => {
    show();
    const form = within(await screen.findByTestId("propose-form"));
    expect(form.getByText("f11e0000")).toBeInTheDocument();
    fireEvent.click(form.getByTestId("propose-submit"));
    expect(await form.findByText("A change note is required.")).toBeInTheDocument();
    expect(api.proposeVersion).not.toHaveBeenCalled();
    fireEvent.change(form.getByTestId("propose-note"), { target: { value: "Name the benefits deadline" } });
    const refs = form.getByTestId("propose-feedback");
    fireEvent.change(refs, { target: { value: "tag:missing-deadline" } });
    fireEvent.keyDown(refs, { key: "Enter" });
    fireEvent.change(refs, { target: { value: "task-1, task-2" } });
    expect(form.getAllByTestId("propose-ref").map((c) => c.textContent)).toEqual(["tag:missing-deadline", "task-1", "task-2"]);
    fireEvent.click(form.getByRole("button", { name: "Remove task-1" }));
    fireEvent.change(refs, { target: { value: "run:1:draft:0" } });
    fireEvent.click(form.getByTestId("propose-submit"));
    await waitFor(() =>
      expect(api.proposeVersion).toHaveBeenCalledWith({
        blueprint: "hr-onboarding",
        version: FILE,
        by: "gwen",
        note: "Name the benefits deadline",
        feedback: ["tag:missing-deadline", "task-2", "run:1:draft:0"],
      }),
    );
  });

  it("does not offer to propose a version that is already proposed", async () => {
    const data = listed();
    data.versions[0] = v(FILE, "draft", { current_file: true });
    api.versions.mockResolvedValue(data);
    show();
    await screen.findAllByTestId("version-row");
    expect(screen.queryByTestId("propose-form")).not.toBeInTheDocument();
  });

  it("rolls back after saying which version becomes approved again", async () => {
    show();
    fireEvent.click(await screen.findByTestId("versions-rollback"));
    const dialog = within(await screen.findByRole("dialog"));
    expect(dialog.getByText("Becomes approved again").parentElement).toHaveTextContent("0d0d0000");
    expect(dialog.getByText("Retires (rolled back)").parentElement).toHaveTextContent("a0a00000");
    fireEvent.change(dialog.getByTestId("rollback-note"), { target: { value: "Drafts got worse" } });
    fireEvent.click(dialog.getByTestId("confirm-rollback"));
    await waitFor(() => expect(api.rollbackVersion).toHaveBeenCalledWith({ blueprint: "hr-onboarding", by: "gwen", note: "Drafts got worse" }));
  });

  it("shows the history newest first with reasons and notes", async () => {
    show();
    const entries = within(await screen.findByTestId("versions-history")).getAllByTestId("history-entry");
    expect(entries.map((e) => [e.dataset.to, e.dataset.reason])).toEqual([
      ["approved", "asked"],
      ["retired", "superseded"],
      ["draft", "proposed"],
    ]);
    expect(entries[0]).toHaveTextContent("Monitored → Approved");
    expect(entries[0]).toHaveTextContent("“Looks good”");
    expect(entries[1]).toHaveTextContent("superseded");
    expect(entries[2]).toHaveTextContent("Proposed as draft");
  });

  it("groups the diff by area with a line diff for templates", async () => {
    show();
    const groups = await screen.findAllByTestId("diff-group");
    expect(groups.map((g) => g.dataset.area)).toEqual(["graph", "prompts", "policies"]);
    const prompt = within(groups[1]!);
    const lines = prompt.getByTestId("diff-lines").children;
    expect([...lines].map((l) => (l as HTMLElement).dataset.tag)).toEqual([" ", "-", "+"]);
    const policy = within(groups[2]!);
    expect(policy.getByTestId("diff-before")).toHaveTextContent("4h");
    expect(policy.getByTestId("diff-after")).toHaveTextContent("8h");
    expect(within(groups[0]!).getByText("edge check -approved-> send")).toBeInTheDocument();
    expect(screen.getByTestId("diff-summary")).toHaveTextContent("3 changes: 1 added, 2 changed");
    // The engine's defaults: approved → the file's version, shown in the selects.
    expect(api.versionDiff).toHaveBeenCalledWith({ blueprint: "hr-onboarding", from: undefined, to: undefined });
    await waitFor(() => expect(screen.getByTestId("diff-from")).toHaveValue(APPROVED));
    expect(screen.getByTestId("diff-to")).toHaveValue(FILE);
  });

  it("folds unchanged lines far from a change, and unfolds them on click", async () => {
    const lines = [...Array.from({ length: 10 }, (_, i) => ({ tag: " ", text: `same ${i}` })), { tag: "+", text: "new line" }];
    api.versionDiff.mockResolvedValue(
      diff([{ area: "prompts", subject: "node draft (prompt)", field: "template", change: "changed", before: "a\nb", after: "a\nc", lines }]),
    );
    show();
    const fold = await screen.findByTestId("diff-fold");
    expect(fold).toHaveTextContent("7 unchanged lines");
    const shown = () => [...screen.getByTestId("diff-lines").querySelectorAll("[data-tag]")].map((l) => l.textContent);
    expect(shown()).toEqual(["same 7", "same 8", "same 9", "+added: new line"]);
    fireEvent.click(fold);
    expect(shown()).toHaveLength(11);
    expect(screen.queryByTestId("diff-fold")).not.toBeInTheDocument();
  });

  it("keeps the compared versions in the URL", async () => {
    api.versionDiff.mockResolvedValue({ ...diff(), from: OLD, to: APPROVED });
    const { router } = show(`/blueprints/hr-onboarding/versions?from=${OLD}&to=${APPROVED}`);
    expect(await screen.findByText("No changes (canvas positions aside)")).toBeInTheDocument();
    expect(api.versionDiff).toHaveBeenCalledWith({ blueprint: "hr-onboarding", from: OLD, to: APPROVED });
    fireEvent.change(screen.getByTestId("diff-to"), { target: { value: MONITORED } });
    await waitFor(() => expect(router.state.location.search).toBe(`?from=${OLD}&to=${MONITORED}`));
    await waitFor(() => expect(api.versionDiff).toHaveBeenCalledWith({ blueprint: "hr-onboarding", from: OLD, to: MONITORED }));
  });

  it("reads versions named by their first characters in the URL", async () => {
    api.versionDiff.mockResolvedValue({ ...diff(), from: OLD, to: APPROVED });
    show("/blueprints/hr-onboarding/versions?from=0d0d&to=a0a0");
    await screen.findByText("No changes (canvas positions aside)");
    expect(api.versionDiff).toHaveBeenCalledWith({ blueprint: "hr-onboarding", from: "0d0d", to: "a0a0" });
    expect(screen.getByTestId("diff-from")).toHaveValue(OLD);
    expect(screen.getByTestId("diff-to")).toHaveValue(APPROVED);
  });

  it("explains an unmanaged blueprint", async () => {
    api.versions.mockResolvedValue({ blueprint: "hr-onboarding", managed: false, versions: [v(FILE, null, { current_file: true })], history: [] });
    show();
    expect(await screen.findByTestId("versions-unmanaged")).toHaveTextContent("Not under change control — the file's version runs (f11e0000)");
    expect(screen.getByTestId("propose-form")).toBeInTheDocument();
    expect(screen.getByText("Only one version so far")).toBeInTheDocument();
    expect(api.versionDiff).not.toHaveBeenCalled();
    expect(screen.queryByTestId("versions-rollback")).not.toBeInTheDocument();
  });
});
