// Typed client for the endpoints the app uses. The access token lives in memory only; the
// refresh token is kept by the caller (IndexedDB) through `TokenKeeper`. A 401 is answered
// by one refresh and one retry; if the refresh is refused the caller must sign in again.
import type {
  CareTeamMember,
  ConsentState,
  EnrollResponse,
  MedicationToday,
  Problem,
  Profile,
  PullResponse,
  PushConfig,
  PushRequest,
  PushResponse,
  PrivacyNotice,
  PushSubscriptionJson,
  QuestionnaireResult,
  Summary,
  TokenPair,
  Uas7Week,
} from "./types";

/** The local schema version this build speaks (X-Schema-Version). */
export const SCHEMA_VERSION = 1;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface TokenKeeper {
  refreshToken(): Promise<string | undefined>;
  saveRefreshToken(token: string): Promise<void>;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
  get code(): string | undefined {
    return this.problem.code;
  }
}

/** The network could not be reached (offline, DNS, reset): nothing is known about the request. */
export class NetworkError extends Error {}

/** The refresh token was refused: the user must sign in again (local data is kept). */
export class SignInRequired extends Error {}

export class ApiClient {
  private access: string | undefined;

  constructor(
    private readonly fetchFn: FetchLike,
    private readonly tokens: TokenKeeper,
    private readonly base = "",
  ) {}

  setAccessToken(token: string | undefined): void {
    this.access = token;
  }

  hasAccessToken(): boolean {
    return this.access !== undefined;
  }

  private async send(method: string, path: string, body?: unknown, auth = true): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", "X-Schema-Version": String(SCHEMA_VERSION) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.access) headers["Authorization"] = `Bearer ${this.access}`;
    try {
      return await this.fetchFn(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      throw new NetworkError(String(error));
    }
  }

  private static async problem(response: Response): Promise<Problem> {
    try {
      return (await response.json()) as Problem;
    } catch {
      return { status: response.status };
    }
  }

  private async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    // No access token yet (it lives in memory: every page load starts without one): refresh
    // first rather than send a request bound to answer 401.
    if (auth && this.access === undefined) await this.refresh();
    const sentWith = this.access;
    let response = await this.send(method, path, body, auth);
    if (response.status === 401 && auth) {
      // Another request may have refreshed meanwhile: then its new token is tried first.
      if (this.access === undefined || this.access === sentWith) await this.refresh();
      response = await this.send(method, path, body, auth);
    }
    if (!response.ok) throw new ApiError(response.status, await ApiClient.problem(response));
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  private refreshing: Promise<void> | undefined;

  /**
   * Trade the refresh token for a new pair (rotation: the new refresh token replaces it). One
   * refresh at a time: the server takes a rotated token presented again for a stolen copy and
   * ends the sign-in, so requests that meet a 401 together share one refresh (and tabs take
   * turns through a Web Lock, each reading the token the previous one kept).
   */
  refresh(): Promise<void> {
    this.refreshing ??= (
      typeof navigator !== "undefined" && navigator.locks
        ? navigator.locks.request("csu-token-refresh", () => this.refreshOnce())
        : this.refreshOnce()
    ).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    const refresh = await this.tokens.refreshToken();
    if (!refresh) throw new SignInRequired("No refresh token.");
    const response = await this.send("POST", "/api/v1/auth/token/refresh/", { refresh }, false);
    if (response.status === 401 || response.status === 400 || response.status === 403) {
      this.access = undefined;
      throw new SignInRequired("The sign-in has ended.");
    }
    if (!response.ok) throw new ApiError(response.status, await ApiClient.problem(response));
    const pair = (await response.json()) as TokenPair;
    await this.tokens.saveRefreshToken(pair.refresh);
    this.access = pair.access;
  }

  async signIn(email: string, password: string, otp?: string): Promise<TokenPair> {
    const pair = await this.request<TokenPair>("POST", "/api/v1/auth/token/", { email, password, ...(otp ? { otp } : {}) }, false);
    this.access = pair.access;
    return pair;
  }

  /** Ask for a new link confirming `email` (public). Always 202: the answer never tells
   * whether the address has an account here or is confirmed already. */
  async verifyEmailResend(email: string): Promise<void> {
    // 202 with no body: not read as JSON.
    const response = await this.send("POST", "/api/v1/auth/verify-email/resend/", { email }, false);
    if (!response.ok) throw new ApiError(response.status, await ApiClient.problem(response));
  }

  /** The signed-in account: its address and whether it is confirmed (`GET /auth/me/`). */
  me(): Promise<{ user: { email: string }; email_verified: boolean }> {
    return this.request("GET", "/api/v1/auth/me/");
  }

  /** The clinic's current privacy notice (public: shown before the patient has an account). */
  privacyNotice(): Promise<PrivacyNotice> {
    return this.request<PrivacyNotice>("GET", "/api/v1/auth/privacy-notice/", undefined, false);
  }

  /** The clinicians who look after the patient now, primary first. */
  careTeam(): Promise<CareTeamMember[]> {
    return this.request<CareTeamMember[]>("GET", "/api/v1/me/care-team/");
  }

  /** The patient's consent to the notice, and the current notice. */
  consent(): Promise<ConsentState> {
    return this.request<ConsentState>("GET", "/api/v1/me/consent/");
  }

  /** Accept version `version` of the notice (the current one, which the patient was shown). */
  consentAccept(version: number): Promise<ConsentState> {
    return this.request<ConsentState>("POST", "/api/v1/me/consent/", { version });
  }

  /** Withdraw consent: the server stores nothing new of the patient's health until accepted again. */
  consentWithdraw(): Promise<ConsentState> {
    return this.request<ConsentState>("POST", "/api/v1/me/consent/withdraw/", {});
  }

  /** Join with the code, accepting version `privacyNoticeVersion` of the clinic's notice. */
  async enroll(code: string, email: string, password: string, privacyNoticeVersion: number, otp?: string): Promise<EnrollResponse> {
    const body = { code, email, password, privacy_notice_version: privacyNoticeVersion, ...(otp ? { otp } : {}) };
    const pair = await this.request<EnrollResponse>("POST", "/api/v1/auth/enroll/", body, false);
    this.access = pair.access;
    return pair;
  }

  async logout(refresh: string): Promise<void> {
    await this.request<undefined>("POST", "/api/v1/auth/logout/", { refresh }, false);
    this.access = undefined;
  }

  profile(): Promise<Profile> {
    return this.request<Profile>("GET", "/api/v1/me/profile/");
  }

  push(body: PushRequest): Promise<PushResponse> {
    return this.request<PushResponse>("POST", "/api/v1/sync/push/", body);
  }

  pull(params: { cursor?: string; limit: number; client_id: string }): Promise<PullResponse> {
    const query = new URLSearchParams({ limit: String(params.limit), client_id: params.client_id });
    if (params.cursor) query.set("cursor", params.cursor);
    return this.request<PullResponse>("GET", `/api/v1/sync/pull/?${query.toString()}`);
  }

  // --- Read-only views, kept on the device for offline reading (store/views.ts) ---------------

  summary(): Promise<Summary> {
    return this.request<Summary>("GET", "/api/v1/me/summary/");
  }

  uas7Weeks(weeks: number, end?: string): Promise<Uas7Week[]> {
    const query = new URLSearchParams({ weeks: String(weeks) });
    if (end) query.set("end", end);
    return this.request<Uas7Week[]>("GET", `/api/v1/me/scores/uas7/?${query.toString()}`);
  }

  medications(): Promise<MedicationToday[]> {
    return this.request<MedicationToday[]>("GET", "/api/v1/me/medications/");
  }

  questionnaires(): Promise<QuestionnaireResult[]> {
    return this.request<QuestionnaireResult[]>("GET", "/api/v1/me/questionnaires/");
  }

  // --- My data ---------------------------------------------------------------------------------

  /** The export document (right of access), as the JSON text the server sent. */
  async exportDocument(): Promise<string> {
    let response = await this.send("GET", "/api/v1/me/export/");
    if (response.status === 401) {
      await this.refresh();
      response = await this.send("GET", "/api/v1/me/export/");
    }
    if (!response.ok) throw new ApiError(response.status, await ApiClient.problem(response));
    return response.text();
  }

  deletionRequest(reason: string): Promise<{ id: string; created_at: string }> {
    return this.request("POST", "/api/v1/me/deletion-request/", { reason });
  }

  // --- Web Push --------------------------------------------------------------------------------

  pushConfig(): Promise<PushConfig> {
    return this.request<PushConfig>("GET", "/api/v1/me/push-subscriptions/");
  }

  pushSubscribe(subscription: PushSubscriptionJson): Promise<{ id: string; endpoint: string }> {
    return this.request("POST", "/api/v1/me/push-subscriptions/", subscription);
  }

  pushUnsubscribe(id: string): Promise<void> {
    return this.request<undefined>("DELETE", `/api/v1/me/push-subscriptions/${encodeURIComponent(id)}/`);
  }
}
