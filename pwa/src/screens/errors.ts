import { ApiError, NetworkError } from "../api/client";
import { isKey, type Key } from "../i18n";

type Translate = (key: Key, params?: Record<string, string | number>) => string;

/** Codes the patient can meet, said in the app's language (src/i18n/errors.*.json). Every code
 * the patient app's endpoints can answer has a text there, except those the app handles itself
 * (test/fixtures/patient-error-codes.json lists both, test/errors.test.ts checks the texts, and
 * tests/patients/test_patient_error_texts.py checks the list against the API's documentation). */
function knownCode(code: string | undefined): Key | undefined {
  const key = `error.code.${code ?? ""}`;
  return code && isKey(key) ? key : undefined;
}

/** A refusal without a code we know, by its status: a proxy's 429 or 502–504 carries no code. */
function statusCode(status: number): Key | undefined {
  if (status === 429) return "error.code.throttled";
  if (status === 502 || status === 503 || status === 504) return "error.code.service_unavailable";
  return undefined;
}

/**
 * What to tell the patient about a failed request: our own words for the codes we know (the
 * server speaks English), else ours with the server's detail beside it, never the server's alone.
 */
export function errorText(error: unknown, t: Translate): string {
  if (error instanceof NetworkError) return t("error.network");
  if (error instanceof ApiError) {
    const known = knownCode(error.code) ?? statusCode(error.status);
    if (known) return t(known);
    const detail = [error.problem.detail, ...Object.values(error.problem.errors ?? {}).flat()].filter(Boolean).join(" ");
    return detail ? t("error.serverSays", { message: t("error.generic"), detail }) : t("error.generic");
  }
  if (error instanceof Error && error.message) return t("error.browser", { detail: error.message });
  return t("error.generic");
}

/** A refusal the sync engine kept on a record ({code, detail}): our words for a known code. */
export function reasonText(reason: { code: string; detail?: string } | null | undefined, t: Translate): string {
  if (!reason) return "";
  const known = knownCode(reason.code);
  return known ? t(known) : reason.detail || reason.code;
}
