"""Reminders: the patient's API, dispatch exactly once per local date (DST, quiet hours, skips,
catch-up after downtime) and delivery by Web Push (fake loopback push service) or email."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from core.models import OutboxMessage
from patients import push
from patients.consent import consent_accept, consent_withdraw
from patients.models import (
    DeliveryStatus,
    Patient,
    PushSubscription,
    Reminder,
    ReminderDelivery,
)
from patients.reminders import (
    push_subscription_register,
    reminder_deliver,
    reminder_save,
    reminders_dispatch_due,
    reminders_reschedule,
)
from tenants.models import Clinic
from tests.conftest import authed_client, host_client, make_member
from tests.factories import DiaryEntryFactory, PatientFactory, PrescriptionFactory
from tests.fakes import BrowserKeys, fake_push_service

pytestmark = pytest.mark.django_db


def reminder_at(patient: Patient, local_time: time, *, now: datetime, **kwargs: object) -> Reminder:
    reminder, _ = reminder_save(
        patient=patient, kind=kwargs.pop("kind", "diary"), local_time=local_time, **kwargs
    )  # type: ignore[arg-type]
    reminders_reschedule(patient=patient, now=now)
    reminder.refresh_from_db()
    return reminder


def deliveries(reminder: Reminder) -> list[tuple[date, str, str]]:
    return list(
        ReminderDelivery.objects.filter(reminder=reminder)
        .order_by("local_date")
        .values_list("local_date", "status", "reason")
    )


# --- API ------------------------------------------------------------------------------------------


def test_patient_creates_lists_changes_and_deletes_a_reminder(
    alice_client: APIClient, clinic_a: Clinic
) -> None:
    reminder_id = str(uuid.uuid4())
    berlin = Patient(timezone="Europe/Berlin").tz
    asked_at = datetime.now(berlin)
    created = alice_client.post(
        "/api/v1/me/reminders/",
        {"id": reminder_id, "kind": "diary", "local_time": "20:30", "days_of_week": [5, 1, 1]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["id"], body["local_time"], body["days_of_week"], body["enabled"]) == (
        reminder_id,
        "20:30",
        [1, 5],
        True,
    )
    # The first Monday or Friday 20:30 in Berlin still ahead.
    upcoming = (
        datetime.combine(asked_at.date() + timedelta(days=ahead), time(20, 30), tzinfo=berlin)
        for ahead in range(8)
    )
    expected = next(when for when in upcoming if when.isoweekday() in (1, 5) and when > asked_at)
    assert datetime.fromisoformat(body["next_fire_at"]) == expected

    again = alice_client.post(
        "/api/v1/me/reminders/", {"id": reminder_id, "kind": "diary", "local_time": "20:30"}, format="json"
    )
    assert again.status_code == 200  # same device id: the same reminder, not a second one

    changed = alice_client.patch(
        f"/api/v1/me/reminders/{reminder_id}/", {"local_time": "07:15", "enabled": False}, format="json"
    )
    assert changed.status_code == 200
    assert (changed.json()["local_time"], changed.json()["next_fire_at"]) == ("07:15", None)

    listed = alice_client.get("/api/v1/me/reminders/")
    assert [r["id"] for r in listed.json()] == [reminder_id]
    assert listed["Cache-Control"] == "no-store"

    assert alice_client.delete(f"/api/v1/me/reminders/{reminder_id}/").status_code == 204
    assert alice_client.get("/api/v1/me/reminders/").json() == []
    with tenant_context(clinic_a):
        assert Reminder.objects.get(pk=reminder_id).deleted_at is not None  # a tombstone for sync


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"kind": "diary", "local_time": "25:00"}, "local_time", "validation_error"),
        ({"kind": "diary", "local_time": "08:00", "days_of_week": [0]}, "days_of_week", "validation_error"),
        ({"kind": "diary", "local_time": "08:00", "days_of_week": []}, "days_of_week", "validation_error"),
        ({"kind": "nap", "local_time": "08:00"}, "kind", "validation_error"),
        ({"kind": "diary", "local_time": "08:00", "snooze": 5}, "snooze", "validation_error"),
        ({"kind": "medication", "local_time": "08:00"}, "prescription", "validation_error"),
        (
            {"kind": "diary", "local_time": "08:00", "prescription": str(uuid.uuid4())},
            "prescription",
            "validation_error",
        ),
        (
            {"kind": "medication", "local_time": "08:00", "prescription": str(uuid.uuid4())},
            "prescription",
            "not_found",
        ),
    ],
)
def test_bad_reminder_input_is_refused_naming_the_field(
    alice_client: APIClient, clinic_a: Clinic, body: dict[str, object], field: str, code: str
) -> None:
    response = alice_client.post("/api/v1/me/reminders/", body, format="json")
    assert response.status_code == (404 if code == "not_found" else 400)
    problem = response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert problem["code"] == code
    named = {key.split(".")[0] for key in problem.get("errors") or {}} | {problem.get("field")}
    assert field in named
    with tenant_context(clinic_a):
        assert not Reminder.objects.exists()


def test_a_medication_reminder_names_one_of_the_patients_own_prescriptions(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic
) -> None:
    with tenant_context(clinic_a):
        mine = PrescriptionFactory(
            patient=alice_patient, medication_id="cetirizine-10", start=date(2026, 1, 1)
        )
        daves = PrescriptionFactory(
            patient=Patient.objects.get(user_id=dave.pk),
            medication_id="cetirizine-10",
            start=date(2026, 1, 1),
        )
    ok = alice_client.post(
        "/api/v1/me/reminders/",
        {"kind": "medication", "local_time": "08:00", "prescription": str(mine.pk)},
        format="json",
    )
    assert ok.status_code == 201
    assert ok.json()["prescription"] == str(mine.pk)
    theirs = alice_client.post(
        "/api/v1/me/reminders/",
        {"kind": "medication", "local_time": "08:00", "prescription": str(daves.pk)},
        format="json",
    )
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")


def test_reminder_endpoints_are_closed_to_everyone_but_the_patient(
    alice_client: APIClient,
    alice_patient: Patient,
    dave: User,
    dr_bob: User,
    mallory: User,
    clinic_a: Clinic,
    clinic_b: Clinic,
) -> None:
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(9, 0), now=datetime.now(UTC))
    url = f"/api/v1/me/reminders/{reminder.pk}/"
    anonymous = host_client("alpha.localhost")
    assert anonymous.get("/api/v1/me/reminders/").status_code == 401
    assert anonymous.patch(url, {"enabled": False}, format="json").status_code == 401
    assert authed_client(dr_bob, clinic_a).get("/api/v1/me/reminders/").status_code == 403
    other_clinic = authed_client(mallory, clinic_b)
    other_clinic.defaults["HTTP_HOST"] = "alpha.localhost"  # a beta token on alpha's host
    assert other_clinic.get("/api/v1/me/reminders/").status_code == 401
    dave_client = authed_client(dave, clinic_a)
    assert dave_client.get("/api/v1/me/reminders/").json() == []
    assert dave_client.patch(url, {"enabled": False}, format="json").status_code == 404
    assert dave_client.delete(url).status_code == 404
    assert (
        dave_client.post(
            "/api/v1/me/reminders/",
            {"id": str(reminder.pk), "kind": "diary", "local_time": "10:00"},
            format="json",
        ).status_code
        == 404
    )
    with tenant_context(clinic_a):
        reminder.refresh_from_db()
        assert (reminder.enabled, reminder.local_time, reminder.deleted_at) == (True, time(9, 0), None)


def test_push_subscriptions_register_once_per_endpoint_and_only_for_known_push_services(
    alice_client: APIClient, dave: User, clinic_a: Clinic
) -> None:
    keys = BrowserKeys.new()
    body = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
        "keys": {"p256dh": keys.p256dh, "auth": keys.auth},
    }
    first = alice_client.post("/api/v1/me/push-subscriptions/", body, format="json")
    assert first.status_code == 201, first.json()
    assert alice_client.post("/api/v1/me/push-subscriptions/", body, format="json").status_code == 200
    listed = alice_client.get("/api/v1/me/push-subscriptions/").json()
    assert listed["vapid_public_key"]
    assert [s["endpoint"] for s in listed["subscriptions"]] == [body["endpoint"]]

    internal = alice_client.post(
        "/api/v1/me/push-subscriptions/",
        {**body, "endpoint": "https://169.254.169.254/latest"},
        format="json",
    )
    assert (internal.status_code, internal.json()["code"], list(internal.json()["errors"])) == (
        400,
        "push_endpoint_not_allowed",
        ["endpoint"],
    )
    bad_keys = alice_client.post(
        "/api/v1/me/push-subscriptions/", {**body, "keys": {"p256dh": "x", "auth": keys.auth}}, format="json"
    )
    assert bad_keys.status_code == 400
    assert list(bad_keys.json()["errors"]) == ["keys.p256dh"]

    subscription_id = first.json()["id"]
    assert (
        authed_client(dave, clinic_a).delete(f"/api/v1/me/push-subscriptions/{subscription_id}/").status_code
        == 404
    )
    assert alice_client.delete(f"/api/v1/me/push-subscriptions/{subscription_id}/").status_code == 204
    with tenant_context(clinic_a):
        assert not PushSubscription.objects.exists()


def test_changing_the_timezone_moves_the_next_reminder(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    created = alice_client.post(
        "/api/v1/me/reminders/", {"kind": "diary", "local_time": "20:00"}, format="json"
    ).json()
    alice_client.patch("/api/v1/me/profile/", {"timezone": "America/New_York"}, format="json")
    moved = alice_client.get("/api/v1/me/reminders/").json()[0]
    before = datetime.fromisoformat(created["next_fire_at"])
    after = datetime.fromisoformat(moved["next_fire_at"])
    local = after.astimezone(Patient(timezone="America/New_York").tz)
    assert (local.hour, local.minute) == (20, 0)
    assert after != before


# --- Dispatch -------------------------------------------------------------------------------------


def test_the_dispatcher_run_twice_in_the_same_minute_records_one_delivery(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 20:00 in Berlin
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(20, 0), now=now - timedelta(minutes=5))
        first = reminders_dispatch_due(now=now)
        second = reminders_dispatch_due(now=now + timedelta(seconds=20))
        assert (first.due, first.queued, second.due) == (1, 1, 0)
        assert deliveries(reminder) == [(date(2026, 11, 23), "pending", "")]
        assert OutboxMessage.objects.filter(task_name="patients.reminder_deliver").count() == 1
        reminder.refresh_from_db()
        assert reminder.next_fire_at == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


def test_a_reminder_changed_after_firing_does_not_fire_again_that_day(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 Berlin
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(8, 0), now=now - timedelta(minutes=1))
        reminders_dispatch_due(now=now)
        reminder_save(patient=alice_patient, reminder_id=reminder.pk, kind="diary", local_time=time(9, 0))
        reminders_reschedule(patient=alice_patient, now=now)
        result = reminders_dispatch_due(now=now + timedelta(hours=1))
        assert (result.due, result.duplicates) == (1, 1)
        assert deliveries(reminder) == [(date(2026, 11, 23), "pending", "")]


@pytest.mark.parametrize(
    ("first_day", "expected_utc"),
    [
        # Spring forward (2026-03-29): 02:30 does not exist; it fires once, at 03:30 CEST.
        (date(2026, 3, 28), ["2026-03-28 01:30", "2026-03-29 01:30", "2026-03-30 00:30"]),
        # Fall back (2026-10-25): 02:30 happens twice; it fires once, at the first.
        (date(2026, 10, 24), ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"]),
    ],
)
def test_a_0230_reminder_fires_once_per_day_across_dst_changes(
    alice_patient: Patient, clinic_a: Clinic, first_day: date, expected_utc: list[str]
) -> None:
    start = datetime.combine(first_day, time(0, 0), tzinfo=UTC) - timedelta(hours=2)
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(2, 30), now=start)
        now = start
        while now < start + timedelta(days=3):  # the dispatcher every 5 minutes for 3 days
            reminders_dispatch_due(now=now)
            now += timedelta(minutes=5)
        rows = list(ReminderDelivery.objects.filter(reminder=reminder).order_by("scheduled_for"))
    assert [r.local_date for r in rows] == [first_day + timedelta(days=i) for i in range(3)]
    assert [r.scheduled_for.strftime("%Y-%m-%d %H:%M") for r in rows] == expected_utc
    assert {r.status for r in rows} == {"pending"}


def test_a_diary_reminder_is_skipped_when_todays_entry_exists(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(20, 0), now=now - timedelta(hours=1))
        DiaryEntryFactory(patient=alice_patient, day=date(2026, 11, 23), wheals=1, itch=1)
        result = reminders_dispatch_due(now=now)
        assert (result.queued, result.skipped) == (0, 1)
        assert deliveries(reminder) == [(date(2026, 11, 23), "skipped", "already_recorded")]
        assert not OutboxMessage.objects.exists()


def test_no_reminder_is_sent_during_the_patients_quiet_hours(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 Berlin
    with tenant_context(clinic_a):
        alice_patient.quiet_hours_start, alice_patient.quiet_hours_end = time(22, 0), time(7, 0)
        alice_patient.save()
        reminder = reminder_at(alice_patient, time(23, 30), now=now - timedelta(minutes=1))
        reminders_dispatch_due(now=now)
        assert deliveries(reminder) == [(date(2026, 11, 23), "skipped", "quiet_hours")]


def test_after_ten_minutes_of_downtime_due_reminders_are_sent_once_and_stale_ones_not_at_all(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    down_since = datetime(2026, 11, 23, 17, 55, tzinfo=UTC)
    back = down_since + timedelta(minutes=10)  # 19:05 Berlin
    with tenant_context(clinic_a):
        recent = reminder_at(alice_patient, time(18, 58), now=down_since)  # 7 minutes late: still sent
        stale = reminder_at(alice_patient, time(17, 0), now=down_since - timedelta(hours=2))  # 2 h late
        first = reminders_dispatch_due(now=back)
        again = reminders_dispatch_due(now=back + timedelta(seconds=30))
        assert (first.due, first.queued, first.expired, again.due) == (2, 1, 1, 0)
        assert deliveries(recent) == [(date(2026, 11, 23), "pending", "")]
        assert deliveries(stale) == [(date(2026, 11, 23), "expired", "late")]
        stale.refresh_from_db()
        assert stale.next_fire_at == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # tomorrow, not a backlog


# --- Delivery -------------------------------------------------------------------------------------


def _pending_delivery(patient: Patient, now: datetime) -> ReminderDelivery:
    reminder = reminder_at(
        patient,
        now.astimezone(patient.tz).time().replace(second=0, microsecond=0),
        now=now - timedelta(minutes=1),
    )
    reminders_dispatch_due(now=now)
    return ReminderDelivery.objects.get(reminder=reminder)


def _subscribe(patient: Patient, endpoint: str) -> BrowserKeys:
    keys = BrowserKeys.new()
    push_subscription_register(patient=patient, endpoint=endpoint, p256dh=keys.p256dh, auth=keys.auth)
    return keys


def test_a_reminder_is_pushed_with_a_payload_that_carries_no_health_data(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with fake_push_service() as service, tenant_context(clinic_a):
        keys = _subscribe(alice_patient, f"{service.base_url}/push/alice")
        delivery = _pending_delivery(alice_patient, now)
        assert reminder_deliver(delivery_id=delivery.pk, now=now) == "sent"
        delivery.refresh_from_db()
        assert (delivery.status, delivery.channel, delivery.attempts) == ("sent", "push", 1)
        assert reminder_deliver(delivery_id=delivery.pk, now=now) == "not_pending"  # a redelivered task
    assert len(service.received) == 1
    path, headers, body = service.received[0]
    assert path == "/push/alice"
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["authorization"].startswith("vapid t="), headers
    payload = json.loads(keys.decrypt(body))
    assert payload == {"type": "reminder", "delivery": str(delivery.pk)}
    assert "Alice" not in json.dumps(payload)
    assert mail.outbox == []


def test_an_expired_push_subscription_is_removed_and_the_reminder_goes_by_email(
    alice_patient: Patient, alice: User, clinic_a: Clinic
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with fake_push_service() as service, tenant_context(clinic_a):
        service.statuses["/push/gone"] = 410
        _subscribe(alice_patient, f"{service.base_url}/push/gone")
        delivery = _pending_delivery(alice_patient, now)
        assert reminder_deliver(delivery_id=delivery.pk, now=now) == "sent"
        assert not PushSubscription.objects.exists()
        delivery.refresh_from_db()
        assert delivery.channel == "email"
    assert [m.to for m in mail.outbox] == [[alice.email]]
    assert "Alice" not in mail.outbox[0].body and "urticaria" not in mail.outbox[0].body.lower()


def test_a_push_service_outage_is_retried_and_the_last_attempt_falls_back_to_email(
    alice_patient: Patient, alice: User, clinic_a: Clinic
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with fake_push_service() as service, tenant_context(clinic_a):
        service.statuses["/push/busy"] = 503
        _subscribe(alice_patient, f"{service.base_url}/push/busy")
        delivery = _pending_delivery(alice_patient, now)
        with pytest.raises(push.TransientDeliveryError):
            reminder_deliver(delivery_id=delivery.pk, now=now)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", 1)  # released for the retry
        assert (
            reminder_deliver(delivery_id=delivery.pk, now=now + timedelta(minutes=2), final_attempt=True)
            == "sent"
        )
        delivery.refresh_from_db()
        assert (delivery.channel, delivery.attempts) == ("email", 2)
        assert PushSubscription.objects.count() == 1  # a 503 does not remove the subscription
    assert len(service.received) == 2
    assert len(mail.outbox) == 1


def test_a_retry_never_sends_a_reminder_more_than_an_hour_late(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tenant_context(clinic_a):
        delivery = _pending_delivery(alice_patient, now)
        assert (
            reminder_deliver(delivery_id=delivery.pk, now=now + timedelta(minutes=61))
            == DeliveryStatus.EXPIRED
        )
    assert mail.outbox == []


def test_a_patient_without_an_account_or_subscription_gets_a_failed_no_channel_delivery(
    clinic_a: Clinic,
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tenant_context(clinic_a):
        patient = PatientFactory(display_name="Not yet enrolled", timezone="Europe/Berlin")
        delivery = _pending_delivery(patient, now)
        assert reminder_deliver(delivery_id=delivery.pk, now=now) == "failed"
        delivery.refresh_from_db()
        assert delivery.reason == "no_channel"


def test_reminders_sync_down_and_up(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    client_id = str(uuid.uuid4())
    reminder_id = str(uuid.uuid4())
    pushed = alice_client.post(
        "/api/v1/sync/push/",
        {
            "client_id": client_id,
            "schema_version": 1,
            "mutations": [
                {
                    "mutation_id": 1,
                    "table": "reminder",
                    "op": "upsert",
                    "id": reminder_id,
                    "fields": {"kind": "diary", "local_time": "21:00", "days_of_week": [1, 2, 3]},
                },
                {
                    "mutation_id": 2,
                    "table": "reminder",
                    "op": "upsert",
                    "id": str(uuid.uuid4()),
                    "fields": {"kind": "diary", "local_time": "nine"},
                },
            ],
        },
        format="json",
    )
    assert pushed.status_code == 200, pushed.json()
    statuses = [(r["status"], (r.get("reason") or {}).get("field")) for r in pushed.json()["results"]]
    assert statuses == [("applied", None), ("rejected", "local_time")]
    pulled = alice_client.get("/api/v1/sync/pull/", HTTP_X_SCHEMA_VERSION="1").json()
    assert [
        (r["id"], r["local_time"], r["days_of_week"]) for r in pulled["changes"]["reminder"]["upserted"]
    ] == [(reminder_id, "21:00", [1, 2, 3])]
    with tenant_context(clinic_a):
        reminder = Reminder.objects.get(pk=reminder_id)
        version = reminder.server_version
        reminders_dispatch_due(now=reminder.next_fire_at + timedelta(seconds=1))
        reminder.refresh_from_db()
        assert reminder.server_version == version  # advancing the schedule is not a sync change
    later = alice_client.get(
        "/api/v1/sync/pull/", {"cursor": pulled["cursor"]}, HTTP_X_SCHEMA_VERSION="1"
    ).json()
    assert "reminder" not in later["changes"]


def test_another_clinics_patient_never_sees_alphas_reminders(
    clinic_a: Clinic, clinic_b: Clinic, alice_patient: Patient
) -> None:
    zoe = make_member("zoe@example.com", clinic_b, "patient")
    with tenant_context(clinic_b):
        PatientFactory(user_id=zoe.pk, display_name="Zoe", timezone="America/New_York")
    with tenant_context(clinic_a):
        reminder_at(alice_patient, time(9, 0), now=datetime.now(UTC))
    assert authed_client(zoe, clinic_b).get("/api/v1/me/reminders/").json() == []


def test_a_paused_patients_reminders_are_skipped_and_resume_when_active_again(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(20, 0), now=now - timedelta(minutes=5))
        Patient.objects.filter(pk=alice_patient.pk).update(status="paused")
        reminders_dispatch_due(now=now)
        Patient.objects.filter(pk=alice_patient.pk).update(status="active")
        reminders_dispatch_due(now=now + timedelta(days=1))
        assert deliveries(reminder) == [
            (date(2026, 11, 23), "skipped", "patient_inactive"),
            (date(2026, 11, 24), "pending", ""),
        ]


def test_a_patient_who_withdrew_consent_is_not_reminded_until_they_agree_again(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    """Nothing the patient records is stored while they have withdrawn their consent to the
    privacy notice (patients.consent), so nothing asks them to record it."""
    with tenant_context(clinic_a):
        never_agreed = PatientFactory(display_name="Enrolled before consent", timezone="Europe/Berlin")
    now = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(20, 0), now=now - timedelta(minutes=5))
        nudged = reminder_at(never_agreed, time(20, 0), now=now - timedelta(minutes=5))
        consent_withdraw(patient=alice_patient, actor_id=alice_patient.user_id)
        reminders_dispatch_due(now=now)
        consent_accept(patient=alice_patient, version=1, actor_id=alice_patient.user_id)
        reminders_dispatch_due(now=now + timedelta(days=1))
        assert deliveries(reminder) == [
            (date(2026, 11, 23), "skipped", "no_consent"),
            (date(2026, 11, 24), "pending", ""),
        ]
        # Not yet agreed (no consent rows): reminded, and the app asks for the agreement.
        assert deliveries(nudged)[0] == (date(2026, 11, 23), "pending", "")


# --- Hardening (independent review) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.0.0.5:8443\\@fcm.googleapis.com/x",  # urllib and urllib3 disagree on the host
        "https://user@fcm.googleapis.com/x",
        "https://fcm.googleapis.com:8443/x",
        "http://fcm.googleapis.com/x",
        "https://fcm.googleapis.com.evil.example/x",
    ],
)
@override_settings(WEB_PUSH_ALLOW_HTTP=False)  # the test settings allow http for the loopback fake
def test_push_endpoints_that_could_reach_another_host_are_refused(
    alice_client: APIClient, clinic_a: Clinic, endpoint: str
) -> None:
    keys = BrowserKeys.new()
    response = alice_client.post(
        "/api/v1/me/push-subscriptions/",
        {"endpoint": endpoint, "keys": {"p256dh": keys.p256dh, "auth": keys.auth}},
        format="json",
    )
    assert response.status_code == 400
    with tenant_context(clinic_a):
        assert not PushSubscription.objects.exists()


def test_a_push_key_that_is_not_a_curve_point_is_refused(alice_client: APIClient) -> None:
    import base64
    import os

    not_a_point = base64.urlsafe_b64encode(b"\x04" + os.urandom(64)).rstrip(b"=").decode()
    response = alice_client.post(
        "/api/v1/me/push-subscriptions/",
        {
            "endpoint": "https://fcm.googleapis.com/fcm/send/x",
            "keys": {"p256dh": not_a_point, "auth": BrowserKeys.new().auth},
        },
        format="json",
    )
    assert (response.status_code, list(response.json()["errors"])) == (400, ["keys.p256dh"])


def test_a_broken_subscription_does_not_stop_the_email_fallback(
    alice_patient: Patient, alice: User, clinic_a: Clinic
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with fake_push_service() as service, tenant_context(clinic_a):
        PushSubscription.objects.create(
            patient=alice_patient, endpoint=f"{service.base_url}/push/broken", p256dh="A" * 87, auth="B" * 22
        )
        delivery = _pending_delivery(alice_patient, now)
        assert reminder_deliver(delivery_id=delivery.pk, now=now) == "sent"
        delivery.refresh_from_db()
        assert delivery.channel == "email"
    assert [m.to for m in mail.outbox] == [[alice.email]]


def test_a_delivery_whose_worker_died_mid_send_is_retried_then_swept_never_lost(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    from patients.reminders import DeliveryInProgress, reminder_deliveries_sweep

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tenant_context(clinic_a):
        delivery = _pending_delivery(alice_patient, now)
        ReminderDelivery.objects.filter(pk=delivery.pk).update(
            status="sending", claimed_at=now
        )  # then SIGKILL
        with pytest.raises(DeliveryInProgress):  # the redelivered message waits for the claim to time out
            reminder_deliver(delivery_id=delivery.pk, now=now + timedelta(seconds=5))
        assert reminder_deliveries_sweep(now=now + timedelta(minutes=1)) == {"expired": 0, "requeued": 0}
        assert reminder_deliveries_sweep(now=now + timedelta(minutes=6)) == {"expired": 0, "requeued": 1}
        delivery.refresh_from_db()
        assert (delivery.status, delivery.claimed_at) == ("pending", None)
        assert reminder_deliver(delivery_id=delivery.pk, now=now + timedelta(minutes=7)) == "sent"
        ReminderDelivery.objects.filter(pk=delivery.pk).update(status="sending", claimed_at=now)
        assert reminder_deliveries_sweep(now=now + timedelta(minutes=61)) == {"expired": 1, "requeued": 0}
        delivery.refresh_from_db()
        assert (delivery.status, delivery.reason) == ("expired", "late")


def test_an_edit_while_an_occurrence_is_due_does_not_drop_it(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    due = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 20:00 Berlin
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(20, 0), now=due - timedelta(minutes=5))
        reminders_reschedule(patient=alice_patient, now=due + timedelta(seconds=30))  # e.g. a timezone edit
        reminder.refresh_from_db()
        assert reminder.next_fire_at == due
        reminders_dispatch_due(now=due + timedelta(seconds=40))
        assert deliveries(reminder) == [(date(2026, 11, 23), "pending", "")]


def test_a_disabled_reminder_never_fires_even_with_a_stale_schedule(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    now = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    with tenant_context(clinic_a):
        reminder = reminder_at(alice_patient, time(20, 0), now=now - timedelta(minutes=5))
        Reminder.objects.filter(pk=reminder.pk).update(enabled=False)  # schedule left behind by a race
        assert reminders_dispatch_due(now=now).due == 0
        assert deliveries(reminder) == []
