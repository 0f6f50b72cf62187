import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { roleAtLeast, type Role } from "./api";

export interface Session {
  who: string;
  role: Role;
  user?: string;
  totp?: boolean;
}

export const SessionCtx = createContext<{ s: Session; refresh: () => void; logout: () => void } | null>(null);

export function useSession() {
  const c = useContext(SessionCtx);
  if (!c) throw new Error("no session");
  return c;
}

export function useCan(need: Role): boolean {
  const c = useContext(SessionCtx);
  return !!c && roleAtLeast(c.s.role, need);
}
