import { useState } from "preact/hooks";
import { api, qs, type Page } from "../api";
import { navigate, setQuery, useLocation } from "../router";
import { useCan } from "../session";
import { useLive } from "../live";
import {
  Badge, Confirm, Empty, ErrorBox, FilterInput, FilterSelect, Json, Labels, labelsText, Pager,
  parseLabels, Table, Time, useAction, useApi, usePagedList, fmtTime, type Column,
} from "../ui";

export interface Agent {
  id: string;
  hostname: string;
  fqdn: string;
  os: string;
  kernel: string;
  arch: string;
  ips: string[];
  macs: string[];
  machine_id: string;
  agent_version: string;
  labels: Record<string, string>;
  enrolled_at: number;
  last_seen: number | null;
  cert_serial: string;
  cert_not_after: number;
  cloned_from: string | null;
  state: string;
  status: string;
  update_root?: boolean;
  updates?: any;
}

const cols: Column<Agent>[] = [
  { key: "hostname", title: "Host", sort: "hostname", render: (a) => <a href={"/agents/" + a.id}>{a.hostname}</a> },
  { key: "state", title: "State", render: (a) => <Badge v={a.state} /> },
  { key: "os", title: "OS", sort: "os", render: (a) => a.os },
  { key: "ips", title: "Addresses", render: (a) => (a.ips || []).join(", ") },
  { key: "version", title: "Version", render: (a) => a.agent_version },
  { key: "labels", title: "Labels", render: (a) => <Labels labels={a.labels} /> },
  { key: "last_seen", title: "Last seen", sort: "last_seen", render: (a) => <Time t={a.last_seen} /> },
];

function BulkLabels({ ids, done }: { ids: string[]; done: () => void }) {
  const [add, setAdd] = useState("");
  const [remove, setRemove] = useState("");
  const act = useAction();
  const [progress, setProgress] = useState("");
  const apply = () =>
    act.run(async () => {
      const plus = parseLabels(add);
      const minus = remove.split(/[,\s]+/).filter(Boolean);
      let n = 0;
      for (const id of ids) {
        const a = await api<Agent>("GET", "/api/v1/agents/" + id);
        const l = { ...a.labels, ...plus };
        for (const k of minus) delete l[k];
        await api("PUT", "/api/v1/agents/" + id + "/labels", { labels: l });
        setProgress(`${++n} of ${ids.length} agents relabelled`);
      }
      setAdd("");
      setRemove("");
      done();
    });
  return (
    <form
      class="bulk"
      onSubmit={(e) => {
        e.preventDefault();
        apply();
      }}
    >
      <strong>{ids.length} selected:</strong>
      <label>
        add labels <input value={add} placeholder="site=berlin" onInput={(e) => setAdd((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        remove keys <input value={remove} placeholder="site" onInput={(e) => setRemove((e.target as HTMLInputElement).value)} />
      </label>
      <button class="primary" disabled={act.busy || (!add && !remove)}>
        Apply
      </button>
      <span class="muted" aria-live="polite">{progress}</span>
      <ErrorBox error={act.error} what="Labels" />
    </form>
  );
}

function Pending() {
  const canOp = useCan("operator");
  const list = usePagedList<any>("/api/v1/enrollments", ["status"], 50, 5000);
  useLive(["enrollment"], list.reload);
  const act = useAction();
  const decide = (id: string, what: "approve" | "reject") =>
    act.run(async () => {
      await api("POST", `/api/v1/enrollments/${id}/${what}`);
      list.reload();
    });
  return (
    <section>
      <ErrorBox error={list.error} what="Enrollments" />
      <ErrorBox error={act.error} what="Decision" />
      {list.data && list.data.items.length === 0 ? (
        <Empty>No enrollment waits for approval. With [center] require_approval on, new agents appear here.</Empty>
      ) : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="pending enrollments"
          rows={list.data.items}
          rowKey={(e) => e.id}
          columns={[
            { key: "host", title: "Host", render: (e) => e.hostname || e.facts?.hostname || e.agent_id },
            { key: "addr", title: "From", render: (e) => e.source_addr },
            { key: "token", title: "Token", render: (e) => e.token_id || "—" },
            { key: "at", title: "Asked", render: (e) => <Time t={e.created_at} /> },
            { key: "status", title: "Status", render: (e) => <Badge v={e.status} /> },
            {
              key: "act",
              title: "Decision",
              render: (e) =>
                canOp && e.status === "pending" ? (
                  <span class="actions">
                    <button class="primary" disabled={act.busy} onClick={() => decide(e.id, "approve")}>
                      Approve
                    </button>
                    <Confirm label="Reject" question="Reject this agent?" danger busy={act.busy} onYes={() => decide(e.id, "reject")} />
                  </span>
                ) : null,
            },
          ]}
        />
      ) : null}
    </section>
  );
}

export function Agents() {
  const { query } = useLocation();
  const view = query.get("view") || "enrolled";
  const canOp = useCan("operator");
  const list = usePagedList<Agent>("/api/v1/agents", ["q", "state", "os", "label", "hostname"], 50, 10000);
  // Agents going offline or coming back, relabelled, revoked, enrolled.
  useLive(["agent", "enrollment"], list.reload);
  const [sel, setSel] = useState<Set<string>>(new Set());
  return (
    <section>
      <h1>Agents</h1>
      <div class="tabs" role="tablist">
        <button role="tab" aria-selected={view === "enrolled"} onClick={() => setQuery({ view: undefined }, false)}>
          Enrolled
        </button>
        <button role="tab" aria-selected={view === "pending"} onClick={() => setQuery({ view: "pending" }, false)}>
          Pending approval
        </button>
      </div>
      {view === "pending" ? (
        <Pending />
      ) : (
        <>
          <div class="filters">
            <FilterInput name="q" label="Search" placeholder="host, address, id" />
            <FilterSelect name="state" label="State" options={["online", "offline", "revoked"]} />
            <FilterInput name="label" label="Label" placeholder="site=berlin" />
          </div>
          {canOp && sel.size > 0 ? (
            <BulkLabels
              ids={[...sel]}
              done={() => {
                setSel(new Set());
                list.reload();
              }}
            />
          ) : null}
          <ErrorBox error={list.error} what="Agents" />
          {list.data && list.data.items.length === 0 ? (
            <Empty>
              {Object.keys(list.params).some((k) => k !== "limit") ? "No agent matches these filters." : "No agent enrolled yet: make an enrollment token (vigilctl token create) and install an agent (docs/install.md)."}
            </Empty>
          ) : null}
          {list.data && list.data.items.length ? (
            <Table
              caption="agents"
              columns={cols}
              rows={list.data.items}
              rowKey={(a) => a.id}
              onOpen={(a) => navigate("/agents/" + a.id)}
              sort={list.params.sort || "hostname"}
              onSort={(s) => setQuery({ sort: s, cursor: undefined })}
              selected={canOp ? sel : undefined}
              onSelect={canOp ? setSel : undefined}
            />
          ) : null}
          <Pager id="agents" next={list.data?.next_cursor} cursor={list.params.cursor} count={list.data?.items.length || 0} />
        </>
      )}
    </section>
  );
}

function LabelEditor({ agent, onSaved }: { agent: Agent; onSaved: (a: Agent) => void }) {
  const [text, setText] = useState(labelsText(agent.labels));
  const [editing, setEditing] = useState(false);
  const act = useAction();
  if (!editing)
    return (
      <span>
        <Labels labels={agent.labels} />{" "}
        <button class="small" onClick={() => setEditing(true)}>
          Edit labels
        </button>
      </span>
    );
  return (
    <form
      class="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        act.run(async () => {
          const a = await api<Agent>("PUT", `/api/v1/agents/${agent.id}/labels`, { labels: parseLabels(text) });
          onSaved(a);
          setEditing(false);
        });
      }}
    >
      <label>
        Labels (key=value, separated by commas)
        <input name="labels" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
      </label>
      <button class="primary" disabled={act.busy}>
        Save labels
      </button>
      <button type="button" onClick={() => setEditing(false)}>
        Cancel
      </button>
      <ErrorBox error={act.error} what="Labels" />
    </form>
  );
}

function InventoryTable({ title, rows }: { title: string; rows: any[] }) {
  const [q, setQ] = useState("");
  if (!rows || !rows.length) return null;
  const keys = Object.keys(rows[0]).slice(0, 8);
  const shown = rows.filter((r) => !q || JSON.stringify(r).toLowerCase().includes(q.toLowerCase()));
  return (
    <details class="inv">
      <summary>
        {title} ({rows.length})
      </summary>
      <label class="filter">
        <span>Search {title.toLowerCase()}</span>
        <input type="search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      </label>
      <Table
        caption={title}
        rows={shown.slice(0, 500)}
        rowKey={(r) => JSON.stringify(r)}
        columns={keys.map((k) => ({ key: k, title: k, render: (r: any) => (typeof r[k] === "object" ? JSON.stringify(r[k]) : String(r[k] ?? "")) }))}
      />
      {shown.length > 500 ? <p class="muted">First 500 of {shown.length} shown; narrow the search.</p> : null}
    </details>
  );
}

export function AgentDetail({ id }: { id: string }) {
  const a = useApi<Agent>("/api/v1/agents/" + encodeURIComponent(id), [], 10000);
  useLive(["agent"], a.reload, id);
  const tasks = useApi<Page<any>>("/api/v1/tasks" + qs({ agent: id, limit: 10 }), [], 5000);
  const finds = useApi<Page<any>>("/api/v1/findings" + qs({ agent: id, limit: 10 }), [], 10000);
  const inv = useApi<Page<any>>("/api/v1/events" + qs({ agent: id, type: "inventory", limit: 1 }));
  const canOp = useCan("operator");
  const act = useAction();
  if (a.error) return <ErrorBox error={a.error} what={"Agent " + id} />;
  if (!a.data) return <p class="loading">Loading…</p>;
  const ag = a.data;
  const invData = inv.data?.items[0]?.data || null;
  return (
    <section>
      <p>
        <a href="/agents">← Agents</a>
      </p>
      <h1>
        {ag.hostname} <Badge v={ag.state} />
      </h1>
      <ErrorBox error={act.error} what="Revoke" />
      <div class="actions">
        {canOp ? (
          <a class="button" href={"/tasks/new?agent=" + ag.id}>
            New task for this agent
          </a>
        ) : null}
        {canOp && ag.status !== "revoked" ? (
          <Confirm
            label="Revoke"
            danger
            question="Revoke this agent? Its certificate is refused from the next connection on."
            busy={act.busy}
            onYes={() => act.run(async () => {
              await api("POST", `/api/v1/agents/${ag.id}/revoke`);
              a.reload();
            })}
          />
        ) : null}
      </div>
      <dl class="facts">
        <dt>ID</dt>
        <dd><code>{ag.id}</code></dd>
        <dt>FQDN</dt>
        <dd>{ag.fqdn}</dd>
        <dt>OS</dt>
        <dd>{ag.os} ({ag.kernel}, {ag.arch})</dd>
        <dt>Addresses</dt>
        <dd>{(ag.ips || []).join(", ")}</dd>
        <dt>MACs</dt>
        <dd>{(ag.macs || []).join(", ")}</dd>
        <dt>Agent version</dt>
        <dd>{ag.agent_version}</dd>
        <dt>Update root</dt>
        <dd>{ag.update_root ? "pinned" : "none: this agent takes no signed updates (vigil-agent pin-root)"}</dd>
        {ag.updates ? (
          <>
            <dt>Signed updates</dt>
            <dd>
              targets v{ag.updates.targets ?? "—"}
              {ag.updates.rules?.length ? ", rule sets " + ag.updates.rules.map((r: any) => `${r.name} ${r.version}`).join(", ") : ""}
              {ag.updates.error ? ` (last check refused: ${ag.updates.error})` : ""}
              {ag.updates.upgrade_error ? ` (upgrade: ${ag.updates.upgrade_error})` : ""}
            </dd>
          </>
        ) : null}
        <dt>Labels</dt>
        <dd>{canOp ? <LabelEditor agent={ag} onSaved={(x) => a.setData(x)} /> : <Labels labels={ag.labels} />}</dd>
        <dt>Certificate</dt>
        <dd>serial <code>{ag.cert_serial}</code>, expires {fmtTime(ag.cert_not_after)}</dd>
        <dt>Enrolled</dt>
        <dd>{fmtTime(ag.enrolled_at)}</dd>
        <dt>Last seen</dt>
        <dd><Time t={ag.last_seen} /></dd>
        {ag.cloned_from ? (
          <>
            <dt>Cloned from</dt>
            <dd><a href={"/agents/" + ag.cloned_from}>{ag.cloned_from}</a></dd>
          </>
        ) : null}
      </dl>
      <h2>Tasks</h2>
      <ErrorBox error={tasks.error} what="Tasks" />
      {tasks.data && !tasks.data.items.length ? <Empty>No task has run on this agent.</Empty> : null}
      <ul class="plain">
        {(tasks.data?.items || []).map((t) => (
          <li key={t.id}>
            <a href={"/tasks/" + t.id}>{t.kind}</a> <Time t={t.created_at} />{" "}
            {Object.entries(t.runs || {}).map(([k, v]) => (
              <span key={k} class="muted">{k} {String(v)} </span>
            ))}
          </li>
        ))}
      </ul>
      <h2>
        Findings <a href={"/findings?agent=" + ag.id}>all</a>
      </h2>
      <ErrorBox error={finds.error} what="Findings" />
      {finds.data && !finds.data.items.length ? <Empty>No findings on this agent.</Empty> : null}
      <ul class="plain">
        {(finds.data?.items || []).map((f) => (
          <li key={f.seq}>
            <a href={`/findings/${f.agent_id}/${f.seq}`}>{f.data?.rule || f.data?.title || "finding " + f.seq}</a> <Badge v={f.level} /> <Badge v={f.status} />{" "}
            <Time t={f.received_at} />
          </li>
        ))}
      </ul>
      <h2>Inventory</h2>
      <ErrorBox error={inv.error} what="Inventory" />
      {inv.data && !invData ? <Empty>No inventory yet: run an inventory task on this agent.</Empty> : null}
      {invData ? (
        <>
          <p class="muted">As of <Time t={inv.data!.items[0].received_at} />.</p>
          <InventoryTable title="Processes" rows={invData.processes} />
          <InventoryTable title="Listening sockets" rows={invData.listening || invData.sockets} />
          <InventoryTable title="Users" rows={invData.users} />
          <InventoryTable title="Packages" rows={invData.packages} />
          {!invData.processes && !invData.packages ? <Json v={invData} /> : null}
        </>
      ) : null}
    </section>
  );
}
