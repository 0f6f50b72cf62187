// Shared pieces: data loading, errors in words where they happened,
// tables with keyboard navigation, paging by cursor, time formatting.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, qs } from "./api";
import { setQuery, useLocation } from "./router";

export function useApi<T>(path: string | null, deps: unknown[] = [], pollMs = 0) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (!path) return;
    const ac = new AbortController();
    setLoading(true);
    api<T>("GET", path, undefined, ac.signal)
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((e) => {
        if (e.name !== "AbortError") setError(e);
      })
      .finally(() => {
        if (!ac.signal.aborted) setLoading(false);
      });
    return () => ac.abort();
  }, [path, tick, ...deps]);
  useEffect(() => {
    if (!pollMs) return;
    const id = setInterval(() => {
      if (document.visibilityState === "visible") reload();
    }, pollMs);
    return () => clearInterval(id);
  }, [pollMs, reload]);
  return { data, error, loading, reload, setData };
}

export function ErrorBox({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  const e = error as ApiError;
  return (
    <div class="error" role="alert">
      {what ? <strong>{what}: </strong> : null}
      {e.message}
      {e.field ? <span class="muted"> (field: {e.field})</span> : null}
      {e.status ? <span class="muted"> [{e.status} {e.code}]</span> : null}
    </div>
  );
}

// Runs a change, shows its error next to the control, and a busy state.
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, setError };
}

export function fmtTime(t: number | null | undefined): string {
  if (!t) return "—";
  const d = new Date(t * 1000);
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export function ago(t: number | null | undefined): string {
  if (!t) return "never";
  const s = Math.round(Date.now() / 1000 - t);
  if (s < 0) return "in " + dur(-s);
  return dur(s) + " ago";
}

export function dur(s: number): string {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h";
  return Math.floor(s / 86400) + "d";
}

export function Time({ t }: { t: number | null | undefined }) {
  return <time title={fmtTime(t)}>{ago(t)}</time>;
}

export function Labels({ labels }: { labels: Record<string, string> | null | undefined }) {
  const e = Object.entries(labels || {});
  if (!e.length) return <span class="muted">none</span>;
  return (
    <span class="labels">
      {e.map(([k, v]) => (
        <span class="label" key={k}>
          {k}={v}
        </span>
      ))}
    </span>
  );
}

export function Badge({ v }: { v: string | null | undefined }) {
  return <span class={"badge b-" + (v || "none")}>{v || "—"}</span>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

export interface Column<T> {
  key: string;
  title: string;
  sort?: string; // the API's sort field
  render: (row: T) => ComponentChildren;
  class?: string;
}

// A table whose rows are reachable with j/k (or arrows) and opened with
// Enter; the sort headers are buttons that set ?sort= in the URL.
export function Table<T>(props: {
  columns: Column<T>[];
  rows: T[];
  rowKey: (r: T) => string;
  onOpen?: (r: T) => void;
  sort?: string;
  onSort?: (s: string) => void;
  selected?: Set<string>;
  onSelect?: (s: Set<string>) => void;
  caption: string;
}) {
  const { columns, rows, rowKey, onOpen, sort, onSort, selected, onSelect } = props;
  const [cur, setCur] = useState(-1);
  const body = useRef<HTMLTableSectionElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "j" || e.key === "k") {
        e.preventDefault();
        const n = e.key === "j" ? Math.min(rows.length - 1, cur + 1) : Math.max(0, cur - 1);
        setCur(n);
        const tr = body.current?.children[n] as HTMLElement | undefined;
        tr?.focus();
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [rows, cur]);
  const toggleAll = () => {
    if (!onSelect) return;
    if (selected && selected.size === rows.length) onSelect(new Set());
    else onSelect(new Set(rows.map(rowKey)));
  };
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            {onSelect ? (
              <th class="sel">
                <input
                  type="checkbox"
                  aria-label="select all rows"
                  checked={!!selected && rows.length > 0 && selected.size === rows.length}
                  onChange={toggleAll}
                />
              </th>
            ) : null}
            {columns.map((c) => {
              const s = c.sort;
              const active = s && sort && sort.replace(/^-/, "") === s;
              const desc = active && sort!.startsWith("-");
              return (
                <th key={c.key} class={c.class} aria-sort={active ? (desc ? "descending" : "ascending") : undefined}>
                  {s && onSort ? (
                    <button class="link" onClick={() => onSort(active && !desc ? "-" + s : s)}>
                      {c.title}
                      {active ? (desc ? " ▼" : " ▲") : ""}
                    </button>
                  ) : (
                    c.title
                  )}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody ref={body}>
          {rows.map((r, i) => {
            const k = rowKey(r);
            return (
              <tr
                key={k}
                tabIndex={onOpen ? 0 : undefined}
                class={i === cur ? "cur" : undefined}
                onFocus={() => setCur(i)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" && onOpen && e.target === e.currentTarget) onOpen(r);
                }}
              >
                {onSelect ? (
                  <td class="sel">
                    <input
                      type="checkbox"
                      aria-label={"select " + k}
                      checked={!!selected && selected.has(k)}
                      onChange={() => {
                        const s = new Set(selected);
                        if (s.has(k)) s.delete(k);
                        else s.add(k);
                        onSelect(s);
                      }}
                    />
                  </td>
                ) : null}
                {columns.map((c) => (
                  <td key={c.key} class={c.class}>
                    {c.render(r)}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

// A server-side paged list: filters, sort and cursor live in the URL, so
// a filtered page is a link. `extra` holds fixed parameters.
export function usePagedList<T>(endpoint: string, filterKeys: string[], defLimit = 50, pollMs = 0) {
  const { query } = useLocation();
  const params: Record<string, string> = {};
  for (const k of [...filterKeys, "sort", "cursor", "limit"]) {
    const v = query.get(k);
    if (v) params[k] = v;
  }
  if (!params.limit) params.limit = String(defLimit);
  const path = endpoint + (endpoint.includes("?") ? "&" + qs(params).slice(1) : qs(params));
  const res = useApi<{ items: T[]; next_cursor: string | null }>(path, [], pollMs);
  return { ...res, params, path };
}

const prevCursors: Record<string, string[]> = {};

export function Pager({ next, cursor, count, id }: { next: string | null | undefined; cursor?: string; count: number; id: string }) {
  const stack = (prevCursors[id] ||= []);
  return (
    <nav class="pager" aria-label="pages">
      <button
        disabled={!cursor}
        onClick={() => setQuery({ cursor: stack.pop() || undefined }, false)}
      >
        ← Previous
      </button>
      <span class="muted">{count} shown</span>
      <button
        disabled={!next}
        onClick={() => {
          stack.push(cursor || "");
          setQuery({ cursor: next || undefined }, false);
        }}
      >
        Next →
      </button>
    </nav>
  );
}

// A text filter that updates the URL after typing pauses.
export function FilterInput({ name, label, placeholder, id }: { name: string; label: string; placeholder?: string; id?: string }) {
  const { query } = useLocation();
  const [v, setV] = useState(query.get(name) || "");
  const t = useRef<number>();
  useEffect(() => setV(query.get(name) || ""), [query.get(name)]);
  return (
    <label class="filter">
      <span>{label}</span>
      <input
        id={id}
        type="search"
        value={v}
        placeholder={placeholder}
        onInput={(e) => {
          const x = (e.target as HTMLInputElement).value;
          setV(x);
          clearTimeout(t.current);
          t.current = window.setTimeout(() => setQuery({ [name]: x || undefined, cursor: undefined }), 250);
        }}
      />
    </label>
  );
}

export function FilterSelect({ name, label, options }: { name: string; label: string; options: string[] }) {
  const { query } = useLocation();
  return (
    <label class="filter">
      <span>{label}</span>
      <select
        value={query.get(name) || ""}
        onChange={(e) => setQuery({ [name]: (e.target as HTMLSelectElement).value || undefined, cursor: undefined })}
      >
        <option value="">any</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Confirm({ label, question, onYes, busy, danger }: { label: string; question: string; onYes: () => void; busy?: boolean; danger?: boolean }) {
  const [ask, setAsk] = useState(false);
  if (!ask)
    return (
      <button class={danger ? "danger" : undefined} disabled={busy} onClick={() => setAsk(true)}>
        {label}
      </button>
    );
  return (
    <span class="confirm" role="group" aria-label={question}>
      {question}{" "}
      <button
        class={danger ? "danger" : "primary"}
        onClick={() => {
          setAsk(false);
          onYes();
        }}
      >
        Yes, {label.toLowerCase()}
      </button>{" "}
      <button onClick={() => setAsk(false)}>No</button>
    </span>
  );
}

export function Json({ v }: { v: unknown }) {
  return (
    <pre class="json" tabIndex={0}>
      {JSON.stringify(v, null, 2)}
    </pre>
  );
}

export function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(/[,\s]+/)) {
    if (!part) continue;
    const i = part.indexOf("=");
    if (i <= 0) throw new Error(`"${part}" is not key=value`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

export function labelsText(l: Record<string, string> | null | undefined): string {
  return Object.entries(l || {})
    .map(([k, v]) => k + "=" + v)
    .join(", ");
}
