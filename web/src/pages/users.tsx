import { useState } from "preact/hooks";
import { api, ROLES } from "../api";
import { Badge, Confirm, ErrorBox, fmtTime, Table, useAction, useApi } from "../ui";

export function Users() {
  const list = useApi<{ users: any[] }>("/api/v1/users");
  const act = useAction();
  const [name, setName] = useState("");
  const [pw, setPw] = useState("");
  const [role, setRole] = useState("analyst");
  const change = (u: string, body: any) =>
    act.run(async () => {
      await api("PUT", "/api/v1/users/" + encodeURIComponent(u), body);
      list.reload();
    });
  return (
    <section>
      <h1>Users and roles</h1>
      <p class="muted">readonly reads everything; analyst also triages findings, reads the audit log and downloads samples; operator also runs tasks and manages agents and rules; admin does everything.</p>
      <ErrorBox error={list.error} what="Users" />
      <ErrorBox error={act.error} what="Change" />
      {list.data ? (
        <Table
          caption="users"
          rows={list.data.users}
          rowKey={(u) => u.name}
          columns={[
            { key: "name", title: "Name", render: (u) => u.name },
            {
              key: "role",
              title: "Role",
              render: (u) => (
                <select aria-label={"role of " + u.name} value={u.role} onChange={(e) => change(u.name, { role: (e.target as HTMLSelectElement).value })}>
                  {ROLES.map((r) => <option key={r}>{r}</option>)}
                </select>
              ),
            },
            { key: "source", title: "Source", render: (u) => u.source },
            { key: "totp", title: "2FA", render: (u) => (u.totp ? "on" : "off") },
            { key: "state", title: "State", render: (u) => (u.disabled ? <Badge v="disabled" /> : u.locked_until && u.locked_until > Date.now() / 1000 ? <Badge v="locked" /> : <Badge v="active" />) },
            { key: "last", title: "Last login", render: (u) => fmtTime(u.last_login) },
            {
              key: "act",
              title: "",
              render: (u) => (
                <span class="actions">
                  <button class="small" onClick={() => change(u.name, { disabled: !u.disabled })}>{u.disabled ? "Enable" : "Disable"}</button>
                  {u.locked_until ? <button class="small" onClick={() => change(u.name, { unlock: true })}>Unlock</button> : null}
                  <Confirm label="Delete" danger question={`Delete user ${u.name}?`} onYes={() => act.run(async () => {
                    await api("DELETE", "/api/v1/users/" + encodeURIComponent(u.name));
                    list.reload();
                  })} />
                </span>
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
            await api("POST", "/api/v1/users", { name, password: pw, role });
            setName("");
            setPw("");
            list.reload();
          });
        }}
      >
        <h2>New user</h2>
        <label>Name <input name="new-user" required autocomplete="off" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} /></label>
        <label>Password (10 to 256 characters) <input name="new-password" type="password" autocomplete="new-password" required minLength={10} value={pw} onInput={(e) => setPw((e.target as HTMLInputElement).value)} /></label>
        <label>
          Role
          <select name="new-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
            {ROLES.map((r) => <option key={r}>{r}</option>)}
          </select>
        </label>
        <button class="primary" disabled={act.busy}>Create user</button>
      </form>
    </section>
  );
}
