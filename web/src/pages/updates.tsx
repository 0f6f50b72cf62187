// Signed updates (docs/updates.md): what the center's mirror serves, the
// agent rollouts with their progress (stop for operators: the API has no
// resume; a halted or stopped rollout is started again with vigilctl
// update rollout start), and each agent's update state (version, binary,
// rule sets, whether it pinned an update root).
import type { Page } from "../api";
import { api } from "../api";
import { useCan } from "../session";
import { Badge, Confirm, Empty, ErrorBox, Labels, Table, Time, useAction, useApi } from "../ui";

function Progress({ r }: { r: any }) {
  const total = Math.max(1, r.chosen);
  return (
    <span class="rollout-progress">
      <progress max={total} value={r.upgraded} aria-label={`upgraded ${r.upgraded} of ${r.chosen}`} />{" "}
      {r.upgraded} / {r.chosen} upgraded
      {r.failed ? `, ${r.failed} rolled back` : ""}
      {r.refused ? `, ${r.refused} refused (packaged)` : ""}
      {r.pending ? `, ${r.pending} pending` : ""}
    </span>
  );
}

function Mirror() {
  const m = useApi<any>("/api/v1/updates", [], 15000);
  const d = m.data;
  if (m.error) return <ErrorBox error={m.error} what="Update mirror" />;
  if (!d) return null;
  if (!d.enabled) return <Empty>No update mirror: [updates] root is not set in vigild.conf.</Empty>;
  const roles = d.served?.roles || {};
  return (
    <dl class="facts" aria-label="update mirror">
      <dt>Source</dt>
      <dd>
        {d.mode} {d.upstream || d.dir}
      </dd>
      <dt>Served</dt>
      <dd>
        {d.served
          ? ["root", "timestamp", "snapshot", "targets"].map((k) => `${k} v${roles[k]?.version}`).join(", ")
          : "nothing verified yet"}
      </dd>
      <dt>Last check</dt>
      <dd>
        <Time t={d.last_attempt} />
        {d.last_error ? <span class="warn"> refused: {d.last_error}</span> : " ok"}
      </dd>
      <dt>Agents without a pinned root</dt>
      <dd>{d.agents_without_root ? `${d.agents_without_root} (they take no updates: vigil-agent pin-root)` : "none"}</dd>
      {d.intel && (d.intel.imported?.length || d.intel.error) ? (
        <>
          <dt>Intelligence feeds</dt>
          <dd>
            {(d.intel.imported || []).map((x: any) => `${x.name} → feed ${x.feed}`).join(", ") || "none imported"}
            {d.intel.error ? <span class="warn"> {d.intel.error}</span> : null}
          </dd>
        </>
      ) : null}
    </dl>
  );
}

function Rollouts() {
  const canOp = useCan("operator");
  const ro = useApi<{ items: any[] }>("/api/v1/rollouts", [], 10000);
  const act = useAction();
  return (
    <>
      <h2>Rollouts</h2>
      <p class="muted">Each rollout is a stage: the agents with its labels, a percentage of them. Start one with vigilctl update rollout start.</p>
      <ErrorBox error={ro.error} what="Rollouts" />
      <ErrorBox error={act.error} what="Stop" />
      {ro.data && !ro.data.items.length ? <Empty>No rollouts.</Empty> : null}
      {ro.data && ro.data.items.length ? (
        <Table
          caption="rollouts"
          rows={ro.data.items}
          rowKey={(r) => r.id}
          columns={[
            { key: "version", title: "Version", render: (r) => `${r.version} (${r.platform})` },
            { key: "stage", title: "Stage", render: (r) => (<><Labels labels={r.labels} /> {r.percent}%</>) },
            { key: "state", title: "State", render: (r) => <Badge v={r.state} /> },
            { key: "progress", title: "Progress", render: (r) => <Progress r={r} /> },
            { key: "reason", title: "Why halted", render: (r) => r.reason || "—" },
            { key: "created", title: "Started", render: (r) => <Time t={r.created_at} /> },
            {
              key: "act",
              title: "Actions",
              render: (r) =>
                canOp && r.state === "active" ? (
                  <Confirm
                    label="Stop"
                    danger
                    question={`Stop the rollout of ${r.version}? Agents not yet upgraded are no longer asked.`}
                    busy={act.busy}
                    onYes={() =>
                      act.run(async () => {
                        await api("DELETE", "/api/v1/rollouts/" + encodeURIComponent(r.id));
                        ro.reload();
                      })
                    }
                  />
                ) : (
                  "—"
                ),
            },
          ]}
        />
      ) : null}
    </>
  );
}

function AgentUpdates() {
  const list = useApi<Page<any>>("/api/v1/agents?limit=200", [], 15000);
  const rows = list.data?.items || [];
  return (
    <>
      <h2>Agents</h2>
      <ErrorBox error={list.error} what="Agents" />
      {list.data && !rows.length ? <Empty>No agents.</Empty> : null}
      {rows.length ? (
        <Table
          caption="agents' update state"
          rows={rows}
          rowKey={(a) => a.id}
          columns={[
            { key: "host", title: "Host", render: (a) => <a href={"/agents/" + a.id}>{a.hostname || a.id.slice(0, 8)}</a> },
            { key: "version", title: "Agent version", render: (a) => a.agent_version || "—" },
            { key: "root", title: "Update root", render: (a) => (a.update_root ? "pinned" : "none") },
            {
              key: "rules",
              title: "Rule sets",
              render: (a) =>
                a.updates?.rules?.length ? a.updates.rules.map((r: any) => `${r.name} ${r.version}`).join(", ") : "—",
            },
            { key: "targets", title: "Targets", render: (a) => (a.updates?.targets ? `v${a.updates.targets}` : "—") },
            { key: "binary", title: "Binary", render: (a) => (a.updates?.binary ? <code>{a.updates.binary.slice(0, 12)}</code> : "—") },
            {
              key: "problem",
              title: "Problem",
              render: (a) => a.updates?.upgrade_error || a.updates?.error || (a.update_root ? "—" : "takes no updates (vigil-agent pin-root)"),
            },
          ]}
        />
      ) : null}
      {list.data?.next_cursor ? <p class="muted">The first 200 agents; vigilctl agent list shows all.</p> : null}
    </>
  );
}

export function Updates() {
  return (
    <section>
      <h1>Updates</h1>
      <h2>Mirror</h2>
      <Mirror />
      <Rollouts />
      <AgentUpdates />
    </section>
  );
}
