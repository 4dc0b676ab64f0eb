// Browser test of the admin UI: the real ferrolite binary with a mock model
// and an SQLite store, driven in Debian's headless Chromium.
//
//   FERROLITE_BIN=/path/to/ferrolite CHROMIUM=/usr/bin/chromium node --test ui.test.mjs
//
// Screenshots of every page land in tests/browser/artifacts/ (gitignored).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(here, "artifacts");
const BIN = process.env.FERROLITE_BIN || "/var/tmp/ferrolite-target/debug/ferrolite";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const MASTER = "sk-ui-browser-test-7f3a9c2e";
const MOCK_ANSWER = "Hello from ferrolite's built-in mock model.";

let gateway, base, browser, workdir;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(what, fn, timeoutMs = 30000, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? ": " + last.message : ""}`);
}

async function chat(key, content = "Hi from the browser test") {
  const r = await fetch(base + "/v1/chat/completions", {
    method: "POST",
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }] }),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  workdir = mkdtempSync(join(tmpdir(), "ferrolite-ui-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = join(workdir, "config.yaml");
  writeFileSync(config, `model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "${MOCK_ANSWER}"
  - model_name: text-embedding-3-small
    litellm_params:
      model: openai/text-embedding-3-small
      mock_response: "mock"
    model_info:
      mode: embedding
general_settings:
  master_key: ${MASTER}
  database_url: sqlite://${join(workdir, "ui.db")}
  proxy_batch_write_at: 1
  store_prompts_in_spend_logs: true
`);
  gateway = spawn(BIN, ["--config", config, "--host", "127.0.0.1", "--port", String(port)], {
    cwd: workdir,
    env: { ...process.env, UI_USERNAME: "", UI_PASSWORD: "", DATABASE_URL: "" },
    stdio: ["ignore", "inherit", "pipe"],
  });
  let log = "";
  gateway.stderr.on("data", (d) => { log += d; if (process.env.FERROLITE_LOG) process.stderr.write(d); });
  gateway.on("exit", (code) => { if (code) console.error(`gateway exited ${code}:\n${log}`); });
  await waitFor("the gateway", async () => (await fetch(base + "/health/liveliness")).ok, 30000);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
});

after(async () => {
  if (browser) await browser.close();
  if (gateway) gateway.kill("SIGTERM");
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name + ".png"), fullPage: true });
}

test("unauthenticated: pages redirect to the login page, the UI API answers 401", async () => {
  for (const path of ["/ui", "/ui/keys", "/ui/logs", "/ui/no-such-page"]) {
    const r = await fetch(base + path, { redirect: "manual" });
    assert.equal(r.status, 303, path);
    assert.match(r.headers.get("location"), /^\/ui\/login\?next=/, path);
  }
  for (const path of ["/ui/api/models", "/ui/api/overview", "/ui/api/logs", "/ui/api/usage", "/ui/api/usage.csv"]) {
    const r = await fetch(base + path);
    assert.equal(r.status, 401, path);
  }
  // The management API still wants a key without a session.
  assert.equal((await fetch(base + "/key/list")).status, 401);
});

test("the admin flow in a real browser", async (t) => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  let key;

  await t.test("log in", async () => {
    await page.goto(base + "/ui/keys");
    assert.match(page.url(), /\/ui\/login\?next=%2Fui%2Fkeys|\/ui\/login\?next=\/ui\/keys/);
    await shot(page, "01-login");
    await page.getByLabel("Password or master key").fill("wrong-key");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").waitFor();
    await page.getByLabel("Password or master key").fill(MASTER);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(base + "/ui/keys");
    const cookies = await ctx.cookies();
    const session = cookies.find((c) => c.name === "ferrolite_ui_session");
    assert.ok(session, "session cookie set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
  });

  await t.test("overview page", async () => {
    await page.goto(base + "/ui");
    await page.locator("#t-requests").filter({ hasNotText: "–" }).waitFor();
    await shot(page, "02-overview");
  });

  await t.test("models page: test button answers", async () => {
    await page.goto(base + "/ui/models");
    await page.getByRole("heading", { name: "gpt-4o-mini" }).waitFor();
    await page.getByRole("button", { name: "Test gpt-4o-mini" }).click();
    await page.locator("#test-answer").filter({ hasText: MOCK_ANSWER }).waitFor();
    assert.match(await page.locator("#test-status").textContent(), /Answered in \d/);
    await shot(page, "03-models-test");
    await page.getByRole("button", { name: "Close" }).click();
  });

  await t.test("create a key; it is shown once", async () => {
    await page.goto(base + "/ui/keys");
    await page.getByRole("button", { name: "Create key" }).click();
    await page.getByLabel("Alias").fill("browser-test");
    await page.getByLabel(/^Models/).selectOption("gpt-4o-mini");
    await page.getByLabel("Max budget (USD)").fill("5");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    const shown = page.locator("#new-key-value");
    await shown.filter({ hasText: /^sk-/ }).waitFor();
    key = (await shown.textContent()).trim();
    assert.match(key, /^sk-/);
    await page.getByRole("cell", { name: "browser-test", exact: true }).waitFor();
    await shot(page, "04-keys-created");
    await page.getByRole("button", { name: "Done" }).click();
    assert.equal(await page.locator("#new-key-value").textContent(), "");
  });

  await t.test("the new key makes a chat call", async () => {
    assert.ok(key, "a key was created");
    const r = await chat(key);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.choices[0].message.content, MOCK_ANSWER);
    // A little more traffic for the charts.
    for (let i = 0; i < 4; i++) assert.equal((await chat(key, "more traffic ".repeat(i * 20 + 1))).status, 200);
  });

  await t.test("the call shows in Logs", async () => {
    await page.goto(base + "/ui/logs");
    const row = page.locator("#logs-table tbody tr", { hasText: "browser-test" });
    await waitFor("the call in the logs", async () => {
      await page.getByRole("button", { name: "Filter" }).click();
      return (await row.count()) > 0;
    }, 30000, 1000);
    await row.first().getByRole("button").click();
    const detail = page.locator("#log-detail");
    await detail.filter({ hasText: "gpt-4o-mini" }).waitFor();
    assert.match(await detail.textContent(), /Total tokens\d+/);
    await shot(page, "05-logs-detail");
    await page.getByRole("button", { name: "Close" }).click();
  });

  await t.test("a stored prompt shows as text in the log detail", async () => {
    // User content with markup: it must be shown, never run or rendered.
    const hostile = "<img src=x onerror=window.__xss=1><b id=injected>bold</b>";
    assert.equal((await chat(key, hostile)).status, 200);
    await page.goto(base + "/ui/logs");
    const messages = page.locator("#log-messages");
    await waitFor("the call's stored prompt in the detail", async () => {
      await page.getByRole("button", { name: "Filter" }).click();
      await page.locator("#logs-table tbody tr").first().getByRole("button").click();
      const ok = await messages.filter({ hasText: "injected" }).waitFor({ timeout: 2000 }).then(() => true, () => false);
      if (!ok) await page.getByRole("button", { name: "Close" }).click();
      return ok;
    }, 30000, 500);
    assert.ok((await messages.textContent()).includes(hostile), "the prompt, literally");
    assert.equal(await page.locator("#log-dialog #injected, #log-dialog img").count(), 0, "no markup from the prompt");
    assert.equal(await page.evaluate(() => window.__xss), undefined, "no script ran");
    assert.ok((await page.locator("#log-response").textContent()).includes(MOCK_ANSWER), "the answer");
    await shot(page, "05b-logs-stored-prompt");
    await page.getByRole("button", { name: "Close" }).click();
  });

  await t.test("its cost shows in Usage", async () => {
    await page.goto(base + "/ui/usage");
    const row = page.locator("#usage-table tbody tr", { hasText: "browser-test" });
    await row.waitFor();
    const spend = await row.locator("td").nth(1).textContent();
    assert.match(spend, /^\$/);
    assert.notEqual(spend, "$0", "the call has a cost");
    await shot(page, "06-usage");
    await page.goto(base + "/ui");
    await page.locator("#t-requests").filter({ hasText: /^[1-9]/ }).waitFor();
    await shot(page, "06-overview-with-traffic");
    const csv = await page.evaluate(async () => (await fetch("/ui/api/usage.csv?by=key&days=30")).text());
    assert.match(csv, /^day,by,group,label,spend_usd/);
    assert.match(csv, /browser-test/);
  });

  await t.test("block the key: the next call is refused", async () => {
    await page.goto(base + "/ui/keys");
    await page.getByRole("button", { name: "Block browser-test" }).click();
    await page.getByRole("button", { name: "Unblock browser-test" }).waitFor();
    await shot(page, "07-keys-blocked");
    // Key lookups may be cached for a few seconds (enforcer cache_ttl, 5 s).
    const refused = await waitFor("the blocked key to be refused", async () => {
      const r = await chat(key);
      return r.status === 401 || r.status === 403 ? r : null;
    }, 10000, 500);
    assert.match(JSON.stringify(refused.body), /block/i);
  });

  await t.test("users and teams page", async () => {
    await page.goto(base + "/ui/teams");
    await page.getByRole("button", { name: "Create team" }).click();
    await page.getByLabel("Alias").fill("research");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("cell", { name: "research", exact: true }).waitFor();
    await shot(page, "08-teams");
  });

  await t.test("state-changing calls need the CSRF token", async () => {
    const r = await page.evaluate(async () => (await fetch("/key/generate", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })).status);
    assert.equal(r, 403);
  });

  await t.test("phone width and dark mode", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", storageState: await ctx.storageState() });
    const p = await phone.newPage();
    await p.goto(base + "/ui");
    await p.locator("#t-requests").filter({ hasNotText: "–" }).waitFor();
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling on a phone (page is ${width}px wide)`);
    await shot(p, "09-overview-phone-dark");
    await p.goto(base + "/ui/keys");
    // Stacked into cards on a phone (display: block drops the table roles).
    await p.locator("td", { hasText: /^browser-test$/ }).waitFor();
    assert.ok(await p.evaluate(() => document.documentElement.scrollWidth) <= 390, "keys fit a phone");
    await shot(p, "10-keys-phone-dark");
    await phone.close();
  });

  await t.test("keyboard: skip link and navigation", async () => {
    await page.goto(base + "/ui");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Overview");
  });

  await t.test("log out", async () => {
    await page.goto(base + "/ui");
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/ui\/login/);
    await page.goto(base + "/ui/models");
    assert.match(page.url(), /\/ui\/login/);
    const status = await page.evaluate(async () => (await fetch("/ui/api/models")).status);
    assert.equal(status, 401);
  });

  assert.deepEqual(errors, [], "no script errors");
  await ctx.close();
});
