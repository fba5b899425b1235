/// <reference lib="webworker" />
// The service worker: a versioned precache of the app shell (Workbox), navigations served from
// it offline, reminders by Web Push. Updates wait for the page to ask (never mid-entry).
import { clientsClaim } from "workbox-core";
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from "workbox-precaching";
import { NavigationRoute, registerRoute } from "workbox-routing";
import { type Locale, pickLocale, translator } from "./i18n";
import { AppDB } from "./store/db";
import { metaGet } from "./store/meta";

declare const self: ServiceWorkerGlobalScope;

precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
clientsClaim();

// Every app route is the same shell; the API is never cached here.
registerRoute(new NavigationRoute(createHandlerBoundToURL("/app/index.html"), { allowlist: [/^\/app\//] }));

self.addEventListener("message", (event: ExtendableMessageEvent) => {
  if ((event.data as { type?: string } | null)?.type === "SKIP_WAITING") void self.skipWaiting();
});

// Background Sync (Chromium): wake the open pages' sync engines.
self.addEventListener("sync", (event: Event) => {
  const e = event as ExtendableEvent & { tag?: string };
  if (e.tag !== "csu-sync") return;
  e.waitUntil(
    self.clients.matchAll({ type: "window" }).then((clients) => {
      for (const client of clients) client.postMessage({ type: "sync" });
    }),
  );
});

// Reminders: the payload is `{type, delivery}` (patients/reminders.py) and the notification
// names no health data; tapping it opens today's entry.
/** The language the patient chose (kept with their settings), else the browser's. */
async function chosenLocale(): Promise<Locale> {
  const db = new AppDB();
  try {
    return pickLocale([(await metaGet<string>(db, "locale")) ?? "", self.navigator.language]);
  } catch {
    return pickLocale([self.navigator.language]);
  } finally {
    db.close(); // never hold the database open: signing out deletes it
  }
}

self.addEventListener("push", (event: PushEvent) => {
  let delivery = "";
  try {
    delivery = String((event.data?.json() as { delivery?: string } | undefined)?.delivery ?? "");
  } catch {
    // Not JSON: still remind.
  }
  event.waitUntil(chosenLocale().then((locale) => show(translator(locale), delivery)));
});

function show(t: ReturnType<typeof translator>, delivery: string): Promise<void> {
  // Neither the title nor the body names the condition or the kind of reminder: a lock screen
  // is seen by others (the app's own name would say what the patient has).
  return self.registration.showNotification(t("notification.title"), {
    body: t("push.body"),
    tag: delivery ? `reminder-${delivery}` : "reminder",
    icon: "/app/icons/icon-192.png",
    data: { url: "/app/" },
  });
}

self.addEventListener("notificationclick", (event: NotificationEvent) => {
  event.notification.close();
  const url = (event.notification.data as { url?: string } | null)?.url ?? "/app/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(async (clients) => {
      const open = clients.find((c) => new URL(c.url).pathname.startsWith("/app/"));
      if (!open) return self.clients.openWindow(url);
      // An open app goes to today's entry, then comes to the front (focus needs the tap's
      // permission, which the browser gives this handler; the navigation happens regardless).
      const shown = (await open.navigate(url).catch(() => null)) ?? open;
      return shown.focus().catch(() => shown);
    }),
  );
});
