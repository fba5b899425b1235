"""Consent to the clinic's privacy notice (DESIGN.md §9; issue 22, part 6): health data is
stored only while the patient consents.

- The clinic's notice is versioned (`PrivacyNotice`), in every language the patient app
  speaks. Version 1 is a default every clinic has (migration 0017); a clinic admin publishes
  the next versions, never edits one.
- A patient consents by accepting the current version: at enrollment (the enrollment API
  requires the version the patient read), or later through `/api/v1/me/consent/`. Each
  acceptance and each withdrawal is a row of `Consent` (history, exported with their data).
- Without consent (never given, withdrawn, or given to a version older than one published as
  requiring re-acceptance) the patient's writes of health data are refused with 403
  `consent_required` (`patients.api.views.base.OwnRecordApi`): the account exists, nothing
  else is stored. What was recorded before a withdrawal stays (the clinic's medical record);
  the clinic sees the withdrawal on the patient's page and in the list.
- A newer notice version does not by itself end a consent: most revisions (a new contact, a
  clearer wording) do not change what the patient agreed to. The admin decides when
  publishing: `requires_reacceptance` marks a version whose changes need the patient's new
  agreement (a new purpose, a new recipient); from then on only an acceptance of that version
  or a later one counts, and the patient app asks for it.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.errors import ApplicationError, ErrorCode
from core.text import has_control_characters
from patients.audit import access_log_write
from patients.models import Consent, ConsentKind, Patient, PrivacyNotice
from patients.services import patient_write_lock

# The languages the patient app speaks: a notice is readable by every patient in theirs.
NOTICE_LANGUAGES = ("en", "de")
NOTICE_MAX_CHARS = 20_000


class ConsentStatus:
    GIVEN = "given"  # the latest acceptance stands and counts
    NONE = "none"  # never accepted
    WITHDRAWN = "withdrawn"
    OUTDATED = "outdated"  # accepted a version older than one that requires re-acceptance


@dataclass(frozen=True)
class ConsentState:
    status: str
    version: int | None  # the version the latest acceptance named
    granted_at: datetime | None
    withdrawn_at: datetime | None
    required_version: int  # the oldest version whose acceptance still counts
    current_version: int

    @property
    def given(self) -> bool:
        return self.status == ConsentStatus.GIVEN


def privacy_notice_current() -> PrivacyNotice:
    """The clinic's newest notice. Every clinic schema has version 1 (migration 0017); should a
    schema lack it all the same, the default is put back rather than leaving patients unable to
    join."""
    notice = PrivacyNotice.objects.order_by("-version").first()
    if notice is None:
        # The migration holds the one copy of the default text.
        default_texts = importlib.import_module("patients.migrations.0017_privacy_notice").DEFAULT_TEXTS
        notice, _ = PrivacyNotice.objects.get_or_create(version=1, defaults={"texts": default_texts})
    return notice


def privacy_notices() -> list[PrivacyNotice]:
    """Every published version, newest first."""
    return list(PrivacyNotice.objects.order_by("-version"))


def required_version() -> int:
    """The oldest version whose acceptance still counts: the newest one published as requiring
    re-acceptance, else 1 (every acceptance counts)."""
    newest = PrivacyNotice.objects.filter(requires_reacceptance=True).aggregate(v=Max("version"))["v"]
    return int(newest or 1)


def _state_from(latest: Consent | None, *, required: int, current: int) -> ConsentState:
    if latest is None:
        return ConsentState(ConsentStatus.NONE, None, None, None, required, current)
    version = int(latest.version)
    if latest.withdrawn_at is not None:
        status = ConsentStatus.WITHDRAWN
    elif version < required:
        status = ConsentStatus.OUTDATED
    else:
        status = ConsentStatus.GIVEN
    return ConsentState(status, version, latest.granted_at, latest.withdrawn_at, required, current)


def _latest(patient_id: uuid.UUID, *, lock: bool = False) -> Consent | None:
    rows = Consent.objects.filter(patient_id=patient_id, kind=ConsentKind.PRIVACY_NOTICE)
    if lock:
        rows = rows.select_for_update()
    return rows.order_by("-granted_at", "-created_at").first()


def consent_state(*, patient: Patient) -> ConsentState:
    """Where the patient stands with the clinic's privacy notice (three small queries)."""
    return _state_from(
        _latest(patient.pk), required=required_version(), current=privacy_notice_current().version
    )


def consent_history(*, patient: Patient) -> list[Consent]:
    """Every acceptance and withdrawal of the notice by the patient, oldest first."""
    return list(
        Consent.objects.filter(patient=patient, kind=ConsentKind.PRIVACY_NOTICE).order_by(
            "granted_at", "created_at"
        )
    )


def consent_states(*, patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, ConsentState]:
    """The same for a page of patients, in a fixed number of queries."""
    required, current = required_version(), privacy_notice_current().version
    latest: dict[uuid.UUID, Consent] = {}
    for row in (
        Consent.objects.filter(patient_id__in=patient_ids, kind=ConsentKind.PRIVACY_NOTICE)
        .order_by("patient_id", "-granted_at", "-created_at")
        .distinct("patient_id")
    ):
        latest[row.patient_id] = row
    return {pid: _state_from(latest.get(pid), required=required, current=current) for pid in patient_ids}


def consent_require(*, patient: Patient) -> None:
    """Refuse a write of health data without consent: 403 `consent_required`, saying why and
    what to do."""
    state = consent_state(patient=patient)
    if state.given:
        return
    detail = {
        ConsentStatus.NONE: "You have not agreed to the clinic's privacy notice: nothing is stored until you do.",
        ConsentStatus.WITHDRAWN: "You withdrew your consent to the clinic's privacy notice: nothing new is "
        "stored until you agree again.",
        ConsentStatus.OUTDATED: f"Your clinic published version {state.current_version} of its privacy notice "
        "and asks you to agree to it again: nothing new is stored until you do.",
    }[state.status]
    raise ApplicationError(
        code=ErrorCode.CONSENT_REQUIRED,
        status_code=403,
        detail=detail,
        extra={"consent_status": state.status, "privacy_notice_version": state.current_version},
    )


def privacy_notice_version_check(*, version: int, field: str = "privacy_notice_version") -> PrivacyNotice:
    """The notice the patient accepts must be the current one: they read what they agree to.
    A stale screen (a version published meanwhile) is told to show the new one (400)."""
    notice = privacy_notice_current()
    if version != notice.version:
        raise ApplicationError(
            code=ErrorCode.PRIVACY_NOTICE_OUTDATED,
            field=field,
            detail=f"The current privacy notice is version {notice.version}: read it and accept that one.",
            extra={"privacy_notice_version": notice.version},
        )
    return notice


@transaction.atomic
def consent_accept(*, patient: Patient, version: int, actor_id: uuid.UUID | None) -> Consent:
    """Record the patient's acceptance of the current notice (`version`, which they read).
    Idempotent: accepting the version their standing consent already names adds nothing.
    Taken under the patient's write lock, so it orders with their writes and a withdrawal."""
    notice = privacy_notice_version_check(version=version, field="version")
    patient_write_lock(patient)
    latest = _latest(patient.pk, lock=True)
    if latest is not None and latest.withdrawn_at is None and int(latest.version) == notice.version:
        return latest
    consent = Consent.objects.create(
        patient=patient,
        kind=ConsentKind.PRIVACY_NOTICE,
        version=str(notice.version),
        granted_at=timezone.now(),
    )
    access_log_write(
        actor_id=actor_id, actor_role="patient", action="consent.accept", patient_id=patient.pk, obj=consent
    )
    return consent


@transaction.atomic
def consent_withdraw(*, patient: Patient, actor_id: uuid.UUID | None) -> Consent:
    """Withdraw the patient's standing consent (409 `consent_not_given` when none stands). From
    the commit on, their writes of health data are refused; what was recorded stays."""
    patient_write_lock(patient)  # a write that checked consent before this commits first
    latest = _latest(patient.pk, lock=True)
    if latest is None or latest.withdrawn_at is not None:
        raise ApplicationError(
            code=ErrorCode.CONSENT_NOT_GIVEN, status_code=409, detail="There is no consent to withdraw."
        )
    latest.withdrawn_at = timezone.now()
    latest.save(update_fields=["withdrawn_at", "updated_at"])
    access_log_write(
        actor_id=actor_id, actor_role="patient", action="consent.withdraw", patient_id=patient.pk, obj=latest
    )
    return latest


def _texts_validate(texts: Any) -> dict[str, str]:
    if not isinstance(texts, dict):
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="texts", detail="Give the notice as language → text."
        )
    unknown = sorted(set(texts) - set(NOTICE_LANGUAGES))
    if unknown:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR,
            field="texts",
            detail=f"Unknown language {unknown[0]!r}: the patient app speaks {', '.join(NOTICE_LANGUAGES)}.",
        )
    missing = [
        lang for lang in NOTICE_LANGUAGES if not isinstance(texts.get(lang), str) or not texts[lang].strip()
    ]
    if missing:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR,
            field="texts",
            detail=f"Give the notice in every language the patient app speaks; missing: {', '.join(missing)}.",
        )
    cleaned = {lang: texts[lang].strip() for lang in NOTICE_LANGUAGES}
    for lang, text in cleaned.items():
        if len(text) > NOTICE_MAX_CHARS:
            raise ApplicationError(
                code=ErrorCode.VALIDATION_ERROR,
                field="texts",
                detail=f"The {lang} text is longer than {NOTICE_MAX_CHARS} characters.",
            )
        if has_control_characters(text, allow_line_breaks=True):
            raise ApplicationError(
                code=ErrorCode.INVALID_CHARACTERS,
                field="texts",
                detail=f"The {lang} text has control characters.",
            )
    return cleaned


@transaction.atomic
def privacy_notice_publish(
    *, texts: Any, requires_reacceptance: bool, actor_id: uuid.UUID, actor_role: str
) -> PrivacyNotice:
    """Publish the next version of the clinic's notice (the texts in every language the app
    speaks). Publications are serialized by a transaction-scoped advisory lock, so two admins
    publishing at once get consecutive versions (the unique version is the backstop)."""
    cleaned = _texts_validate(texts)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"privacy-notice-publish:{getattr(connection, 'schema_name', '')}"],
        )
    version = (PrivacyNotice.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    notice = PrivacyNotice.objects.create(
        version=version, texts=cleaned, requires_reacceptance=requires_reacceptance, published_by_id=actor_id
    )
    access_log_write(
        actor_id=actor_id, actor_role=actor_role, action="privacy_notice.publish", patient_id=None, obj=notice
    )
    return notice
