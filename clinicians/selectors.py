"""Portal reads.

The patient list reads each patient's summary row (`patients.summary`): the scores, flags and
adherence there are computed by `patients.scores` alone, so the list, the patient's page, the
alerts and the reports show the same numbers. Filters and sorts are plain column predicates on
indexed columns, with keyset pagination: one statement whatever the clinic's size.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import Membership, Role, User
from accounts.selectors import ActiveMembership
from clinicians import reports
from clinicians.models import Alert, CareTeam, ClinicalNote, Report, ReportKind
from core import crypto
from core.cursors import cursor_sign, cursor_unsign
from core.errors import ApplicationError, ErrorCode
from patients.audit import access_log_for_patient, access_log_write_many
from patients.consent import consent_states
from patients.models import AccessLog, Patient
from patients.summary import summaries_refresh_stale

SORTS = {
    "name": "p.display_name",
    "uas7": "s.uas7",
    "uas7_change": "s.uas7_change",
    "uct": "s.uct",
    "last_uct": "s.uct",  # the current UCT (older results drive nothing); kept for old clients
    "diary_completion": "s.diary_completion",
    "pdc": "s.lowest_pdc",
    "last_entry": "s.last_entry",
    "open_alerts": "s.open_alerts",
}
BANDS = ("urticaria_free", "well_controlled", "mild", "moderate", "severe")

_LIST_SQL = """
SELECT p.id, p.display_name, p.status, s.*
FROM patients_patient p JOIN patients_patientsummary s ON s.patient_id = p.id
WHERE {fresh} {visibility} {search} {filters} {keyset}
ORDER BY {order}
LIMIT %(limit)s
"""


_PENDING_SQL = (
    "SELECT count(*) FROM patients_patient p JOIN patients_patientsummary s ON s.patient_id = p.id "
    "WHERE s.stale_after <= now() AND "
)


@dataclass(frozen=True)
class PatientRow:
    id: uuid.UUID
    display_name: str
    status: str
    valid_for: date | None
    week_end: date | None
    uas7: float | None
    method: str
    days_observed: int
    band: str | None
    previous_uas7: float | None
    previous_method: str
    previous_days_observed: int
    uas7_change: float | None
    uas7_change_exceeds_mid: bool
    uct: int | None
    uct_instrument: str
    uct_date: date | None
    last_uct: int | None
    last_uct_instrument: str
    last_uct_date: date | None
    diary_completion_28d: float | None
    days_recorded: int
    days_eligible: int
    pdc_28d: float | None
    adherence: list[dict[str, Any]]
    last_entry: date | None
    diary_gap_days: int
    open_alerts: int
    consent: str = ""  # patients.consent.ConsentStatus: given, none, withdrawn, outdated


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _cursor_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


PATIENT_LIST_CURSOR_SALT = "portal-patient-list"


def portal_patient_list(
    *,
    membership: ActiveMembership,
    sort: str = "name",
    band: str | None = None,
    has_open_alerts: bool | None = None,
    pdc_below: float | None = None,
    diary_gap_gte: int | None = None,
    search: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[PatientRow], str | None, int]:
    """One page of the patients this staff member may see, with their summaries, the cursor of
    the next page, and how many summaries are left out as not yet recomputed for their new local
    date (`summaries_refresh_stale`). One SQL statement for the page, whatever the clinic's size."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS:
        raise ApplicationError(
            code=ErrorCode.INVALID_SORT, field="sort", detail=f"Sort by one of: {', '.join(SORTS)}."
        )
    column = SORTS[key]
    params: dict[str, Any] = {"limit": limit + 1}

    if membership.role == Role.CLINIC_ADMIN:
        visibility = "TRUE"
    elif membership.role == Role.CLINICIAN:
        visibility = (
            "EXISTS (SELECT 1 FROM clinicians_careteam ct JOIN clinicians_clinician c ON c.id = ct.clinician_id "
            "WHERE ct.patient_id = p.id AND c.user_id = %(user_id)s AND c.active "
            "AND ct.since <= (now() AT TIME ZONE p.timezone)::date "
            "AND (ct.until IS NULL OR ct.until >= (now() AT TIME ZONE p.timezone)::date))"
        )
        params["user_id"] = membership.user_id
    else:
        return [], None, 0
    stale = summaries_refresh_stale()
    if stale and visibility != "TRUE":
        # Pending counts only the patients this clinician may see (the clinic's size is not theirs).
        with connection.cursor() as db:
            count_sql = _PENDING_SQL + visibility  # our fixed predicate, parameters bound below
            db.execute(count_sql, params)
            stale = int(db.fetchone()[0])
    search_sql = ""
    if search:
        params["search"] = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        search_sql = "AND p.display_name ILIKE %(search)s"

    filters = []
    if band is not None:
        filters.append("s.band = %(band)s")
        params["band"] = band
    if has_open_alerts is not None:
        filters.append("s.open_alerts > 0" if has_open_alerts else "s.open_alerts = 0")
    if pdc_below is not None:
        filters.append("s.lowest_pdc < %(pdc_below)s")
        params["pdc_below"] = Decimal(str(pdc_below))
    if diary_gap_gte is not None:
        filters.append("s.diary_gap >= %(gap)s")
        params["gap"] = diary_gap_gte

    keyset = ""
    if cursor:
        payload = cursor_unsign(cursor, salt=PATIENT_LIST_CURSOR_SALT)
        if payload.get("sort") != sort:
            raise ApplicationError(
                code=ErrorCode.INVALID_CURSOR, field="cursor", detail="The cursor belongs to another sort."
            )
        try:
            params["cursor_id"] = uuid.UUID(str(payload.get("id")))
        except ValueError as exc:
            raise ApplicationError(
                code=ErrorCode.INVALID_CURSOR, field="cursor", detail="This cursor is not valid."
            ) from exc
        params["cursor_value"] = payload.get("value")
        comparison = "<" if descending else ">"
        cast = _cast_for(column)
        if payload.get("value") is None:
            keyset = f"AND {column} IS NULL AND p.id > %(cursor_id)s"
        else:
            keyset = (
                f"AND ({column} {comparison} %(cursor_value)s{cast} "
                f"OR ({column} = %(cursor_value)s{cast} AND p.id > %(cursor_id)s) OR {column} IS NULL)"
            )
    order = f"{column} {'DESC' if descending else 'ASC'} NULLS LAST, p.id ASC"
    sql = _LIST_SQL.format(
        # Rows of another day are left out; when none are stale (the usual case) the predicate is
        # not written at all, so the plan never rests on the planner's guess about `stale_after`
        # (right after the midnight roll its statistics still say 1970).
        fresh="s.stale_after > now() AND" if stale else "",
        visibility=visibility,
        search=search_sql,
        filters="".join(f" AND {f}" for f in filters),
        keyset=keyset,
        order=order,
    )
    with connection.cursor() as db:
        db.execute(sql, params)
        columns = [c.name for c in db.description]
        records = [dict(zip(columns, row, strict=True)) for row in db.fetchall()]

    rows = [_row(r) for r in records[:limit]]
    states = consent_states(patient_ids=[row.id for row in rows])
    rows = [replace(row, consent=states[row.id].status) for row in rows]
    next_cursor = None
    if len(records) > limit:
        last = records[limit - 1]
        value = last["display_name"] if key == "name" else last[column.split(".")[1]]
        next_cursor = cursor_sign(
            {"sort": sort, "value": _cursor_value(value), "id": str(last["id"])},
            salt=PATIENT_LIST_CURSOR_SALT,
        )
    access_log_write_many(
        actor_id=membership.user_id,
        actor_role=membership.role,
        action="portal.patient_list",
        patient_ids=[row.id for row in rows],
        object_type="Patient",
    )
    return rows, next_cursor, stale


def _row(r: dict[str, Any]) -> PatientRow:
    return PatientRow(
        id=r["id"],
        display_name=r["display_name"],
        status=r["status"],
        valid_for=r["valid_for"],
        week_end=r["week_end"],
        uas7=_num(r["uas7"]),
        method=r["uas7_method"],
        days_observed=r["uas7_days"],
        band=r["band"],
        previous_uas7=_num(r["previous_uas7"]),
        previous_method=r["previous_method"],
        previous_days_observed=r["previous_days"],
        uas7_change=_num(r["uas7_change"]),
        uas7_change_exceeds_mid=r["exceeds_mid"],
        uct=r["uct"],
        uct_instrument=r["uct_instrument"],
        uct_date=r["uct_date"],
        last_uct=r["last_uct"],
        last_uct_instrument=r["last_uct_instrument"],
        last_uct_date=r["last_uct_date"],
        diary_completion_28d=_num(r["diary_completion"]),
        days_recorded=r["days_recorded"],
        days_eligible=r["days_eligible"],
        pdc_28d=_num(r["lowest_pdc"]),
        adherence=json.loads(r["adherence"]) if isinstance(r["adherence"], str) else r["adherence"],
        last_entry=r["last_entry"],
        diary_gap_days=r["diary_gap"],
        open_alerts=r["open_alerts"],
    )


def _cast_for(column: str) -> str:
    return {
        "p.display_name": "::text",
        "s.uas7": "::numeric",
        "s.uas7_change": "::numeric",
        "s.uct": "::int",
        "s.diary_completion": "::numeric",
        "s.lowest_pdc": "::numeric",
        "s.last_entry": "::date",
        "s.open_alerts": "::bigint",
    }[column]


# --- Timeline -----------------------------------------------------------------------------------

_TIMELINE_SQL = """
SELECT * FROM (
    SELECT 'diary' AS kind, d.id::text AS id, d.recorded_at AS at, d.day AS local_date,
           jsonb_build_object('day', d.day, 'slot', d.slot, 'wheals', d.wheals, 'itch', d.itch,
                              'uas', d.wheals + d.itch, 'angioedema', d.angioedema, 'aas_items', d.aas_items,
                              'deleted', d.deleted_at IS NOT NULL) AS data,
           d.note_encrypted AS secret
    FROM patients_diaryentry d WHERE d.patient_id = %(pid)s
    UNION ALL
    SELECT 'questionnaire', q.id::text, q.recorded_at, q.period_end,
           jsonb_build_object('instrument', q.instrument, 'score', q.score, 'period_end', q.period_end), ''
    FROM patients_questionnaireresponse q WHERE q.patient_id = %(pid)s AND q.deleted_at IS NULL
    UNION ALL
    SELECT 'dose', dl.id::text, COALESCE(dl.taken_at, dl.created_at), dl.scheduled_date,
           jsonb_build_object('prescription', dl.prescription_id, 'medication', r.medication_id,
                              'date', dl.scheduled_date, 'status', dl.status), ''
    FROM patients_doselog dl JOIN patients_prescription r ON r.id = dl.prescription_id WHERE dl.patient_id = %(pid)s
    UNION ALL
    SELECT 'prescription', r.id::text, r.created_at, r.start,
           jsonb_build_object('medication', r.medication_id, 'dose', r.dose, 'frequency_kind', r.frequency_kind,
                              'frequency_value', r.frequency_value, 'guideline_step', r.guideline_step,
                              'start', r.start, 'end', r."end"), ''
    FROM patients_prescription r WHERE r.patient_id = %(pid)s
    UNION ALL
    SELECT 'note', n.id::text, n.created_at, (n.created_at AT TIME ZONE %(tz)s)::date,
           jsonb_build_object('author_id', n.author_id, 'corrects', n.corrects_id), n.body_encrypted
    FROM clinicians_clinicalnote n WHERE n.patient_id = %(pid)s
    UNION ALL
    SELECT 'alert', a.id::text, a.opened_at, (a.opened_at AT TIME ZONE %(tz)s)::date,
           jsonb_build_object('kind', a.kind, 'evidence', a.evidence, 'acknowledged_at', a.acknowledged_at,
                              'resolved_at', a.resolved_at), ''
    FROM clinicians_alert a WHERE a.patient_id = %(pid)s
) events
WHERE local_date BETWEEN %(start)s AND %(end)s {keyset}
ORDER BY at DESC, kind DESC, id DESC
LIMIT %(limit)s
"""

TIMELINE_CURSOR_SALT = "portal-timeline"


@dataclass(frozen=True)
class TimelineEvent:
    kind: str
    id: str
    at: datetime
    local_date: date
    data: dict[str, Any]


def patient_timeline(
    *, patient_id: uuid.UUID, tz: str, start: date, end: date, limit: int = 50, cursor: str | None = None
) -> tuple[list[TimelineEvent], str | None]:
    """Diary, questionnaires, doses, prescriptions, notes and alerts merged newest first."""
    params: dict[str, Any] = {"pid": patient_id, "tz": tz, "start": start, "end": end, "limit": limit + 1}
    keyset = ""
    if cursor:
        payload = cursor_unsign(cursor, salt=TIMELINE_CURSOR_SALT)
        try:
            params["c_at"] = datetime.fromisoformat(str(payload["at"]))
            params["c_kind"] = str(payload["kind"])
            params["c_id"] = str(payload["id"])
        except (KeyError, ValueError) as exc:
            raise ApplicationError(
                code=ErrorCode.INVALID_CURSOR, field="cursor", detail="This cursor is not valid."
            ) from exc
        keyset = "AND (at, kind, id) < (%(c_at)s, %(c_kind)s, %(c_id)s)"
    with connection.cursor() as db:
        db.execute(_TIMELINE_SQL.format(keyset=keyset), params)
        rows = db.fetchall()
    events = []
    for kind, event_id, at, local_date, raw_data, secret in rows[:limit]:
        # Django's PostgreSQL backend hands jsonb back as text (its JSONField decodes it).
        data = json.loads(raw_data) if isinstance(raw_data, str) else dict(raw_data)
        if kind == "note":
            data["body"] = crypto.decrypt(secret)
        elif kind == "diary":
            data["note"] = crypto.decrypt(secret) if secret else ""
        events.append(TimelineEvent(kind, event_id, at, local_date, data))
    next_cursor = None
    if len(rows) > limit:
        last = events[-1]
        next_cursor = cursor_sign(
            {"at": last.at.isoformat(), "kind": last.kind, "id": last.id}, salt=TIMELINE_CURSOR_SALT
        )
    return events, next_cursor


def alerts_visible_to(
    *,
    membership: ActiveMembership,
    status: str = "open",
    patient_id: uuid.UUID | None = None,
    limit: int = 500,
) -> list[Alert]:
    """Alerts of the patients this staff member may see: `open` (not yet acknowledged),
    `acknowledged`, `resolved` or `all`, newest first; every patient shown is in the access
    log. Filtering by a patient goes through the access function (404 and a refusal row for a
    patient the caller may not see, as on the patient's page)."""
    from clinicians.access import patient_get_for_staff, patients_visible_to

    alerts = Alert.objects.filter(patient__in=patients_visible_to(membership=membership)).select_related(
        "patient"
    )
    if patient_id is not None:
        patient_get_for_staff(membership=membership, patient_id=patient_id, action="portal.alerts")
        alerts = alerts.filter(patient_id=patient_id)
    alerts = {
        "open": alerts.filter(resolved_at__isnull=True, acknowledged_at__isnull=True),  # DESIGN §5
        "acknowledged": alerts.filter(resolved_at__isnull=True, acknowledged_at__isnull=False),
        "resolved": alerts.filter(resolved_at__isnull=False),
        "all": alerts,
    }[status]
    shown = list(alerts.order_by("-opened_at")[:limit])
    access_log_write_many(
        actor_id=membership.user_id,
        actor_role=membership.role,
        action="portal.alerts",
        patient_ids=[alert.patient_id for alert in shown],
        object_type="Alert",
    )
    return shown


def access_log_read(
    *, membership: ActiveMembership, patient_id: uuid.UUID, before: datetime | None = None, limit: int = 100
) -> list[AccessLog]:
    """Who read or changed a patient's data, newest first: itself an audited read, through the
    access function (404 for an id that is not a patient of this clinic)."""
    from clinicians.access import patient_get_for_staff

    patient = patient_get_for_staff(membership=membership, patient_id=patient_id, action="admin.access_log")
    return access_log_for_patient(patient_id=patient.pk, before=before, limit=limit)


def notes_of(*, patient: Patient, limit: int = 200) -> QuerySet[ClinicalNote]:
    """The patient's clinical notes, newest first."""
    return ClinicalNote.objects.filter(patient=patient).order_by("-created_at")[:limit]


def report_week_to_request(*, patient: Patient, week_start: date | None, late_days: int) -> date:
    """The week a report is requested for: the one asked for, or the last full week of the
    patient's local calendar; refused (400) unless it has ended and lies within the patient's
    record (`report_week_incomplete`, `report_week_before_enrolment`)."""
    today = patient.local_today()
    week_start = week_start or reports.last_complete_week(today)
    earliest = reports.earliest_report_week(patient=patient, late_days=late_days)
    reports.check_week(week_start, today, earliest=earliest)
    return week_start


def reports_list(*, patient: Patient | None, limit: int = 104) -> QuerySet[Report]:
    """A patient's weekly reports, or the clinic summaries when no patient is given; newest first."""
    if patient is not None:
        reports = Report.objects.filter(kind=ReportKind.PATIENT_WEEKLY, patient=patient)
    else:
        reports = Report.objects.filter(kind=ReportKind.CLINIC_WEEKLY)
    return reports.order_by("-week_start")[:limit]


def care_teams_list(
    *, membership: ActiveMembership, patient_id: uuid.UUID | None = None, active: bool | None = None
) -> list[CareTeamMember]:
    """Care-team assignments with the clinicians' names and roles, newest first; who looks
    after which patient is itself patient data, so every patient shown is in the access log
    (one patient's team goes through the access function). A fixed number of queries."""
    from clinicians.access import patient_get_for_staff

    assignments = CareTeam.objects.select_related("clinician", "patient").order_by("-since", "pk")
    if patient_id is not None:
        patient_get_for_staff(membership=membership, patient_id=patient_id, action="admin.care_teams")
        assignments = assignments.filter(patient_id=patient_id)
    if active is not None:
        assignments = assignments.filter(until__isnull=active)
    shown = list(assignments[:1000])
    access_log_write_many(
        actor_id=membership.user_id,
        actor_role=membership.role,
        action="admin.care_teams",
        patient_ids=[assignment.patient_id for assignment in shown],
        object_type="CareTeam",
    )
    return care_team_members(clinic_id=membership.clinic_id, assignments=shown)


# --- Care teams with names ----------------------------------------------------------------------


@dataclass(frozen=True)
class CareTeamMember:
    """One clinician on a patient's care team, as people read it: a name and a role, not a
    user id. `email` is the clinician's sign-in address, for their colleagues only (the
    patient's own view never carries it)."""

    assignment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    clinician_user_id: uuid.UUID
    display_name: str
    title: str
    email: str
    staff_role: str  # the clinic membership's role: clinician or clinic_admin
    care_role: str  # primary or secondary on this patient's team
    since: date
    until: date | None
    active: bool


def clinician_display_name(*, full_name: str, title: str) -> str:
    """ "Dr Anna Weber": the clinician's title in this clinic before their account's name. An
    account without a name is shown as "Clinician": its email is not a name to show a patient."""
    if not full_name.strip():
        return "Clinician"
    return " ".join(part for part in (title.strip(), full_name.strip()) if part)


def care_team_members(
    *, clinic_id: uuid.UUID, assignments: list[CareTeam], today: date | None = None
) -> list[CareTeamMember]:
    """Names and roles for care-team assignments (their clinicians already selected): one query
    for the accounts and one for their memberships in this clinic (the public schema's tables,
    read by the ORM; no join across schemas), whatever the number of assignments."""
    user_ids = {assignment.clinician.user_id for assignment in assignments}
    users = {user.pk: user for user in User.objects.filter(pk__in=user_ids).only("id", "email", "full_name")}
    roles = dict(
        Membership.objects.filter(clinic_id=clinic_id, user_id__in=user_ids, is_active=True).values_list(
            "user_id", "role"
        )
    )
    members = []
    for assignment in assignments:
        user_id = assignment.clinician.user_id
        user = users.get(user_id)
        full_name = user.full_name if user else ""
        title = assignment.clinician.title
        members.append(
            CareTeamMember(
                assignment_id=assignment.pk,
                patient_id=assignment.patient_id,
                patient_name=assignment.patient.display_name,
                clinician_user_id=user_id,
                display_name=clinician_display_name(full_name=full_name, title=title),
                title=title,
                email=user.email if user else "",
                staff_role=roles.get(user_id, ""),
                care_role=assignment.role,
                since=assignment.since,
                until=assignment.until,
                active=_assignment_active(assignment, today or assignment.patient.local_today()),
            )
        )
    return members


def _assignment_active(assignment: CareTeam, today: date) -> bool:
    """Whether the assignment gives access on the patient's local `today`: since ≤ today ≤
    until, and the clinician's profile active."""
    return (
        assignment.clinician.active
        and assignment.since <= today
        and (assignment.until is None or today <= assignment.until)
    )


def care_team_of(*, clinic_id: uuid.UUID, patient: Patient) -> list[CareTeamMember]:
    """The patient's current care team (the clinicians who can see them now), primary first.
    The caller got the patient through an access function, which audited the read."""
    today = patient.local_today()
    assignments = list(
        CareTeam.objects.select_related("clinician")
        .filter(patient=patient, clinician__active=True, since__lte=today)
        .filter(Q(until__isnull=True) | Q(until__gte=today))
        .order_by("role", "since", "pk")
    )
    for assignment in assignments:
        assignment.patient = patient  # no query per row for the patient's local date
    return care_team_members(clinic_id=clinic_id, assignments=assignments, today=today)
