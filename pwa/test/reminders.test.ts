// Reminders (issue 18): the store writes a reminder and its outbox mutation together, the
// screen's checks name the field, and Web Push opt-in keeps the server's subscription id so
// turning off (or signing out) removes it on the server and in the browser.
import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/api/client";
import { keyBytes, pushDisable, pushEnable, pushRefreshConfig, PushRefused, pushState, type PushEnv } from "../src/push";
import { daysText, inQuietHours, prescriptionOptions, quietProblem, reminderInput, reminderProblem, timeText, weekdayName } from "../src/screens/reminders/logic";
import { AppDB, type PrescriptionRow } from "../src/store/db";
import quietCases from "./fixtures/quiet-hours.json";
import { metaSet } from "../src/store/meta";
import { reminderDelete, reminderSave, remindersList } from "../src/store/reminders";
import { settingsGet, settingsSave } from "../src/store/settings";
import { viewGet } from "../src/store/views";

let serial = 0;
async function freshDb(): Promise<AppDB> {
  const db = new AppDB(`reminders-${++serial}-${Math.random()}`);
  await db.open();
  return db;
}

describe("reminder store", () => {
  it("keeps a new reminder and its mutation together, then sends only what changed", async () => {
    const db = await freshDb();
    const row = await reminderSave(db, { kind: "diary", local_time: "20:30", days_of_week: [5, 1, 3], prescription: null, enabled: true });
    expect(row.days_of_week).toEqual([1, 3, 5]);
    let outbox = await db.outbox.toArray();
    expect(outbox).toHaveLength(1);
    expect(outbox[0]).toMatchObject({ table: "reminder", id: row.id, op: "upsert", base_version: null });
    expect(outbox[0]?.fields).toEqual({ kind: "diary", local_time: "20:30", days_of_week: [1, 3, 5], prescription: null, enabled: true });

    await db.reminders.update(row.id, { server_version: 7 }); // as if the server had applied it
    await db.outbox.clear();
    await reminderSave(db, { kind: "diary", local_time: "21:00", days_of_week: [1, 3, 5], prescription: null, enabled: false }, row.id);
    outbox = await db.outbox.toArray();
    expect(outbox[0]).toMatchObject({ op: "upsert", base_version: 7, fields: { local_time: "21:00", enabled: false } });

    await reminderDelete(db, row.id);
    outbox = await db.outbox.toArray();
    expect(outbox.at(-1)).toMatchObject({ op: "delete", id: row.id, base_version: 7 });
    expect(await remindersList(db)).toEqual([]); // gone from the list at once (a tombstone until synced)
    expect((await db.reminders.get(row.id))?.deleted).toBe(true);
  });

  it("quiet hours are kept at once and queued as patient settings", async () => {
    const db = await freshDb();
    await metaSet(db, "patient_id", "p-1");
    await metaSet(db, "settings_version", 4);
    await settingsSave(db, { quiet_hours_start: "22:00", quiet_hours_end: "07:00" });
    expect((await settingsGet(db)).quiet_hours_start).toBe("22:00");
    expect(await db.outbox.toArray()).toMatchObject([
      { table: "patient_settings", id: "p-1", base_version: 4, fields: { quiet_hours_start: "22:00", quiet_hours_end: "07:00" } },
    ]);
  });
});

describe("reminder form rules", () => {
  const draft = { local_time: "08:00", days_of_week: [1, 2], kind: "diary" as const, prescription: null, enabled: true };

  it("names the first field that is wrong", () => {
    expect(reminderProblem(draft, [])).toBeNull();
    expect(reminderProblem({ ...draft, local_time: "" }, [])).toBe("local_time");
    expect(reminderProblem({ ...draft, local_time: "24:00" }, [])).toBe("local_time");
    expect(reminderProblem({ ...draft, days_of_week: [] }, [])).toBe("days_of_week");
    expect(reminderProblem({ ...draft, kind: "medication" }, ["rx-1"])).toBe("prescription");
    expect(reminderProblem({ ...draft, kind: "medication", prescription: "rx-2" }, ["rx-1"])).toBe("prescription");
    expect(reminderProblem({ ...draft, kind: "medication", prescription: "rx-1" }, ["rx-1"])).toBeNull();
  });

  it("only a medication reminder names a prescription; days are sorted once each", () => {
    expect(reminderInput({ ...draft, prescription: "rx-1", days_of_week: [3, 1, 3] })).toEqual({
      kind: "diary", local_time: "08:00", days_of_week: [1, 3], prescription: null, enabled: true,
    });
    expect(reminderInput({ ...draft, kind: "medication", prescription: "rx-1" }).prescription).toBe("rx-1");
  });

  it("quiet hours are both or neither, and not equal", () => {
    expect(quietProblem("", "")).toBeNull();
    expect(quietProblem("22:00", "07:00")).toBeNull();
    expect(quietProblem("22:00", "")).toBe("both");
    expect(quietProblem("", "07:00")).toBe("both");
    expect(quietProblem("07:00", "07:00")).toBe("same");
  });

  it("weekdays and times in the patient's language", () => {
    expect(weekdayName("en", 1)).toBe("Monday");
    expect(weekdayName("de", 7)).toBe("Sonntag");
    expect(daysText("en", [5, 1])).toBe("Mon, Fri");
    expect(daysText("en", [1, 2, 3, 4, 5, 6, 7])).toBeNull();
    expect(timeText("de", "19:05")).toBe("19:05");
    expect(timeText("de", "07:05")).toBe("07:05");
    expect(timeText("en", "19:30", ["en-US"])).toMatch(/7:30\s?PM/);
    expect(timeText("en", "19:30", ["en-GB", "en"])).toBe("19:30");
  });

  it("offers current prescriptions, named from the server's view", () => {
    const rx = (id: string, medication: string, end: string | null): PrescriptionRow => ({
      id, medication, dose: "10 mg", frequency_kind: "n_per_day", frequency_value: 1, guideline_step: 1, start: "2026-01-01", end, server_version: 1,
    });
    const options = prescriptionOptions(
      [rx("a", "cetirizine-10", null), rx("b", "old-drug", "2026-02-01")],
      [{ id: "a", name: "Cetirizine" } as never],
      "2026-11-30",
    );
    expect(options).toEqual([{ id: "a", label: "Cetirizine – 10 mg" }]);
  });
});

// --- Web Push -----------------------------------------------------------------------------

const VAPID = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM";

class FakeSubscription {
  unsubscribed = false;
  constructor(
    readonly endpoint: string,
    readonly options: { applicationServerKey: ArrayBuffer | null },
    private readonly manager: FakePushManager,
  ) {}
  toJSON() {
    return { endpoint: this.endpoint, expirationTime: null, keys: { p256dh: "p".repeat(87), auth: "a".repeat(22) } };
  }
  async unsubscribe() {
    this.unsubscribed = true;
    if (this.manager.current === this) this.manager.current = null;
    return true;
  }
}

class FakePushManager {
  current: FakeSubscription | null = null;
  made = 0;
  async getSubscription() {
    return this.current;
  }
  async subscribe(options: { userVisibleOnly: boolean; applicationServerKey: Uint8Array }) {
    expect(options.userVisibleOnly).toBe(true);
    const key = options.applicationServerKey;
    this.current ??= new FakeSubscription(`https://fcm.googleapis.com/fcm/send/${++this.made}`, { applicationServerKey: key.slice().buffer }, this);
    return this.current;
  }
}

function pushEnv(manager: FakePushManager, permission: NotificationPermission = "default", answer: NotificationPermission = "granted"): PushEnv & { asked: number } {
  const env = {
    asked: 0,
    supported: () => true,
    permission: () => permission,
    requestPermission: async () => {
      env.asked++;
      permission = answer;
      return answer;
    },
    registration: async () => ({ pushManager: manager }) as unknown as ServiceWorkerRegistration,
  };
  return env;
}

/** The server's /me/push-subscriptions/ endpoints, in memory. */
function pushServer(key = VAPID) {
  const subs = new Map<string, { id: string; endpoint: string; owner: string }>();
  const state = { online: true, owner: "me", serial: 0, requests: [] as string[] };
  const json = (status: number, body: unknown) => new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  const fetchFn = async (input: string, init?: RequestInit) => {
    if (!state.online) throw new TypeError("Failed to fetch");
    const method = init?.method ?? "GET";
    state.requests.push(`${method} ${input}`);
    if (input === "/api/v1/me/push-subscriptions/" && method === "GET") {
      return json(200, { vapid_public_key: key, subscriptions: [...subs.values()].filter((s) => s.owner === state.owner).map((s) => ({ id: s.id, endpoint: s.endpoint, created_at: "", last_success_at: null })) });
    }
    if (input === "/api/v1/me/push-subscriptions/" && method === "POST") {
      const body = JSON.parse(String(init?.body)) as { endpoint: string };
      const taken = [...subs.values()].find((s) => s.endpoint === body.endpoint);
      if (taken && taken.owner !== state.owner) return json(409, { status: 409, code: "push_endpoint_taken", detail: "taken" });
      if (taken) return json(200, taken);
      const row = { id: `sub-${++state.serial}`, endpoint: body.endpoint, owner: state.owner };
      subs.set(row.id, row);
      return json(201, row);
    }
    const match = /^\/api\/v1\/me\/push-subscriptions\/([^/]+)\/$/.exec(input);
    if (match && method === "DELETE") {
      const row = subs.get(decodeURIComponent(match[1] ?? ""));
      if (!row || row.owner !== state.owner) return json(404, { status: 404, code: "not_found" });
      subs.delete(row.id);
      return json(204, null);
    }
    return json(404, { status: 404 });
  };
  const api = new ApiClient(fetchFn, { refreshToken: async () => "r", saveRefreshToken: async () => undefined });
  api.setAccessToken("a");
  return { api, subs, state };
}

describe("web push opt-in", () => {
  it("asks permission, subscribes with the server's key and keeps the server's id", async () => {
    const db = await freshDb();
    const manager = new FakePushManager();
    const env = pushEnv(manager);
    const server = pushServer();
    expect(await pushState(db, env)).toBe("off");

    const kept = await pushEnable(db, server.api, env);
    expect(env.asked).toBe(1);
    expect(kept).toMatchObject({ id: "sub-1", endpoint: "https://fcm.googleapis.com/fcm/send/1", vapid_public_key: VAPID });
    expect(new Uint8Array(manager.current?.options.applicationServerKey ?? new ArrayBuffer(0))).toEqual(keyBytes(VAPID));
    expect(keyBytes(VAPID)).toHaveLength(65); // an uncompressed P-256 point
    expect(await pushState(db, env)).toBe("on");
    expect([...server.subs.keys()]).toEqual(["sub-1"]);

    // Turning off removes it on the server and in the browser.
    expect(await pushDisable(db, server.api, env)).toBe(true);
    expect(server.subs.size).toBe(0);
    expect(manager.current).toBeNull();
    expect(await pushState(db, env)).toBe("off");
  });

  it("says why it could not turn on: blocked, dismissed, not configured", async () => {
    const db = await freshDb();
    const server = pushServer();
    await expect(pushEnable(db, server.api, pushEnv(new FakePushManager(), "denied"))).rejects.toEqual(new PushRefused("blocked"));
    expect(await pushState(db, pushEnv(new FakePushManager(), "denied"))).toBe("blocked");
    await expect(pushEnable(db, server.api, pushEnv(new FakePushManager(), "default", "default"))).rejects.toEqual(new PushRefused("dismissed"));
    const unconfigured = pushServer("");
    await expect(pushEnable(db, unconfigured.api, pushEnv(new FakePushManager(), "granted"))).rejects.toEqual(new PushRefused("unconfigured"));
    expect(await pushRefreshConfig(db, unconfigured.api)).toBe("");
    const unsupported = { ...pushEnv(new FakePushManager()), supported: () => false };
    expect(await pushState(db, unsupported)).toBe("unsupported");
  });

  it("an endpoint still registered to the browser's previous user is replaced by a fresh one", async () => {
    const db = await freshDb();
    const manager = new FakePushManager();
    const server = pushServer();
    server.state.owner = "previous";
    await pushEnable(db, server.api, pushEnv(manager, "granted"));
    server.state.owner = "me";
    await db.views.clear(); // a new sign-in: nothing kept
    const kept = await pushEnable(db, server.api, pushEnv(manager, "granted"));
    expect(kept.endpoint).toBe("https://fcm.googleapis.com/fcm/send/2");
    expect([...server.subs.values()].map((s) => s.owner).sort()).toEqual(["me", "previous"]);
  });

  it("turned off offline: off in the browser at once, deleted on the server when next online", async () => {
    const db = await freshDb();
    const manager = new FakePushManager();
    const env = pushEnv(manager, "granted");
    const server = pushServer();
    await pushEnable(db, server.api, env);
    server.state.online = false;
    expect(await pushDisable(db, server.api, env)).toBe(false);
    expect(manager.current).toBeNull();
    expect((await viewGet<{ pending_delete: string }>(db, "push"))?.value.pending_delete).toBe("sub-1");
    expect(server.subs.size).toBe(1);
    server.state.online = true;
    await pushRefreshConfig(db, server.api);
    expect(server.subs.size).toBe(0);
  });

  it("turning off finds the server's id by endpoint when it was not kept", async () => {
    const db = await freshDb();
    const manager = new FakePushManager();
    const env = pushEnv(manager, "granted");
    const server = pushServer();
    await pushEnable(db, server.api, env);
    await db.views.clear();
    expect(await pushDisable(db, server.api, env)).toBe(true);
    expect(server.subs.size).toBe(0);
  });
});

describe("quiet hours", () => {
  // The same cases as tests/patients/test_app_rule_vectors.py checks against patients/schedule.py.
  it.each(quietCases)("%s in [%s, %s) → %s (patients/schedule.py in_quiet_hours)", (time, start, end, quiet) => {
    expect(inQuietHours(time as string, start as string | null, end as string | null)).toBe(quiet);
  });
});
