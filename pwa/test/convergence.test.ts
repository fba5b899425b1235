// A seeded random walk (reference/sync-protocol.md §5.1, on the device side): three devices
// edit every table offline, the clinic edits too, requests and responses get lost, tombstones
// are purged, a device loses its storage. After everyone syncs: every device shows what the
// server has (convergence), every mutation took effect at most once (exactly-once), nothing is
// left in an outbox and nothing was refused.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { diaryEntryDelete, diaryEntrySave } from "../src/store/diary";
import { doseLog } from "../src/store/doses";
import { metaGet } from "../src/store/meta";
import { questionnaireDelete, questionnaireSave } from "../src/store/questionnaires";
import { reminderDelete, reminderSave } from "../src/store/reminders";
import { settingsSave } from "../src/store/settings";
import { FakeServer } from "./fakeServer";
import { type Device, device, serverVisible, seeded, settle, visible } from "./helpers";

const DAYS = ["2026-11-25", "2026-11-26", "2026-11-27"];
const TIMES = ["07:00", "08:30", "12:00", "20:00"];
const ZONES = ["Europe/Berlin", "Europe/Vienna", "Europe/Zurich"];

async function walk(seed: number, steps: number): Promise<void> {
  const rng = seeded(seed);
  const server = new FakeServer();
  const rx = server.prescribe({ start: "2026-11-01" });
  const devices: Device[] = [await device(server), await device(server), await device(server)];
  const log: string[] = [];

  for (let step = 0; step < steps; step++) {
    const i = rng.int(devices.length);
    const d = devices[i] as Device;
    const op = rng.int(15);
    log.push(`${step}: device ${i} op ${op}`);
    const live = async <T extends { deleted?: boolean }>(rows: Promise<T[]>) => (await rows).filter((r) => !r.deleted);
    switch (op) {
      case 0:
      case 1:
        await diaryEntrySave(d.db, {
          day: rng.pick(DAYS), slot: "day", wheals: rng.int(4), itch: rng.int(4), angioedema: false, aas_items: null,
          note: rng.pick(["", "hot day", "new soap"]),
        });
        break;
      case 2: {
        const entries = await live(d.db.diary.toArray());
        if (entries.length) await diaryEntryDelete(d.db, rng.pick(entries).id);
        break;
      }
      case 3: {
        const mine = await live(d.db.questionnaires.toArray());
        const items = [rng.int(5), rng.int(5), rng.int(5), rng.int(5)];
        const edit = mine.length && rng.next() < 0.5 ? rng.pick(mine) : undefined;
        await questionnaireSave(d.db, { id: edit?.id, instrument: "uct", answers: { items }, period_end: rng.pick(DAYS) });
        break;
      }
      case 4: {
        const mine = await live(d.db.questionnaires.toArray());
        if (mine.length) await questionnaireDelete(d.db, rng.pick(mine).id);
        break;
      }
      case 5:
        if (await d.db.prescriptions.get(rx.id)) {
          const status = rng.pick(["taken", "skipped"] as const);
          await doseLog(d.db, { prescription: rx.id, date: rng.pick(DAYS), status, taken_at: status === "taken" && rng.next() < 0.5 ? "2026-11-25T08:00:00Z" : null });
        }
        break;
      case 6: {
        const mine = await live(d.db.reminders.toArray());
        const edit = mine.length && rng.next() < 0.6 ? rng.pick(mine) : undefined;
        const input = {
          kind: edit?.kind ?? ("diary" as const),
          local_time: rng.next() < 0.5 ? rng.pick(TIMES) : (edit?.local_time ?? rng.pick(TIMES)),
          days_of_week: rng.next() < 0.3 ? [6, 7] : (edit?.days_of_week ?? [1, 2, 3, 4, 5]),
          prescription: null,
          enabled: rng.next() < 0.3 ? !(edit?.enabled ?? true) : (edit?.enabled ?? true),
        };
        await reminderSave(d.db, input, edit?.id);
        break;
      }
      case 7: {
        const mine = await live(d.db.reminders.toArray());
        if (mine.length) await reminderDelete(d.db, rng.pick(mine).id);
        break;
      }
      case 8:
        if (await metaGet(d.db, "patient_id")) {
          await settingsSave(d.db, rng.next() < 0.5 ? { timezone: rng.pick(ZONES) } : { quiet_hours_start: rng.pick(TIMES) });
        }
        break;
      case 9:
      case 10:
      case 11: {
        const fault = rng.pick(["ok", "ok", "drop_request", "drop_response"] as const);
        server.faults = [fault];
        const outcome = await d.engine.sync();
        expect(["ok", "offline"], log.join("\n")).toContain(outcome.status);
        server.faults = [];
        break;
      }
      case 12: {
        // The clinic (or the patient on the web) changes something.
        const entries = server.liveEntries();
        const reminders = server.liveReminders();
        const which = rng.int(4);
        if (which === 0 && entries.length) server.serverEdit(rng.pick(entries).id, { itch: rng.int(4) });
        else if (which === 1 && reminders.length) server.serverEditReminder(rng.pick(reminders).id, { enabled: rng.next() < 0.5 });
        else if (which === 2) server.serverEditSettings({ quiet_hours_end: rng.pick(TIMES) });
        else server.prescribe({ id: rx.id, dose: rng.pick(["10 mg", "20 mg"]) });
        break;
      }
      case 13:
        if (rng.next() < 0.4) server.purge();
        break;
      case 14:
        if (rng.next() < 0.15) {
          // The browser evicted this device's storage: a new installation (its unsynced work is lost).
          d.db.close();
          devices[i] = await device(server);
        }
        break;
    }
  }

  server.faults = [];
  await settle(...devices);
  const expected = serverVisible(server);
  for (const [n, d] of devices.entries()) {
    expect(await visible(d.db), `seed ${seed}, device ${n}\n${log.join("\n")}`).toEqual(expected);
    expect(await d.db.outbox.count()).toBe(0);
    const refused = [
      ...(await d.db.diary.toArray()),
      ...(await d.db.questionnaires.toArray()),
      ...(await d.db.doses.toArray()),
      ...(await d.db.reminders.toArray()),
    ].filter((r) => r.rejected);
    expect(refused, `seed ${seed}`).toEqual([]);
    expect(await metaGet(d.db, "settings_rejected")).toBeUndefined();
  }
  expect(new Set(server.effects).size, `seed ${seed}`).toBe(server.effects.length);
}

describe("random offline editing with faults converges", () => {
  const seeds = Array.from({ length: 40 }, (_, n) => n + 1);
  it.each(seeds)("seed %i", async (seed) => {
    await walk(seed, 80);
  });
});
