import { useState } from "preact/hooks";
import { api } from "../api";
import { useSession } from "../session";
import { ErrorBox, useAction } from "../ui";

export function Account() {
  const { s, refresh } = useSession();
  const pw = useAction();
  const tf = useAction();
  const [old, setOld] = useState("");
  const [nw, setNw] = useState("");
  const [done, setDone] = useState("");
  const [enroll, setEnroll] = useState<{ secret: string; uri: string } | null>(null);
  const [code, setCode] = useState("");
  return (
    <section>
      <h1>My account</h1>
      <p>
        Signed in as <strong>{s.user || s.who}</strong> with the role <strong>{s.role}</strong>. <a href="/keys">My API keys</a>.
      </p>
      {done ? <p class="ok" role="status">{done}</p> : null}
      {s.user ? (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            pw.run(async () => {
              await api("POST", "/api/v1/session/password", { old, new: nw });
              setOld("");
              setNw("");
              setDone("Password changed.");
            });
          }}
        >
          <h2>Change password</h2>
          <input type="text" name="username" autocomplete="username" value={s.user} hidden readOnly />
          <label>Current password <input type="password" autocomplete="current-password" required value={old} onInput={(e) => setOld((e.target as HTMLInputElement).value)} /></label>
          <label>New password (10 to 256 characters) <input type="password" autocomplete="new-password" required minLength={10} value={nw} onInput={(e) => setNw((e.target as HTMLInputElement).value)} /></label>
          <ErrorBox error={pw.error} what="Password" />
          <button class="primary" disabled={pw.busy}>Change password</button>
        </form>
      ) : null}
      {s.user ? (
        <section class="form">
          <h2>Two-factor authentication</h2>
          <p>Two-factor is {s.totp ? "on" : "off"}.</p>
          {!s.totp && !enroll ? (
            <button onClick={() => tf.run(async () => setEnroll(await api("POST", "/api/v1/session/totp")))}>Turn on two-factor</button>
          ) : null}
          {enroll ? (
            <>
              <p>Add this secret to an authenticator app (RFC 6238, 6 digits, 30 s), then type a current code:</p>
              <p><code class="secret">{enroll.secret}</code></p>
              <p class="muted"><code>{enroll.uri}</code></p>
            </>
          ) : null}
          {enroll || s.totp ? (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                tf.run(async () => {
                  if (enroll) await api("POST", "/api/v1/session/totp/confirm", { code });
                  else await api("DELETE", "/api/v1/session/totp", { code });
                  setDone(enroll ? "Two-factor is on." : "Two-factor is off.");
                  setEnroll(null);
                  setCode("");
                  refresh();
                });
              }}
            >
              <label>Current code <input inputMode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} /></label>
              <button class="primary" disabled={tf.busy}>{enroll ? "Confirm" : "Turn two-factor off"}</button>
            </form>
          ) : null}
          <ErrorBox error={tf.error} what="Two-factor" />
        </section>
      ) : null}
      <h2 id="shortcuts">Keyboard shortcuts</h2>
      <dl class="facts">
        <dt><kbd>/</kbd></dt><dd>search on this page</dd>
        <dt><kbd>n</kbd></dt><dd>new task</dd>
        <dt><kbd>j</kbd> / <kbd>k</kbd></dt><dd>next / previous row; <kbd>Enter</kbd> opens it</dd>
        <dt><kbd>g</kbd> then <kbd>d</kbd> <kbd>a</kbd> <kbd>t</kbd> <kbd>f</kbd> <kbd>e</kbd> <kbd>l</kbd></dt><dd>go to dashboard, agents, tasks, findings, events, audit log</dd>
        <dt><kbd>?</kbd></dt><dd>this list</dd>
      </dl>
    </section>
  );
}
