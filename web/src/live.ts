// Live updates: one EventSource per tab on /api/v1/stream (the center
// sends an event per change: "task" with the task id, "agent" (also when
// an agent goes offline or comes back: "state"), "finding",
// "enrollment"); pages subscribe to the kinds they show and reload what
// changed. While the stream is down the subscribers are polled instead,
// every 5 s while the tab is visible, so nothing goes stale.
import { useEffect, useRef } from "preact/hooks";

type Fn = (data: any) => void;
interface Sub {
  kinds: string[];
  fn: Fn;
  id?: string;
}
const subs = new Set<Sub>();
let es: EventSource | null = null;
let up = false;
let wasDown = false; // the stream failed since it last opened
let retry = 1000;
const LIVE_MIN_MS = 1000;
export const liveState = { connected: false };

function dispatch(kind: string, data: any) {
  subs.forEach((s) => {
    if (!s.kinds.includes(kind)) return;
    if (s.id && data && data.id && data.id !== s.id) return;
    s.fn(data);
  });
}

function connect() {
  if (es || !subs.size) return;
  es = new EventSource("/api/v1/stream");
  es.onopen = () => {
    up = true;
    liveState.connected = true;
    retry = 1000;
    // Whatever changed while the stream was down. On the first open too,
    // what changed between a page's first request and this open (a task
    // an agent finished in that moment was never shown done), but a
    // second later: a reload at once aborted the first request and
    // doubled the time to the first rows (bench/console).
    if (wasDown) subs.forEach((s) => s.fn(null));
    else
      setTimeout(() => {
        if (up) subs.forEach((s) => s.fn(null));
      }, LIVE_MIN_MS);
    wasDown = false;
  };
  for (const k of ["task", "agent", "finding", "enrollment"])
    es.addEventListener(k, (e) => {
      let d: any = null;
      try {
        d = JSON.parse((e as MessageEvent).data);
      } catch {
        /* an event without data still means "reload" */
      }
      dispatch(k, d);
    });
  es.onerror = () => {
    up = false;
    wasDown = true;
    liveState.connected = false;
    es?.close();
    es = null;
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  };
}

setInterval(() => {
  if (up || document.visibilityState !== "visible") return;
  subs.forEach((s) => s.fn(null));
}, 5000);

// Calls fn for each event of these kinds (of object id, when given), at
// most once a second: a burst (a fleet going offline, a bulk relabel) is
// one reload at once and one at the end of the second, not one per agent.
export function useLive(kinds: string[], fn: Fn, id?: string) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    let last = 0;
    let timer: number | undefined;
    let pending: any = null;
    const call = (d: any) => {
      const now = Date.now();
      if (timer !== undefined) {
        pending = d;
        return;
      }
      if (now - last >= LIVE_MIN_MS) {
        last = now;
        ref.current(d);
        return;
      }
      pending = d;
      timer = window.setTimeout(() => {
        timer = undefined;
        last = Date.now();
        ref.current(pending);
      }, LIVE_MIN_MS - (now - last));
    };
    const s: Sub = { kinds, fn: call, id };
    subs.add(s);
    connect();
    return () => {
      clearTimeout(timer);
      subs.delete(s);
      if (!subs.size && es) {
        es.close();
        es = null;
        up = false;
      }
    };
  }, [kinds.join(","), id]);
}
