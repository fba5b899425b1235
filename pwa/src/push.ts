// Web Push opt-in for reminders: ask the browser's permission, subscribe with the clinic's VAPID
// key, register the subscription with the server and keep the server's id (db.views "push") so
// that turning off, or signing out, removes it again. A push says only that a reminder is
// waiting (patients/reminders.py); the service worker shows it (src/sw.ts).
import { ApiError, type ApiClient, NetworkError } from "./api/client";
import type { PushSubscriptionJson } from "./api/types";
import type { AppDB } from "./store/db";
import { viewGet, viewPut } from "./store/views";

/** What the patient is shown about reminders on this device. */
export type PushState = "unsupported" | "unconfigured" | "blocked" | "off" | "on";

/** This browser's subscription as the server knows it (db.views "push"). */
export interface PushKept {
  /** The server's id of this browser's subscription; null when off. */
  id: string | null;
  endpoint: string | null;
  /** The clinic's VAPID key as last seen ("" when the server has none). */
  vapid_public_key: string;
  /** A subscription to delete on the server when next online (turned off while offline). */
  pending_delete?: string | null;
}

/** The browser features this needs; the real ones by default, fakes in unit tests. */
export interface PushEnv {
  supported(): boolean;
  permission(): NotificationPermission;
  requestPermission(): Promise<NotificationPermission>;
  /** The app's worker registration; `wait` until it is active (subscribing needs that). */
  registration(wait: boolean): Promise<ServiceWorkerRegistration | undefined>;
}

const READY_TIMEOUT_MS = 10_000;

export const browserPush: PushEnv = {
  supported: () =>
    typeof window !== "undefined" &&
    "serviceWorker" in navigator &&
    "PushManager" in window &&
    "Notification" in window,
  permission: () => Notification.permission,
  requestPermission: () => Notification.requestPermission(),
  registration: async (wait) => {
    if (!("serviceWorker" in navigator)) return undefined;
    if (!wait) return navigator.serviceWorker.getRegistration("/app/");
    // The worker registered by main.tsx; `ready` waits for it to be active.
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), READY_TIMEOUT_MS));
    return Promise.race([navigator.serviceWorker.ready, timeout]);
  },
};

/** Why turning on did not work, for the screen to put in words. */
export class PushRefused extends Error {
  constructor(readonly reason: "unsupported" | "unconfigured" | "blocked" | "dismissed") {
    super(reason);
  }
}

/** base64url (the server's `vapid_public_key`) to the bytes `applicationServerKey` takes. */
export function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  const raw = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function sameKey(a: ArrayBuffer | null | undefined, b: Uint8Array): boolean {
  if (!a) return true; // the browser does not say: assume it is ours
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((v, i) => v === b[i]);
}

async function kept(db: AppDB): Promise<PushKept> {
  const row = await viewGet<PushKept>(db, "push");
  return row?.value ?? { id: null, endpoint: null, vapid_public_key: "" };
}

/** The state to show, from the device alone (no network): works offline. */
export async function pushState(db: AppDB, env: PushEnv = browserPush): Promise<PushState> {
  if (!env.supported()) return "unsupported";
  const known = await kept(db);
  if (env.permission() === "denied") return "blocked";
  const registration = await env.registration(false);
  const subscription = await registration?.pushManager?.getSubscription();
  if (subscription && known.id && known.endpoint === subscription.endpoint) return "on";
  return "off";
}

/**
 * Ask the server for its key (online); "unconfigured" when it has none. Also finishes a
 * turn-off made offline. Returns the key, or undefined when the server could not be reached.
 */
export async function pushRefreshConfig(db: AppDB, api: ApiClient): Promise<string | undefined> {
  const known = await kept(db);
  try {
    if (known.pending_delete) await deleteOnServer(api, known.pending_delete);
    const config = await api.pushConfig();
    await viewPut(db, "push", { ...known, pending_delete: null, vapid_public_key: config.vapid_public_key });
    return config.vapid_public_key;
  } catch (error) {
    if (error instanceof NetworkError) return undefined;
    throw error;
  }
}

async function deleteOnServer(api: ApiClient, id: string): Promise<void> {
  try {
    await api.pushUnsubscribe(id);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error; // already gone is fine
  }
}

/** Turn reminders by push on for this browser (asks permission; needs the network). */
export async function pushEnable(db: AppDB, api: ApiClient, env: PushEnv = browserPush): Promise<PushKept> {
  if (!env.supported()) throw new PushRefused("unsupported");
  const current = env.permission();
  const permission = current === "default" ? await env.requestPermission() : current;
  if (permission === "denied") throw new PushRefused("blocked");
  if (permission !== "granted") throw new PushRefused("dismissed");
  const config = await api.pushConfig();
  if (!config.vapid_public_key) {
    await viewPut(db, "push", { ...(await kept(db)), vapid_public_key: "" });
    throw new PushRefused("unconfigured");
  }
  const registration = await env.registration(true);
  if (!registration) throw new PushRefused("unsupported");
  const key = keyBytes(config.vapid_public_key);
  const subscribe = () => registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });

  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
    await subscription.unsubscribe(); // made with another key (the server's key changed)
    subscription = null;
  }
  subscription ??= await subscribe();
  let saved;
  try {
    saved = await api.pushSubscribe(subscription.toJSON() as PushSubscriptionJson);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "push_endpoint_taken")) throw error;
    // This browser's endpoint still belongs to someone who used it before: a fresh one.
    await subscription.unsubscribe();
    subscription = await subscribe();
    saved = await api.pushSubscribe(subscription.toJSON() as PushSubscriptionJson);
  }
  const row: PushKept = { id: saved.id, endpoint: subscription.endpoint, vapid_public_key: config.vapid_public_key };
  await viewPut(db, "push", row);
  return row;
}

/**
 * Turn push off: the subscription is removed on the server and in the browser. Offline, the
 * browser's is removed at once (no more pushes reach it) and the server's when next online.
 * Returns false when the server could not be told yet.
 */
export async function pushDisable(db: AppDB, api: ApiClient, env: PushEnv = browserPush): Promise<boolean> {
  const known = await kept(db);
  const registration = env.supported() ? await env.registration(false) : undefined;
  const subscription = await registration?.pushManager?.getSubscription();
  let id = known.id ?? known.pending_delete ?? null;
  let told = true;
  try {
    if (!id && subscription) {
      // Subscribed, but the id was not kept (e.g. an interrupted opt-in): the server lists it.
      const config = await api.pushConfig();
      id = config.subscriptions.find((s) => s.endpoint === subscription.endpoint)?.id ?? null;
    }
    if (id) await deleteOnServer(api, id);
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    told = false;
  }
  await subscription?.unsubscribe();
  await viewPut(db, "push", { ...known, id: null, endpoint: null, pending_delete: told ? null : id });
  return told;
}
