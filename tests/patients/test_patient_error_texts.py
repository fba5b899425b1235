"""Every problem code the patient app's endpoints can answer is said to the patient in their
language: it has a text in the PWA's catalogues (pwa/src/i18n/errors.{en,de}.json), or the app
handles it itself. Without a text the patient reads "Something went wrong. Please try again."
for, say, an enrollment code already used, where trying again never helps.

The codes come from the API's own documentation (config.openapi: each operation's declared
answers and those its permission, throttle and input imply) and from the sync's per-mutation
rejections; the list of codes with a text and of codes the app handles is
pwa/test/fixtures/patient-error-codes.json, which the PWA's unit test (test/errors.test.ts)
checks against errorText.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drf_spectacular.generators import SchemaGenerator

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "pwa/test/fixtures/patient-error-codes.json"
CATALOGUES = {lang: ROOT / f"pwa/src/i18n/errors.{lang}.json" for lang in ("en", "de")}

# The patient app's operations besides /me/ and /sync/ (pwa/src/api/client.ts, session.ts).
APP_AUTH_OPERATIONS = {
    "v1_auth_token_create",
    "v1_auth_token_refresh_create",
    "v1_auth_logout_create",
    "v1_auth_enroll_create",
    "v1_auth_privacy_notice_retrieve",
}

# A `rejected` sync result carries the code the REST operation answers (the /me/ operations
# above) or one of the sync's own (v1_sync_push_create's description).
SYNC_REJECTION_CODES = {
    "unknown_field",
    "server_owned",
    "insert_only",
    "immutable",
    "immutable_field",
    "invalid_value",
    "min_value",
    "not_allowed",
    "not_found",
    "validation_error",
}


def _app_operation(operation_id: str) -> bool:
    return (
        operation_id in APP_AUTH_OPERATIONS
        or operation_id.startswith("v1_me_")
        or operation_id.startswith("v1_sync_")
    )


def documented_app_codes() -> dict[str, set[str]]:
    """code → the app's operations documented to answer it (clinic host)."""
    schema = SchemaGenerator(urlconf="config.urls_tenant").get_schema(request=None, public=True)
    codes: dict[str, set[str]] = {}
    for item in schema["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or not _app_operation(operation.get("operationId", "")):
                continue
            for status, response in operation.get("responses", {}).items():
                if not str(status).startswith(("4", "5")):
                    continue
                content: dict[str, Any] = response.get("content", {})
                for media in content.values():
                    for example in media.get("examples", {}).values():
                        code = example.get("value", {}).get("code")
                        if code:
                            codes.setdefault(code, set()).add(operation["operationId"])
    return codes


def test_the_schema_documents_the_codes_this_test_reads() -> None:
    codes = documented_app_codes()
    assert {"enrollment_used", "diary_future_date", "dose_too_late", "consent_required"} <= set(codes)


def test_every_code_the_patient_app_can_meet_has_a_text_or_is_handled_by_the_app() -> None:
    fixture = json.loads(FIXTURE.read_text())
    texts, handled = set(fixture["texts"]), set(fixture["handled"])
    assert not texts & handled, "a code is listed both with a text and as handled"
    can_meet = {*documented_app_codes(), *SYNC_REJECTION_CODES}
    unlisted = {
        code: sorted(documented_app_codes().get(code, {"sync rejection"}))
        for code in sorted(can_meet - texts - handled)
    }
    assert unlisted == {}, (
        "codes the patient app can meet with neither a text in pwa/src/i18n/errors.*.json nor a "
        "reason in pwa/test/fixtures/patient-error-codes.json `handled`"
    )
    for lang, path in CATALOGUES.items():
        catalogue = json.loads(path.read_text())
        missing = sorted(code for code in texts if f"error.code.{code}" not in catalogue)
        assert missing == [], f"errors.{lang}.json lacks texts for {missing}"
