import { useState } from "preact/hooks";
import { api } from "../api";
import { useCan } from "../session";
import { Confirm, Empty, ErrorBox, fmtTime, Table, useAction, usePagedList } from "../ui";

// The compiler's messages name lines as "NAME:LINE: error: ..."; they are
// listed one per line next to the editor.
function compilerLines(msg: string): string[] {
  const i = msg.indexOf(": ");
  const body = msg.startsWith("rule set") && i > 0 ? msg.slice(msg.indexOf(": ") + 2) : msg;
  return body.split(/;\s*|\n/).filter(Boolean);
}

export function Rules() {
  const list = usePagedList<any>("/api/v1/rules", [], 200);
  const canOp = useCan("operator");
  const [name, setName] = useState("");
  const [kind, setKind] = useState("yara");
  const [content, setContent] = useState("");
  const act = useAction();
  const del = useAction();
  const err = act.error as any;
  return (
    <section>
      <h1>Rule sets</h1>
      <ErrorBox error={list.error} what="Rule sets" />
      <ErrorBox error={del.error} what="Delete" />
      {list.data && !list.data.items.length ? <Empty>No rule sets: scans need at least one. Upload YARA rules or an IOC list below.</Empty> : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="rule sets"
          rows={list.data.items}
          rowKey={(r) => r.name}
          columns={[
            { key: "name", title: "Name", render: (r) => r.name },
            { key: "kind", title: "Kind", render: (r) => r.kind },
            { key: "size", title: "Size", render: (r) => r.size + " B" },
            { key: "id", title: "SHA-256", render: (r) => <code title={r.id}>{r.id.slice(0, 16)}…</code> },
            { key: "at", title: "Added", render: (r) => fmtTime(r.created_at) },
            {
              key: "del",
              title: "",
              render: (r) =>
                canOp ? <Confirm label="Delete" danger question={`Delete ${r.name}?`} onYes={() => del.run(async () => {
                  await api("DELETE", "/api/v1/rules/" + encodeURIComponent(r.name));
                  list.reload();
                })} /> : null,
            },
          ]}
        />
      ) : null}
      {canOp ? (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            act.run(async () => {
              await api("POST", "/api/v1/rules", { name, kind, content });
              setContent("");
              setName("");
              list.reload();
            });
          }}
        >
          <h2>Add or replace a rule set</h2>
          <label>Name <input name="name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} /></label>
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
              <option value="yara">YARA</option>
              <option value="ioc">IOC list</option>
            </select>
          </label>
          <label>
            File <input type="file" onChange={async (e) => {
              const f = (e.target as HTMLInputElement).files?.[0];
              if (f) {
                setContent(await f.text());
                if (!name) setName(f.name.replace(/\s+/g, "_"));
              }
            }} />
          </label>
          <label>
            Content
            <textarea name="content" class="code" rows={12} required value={content} aria-invalid={err ? "true" : undefined}
              onInput={(e) => setContent((e.target as HTMLTextAreaElement).value)} />
          </label>
          {err ? (
            <div class="error" role="alert">
              <strong>Refused by the compiler:</strong>
              <ul>{compilerLines(err.message).map((l, i) => <li key={i}><code>{l}</code></li>)}</ul>
            </div>
          ) : null}
          <button class="primary" disabled={act.busy}>{act.busy ? "Compiling…" : "Upload"}</button>
        </form>
      ) : null}
    </section>
  );
}
