import { ApiError, NetworkError } from "../api/client";
import type { Key } from "../i18n";

/** What to tell the patient about a failed request: the server's own detail, or ours. */
export function errorText(error: unknown, t: (key: Key) => string): string {
  if (error instanceof NetworkError) return t("error.network");
  if (error instanceof ApiError) {
    const fields = Object.values(error.problem.errors ?? {}).flat();
    return [error.problem.detail, ...fields].filter(Boolean).join(" ") || t("error.generic");
  }
  return t("error.generic");
}
