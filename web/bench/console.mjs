// The console benchmark's browser half (bench/console/run.sh starts the
// center and passes everything in the environment): a real headless
// chromium driven by playwright-core measures, in the browser, the time
// from a navigation or an action to the rows it brings. Each figure is the
// median of RUNS runs (the first navigation, with an empty cache, is
// printed apart) next to the target. Not a test: it prints and
// fails only when the console does not work at all.
import { chromium } from "playwright-core";
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run bench/console/run.sh)`);
  return v;
};
const BASE = env("BASE");
const RUNS = Number(process.env.RUNS || 5);
const FIRST_ROWS = 1000, FILTER = 300, JS_GZ = 250 * 1024;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [`--ignore-certificate-errors-spki-list=${env("SPKI")}`, "--no-sandbox"],
});
const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const page = await ctx.newPage();
page.setDefaultTimeout(60000);
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));

// API requests finished during a measurement, with their times.
let apiLog = [];
page.on("requestfinished", (r) => {
  const u = new URL(r.url());
  if (!u.pathname.startsWith("/api/") && u.pathname !== "/metrics") return;
  const t = r.timing();
  apiLog.push({ path: u.pathname + u.search, ms: t.responseEnd });
});

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const pad = (s, n) => (s + " ".repeat(n)).slice(0, n);
function show(what, ms, target, note = "") {
  const verdict = target ? (ms <= target ? "ok" : "MISSED") : "";
  const tgt = target ? `target < ${target} ms ${verdict}` : "no target";
  console.log(`${pad(what, 46)} ${String(Math.round(ms)).padStart(6)} ms   ${tgt}${note ? "  (" + note + ")" : ""}`);
}
function slowestApi() {
  if (!apiLog.length) return "";
  const a = apiLog.reduce((x, y) => (y.ms > x.ms ? y : x));
  return `slowest API ${Math.round(a.ms)} ms ${a.path.slice(0, 70)}`;
}

// Rows shown by the page's table.
const rows = () => page.evaluate(() => document.querySelectorAll("table tbody tr").length);

// Navigation to url until its table shows rows: ms.
async function nav(url) {
  apiLog = [];
  const t0 = performance.now();
  await page.goto(BASE + url, { waitUntil: "commit" });
  await page.locator("table tbody tr").first().waitFor();
  const ms = performance.now() - t0;
  lastRows = await rows();
  return ms;
}

// An action on the page (at url) until the list request it causes (its
// URL holds `expect`) has finished and the page has rendered it (two
// animation frames later): ms, counted in the page from the DOM event the
// action caused (click, change, input), so Playwright's own work before
// it (finding the element, scrolling) is not counted.
let lastRows = 0;
async function action(url, act, expect) {
  await nav(url);
  await page.evaluate(() => {
    window.__t0 = undefined;
    for (const k of ["click", "change", "input"])
      document.addEventListener(k, () => (window.__t0 ??= performance.now()), { capture: true });
  });
  apiLog = [];
  const done = page.waitForEvent("requestfinished", (r) => r.url().includes(expect));
  await act();
  await done;
  const ms = await page.evaluate(
    () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now() - window.__t0)))),
  );
  lastRows = await rows();
  return ms;
}

let quiet = false;
async function measure(what, target, fn, note) {
  const xs = [];
  let api = "";
  quiet = false;
  for (let i = 0; i < RUNS; i++) {
    xs.push(await fn());
    if (i === RUNS - 1 && !quiet) api = slowestApi();
  }
  show(what, median(xs), target, [lastRows === undefined ? "" : `${lastRows} rows`, note, api].filter(Boolean).join("; "));
  return median(xs);
}

// Log in (no TOTP for the bench user): the session cookie lands in ctx.
await page.goto(BASE + "/login");
const st = await page.evaluate(
  async ([u, p]) => {
    const r = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: u, password: p }) });
    return r.status;
  },
  [env("USER"), env("PASSWORD")],
);
if (st !== 200) throw new Error("login: HTTP " + st);

console.log(`${env("AGENTS")} agents, ${env("FINDINGS")} findings; median of ${RUNS} runs\n`);
console.log("-- first rows from navigation");
show("agents page, first load (empty cache)", await nav("/agents"), FIRST_ROWS, slowestApi());
await measure("agents page", FIRST_ROWS, () => nav("/agents"));
await measure("findings page", FIRST_ROWS, () => nav("/findings"));
await measure("agents page, deep link sorted by last seen", FIRST_ROWS, () => nav("/agents?sort=-last_seen"));
await measure("findings page, deep link sorted by level", FIRST_ROWS, () => nav("/findings?sort=-level"));

console.log("-- filter changes (until the new rows show)");
// A filter control by the text of its label (label.filter > span).
const ctl = (label) =>
  page.locator("label.filter").filter({ has: page.locator("span", { hasText: new RegExp("^" + label + "$") }) }).locator("input, select");
const sel = (label, v) => () => ctl(label).selectOption(v);
const typ = (label, v) => () => ctl(label).fill(v);
await measure("agents: state = offline", FILTER, () => action("/agents", sel("State", "offline"), "state=offline"));
await measure("agents: state = revoked", FILTER, () => action("/agents", sel("State", "revoked"), "state=revoked"));
await measure("agents: label site=s7 (typed)", FILTER + 250, () => action("/agents", typ("Label", "site=s7"), "label=site"), "includes the 250 ms typing pause");
await measure("agents: search host-12345 (typed)", FILTER + 250, () => action("/agents", typ("Search", "host-12345"), "q=host-12345"), "includes the 250 ms typing pause");
await measure("findings: level = alert", FILTER, () => action("/findings", sel("Level", "alert"), "level=alert"));
await measure("findings: status = resolved", FILTER, () => action("/findings", sel("Status", "resolved"), "status=resolved"));
await measure("findings: received in the last 24h", FILTER, () => action("/findings", sel("Received", "24h"), "received_at_from="));
await measure("findings: rule rule_7 (typed)", FILTER + 250, () => action("/findings", typ("Rule", "rule_7"), "rule=rule_7"), "includes the 250 ms typing pause");
const someAgent = "00000007-0000-4000-8000-000000000007";
await measure("findings: one agent (typed)", FILTER + 250, () => action("/findings", typ("Agent ID", someAgent), "agent=" + someAgent), "includes the 250 ms typing pause");

console.log("-- sort and page changes");
const click = (name) => () => page.getByRole("button", { name: new RegExp("^" + name) }).first().click();
await measure("agents: sort by last seen", FILTER, () => action("/agents", click("Last seen"), "sort=last_seen"));
await measure("agents: sort by OS", FILTER, () => action("/agents", click("OS"), "sort=os"));
await measure("agents: next page", FILTER, () => action("/agents", click("Next"), "cursor="));
await measure("findings: sort by received, oldest first", FILTER, () => action("/findings", click("Received"), "sort=received_at"));
await measure("findings: sort by level", FILTER, () => action("/findings", click("Level"), "sort=level"));
await measure("findings: next page", FILTER, () => action("/findings", click("Next"), "cursor="));
await measure("findings: next page, sorted by level", FILTER, () => action("/findings?sort=-level", click("Next"), "cursor="));

// One API request from the page, until its JSON is parsed: ms.
const apiOnly = (path) => async () => {
  lastRows = undefined;
  quiet = true; // the figure is the request itself
  return page.evaluate(async (p) => {
    const t0 = performance.now();
    const r = await fetch(p);
    await r.json();
    return performance.now() - t0;
  }, path);
};
// Not offered by the console (a sort of every finding: the status lives in
// the triage table); the API's own time, for the record.
await measure("API only: findings sorted by status", 0, apiOnly("/api/v1/findings?sort=-status&limit=50"), "not offered by the console");

console.log("-- dashboard (counts, versions, findings chart)");
await measure("dashboard", FIRST_ROWS, async () => {
  apiLog = [];
  lastRows = undefined;
  const t0 = performance.now();
  await page.goto(BASE + "/", { waitUntil: "commit" });
  await page.waitForFunction(() => {
    const on = document.querySelector("[data-testid=agents-online]");
    return on && on.textContent !== "—" && document.querySelector(".chart canvas") && document.querySelector(".card ul.plain li");
  }, null, { polling: "raf" });
  return performance.now() - t0;
});

const now = Math.floor(Date.now() / 1000);
await measure("API only: histogram, 7 days in 28 buckets", 0, apiOnly(`/api/v1/findings/histogram?received_at_from=${now - 7 * 86400}&buckets=28`), "the chart's request");
await measure("API only: histogram, 30 days in 30 buckets", 0, apiOnly(`/api/v1/findings/histogram?received_at_from=${now - 30 * 86400}&buckets=30`));
await measure("API only: 10,000 findings of 7 days", 0, apiOnly(`/api/v1/findings?received_at_from=${now - 7 * 86400}&limit=10000`), "what the chart fetched before the histogram");
await measure("API only: 1000 agents by last seen", 0, apiOnly("/api/v1/agents?limit=1000&sort=-last_seen"), "the versions card's request");

console.log("-- shipped assets (web/dist/assets)");
let js = 0, jsgz = 0, css = 0, cssgz = 0;
const dir = env("DIST") + "/assets";
for (const f of readdirSync(dir)) {
  const b = readFileSync(dir + "/" + f);
  const g = gzipSync(b, { level: 9 }).length;
  if (f.endsWith(".js")) (js += b.length), (jsgz += g);
  else if (f.endsWith(".css")) (css += b.length), (cssgz += g);
}
const kb = (n) => (n / 1024).toFixed(1) + " KB";
console.log(`${pad("JavaScript", 46)} ${kb(js)} raw, ${kb(jsgz)} gzip   target < 250 KB gzip ${jsgz < JS_GZ ? "ok" : "MISSED"}`);
console.log(`${pad("CSS", 46)} ${kb(css)} raw, ${kb(cssgz)} gzip   no target`);
if (errors.length) console.log("page errors: " + errors.join("; "));
await browser.close();
