import { useEffect, useState } from "preact/hooks";
import { api, qs, type Page } from "../api";
import { navigate, setQuery, useLocation } from "../router";
import { useCan } from "../session";
import {
  Badge, Confirm, Empty, ErrorBox, FilterInput, FilterSelect, Json, Pager, parseLabels, Table, Time,
  useAction, useApi, usePagedList, fmtTime,
} from "../ui";
import { useLive } from "../live";

interface Param {
  name: string;
  type: string;
  required: boolean;
}
interface Kind {
  name: string;
  help: string;
  params: Param[];
}

const STATES = ["queued", "dispatched", "running", "done", "failed", "cancelled", "expired"];

function Runs({ runs }: { runs: Record<string, number> | undefined }) {
  return (
    <span class="runs">
      {Object.entries(runs || {}).map(([k, v]) => (
        <span key={k} class={"run r-" + k}>
          {k} {v}
        </span>
      ))}
    </span>
  );
}

function targetText(t: any): string {
  if (!t) return "—";
  if (t.all) return "all agents";
  if (t.agent) return "agent " + t.agent.slice(0, 8);
  if (t.agents) return t.agents.length + " agents";
  if (t.labels) return Object.entries(t.labels).map(([k, v]) => k + "=" + v).join(", ");
  return JSON.stringify(t);
}

function TaskList() {
  const list = usePagedList<any>("/api/v1/tasks", ["q", "kind", "state", "agent"], 50);
  useLive(["task"], list.reload);
  return (
    <>
      <div class="filters">
        <FilterInput name="q" label="Search" placeholder="kind, parameters, target" />
        <FilterSelect name="kind" label="Kind" options={["scan", "collect", "inventory", "kill-process", "quarantine", "restore"]} />
        <FilterSelect name="state" label="With a run" options={STATES} />
      </div>
      <ErrorBox error={list.error} what="Tasks" />
      {list.data && !list.data.items.length ? <Empty>No tasks. Press n or “New task” to run one.</Empty> : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="tasks"
          rows={list.data.items}
          rowKey={(t) => t.id}
          onOpen={(t) => navigate("/tasks/" + t.id)}
          sort={list.params.sort || "-created_at"}
          onSort={(s) => setQuery({ sort: s, cursor: undefined })}
          columns={[
            { key: "kind", title: "Kind", sort: "kind", render: (t) => <a href={"/tasks/" + t.id}>{t.kind}</a> },
            { key: "target", title: "Target", render: (t) => targetText(t.target) },
            { key: "runs", title: "Runs", render: (t) => <Runs runs={t.runs} /> },
            { key: "by", title: "By", render: (t) => t.created_by },
            { key: "at", title: "Created", sort: "created_at", render: (t) => <Time t={t.created_at} /> },
          ]}
        />
      ) : null}
      <Pager id="tasks" next={list.data?.next_cursor} cursor={list.params.cursor} count={list.data?.items.length || 0} />
    </>
  );
}

function Templates() {
  const list = usePagedList<any>("/api/v1/templates", [], 100);
  return (
    <>
      <ErrorBox error={list.error} what="Templates" />
      {list.data && !list.data.items.length ? <Empty>No templates. Save one from the new-task form.</Empty> : null}
      <ul class="plain">
        {(list.data?.items || []).map((t) => (
          <li key={t.name}>
            <a href={"/tasks/new?template=" + encodeURIComponent(t.name)}>{t.name}</a>: {t.spec?.kind} <code>{JSON.stringify(t.spec?.params || {})}</code>
          </li>
        ))}
      </ul>
    </>
  );
}

function Schedules() {
  const list = usePagedList<any>("/api/v1/schedules", [], 100);
  const canOp = useCan("operator");
  const act = useAction();
  const [name, setName] = useState("");
  const [cron, setCron] = useState("30 2 * * *");
  const [tmpl, setTmpl] = useState("");
  const [target, setTarget] = useState("all");
  const templates = useApi<Page<any>>("/api/v1/templates?limit=1000");
  return (
    <>
      <ErrorBox error={list.error} what="Schedules" />
      {list.data && !list.data.items.length ? <Empty>No schedules.</Empty> : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="schedules"
          rows={list.data.items}
          rowKey={(s) => s.id}
          columns={[
            { key: "name", title: "Name", render: (s) => s.name },
            { key: "cron", title: "When (UTC)", render: (s) => <code>{s.cron}</code> },
            { key: "task", title: "Task", render: (s) => <code>{JSON.stringify(s.task)}</code> },
            { key: "last", title: "Last run", render: (s) => <Time t={s.last_run} /> },
            {
              key: "del",
              title: "",
              render: (s) =>
                canOp ? (
                  <Confirm label="Delete" danger question={`Delete schedule ${s.name}?`} onYes={() => act.run(async () => {
                    await api("DELETE", "/api/v1/schedules/" + encodeURIComponent(s.name));
                    list.reload();
                  })} />
                ) : null,
            },
          ]}
        />
      ) : null}
      {canOp ? (
        <form
          class="card"
          onSubmit={(e) => {
            e.preventDefault();
            act.run(async () => {
              const t: any = target === "all" ? { all: true } : { labels: parseLabels(target) };
              await api("POST", "/api/v1/schedules", { name, cron, task: { template: tmpl, target: t } });
              setName("");
              list.reload();
            });
          }}
        >
          <h2>New schedule</h2>
          <label>Name <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} /></label>
          <label>Cron (minute hour day month weekday, UTC) <input required value={cron} onInput={(e) => setCron((e.target as HTMLInputElement).value)} /></label>
          <label>
            Template
            <select required value={tmpl} onChange={(e) => setTmpl((e.target as HTMLSelectElement).value)}>
              <option value="">choose…</option>
              {(templates.data?.items || []).map((t) => <option key={t.name} value={t.name}>{t.name}</option>)}
            </select>
          </label>
          <label>Target (“all” or labels key=value) <input required value={target} onInput={(e) => setTarget((e.target as HTMLInputElement).value)} /></label>
          <ErrorBox error={act.error} what="Schedule" />
          <button class="primary" disabled={act.busy}>Create schedule</button>
        </form>
      ) : null}
    </>
  );
}

export function Tasks() {
  const { query } = useLocation();
  const tab = query.get("tab") || "tasks";
  const canOp = useCan("operator");
  return (
    <section>
      <h1>
        Tasks{" "}
        {canOp ? (
          <a class="button primary" href="/tasks/new" aria-keyshortcuts="n">
            New task
          </a>
        ) : null}
      </h1>
      <div class="tabs" role="tablist">
        {["tasks", "templates", "schedules"].map((t) => (
          <button key={t} role="tab" aria-selected={tab === t} onClick={() => setQuery({ tab: t === "tasks" ? undefined : t, cursor: undefined }, false)}>
            {t[0].toUpperCase() + t.slice(1)}
          </button>
        ))}
      </div>
      {tab === "templates" ? <Templates /> : tab === "schedules" ? <Schedules /> : <TaskList />}
    </section>
  );
}

export function TaskDetail({ id }: { id: string }) {
  const t = useApi<any>("/api/v1/tasks/" + encodeURIComponent(id), [], 0);
  useLive(["task"], t.reload, id);
  const canOp = useCan("operator");
  const act = useAction();
  if (t.error) return <ErrorBox error={t.error} what={"Task " + id} />;
  if (!t.data) return <p class="loading">Loading…</p>;
  const task = t.data;
  const open = (task.runs || []).some((r: any) => ["queued", "dispatched", "running"].includes(r.state));
  const again = () =>
    act.run(async () => {
      const body: any = { kind: task.kind, params: task.params, target: task.target, timeout: task.timeout };
      const r = await api<{ id: string }>("POST", "/api/v1/tasks", body);
      navigate("/tasks/" + r.id);
    });
  return (
    <section>
      <p><a href="/tasks">← Tasks</a></p>
      <h1>
        {task.kind} task <Runs runs={task.counts} />
      </h1>
      <div class="actions">
        {canOp && open ? (
          <Confirm label="Cancel" danger question="Cancel the runs not finished?" busy={act.busy} onYes={() => act.run(async () => {
            await api("POST", `/api/v1/tasks/${task.id}/cancel`);
            t.reload();
          })} />
        ) : null}
        {canOp ? <button disabled={act.busy} onClick={again}>Run again</button> : null}
      </div>
      <ErrorBox error={act.error} what="Task" />
      <dl class="facts">
        <dt>ID</dt><dd><code>{task.id}</code></dd>
        <dt>Target</dt><dd>{targetText(task.target)}</dd>
        <dt>Parameters</dt><dd><code>{JSON.stringify(task.params)}</code></dd>
        <dt>Created</dt><dd>{fmtTime(task.created_at)} by {task.created_by}</dd>
        <dt>Expires</dt><dd>{fmtTime(task.expires_at)}</dd>
        {task.cancelled_at ? (<><dt>Cancelled</dt><dd>{fmtTime(task.cancelled_at)}</dd></>) : null}
      </dl>
      <h2>Runs</h2>
      <p class="muted" aria-live="polite">{open ? "Live: runs update as agents report." : "All runs finished."}</p>
      <Table
        caption="runs"
        rows={task.runs || []}
        rowKey={(r: any) => r.agent_id}
        columns={[
          { key: "host", title: "Agent", render: (r: any) => <a href={"/agents/" + r.agent_id}>{r.hostname || r.agent_id}</a> },
          { key: "state", title: "State", render: (r: any) => <Badge v={r.state} /> },
          { key: "progress", title: "Progress", render: (r: any) => (r.progress ? <code>{JSON.stringify(r.progress)}</code> : "—") },
          { key: "reason", title: "Reason / result", render: (r: any) => r.reason || (r.result ? <code>{JSON.stringify(r.result).slice(0, 200)}</code> : "—") },
          { key: "upd", title: "Updated", render: (r: any) => <Time t={r.updated_at} /> },
        ]}
      />
      <p><a href={"/findings?task=" + task.id}>Findings of this task</a> · <a href={"/events?task=" + task.id}>Events of this task</a></p>
    </section>
  );
}

function ParamInput({ p, value, set }: { p: Param; value: any; set: (v: any) => void }) {
  const id = "p-" + p.name;
  const label = (
    <span>
      {p.name}
      {p.required ? " (required)" : ""} <span class="muted">{p.type}</span>
    </span>
  );
  if (p.type === "boolean")
    return (
      <label class="check">
        <input id={id} type="checkbox" checked={!!value} onChange={(e) => set((e.target as HTMLInputElement).checked || undefined)} /> {label}
      </label>
    );
  if (p.type.startsWith("list"))
    return (
      <label>
        {label} <span class="muted">one per line</span>
        <textarea id={id} rows={3} required={p.required} value={(value || []).join("\n")} onInput={(e) => {
          const xs = (e.target as HTMLTextAreaElement).value.split("\n").map((s) => s.trim()).filter(Boolean);
          set(xs.length ? (p.type.includes("integer") ? xs.map(Number) : xs) : undefined);
        }} />
      </label>
    );
  return (
    <label>
      {label}
      <input id={id} required={p.required} type={p.type === "integer" ? "number" : "text"} value={value ?? ""} onInput={(e) => {
        const v = (e.target as HTMLInputElement).value;
        set(v === "" ? undefined : p.type === "integer" ? Number(v) : v);
      }} />
    </label>
  );
}

export function NewTask() {
  const { query } = useLocation();
  const kinds = useApi<{ kinds: Kind[] }>("/api/v1/task-kinds");
  const templates = useApi<Page<any>>("/api/v1/templates?limit=1000");
  const rules = useApi<Page<any>>("/api/v1/rules?limit=1000");
  const [kind, setKind] = useState("scan");
  const [params, setParams] = useState<Record<string, any>>({});
  const [tmode, setTmode] = useState(query.get("agent") ? "agent" : "labels");
  const [tval, setTval] = useState(query.get("agent") || "");
  const [timeout, setTimeoutV] = useState("1h");
  const [template, setTemplate] = useState(query.get("template") || "");
  const [saveAs, setSaveAs] = useState("");
  const act = useAction();
  const tm = templates.data?.items.find((t) => t.name === template);
  useEffect(() => {
    if (tm) {
      setKind(tm.spec.kind);
      setParams(tm.spec.params || {});
    }
  }, [tm?.name]);
  const k = kinds.data?.kinds.find((x) => x.name === kind);
  const submit = (e: Event) => {
    e.preventDefault();
    act.run(async () => {
      let target: any;
      if (tmode === "all") target = { all: true };
      else if (tmode === "agent") target = { agent: tval.trim() };
      else target = { labels: parseLabels(tval) };
      if (saveAs) await api("POST", "/api/v1/templates", { name: saveAs, spec: { kind, params, timeout } });
      const r = await api<{ id: string; agents: number }>("POST", "/api/v1/tasks", { kind, params, target, timeout });
      navigate("/tasks/" + r.id);
    });
  };
  return (
    <section>
      <p><a href="/tasks">← Tasks</a></p>
      <h1>New task</h1>
      <ErrorBox error={kinds.error} what="Task kinds" />
      <form class="form" onSubmit={submit}>
        <label>
          From template
          <select value={template} onChange={(e) => setTemplate((e.target as HTMLSelectElement).value)}>
            <option value="">none (ad hoc)</option>
            {(templates.data?.items || []).map((t) => <option key={t.name} value={t.name}>{t.name}</option>)}
          </select>
        </label>
        <label>
          Kind
          <select name="kind" value={kind} onChange={(e) => {
            setKind((e.target as HTMLSelectElement).value);
            setParams({});
          }}>
            {(kinds.data?.kinds || []).map((x) => <option key={x.name} value={x.name}>{x.name}: {x.help}</option>)}
          </select>
        </label>
        <fieldset>
          <legend>Parameters</legend>
          {k && !k.params.length ? <p class="muted">This kind takes no parameters.</p> : null}
          {(k?.params || []).map((p) =>
            p.name === "rules" && kind === "scan" ? (
              <label key={p.name}>
                rules <span class="muted">(none selected: every rule set)</span>
                <select multiple value={params.rules || []} onChange={(e) => {
                  const v = [...(e.target as HTMLSelectElement).selectedOptions].map((o) => o.value);
                  setParams({ ...params, rules: v.length ? v : undefined });
                }}>
                  {(rules.data?.items || []).map((r) => <option key={r.name} value={r.name}>{r.name} ({r.kind})</option>)}
                </select>
              </label>
            ) : (
              <ParamInput key={p.name} p={p} value={params[p.name]} set={(v) => setParams({ ...params, [p.name]: v })} />
            ),
          )}
        </fieldset>
        <fieldset>
          <legend>Target</legend>
          <label class="check"><input type="radio" name="tmode" checked={tmode === "agent"} onChange={() => setTmode("agent")} /> one agent (ID)</label>
          <label class="check"><input type="radio" name="tmode" checked={tmode === "labels"} onChange={() => setTmode("labels")} /> agents with labels</label>
          <label class="check"><input type="radio" name="tmode" checked={tmode === "all"} onChange={() => setTmode("all")} /> all agents</label>
          {tmode !== "all" ? (
            <label>
              {tmode === "agent" ? "Agent ID" : "Labels (key=value, comma separated)"}
              <input name="target" required value={tval} onInput={(e) => setTval((e.target as HTMLInputElement).value)} />
            </label>
          ) : null}
        </fieldset>
        <label>Timeout <input value={timeout} onInput={(e) => setTimeoutV((e.target as HTMLInputElement).value)} /></label>
        <label>Also save as template (name, optional) <input value={saveAs} onInput={(e) => setSaveAs((e.target as HTMLInputElement).value)} /></label>
        <ErrorBox error={act.error} what="The task was not created" />
        <button class="primary" type="submit" disabled={act.busy}>{act.busy ? "Creating…" : "Run task"}</button>
      </form>
      {k ? <details><summary>Request body</summary><Json v={{ kind, params, timeout }} /></details> : null}
    </section>
  );
}

export { qs };
