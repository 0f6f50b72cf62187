import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { ErrorBox } from "../ui";

export function Login({ onLogin }: { onLogin: () => void }) {
  const [user, setUser] = useState("");
  const [pass, setPass] = useState("");
  const [totp, setTotp] = useState("");
  const [needTotp, setNeedTotp] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      const body: Record<string, string> = { username: user, password: pass };
      if (needTotp) body.totp = totp;
      await api("POST", "/api/v1/login", body);
      setPass("");
      setTotp("");
      onLogin();
    } catch (x) {
      const ae = x as ApiError;
      if (ae.code === "totp_required") {
        setNeedTotp(true);
        setErr(null);
      } else if (ae.code === "login_failed") {
        setErr(new ApiError(401, { code: "login_failed", message: needTotp ? "Wrong user name, password or code." : "Wrong user name or password (or the account is locked)." }));
      } else setErr(x);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login" id="main">
      <form onSubmit={submit} aria-labelledby="login-h">
        <h1 id="login-h">Vigil</h1>
        <p class="muted">Sign in to the management center.</p>
        <label>
          User name
          <input name="username" autocomplete="username" required value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required value={pass} onInput={(e) => setPass((e.target as HTMLInputElement).value)} />
        </label>
        {needTotp ? (
          <label>
            Two-factor code
            <input
              name="totp"
              inputMode="numeric"
              autocomplete="one-time-code"
              pattern="[0-9]{6}"
              required
              autoFocus
              value={totp}
              onInput={(e) => setTotp((e.target as HTMLInputElement).value)}
            />
          </label>
        ) : null}
        <ErrorBox error={err} />
        <button class="primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : needTotp ? "Verify" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
