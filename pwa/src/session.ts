// The app's one session: the device database, the API client and the sync engine, signing in
// and out, and when to sync (start, online, visibility, a timer, after a save). One tab syncs
// at a time (Web Locks); the others are told to re-read through a BroadcastChannel.
import { ApiClient, ApiError, NetworkError, SCHEMA_VERSION } from "./api/client";
import { pushDisable } from "./push";
import { type Locale, pickLocale } from "./i18n";
import { AppDB, closeWhenDeleted } from "./store/db";
import { draftsClear } from "./store/drafts";
import { metaGet, metaSet } from "./store/meta";
import { settingsFromServer, settingsSave } from "./store/settings";
import { SyncEngine, type SyncOutcome } from "./sync/engine";

const CHANNEL = "csu-sync";
/** The app's language on this device (kept across sign-out), else the browser's. */
export const LOCALE_KEY = "csu-locale";

export function appLocale(): Locale {
  const kept = localStorage.getItem(LOCALE_KEY);
  return kept === "en" || kept === "de" ? kept : pickLocale(navigator.languages);
}
const SYNC_EVERY_MS = 60_000;
const RETRY_MS = 5_000;

export type Listener = (outcome: SyncOutcome | null) => void;

export class Session {
  db = new AppDB();
  readonly api: ApiClient;
  engine: SyncEngine;
  private listeners = new Set<Listener>();
  private wiping = false;
  /** Signing out here: the browser closing the database (Clear-Site-Data) is expected. */
  private signingOut = false;
  private channel: BroadcastChannel | undefined =
    typeof BroadcastChannel === "undefined" ? undefined : new BroadcastChannel(CHANNEL);
  lastOutcome: SyncOutcome | null = null;

  constructor() {
    this.api = new ApiClient((input, init) => fetch(input, init), {
      refreshToken: () => metaGet<string>(this.db, "refresh_token"),
      saveRefreshToken: (token) => metaSet(this.db, "refresh_token", token),
    });
    this.engine = new SyncEngine(this.db, this.api);
    this.guard(this.db);
    if (this.channel) {
      this.channel.onmessage = (event: MessageEvent<string>) => {
        // Signed out in another tab: this one forgets its in-memory sign-in too.
        if (event.data === "signed-out") location.reload();
        else this.emit(this.lastOutcome);
      };
    }
  }

  /** Signed out in another tab (it deletes the database): stop at once, then reload signed out. */
  private guard(db: AppDB): void {
    closeWhenDeleted(db, () => {
      if (!this.wiping && !this.signingOut) location.reload();
    });
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(outcome: SyncOutcome | null): void {
    for (const listener of this.listeners) listener(outcome);
  }

  /** Something changed locally: re-render this tab, tell the others, and try to sync. */
  changed(): void {
    this.emit(this.lastOutcome);
    this.channel?.postMessage("changed");
    void this.sync();
    // Where the browser has Background Sync (Chromium), the worker wakes a page when back online.
    if (!navigator.onLine) void this.registerBackgroundSync();
  }

  private async registerBackgroundSync(): Promise<void> {
    const registration = (await navigator.serviceWorker?.getRegistration()) as
      | (ServiceWorkerRegistration & { sync?: { register(tag: string): Promise<void> } })
      | undefined;
    try {
      await registration?.sync?.register(CHANNEL);
    } catch {
      // Not allowed here (e.g. not installed): the `online` event still triggers a sync.
    }
  }

  async isSignedIn(): Promise<boolean> {
    return (await metaGet<string>(this.db, "refresh_token")) !== undefined;
  }

  /** One sync round (never rejects: triggers fire it and forget it). The round reports its
   * own failures as an outcome; what is left is the database closing under it while the
   * device is wiped at sign-out, when there is nothing to sync. */
  async sync(): Promise<SyncOutcome | null> {
    try {
      if (!(await this.isSignedIn())) return null;
      const run = () => this.engine.sync();
      const outcome = navigator.locks ? await navigator.locks.request(CHANNEL, run) : await run();
      this.lastOutcome = outcome;
      if (outcome.status === "ok") this.retryDelay = RETRY_MS;
      // No signal (or the server away) with entries waiting: the browser wakes the worker to
      // send them once it is back, even if the app is closed by then (sw.ts).
      if (outcome.status === "offline" || outcome.status === "unavailable") {
        // Without signal, Background Sync sends what waits once it is back, even with the app
        // closed by then. While the browser says it is online, Chromium would fire it at once,
        // round after round (a hot loop while the server is down; found by review): a lost
        // answer or a blip is tried again soon instead, backing off.
        if (navigator.onLine) this.retrySoon();
        else void this.registerBackgroundSync();
      }
      this.emit(outcome);
      this.channel?.postMessage("synced");
      return outcome;
    } catch (error) {
      if (error instanceof Error && (error.name === "DatabaseClosedError" || error.name === "AbortError")) return null;
      throw error;
    }
  }

  private retry: number | undefined;
  private retryDelay = RETRY_MS;

  /** Again in 5 s, then 10, 20, 40 (the minute's timer goes on regardless); a success resets it. */
  private retrySoon(): void {
    if (this.retry !== undefined || this.retryDelay > SYNC_EVERY_MS) return;
    this.retry = window.setTimeout(() => {
      this.retry = undefined;
      void this.sync();
    }, this.retryDelay);
    this.retryDelay *= 2;
  }

  startTriggers(): void {
    void this.revokeLeftover();
    window.addEventListener("online", () => {
      void this.revokeLeftover();
      void this.sync();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") void this.sync();
    });
    window.setInterval(() => void this.sync(), SYNC_EVERY_MS);
    navigator.serviceWorker?.addEventListener("message", (event: MessageEvent<{ type?: string }>) => {
      if (event.data?.type === "sync") void this.sync();
    });
  }

  /**
   * The previous sign-out's Clear-Site-Data also removed the service worker: a sign-in in the
   * same page installs it again (offline start, reminders by push) without waiting for a reload.
   */
  private async ensureWorker(): Promise<void> {
    try {
      if (navigator.serviceWorker && !(await navigator.serviceWorker.getRegistration("/app/"))) {
        await navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" });
      }
    } catch {
      // Not available here: the app works online all the same.
    }
  }

  /** Keep the tokens of a sign-in; another account's data never stays on the device. A new
   * patient's language is the one the app spoke while they joined (the server's emails and
   * notifications follow it); after that the profile's language is the patient's. */
  private async adopt(access: string, refresh: string, joined = false): Promise<void> {
    void this.ensureWorker();
    const userId = jwtUserId(access);
    // Anything kept for another user, or for nobody (a device whose sign-out a second tab's
    // late write undid), goes before this user's data comes down.
    const previous = await metaGet<string>(this.db, "user_id");
    if (previous !== undefined && previous !== userId) await this.unsubscribePush();
    if (previous !== userId && !(previous === undefined && (await this.isEmpty()))) await this.wipe();
    await metaSet(this.db, "user_id", userId);
    await metaSet(this.db, "refresh_token", refresh);
    this.api.setAccessToken(access);
    try {
      const profile = await this.api.profile();
      await settingsFromServer(this.db, profile);
      const spoken = appLocale();
      if (joined && profile.locale !== spoken) await settingsSave(this.db, { locale: spoken });
      await metaSet(this.db, "display_name", profile.display_name);
      if (typeof profile.late_entry_days === "number") await metaSet(this.db, "late_entry_days", profile.late_entry_days);
    } catch (error) {
      if (!(error instanceof NetworkError || error instanceof ApiError)) throw error;
    }
    this.changed();
  }

  /** Nothing kept at all (a first sign-in on this browser: no wipe to wait for). */
  private async isEmpty(): Promise<boolean> {
    const counts = await Promise.all(this.db.tables.map((table) => table.count()));
    return counts.every((n) => n === 0);
  }

  /** Another user's reminders must not reach this browser: their sign-in ended without a
   * sign-out (which tells the server), so the browser's subscription ends here; the server drops
   * it at its next reminder (the push service answers 410). */
  private async unsubscribePush(): Promise<void> {
    try {
      const registration = await navigator.serviceWorker?.getRegistration("/app/");
      await (await registration?.pushManager?.getSubscription())?.unsubscribe();
    } catch {
      // No push here: nothing to end.
    }
  }

  async signIn(email: string, password: string, otp?: string): Promise<void> {
    const pair = await this.api.signIn(email, password, otp);
    await this.adopt(pair.access, pair.refresh);
  }

  async enroll(code: string, email: string, password: string, privacyNoticeVersion: number, otp?: string): Promise<void> {
    const pair = await this.api.enroll(code, email, password, privacyNoticeVersion, otp);
    await this.adopt(pair.access, pair.refresh, true);
  }

  /**
   * Sign out: first this browser's push subscription leaves the server (so the next person
   * using this browser gets no reminders of this patient, and can subscribe themselves) and
   * the browser; then the refresh token is revoked; then everything this app keeps on the
   * device is removed (IndexedDB, caches). The server's answer also asks the browser to clear
   * the origin's storage and cache (Clear-Site-Data).
   */
  async signOut(): Promise<void> {
    this.signingOut = true;
    try {
      await this.signOutSteps();
    } finally {
      this.signingOut = false;
    }
  }

  private async signOutSteps(): Promise<void> {
    const refresh = await metaGet<string>(this.db, "refresh_token");
    try {
      if (refresh) await pushDisable(this.db, this.api);
    } catch {
      // Offline or refused: the local subscription is still removed below.
    }
    try {
      const registration = await navigator.serviceWorker?.getRegistration("/app/");
      await (await registration?.pushManager?.getSubscription())?.unsubscribe();
    } catch {
      // No push here.
    }
    // The server's Clear-Site-Data also empties localStorage: the language chosen stays.
    const locale = localStorage.getItem(LOCALE_KEY);
    let unrevoked: string | undefined;
    if (refresh) {
      try {
        await revoke(refresh);
      } catch {
        unrevoked = refresh; // offline: the device is wiped all the same, revoked when back online
      }
    }
    this.api.setAccessToken(undefined);
    if (locale) localStorage.setItem(LOCALE_KEY, locale);
    // The browser may still be clearing the origin's storage (Clear-Site-Data) as the app
    // wipes and reopens its database: a transaction it aborts is tried again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.wipe();
        break;
      } catch (error) {
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    if ("caches" in window) for (const key of await caches.keys()) await caches.delete(key);
    // The browser's clearing may have closed even the new, empty database under this page
    // (it stays closed: no auto-open): the next sign-in here gets a working one.
    if (this.db.hasBeenClosed()) await this.wipe();
    if (unrevoked) localStorage.setItem(UNREVOKED_KEY, unrevoked);
    this.channel?.postMessage("signed-out");
  }

  /** A sign-out made offline revokes its refresh token once the network is back (until then
   * the token is the only thing left of the session, and no page holds it). */
  async revokeLeftover(): Promise<void> {
    const token = localStorage.getItem(UNREVOKED_KEY);
    if (!token || !navigator.onLine) return;
    try {
      // Without credentials: the answer's Clear-Site-Data must not empty the origin again, where
      // someone may have signed in since and be keeping unsent entries (found by review).
      await revoke(token, false);
      localStorage.removeItem(UNREVOKED_KEY);
    } catch {
      // Still unreachable: tried again on the next `online` or start.
    }
  }

  private async wipe(): Promise<void> {
    this.wiping = true;
    draftsClear();
    try {
      this.db.close();
      await this.db.delete();
      this.db = new AppDB();
      this.guard(this.db);
      await this.db.open();
      this.engine = new SyncEngine(this.db, this.api);
      this.lastOutcome = null;
    } finally {
      this.wiping = false;
    }
  }

  /**
   * A read that a screen started on the database being wiped fails with Dexie's
   * DatabaseClosedError (the old database object stays closed), or with an AbortError while the
   * deletion runs: nothing is lost, the screen re-renders from the new, empty database. Only
   * these are left unreported; any other failure still surfaces.
   */
  isWipeCasualty(reason: unknown): boolean {
    const name = (reason as { name?: unknown } | null)?.name;
    return name === "DatabaseClosedError" || (this.wiping && name === "AbortError");
  }
}

/**
 * Revoke the refresh token (POST /auth/logout/). Sent with the origin's credentials, unlike the
 * API client's requests: Chromium applies the answer's `Clear-Site-Data` only to a request
 * that may carry cookies. A clinic session cookie in this browser without its CSRF token is
 * refused (403): then the token is revoked without it (the app still wipes its own data).
 */
const UNREVOKED_KEY = "csu-unrevoked-refresh";

async function revoke(refresh: string, clearSite = true): Promise<void> {
  const send = (credentials: RequestCredentials) =>
    fetch("/api/v1/auth/logout/", {
      method: "POST",
      credentials,
      cache: "no-store",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-Schema-Version": String(SCHEMA_VERSION) },
      body: JSON.stringify({ refresh }),
    });
  let response = await send(clearSite ? "same-origin" : "omit");
  if (response.status === 403 && clearSite) response = await send("omit");
  // Refused for now (throttled, the server away): kept to revoke later. A 401 means the token
  // is already dead, which is what signing out wants.
  if (!response.ok && response.status !== 401) throw new Error(`logout answered ${response.status}`);
}

function jwtUserId(token: string): string {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  const claims = JSON.parse(json) as { user_id?: string };
  return claims.user_id ?? "";
}
