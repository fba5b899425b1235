// An in-memory stand-in for /api/v1/sync/ and /api/v1/auth/token/refresh/ that follows the
// protocol of patients/sync.py for every synced table:
//   - gap-free mutation ids per client (409 mutation_gap, nothing applied), ids already
//     processed answered `duplicate` with the original result, one version per push;
//   - diary_entry: per-field merge against base_version with conflicts recorded (last arrival
//     wins), two ids for one day merged into the first (an alias keeps the losing id), delete
//     wins, a purged id stays deleted;
//   - questionnaire_response: editable (answers, period_end; the instrument never changes),
//     scored by the server, delete wins (`conflict` with reason `deleted`), purged ids too;
//   - dose_log: insert-only; a replay with other content is `rejected` `immutable`, a delete
//     `insert_only`; a taken dose without a time gets the server's time;
//   - patient_settings: the patient's own record only, per-field merge with conflicts recorded;
//   - reminder: per-field merge with conflicts recorded, delete wins, tombstones never purged;
//   - prescription: the clinic's (server-side edits only; a push is `server_owned`).
// Pull: a keyset cursor (version, table, id) capped at the version read when the session
// started, last_mutation_id fixed for the session, tombstones in `deleted` (also in a full
// download), 409 reset_required for a cursor older than the purge horizon or another epoch
// (or unreadable), and for a client id of an older epoch (on push and pull) or unknown past its
// first mutation (`backup()` / `restore()` model a restore of the clinic: a new epoch),
// 426 for an old schema version, 401 for a stale access token (refresh rotates the pair).
// Faults: a request that never arrives, a response that is lost after the server applied it.

interface FieldVersioned {
  server_version: number;
  field_versions: Record<string, number>;
}

interface Entry extends FieldVersioned {
  id: string;
  day: string;
  slot: string;
  wheals: number;
  itch: number;
  angioedema: boolean;
  aas_items: number[] | null;
  note: string;
  deleted: boolean;
}

interface Questionnaire {
  id: string;
  instrument: string;
  answers: { items?: number[] | null; angioedema?: boolean };
  score: number;
  period_end: string;
  server_version: number;
  deleted: boolean;
}

interface Dose {
  id: string;
  prescription: string;
  date: string;
  status: string;
  taken_at: string | null;
  server_version: number;
}

interface Prescription {
  id: string;
  medication: string;
  medication_name: string;
  dose: string;
  frequency_kind: string;
  frequency_value: number | null;
  guideline_step: number;
  start: string;
  end: string | null;
  server_version: number;
}

interface Reminder extends FieldVersioned {
  id: string;
  kind: string;
  local_time: string;
  days_of_week: number[];
  prescription: string | null;
  enabled: boolean;
  deleted: boolean;
}

interface PatientSettings extends FieldVersioned {
  id: string;
  timezone: string;
  locale: string;
  diary_mode: string;
  quiet_hours_start: string | null;
  quiet_hours_end: string | null;
}

interface Conflict {
  id: string;
  table: string;
  record_id: string;
  mutation_id: number;
  client_id: string;
  fields: string[];
  client_value: Record<string, unknown>;
  server_value: Record<string, unknown>;
  resolution: string;
  server_version: number;
}

type Result = Record<string, unknown> & { mutation_id: number; status: string };
type Answer = Record<string, unknown> & { status: string };

interface Mutation {
  mutation_id: number;
  table: string;
  id: string;
  op: "upsert" | "delete";
  base_version: number | null;
  fields: Record<string, unknown>;
}

interface ClientState {
  /** The sync epoch the client registered in: of an older one, it must reset. */
  epoch: number;
  last: number;
  results: Map<number, Result>;
  /** The versions of this client's pushes: its own writes never conflict with itself. */
  versions: Set<number>;
}

/** What one mutation is applied with: its client, and the version of its push. */
interface Ctx {
  clientId: string;
  client: ClientState;
  version: number;
  mutation: Mutation;
}

interface CursorPayload {
  epoch: number;
  since: number;
  upto: number | null;
  after: [number, string, string] | null;
  client?: string | null;
  lm?: number;
}

class Rejected extends Error {
  constructor(
    readonly code: string,
    readonly detail: string,
    readonly field: string | null = null,
  ) {
    super(detail);
  }
}

const DIARY_FIELDS = ["day", "slot", "wheals", "itch", "angioedema", "aas_items", "note"];
const EDITABLE = ["wheals", "itch", "angioedema", "aas_items", "note"] as const;
const REMINDER_FIELDS = ["kind", "local_time", "days_of_week", "prescription", "enabled"] as const;
const SETTINGS_FIELDS = ["timezone", "locale", "diary_mode", "quiet_hours_start", "quiet_hours_end"] as const;
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function unknownField(fields: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(fields).filter((f) => !allowed.includes(f)).sort();
  if (unknown[0] !== undefined) throw new Rejected("unknown_field", `Unknown field ${unknown[0]}.`, unknown[0]);
}

export interface FakeBackup {
  maps: {
    entries: Map<string, Entry>;
    questionnaires: Map<string, Questionnaire>;
    doses: Map<string, Dose>;
    prescriptions: Map<string, Prescription>;
    reminders: Map<string, Reminder>;
    conflicts: Map<string, Conflict>;
    aliases: Map<string, string>;
    purgedIds: Set<string>;
    clients: Map<string, ClientState>;
  };
  settings: PatientSettings;
}

export class FakeServer {
  version = 0;
  epoch = 1;
  minCursor = 0;
  minSchemaVersion = 1;
  today = "2026-11-30";
  readonly patientId = crypto.randomUUID();
  entries = new Map<string, Entry>();
  questionnaires = new Map<string, Questionnaire>();
  doses = new Map<string, Dose>();
  prescriptions = new Map<string, Prescription>();
  reminders = new Map<string, Reminder>();
  settings: PatientSettings;
  conflicts = new Map<string, Conflict>();
  /** A losing id of a natural-key merge → the record it merged into. */
  aliases = new Map<string, string>();
  /** Ids whose tombstones were purged: they stay deleted. */
  purgedIds = new Set<string>();
  clients = new Map<string, ClientState>();
  applications = 0; // effects applied (exactly-once checks)
  /** `client:mutation_id` of every mutation that took effect: never twice. */
  effects: string[] = [];
  validAccess = new Set<string>(["access-1"]);
  /** False: a refresh succeeds but its access token is refused too (a broken sign-in). */
  refreshGrantsAccess = true;
  refreshTokens = new Set<string>(["refresh-1"]);
  private tokenSerial = 1;
  /** What happens to the next requests, in turn: "drop_request" never reaches the server,
   * "drop_response" is applied then lost, "unavailable" answers 503 service_unavailable
   * without applying anything (the server's database is down), "ok" goes through. */
  faults: ("ok" | "drop_request" | "drop_response" | "unavailable")[] = [];
  requests: { method: string; path: string; query: URLSearchParams; body: unknown }[] = [];
  /** Runs when a request arrives, before it is handled (a local write while it is in flight). */
  onRequest: ((path: string) => Promise<void> | void) | undefined;

  constructor() {
    this.settings = {
      id: this.patientId,
      timezone: "Europe/Berlin",
      locale: "de",
      diary_mode: "once",
      quiet_hours_start: "22:00",
      quiet_hours_end: "07:00",
      server_version: ++this.version,
      field_versions: {},
    };
  }

  fetch = async (input: string, init?: RequestInit): Promise<Response> => {
    const url = new URL(input, "http://clinic.test");
    const method = init?.method ?? "GET";
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    this.requests.push({ method, path: url.pathname, query: url.searchParams, body });
    await this.onRequest?.(url.pathname);
    const fault = this.faults.shift();
    if (fault === "drop_request") throw new TypeError("Failed to fetch");
    if (fault === "unavailable") return this.problem(503, "service_unavailable");
    const response = this.handle(method, url, body, new Headers(init?.headers));
    if (fault === "drop_response") throw new TypeError("Failed to fetch");
    return response;
  };

  /** The requests made to a path (e.g. "/api/v1/sync/push/"). */
  requestsTo(path: string): { method: string; path: string; query: URLSearchParams; body: unknown }[] {
    return this.requests.filter((r) => r.path === path);
  }

  private json(status: number, body: unknown): Response {
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  }

  private problem(status: number, code: string, extra: Record<string, unknown> = {}): Response {
    return this.json(status, { type: "about:blank", title: code, status, detail: code, code, ...extra });
  }

  private handle(method: string, url: URL, body: Record<string, unknown> | undefined, headers: Headers): Response {
    if (url.pathname === "/api/v1/auth/token/refresh/") {
      const refresh = String(body?.["refresh"]);
      if (!this.refreshTokens.delete(refresh)) return this.problem(401, "token_not_valid");
      this.tokenSerial++;
      const pair = { access: `access-${this.tokenSerial}`, refresh: `refresh-${this.tokenSerial}` };
      if (this.refreshGrantsAccess) this.validAccess.add(pair.access);
      this.refreshTokens.add(pair.refresh);
      return this.json(200, pair);
    }
    const auth = headers.get("Authorization") ?? "";
    if (!this.validAccess.has(auth.replace("Bearer ", ""))) return this.problem(401, "not_authenticated");
    if (Number(headers.get("X-Schema-Version") ?? 0) < this.minSchemaVersion) {
      return this.problem(426, "upgrade_required", { min_schema_version: this.minSchemaVersion });
    }
    if (method === "POST" && url.pathname === "/api/v1/sync/push/") return this.push(body as never);
    if (method === "GET" && url.pathname === "/api/v1/sync/pull/") return this.pull(url.searchParams);
    return this.problem(404, "not_found");
  }

  // --- Server-side changes (another device through the REST API, or the clinic) ---------------

  /** Everything a device may see, as the pull shows it. */
  liveEntries(): Entry[] {
    return [...this.entries.values()].filter((e) => !e.deleted);
  }

  liveReminders(): Reminder[] {
    return [...this.reminders.values()].filter((r) => !r.deleted);
  }

  liveQuestionnaires(): Questionnaire[] {
    return [...this.questionnaires.values()].filter((q) => !q.deleted);
  }

  serverEdit(id: string, fields: Partial<Entry>): void {
    const entry = this.entries.get(id);
    if (!entry) throw new Error("no such entry");
    const v = ++this.version;
    Object.assign(entry, fields, { server_version: v });
    for (const name of Object.keys(fields)) entry.field_versions[name] = v;
  }

  serverDelete(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) throw new Error("no such entry");
    entry.deleted = true;
    entry.server_version = ++this.version;
  }

  serverDeleteQuestionnaire(id: string): void {
    const q = this.questionnaires.get(id);
    if (!q) throw new Error("no such questionnaire");
    q.deleted = true;
    q.server_version = ++this.version;
  }

  serverEditReminder(id: string, fields: Partial<Reminder>): void {
    const r = this.reminders.get(id);
    if (!r) throw new Error("no such reminder");
    const v = ++this.version;
    Object.assign(r, fields, { server_version: v });
    for (const name of Object.keys(fields)) r.field_versions[name] = v;
  }

  serverDeleteReminder(id: string): void {
    const r = this.reminders.get(id);
    if (!r) throw new Error("no such reminder");
    r.deleted = true;
    r.server_version = ++this.version;
  }

  serverEditSettings(fields: Partial<Omit<PatientSettings, "id" | "server_version" | "field_versions">>): void {
    const v = ++this.version;
    Object.assign(this.settings, fields, { server_version: v });
    for (const name of Object.keys(fields)) this.settings.field_versions[name] = v;
  }

  /** The clinic prescribes (or changes a prescription). */
  prescribe(fields: Partial<Prescription> = {}): Prescription {
    const id = fields.id ?? crypto.randomUUID();
    const p: Prescription = {
      medication: crypto.randomUUID(),
      medication_name: "Cetirizine 10 mg",
      dose: "10 mg",
      frequency_kind: "daily",
      frequency_value: null,
      guideline_step: 1,
      start: "2026-11-01",
      end: null,
      ...this.prescriptions.get(id),
      ...fields,
      id,
      server_version: ++this.version,
    };
    this.prescriptions.set(id, p);
    return p;
  }

  /** Tombstones purged (diary entries and questionnaires; reminders keep theirs): cursors from
   * before the newest purged deletion are too old. */
  purge(): void {
    let horizon = this.minCursor;
    for (const map of [this.entries, this.questionnaires] as Map<string, { deleted: boolean; server_version: number }>[]) {
      for (const [id, row] of map) {
        if (!row.deleted) continue;
        horizon = Math.max(horizon, row.server_version);
        this.purgedIds.add(id);
        map.delete(id);
      }
    }
    this.minCursor = horizon;
  }

  /** Restored from a backup or moved: every cursor of the old epoch must reset. */
  newEpoch(): void {
    this.epoch++;
  }

  /** A copy of the clinic's records and clients (what `clinic_backup` dumps). */
  backup(): FakeBackup {
    return {
      maps: structuredClone({
        entries: this.entries,
        questionnaires: this.questionnaires,
        doses: this.doses,
        prescriptions: this.prescriptions,
        reminders: this.reminders,
        conflicts: this.conflicts,
        aliases: this.aliases,
        purgedIds: this.purgedIds,
        clients: this.clients,
      }),
      settings: structuredClone(this.settings),
    };
  }

  /** `clinic_restore`: the backup's records and clients, a new epoch, and the version counter
   * continues past both histories (what was written since the backup is gone). */
  restore(backup: FakeBackup): void {
    const maps = structuredClone(backup.maps);
    this.entries = maps.entries;
    this.questionnaires = maps.questionnaires;
    this.doses = maps.doses;
    this.prescriptions = maps.prescriptions;
    this.reminders = maps.reminders;
    this.conflicts = maps.conflicts;
    this.aliases = maps.aliases;
    this.purgedIds = maps.purgedIds;
    this.clients = maps.clients;
    this.settings = structuredClone(backup.settings);
    this.newEpoch();
  }

  /** The version a cursor stands at (for tests). */
  cursorVersion(cursor: string | undefined): number | undefined {
    if (cursor === undefined) return undefined;
    const payload = JSON.parse(atob(cursor)) as CursorPayload;
    return payload.since;
  }

  // --- Push -----------------------------------------------------------------------------------

  private push(body: { client_id: string; mutations: Mutation[] }): Response {
    let client = this.clients.get(body.client_id);
    if (client && client.epoch !== this.epoch) return this.problem(409, "reset_required");
    if (!client && (body.mutations[0]?.mutation_id ?? 1) > 1) return this.problem(409, "reset_required");
    if (!client) {
      client = { epoch: this.epoch, last: 0, results: new Map(), versions: new Set() };
      this.clients.set(body.client_id, client);
    }
    let expected = client.last + 1;
    for (const m of body.mutations) {
      if (m.mutation_id >= expected) {
        if (m.mutation_id !== expected) return this.problem(409, "mutation_gap", { expected });
        expected++;
      }
    }
    const version = ++this.version; // one version per push transaction
    const results: Result[] = [];
    for (const m of body.mutations) {
      if (m.mutation_id <= client.last) {
        results.push({ mutation_id: m.mutation_id, status: "duplicate", original: client.results.get(m.mutation_id) ?? null });
        continue;
      }
      let answer: Answer;
      try {
        answer = this.apply({ clientId: body.client_id, client, version, mutation: m });
      } catch (error) {
        if (!(error instanceof Rejected)) throw error;
        answer = { status: "rejected", reason: { code: error.code, detail: error.detail, field: error.field } };
      }
      const result = { mutation_id: m.mutation_id, ...answer } as Result;
      client.results.set(m.mutation_id, result);
      client.last = m.mutation_id;
      results.push(result);
    }
    client.versions.add(version);
    return this.json(200, { last_mutation_id: client.last, results: JSON.parse(JSON.stringify(results)) });
  }

  private effect(ctx: Ctx): void {
    this.applications++;
    this.effects.push(`${ctx.clientId}:${ctx.mutation.mutation_id}`);
  }

  private apply(ctx: Ctx): Answer {
    switch (ctx.mutation.table) {
      case "diary_entry":
        return this.applyDiary(ctx);
      case "questionnaire_response":
        return this.applyQuestionnaire(ctx);
      case "dose_log":
        return this.applyDose(ctx);
      case "patient_settings":
        return this.applySettings(ctx);
      case "reminder":
        return this.applyReminder(ctx);
      default:
        throw new Rejected("server_owned", `${ctx.mutation.table} is changed by the clinic only.`);
    }
  }

  /** Versions this client wrote (its earlier pushes, and this one). */
  private own(ctx: Ctx, v: number): boolean {
    return ctx.client.versions.has(v) || v === ctx.version;
  }

  private recordConflict(
    ctx: Ctx,
    table: string,
    recordId: string,
    fields: string[],
    clientValue: Record<string, unknown>,
    serverValue: Record<string, unknown>,
  ): void {
    const conflict: Conflict = {
      id: crypto.randomUUID(),
      table,
      record_id: recordId,
      mutation_id: ctx.mutation.mutation_id,
      client_id: ctx.clientId,
      fields,
      client_value: JSON.parse(JSON.stringify(clientValue)),
      server_value: JSON.parse(JSON.stringify(serverValue)),
      resolution: "last_arrival_wins",
      server_version: ctx.version,
    };
    this.conflicts.set(conflict.id, conflict);
  }

  private purgedAnswer(id: string): Answer | undefined {
    if (!this.purgedIds.has(id)) return undefined;
    return { status: "conflict", reason: { code: "deleted" }, server_version: null, record: { id, deleted: true } };
  }

  // diary_entry -----------------------------------------------------------------------------------

  private diaryRecord(e: Entry): Record<string, unknown> {
    return {
      id: e.id, day: e.day, slot: e.slot, wheals: e.wheals, itch: e.itch, angioedema: e.angioedema,
      aas_items: e.aas_items, note: e.note, server_version: e.server_version, deleted: e.deleted,
    };
  }

  private applyDiary(ctx: Ctx): Answer {
    const m = ctx.mutation;
    const winner = this.aliases.get(m.id);
    let entry = this.entries.get(winner ?? m.id);
    let aliased: Record<string, string> = winner && entry ? { record_id: entry.id } : {};
    if (m.op === "delete") {
      if (!entry) return { status: "applied", server_version: null };
      if (!entry.deleted) {
        entry.deleted = true;
        entry.server_version = ctx.version;
        this.effect(ctx);
      }
      return { status: "applied", server_version: entry.server_version, ...aliased };
    }
    const fields = m.fields;
    unknownField(fields, DIARY_FIELDS);
    for (const name of ["wheals", "itch"]) {
      const v = fields[name];
      if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 3)) {
        throw new Rejected("validation_error", `${name} must be an integer 0–3.`, name);
      }
    }
    if ("day" in fields && !DATE.test(String(fields["day"]))) throw new Rejected("invalid_date", "day must be YYYY-MM-DD.", "day");
    let base = m.base_version ?? 0;
    if (!entry) {
      const gone = this.purgedAnswer(winner ?? m.id);
      if (gone) return gone;
      for (const name of ["day", "itch", "wheals"]) {
        if (!(name in fields)) throw new Rejected("validation_error", `${name} is required for a new entry.`, name);
      }
      const slot = String(fields["slot"] ?? "day");
      const live = [...this.entries.values()].find((e) => !e.deleted && e.day === fields["day"] && e.slot === slot);
      if (!live) {
        entry = {
          id: m.id, day: String(fields["day"]), slot, wheals: Number(fields["wheals"]),
          itch: Number(fields["itch"]), angioedema: Boolean(fields["angioedema"]),
          aas_items: (fields["aas_items"] as number[] | null) ?? null, note: String(fields["note"] ?? ""),
          server_version: ctx.version, deleted: false, field_versions: {},
        };
        for (const name of EDITABLE) entry.field_versions[name] = ctx.version;
        this.entries.set(m.id, entry);
        this.effect(ctx);
        return { status: "applied", server_version: ctx.version };
      }
      entry = live;
      this.aliases.set(m.id, live.id);
      aliased = { record_id: live.id };
      base = 0; // the device never saw the other record: every overlapping field conflicts
    } else {
      if (entry.deleted) {
        return { status: "conflict", reason: { code: "deleted" }, server_version: entry.server_version, record: this.diaryRecord(entry), ...aliased };
      }
      for (const name of ["day", "slot"] as const) {
        if (name in fields && fields[name] !== entry[name]) {
          throw new Rejected("immutable_field", `${name} cannot change; delete and re-create.`, name);
        }
      }
    }
    const target = entry;
    const changes = Object.fromEntries(Object.entries(fields).filter(([k]) => k !== "day" && k !== "slot"));
    const othersChanged = target.server_version > base && !this.own(ctx, target.server_version);
    const conflicting = Object.keys(changes).filter((f) => {
      const v = target.field_versions[f] ?? 0;
      return v > base && !this.own(ctx, v) && !same(target[f as keyof Entry], changes[f]);
    }).sort();
    if (conflicting.length) {
      this.recordConflict(
        ctx, "diary_entry", target.id, conflicting,
        Object.fromEntries(conflicting.map((f) => [f, changes[f]])),
        Object.fromEntries(conflicting.map((f) => [f, target[f as keyof Entry]])),
      );
    }
    Object.assign(target, changes, { server_version: ctx.version });
    for (const name of Object.keys(changes)) target.field_versions[name] = ctx.version;
    this.effect(ctx);
    const merged = othersChanged || target.id !== m.id;
    return merged
      ? { status: "merged", server_version: ctx.version, record: this.diaryRecord(target), conflict_fields: conflicting, ...aliased }
      : { status: "applied", server_version: ctx.version, ...aliased };
  }

  // questionnaire_response --------------------------------------------------------------------------

  /** A stand-in for the server's scoring: the sum of the items (4 for UCT, 5 for AAS). */
  private score(instrument: string, answers: unknown): { answers: Questionnaire["answers"]; score: number } {
    const items = (answers as { items?: unknown } | null | undefined)?.items;
    const count = instrument === "aas" ? 5 : 4;
    const max = instrument === "aas" ? 3 : 4;
    if (!Array.isArray(items) || items.length !== count || items.some((i) => !Number.isInteger(i) || i < 0 || i > max)) {
      throw new Rejected("validation_error", `answers: ${count} items 0–${max}.`, "answers");
    }
    return { answers: { items: items as number[] }, score: (items as number[]).reduce((a, b) => a + b, 0) };
  }

  private applyQuestionnaire(ctx: Ctx): Answer {
    const m = ctx.mutation;
    const response = this.questionnaires.get(m.id);
    if (!response) {
      const gone = this.purgedAnswer(m.id);
      if (gone) return gone;
    }
    if (m.op === "delete") {
      if (!response) throw new Rejected("not_found", "No such record.");
      if (!response.deleted) {
        response.deleted = true;
        response.server_version = ctx.version;
        this.effect(ctx);
      }
      return { status: "applied", server_version: response.server_version };
    }
    const fields = m.fields;
    unknownField(fields, ["instrument", "answers", "period_end"]);
    const periodEnd = fields["period_end"] ? String(fields["period_end"]) : null;
    if (periodEnd !== null && !DATE.test(periodEnd)) throw new Rejected("invalid_date", "period_end must be YYYY-MM-DD.", "period_end");
    if (response) {
      if (response.deleted) {
        return { status: "conflict", reason: { code: "deleted" }, server_version: response.server_version, record: { id: response.id, deleted: true } };
      }
      if ("instrument" in fields && fields["instrument"] !== response.instrument) {
        throw new Rejected("immutable_field", "instrument cannot change; record a new one.", "instrument");
      }
      if (!("answers" in fields) && periodEnd === null) return { status: "applied", server_version: response.server_version };
      const scored = this.score(response.instrument, "answers" in fields ? fields["answers"] : response.answers);
      Object.assign(response, scored, periodEnd ? { period_end: periodEnd } : {}, { server_version: ctx.version });
      this.effect(ctx);
      return { status: "applied", server_version: ctx.version };
    }
    const instrument = String(fields["instrument"] ?? "");
    if (!["uct", "uct7", "aas"].includes(instrument)) throw new Rejected("validation_error", "instrument: not a valid choice.", "instrument");
    const scored = this.score(instrument, fields["answers"]);
    this.questionnaires.set(m.id, {
      id: m.id, instrument, ...scored, period_end: periodEnd ?? this.today, server_version: ctx.version, deleted: false,
    });
    this.effect(ctx);
    return { status: "applied", server_version: ctx.version };
  }

  // dose_log ------------------------------------------------------------------------------------------

  private applyDose(ctx: Ctx): Answer {
    const m = ctx.mutation;
    if (m.op === "delete") throw new Rejected("insert_only", "Dose logs are insert-only: log a correction instead.");
    const fields = m.fields;
    unknownField(fields, ["prescription", "date", "status", "taken_at"]);
    for (const name of ["prescription", "date", "status"]) {
      if (!(name in fields)) throw new Rejected("validation_error", `${name} is required.`, name);
    }
    const status = String(fields["status"]);
    if (status !== "taken" && status !== "skipped") throw new Rejected("validation_error", "status: not a valid choice.", "status");
    const date = String(fields["date"]);
    if (!DATE.test(date)) throw new Rejected("validation_error", "date: not a date.", "date");
    const takenAt = fields["taken_at"] === undefined || fields["taken_at"] === null ? undefined : String(fields["taken_at"]);
    const existing = this.doses.get(m.id);
    if (existing) {
      const unchanged =
        existing.prescription === fields["prescription"] && existing.date === date && existing.status === status &&
        (takenAt === undefined || takenAt === existing.taken_at);
      if (!unchanged) throw new Rejected("immutable", "Dose logs are insert-only: log a correction instead.");
      return { status: "applied", server_version: existing.server_version };
    }
    const prescription = this.prescriptions.get(String(fields["prescription"]));
    if (!prescription) throw new Rejected("not_found", "No such prescription.", "prescription");
    if (date < prescription.start || (prescription.end !== null && date > prescription.end)) {
      throw new Rejected("prescription_inactive", "The prescription is not active on that date.", "date");
    }
    if (status === "skipped" && takenAt !== undefined) throw new Rejected("validation_error", "A skipped dose has no time taken.", "taken_at");
    this.doses.set(m.id, {
      id: m.id, prescription: prescription.id, date, status,
      taken_at: status === "taken" ? (takenAt ?? `${date}T12:00:00+00:00`) : null,
      server_version: ctx.version,
    });
    this.effect(ctx);
    return { status: "applied", server_version: ctx.version };
  }

  // patient_settings ----------------------------------------------------------------------------------

  private applySettings(ctx: Ctx): Answer {
    const m = ctx.mutation;
    if (m.op === "delete" || m.id !== this.patientId) throw new Rejected("not_allowed", "Only your own settings can be changed, not deleted.");
    const fields = m.fields;
    unknownField(fields, SETTINGS_FIELDS);
    if ("timezone" in fields) {
      try {
        new Intl.DateTimeFormat("en", { timeZone: String(fields["timezone"]) });
      } catch {
        throw new Rejected("validation_error", "timezone: not a known time zone.", "timezone");
      }
    }
    if ("locale" in fields && !["en", "de"].includes(String(fields["locale"]))) throw new Rejected("validation_error", "locale: not a valid choice.", "locale");
    if ("diary_mode" in fields && !["once", "twice"].includes(String(fields["diary_mode"]))) throw new Rejected("validation_error", "diary_mode: not a valid choice.", "diary_mode");
    for (const name of ["quiet_hours_start", "quiet_hours_end"]) {
      const v = fields[name];
      if (v !== undefined && v !== null && !HHMM.test(String(v))) throw new Rejected("validation_error", `${name}: HH:MM.`, name);
    }
    const s = this.settings;
    const base = m.base_version ?? 0;
    const serverChanged = Object.keys(fields).filter((f) => {
      const v = s.field_versions[f] ?? 0;
      return v > base && !this.own(ctx, v);
    }).sort();
    const conflicting = serverChanged.filter((f) => !same(s[f as keyof PatientSettings], fields[f]));
    if (conflicting.length) {
      this.recordConflict(
        ctx, "patient_settings", s.id, conflicting,
        Object.fromEntries(conflicting.map((f) => [f, fields[f]])),
        Object.fromEntries(conflicting.map((f) => [f, s[f as keyof PatientSettings]])),
      );
    }
    Object.assign(s, fields, { server_version: ctx.version });
    for (const name of Object.keys(fields)) s.field_versions[name] = ctx.version;
    this.effect(ctx);
    return { status: serverChanged.length ? "merged" : "applied", server_version: ctx.version };
  }

  // reminder ------------------------------------------------------------------------------------------

  private reminderRecord(r: Reminder): Record<string, unknown> {
    return {
      id: r.id, kind: r.kind, local_time: r.local_time, days_of_week: [...r.days_of_week], prescription: r.prescription,
      enabled: r.enabled, server_version: r.server_version, deleted: r.deleted,
    };
  }

  private applyReminder(ctx: Ctx): Answer {
    const m = ctx.mutation;
    const existing = this.reminders.get(m.id);
    if (m.op === "delete") {
      if (!existing) throw new Rejected("not_found", "No such reminder.");
      if (!existing.deleted) {
        existing.deleted = true;
        existing.server_version = ctx.version;
        this.effect(ctx);
      }
      return { status: "applied", server_version: existing.server_version };
    }
    const fields = { ...m.fields };
    unknownField(fields, REMINDER_FIELDS);
    if (existing?.deleted) {
      return { status: "conflict", reason: { code: "deleted" }, server_version: existing.server_version, record: this.reminderRecord(existing) };
    }
    if (!existing) {
      for (const name of ["kind", "local_time"]) if (!(name in fields)) throw new Rejected("validation_error", `${name} is required.`, name);
    }
    if ("kind" in fields && !["diary", "medication", "questionnaire"].includes(String(fields["kind"]))) {
      throw new Rejected("validation_error", "Unknown reminder kind.", "kind");
    }
    if ("local_time" in fields && !HHMM.test(String(fields["local_time"]))) throw new Rejected("validation_error", "local_time is HH:MM.", "local_time");
    if ("enabled" in fields && typeof fields["enabled"] !== "boolean") throw new Rejected("validation_error", "enabled is true or false.", "enabled");
    if ("days_of_week" in fields) {
      const days = fields["days_of_week"];
      if (!Array.isArray(days) || days.length === 0 || days.some((d) => !Number.isInteger(d) || d < 1 || d > 7)) {
        throw new Rejected("validation_error", "days_of_week are ISO weekdays 1–7.", "days_of_week");
      }
      fields["days_of_week"] = [...new Set(days as number[])].sort((a, b) => a - b);
    }
    if (!existing) {
      const r: Reminder = {
        id: m.id, kind: String(fields["kind"]), local_time: String(fields["local_time"]),
        days_of_week: (fields["days_of_week"] as number[] | undefined) ?? [1, 2, 3, 4, 5, 6, 7],
        prescription: (fields["prescription"] as string | null | undefined) ?? null,
        enabled: (fields["enabled"] as boolean | undefined) ?? true,
        server_version: ctx.version, deleted: false, field_versions: {},
      };
      for (const name of REMINDER_FIELDS) r.field_versions[name] = ctx.version;
      this.reminders.set(m.id, r);
      this.effect(ctx);
      return { status: "applied", server_version: ctx.version };
    }
    const base = m.base_version ?? 0;
    const othersChanged = existing.server_version > base && !this.own(ctx, existing.server_version);
    const conflicting = Object.keys(fields).filter((f) => {
      const v = existing.field_versions[f] ?? 0;
      return v > base && !this.own(ctx, v) && !same(fields[f], existing[f as keyof Reminder]);
    }).sort();
    if (conflicting.length) {
      this.recordConflict(
        ctx, "reminder", existing.id, conflicting,
        Object.fromEntries(conflicting.map((f) => [f, fields[f]])),
        Object.fromEntries(conflicting.map((f) => [f, existing[f as keyof Reminder]])),
      );
    }
    Object.assign(existing, fields, { server_version: ctx.version });
    for (const name of Object.keys(fields)) existing.field_versions[name] = ctx.version;
    this.effect(ctx);
    return othersChanged
      ? { status: "merged", server_version: ctx.version, record: this.reminderRecord(existing), conflict_fields: conflicting }
      : { status: "applied", server_version: ctx.version };
  }

  // --- Pull -----------------------------------------------------------------------------------

  private rows(): { v: number; table: string; id: string; deleted: boolean; data: Record<string, unknown> }[] {
    const rows: { v: number; table: string; id: string; deleted: boolean; data: Record<string, unknown> }[] = [];
    const add = (table: string, id: string, v: number, deleted: boolean, data: Record<string, unknown>) =>
      rows.push({ v, table, id, deleted, data });
    for (const e of this.entries.values()) {
      const data = this.diaryRecord(e);
      delete data["deleted"];
      add("diary_entry", e.id, e.server_version, e.deleted, data);
    }
    for (const q of this.questionnaires.values()) {
      add("questionnaire_response", q.id, q.server_version, q.deleted, {
        id: q.id, instrument: q.instrument, answers: q.answers, score: q.score, period_end: q.period_end, server_version: q.server_version,
      });
    }
    for (const d of this.doses.values()) add("dose_log", d.id, d.server_version, false, { ...d });
    for (const p of this.prescriptions.values()) add("prescription", p.id, p.server_version, false, { ...p });
    for (const r of this.reminders.values()) {
      const data = this.reminderRecord(r);
      delete data["deleted"];
      add("reminder", r.id, r.server_version, r.deleted, data);
    }
    const settings: Record<string, unknown> = { ...this.settings };
    delete settings["field_versions"];
    add("patient_settings", this.settings.id, this.settings.server_version, false, settings);
    for (const c of this.conflicts.values()) add("sync_conflict", c.id, c.server_version, false, { ...c });
    return rows;
  }

  private pull(params: URLSearchParams): Response {
    const token = params.get("cursor");
    const clientId = params.get("client_id");
    let payload: CursorPayload | undefined;
    if (token) {
      try {
        payload = JSON.parse(atob(token)) as CursorPayload;
      } catch {
        return this.problem(409, "reset_required"); // unreadable (e.g. a rotated key): start again
      }
      const position = payload.after?.[0] ?? payload.since;
      if (payload.epoch !== this.epoch || (payload.since > 0 && position < this.minCursor)) {
        return this.problem(409, "reset_required");
      }
    }
    const since = payload?.since ?? 0;
    const upto = payload?.upto ?? this.version;
    const after: [number, string, string] = payload?.after ?? [since, "", ""];
    const known = this.clients.get(clientId ?? "");
    if (known && known.epoch !== this.epoch) return this.problem(409, "reset_required");
    let lm: number;
    if (payload?.upto) lm = payload.client === clientId ? (payload.lm ?? 0) : 0;
    else lm = this.clients.get(clientId ?? "")?.last ?? 0;
    const limit = Number(params.get("limit") ?? 500);
    const key = (r: { v: number; table: string; id: string }): [number, string, string] => [r.v, r.table, r.id];
    const cmp = (a: [number, string, string], b: [number, string, string]): number =>
      a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
    const rows = this.rows()
      .filter((r) => r.v > since && r.v <= upto && cmp(key(r), after) > 0)
      .sort((a, b) => cmp(key(a), key(b)));
    const page = rows.slice(0, limit);
    const hasMore = rows.length > limit;
    const changes: Record<string, { upserted: unknown[]; deleted: string[] }> = {};
    for (const row of page) {
      const table = (changes[row.table] ??= { upserted: [], deleted: [] });
      if (row.deleted) table.deleted.push(row.id);
      else table.upserted.push(JSON.parse(JSON.stringify(row.data)));
    }
    const lastRow = page[page.length - 1];
    const next: CursorPayload = hasMore && lastRow
      ? { epoch: this.epoch, since, upto, after: key(lastRow), client: clientId, lm }
      : { epoch: this.epoch, since: upto, upto: null, after: null };
    return this.json(200, { changes, cursor: btoa(JSON.stringify(next)), has_more: hasMore, last_mutation_id: lm });
  }
}
