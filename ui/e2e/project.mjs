// A scratch ProcessOps project for an end-to-end run: the repository's example blueprints and
// demo payloads, a scripted model (instant, offline), seeded with runs waiting in the inbox.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repo = resolve(import.meta.dirname, "../..");

export function makeProject() {
  const root = mkdtempSync(join(tmpdir(), "processops-e2e-"));
  cpSync(join(repo, "blueprints"), join(root, "blueprints"), { recursive: true });
  mkdirSync(join(root, "ui"), { recursive: true });
  writeFileSync(
    join(root, "processops.toml"),
    [
      "# End-to-end tests: canned model replies, no network, no model files.",
      "[providers.default]",
      'kind = "scripted"',
      "",
      "[retrieval]",
      'embeddings = "off"',
      "",
      "[profile]",
      'name = "e2e-manager"',
      "",
    ].join("\n"),
  );
  return root;
}

/** The most recently built of the release and debug binaries (never a stale one). */
export function binary(name) {
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, "target");
  const built = ["release", "debug"]
    .map((profile) => join(target, profile, name))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!built.length) throw new Error(`${name} is not built (looked in ${target}/{release,debug}); build it with cargo first`);
  return built[0];
}

/** A tiny client for the engine's HTTP API, for seeding and for asserting on the store. */
export function engineApi(base) {
  async function call(method, path, body) {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const value = text ? JSON.parse(text) : undefined;
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${text}`);
    return value;
  }
  return {
    base,
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    put: (path, body) => call("PUT", path, body),
    async waitFor(what, check, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const value = await check();
        if (value) return value;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}

/** Start one run per demo payload of these blueprints and wait until each parks or ends. */
export async function seed(api, blueprints) {
  const payloads = join(repo, "demo/payloads");
  const started = [];
  for (const file of readdirSync(payloads).sort()) {
    const blueprint = file.split(".")[0];
    if (!blueprints.includes(blueprint)) continue;
    const payload = JSON.parse(readFileSync(join(payloads, file), "utf8"));
    const r = await api.post("/api/runs", { blueprint, payload, wait: true });
    started.push(r.run_id);
  }
  return started;
}
