import { useState } from "preact/hooks";
import { api, qs, type Page } from "../api";
import { setQuery } from "../router";
import { Empty, ErrorBox, FilterInput, Json, Pager, Table, Time, useAction, usePagedList } from "../ui";

// The canonical serialization of docs/audit.md: no white space, members
// sorted by name at every depth, non-ASCII as \uXXXX (upper-case hex).
function canon(v: any): string {
  if (v === null) return "null";
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string") {
    let out = '"';
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      const ch = v[i];
      if (ch === '"') out += '\\"';
      else if (ch === "\\") out += "\\\\";
      else if (ch === "\n") out += "\\n";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\t") out += "\\t";
      else if (ch === "\b") out += "\\b";
      else if (ch === "\f") out += "\\f";
      else if (c < 0x20 || c > 0x7e) out += "\\u" + c.toString(16).toUpperCase().padStart(4, "0");
      else out += ch;
    }
    return out + '"';
  }
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  const keys = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return "{" + keys.map((k) => canon(k) + ":" + canon(v[k])).join(",") + "}";
}

async function sha256hex(s: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function Verify() {
  const act = useAction();
  const [res, setRes] = useState<string>("");
  const [bad, setBad] = useState(false);
  const run = () =>
    act.run(async () => {
      setRes("");
      let cursor: string | null = null;
      let prev = "0".repeat(64);
      let n = 0;
      do {
        const p: Page<any> = await api<Page<any>>("GET", "/api/v1/audit" + qs({ sort: "id", limit: 1000, cursor }));
        for (const e of p.items) {
          n++;
          const { hash, ...rest } = e;
          const why =
            e.id !== n ? `entry ${n} is missing (found ${e.id})` :
            e.prev_hash !== prev ? `entry ${e.id}: prev_hash does not match entry ${e.id - 1}` :
            (await sha256hex(canon(rest))) !== hash ? `entry ${e.id}: its hash does not match its content` : "";
          if (why) {
            setBad(true);
            setRes("Chain broken: " + why + ". See docs/audit.md.");
            return;
          }
          prev = hash;
        }
        setRes(`Checking… ${n} entries`);
        cursor = p.next_cursor;
      } while (cursor);
      setBad(false);
      setRes(`Chain intact: ${n} entries, last hash ${prev.slice(0, 16)}… (compare with a copy kept elsewhere).`);
    });
  return (
    <div class="actions">
      <button onClick={run} disabled={act.busy}>Verify chain</button>
      <span role="status" class={bad ? "error" : res.startsWith("Chain intact") ? "ok" : "muted"}>{res}</span>
      <ErrorBox error={act.error} what="Verify" />
    </div>
  );
}

export function Audit() {
  const list = usePagedList<any>("/api/v1/audit", ["q", "who", "action", "target", "status"], 50);
  return (
    <section>
      <h1>Audit log</h1>
      <Verify />
      <div class="filters">
        <FilterInput name="q" label="Search" placeholder="action, target, who, error" />
        <FilterInput name="who" label="Who" placeholder="user:alice" />
        <FilterInput name="action" label="Action" placeholder="agent.revoke" />
      </div>
      <ErrorBox error={list.error} what="Audit log" />
      {list.data && !list.data.items.length ? <Empty>No entries match.</Empty> : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="audit log"
          rows={list.data.items}
          rowKey={(e) => String(e.id)}
          sort={list.params.sort || "-id"}
          onSort={(s) => setQuery({ sort: s, cursor: undefined })}
          columns={[
            { key: "id", title: "#", render: (e) => e.id },
            { key: "time", title: "Time", sort: "time", render: (e) => <Time t={e.time} /> },
            { key: "who", title: "Who", sort: "who", render: (e) => e.who },
            { key: "action", title: "Action", sort: "action", render: (e) => e.action },
            { key: "target", title: "Target", render: (e) => e.target || "—" },
            { key: "status", title: "Status", render: (e) => e.status },
            { key: "d", title: "Details", render: (e) => <details><summary>{e.error || "before / after"}</summary><Json v={{ before: e.before, after: e.after, request: e.request, addr: e.addr }} /></details> },
          ]}
        />
      ) : null}
      <Pager id="audit" next={list.data?.next_cursor} cursor={list.params.cursor} count={list.data?.items.length || 0} />
    </section>
  );
}
