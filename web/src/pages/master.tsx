// The master center (docs/master.md): its centers with health, version and
// agent counts, and their agents, findings and tasks with the center named
// on each row. On a vigild that is no master the API answers not_master.
import { Badge, Empty, ErrorBox, Table, Time, useApi } from "../ui";

function Errors({ errors }: { errors: any[] | undefined }) {
  if (!errors || !errors.length) return null;
  return (
    <ul class="muted">
      {errors.map((e) => (
        <li key={e.center}>
          {e.center}: {e.error}
        </li>
      ))}
    </ul>
  );
}

export function Master() {
  const centers = useApi<{ centers: any[] }>("/api/v1/master/centers", [], 15000);
  const agents = useApi<{ agents: any[]; errors: any[] }>("/api/v1/master/agents", [], 30000);
  const findings = useApi<{ findings: any[]; errors: any[] }>("/api/v1/master/findings", [], 30000);
  const tasks = useApi<{ tasks: any[]; errors: any[] }>("/api/v1/master/tasks", [], 15000);
  const pushes = useApi<{ items: any[] }>("/api/v1/master/pushes", [], 10000);
  return (
    <section>
      <h1>Master</h1>
      <p class="muted">The centers this master manages over their management port. Push tasks with vigilctl master push, rule sets and IOC lists with vigilctl master rules (or POST /api/v1/master/tasks and /api/v1/master/rules).</p>
      <h2>Centers</h2>
      <ErrorBox error={centers.error} what="Centers" />
      {centers.data && !centers.data.centers.length ? <Empty>No centers: list them in [master] centers.</Empty> : null}
      {centers.data && centers.data.centers.length ? (
        <Table
          caption="managed centers"
          rows={centers.data.centers}
          rowKey={(c) => c.name}
          columns={[
            { key: "name", title: "Center", render: (c) => c.name },
            { key: "status", title: "Status", render: (c) => <Badge v={c.reachable ? c.status : "unreachable"} /> },
            { key: "version", title: "Version", render: (c) => (c.version ? `${c.version} (protocol ${c.protocol})` : "—") },
            { key: "agents", title: "Agents online / total", render: (c) => (c.agents ? `${c.agents.online} / ${c.agents.total}` : "—") },
            { key: "error", title: "Problem", render: (c) => c.error || "—" },
          ]}
        />
      ) : null}
      <h2>Agents</h2>
      <ErrorBox error={agents.error} what="Agents" />
      {agents.data && agents.data.agents.length ? (
        <Table
          caption="agents of every center"
          rows={agents.data.agents}
          rowKey={(a) => a.center + "/" + a.id}
          columns={[
            { key: "center", title: "Center", render: (a) => a.center },
            { key: "host", title: "Host", render: (a) => a.hostname || "—" },
            { key: "status", title: "Status", render: (a) => <Badge v={a.status} /> },
            { key: "os", title: "OS", render: (a) => a.os || "—" },
            { key: "seen", title: "Last seen", render: (a) => <Time t={a.last_seen} /> },
          ]}
        />
      ) : agents.data ? <Empty>No agents.</Empty> : null}
      <Errors errors={agents.data?.errors} />
      <h2>Recent findings</h2>
      <ErrorBox error={findings.error} what="Findings" />
      {findings.data && findings.data.findings.length ? (
        <Table
          caption="findings of every center"
          rows={findings.data.findings}
          rowKey={(f) => `${f.center}/${f.agent_id}/${f.seq}`}
          columns={[
            { key: "center", title: "Center", render: (f) => f.center },
            { key: "host", title: "Host", render: (f) => f.hostname || f.agent_id.slice(0, 8) },
            { key: "level", title: "Level", render: (f) => <Badge v={f.level} /> },
            { key: "rule", title: "Rule", render: (f) => <code>{f.data?.rule || f.data?.reasons?.[0]?.signature?.rule_name || "—"}</code> },
            { key: "time", title: "Received", render: (f) => <Time t={f.received_at} /> },
          ]}
        />
      ) : findings.data ? <Empty>No findings.</Empty> : null}
      <h2>Recent tasks</h2>
      <ErrorBox error={tasks.error} what="Tasks" />
      {tasks.data && tasks.data.tasks.length ? (
        <Table
          caption="tasks of every center"
          rows={tasks.data.tasks}
          rowKey={(t) => t.center + "/" + t.id}
          columns={[
            { key: "center", title: "Center", render: (t) => t.center },
            { key: "kind", title: "Kind", render: (t) => t.kind },
            { key: "by", title: "Created by", render: (t) => t.created_by || "—" },
            { key: "runs", title: "Finished / runs", render: (t) => `${t.finished} / ${t.total}` },
            { key: "at", title: "Created", render: (t) => <Time t={t.created_at} /> },
          ]}
        />
      ) : tasks.data ? <Empty>No tasks.</Empty> : null}
      <h2>Pushes: rule sets, IOC lists, intel feeds</h2>
      <ErrorBox error={pushes.error} what="Pushes" />
      {pushes.data && pushes.data.items.length ? (
        <Table
          caption="rule sets and IOC lists pushed to centers"
          rows={pushes.data.items.flatMap((p) => p.centers.map((c: any) => ({ ...c, push: p })))}
          rowKey={(r) => r.push.id + "/" + r.center}
          columns={[
            { key: "name", title: "Rule set", render: (r) => <code>{r.push.name}</code> },
            { key: "kind", title: "Kind", render: (r) => r.push.kind },
            { key: "center", title: "Center", render: (r) => r.center },
            { key: "state", title: "State", render: (r) => <Badge v={r.state} /> },
            { key: "version", title: "Version / why", render: (r) => (r.state === "applied" ? <code>{(r.version || "").slice(0, 12)}</code> : r.error || "—") },
            { key: "at", title: "Pushed", render: (r) => <Time t={r.push.created_at} /> },
          ]}
        />
      ) : pushes.data ? <Empty>No rule set pushed yet.</Empty> : null}
    </section>
  );
}
