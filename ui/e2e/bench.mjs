// The app's performance, measured on this machine (a benchmark, not a test: nothing here
// passes or fails). Medians over repeats, and ratios against a baseline measured in the same
// run, because the machines are shared and noisy.
//
//   node ui/e2e/bench.mjs [--repeats N]           (the desktop part needs a display: xvfb-run -a)
//
// 1. Inbox first paint in Chromium against `processops serve`: 100,000 tasks vs 1,000.
// 2. Inbox keyboard navigation at 100,000 tasks: frame intervals while pressing j.
// 3. Designer: frame intervals while panning a 300-node tree vs a 20-node tree.
// 4. Desktop (when WebKitWebDriver and a display are there): cold start to an interactive
//    inbox, and the idle memory of the app with its webview processes.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { binary, engineApi, makeProject } from "./project.mjs";
import { webdriverDriver } from "./drivers.mjs";

const at = process.argv.indexOf("--repeats");
const REPEATS = at > 0 ? Number(process.argv[at + 1]) : 5;
const children = [];
process.on("exit", () => children.forEach((c) => c.exitCode === null && c.kill("SIGTERM")));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (x) => `${x.toFixed(1)} ms`;

async function serve(project) {
  const child = spawn(binary("processops"), ["--project", project, "serve", "--addr", "127.0.0.1:0", "--ui", join(import.meta.dirname, "../dist")], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  for (let i = 0; i < 600; i++) {
    const m = out.match(/at (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) return { url: m[1], child };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`serve did not start:\n${out}`);
}

function projectWithTasks(count) {
  const project = makeProject();
  const r = spawnSync(binary("processops"), ["--project", project, "dev", "synthetic-tasks", "--count", String(count)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return project;
}

async function browser() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Milliseconds from navigation start to the first inbox row on screen. */
async function inboxFirstPaint(b, url) {
  const page = await b.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(`${url}/#/inbox`);
  await page.locator('[data-testid="inbox-row"]').first().waitFor({ timeout: 120_000 });
  const t = await page.evaluate(() => performance.now());
  return { t, page };
}

/** Frame intervals (ms) while `act` runs, from requestAnimationFrame. */
async function frames(page, act) {
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const tick = (now) => {
      window.__frames.push(now - last);
      last = now;
      if (window.__recording) requestAnimationFrame(tick);
    };
    window.__recording = true;
    requestAnimationFrame(tick);
  });
  await act();
  return page.evaluate(() => {
    window.__recording = false;
    return window.__frames.slice(1);
  });
}

const rows = [];
const b = await browser();

// 1 + 2. The inbox.
const inbox = {};
for (const count of [1_000, 100_000]) {
  const { url, child } = await serve(projectWithTasks(count));
  const times = [];
  let last;
  for (let i = 0; i < REPEATS; i++) {
    const { t, page } = await inboxFirstPaint(b, url);
    times.push(t);
    if (last) await last.close();
    last = page;
  }
  inbox[count] = median(times);
  if (count === 100_000) {
    await last.locator('[data-testid="inbox-row"]').first().click();
    const f = await frames(last, async () => {
      for (let i = 0; i < 60; i++) {
        await last.keyboard.press("j");
        await new Promise((r) => setTimeout(r, 30));
      }
    });
    rows.push(["inbox: j × 60 at 100,000 tasks, frame interval p50 / p95 / max", `${ms(median(f))} / ${ms(pct(f, 95))} / ${ms(Math.max(...f))}`, `${f.filter((x) => x > 25).length} of ${f.length} frames over 25 ms`]);
  }
  await last.close();
  child.kill("SIGTERM");
}
rows.unshift(["inbox first paint, 100,000 tasks (median)", ms(inbox[100_000]), `${(inbox[100_000] / inbox[1_000]).toFixed(2)}× the 1,000-task inbox (${ms(inbox[1_000])})`]);

// 3. The designer.
function chain(id, n) {
  const nodes = [];
  for (let i = 0; i < n; i++) {
    nodes.push(`  - id: step_${i}\n    kind: transform\n    set:\n      value: "{{ trigger.text | default('x') }} ${i}"${i + 1 < n ? `\n    next: step_${i + 1}` : ""}`);
  }
  return `id: ${id}\nname: Benchmark chain of ${n}\nstart: step_0\ntriggers:\n  - kind: manual\n    id: go\nnodes:\n${nodes.join("\n")}\n`;
}
{
  const { url, child } = await serve(makeProject());
  const api = engineApi(url);
  const designer = {};
  for (const n of [20, 300]) {
    await api.post("/api/blueprints", { source: chain(`bench-${n}`, n) });
    const page = await b.newPage({ viewport: { width: 1440, height: 900 } });
    const opened = Date.now();
    await page.goto(`${url}/#/designer/bench-${n}`);
    await page.locator('[data-testid="designer-node"]').first().waitFor({ timeout: 60_000 });
    const openMs = Date.now() - opened;
    const pane = await page.locator(".react-flow__pane").boundingBox();
    const f = await frames(page, async () => {
      for (let round = 0; round < 3; round++) {
        await page.mouse.move(pane.x + pane.width / 2, pane.y + pane.height / 2);
        await page.mouse.down();
        for (let i = 0; i < 40; i++) await page.mouse.move(pane.x + pane.width / 2 + i * 8, pane.y + pane.height / 2 + i * 4);
        await page.mouse.up();
      }
    });
    designer[n] = { p50: median(f), p95: pct(f, 95), max: Math.max(...f), openMs };
    await page.close();
  }
  child.kill("SIGTERM");
  rows.push([
    "designer pan, 300 nodes, frame interval p50 / p95 / max",
    `${ms(designer[300].p50)} / ${ms(designer[300].p95)} / ${ms(designer[300].max)}`,
    `20 nodes: ${ms(designer[20].p50)} / ${ms(designer[20].p95)}; p95 ratio ${(designer[300].p95 / designer[20].p95).toFixed(2)}×`,
  ]);
  rows.push(["designer open to first node, 300 nodes", ms(designer[300].openMs), `20 nodes: ${ms(designer[20].openMs)}`]);
}
await b.close();

// 4. The desktop app.
function treeRss(rootPid) {
  const byParent = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
      byParent.set(ppid, [...(byParent.get(ppid) ?? []), Number(pid)]);
    } catch {
      /* gone */
    }
  }
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    try {
      const kb = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
      total += kb;
    } catch {
      /* gone */
    }
    stack.push(...(byParent.get(pid) ?? []));
  }
  return total / 1024;
}
if (process.env.DISPLAY && spawnSync("which", ["WebKitWebDriver"]).status === 0) {
  const port = 4900 + Math.floor(Math.random() * 90);
  const wd = spawn("WebKitWebDriver", [`--port=${port}`], { env: { ...process.env, TAURI_WEBVIEW_AUTOMATION: "true" }, stdio: "ignore" });
  children.push(wd);
  await new Promise((r) => setTimeout(r, 1500));
  const starts = [];
  let rss = 0;
  for (let i = 0; i < Math.min(REPEATS, 3); i++) {
    const project = makeProject();
    const t0 = Date.now();
    const d = await webdriverDriver(`http://127.0.0.1:${port}`, binary("processops-desktop"), ["--project", project]);
    await d.waitFor('[data-testid="acting-as"]', 60_000);
    await d.waitFor("input", 60_000);
    starts.push(Date.now() - t0);
    if (i === 0) {
      await new Promise((r) => setTimeout(r, 5000));
      const pid = Number(spawnSync("pgrep", ["-n", "-f", `processops-desktop --project ${project}`], { encoding: "utf8" }).stdout.trim());
      if (pid) rss = treeRss(pid);
    }
    await d.close();
    const addr = join(project, ".processops/engine.addr");
    for (let j = 0; j < 50 && existsSync(addr); j++) await new Promise((r) => setTimeout(r, 100));
  }
  const build = binary("processops-desktop").includes("/release/") ? "release" : "debug";
  rows.push([`desktop cold start to interactive inbox (${build} build, median)`, ms(median(starts)), "from launching the binary through WebKitWebDriver"]);
  rows.push(["desktop idle memory (app + WebKit processes, RSS)", `${rss.toFixed(0)} MB`, "5 s after start, demo-sized project"]);
} else {
  rows.push(["desktop", "skipped", "needs WebKitWebDriver and a display (run under xvfb-run -a)"]);
}

console.log("| measure | result | baseline / note |\n|---|---|---|");
for (const [a, c, d] of rows) console.log(`| ${a} | ${c} | ${d} |`);
process.exit(0);
