import { ApiClient } from "../src/api/client";
import { AppDB } from "../src/store/db";
import { metaGet, metaSet } from "../src/store/meta";
import { SyncEngine } from "../src/sync/engine";
import { FakeServer } from "./fakeServer";

let serial = 0;

/** A device: its own IndexedDB, API client and sync engine, talking to `server`. */
export async function device(server: FakeServer) {
  const db = new AppDB(`test-${++serial}-${Math.random()}`);
  await db.open();
  await metaSet(db, "refresh_token", "refresh-1");
  const api = new ApiClient(server.fetch, {
    refreshToken: () => metaGet<string>(db, "refresh_token"),
    saveRefreshToken: (token) => metaSet(db, "refresh_token", token),
  });
  api.setAccessToken("access-1");
  return { db, api, engine: new SyncEngine(db, api) };
}

export const ENTRY = { slot: "day" as const, angioedema: false, aas_items: null, note: "" };
