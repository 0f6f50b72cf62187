// The Updates page and the agent page's update state in a real chromium
// (playwright-core), against the center that tests/e2e/update_console.sh
// starts: a mirror, a rollout halted by a rolled-back binary, an active
// rollout to a label nobody has, agent A with a pinned update root and
// agent B without one. An operator sees all of it, stops the active
// rollout with its button and sees B's page say it takes no updates.
// axe-core checks the pages; any CSP violation, request to another origin
// or script error fails.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run tests/e2e/update_console.sh)`);
  return v;
};
const BASE = env("BASE");
const SHOTS = env("SHOTS");
mkdirSync(SHOTS, { recursive: true });
const require = createRequire(import.meta.url);
const axeSrc = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const ok = (m) => console.log("ok: " + m);
const origin = new URL(BASE).origin;
const text = async (loc) => (await loc.innerText()).replace(/\s+/g, " ").trim();

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

async function checkPage(name) {
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  await page.evaluate(axeSrc);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = res.violations.filter((x) => x.impact === "serious" || x.impact === "critical");
  assert.equal(bad.length, 0, name + ": " + bad.map((x) => `${x.impact} ${x.id}: ${x.help}`).join("\n"));
}

await page.goto(BASE + "/");
await page.waitForSelector("input[name=username]");
await page.fill("input[name=username]", "op");
await page.fill("input[name=password]", env("OP_PW"));
await page.click("button[type=submit]");
await page.waitForSelector("nav.side");
await page.getByRole("link", { name: "Updates" }).click();
await page.waitForSelector("main h1:has-text('Updates')");

// The mirror: what it serves, the agent without a root.
const mirror = page.locator("dl[aria-label='update mirror']");
await mirror.waitFor();
const m = await text(mirror);
assert.ok(/Served root v1, timestamp v1, snapshot v1, targets v1/.test(m), "mirror: " + m);
assert.ok(m.includes("Agents without a pinned root 1 (they take no updates: vigil-agent pin-root)"), "mirror: " + m);
ok("the mirror: served versions, one agent without a pinned root");

// Rollouts: the halted one with its progress and why; the active one.
const rows = page.locator("table:has(caption:has-text('rollouts')) tbody tr");
const halted = rows.filter({ hasText: "halted" }).first();
await halted.waitFor();
const h = await text(halted);
assert.ok(h.startsWith("3.0 (linux-"), "halted row: " + h);
assert.ok(h.includes("site=berlin"), "halted row stage: " + h);
assert.ok(h.includes("0 / 1 upgraded, 1 rolled back"), "halted row progress: " + h);
assert.ok(h.includes("1 of 1 agents that tried rolled back, more than 0%"), "halted row why: " + h);
assert.equal(await halted.getByRole("button", { name: "Stop" }).count(), 0, "a halted rollout offers Stop");
const active = rows.filter({ hasText: "site=paris" }).first();
assert.ok((await text(active)).includes("active"), "active row: " + (await text(active)));
ok("rollouts: halted with its progress and why; the active one listed");

// Agents' update state.
const agents = page.locator("table:has(caption:has-text(\"agents' update state\")) tbody tr");
await agents.first().waitFor();
assert.equal(await agents.count(), 2, "two agents");
const pinned = await text(agents.filter({ hasText: "pinned" }).first());
assert.ok(pinned.includes("the new agent (version 3.0) exited before it checked in"), "agent A: " + pinned);
const none = await text(agents.filter({ hasText: "takes no updates" }).first());
assert.ok(/ none /.test(" " + none + " "), "agent B: " + none);
ok("agents: A pinned (with its rolled-back upgrade), B without a root");
await checkPage("updates");

// Stop the active rollout with its button.
await active.getByRole("button", { name: "Stop" }).click();
await active.getByRole("button", { name: "Yes, stop" }).click();
await rows.filter({ hasText: "site=paris" }).filter({ hasText: "stopped" }).first().waitFor();
assert.equal(await rows.filter({ hasText: "site=paris" }).getByRole("button", { name: "Stop" }).count(), 0);
ok("the active rollout stopped with its button");

// Agent B's page says it takes no updates.
await page.goto(BASE + "/agents/" + env("AGENT_B"));
const dd = page.locator("dl.facts dt:has-text('Update root') + dd");
await dd.waitFor();
assert.equal(await text(dd), "none: this agent takes no signed updates (vigil-agent pin-root)");
ok("agent B's page: no update root");
await checkPage("agent-no-root");

assert.deepEqual(await page.evaluate(() => window.__csp || []), [], "CSP violations");
assert.deepEqual(foreign, [], "requests to another origin");
assert.deepEqual(pageErrors, [], "script errors");
ok("axe, CSP, no foreign request, no script error");
await browser.close();
process.exit(0);
