// The user journeys of the issue, each acting through the UI and then checking the store
// through the engine's API (never the screen alone).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { binary } from "./project.mjs";

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const scenarios = [
  {
    name: "designer builds a tree from the palette and saves a valid file",
    async run({ driver, api, project, shot }) {
      await driver.goto("#/designer");
      await driver.click('[data-testid="new-blueprint-button"]');
      await driver.waitFor('[data-node-id="draft"]');
      const hash = await driver.eval("() => window.location.hash");
      const id = decodeURIComponent(hash.split("/").pop());
      assert(id && id !== "designer", `the new blueprint's id is in the URL (${hash})`);
      // Select the draft step, then add a review after it from the palette (connected).
      await driver.click('[data-node-id="draft"]');
      await driver.click('[data-testid="palette-item-review"]');
      await driver.waitFor('[data-node-id="review"]');
      await driver.waitFor('[data-testid="validation-status"][data-state="valid"][data-current="true"]');
      await shot("designer");
      await driver.click('[data-testid="save-button"]');
      const saved = await api.waitFor(`blueprint ${id} to be saved`, async () =>
        (await api.get("/api/blueprints")).find((b) => b.id === id),
      );
      assert(saved.nodes === 2, `the saved blueprint has the 2 nodes drawn (has ${saved.nodes})`);
      const file = join(project, "blueprints", `${id}.yaml`);
      assert(existsSync(file), `${file} was written`);
      const check = spawnSync(binary("processops"), ["--project", project, "validate", file], { encoding: "utf8" });
      assert(check.status === 0, `processops validate accepts the file: ${check.stdout}${check.stderr}`);
      const source = (await api.get(`/api/blueprints/${id}/source`)).source;
      assert(/kind: review/.test(source) && /next: review/.test(source), `the YAML has the review after the draft:\n${source}`);
    },
  },
  {
    name: "manager approves one task with an edit and batch-approves three",
    async run({ driver, api, shot }) {
      await driver.goto("#/inbox");
      await driver.waitFor('[data-testid="inbox-row"]');
      await sleep(300);
      await shot("inbox");
      const first = await driver.attribute('[data-testid="inbox-row"]', "data-task-id", 0);
      await driver.click('[data-testid="inbox-row"]');
      await driver.waitFor('[data-testid="inbox-detail"]');
      await driver.click('[data-testid="edit-button"]');
      await driver.waitFor('[data-testid="edit-textarea"]');
      const edited = `Edited in the end-to-end test (${driver.name}).`;
      await driver.fill('[data-testid="edit-textarea"]', edited);
      await shot("inbox-edit");
      await driver.click('[data-testid="submit-edit"]');
      const decided = await api.waitFor("the edit to be recorded", async () => {
        const t = await api.get(`/api/tasks/${first}`);
        return t.task.status === "decided" ? t : null;
      });
      assert(decided.task.decision.action === "edit", `recorded as an edit: ${JSON.stringify(decided.task.decision)}`);
      assert(decided.task.decision.text === edited, `the edited text was recorded: ${decided.task.decision.text}`);
      assert(decided.diff && decided.diff.includes(edited), "the decision keeps the diff");

      await driver.waitGone(`[data-testid="inbox-row"][data-task-id="${first}"]`);
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await driver.attribute('[data-testid="inbox-row"]', "data-task-id", i));
      assert(ids.every(Boolean) && new Set(ids).size === 3, `three tasks to batch-approve: ${ids}`);
      // Tick each row by its id, not its position: the virtual list may re-order its DOM nodes
      // between reads, and a second click on the same row would untick it.
      for (const id of ids) {
        await driver.click(`[data-testid="inbox-row"][data-task-id="${id}"] [data-testid="row-checkbox"]`);
        await driver.waitFor(`[data-testid="inbox-row"][data-task-id="${id}"][data-selected="true"]`);
      }
      await driver.waitFor('[data-testid="batch-bar"]');
      const selected = await driver.text('[data-testid="batch-bar"]');
      assert(/\b3 selected/.test(selected), `the batch bar counts the three ticked rows: ${selected}`);
      await shot("inbox-batch");
      await driver.click('[data-testid="batch-approve"]');
      for (const id of ids) {
        const t = await api.waitFor(`task ${id} to be approved`, async () => {
          const t = await api.get(`/api/tasks/${id}`);
          return t.task.status === "decided" ? t : null;
        });
        assert(t.task.decision.action === "approve", `task ${id} approved: ${JSON.stringify(t.task.decision)}`);
        assert(t.task.decision.by === "e2e-manager", `decided as the profile: ${t.task.decision.by}`);
      }
    },
  },
  {
    name: "evaluator tags an output",
    async run({ driver, api, shot }) {
      // A finished run to evaluate: approve an RFP answer (its output writes a file).
      const pending = await api.get("/api/tasks?blueprint=sales-rfp-response");
      assert(pending.length > 0, "a sales-rfp-response task waits");
      const task = pending[0];
      await api.post(`/api/tasks/${task.id}/decision`, { action: "approve", by: "e2e-setup" });
      await api.waitFor("the RFP run to complete", async () => (await api.get(`/api/runs/${task.run_id}`)).run.status === "completed");
      await driver.goto("#/evaluate");
      await driver.waitFor('[data-testid="eval-item"]');
      await driver.waitFor('[data-testid^="eval-tag-"]');
      const testid = await driver.attribute('[data-testid^="eval-tag-"]', "data-testid", 0);
      const tag = testid.replace("eval-tag-", "");
      await driver.click(`[data-testid="${testid}"]`);
      await driver.click('[data-testid="eval-rating-4"]');
      await shot("evaluate");
      await driver.click('[data-testid="eval-submit"]');
      // The tag is saved on click, the rating on submit: wait for both, not the first.
      const feedback = await api.waitFor("the tag and the rating to reach the store", async () => {
        const all = await api.get("/api/feedback?by=e2e-manager");
        return all.find((f) => f.tags.includes(tag) && f.rating !== null) ?? null;
      });
      assert(feedback.rating === 4, `the rating was recorded: ${JSON.stringify(feedback)}`);
    },
  },
  {
    name: "process owner reads the metrics and opens the runs behind a number",
    async run({ driver, api, shot }) {
      // The manager scenario edited one draft and approved three: human overrides exist.
      const report = await api.get("/api/metrics");
      const override = report.total.human_override;
      assert(override.num >= 1 && override.den >= 4, `overrides counted: ${JSON.stringify(override)}`);
      await driver.goto("#/metrics");
      await driver.waitFor('[data-testid="kpi-override"] [data-testid="kpi-fraction"]');
      const fraction = await driver.text('[data-testid="kpi-override"] [data-testid="kpi-fraction"]');
      assert(
        fraction.includes(`${override.num} of ${override.den} human decisions`),
        `the card shows the fraction behind the number: ${fraction}`,
      );
      await driver.waitFor('[data-testid="metrics-blueprint"]');
      assert(
        (await driver.count('[data-testid="metrics-blueprint"]')) === report.blueprints.length,
        "one table row per process with runs",
      );
      await shot("metrics");
      await driver.click('[data-testid="kpi-override"]');
      await driver.waitFor('[data-testid="drill-run"]');
      const behind = await api.get("/api/metrics/runs?metric=overrides");
      assert(behind.length >= 1, "the API names the runs behind the overrides");
      await api.waitFor("the drill-down to list every run behind the number", async () =>
        (await driver.count('[data-testid="drill-run"]')) === behind.length,
      );
      const href = await driver.attribute('[data-testid="drill-run"]', "href", 0);
      assert(href && behind.some((r) => href.endsWith(`/runs/${r.run_id}`)), `each row links to its run: ${href}`);
      await shot("metrics-drill");
    },
  },
  {
    name: "runs, blueprints and settings screens show the store",
    async run({ driver, api, shot }) {
      const runs = await api.get("/api/runs?limit=500");
      await driver.goto("#/runs");
      await driver.waitFor('[data-testid="run-row"]');
      const shown = await driver.count('[data-testid="run-row"]');
      assert(shown === runs.length, `every run is listed (${shown} of ${runs.length})`);
      await driver.click('[data-testid="run-row"]');
      await driver.waitFor('[data-testid="run-step"]');
      await shot("runs");
      const blueprints = await api.get("/api/blueprints");
      await driver.goto("#/blueprints");
      await driver.waitFor('[data-testid="blueprint-card"]');
      assert((await driver.count('[data-testid="blueprint-card"]')) === blueprints.length, "every blueprint has a card");
      await shot("blueprints");
      await driver.goto("#/settings");
      await driver.waitFor('[data-testid="settings-theme-dark"]');
      await shot("settings");
      await driver.click('[data-testid="settings-theme-dark"]');
      const dark = await driver.eval("() => document.documentElement.classList.contains('dark')");
      assert(dark === true, "the dark theme applies");
      await driver.goto("#/designer/support-triage");
      await driver.waitFor('[data-node-id="classify"]');
      await sleep(500);
      await shot("designer-dark");
      await driver.goto("#/inbox");
      await driver.waitFor('[data-testid="inbox-row"]');
      await sleep(300);
      await shot("inbox-dark");
      await driver.eval("() => { localStorage.removeItem('processops.theme'); document.documentElement.classList.remove('dark'); return true; }");
    },
  },
  {
    name: "governance lead promotes a version and the author cannot approve their own",
    async run({ driver, api }) {
      // The e2e project is a single-user installation (no [users]): every role passes, but
      // nobody promotes their own version. The app acts as its profile, e2e-manager; the other
      // people act through the API.
      const id = "hr-onboarding";
      const page = `#/blueprints/${id}/versions`;
      const rowOf = (v) => `[data-testid="version-row"][data-version="${v}"]`;
      const listed = () => api.get(`/api/versions?blueprint=${id}`);
      const stageOf = async (v) => (await listed()).versions.find((x) => x.version === v)?.stage;
      const v1 = (await listed()).versions.find((v) => v.current_file).version;

      // A designer proposes the file's version and starts its pilot.
      await api.post("/api/versions/propose", { blueprint: id, by: "e2e-designer", note: "Baseline welcome kit" });
      await api.post("/api/versions/stage", { blueprint: id, version: v1, stage: "pilot", by: "e2e-designer" });

      // The app's user, not its author, promotes it through the screen: monitor, then approve.
      await driver.goto(page);
      await driver.waitFor(`${rowOf(v1)}[data-stage="pilot"]`);
      await driver.waitFor('[data-testid="versions-managed"]');
      await driver.click(`${rowOf(v1)} [data-testid="version-action-monitored"]`);
      await driver.waitFor(`${rowOf(v1)}[data-stage="monitored"]`);
      await driver.click(`${rowOf(v1)} [data-testid="version-action-approved"]`);
      await driver.waitFor(`${rowOf(v1)}[data-stage="approved"]`);
      assert((await stageOf(v1)) === "approved", "the store has the version approved");
      const promoted = (await listed()).history.filter((h) => h.version === v1 && h.by === "e2e-manager").map((h) => h.to);
      assert(promoted.join() === "monitored,approved", `promoted by the app's user: ${promoted}`);

      // A prompt edit makes a new version, which the app's user proposes and pilots.
      const source = (await api.get(`/api/blueprints/${id}/source`)).source;
      const line = "      5. Who to ask for what.\n";
      assert(source.includes(line), "the welcome kit template has its list");
      const edited = source.replace(line, `${line}      6. The deadline to choose benefits, if the policies name one.\n`);
      const saved = await api.put(`/api/blueprints/${id}/source`, { source: edited });
      const v2 = saved.version;
      assert(v2 && v2 !== v1, "the edit is a new version");
      await driver.reload();
      await driver.waitFor('[data-testid="propose-form"]');
      await driver.fill('[data-testid="propose-note"]', "Name the benefits deadline");
      await driver.type('[data-testid="propose-feedback"]', "tag:missing-deadline,");
      await driver.waitFor('[data-testid="propose-ref"]');
      await driver.click('[data-testid="propose-submit"]');
      await driver.waitFor(`${rowOf(v2)}[data-stage="draft"]`);
      const proposed = (await listed()).versions.find((v) => v.version === v2);
      assert(proposed.author === "e2e-manager" && proposed.note === "Name the benefits deadline", `proposed as me: ${JSON.stringify(proposed)}`);
      assert(proposed.feedback.includes("tag:missing-deadline"), `with its feedback: ${proposed.feedback}`);
      await driver.click(`${rowOf(v2)} [data-testid="version-action-pilot"]`);
      await driver.waitFor(`${rowOf(v2)}[data-stage="pilot"]`);

      // Its author cannot promote it: the screen says why, and the engine refuses anyway.
      const monitor = `${rowOf(v2)} [data-testid="version-action-monitored"]`;
      assert((await driver.attribute(monitor, "data-allowed")) === "false", "the author's Monitor button is disabled");
      const why = await driver.attribute(monitor, "title");
      assert(/You proposed this version/.test(why), `the button says why: ${why}`);
      assert((await driver.attribute(monitor, "aria-disabled")) === "true", "and disabled for assistive technology too");
      await api.post("/api/versions/stage", { blueprint: id, version: v2, stage: "monitored", by: "e2e-lead" });
      const refused = await api
        .post("/api/versions/stage", { blueprint: id, version: v2, stage: "approved", by: "e2e-manager" })
        .then(() => null, (e) => String(e.message));
      assert(refused && /HTTP 403/.test(refused) && refused.includes("proposed this version and cannot promote it"), `the engine refuses the author: ${refused}`);
      await driver.reload();
      const approve = `${rowOf(v2)}[data-stage="monitored"] [data-testid="version-action-approved"]`;
      await driver.waitFor(approve);
      assert((await driver.attribute(approve, "data-allowed")) === "false", "the author's Approve button is disabled");

      // Another governance lead runs the prompt regression gate (a changed prompt needs one
      // before approval) and approves it; the previous approved version retires.
      await api.post("/api/versions/gate", { blueprint: id, version: v2, by: "e2e-lead" });
      await api.post("/api/versions/stage", { blueprint: id, version: v2, stage: "approved", by: "e2e-lead", note: "Deadline named" });
      await driver.reload();
      await driver.waitFor(`${rowOf(v2)}[data-stage="approved"]`);
      await driver.waitFor(`${rowOf(v1)}[data-stage="retired"]`);
      await driver.waitFor('[data-testid="history-entry"][data-reason="superseded"]');

      // The diff from the old version to the new shows the prompt's new line.
      await driver.goto(`${page}?from=${v1}&to=${v2}`);
      await driver.waitFor('[data-testid="diff-group"][data-area="prompts"] [data-testid="diff-lines"]');
      const added = await driver.text('[data-testid="diff-group"][data-area="prompts"] [data-testid="diff-lines"] [data-tag="+"]');
      assert(added.includes("6. The deadline to choose benefits"), `the line diff shows the added line: ${added}`);
      const diff = await api.get(`/api/versions/diff?blueprint=${id}&from=${v1}&to=${v2}`);
      assert(diff.changes.length >= 1 && diff.changes.every((c) => c.area === "prompts"), `only the prompt changed: ${JSON.stringify(diff.changes)}`);

      // Rolling back brings the first version back for everyone.
      await driver.click('[data-testid="versions-rollback"]');
      await driver.click('[data-testid="confirm-rollback"]');
      await driver.waitFor(`${rowOf(v1)}[data-stage="approved"]`);
      assert((await stageOf(v1)) === "approved" && (await stageOf(v2)) === "retired", "the store has the rollback");
    },
  },
];
