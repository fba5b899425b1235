// Shapes of the endpoints the app uses (patients/api/views.py, patients/sync.py,
// accounts/api/views.py, patients/api/enrollment.py).

export interface TokenPair {
  access: string;
  refresh: string;
}

export interface EnrollResponse extends TokenPair {
  user_id: string;
  role: string;
}

/** RFC 9457 problem+json as the platform sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: Record<string, string[]>;
  expected?: number; // 409 mutation_gap
  min_schema_version?: number; // 426 upgrade_required
}

export interface PushMutation {
  mutation_id: number;
  table: string;
  id: string;
  op: "upsert" | "delete";
  base_version: number | null;
  fields: Record<string, unknown>;
}

export interface PushRequest {
  client_id: string;
  schema_version: number;
  mutations: PushMutation[];
}

export interface ServerDiaryRecord {
  id: string;
  day: string;
  slot: "day" | "am" | "pm";
  wheals: number;
  itch: number;
  angioedema: boolean;
  aas_items: number[] | null;
  note: string;
  server_version: number;
  deleted?: boolean;
}

export type MutationStatus = "applied" | "merged" | "conflict" | "rejected" | "duplicate";

export interface MutationResult {
  mutation_id: number;
  status: MutationStatus;
  server_version?: number | null;
  record?: ServerDiaryRecord;
  conflict_fields?: string[];
  reason?: { code: string; detail?: string; field?: string | null };
  /** For `duplicate`: the result the mutation got the first time. */
  original?: Omit<MutationResult, "mutation_id" | "original"> & { mutation_id?: number } | null;
}

export interface PushResponse {
  last_mutation_id: number;
  results: MutationResult[];
}

export interface ServerConflict {
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

export interface PatientSettings {
  id: string;
  timezone: string;
  locale: string;
  diary_mode: "once" | "twice";
  server_version: number;
}

export interface TableChanges<T> {
  upserted: T[];
  deleted: string[];
}

export interface PullResponse {
  changes: {
    diary_entry?: TableChanges<ServerDiaryRecord>;
    sync_conflict?: TableChanges<ServerConflict>;
    patient_settings?: TableChanges<PatientSettings>;
    [table: string]: TableChanges<unknown> | undefined;
  };
  cursor: string;
  has_more: boolean;
  last_mutation_id: number;
}

export interface Profile {
  id: string;
  display_name: string;
  timezone: string;
  locale: string;
  diary_mode: "once" | "twice";
  today: string;
}
