import { useState } from "preact/hooks";
import { api } from "../api";
import { useCan } from "../session";
import { Badge, Confirm, Empty, ErrorBox, Table, useAction, useApi } from "../ui";

export function Forwarding() {
  const list = useApi<{ targets: any[] }>("/api/v1/forward", [], 5000);
  const canAdmin = useCan("admin");
  const canOp = useCan("operator");
  const act = useAction();
  const test = useAction();
  const [msg, setMsg] = useState("");
  const [f, setF] = useState<Record<string, string>>({ name: "", host: "", port: "", transport: "udp", format: "rfc5424", min_level: "info", ca_file: "" });
  const set = (k: string) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  return (
    <section>
      <h1>SIEM forwarding</h1>
      <ErrorBox error={list.error} what="Targets" />
      <ErrorBox error={test.error} what="Test message" />
      {msg ? <p class="ok" role="status">{msg}</p> : null}
      {list.data && !list.data.targets.length ? <Empty>No forwarding targets. Add a syslog receiver below.</Empty> : null}
      {list.data && list.data.targets.length ? (
        <Table
          caption="forwarding targets"
          rows={list.data.targets}
          rowKey={(t) => t.name}
          columns={[
            { key: "name", title: "Name", render: (t) => t.name },
            { key: "where", title: "Receiver", render: (t) => `${t.transport}://${t.host}:${t.port}` },
            { key: "format", title: "Format", render: (t) => t.format },
            { key: "state", title: "State", render: (t) => <Badge v={t.state} /> },
            { key: "lag", title: "Lag", render: (t) => t.lag_events + " events" },
            { key: "sent", title: "Sent / dropped / errors", render: (t) => `${t.sent} / ${t.dropped} / ${t.errors}` },
            { key: "err", title: "Last error", render: (t) => t.last_error || "—" },
            {
              key: "act",
              title: "",
              render: (t) => (
                <span class="actions">
                  {canOp ? (
                    <button disabled={test.busy} onClick={() => test.run(async () => {
                      setMsg("");
                      const r = await api<any>("POST", `/api/v1/forward/${encodeURIComponent(t.name)}/test`);
                      setMsg(`Test message sent to ${t.name}: ${r.message || ""}`);
                    })}>Send a test message</button>
                  ) : null}
                  {canAdmin && t.source !== "config" ? (
                    <Confirm label="Remove" danger question={`Remove ${t.name}?`} onYes={() => act.run(async () => {
                      await api("DELETE", "/api/v1/forward/" + encodeURIComponent(t.name));
                      list.reload();
                    })} />
                  ) : null}
                </span>
              ),
            },
          ]}
        />
      ) : null}
      {canAdmin ? (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            act.run(async () => {
              const body: any = { name: f.name, host: f.host, transport: f.transport, format: f.format, min_level: f.min_level };
              if (f.port) body.port = Number(f.port);
              if (f.ca_file) body.ca_file = f.ca_file;
              await api("POST", "/api/v1/forward", body);
              setF({ ...f, name: "", host: "", port: "" });
              list.reload();
            });
          }}
        >
          <h2>Add a target</h2>
          <label>Name <input name="name" required value={f.name} onInput={set("name")} /></label>
          <label>Host <input name="host" required value={f.host} onInput={set("host")} /></label>
          <label>Port <input name="port" type="number" min={1} max={65535} value={f.port} placeholder="514, 6514 for tls" onInput={set("port")} /></label>
          <label>
            Transport
            <select name="transport" value={f.transport} onChange={set("transport")}>
              {["udp", "tcp", "tls"].map((x) => <option key={x}>{x}</option>)}
            </select>
          </label>
          <label>
            Format
            <select name="format" value={f.format} onChange={set("format")}>
              {["rfc5424", "rfc3164", "cef", "leef", "json"].map((x) => <option key={x}>{x}</option>)}
            </select>
          </label>
          <label>
            Lowest level
            <select name="min_level" value={f.min_level} onChange={set("min_level")}>
              {["info", "notice", "warning", "alert"].map((x) => <option key={x}>{x}</option>)}
            </select>
          </label>
          {f.transport === "tls" ? <label>CA file on the center <input name="ca_file" required value={f.ca_file} onInput={set("ca_file")} /></label> : null}
          <ErrorBox error={act.error} what="Target" />
          <button class="primary" disabled={act.busy}>Add target</button>
        </form>
      ) : null}
    </section>
  );
}
