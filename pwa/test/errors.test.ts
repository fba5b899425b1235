// Every problem code the patient app can meet is said in the patient's language, with what to do
// next: errorText and reasonText give our text for each code in fixtures/patient-error-codes.json
// (the Python test tests/patients/test_patient_error_texts.py checks that list against the codes
// the API documents for the app's operations), never "Something went wrong. Please try again."
import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/client";
import { translator, type Key } from "../src/i18n";
import { errorText, reasonText } from "../src/screens/errors";
import codes from "./fixtures/patient-error-codes.json";

const SERVER_DETAIL = "The server's own words.";

describe.each(["en", "de"] as const)("error texts (%s)", (lang) => {
  const t = translator(lang);

  it.each(codes.texts)("%s has its own text", (code) => {
    const ours = t(`error.code.${code}` as Key);
    expect(ours).not.toBe(t("error.generic"));
    expect(errorText(new ApiError(400, { code, detail: SERVER_DETAIL }), t)).toBe(ours);
    expect(reasonText({ code, detail: SERVER_DETAIL }, t)).toBe(ours);
  });

  it("the codes the review found without a text have one", () => {
    for (const code of ["enrollment_used", "enrollment_expired", "enrollment_revoked", "already_member", "plan_limit", "otp_already_used", "diary_future_date"]) {
      expect(codes.texts).toContain(code);
    }
  });

  it("already_member sends the patient to sign in, not to try again", () => {
    const text = t("error.code.already_member");
    expect(text).not.toMatch(/try again|erneut versuchen|versuchen Sie es/i);
  });

  it("a proxy's 503 without a code says the service is briefly unavailable", () => {
    expect(errorText(new ApiError(503, {}), t)).toBe(t("error.code.service_unavailable"));
  });

  it("an unknown code still shows the server's detail beside our words", () => {
    expect(errorText(new ApiError(400, { code: "something_new", detail: SERVER_DETAIL }), t)).toContain(SERVER_DETAIL);
  });
});

describe("the code lists", () => {
  it("no code is both said and handled elsewhere", () => {
    expect(codes.texts.filter((code) => code in codes.handled)).toEqual([]);
  });
});
