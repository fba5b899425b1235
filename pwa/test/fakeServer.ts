// An in-memory stand-in for /api/v1/sync/ and /api/v1/auth/token/refresh/ that follows the
// protocol of patients/sync.py: gap-free mutation ids per client (409 mutation_gap), duplicates
// answered with the original result, per-field merge with conflicts recorded, two ids for one
// day merged into the first, deletes win, a version counter as the pull cursor, 409
// reset_required for a cursor older than the purge horizon, 426 for an old schema version.
// Faults: a request that never arrives, a response that is lost after the server applied it.

interface Entry {
  id: string;
  day: string;
  slot: string;
  wheals: number;
  itch: number;
  angioedema: boolean;
  aas_items: number[] | null;
  note: string;
  server_version: number;
  deleted: boolean;
  field_versions: Record<string, number>;
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

interface Mutation {
  mutation_id: number;
  table: string;
  id: string;
  op: "upsert" | "delete";
  base_version: number | null;
  fields: Record<string, unknown>;
}

const EDITABLE = ["wheals", "itch", "angioedema", "aas_items", "note"] as const;

export class FakeServer {
  version = 0;
  minCursor = 0;
  minSchemaVersion = 1;
  entries = new Map<string, Entry>();
  conflicts = new Map<string, Conflict>();
  clients = new Map<string, { last: number; results: Map<number, Result>; versions: Set<number> }>();
  applications = 0; // effects applied (exactly-once checks)
  validAccess = new Set<string>(["access-1"]);
  refreshTokens = new Set<string>(["refresh-1"]);
  private tokenSerial = 1;
  /** Next requests to fail: "drop_request" never reaches the server, "drop_response" is applied then lost. */
  faults: ("drop_request" | "drop_response")[] = [];
  requests: { method: string; path: string; body: unknown }[] = [];

  fetch = async (input: string, init?: RequestInit): Promise<Response> => {
    const url = new URL(input, "http://clinic.test");
    const method = init?.method ?? "GET";
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    this.requests.push({ method, path: url.pathname, body });
    const fault = this.faults.shift();
    if (fault === "drop_request") throw new TypeError("Failed to fetch");
    const response = this.handle(method, url, body, new Headers(init?.headers));
    if (fault === "drop_response") throw new TypeError("Failed to fetch");
    return response;
  };

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
      this.validAccess.add(pair.access);
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

  /** Everything a device may see, as the pull shows it. */
  liveEntries(): Entry[] {
    return [...this.entries.values()].filter((e) => !e.deleted);
  }

  /** A change made on the server side (another device, or the clinic). */
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

  /** Tombstones purged: cursors from before now are too old. */
  purge(): void {
    for (const [id, e] of this.entries) if (e.deleted) this.entries.delete(id);
    this.minCursor = this.version;
  }

  private push(body: { client_id: string; mutations: Mutation[] }): Response {
    let client = this.clients.get(body.client_id);
    if (!client) {
      client = { last: 0, results: new Map(), versions: new Set() };
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
      const result = { mutation_id: m.mutation_id, ...this.apply(body.client_id, client.versions, m, version) } as Result;
      client.results.set(m.mutation_id, result);
      client.last = m.mutation_id;
      results.push(result);
    }
    client.versions.add(version);
    return this.json(200, { last_mutation_id: client.last, results });
  }

  private record(e: Entry): Record<string, unknown> {
    return {
      id: e.id, day: e.day, slot: e.slot, wheals: e.wheals, itch: e.itch, angioedema: e.angioedema,
      aas_items: e.aas_items, note: e.note, server_version: e.server_version, deleted: e.deleted,
    };
  }

  private apply(clientId: string, own: Set<number>, m: Mutation, version: number): Record<string, unknown> {
    let entry = this.entries.get(m.id);
    if (m.op === "delete") {
      if (entry && !entry.deleted) {
        entry.deleted = true;
        entry.server_version = version;
        this.applications++;
      }
      return { status: "applied", server_version: entry?.server_version ?? null };
    }
    const fields = m.fields;
    for (const name of ["wheals", "itch"]) {
      const v = fields[name];
      if (v !== undefined && (typeof v !== "number" || v < 0 || v > 3)) {
        return { status: "rejected", reason: { code: "validation_error", detail: `${name} must be an integer 0–3.`, field: name } };
      }
    }
    let base = m.base_version ?? 0;
    if (!entry) {
      const live = [...this.entries.values()].find((e) => !e.deleted && e.day === fields["day"] && e.slot === fields["slot"]);
      if (!live) {
        entry = {
          id: m.id, day: String(fields["day"]), slot: String(fields["slot"]), wheals: Number(fields["wheals"]),
          itch: Number(fields["itch"]), angioedema: Boolean(fields["angioedema"]),
          aas_items: (fields["aas_items"] as number[] | null) ?? null, note: String(fields["note"] ?? ""),
          server_version: version, deleted: false, field_versions: {},
        };
        for (const name of EDITABLE) entry.field_versions[name] = version;
        this.entries.set(m.id, entry);
        this.applications++;
        return { status: "applied", server_version: version };
      }
      entry = live;
      base = 0;
    } else if (entry.deleted) {
      return { status: "conflict", reason: { code: "deleted" }, server_version: entry.server_version, record: this.record(entry) };
    }
    const changes = Object.fromEntries(Object.entries(fields).filter(([k]) => k !== "day" && k !== "slot"));
    const othersChanged = entry.server_version > base && !own.has(entry.server_version) && entry.server_version !== version;
    const conflicting = Object.keys(changes).filter((f) => {
      const v = entry.field_versions[f] ?? 0;
      return v > base && !own.has(v) && v !== version && JSON.stringify(entry[f as keyof Entry]) !== JSON.stringify(changes[f]);
    });
    if (conflicting.length) {
      const conflict: Conflict = {
        id: crypto.randomUUID(), table: "diary_entry", record_id: entry.id, mutation_id: m.mutation_id,
        client_id: clientId, fields: conflicting,
        client_value: Object.fromEntries(conflicting.map((f) => [f, changes[f]])),
        server_value: Object.fromEntries(conflicting.map((f) => [f, entry[f as keyof Entry]])),
        resolution: "last_arrival_wins", server_version: version,
      };
      this.conflicts.set(conflict.id, conflict);
    }
    Object.assign(entry, changes, { server_version: version });
    for (const name of Object.keys(changes)) entry.field_versions[name] = version;
    this.applications++;
    const merged = othersChanged || entry.id !== m.id;
    return merged
      ? { status: "merged", server_version: version, record: this.record(entry), conflict_fields: conflicting }
      : { status: "applied", server_version: version };
  }

  private pull(params: URLSearchParams): Response {
    const cursor = params.get("cursor");
    const since = cursor ? Number(cursor.replace("v", "")) : 0;
    if (cursor && since < this.minCursor) return this.problem(409, "reset_required");
    const limit = Number(params.get("limit") ?? 500);
    type Row = { v: number; table: string; e?: Entry; c?: Conflict };
    const rows: Row[] = [
      ...[...this.entries.values()].map((e): Row => ({ v: e.server_version, table: "diary_entry", e })),
      ...[...this.conflicts.values()].map((c): Row => ({ v: c.server_version, table: "sync_conflict", c })),
    ]
      .filter((r) => r.v > since && (since > 0 || r.table !== "diary_entry" || !r.e?.deleted))
      .sort((a, b) => a.v - b.v);
    const page = rows.slice(0, limit);
    const hasMore = rows.length > limit && page.length > 0;
    const changes: Record<string, { upserted: unknown[]; deleted: string[] }> = {};
    for (const row of page) {
      const table = (changes[row.table] ??= { upserted: [], deleted: [] });
      if (row.e?.deleted) table.deleted.push(row.e.id);
      else table.upserted.push(row.e ? this.record(row.e) : row.c);
    }
    // Pages end on a whole version here (the real server pages by (version, table, id)).
    const lastV = hasMore ? (page[page.length - 1]?.v ?? since) : this.version;
    const client = this.clients.get(params.get("client_id") ?? "");
    return this.json(200, { changes, cursor: `v${lastV}`, has_more: hasMore, last_mutation_id: client?.last ?? 0 });
  }
}
