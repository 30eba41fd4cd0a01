// The scenarios drive the app through one small interface, implemented twice: Playwright on
// Debian's Chromium (the browser against `processops serve`) and the W3C WebDriver protocol
// spoken to WebKitWebDriver (the real Tauri webview). Selectors are CSS.
import { writeFileSync } from "node:fs";

const KEYS = { Enter: "\uE007", Escape: "\uE00C", Control: "\uE009", Shift: "\uE008", Meta: "\uE03D", Tab: "\uE004", Backspace: "\uE003", Delete: "\uE017", ArrowDown: "\uE015", ArrowUp: "\uE013" };

export async function playwrightDriver(baseUrl) {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return {
    name: "browser",
    errors,
    async goto(hash) {
      await page.goto(`${baseUrl}/${hash}`);
    },
    async reload() {
      await page.reload();
    },
    async waitFor(css, timeout = 15_000) {
      await page.locator(css).first().waitFor({ state: "visible", timeout });
    },
    async waitGone(css, timeout = 15_000) {
      await page.locator(css).first().waitFor({ state: "detached", timeout });
    },
    async click(css, options = {}) {
      await page.locator(css).nth(options.nth ?? 0).click({ modifiers: options.modifiers });
    },
    async fill(css, text) {
      await page.locator(css).first().fill(text);
    },
    async type(css, text) {
      await page.locator(css).first().pressSequentially(text);
    },
    async press(key) {
      await page.keyboard.press(key);
    },
    async count(css) {
      return page.locator(css).count();
    },
    async text(css) {
      return (await page.locator(css).first().textContent()) ?? "";
    },
    async attribute(css, name, nth = 0) {
      return page.locator(css).nth(nth).getAttribute(name);
    },
    async dragTo(css, targetCss) {
      await page.locator(css).first().dragTo(page.locator(targetCss).first());
    },
    async eval(js) {
      return page.evaluate(`(${js})()`);
    },
    async screenshot(path) {
      await page.screenshot({ path });
    },
    async close() {
      await browser.close();
    },
  };
}

/** A W3C WebDriver session on WebKitWebDriver that starts the desktop app binary. */
export async function webdriverDriver(driverUrl, appBinary, appArgs) {
  async function wd(method, path, body) {
    const r = await fetch(`${driverUrl}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json();
    if (!r.ok || (json.value && json.value.error)) {
      throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(json.value ?? json).slice(0, 500)}`);
    }
    return json.value;
  }
  const session = await wd("POST", "/session", {
    capabilities: {
      alwaysMatch: { "webkitgtk:browserOptions": { binary: appBinary, args: appArgs } },
    },
  });
  const sid = session.sessionId;
  const s = (path) => `/session/${sid}${path}`;
  const ELEMENT = "element-6066-11e4-a52e-4f735466cecc";
  async function find(css) {
    const els = await wd("POST", s("/elements"), { using: "css selector", value: css });
    // The W3C key, or whatever single key this driver uses for element references.
    return els.map((e) => e[ELEMENT] ?? e.ELEMENT ?? Object.values(e)[0]);
  }
  async function waitUntil(what, check, timeout) {
    const until = Date.now() + timeout;
    for (;;) {
      const v = await check();
      if (v) return v;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  // WebKitWebDriver has no "is displayed" endpoint and does not pass element references to
  // scripts: ask the page for the index of the first matching element that has a box.
  async function firstVisible(css) {
    return wd("POST", s("/execute/sync"), {
      script: "return Array.from(document.querySelectorAll(arguments[0])).findIndex((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden');",
      args: [css],
    });
  }
  async function one(css, timeout = 15_000) {
    return waitUntil(css, async () => {
      const index = await firstVisible(css);
      if (index < 0) return null;
      return (await find(css))[index] ?? null;
    }, timeout);
  }
  function keySequence(key) {
    const parts = key.split("+");
    const main = parts.pop();
    const mods = parts.map((m) => KEYS[m === "ControlOrMeta" ? "Control" : m]);
    const value = KEYS[main] ?? main;
    return [
      ...mods.map((m) => ({ type: "keyDown", value: m })),
      { type: "keyDown", value },
      { type: "keyUp", value },
      ...mods.reverse().map((m) => ({ type: "keyUp", value: m })),
    ];
  }
  return {
    name: "desktop",
    errors: [],
    async goto(hash) {
      await wd("POST", s("/execute/sync"), { script: "window.location.hash = arguments[0];", args: [hash.replace(/^#/, "")] });
    },
    async reload() {
      await wd("POST", s("/refresh"), {});
    },
    async waitFor(css, timeout = 15_000) {
      await one(css, timeout);
    },
    async waitGone(css, timeout = 15_000) {
      await waitUntil(`${css} to go`, async () => (await find(css)).length === 0, timeout);
    },
    async click(css, options = {}) {
      const nth = options.nth ?? 0;
      const id = await waitUntil(css, async () => (await find(css))[nth] ?? null, 15_000);
      if (options.modifiers?.length) {
        const mods = options.modifiers.map((m) => KEYS[m]);
        await wd("POST", s("/actions"), {
          actions: [
            { type: "key", id: "kb", actions: mods.map((m) => ({ type: "keyDown", value: m })) },
          ],
        });
        await wd("POST", s(`/element/${id}/click`), {});
        await wd("POST", s("/actions"), {
          actions: [{ type: "key", id: "kb", actions: mods.map((m) => ({ type: "keyUp", value: m })) }],
        });
        await wd("DELETE", s("/actions"));
      } else {
        await wd("POST", s(`/element/${id}/click`), {});
      }
    },
    async fill(css, text) {
      const id = await one(css);
      await wd("POST", s(`/element/${id}/clear`), {});
      await wd("POST", s(`/element/${id}/value`), { text });
    },
    async type(css, text) {
      const id = await one(css);
      await wd("POST", s(`/element/${id}/value`), { text });
    },
    async press(key) {
      await wd("POST", s("/actions"), { actions: [{ type: "key", id: "kb", actions: keySequence(key) }] });
      await wd("DELETE", s("/actions"));
    },
    async count(css) {
      return (await find(css)).length;
    },
    async text(css) {
      return wd("GET", s(`/element/${await one(css)}/text`));
    },
    async attribute(css, name, nth = 0) {
      const ids = await find(css);
      return ids[nth] ? wd("GET", s(`/element/${ids[nth]}/attribute/${name}`)) : null;
    },
    async dragTo() {
      throw new Error("drag is not used by the shared scenarios");
    },
    async eval(js) {
      return wd("POST", s("/execute/sync"), { script: `return (${js})();`, args: [] });
    },
    async screenshot(path) {
      writeFileSync(path, Buffer.from(await wd("GET", s("/screenshot")), "base64"));
    },
    async close() {
      await wd("DELETE", s(""));
    },
  };
}
