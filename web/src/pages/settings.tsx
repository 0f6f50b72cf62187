import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { ErrorBox, useAction, useApi } from "../ui";

export function Settings() {
  const s = useApi<any>("/api/v1/settings");
  const act = useAction();
  const [ra, setRa] = useState(false);
  const [pw, setPw] = useState("");
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (s.data) {
      setRa(!!s.data.settings.require_approval);
      setPw(s.data.settings.sample_archive_password || "");
    }
  }, [s.data]);
  return (
    <section>
      <h1>Settings</h1>
      <p class="muted">Runtime settings, kept in the database; each change is audited. Everything else is in vigild.conf (see vigild.conf(5)).</p>
      <ErrorBox error={s.error} what="Settings" />
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          setSaved(false);
          act.run(async () => {
            const r = await api<any>("PUT", "/api/v1/settings", { require_approval: ra, sample_archive_password: pw });
            s.setData(r);
            setSaved(true);
          });
        }}
      >
        <label class="check">
          <input type="checkbox" checked={ra} onChange={(e) => setRa((e.target as HTMLInputElement).checked)} /> New agents wait for approval
        </label>
        <label>
          Sample archive password (1 to 128 printable ASCII characters)
          <input name="sample_archive_password" value={pw} onInput={(e) => setPw((e.target as HTMLInputElement).value)} />
        </label>
        <ErrorBox error={act.error} what="Settings" />
        {saved ? <p class="ok" role="status">Saved.</p> : null}
        <button class="primary" disabled={act.busy || !s.data}>Save</button>
      </form>
      {s.data ? <p class="muted">Set through the API: {s.data.set.length ? s.data.set.join(", ") : "none (all defaults)"}.</p> : null}
    </section>
  );
}
