import { useEffect, useRef } from "preact/hooks";
import { ApiError } from "../api/client";
import type { AppContext } from "./context";

/** The server's answers that mean "this account has a second factor: send its code". */
const ASKS_FOR_CODE = new Set(["mfa_required", "invalid_otp", "otp_already_used"]);

export function asksForCode(error: unknown): boolean {
  return error instanceof ApiError && error.code !== undefined && ASKS_FOR_CODE.has(error.code);
}

/**
 * The authenticator's one-time code, shown only once the server has asked for it (an account
 * with TOTP: signing in, or joining a clinic with an existing account). Most patients never
 * have one, so the field is not there to puzzle them; when it appears it takes the focus.
 */
export function OneTimeCode({ asked, value, onInput, t }: { asked: number; value: string; onInput: (value: string) => void; t: AppContext["t"] }) {
  const input = useRef<HTMLInputElement>(null);
  // `asked`: how many times the server asked (0: not yet). Each answer asking again (a wrong or
  // spent code) brings the focus back here, as the button it was on is disabled meanwhile.
  useEffect(() => {
    if (asked > 0) input.current?.focus();
  }, [asked]);
  if (asked === 0) return null;
  return (
    <>
      <label for="otp">{t("field.otp")}</label>
      <input ref={input} id="otp" name="otp" required inputMode="numeric" autocomplete="one-time-code" value={value} onInput={(e) => onInput(e.currentTarget.value)} />
    </>
  );
}
