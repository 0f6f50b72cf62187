// The master's console page in a real chromium (playwright-core), against
// the master vigild that tests/e2e/master_console.sh starts with one
// managed center (one agent, one task pushed from the master) and one
// that is down. An analyst sees both centers (the one down named
// unreachable), the agent and the task with their center. axe-core checks
// the page; any CSP violation, request to another origin or script error
// fails.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run tests/e2e/master_console.sh)`);
  return v;
};
const BASE = env("BASE");
const SHOTS = env("SHOTS");
mkdirSync(SHOTS, { recursive: true });
const require = createRequire(import.meta.url);
const axeSrc = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const ok = (m) => console.log("ok: " + m);
const origin = new URL(BASE).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [`--ignore-certificate-errors-spki-list=${env("SPKI")}`, "--no-sandbox"],
});
const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
await ctx.addInitScript(() => {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
});
const page = await ctx.newPage();
page.setDefaultTimeout(20000);
const foreign = [];
const pageErrors = [];
page.on("request", (r) => {
  const u = new URL(r.url());
  if (u.protocol !== "data:" && u.origin !== origin) foreign.push(r.url());
});
page.on("pageerror", (e) => pageErrors.push(String(e)));

await page.goto(BASE + "/");
await page.waitForSelector("input[name=username]");
await page.fill("input[name=username]", "analyst");
await page.fill("input[name=password]", env("ANALYST_PW"));
await page.click("button[type=submit]");
await page.waitForSelector("nav.side");
assert.equal(await page.locator("nav.side a", { hasText: "Collector" }).count(), 0, "a master's menu shows Collector");
await page.getByRole("link", { name: "Master" }).click();
await page.waitForSelector("main h1:has-text('Master')");
const centers = page.locator("table:has(caption:has-text('managed centers')) tbody tr");
await centers.filter({ hasText: "0 / 1" }).first().waitFor();
const a = (await centers.filter({ hasText: /^a/ }).first().innerText()).replace(/\s+/g, " ");
assert.ok(/^a ok .*protocol 1\.0.*0 \/ 1/.test(a), "center a: " + a);
const down = (await centers.filter({ hasText: "unreachable" }).first().innerText()).replace(/\s+/g, " ");
assert.ok(down.startsWith("down unreachable"), "center down: " + down);
ok("centers: a with health, version, agents; the one down named unreachable");

const agentRow = page.locator("table:has(caption:has-text('agents of every center')) tbody tr").first();
await agentRow.waitFor();
assert.ok((await agentRow.innerText()).startsWith("a"), "agent row names its center");
const taskRow = page.locator("table:has(caption:has-text('tasks of every center')) tbody tr", { hasText: "master:master.vigil.test" }).first();
await taskRow.waitFor();
assert.ok((await taskRow.innerText()).includes("inventory"), "task row");
ok("the agent and the task pushed from the master, each with its center");

const pushRows = page.locator("table:has(caption:has-text('rule sets and IOC lists pushed')) tbody tr");
await pushRows.filter({ hasText: "applied" }).first().waitFor();
const applied = (await pushRows.filter({ hasText: "applied" }).first().innerText()).replace(/\s+/g, " ");
assert.ok(/^pushed yara a applied [0-9a-f]{12}/.test(applied), "push on a: " + applied);
const waiting = (await pushRows.filter({ hasText: "pending" }).first().innerText()).replace(/\s+/g, " ");
assert.ok(/^pushed yara down pending unreachable/.test(waiting), "push on down: " + waiting);
ok("a rule set push: applied on a with its version, pending on the center that is down with why");

await page.waitForLoadState("networkidle").catch(() => {});
await page.screenshot({ path: `${SHOTS}/master.png`, fullPage: true });
assert.deepEqual(await page.evaluate(() => window.__csp || []), [], "CSP violations");
await page.evaluate(axeSrc);
const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
const bad = res.violations.filter((x) => x.impact === "serious" || x.impact === "critical");
assert.equal(bad.length, 0, bad.map((x) => `${x.impact} ${x.id}: ${x.help}`).join("\n"));
assert.deepEqual(foreign, [], "requests to another origin");
assert.deepEqual(pageErrors, [], "script errors");
ok("axe, CSP, no foreign request, no script error");
await browser.close();
process.exit(0);
