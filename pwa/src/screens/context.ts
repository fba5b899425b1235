import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Key, Locale } from "../i18n";
import type { Session } from "../session";

export interface AppContext {
  session: Session;
  locale: Locale;
  t: (key: Key, params?: Record<string, string | number>) => string;
  go: (route: Route) => void;
  /** Change the app's language at once (My data also tells the server, for emails and push). */
  setLocale: (locale: Locale) => void;
}

export type Route = "enroll" | "signin" | "today" | "history" | "medications" | "questionnaires" | "reminders" | "mydata";

/** The screens a signed-in patient moves between, in the navigation's order. */
export const MAIN_ROUTES = ["today", "history", "medications", "questionnaires", "reminders", "mydata"] as const;

export const PATHS: Record<Route, string> = {
  enroll: "/app/enroll",
  signin: "/app/signin",
  today: "/app/",
  history: "/app/history",
  medications: "/app/medications",
  questionnaires: "/app/questionnaires",
  reminders: "/app/reminders",
  mydata: "/app/my-data",
};

export function routeFromPath(path: string): Route {
  for (const [route, prefix] of Object.entries(PATHS) as [Route, string][]) {
    if (route !== "today" && path.startsWith(prefix)) return route;
  }
  return "today";
}

export const Ctx = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const ctx = useContext(Ctx);
  if (!ctx) throw new Error("No app context");
  return ctx;
}
