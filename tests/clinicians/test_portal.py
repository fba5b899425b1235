"""Clinician portal: persona matrix, list values and query counts, alerts, notes, audit."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from clinicians.models import Alert, CareTeam, ClinicalNote
from clinicians.services import alerts_evaluate
from patients.models import AccessLog, DiaryEntry, DoseLog, Patient, Prescription
from patients.summary import adherence_json, summaries_roll, summary_get
from tenants.models import Clinic
from tests.clinicians.conftest import client_for
from tests.conftest import host_client
from tests.factories import (
    DiaryEntryFactory,
    DoseLogFactory,
    PatientFactory,
    PrescriptionFactory,
    QuestionnaireResponseFactory,
)

pytestmark = pytest.mark.django_db


PERSONAS = ["anonymous", "alice", "dr_bob", "erin", "carol", "mallory"]
# anonymous 401; patient 403; clinician in team 2xx; clinician outside 404; admin 2xx; other clinic 401
PATIENT_SCOPED = {"anonymous": 401, "alice": 403, "dr_bob": 200, "erin": 404, "carol": 200, "mallory": 401}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "path", "body", "ok"),
    [
        ("get", "/api/v1/portal/patients/{pid}/", None, 200),
        ("get", "/api/v1/portal/patients/{pid}/timeline/", None, 200),
        ("get", "/api/v1/portal/patients/{pid}/scores/uas7/", None, 200),
        ("get", "/api/v1/portal/patients/{pid}/notes/", None, 200),
        ("post", "/api/v1/portal/patients/{pid}/notes/", {"body": "Seen today."}, 201),
        ("get", "/api/v1/portal/patients/{pid}/prescriptions/", None, 200),
        (
            "post",
            "/api/v1/portal/patients/{pid}/prescriptions/",
            {"medication": "cetirizine-10", "dose": "10 mg", "guideline_step": 1, "start": "2026-01-01"},
            201,
        ),
    ],
)
def test_patient_scoped_endpoints_persona_matrix(
    request: pytest.FixtureRequest,
    team: CareTeam,
    alice_patient: Patient,
    erin: User,
    mallory: User,
    clinic_a: Clinic,
    persona: str,
    method: str,
    path: str,
    body: dict | None,
    ok: int,
) -> None:
    client = client_for(request, persona)
    response = getattr(client, method)(path.format(pid=alice_patient.pk), body, format="json")
    expected = ok if PATIENT_SCOPED[persona] == 200 else PATIENT_SCOPED[persona]
    assert response.status_code == expected, response.content
    with tenant_context(clinic_a):
        if expected >= 400 and method == "post":
            assert not ClinicalNote.objects.exists() and not Prescription.objects.exists()
        if persona == "erin":  # the refusal is audited, and survives the error response
            assert AccessLog.objects.filter(
                actor_id=erin.pk, allowed=False, patient_id=alice_patient.pk
            ).exists()


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("anonymous", 401), ("alice", 403), ("dr_bob", 200), ("erin", 200), ("carol", 200), ("mallory", 401)],
)
def test_list_endpoints_persona_matrix(
    request: pytest.FixtureRequest, team: CareTeam, erin: User, mallory: User, persona: str, expected: int
) -> None:
    client = client_for(request, persona)
    assert client.get("/api/v1/portal/patients/").status_code == expected
    assert client.get("/api/v1/portal/alerts/").status_code == expected


def test_clinicians_list_only_their_care_team(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, dave: User, erin: User
) -> None:
    assert [
        r["display_name"]
        for r in client_for(request, "dr_bob").get("/api/v1/portal/patients/").json()["results"]
    ] == ["Alice P."]
    assert client_for(request, "erin").get("/api/v1/portal/patients/").json()["results"] == []
    assert [
        r["display_name"]
        for r in client_for(request, "carol").get("/api/v1/portal/patients/").json()["results"]
    ] == [
        "Alice P.",
        "Dave P.",
    ]


def test_ended_assignment_removes_access(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, carol: User
) -> None:
    admin = client_for(request, "carol")
    assert (
        admin.post(
            f"/api/v1/admin/care-teams/{team.pk}/end/", {"until": "2020-06-01"}, format="json"
        ).status_code
        == 200
    )
    assert (
        client_for(request, "dr_bob").get(f"/api/v1/portal/patients/{alice_patient.pk}/").status_code == 404
    )


def test_admin_assigns_care_teams(
    request: pytest.FixtureRequest, alice_patient: Patient, erin: User, alice: User
) -> None:
    admin = client_for(request, "carol")
    created = admin.post(
        "/api/v1/admin/care-teams/",
        {"clinician_user_id": str(erin.pk), "patient": str(alice_patient.pk)},
        format="json",
    )
    assert created.status_code == 201
    again = admin.post(
        "/api/v1/admin/care-teams/",
        {"clinician_user_id": str(erin.pk), "patient": str(alice_patient.pk)},
        format="json",
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_assigned")
    patient_as_clinician = admin.post(
        "/api/v1/admin/care-teams/",
        {"clinician_user_id": str(alice.pk), "patient": str(alice_patient.pk)},
        format="json",
    )
    assert patient_as_clinician.json()["code"] == "not_a_clinician"
    assert client_for(request, "erin").get(f"/api/v1/portal/patients/{alice_patient.pk}/").status_code == 200
    assert client_for(request, "dr_bob").get("/api/v1/admin/care-teams/").status_code == 403


# --- The list: values equal the score functions; constant query count ---------------------------


def seed_patient(n: int, today: date, rng_seed: int) -> Patient:
    import random

    rng = random.Random(rng_seed)
    patient = PatientFactory(
        display_name=f"Patient {n:04d}",
        timezone="UTC",
        user_id=uuid.uuid4(),
        enrolled_at=datetime.combine(today - timedelta(days=100), time(9), tzinfo=UTC),
    )
    entries = []
    for offset in range(28):
        if rng.random() < 0.8:
            entries.append(
                DiaryEntryFactory.build(
                    patient=patient,
                    day=today - timedelta(days=offset),
                    wheals=rng.randint(0, 3),
                    itch=rng.randint(0, 3),
                )
            )
    DiaryEntry.objects.bulk_create(entries)
    daily = PrescriptionFactory(
        patient=patient, medication_id="cetirizine-10-x2", start=today - timedelta(days=60)
    )
    injection = PrescriptionFactory(
        patient=patient, medication_id="omalizumab-300-q4w", start=today - timedelta(days=70)
    )
    doses = [
        DoseLogFactory.build(prescription=daily, scheduled_date=today - timedelta(days=o), status="taken")
        for o in range(28)
        for _ in range(rng.randint(0, 2))
    ]
    doses += [
        DoseLogFactory.build(prescription=injection, scheduled_date=today - timedelta(days=d), status="taken")
        for d in rng.sample([2, 20, 30, 45, 50], k=rng.randint(0, 3))
    ]
    DoseLog.objects.bulk_create(doses)
    if rng.random() < 0.7:
        QuestionnaireResponseFactory(
            patient=patient,
            instrument="uct",
            answers={"items": [2, 2, 2, 2]},
            score=rng.randint(0, 16),
            period_end=today - timedelta(days=rng.randint(0, 20)),
        )
    return patient


def test_list_values_equal_the_score_functions(request: pytest.FixtureRequest, clinic_a: Clinic) -> None:
    with tenant_context(clinic_a):
        today = Patient(timezone="UTC").local_today()
        patients = [seed_patient(n, today, n) for n in range(12)]
    rows = {
        r["id"]: r
        for r in client_for(request, "carol").get("/api/v1/portal/patients/?limit=200").json()["results"]
    }
    with tenant_context(clinic_a):
        for patient in patients:
            summary, _ = summary_get(patient)
            row = rows[str(patient.pk)]
            assert (row["uas7"], row["uas7_method"], row["band"], row["week_end"]) == (
                None if summary.current.uas7 is None else float(summary.current.uas7),
                summary.current.method,
                summary.current.band,
                summary.week_end.isoformat(),
            ), patient.display_name
            assert row["previous_uas7"] == (
                None if summary.previous.uas7 is None else float(summary.previous.uas7)
            )
            assert row["uas7_change"] == (
                None if summary.change.delta is None else float(summary.change.delta)
            )
            assert row["uct"] == (summary.uct.score if summary.uct else None)
            assert row["last_uct"] == (summary.last_uct.score if summary.last_uct else None)
            assert row["pdc_28d"] == summary.lowest_pdc, patient.display_name
            assert row["adherence"] == [adherence_json(a) for a in summary.adherence]
            assert row["diary_completion_28d"] == summary.diary_completion
            assert row["diary_gap_days"] == summary.diary_gap


def _list_queries(client: APIClient, query: str = "") -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/api/v1/portal/patients/?limit=50{query}").status_code == 200
    return len(captured)


def test_list_query_count_is_the_same_for_5_and_200_patients(
    request: pytest.FixtureRequest, clinic_a: Clinic
) -> None:
    admin = client_for(request, "carol")
    with tenant_context(clinic_a):
        today = Patient(timezone="UTC").local_today()
        for n in range(5):
            seed_patient(n, today, n)
        summaries_roll()  # patients made through the ORM: their rows start stale
    admin.get("/api/v1/portal/patients/")  # warm caches
    small = (_list_queries(admin), _list_queries(admin, "&sort=-uas7"))
    with tenant_context(clinic_a):
        for n in range(5, 200):
            seed_patient(n, today, n)
        summaries_roll()
    assert (_list_queries(admin), _list_queries(admin, "&sort=-uas7")) == small


def test_filters_sorting_and_cursor_pages(request: pytest.FixtureRequest, clinic_a: Clinic) -> None:
    admin = client_for(request, "carol")
    with tenant_context(clinic_a):
        today = Patient(timezone="UTC").local_today()
        for n in range(30):
            seed_patient(n, today, n)
    everyone = admin.get("/api/v1/portal/patients/?limit=200&sort=-uas7").json()["results"]
    values = [r["uas7"] for r in everyone]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True) and values[len(present) :] == [None] * (
        len(values) - len(present)
    )
    seen, cursor = [], None
    while True:
        page = admin.get(
            "/api/v1/portal/patients/",
            {"limit": 7, "sort": "-uas7", **({"cursor": cursor} if cursor else {})},
        ).json()
        seen += [r["id"] for r in page["results"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [r["id"] for r in everyone]
    severe = admin.get("/api/v1/portal/patients/?band=severe&limit=200").json()["results"]
    assert all(r["band"] == "severe" for r in severe)
    low = admin.get("/api/v1/portal/patients/?pdc_below=0.5&limit=200").json()["results"]
    assert all(r["pdc_28d"] is not None and r["pdc_28d"] < 0.5 for r in low)
    assert [
        r["display_name"] for r in admin.get("/api/v1/portal/patients/?search=0007").json()["results"]
    ] == ["Patient 0007"]
    assert (
        admin.get("/api/v1/portal/patients/?search=%25").json()["results"] == []
    )  # a literal %, not a wildcard
    tampered = admin.get("/api/v1/portal/patients/", {"sort": "-uas7", "cursor": "abc:def"})
    assert (tampered.status_code, tampered.json()["code"]) == (400, "invalid_cursor")
    assert admin.get("/api/v1/portal/patients/?sort=password").status_code == 400


# --- Alerts -----------------------------------------------------------------------------------


def test_a_flare_opens_one_alert_which_is_not_reopened_while_open(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    with tenant_context(clinic_a):
        for offset in range(14):
            value = 6 if offset < 7 else 1
            DiaryEntryFactory(
                patient=alice_patient,
                day=today - timedelta(days=offset),
                wheals=value // 2,
                itch=value - value // 2,
            )
        clinic = Clinic.objects.get(pk=clinic_a.pk)
        first = alerts_evaluate(patient=alice_patient, clinic=clinic)
        assert sorted(a.kind for a in first) == ["severe_uas7", "uas7_rise"]
        assert alerts_evaluate(patient=alice_patient, clinic=clinic) == []
        assert Alert.objects.filter(patient=alice_patient, kind="severe_uas7").count() == 1
        evidence = Alert.objects.get(kind="severe_uas7").evidence
        assert evidence["uas7"] == 42
    doctor = client_for(request, "dr_bob")
    alerts = doctor.get("/api/v1/portal/alerts/?status=open").json()
    assert sorted(a["kind"] for a in alerts) == ["severe_uas7", "uas7_rise"]
    severe = next(a for a in alerts if a["kind"] == "severe_uas7")
    assert doctor.post(f"/api/v1/portal/alerts/{severe['id']}/acknowledge/").status_code == 200
    assert [a["kind"] for a in doctor.get("/api/v1/portal/alerts/?status=open").json()] == ["uas7_rise"]
    with tenant_context(clinic_a):
        assert (
            alerts_evaluate(patient=alice_patient, clinic=Clinic.objects.get(pk=clinic_a.pk)) == []
        )  # acknowledged still open
    assert doctor.post(f"/api/v1/portal/alerts/{severe['id']}/resolve/").status_code == 200
    assert doctor.post(f"/api/v1/portal/alerts/{severe['id']}/resolve/").status_code == 409
    with tenant_context(clinic_a):
        reopened = alerts_evaluate(patient=alice_patient, clinic=Clinic.objects.get(pk=clinic_a.pk))
    assert [a.kind for a in reopened] == ["severe_uas7"]  # a new episode after resolution
    assert (
        client_for(request, "erin").post(f"/api/v1/portal/alerts/{severe['id']}/resolve/").status_code == 404
    )


def test_diary_gap_uct_and_adherence_alerts(alice_patient: Patient, clinic_a: Clinic) -> None:
    today = alice_patient.local_today()
    with tenant_context(clinic_a):
        Patient.objects.filter(pk=alice_patient.pk).update(enrolled_at=timezone.now() - timedelta(days=40))
        DiaryEntryFactory(patient=alice_patient, day=today - timedelta(days=4), wheals=1, itch=1)
        QuestionnaireResponseFactory(
            patient=alice_patient,
            instrument="uct",
            answers={"items": [2, 2, 2, 2]},
            score=8,
            period_end=today,
        )
        PrescriptionFactory(
            patient=alice_patient, medication_id="cetirizine-10", start=today - timedelta(days=40)
        )
        kinds = sorted(
            a.kind for a in alerts_evaluate(patient=alice_patient, clinic=Clinic.objects.get(pk=clinic_a.pk))
        )
    assert kinds == ["diary_gap", "low_adherence", "uct_uncontrolled"]


# --- Notes, prescriptions, timeline, audit ------------------------------------------------------


def test_notes_are_ciphertext_at_rest_immutable_and_readable_after_key_rotation(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, clinic_a: Clinic
) -> None:
    doctor = client_for(request, "dr_bob")
    note = doctor.post(
        f"/api/v1/portal/patients/{alice_patient.pk}/notes/",
        {"body": "Flare after NSAIDs; step up."},
        format="json",
    ).json()
    correction = doctor.post(
        f"/api/v1/portal/patients/{alice_patient.pk}/notes/",
        {"body": "Correction: after aspirin.", "corrects": note["id"]},
        format="json",
    )
    assert correction.status_code == 201 and correction.json()["corrects"] == note["id"]
    with tenant_context(clinic_a), connection.cursor() as cursor:
        cursor.execute("SELECT body_encrypted FROM clinicians_clinicalnote WHERE id = %s", [note["id"]])
        (stored,) = cursor.fetchone()
        assert "NSAID" not in stored
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            cursor.execute("UPDATE clinicians_clinicalnote SET author_id = %s", [str(uuid.uuid4())])
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            cursor.execute("DELETE FROM clinicians_clinicalnote")

    from django.conf import settings

    old_key = (settings.FIELD_ENCRYPTION_KEYS or [None])[0]
    new_key = Fernet.generate_key().decode()
    from core import crypto

    keys_before = [k for k in [old_key] if k] or [crypto._DEV_KEY.decode()]
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, *keys_before]):
        call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
        with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):  # the old key is gone
            bodies = [
                n["body"] for n in doctor.get(f"/api/v1/portal/patients/{alice_patient.pk}/notes/").json()
            ]
    assert sorted(bodies) == ["Correction: after aspirin.", "Flare after NSAIDs; step up."]


def test_prescription_history_and_stop(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient
) -> None:
    doctor = client_for(request, "dr_bob")
    path = f"/api/v1/portal/patients/{alice_patient.pk}/prescriptions/"
    first = doctor.post(
        path,
        {"medication": "cetirizine-10", "dose": "10 mg", "guideline_step": 1, "start": "2026-01-01"},
        format="json",
    ).json()
    assert (first["frequency_kind"], first["frequency_value"]) == ("n_per_day", 1)
    stopped = doctor.post(
        f"/api/v1/portal/prescriptions/{first['id']}/stop/", {"end": "2026-02-01"}, format="json"
    )
    assert stopped.status_code == 200 and stopped.json()["end"] == "2026-02-01"
    assert (
        doctor.post(
            f"/api/v1/portal/prescriptions/{first['id']}/stop/", {"end": "2026-03-01"}, format="json"
        ).status_code
        == 409
    )
    doctor.post(
        path,
        {"medication": "cetirizine-10-x4", "dose": "4 × 10 mg", "guideline_step": 2, "start": "2026-02-02"},
        format="json",
    )
    assert [p["medication"] for p in doctor.get(path).json()] == ["cetirizine-10-x4", "cetirizine-10"]
    unknown = doctor.post(
        path,
        {"medication": "aspirin", "dose": "1", "guideline_step": 1, "start": "2026-01-01"},
        format="json",
    )
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_medication")
    bad_step = doctor.post(
        path,
        {"medication": "cetirizine-10", "dose": "1", "guideline_step": 5, "start": "2026-01-01"},
        format="json",
    )
    assert bad_step.status_code == 400 and "guideline_step" in bad_step.json()["errors"]


def test_timeline_merges_events_newest_first_with_cursor(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, alice_client: APIClient
) -> None:
    doctor = client_for(request, "dr_bob")
    today = alice_patient.local_today()
    for offset in range(3):
        alice_client.put(
            f"/api/v1/me/diary/{today - timedelta(days=offset)}/",
            {"wheals": 1, "itch": 1, "note": f"day {offset}"},
            format="json",
        )
    doctor.post(f"/api/v1/portal/patients/{alice_patient.pk}/notes/", {"body": "Reviewed."}, format="json")
    full = doctor.get(f"/api/v1/portal/patients/{alice_patient.pk}/timeline/").json()
    kinds = [e["kind"] for e in full["results"]]
    assert kinds[0] == "note" and kinds.count("diary") == 3
    assert [e["at"] for e in full["results"]] == sorted((e["at"] for e in full["results"]), reverse=True)
    assert full["results"][0]["data"]["body"] == "Reviewed."
    paged, cursor = [], None
    while True:
        page = doctor.get(
            f"/api/v1/portal/patients/{alice_patient.pk}/timeline/",
            {"limit": 2, **({"cursor": cursor} if cursor else {})},
        ).json()
        paged += [e["id"] for e in page["results"]]
        cursor = page["next"]
        if not cursor:
            break
    assert paged == [e["id"] for e in full["results"]]


def test_portal_reads_are_in_the_access_log_and_admins_can_list_it(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, dr_bob: User, clinic_a: Clinic
) -> None:
    doctor = client_for(request, "dr_bob")
    doctor.get(f"/api/v1/portal/patients/{alice_patient.pk}/")
    doctor.get(f"/api/v1/portal/patients/{alice_patient.pk}/timeline/")
    doctor.get("/api/v1/portal/patients/")
    log = (
        client_for(request, "carol")
        .get("/api/v1/admin/access-log/", {"patient": str(alice_patient.pk)})
        .json()
    )
    actions = [(row["action"], row["actor_id"]) for row in log]
    for action in ("portal.patient_detail", "portal.timeline", "portal.patient_list"):
        assert (action, str(dr_bob.pk)) in actions
    assert (
        client_for(request, "dr_bob")
        .get("/api/v1/admin/access-log/", {"patient": str(alice_patient.pk)})
        .status_code
        == 403
    )


def test_enrolling_a_patient_puts_the_clinician_on_the_care_team(
    request: pytest.FixtureRequest, dr_bob: User, clinic_a: Clinic
) -> None:
    doctor = client_for(request, "dr_bob")
    created = doctor.post(
        "/api/v1/portal/patients/", {"display_name": "Frank", "diary_mode": "twice"}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert len(body["enrollment_code"]) == 9
    assert doctor.get(f"/api/v1/portal/patients/{body['id']}/").json()["diary_mode"] == "twice"
    enrolled = host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {
            "code": body["enrollment_code"],
            "email": "frank@example.com",
            "password": "frank's passphrase",
            "privacy_notice_version": 1,
        },
        format="json",
    )
    assert enrolled.status_code == 201
    with tenant_context(clinic_a):
        assert Patient.objects.get(pk=body["id"]).user_id == uuid.UUID(enrolled.json()["user_id"])
    bad = doctor.post(
        "/api/v1/portal/patients/", {"display_name": "G", "timezone": "Nowhere/Town"}, format="json"
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_timezone")


def test_a_refusal_reads_like_a_missing_object(
    request: pytest.FixtureRequest, team: CareTeam, clinic_a: Clinic, alice_patient: Patient
) -> None:
    """404 bodies don't tell another patient's object from one that does not exist."""
    with tenant_context(clinic_a):
        alert = Alert.objects.create(patient=alice_patient, kind="severe")
    client = client_for(request, "erin")
    theirs = client.post(f"/api/v1/portal/alerts/{alert.pk}/acknowledge/")
    missing = client.post(f"/api/v1/portal/alerts/{uuid.uuid4()}/acknowledge/")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
