import { useState } from "preact/hooks";
import { api, ROLES } from "../api";
import { useSession } from "../session";
import { Confirm, Empty, ErrorBox, fmtTime, Table, useAction, useApi } from "../ui";

export function Keys() {
  const { s } = useSession();
  const list = useApi<{ keys: any[] }>("/api/v1/keys");
  const act = useAction();
  const [label, setLabel] = useState("");
  const [role, setRole] = useState<string>(s.role);
  const [expires, setExpires] = useState("90d");
  const [made, setMade] = useState<string | null>(null);
  const roles = ROLES.slice(0, ROLES.indexOf(s.role) + 1);
  return (
    <section>
      <h1>API keys</h1>
      <p class="muted">{s.role === "admin" ? "Every key of the center." : "The keys you made."} A key is shown once, when it is made; the center keeps only its hash.</p>
      <ErrorBox error={list.error} what="Keys" />
      <ErrorBox error={act.error} what="Key" />
      {made ? (
        <div class="ok" role="status">
          New key (copy it now; it is not shown again): <code class="secret">{made}</code>{" "}
          <button class="small" onClick={() => setMade(null)}>Done</button>
        </div>
      ) : null}
      {list.data && !list.data.keys.length ? <Empty>No API keys. Make one for automation or Prometheus below.</Empty> : null}
      {list.data && list.data.keys.length ? (
        <Table
          caption="API keys"
          rows={list.data.keys}
          rowKey={(k) => k.id}
          columns={[
            { key: "label", title: "Label", render: (k) => k.label || "—" },
            { key: "role", title: "Role", render: (k) => k.role },
            { key: "owner", title: "Made by", render: (k) => k.owner || "—" },
            { key: "created", title: "Created", render: (k) => fmtTime(k.created_at) },
            { key: "expires", title: "Expires", render: (k) => fmtTime(k.expires_at) },
            { key: "used", title: "Last used", render: (k) => fmtTime(k.last_used) },
            {
              key: "act",
              title: "",
              render: (k) =>
                k.revoked_at ? (
                  "revoked " + fmtTime(k.revoked_at)
                ) : (
                  <Confirm label="Revoke" danger question="Revoke this key and every key made with it?" onYes={() => act.run(async () => {
                    await api("DELETE", "/api/v1/keys/" + k.id);
                    list.reload();
                  })} />
                ),
            },
          ]}
        />
      ) : null}
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          act.run(async () => {
            const r = await api<any>("POST", "/api/v1/keys", { label, role, expires: expires || undefined });
            setMade(r.key);
            setLabel("");
            list.reload();
          });
        }}
      >
        <h2>New key</h2>
        <label>Label <input name="key-label" value={label} onInput={(e) => setLabel((e.target as HTMLInputElement).value)} /></label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
            {roles.map((r) => <option key={r}>{r}</option>)}
          </select>
        </label>
        <label>Expires after (e.g. 90d; empty: never) <input value={expires} onInput={(e) => setExpires((e.target as HTMLInputElement).value)} /></label>
        <button class="primary" disabled={act.busy}>Make key</button>
      </form>
    </section>
  );
}
