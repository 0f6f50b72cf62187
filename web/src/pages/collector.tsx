// The analysis collector (docs/collector.md): the centers that feed it,
// findings grouped into cases with their baselines, and one search over
// every center's events. On a center that is no collector the lists are
// empty.
import { useState } from "preact/hooks";
import { api, qs } from "../api";
import { setQuery, useLocation } from "../router";
import { useCan } from "../session";
import { Badge, Confirm, Empty, ErrorBox, Table, Time, useAction, useApi } from "../ui";

function brief(d: unknown): string {
  const s = JSON.stringify(d ?? {});
  return s.length > 120 ? s.slice(0, 117) + "..." : s;
}

export function Collector() {
  const { query } = useLocation();
  const centers = useApi<{ centers: any[] }>("/api/v1/collector/centers", [], 10000);
  const cases = useApi<{ cases: any[] }>("/api/v1/collector/cases?limit=200", [], 10000);
  const q = query.get("q") || "";
  const center = query.get("center") || "";
  const results = useApi<{ events: any[] }>(
    q || center ? "/api/v1/collector/search" + qs({ q: q || undefined, center: center || undefined, limit: 200 }) : null,
    [q, center],
  );
  const canAnalyst = useCan("analyst");
  const act = useAction();
  const [text, setText] = useState(q);
  const [where, setWhere] = useState(center);

  const baseline = (id: string, action: string | null) =>
    act.run(async () => {
      if (action) await api("PUT", `/api/v1/collector/cases/${id}/baseline`, { action, reason: "set in the console" });
      else await api("DELETE", `/api/v1/collector/cases/${id}/baseline`);
      cases.reload();
    });

  return (
    <section>
      <h1>Analysis collector</h1>
      <p class="muted">Findings and events of every center that forwards here, grouped into cases: the same rule on the same path (user folders and numbers aside), or without a rule the same SHA-256.</p>

      <h2>Centers</h2>
      <ErrorBox error={centers.error} what="Centers" />
      {centers.data && !centers.data.centers.length ? <Empty>No center has sent anything yet. Add a forwarding target of transport collector on each center.</Empty> : null}
      {centers.data && centers.data.centers.length ? (
        <Table
          caption="centers feeding the collector"
          rows={centers.data.centers}
          rowKey={(c) => c.name}
          columns={[
            { key: "name", title: "Center", render: (c) => c.name },
            { key: "conn", title: "Connected", render: (c) => <Badge v={c.connected ? "connected" : "disconnected"} /> },
            { key: "events", title: "Events", render: (c) => c.events },
            { key: "agents", title: "Agents", render: (c) => c.agents },
            { key: "last", title: "Last batch", render: (c) => <Time t={c.last_seen} /> },
          ]}
        />
      ) : null}

      <h2>Cases</h2>
      <ErrorBox error={cases.error} what="Cases" />
      <ErrorBox error={act.error} what="Baseline" />
      {cases.data && !cases.data.cases.length ? <Empty>No cases: no finding has arrived yet.</Empty> : null}
      {cases.data && cases.data.cases.length ? (
        <Table
          caption="cases"
          rows={cases.data.cases}
          rowKey={(c) => c.id}
          columns={[
            { key: "what", title: "Rule or hash", render: (c) => <code>{c.rule || c.sha256 || "—"}</code> },
            { key: "path", title: "Path", render: (c) => <code>{c.path || "—"}</code> },
            { key: "hosts", title: "Hosts", render: (c) => c.hosts },
            { key: "centers", title: "Centers", render: (c) => c.centers },
            { key: "hits", title: "Hits", render: (c) => c.hits },
            { key: "sup", title: "Suppressed", render: (c) => c.suppressed },
            { key: "first", title: "First seen", render: (c) => <Time t={c.first_seen} /> },
            { key: "last", title: "Last seen", render: (c) => <Time t={c.last_seen} /> },
            { key: "bl", title: "Baseline", render: (c) => (c.baseline ? <Badge v={c.baseline.action} /> : "—") },
            {
              key: "act",
              title: "",
              render: (c) =>
                canAnalyst ? (
                  <span class="actions">
                    {c.baseline ? (
                      <button disabled={act.busy} onClick={() => baseline(c.id, null)}>Remove baseline</button>
                    ) : (
                      <>
                        <Confirm label="Suppress" question={`Suppress new occurrences of ${c.rule || c.sha256}?`} busy={act.busy} onYes={() => baseline(c.id, "suppress")} />
                        <button disabled={act.busy} onClick={() => baseline(c.id, "lower")}>Lower to info</button>
                      </>
                    )}
                    <a href={"/collector?" + new URLSearchParams({ q: c.rule || c.sha256 || "" }).toString()}>Occurrences</a>
                  </span>
                ) : null,
            },
          ]}
        />
      ) : null}

      <h2>Search every center</h2>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ q: text, center: where }, false);
        }}
      >
        <label>Text <input name="q" value={text} placeholder="in the data, host name or agent" onInput={(e) => setText((e.target as HTMLInputElement).value)} /></label>
        <label>Center <input name="center" value={where} onInput={(e) => setWhere((e.target as HTMLInputElement).value)} /></label>
        <button class="primary">Search</button>
      </form>
      <ErrorBox error={results.error} what="Search" />
      {results.data && !results.data.events.length ? <Empty>Nothing found.</Empty> : null}
      {results.data && results.data.events.length ? (
        <Table
          caption="events of every center"
          rows={results.data.events}
          rowKey={(e) => `${e.center}/${e.agent_id}/${e.seq}`}
          columns={[
            { key: "center", title: "Center", render: (e) => e.center },
            { key: "host", title: "Host", render: (e) => e.hostname || e.agent_id.slice(0, 8) },
            { key: "type", title: "Type", render: (e) => e.type },
            { key: "level", title: "Level", render: (e) => <Badge v={e.level} /> },
            { key: "time", title: "Time", render: (e) => <Time t={e.time} /> },
            { key: "data", title: "Data", render: (e) => <code>{brief(e.data)}</code> },
          ]}
        />
      ) : null}
    </section>
  );
}
