import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api, qs, type Page } from "../api";
import { useCan } from "../session";
import { useLive } from "../live";
import { ago, Badge, Empty, ErrorBox, Time, useApi } from "../ui";

interface Metric {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Metric[] {
  const out: Metric[] = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function metric(ms: Metric[], name: string, labels: Record<string, string> = {}): number | undefined {
  const m = ms.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return m?.value;
}

const RANGES: Record<string, number> = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
const LEVELS = ["alert", "warning", "notice"];

function FindingsChart() {
  const [range, setRange] = useState("7d");
  const [err, setErr] = useState<unknown>(null);
  const [total, setTotal] = useState<number | null>(null);
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const ac = new AbortController();
    const span = RANGES[range];
    const now = Math.floor(Date.now() / 1000);
    const from = now - span;
    const nb = range === "24h" ? 24 : range === "7d" ? 28 : 30;
    (async () => {
      // Counted by the center (one indexed query), not from the findings.
      const h = await api<{ from: number; step: number; total: number; levels: Record<string, number[]> }>(
        "GET",
        "/api/v1/findings/histogram" + qs({ received_at_from: from, received_at_to: now + 1, buckets: nb }),
        undefined,
        ac.signal,
      );
      const xs = Array.from({ length: nb }, (_, i) => h.from + i * h.step);
      const series: number[][] = LEVELS.map((l) => h.levels[l] || xs.map(() => 0));
      setTotal(h.total);
      if (!el.current) return;
      el.current.textContent = "";
      const w = Math.max(300, el.current.clientWidth);
      new uPlot(
        {
          width: w,
          height: 200,
          scales: { x: { time: true } },
          series: [{}, ...LEVELS.map((l, i) => ({ label: l, stroke: ["#c53030", "#d69e2e", "#3182ce"][i], width: 2 }))],
          axes: [{}, { label: "findings" }],
        },
        [xs, ...series],
        el.current,
      );
    })().catch((e) => {
      if (e.name !== "AbortError") setErr(e);
    });
    return () => ac.abort();
  }, [range]);
  return (
    <section class="card wide">
      <h2>
        Findings by level{" "}
        <label class="inline">
          <span class="sr-only">time range</span>
          <select value={range} onChange={(e) => setRange((e.target as HTMLSelectElement).value)}>
            {Object.keys(RANGES).map((r) => (
              <option key={r} value={r}>
                last {r}
              </option>
            ))}
          </select>
        </label>
      </h2>
      <ErrorBox error={err} what="Findings" />
      <div ref={el} class="chart" role="img" aria-label={"findings by level over the last " + range} />
      <p class="muted">{total === null ? "…" : total + " findings in this range"}</p>
    </section>
  );
}

export function Dashboard() {
  const canMetrics = useCan("readonly");
  const m = useApi<string>(canMetrics ? "/metrics" : null, [], 10000);
  const tasks = useApi<Page<any>>("/api/v1/tasks?limit=8", [], 5000);
  const fwd = useApi<{ targets: any[] }>("/api/v1/forward", [], 10000);
  const pend = useApi<Page<any>>("/api/v1/enrollments?limit=100", [], 10000);
  // The agents' counts (from /metrics) and versions follow agent events
  // (one goes offline, comes back, is revoked); tasks and enrollments too.
  useLive(["agent", "enrollment"], () => {
    m.reload();
    pend.reload();
  });
  useLive(["task"], tasks.reload);
  const ms = m.data ? parseMetrics(m.data) : [];
  // Every active agent by version, counted by the center (/metrics).
  const versions: Record<string, number> = {};
  for (const x of ms) if (x.name === "vigil_agent_versions" && x.value > 0) versions[x.labels.version] = x.value;
  const newest = Object.keys(versions)
    .filter((v) => v !== "unknown" && v !== "other")
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
    .pop();
  const ingest = metric(ms, "vigil_events_stored_total");
  const [rate, setRate] = useState<string>("—");
  const last = useRef<{ v: number; t: number } | null>(null);
  useEffect(() => {
    if (ingest === undefined) return;
    const now = Date.now();
    if (last.current && now > last.current.t) setRate(((ingest - last.current.v) / ((now - last.current.t) / 1000)).toFixed(1) + " /s");
    last.current = { v: ingest, t: now };
  }, [ingest]);

  return (
    <section>
      <h1>Dashboard</h1>
      <ErrorBox error={m.error} what="Metrics" />
      <div class="cards">
        <section class="card">
          <h2>Agents</h2>
          <dl class="stats">
            {["online", "offline", "revoked"].map((s) => (
              <div key={s}>
                <dt>
                  <a href={"/agents?state=" + s}>{s}</a>
                </dt>
                <dd data-testid={"agents-" + s}>{metric(ms, "vigil_agents", { state: s }) ?? "—"}</dd>
              </div>
            ))}
            <div>
              <dt>
                <a href="/agents?view=pending">pending</a>
              </dt>
              <dd data-testid="agents-pending">{pend.data ? pend.data.items.length + (pend.data.next_cursor ? "+" : "") : "—"}</dd>
            </div>
          </dl>
        </section>
        <section class="card">
          <h2>Agent versions</h2>
          {Object.keys(versions).length === 0 ? (
            <Empty>No agents yet: create an enrollment token and install an agent (docs/install.md).</Empty>
          ) : (
            <ul class="plain">
              {Object.entries(versions).map(([v, n]) => (
                <li key={v}>
                  {v}: {n} {newest && v !== newest && v !== "unknown" && v !== "other" ? <Badge v="outdated" /> : null}
                </li>
              ))}
            </ul>
          )}
        </section>
        <section class="card">
          <h2>Center</h2>
          <dl class="stats">
            <div>
              <dt>event ingest</dt>
              <dd>{rate}</dd>
            </div>
            <div>
              <dt>admin connections</dt>
              <dd>{metric(ms, "vigil_connections", { listener: "admin" }) ?? "—"}</dd>
            </div>
            <div>
              <dt>agent connections</dt>
              <dd>{metric(ms, "vigil_connections", { listener: "gateway" }) ?? "—"}</dd>
            </div>
            <div>
              <dt>store integrity</dt>
              <dd>{metric(ms, "vigil_store_integrity_ok") === 0 ? <Badge v="damaged" /> : <Badge v="ok" />}</dd>
            </div>
            <div>
              <dt>free space</dt>
              <dd>{fmtBytes(metric(ms, "vigil_store_free_bytes"))}</dd>
            </div>
          </dl>
        </section>
        <section class="card">
          <h2>Forwarding</h2>
          <ErrorBox error={fwd.error} what="Forwarding" />
          {fwd.data && fwd.data.targets.length === 0 ? <Empty>No SIEM targets. Add one under Forwarding.</Empty> : null}
          <ul class="plain">
            {(fwd.data?.targets || []).map((t) => (
              <li key={t.name}>
                {t.name}: <Badge v={t.state} /> lag {t.lag_events ?? "—"} events{t.last_error ? " · " + t.last_error : ""}
              </li>
            ))}
          </ul>
        </section>
        <FindingsChart />
        <section class="card wide">
          <h2>
            Recent tasks <a href="/tasks">all</a>
          </h2>
          <ErrorBox error={tasks.error} what="Tasks" />
          {tasks.data && tasks.data.items.length === 0 ? <Empty>No tasks yet. Press n to start one.</Empty> : null}
          <ul class="plain">
            {(tasks.data?.items || []).map((t) => (
              <li key={t.id}>
                <a href={"/tasks/" + t.id}>{t.kind}</a> <Time t={t.created_at} />{" "}
                {Object.entries(t.runs || {}).map(([k, v]) => (
                  <span key={k} class="muted">
                    {k} {String(v)}{" "}
                  </span>
                ))}
              </li>
            ))}
          </ul>
        </section>
      </div>
      <p class="muted">Updated {ago(Math.floor(Date.now() / 1000))}; refreshes by itself.</p>
    </section>
  );
}

function fmtBytes(n: number | undefined): string {
  if (n === undefined) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
