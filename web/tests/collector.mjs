// The collector's console page in a real chromium (playwright-core),
// against the collector vigild that tests/e2e/collector_console.sh starts
// with cases and events in its store. An analyst logs in, sees the case
// of 50 hosts, suppresses it (the API then shows the baseline), lowers
// and clears another, and searches every center's events. axe-core checks
// the page; any CSP violation, request to another origin or script error
// fails.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run tests/e2e/collector_console.sh)`);
  return v;
};
const BASE = env("BASE");
const SHOTS = env("SHOTS");
const CASE = env("CASE");
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

async function check(name) {
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  assert.deepEqual(await page.evaluate(() => window.__csp || []), [], `CSP violations on ${name}`);
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSrc);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = res.violations.filter((x) => x.impact === "serious" || x.impact === "critical");
  assert.equal(bad.length, 0, `accessibility on ${name}:\n` + bad.map((x) => `${x.impact} ${x.id}: ${x.help}`).join("\n"));
}

// Its own fetch, with the session's cookie and CSRF token.
async function apiGet(path) {
  return page.evaluate(async (p) => (await fetch(p)).json(), path);
}

await page.goto(BASE + "/collector");
await page.waitForSelector("input[name=username]");
await page.fill("input[name=username]", "analyst");
await page.fill("input[name=password]", env("ANALYST_PW"));
await page.click("button[type=submit]");
await page.waitForSelector("nav.side");
assert.equal(await page.locator("nav.side a", { hasText: "Master" }).count(), 0, "a collector's menu shows Master");
await page.getByRole("link", { name: "Collector" }).click();
await page.waitForSelector("main h1:has-text('Analysis collector')");
const row = page.locator("table[aria-label='cases'] tr, table:has(caption:has-text('cases')) tr", { hasText: "Mimikatz" }).first();
await row.waitFor();
const cells = await row.locator("td").allInnerTexts();
assert.ok(cells.includes("50"), "hosts 50 in " + cells.join(" | "));
await page.waitForSelector("text=a.vigil.test");
await check("collector");
ok("the case of 50 hosts and the centers are shown");

await row.getByRole("button", { name: "Suppress" }).click();
await row.getByRole("button", { name: "Yes, suppress" }).click();
await row.getByRole("button", { name: "Remove baseline" }).waitFor();
const c = await apiGet(`/api/v1/collector/cases/${CASE}`);
assert.equal(c.baseline?.action, "suppress", JSON.stringify(c));
assert.equal(c.baseline?.by, "user:analyst", JSON.stringify(c));
await row.getByRole("button", { name: "Remove baseline" }).click();
await row.getByRole("button", { name: "Lower to info" }).click();
await row.getByRole("button", { name: "Remove baseline" }).waitFor();
assert.equal((await apiGet(`/api/v1/collector/cases/${CASE}`)).baseline?.action, "lower");
ok("an analyst suppresses, clears and lowers a case's baseline; the API shows who");

await page.fill("input[name=q]", "Mimikatz");
await page.click("form[role=search] button");
const hits = page.locator("table:has(caption:has-text('events of every center')) tbody tr");
await hits.first().waitFor();
const n = await hits.count();
assert.equal(n, 51, `search rows: ${n}`);
assert.ok((await hits.allInnerTexts()).some((t) => t.includes("b.vigil.test")), "a row of center b");
await check("collector-search");
ok("search spans both centers");

assert.deepEqual(foreign, [], "requests to another origin");
assert.deepEqual(pageErrors, [], "script errors");
await browser.close();
process.exit(0);
