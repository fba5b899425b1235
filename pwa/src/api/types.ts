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

/** A clinician on the patient's care team (GET /api/v1/me/care-team/): a name and a role. */
export interface CareTeamMember {
  name: string;
  care_role: "primary" | "secondary";
  since: string;
}

/** Where the patient stands with the notice (GET /api/v1/me/consent/). */
export interface ConsentState {
  /** given: health data is stored; none / withdrawn / outdated: nothing new is stored. */
  status: "given" | "none" | "withdrawn" | "outdated";
  version: number | null;
  granted_at: string | null;
  withdrawn_at: string | null;
  required_version: number;
  notice: Omit<PrivacyNotice, "clinic">;
  history: { version: number; granted_at: string; withdrawn_at: string | null }[];
}

/** The clinic's privacy notice (GET /api/v1/auth/privacy-notice/): accepted when joining. */
export interface PrivacyNotice {
  version: number;
  /** Language → the notice's text (plain text, paragraphs separated by blank lines). */
  texts: Record<string, string>;
  published_at: string;
  requires_reacceptance: boolean;
  clinic: string;
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

/** One queued change, sent in mutation_id order (gap-free per client_id). */
export interface PushMutation {
  mutation_id: number;
  table: "diary_entry" | "questionnaire_response" | "dose_log" | "reminder" | "patient_settings";
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
  /** The server's record after a merge or conflict (the table's record shape). */
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
  quiet_hours_start: string | null;
  quiet_hours_end: string | null;
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
    questionnaire_response?: TableChanges<ServerQuestionnaireRecord>;
    dose_log?: TableChanges<ServerDoseRecord>;
    prescription?: TableChanges<ServerPrescriptionRecord>;
    reminder?: TableChanges<ServerReminderRecord>;
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
  quiet_hours_start: string | null;
  quiet_hours_end: string | null;
  today: string;
  /** The clinic's late-entry window in days (read-only; absent from an older server). */
  late_entry_days?: number;
}

export interface ServerQuestionnaireRecord {
  id: string;
  instrument: "uct" | "uct7" | "aas";
  answers: { items?: number[] | null; angioedema?: boolean };
  score: number | null;
  period_end: string | null;
  server_version: number;
}

export interface ServerDoseRecord {
  id: string;
  prescription: string;
  date: string;
  status: "taken" | "skipped";
  taken_at: string | null;
  server_version: number;
}

export interface ServerPrescriptionRecord {
  id: string;
  medication: string;
  medication_name?: string;
  dose: string;
  frequency_kind: string;
  frequency_value: number | null;
  guideline_step: number;
  start: string;
  end: string | null;
  server_version: number;
}

export interface ServerReminderRecord {
  id: string;
  kind: "diary" | "medication" | "questionnaire";
  local_time: string;
  days_of_week: number[];
  prescription: string | null;
  enabled: boolean;
  server_version: number;
  deleted?: boolean;
}

// --- REST views (GET /api/v1/me/…) -------------------------------------------------------------

export type Uas7Band = "urticaria_free" | "well_controlled" | "mild" | "moderate" | "severe";

export interface Uas7Week {
  start: string;
  end: string;
  uas7: number | null;
  method: "complete" | "prorated" | "missing";
  days_observed: number;
  itch7: number | null;
  hives7: number | null;
  band: string | null;
}

export interface QuestionnaireResult {
  id: string;
  instrument: "uct" | "uct7" | "aas";
  answers: { items?: number[] | null; angioedema?: boolean };
  score: number;
  category: string | null;
  period_end: string;
  recorded_at: string;
}

/** GET /me/summary/: the values the clinic sees (patients.scores.patient_summary). */
export interface Summary {
  today: string;
  /** The current week: ends today when today is recorded, else yesterday. */
  uas7: Uas7Week;
  previous_uas7: Uas7Week;
  change: number | null;
  change_exceeds_mid: boolean;
  uct: SummaryUct | null;
  last_uct: SummaryUct | null;
  diary_completion_28d: number | null;
  days_recorded_28d: number;
  days_eligible_28d: number;
  adherence_28d: {
    medication: string;
    frequency_kind: "n_per_day" | "every_n_days" | "prn";
    status: "scored" | "new" | "as_needed";
    eligible_days: number;
    covered_days: number;
    pdc: number | null;
    adherent: boolean | null;
    dose_ratio: number | null;
    doses_due: number;
    doses_on_time: number;
    on_time_rate: number | null;
  }[];
  lowest_pdc: number | null;
  last_entry: string | null;
  diary_gap_days: number;
  diary_streak: number;
  days_missing_last_7: number;
  open_alerts: number;
}

export interface SummaryUct {
  score: number;
  instrument: "uct" | "uct7";
  category: string;
  period_end: string;
  /** Within its recall period (UCT 28 days, UCT7 7 days). */
  current: boolean;
}

export interface MedicationToday {
  id: string;
  medication: string;
  name: string;
  dose: string;
  frequency_kind: string;
  frequency_value: number | null;
  guideline_step: number;
  start: string;
  end: string | null;
  due_today: number;
  logged_today: { id: string; prescription: string; date: string; status: "taken" | "skipped"; taken_at: string | null }[];
}

export interface PushConfig {
  vapid_public_key: string;
  subscriptions: { id: string; endpoint: string; created_at: string; last_success_at: string | null }[];
}

export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  expirationTime?: number | null;
}
