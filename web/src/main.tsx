import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, onUnauthorized, roleAtLeast, type Role } from "./api";
import { match, navigate, useLocation } from "./router";
import { SessionCtx, type Session } from "./session";
import { ErrorBox } from "./ui";
import { Login } from "./pages/login";
import { Dashboard } from "./pages/dashboard";
import { Agents, AgentDetail } from "./pages/agents";
import { Tasks, TaskDetail, NewTask } from "./pages/tasks";
import { Findings, FindingDetail } from "./pages/findings";
import { Events } from "./pages/events";
import { Rules } from "./pages/rules";
import { Samples } from "./pages/samples";
import { Forwarding } from "./pages/forward";
import { Collector } from "./pages/collector";
import { Master } from "./pages/master";
import { Updates } from "./pages/updates";
import { Users } from "./pages/users";
import { Keys } from "./pages/keys";
import { Settings } from "./pages/settings";
import { Audit } from "./pages/audit";
import { Account } from "./pages/account";
import "./style.css";

interface PageDef {
  path: string;
  title: string;
  nav?: boolean;
  only?: "collector" | "master"; // in the menu only on a vigild of this role
  role: Role;
  view: (p: Record<string, string>) => preact.JSX.Element;
}

const pages: PageDef[] = [
  { path: "/", title: "Dashboard", nav: true, role: "readonly", view: () => <Dashboard /> },
  { path: "/agents", title: "Agents", nav: true, role: "readonly", view: () => <Agents /> },
  { path: "/agents/:id", title: "Agent", role: "readonly", view: (p) => <AgentDetail id={p.id} /> },
  { path: "/tasks", title: "Tasks", nav: true, role: "readonly", view: () => <Tasks /> },
  { path: "/tasks/new", title: "New task", role: "operator", view: () => <NewTask /> },
  { path: "/tasks/:id", title: "Task", role: "readonly", view: (p) => <TaskDetail id={p.id} /> },
  { path: "/findings", title: "Findings", nav: true, role: "readonly", view: () => <Findings /> },
  { path: "/findings/:agent/:seq", title: "Finding", role: "readonly", view: (p) => <FindingDetail agent={p.agent} seq={p.seq} /> },
  { path: "/events", title: "Events", nav: true, role: "readonly", view: () => <Events /> },
  { path: "/rules", title: "Rule sets", nav: true, role: "readonly", view: () => <Rules /> },
  { path: "/samples", title: "Samples", nav: true, role: "readonly", view: () => <Samples /> },
  { path: "/forwarding", title: "Forwarding", nav: true, role: "readonly", view: () => <Forwarding /> },
  { path: "/updates", title: "Updates", nav: true, role: "readonly", view: () => <Updates /> },
  { path: "/collector", title: "Collector", nav: true, only: "collector", role: "readonly", view: () => <Collector /> },
  { path: "/master", title: "Master", nav: true, only: "master", role: "readonly", view: () => <Master /> },
  { path: "/audit", title: "Audit log", nav: true, role: "analyst", view: () => <Audit /> },
  { path: "/users", title: "Users", nav: true, role: "admin", view: () => <Users /> },
  { path: "/keys", title: "API keys", nav: true, role: "readonly", view: () => <Keys /> },
  { path: "/settings", title: "Settings", nav: true, role: "admin", view: () => <Settings /> },
  { path: "/account", title: "My account", role: "readonly", view: () => <Account /> },
];

function theme(): "light" | "dark" {
  return document.documentElement.dataset.theme === "dark" ? "dark" : "light";
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checked, setChecked] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const [vigildRole, setVigildRole] = useState("center");
  const { path } = useLocation();

  const refresh = () =>
    api<Session>("GET", "/api/v1/session")
      .then((s) => {
        setSession(s);
        setErr(null);
      })
      .catch((e) => {
        if (e.status !== 401) setErr(e);
        setSession(null);
      })
      .finally(() => setChecked(true));

  useEffect(() => {
    refresh();
    onUnauthorized(() => setSession(null));
    api<{ role?: string }>("GET", "/api/v1/health")
      .then((h) => setVigildRole(h.role || "center"))
      .catch(() => {});
  }, []);

  const logout = async () => {
    try {
      await api("POST", "/api/v1/logout");
    } catch {
      /* the session may have ended already */
    }
    setSession(null);
    navigate("/login");
  };

  useEffect(() => {
    // Shortcuts: "/" search, "n" new task, "g" then a letter to go.
    let g = false;
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "/") {
        const s = document.querySelector<HTMLInputElement>("input[type=search]");
        if (s) {
          e.preventDefault();
          s.focus();
        }
      } else if (e.key === "n" && !g) {
        navigate("/tasks/new");
      } else if (e.key === "g") {
        g = true;
        setTimeout(() => (g = false), 1000);
        return;
      } else if (g) {
        const to: Record<string, string> = { d: "/", a: "/agents", t: "/tasks", f: "/findings", e: "/events", l: "/audit" };
        if (to[e.key]) navigate(to[e.key]);
      } else if (e.key === "?") {
        navigate("/account#shortcuts");
      }
      g = false;
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  if (!checked) return <p class="loading">Loading…</p>;
  if (!session) {
    if (path !== "/login") {
      const next = path + location.search;
      navigate("/login" + (next !== "/" ? "?next=" + encodeURIComponent(next) : ""), true);
    }
    return (
      <>
        <ErrorBox error={err} what="The center" />
        <Login onLogin={refresh} />
      </>
    );
  }
  if (path === "/login") {
    const next = new URLSearchParams(location.search).get("next");
    navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", true);
  }

  let view: preact.JSX.Element = (
    <section>
      <h1>Not found</h1>
      <p>
        No page at <code>{path}</code>. <a href="/">Go to the dashboard</a>.
      </p>
    </section>
  );
  let title = "Not found";
  for (const p of pages) {
    const m = match(p.path, path);
    if (!m) continue;
    title = p.title;
    view = roleAtLeast(session.role, p.role) ? (
      p.view(m)
    ) : (
      <section>
        <h1>{p.title}</h1>
        <p class="error" role="alert">
          This page needs the {p.role} role; you have {session.role}.
        </p>
      </section>
    );
    break;
  }
  document.title = title + " · Vigil";

  return (
    <SessionCtx.Provider value={{ s: session, refresh, logout }}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          Vigil
        </a>
        <span class="spacer" />
        <button
          class="link"
          aria-label="switch between light and dark theme"
          onClick={() => {
            const n = theme() === "dark" ? "light" : "dark";
            document.documentElement.dataset.theme = n;
          }}
        >
          Theme
        </button>
        <a href="/account" class="who">
          {session.user || session.who} ({session.role})
        </a>
        <button onClick={logout}>Log out</button>
      </header>
      <div class="shell">
        <nav class="side" aria-label="main">
          <ul>
            {pages
              .filter((p) => p.nav && roleAtLeast(session.role, p.role) && (!p.only || p.only === vigildRole))
              .map((p) => {
                const cur = p.path === "/" ? path === "/" : path === p.path || path.startsWith(p.path + "/");
                return (
                  <li key={p.path}>
                    <a href={p.path} aria-current={cur ? "page" : undefined}>
                      {p.title}
                    </a>
                  </li>
                );
              })}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          {view}
        </main>
      </div>
    </SessionCtx.Provider>
  );
}

if (window.matchMedia?.("(prefers-color-scheme: dark)").matches) document.documentElement.dataset.theme = "dark";
render(<App />, document.getElementById("app")!);
