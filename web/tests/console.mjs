// The console driven by a real chromium (playwright-core, Debian's
// /usr/bin/chromium) against a real vigild, started by
// tests/e2e/console.sh, which passes everything in the environment. Each
// step prints "ok: ..."; the first failure throws and the script exits 1.
//
// The browser trusts exactly the center's certificate (its SPKI hash, as
// chromium's --ignore-certificate-errors-spki-list takes it); nothing is
// loaded from another origin (every request is checked); the CSP is
// enforced and any violation fails the run; axe-core checks every page
// for serious and critical accessibility violations; each page is saved as
// a screenshot under $SHOTS.
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, existsSync, mkdirSync, writeFileSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run tests/e2e/console.sh)`);
  return v;
};
const BASE = env("BASE");
const SHOTS = env("SHOTS");
mkdirSync(SHOTS, { recursive: true });
const require = createRequire(import.meta.url);
const axeSrc = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const ok = (m) => console.log("ok: " + m);
const origin = new URL(BASE).origin;
const children = [];
process.on("exit", () => children.forEach((c) => c.kill()));

// RFC 6238: SHA-1, 6 digits, 30 s. The center refuses a step already used,
// so a login waits for a step later than the one the setup used.
function totp(secretB32, step) {
  const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secretB32.replace(/=+$/, "")) bits += alpha.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac("sha1", key).update(msg).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, "0");
}
let lastStep = Number(env("TOTP_USED_STEP"));
async function freshTotp() {
  for (;;) {
    const s = Math.floor(Date.now() / 1000 / 30);
    if (s > lastStep) {
      lastStep = s;
      return totp(env("TOTP_SECRET"), s);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [`--ignore-certificate-errors-spki-list=${env("SPKI")}`, "--no-sandbox"],
});
const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 768 } });
await ctx.addInitScript(() => {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", (e) =>
    window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`),
  );
});
const page = await ctx.newPage();
page.setDefaultTimeout(20000);
const foreign = [];
const pageErrors = [];
const csp = [];
page.on("request", (r) => {
  const u = new URL(r.url());
  if (u.protocol !== "data:" && u.origin !== origin) foreign.push(r.url());
});
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => {
  if (/Content.Security.Policy/i.test(m.text())) csp.push(m.text());
});

const axeSeen = new Set();
async function check(name) {
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.waitForFunction(() => !document.querySelector(".loading"), null, { timeout: 10000 });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  const v = await page.evaluate(() => window.__csp || []);
  assert.deepEqual(v, [], `CSP violations on ${name}`);
  if (axeSeen.has(name)) return;
  axeSeen.add(name);
  // page.evaluate runs through the DevTools protocol, not as a script of
  // the page, so the CSP (rightly) does not stop it.
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSrc);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = res.violations.filter((x) => x.impact === "serious" || x.impact === "critical");
  assert.equal(
    bad.length,
    0,
    `accessibility on ${name}:\n` + bad.map((x) => `${x.impact} ${x.id}: ${x.help} (${x.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`).join("\n"),
  );
}

async function goto(path) {
  await page.goto(BASE + path);
  await page.waitForSelector("main h1");
}

async function login(user, pass, withTotp) {
  await page.waitForSelector("input[name=username]");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", pass);
  await page.click("button[type=submit]");
  if (withTotp) {
    await page.waitForSelector("input[name=totp]");
    await page.fill("input[name=totp]", await freshTotp());
    await page.click("button[type=submit]");
  }
  await page.waitForSelector("nav.side");
}

// --- log in with TOTP ------------------------------------------------------
await page.goto(BASE + "/agents?view=pending");
await page.waitForURL(/\/login\?next=/);
await check("login");
await page.fill("input[name=username]", "admin");
await page.fill("input[name=password]", "wrong password here");
await page.click("button[type=submit]");
await page.waitForSelector(".error >> text=Wrong user name or password");
await login("admin", env("ADMIN_PW"), true);
await page.waitForURL(/\/agents\?view=pending$/);
const cookies = await ctx.cookies();
assert.ok(cookies.find((c) => c.name === "vigil_session" && c.httpOnly && c.secure && c.sameSite === "Strict"), "session cookie flags");
assert.equal(await page.evaluate(() => localStorage.length), 0, "nothing in localStorage");
ok("logged in with password and TOTP (a wrong password is refused in words); back at the deep link");

// --- approve a pending agent -------------------------------------------------
await check("agents-pending");
const row = page.locator("tr", { hasText: env("PENDING_HOST") });
await row.getByRole("button", { name: "Approve" }).click();
await row.waitFor({ state: "detached" });
// The agent's log goes where the scenario's logs are shown on a failure.
const agentLog = openSync(env("AGENT_LOG"), "a");
const agent = spawn(env("AGENT_BIN"), ["run", "--data-dir", env("AGENT_DIR")], {
  env: { ...process.env, VIGIL_MACHINE_ID_FILE: env("MACHINE_ID_FILE") },
  stdio: ["ignore", agentLog, agentLog],
});
children.push(agent);
await page.getByRole("tab", { name: "Enrolled" }).click();
await page.waitForSelector(`tr:has-text("${env("PENDING_HOST")}") .b-online`, { timeout: 30000 });
await check("agents");
ok("a pending agent approved in the console enrolls and shows online without a reload");

// --- relabel it ----------------------------------------------------------------
await page.locator("tr", { hasText: env("PENDING_HOST") }).getByRole("link").first().click();
await page.waitForURL(/\/agents\/[0-9a-f-]{36}$/);
const agentId = page.url().split("/").pop();
await page.getByRole("button", { name: "Edit labels" }).click();
await page.fill("input[name=labels]", "group=scanme, site=lab");
await page.getByRole("button", { name: "Save labels" }).click();
await page.waitForSelector(".label >> text=group=scanme");
await check("agent");
ok("labels edited on the agent page");

// --- a rule set, with the compiler's error shown ---------------------------------
await goto("/rules");
await page.fill("input[name=name]", "marker");
await page.fill("textarea[name=content]", "rule broken { condition: nonsense }\n");
await page.getByRole("button", { name: "Upload" }).click();
await page.waitForSelector('.error >> text=/undefined identifier|line|error/');
await page.fill("textarea[name=content]", 'rule vigil_console_marker { meta: score = 85 strings: $m = "VIGIL-CONSOLE-MARKER" condition: $m }\n');
await page.getByRole("button", { name: "Upload" }).click();
await page.waitForSelector("td >> text=marker");
await check("rules");
ok("a broken rule set is refused with the compiler's message; a good one is listed");

// --- scan a label group and watch it finish live -------------------------------
await goto("/tasks/new");
await page.selectOption("select[name=kind]", "scan");
await page.fill("#p-paths", env("SCAN_DIR"));
await page.check("input[name=tmode] >> nth=1");
await page.fill("input[name=target]", "group=scanme");
await page.getByRole("button", { name: "Run task" }).click();
await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
const scanTask = page.url().split("/").pop();
await page.evaluate(() => (window.__sameDocument = true));
await page.waitForSelector("table .b-done", { timeout: 60000 });
assert.equal(await page.evaluate(() => window.__sameDocument), true, "the task page was reloaded");
await check("task");
ok("a scan on a label group ran and its page showed it finish without a reload");

// --- triage the finding ------------------------------------------------------------
await goto("/findings?task=" + scanTask);
await page.waitForSelector("td >> text=vigil_console_marker");
await check("findings");
await page.locator("td a", { hasText: "vigil_console_marker" }).first().click();
await page.waitForURL(/\/findings\/[0-9a-f-]{36}\/\d+$/);
const findingPath = new URL(page.url()).pathname;
await page.selectOption("select[name=status]", "false_positive");
await page.fill("input[name=comment]", "test file of the console test");
await page.getByRole("button", { name: "Set" }).click();
await page.waitForSelector("dd >> text=test file of the console test");
ok("a finding triaged as false positive with a comment");

// --- vigil-inteld's verdict on the finding --------------------------------------------
// The center asks vigil-inteld (a MISP feed holds hit.txt's SHA-256) in the
// background; the list shows the verdict once it is stored.
for (const end = Date.now() + 30000; ; ) {
  await goto("/findings?task=" + scanTask);
  await page.waitForSelector("td >> text=vigil_console_marker");
  if (await page.locator("td .b-malicious").count()) break;
  assert.ok(Date.now() < end, "no verdict on the findings page after 30 s");
  await page.waitForTimeout(500);
}
assert.match(await page.locator("td:has(.b-malicious)").first().innerText(), /malicious\s+misp/);
await page.getByLabel("Verdict").selectOption("benign");
await page.waitForURL(/verdict=benign/);
await page.waitForSelector("text=No findings match");
await page.getByLabel("Verdict").selectOption("malicious");
await page.waitForURL(/verdict=malicious/);
await page.waitForSelector("td >> text=vigil_console_marker");
await check("findings-verdict");
await goto(findingPath);
await page.waitForSelector("dd.verdict .b-malicious");
assert.match(await page.locator("dd.verdict").innerText(), /^malicious misp score 75$/);
ok("the findings page shows vigil-inteld's verdict and filters by it; the finding's page shows its sources");

// --- collect the file and download the sample ------------------------------------------
await goto("/tasks/new?agent=" + agentId);
await page.selectOption("select[name=kind]", "collect");
await page.fill("#p-path", env("SCAN_DIR") + "/hit.txt");
await page.getByRole("button", { name: "Run task" }).click();
await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
await page.waitForSelector("table .b-done", { timeout: 60000 });
await goto(findingPath);
const [dl] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: /Download sample/ }).click()]);
const zip = SHOTS + "/sample.zip";
await dl.saveAs(zip);
const out = SHOTS + "/sample";
execFileSync("7z", ["x", "-y", "-pinfected", "-o" + out, zip], { stdio: "ignore" });
const sha = dl.suggestedFilename().replace(/\.zip$/, "");
assert.equal(readFileSync(`${out}/${sha}`, "utf8"), readFileSync(env("SCAN_DIR") + "/hit.txt", "utf8"), "sample content");
await check("finding");
ok("the finding's sample downloads as an encrypted ZIP that 7z opens with the password");

// --- forwarding: add a target, send a test message to a real rsyslog -------------------
await goto("/forwarding");
await page.fill("input[name=name]", "siem");
await page.fill("input[name=host]", "127.0.0.1");
await page.fill("input[name=port]", env("RS_PORT"));
await page.selectOption("select[name=transport]", "tcp");
await page.selectOption("select[name=format]", "json");
await page.getByRole("button", { name: "Add target" }).click();
await page.waitForSelector('tr:has-text("siem") .b-up', { timeout: 30000 });
await page.getByRole("button", { name: "Send a test message" }).click();
await page.waitForSelector(".ok >> text=Test message sent to siem");
for (let i = 0; ; i++) {
  if (existsSync(env("RS_OUT")) && /"type":"test"/.test(readFileSync(env("RS_OUT"), "utf8"))) break;
  assert.ok(i < 100, "the test message did not reach rsyslog: " + (existsSync(env("RS_OUT")) ? readFileSync(env("RS_OUT"), "utf8") : "(no output)"));
  await new Promise((r) => setTimeout(r, 100));
}
await check("forwarding");
ok("a forwarding target added; its test message reached a real rsyslog");

// --- a user with the analyst role --------------------------------------------------------
await goto("/users");
await page.fill("input[name=new-user]", "ana");
await page.fill("input[name=new-password]", "analyst-password-1");
await page.selectOption("select[name=new-role]", "analyst");
await page.getByRole("button", { name: "Create user" }).click();
await page.waitForSelector('td >> text="ana"');
await check("users");
ok("an analyst user created");

// --- the audit log holds every action; the chain verifies ------------------------------------
await goto("/audit");
await page.getByRole("button", { name: "Verify chain" }).click();
await page.waitForSelector("text=/Chain intact: \\d+ entries/");
const actions = await page.evaluate(async () => {
  const r = await fetch("/api/v1/audit?limit=1000");
  return (await r.json()).items.map((e) => e.action + " " + e.status);
});
for (const a of ["login 200", "enrollment.approve 200", "agent.labels 200", "rule.create 400", "rule.create 201", "task.create 201", "finding.update 200", "sample.download 200", "forward.create 201", "forward_target.test 200", "user.create 201"])
  assert.ok(actions.includes(a), `audit log lacks ${a}: ${actions.join(", ")}`);
await check("audit");
ok("the audit log shows every action of the session and its chain verifies in the browser");

// --- every other page: screenshot and accessibility ---------------------------------------------
for (const [name, path] of [
  ["dashboard", "/"], ["tasks", "/tasks"], ["templates", "/tasks?tab=schedules"], ["new-task", "/tasks/new"],
  ["events", "/events"], ["samples", "/samples"], ["keys", "/keys"], ["settings", "/settings"], ["account", "/account"],
  ["not-found", "/no/such/page"],
]) {
  await goto(path);
  await check(name);
}
await page.evaluate(() => (document.documentElement.dataset.theme = "dark"));
await goto("/");
await page.evaluate(() => (document.documentElement.dataset.theme = "dark"));
axeSeen.delete("dashboard");
await check("dashboard-dark");
await page.goBack();
await page.waitForURL(/\/no\/such\/page$/);
await page.goForward();
await page.waitForURL(new RegExp("^" + BASE + "/$"));
ok("every page passes axe (no serious or critical violation) in light and dark; back and forward work");

// --- log out; the analyst sees what an analyst may do ----------------------------------------------
await page.getByRole("button", { name: "Log out" }).click();
await page.waitForSelector("input[name=username]");
assert.equal((await ctx.cookies()).filter((c) => c.name === "vigil_session" && c.value).length, 0, "session cookie cleared");
await login("ana", "analyst-password-1", false);
const nav = await page.locator("nav.side").innerText();
for (const n of ["Agents", "Findings", "Audit log"]) assert.ok(nav.includes(n), "analyst nav lacks " + n);
for (const n of ["Users", "Settings"]) assert.ok(!nav.includes(n), "analyst nav shows " + n);
await goto("/agents");
await page.waitForSelector(`tr:has-text("${env("PENDING_HOST")}")`);
assert.equal(await page.locator("th.sel input").count(), 0, "analyst can select agents for bulk labels");
await goto("/agents/" + agentId);
assert.equal(await page.getByRole("button", { name: "Revoke" }).count(), 0, "analyst sees Revoke");
assert.equal(await page.getByRole("button", { name: "Edit labels" }).count(), 0, "analyst sees Edit labels");
await goto("/tasks");
assert.equal(await page.getByRole("link", { name: "New task" }).count(), 0, "analyst sees New task");
await goto(findingPath);
await page.waitForSelector("button:has-text('Set')");
await goto("/users");
await page.waitForSelector("text=This page needs the admin role; you have analyst.");
const refused = await page.evaluate(async () => {
  const m = document.cookie.match(/vigil_csrf=([0-9a-f]+)/);
  const r = await fetch("/api/v1/tasks", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": m ? m[1] : "" },
    body: JSON.stringify({ kind: "inventory", target: { all: true } }),
  });
  return r.status;
});
assert.equal(refused, 403, "the API refuses a task to an analyst");
await check("analyst-users");
await page.getByRole("button", { name: "Log out" }).click();
await page.waitForSelector("input[name=username]");
ok("an analyst sees no admin or operator controls, can triage, and the API refuses what the console hides");

assert.deepEqual(csp, [], "CSP reports in the console");
assert.deepEqual(foreign, [], "requests to another origin");
assert.deepEqual(pageErrors, [], "script errors");
writeFileSync(SHOTS + "/README", "Screenshots of the console taken by tests/e2e/console.sh.\n");
ok("no CSP violation, no request to another origin, no script error on any page");
await browser.close();
children.forEach((c) => c.kill());
process.exit(0);
