import { useState } from "preact/hooks";
import { api, qs, type Page } from "../api";
import { navigate, setQuery, useLocation } from "../router";
import { useCan } from "../session";
import { useLive } from "../live";
import {
  Badge, Empty, ErrorBox, FilterInput, FilterSelect, Json, Pager, Table, Time, useAction, useApi, usePagedList, fmtTime,
} from "../ui";

const STATUSES = ["new", "acknowledged", "false_positive", "resolved"];
const LEVELS = ["alert", "warning", "notice", "info"];
// vigil-inteld's verdict on the finding's indicators (docs/inteld.md,
// "Consumers"); a finding without one is "—" (no inteld, or pending).
const VERDICTS = ["malicious", "suspicious", "benign", "unknown"];

function verdictSources(f: any): string {
  const names = new Set<string>();
  for (const s of f.intel?.sources || []) for (const n of s.sources || []) names.add(n);
  return [...names].join(", ");
}

function Verdict({ f }: { f: any }) {
  const v = f.intel?.verdict;
  const src = verdictSources(f);
  return (
    <span title={src ? "from " + src : undefined}>
      <Badge v={v} />
      {src ? <span class="muted"> {src}</span> : null}
    </span>
  );
}

export function ruleOf(f: any): string {
  const d = f.data || {};
  if (d.rule) return d.rule;
  const r = (d.reasons || [])[0];
  return r?.signature?.rule_name || d.title || d.message || "finding";
}

function pathOf(f: any): string {
  const d = f.data || {};
  return d.path || d.file || d.subject?.path || "";
}

const RANGES: Record<string, number> = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

function Triage({ keys, done }: { keys: { agent_id: string; seq: number }[]; done: () => void }) {
  const [status, setStatus] = useState("acknowledged");
  const [comment, setComment] = useState("");
  const [progress, setProgress] = useState("");
  const act = useAction();
  return (
    <form
      class="bulk"
      onSubmit={(e) => {
        e.preventDefault();
        act.run(async () => {
          let n = 0;
          for (const k of keys) {
            await api("PUT", `/api/v1/findings/${k.agent_id}/${k.seq}`, { status, comment: comment || null });
            setProgress(`${++n} of ${keys.length} updated`);
          }
          setComment("");
          done();
        });
      }}
    >
      <strong>{keys.length === 1 ? "Triage:" : keys.length + " selected:"}</strong>
      <label>
        status
        <select name="status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
          {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
      </label>
      <label>
        comment <input name="comment" value={comment} maxLength={4096} onInput={(e) => setComment((e.target as HTMLInputElement).value)} />
      </label>
      <button class="primary" disabled={act.busy}>Set</button>
      <span class="muted" aria-live="polite">{progress}</span>
      <ErrorBox error={act.error} what="Triage" />
    </form>
  );
}

export function Findings() {
  const { query } = useLocation();
  const range = query.get("range") || "";
  const extra = range && RANGES[range] ? "?received_at_from=" + (Math.floor(Date.now() / 60000) * 60 - RANGES[range]) : "";
  const list = usePagedList<any>("/api/v1/findings" + extra, ["q", "level", "status", "verdict", "agent", "rule", "task"], 50);
  useLive(["finding"], list.reload);
  const canTriage = useCan("analyst");
  const [sel, setSel] = useState<Set<string>>(new Set());
  const key = (f: any) => f.agent_id + "/" + f.seq;
  return (
    <section>
      <h1>Findings</h1>
      <div class="filters">
        <FilterInput name="q" label="Search" placeholder="text in the finding or comment" />
        <FilterSelect name="level" label="Level" options={LEVELS} />
        <FilterSelect name="status" label="Status" options={STATUSES} />
        <FilterSelect name="verdict" label="Verdict" options={VERDICTS} />
        <FilterInput name="rule" label="Rule" />
        <FilterInput name="agent" label="Agent ID" />
        <label class="filter">
          <span>Received</span>
          <select value={range} onChange={(e) => setQuery({ range: (e.target as HTMLSelectElement).value || undefined, cursor: undefined })}>
            <option value="">any time</option>
            {Object.keys(RANGES).map((r) => <option key={r} value={r}>last {r}</option>)}
          </select>
        </label>
      </div>
      {canTriage && sel.size ? (
        <Triage
          keys={[...sel].map((k) => ({ agent_id: k.split("/")[0], seq: Number(k.split("/")[1]) }))}
          done={() => {
            setSel(new Set());
            list.reload();
          }}
        />
      ) : null}
      <ErrorBox error={list.error} what="Findings" />
      {list.data && !list.data.items.length ? <Empty>No findings match. Findings come from scan tasks and agents' rules.</Empty> : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="findings"
          rows={list.data.items}
          rowKey={key}
          onOpen={(f) => navigate("/findings/" + key(f))}
          sort={list.params.sort || "-received_at"}
          onSort={(s) => setQuery({ sort: s, cursor: undefined })}
          selected={canTriage ? sel : undefined}
          onSelect={canTriage ? setSel : undefined}
          columns={[
            { key: "rule", title: "Rule", render: (f) => <a href={"/findings/" + key(f)}>{ruleOf(f)}</a> },
            { key: "level", title: "Level", sort: "level", render: (f) => <Badge v={f.level} /> },
            // Not sortable: the status lives beside the finding (the
            // triage table), so that order is a sort of every finding
            // (1 s at a million, bench/console); the Status filter is not.
            { key: "status", title: "Status", render: (f) => <Badge v={f.status} /> },
            { key: "verdict", title: "Verdict", render: (f) => <Verdict f={f} /> },
            { key: "path", title: "Path", render: (f) => <code>{pathOf(f)}</code> },
            { key: "agent", title: "Agent", render: (f) => <a href={"/agents/" + f.agent_id}>{f.agent_id.slice(0, 8)}</a> },
            { key: "at", title: "Received", sort: "received_at", render: (f) => <Time t={f.received_at} /> },
          ]}
        />
      ) : null}
      <Pager id="findings" next={list.data?.next_cursor} cursor={list.params.cursor} count={list.data?.items.length || 0} />
    </section>
  );
}

export function FindingDetail({ agent, seq }: { agent: string; seq: string }) {
  const f = useApi<Page<any>>("/api/v1/findings" + qs({ agent, seq, limit: 1 }));
  const canTriage = useCan("analyst");
  const canSample = useCan("analyst");
  const item = f.data?.items[0] || null;
  const sha = item?.data?.sha256 || item?.data?.hashes?.sha256 || item?.data?.subject?.hashes?.sha256 || item?.data?.file?.sha256;
  const sample = useApi<any>(sha && canSample ? "/api/v1/samples/" + sha : null);
  if (f.error) return <ErrorBox error={f.error} what="Finding" />;
  if (!f.data) return <p class="loading">Loading…</p>;
  if (!item) return <ErrorBox error={{ message: `No finding ${agent}/${seq}.` }} />;
  return (
    <section>
      <p><a href="/findings">← Findings</a></p>
      <h1>
        {ruleOf(item)} <Badge v={item.level} /> <Badge v={item.status} />
      </h1>
      <dl class="facts">
        <dt>Agent</dt><dd><a href={"/agents/" + item.agent_id}>{item.agent_id}</a></dd>
        <dt>Path</dt><dd><code>{pathOf(item) || "—"}</code></dd>
        <dt>Time (agent)</dt><dd>{fmtTime(item.time)}</dd>
        <dt>Received</dt><dd>{fmtTime(item.received_at)}</dd>
        <dt>Task</dt><dd>{item.task_id ? <a href={"/tasks/" + item.task_id}>{item.task_id}</a> : "—"}</dd>
        <dt>Triage</dt><dd>{item.status}{item.comment ? ": " + item.comment : ""}{item.triaged_by ? ` (${item.triaged_by}, ${fmtTime(item.triaged_at)})` : ""}</dd>
        {sha ? (<><dt>SHA-256</dt><dd><code>{sha}</code></dd></>) : null}
        <dt>Verdict</dt>
        <dd class="verdict">
          {item.intel ? (
            <>
              <Verdict f={item} />
              {item.intel.score != null ? ` score ${item.intel.score}` : ""}
              {item.intel.level_before && item.intel.level_before !== item.level ? ` (level raised from ${item.intel.level_before})` : ""}
            </>
          ) : (
            "— (no verdict from vigil-inteld yet)"
          )}
        </dd>
        {sample.data ? (
          <>
            <dt>Sample</dt>
            <dd>
              <a href={`/api/v1/samples/${sha}/download`} download>Download sample (encrypted ZIP)</a>
            </dd>
          </>
        ) : null}
      </dl>
      {canTriage ? <Triage keys={[{ agent_id: item.agent_id, seq: item.seq }]} done={() => f.reload()} /> : null}
      <h2>As the agent reported it</h2>
      <Json v={item.data} />
    </section>
  );
}
