/// <reference lib="webworker" />
// The service worker: a versioned precache of the app shell (Workbox), navigations served from
// it offline, reminders by Web Push. Updates wait for the page to ask (never mid-entry).
import { clientsClaim } from "workbox-core";
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from "workbox-precaching";
import { NavigationRoute, registerRoute } from "workbox-routing";
import { type Locale, pickLocale, translator } from "./i18n";
import { AppDB, closeWhenDeleted } from "./store/db";
import { ApiClient } from "./api/client";
import { metaGet, metaSet } from "./store/meta";
import { SyncEngine } from "./sync/engine";

/** The lock the pages' sync takes too (session.ts): one sync round at a time on the device. */
const SYNC_LOCK = "csu-sync";

declare const self: ServiceWorkerGlobalScope;

precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
clientsClaim();

// Every app route is the same shell; the API is never cached here.
registerRoute(new NavigationRoute(createHandlerBoundToURL("/app/index.html"), { allowlist: [/^\/app\//] }));

self.addEventListener("message", (event: ExtendableMessageEvent) => {
  if ((event.data as { type?: string } | null)?.type === "SKIP_WAITING") void self.skipWaiting();
});

// Background Sync (Chromium): an entry saved without signal is sent when the signal is back,
// even with the app closed. An open page syncs itself (it also re-renders); with none open the
// worker runs the same engine on the device's database, under the same locks as the pages (one
// sync at a time, one token refresh at a time). A round that found no network or the server
// unavailable fails, so the browser tries again later.
self.addEventListener("sync", (event: Event) => {
  const e = event as ExtendableEvent & { tag?: string };
  if (e.tag !== "csu-sync") return;
  e.waitUntil(
    self.clients.matchAll({ type: "window" }).then(async (clients) => {
      if (clients.length === 0) return syncInWorker();
      for (const client of clients) client.postMessage({ type: "sync" });
    }),
  );
});

async function syncInWorker(): Promise<void> {
  const db = new AppDB();
  closeWhenDeleted(db); // a sign-out meanwhile: this round ends, writing nothing more
  try {
    if ((await metaGet<string>(db, "refresh_token")) === undefined) return; // signed out
    const api = new ApiClient((input, init) => fetch(input, init), {
      refreshToken: () => metaGet<string>(db, "refresh_token"),
      saveRefreshToken: (token) => metaSet(db, "refresh_token", token),
    });
    const engine = new SyncEngine(db, api);
    const run = () => engine.sync();
    const locks = self.navigator.locks;
    const outcome = locks ? await locks.request(SYNC_LOCK, run) : await run();
    if (outcome.status === "offline" || outcome.status === "unavailable") throw new Error(`sync ${outcome.status}`);
  } finally {
    db.close(); // never hold the database open: signing out deletes it
  }
}

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
