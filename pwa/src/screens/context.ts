import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Key, Locale } from "../i18n";
import type { Session } from "../session";

export interface AppContext {
  session: Session;
  locale: Locale;
  t: (key: Key, params?: Record<string, string | number>) => string;
  go: (route: Route) => void;
}

export type Route = "enroll" | "signin" | "today";

export const Ctx = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const ctx = useContext(Ctx);
  if (!ctx) throw new Error("No app context");
  return ctx;
}
