// The admin API client. The session is the HttpOnly cookie vigil_session;
// requests other than GET carry X-CSRF-Token, read from the vigil_csrf
// cookie the center sets at login (not a credential by itself: it is
// useless without the session cookie, and another origin cannot read it).
// Nothing is kept in localStorage.

export interface ApiErrorBody {
  code: string;
  message: string;
  field?: string;
}

export class ApiError extends Error {
  status: number;
  code: string;
  field?: string;
  constructor(status: number, body: ApiErrorBody) {
    super(body.message || body.code || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.field = body.field;
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

function csrf(): string {
  const m = document.cookie.match(/(?:^|;\s*)vigil_csrf=([0-9a-f]+)/);
  return m ? m[1] : "";
}

type Listener = () => void;
const unauthorized: Listener[] = [];
export function onUnauthorized(fn: Listener) {
  unauthorized.push(fn);
}

export async function api<T = any>(
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, {
      code: "network",
      message: "the center cannot be reached (" + (e as Error).message + ")",
    });
  }
  const text = await res.text();
  let j: any = null;
  if (text) {
    try {
      j = JSON.parse(text);
    } catch {
      if (!res.ok)
        throw new ApiError(res.status, {
          code: "http_" + res.status,
          message: `${res.status} ${res.statusText}: ${text.slice(0, 200)}`,
        });
      return text as unknown as T;
    }
  }
  if (!res.ok) {
    const err = new ApiError(
      res.status,
      (j && j.error) || { code: "http_" + res.status, message: `${res.status} ${res.statusText}` },
    );
    if (res.status === 401 && path !== "/api/v1/login") unauthorized.forEach((f) => f());
    throw err;
  }
  return j as T;
}

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") u.append(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
}

export const ROLES = ["readonly", "analyst", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];
export function roleAtLeast(have: string | undefined, need: Role): boolean {
  return ROLES.indexOf((have || "") as Role) >= ROLES.indexOf(need);
}
