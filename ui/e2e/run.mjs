// End-to-end: the same scenarios in a real browser against `processops serve` (default) and
// in the real desktop webview through WebKitWebDriver (`--desktop`). Each scenario acts
// through the UI and then asserts on the engine's store through its HTTP API.
//
//   node e2e/run.mjs [--desktop] [--only NAME]
//   PROCESSOPS_SCREENSHOTS=1 also saves a screenshot of every screen in docs/screenshots/.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { binary, engineApi, makeProject, repo, seed } from "./project.mjs";
import { playwrightDriver, webdriverDriver } from "./drivers.mjs";
import { scenarios } from "./scenarios.mjs";

const desktop = process.argv.includes("--desktop");
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt > 0 ? process.argv[onlyAt + 1] : undefined;
const shotsDir = process.env.PROCESSOPS_SCREENSHOTS ? join(repo, "docs/screenshots") : undefined;
if (shotsDir) mkdirSync(shotsDir, { recursive: true });

const children = [];
function start(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  children.push(child);
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  return { child, output: () => output };
}
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
}
process.on("exit", cleanup);

async function until(what, check, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startBrowserTarget(project) {
  const serve = start(binary("processops"), ["--project", project, "serve", "--addr", "127.0.0.1:0", "--ui", join(repo, "ui/dist")]);
  const url = await until("processops serve to listen", () => serve.output().match(/at (http:\/\/127\.0\.0\.1:\d+)/)?.[1], 60_000).catch((e) => {
    throw new Error(`${e.message}\n${serve.output()}`);
  });
  const driver = await playwrightDriver(url);
  return { driver, api: engineApi(url), logs: serve.output };
}

async function startDesktopTarget(project) {
  const port = 4400 + Math.floor(Math.random() * 500);
  const wd = start("WebKitWebDriver", [`--port=${port}`], { env: { ...process.env, TAURI_WEBVIEW_AUTOMATION: "true" } });
  const driverUrl = `http://127.0.0.1:${port}`;
  await until("WebKitWebDriver", async () => {
    try {
      return (await fetch(`${driverUrl}/status`)).ok;
    } catch {
      return false;
    }
  }, 20_000);
  const driver = await webdriverDriver(driverUrl, binary("processops-desktop"), ["--project", project]);
  // The window is ready when the app has rendered its frame.
  await driver.waitFor('nav[aria-label="Main"]', 60_000);
  const addrFile = join(project, ".processops/engine.addr");
  const addr = await until("the desktop engine's address", () => existsSync(addrFile) && readFileSync(addrFile, "utf8").trim(), 60_000);
  return { driver, api: engineApi(`http://${addr}`), logs: wd.output };
}

const project = makeProject();
let failed = 0;
const target = desktop ? await startDesktopTarget(project) : await startBrowserTarget(project);
const { driver, api } = target;
try {
  await seed(api, ["sales-rfp-response", "support-triage", "hr-onboarding", "legal-clause-comparison"]);
  for (const scenario of scenarios) {
    if (only && scenario.name !== only) continue;
    const started = Date.now();
    try {
      await scenario.run({ driver, api, project, shot: async (name) => shotsDir && driver.screenshot(join(shotsDir, `${name}.png`)) });
      console.log(`ok   ${driver.name}: ${scenario.name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${driver.name}: ${scenario.name}\n     ${String(e?.stack ?? e).split("\n").join("\n     ")}`);
      const out = join(repo, "ui/e2e/out");
      mkdirSync(out, { recursive: true });
      await driver.screenshot(join(out, `${driver.name}-${scenario.name}.png`)).catch(() => {});
    }
  }
  if (driver.errors.length) {
    failed += 1;
    console.log(`FAIL ${driver.name}: uncaught errors in the page:\n  ${driver.errors.join("\n  ")}`);
  }
} finally {
  await driver.close().catch(() => {});
  cleanup();
  if (!failed) rmSync(project, { recursive: true, force: true });
  else console.log(`the scratch project is kept for inspection: ${project}\n--- engine log ---\n${target.logs().slice(-4000)}`);
}
console.log(failed ? `${failed} end-to-end scenario(s) failed (${driver.name})` : `all end-to-end scenarios passed (${driver.name})`);
process.exit(failed ? 1 : 0);
