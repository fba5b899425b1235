"""Push subscriptions belong to one patient: knowing another patient's endpoint is no way to
take over their reminders, and the attempt is audited (security review, issue 14 finding 9)."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from patients.models import AccessLog, Patient, PushSubscription
from tenants.models import Clinic
from tests.conftest import authed_client
from tests.fakes import BrowserKeys

pytestmark = pytest.mark.django_db

ENDPOINT = "https://fcm.googleapis.com/fcm/send/alices-browser"


def subscribe(client: APIClient, keys: BrowserKeys, endpoint: str = ENDPOINT):  # noqa: ANN201
    return client.post(
        "/api/v1/me/push-subscriptions/",
        {"endpoint": endpoint, "keys": {"p256dh": keys.p256dh, "auth": keys.auth}},
        format="json",
    )


def test_another_patient_posting_alices_endpoint_gets_409_and_alices_subscription_stays_hers(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic
) -> None:
    alices_keys, daves_keys = BrowserKeys.new(), BrowserKeys.new()
    created = subscribe(alice_client, alices_keys)
    assert created.status_code == 201, created.json()

    takeover = subscribe(authed_client(dave, clinic_a), daves_keys)

    assert takeover.status_code == 409
    assert takeover["Content-Type"].startswith("application/problem+json")
    assert (takeover.json()["code"], list(takeover.json()["errors"])) == ("push_endpoint_taken", ["endpoint"])
    with tenant_context(clinic_a):
        subscription = PushSubscription.objects.get(endpoint=ENDPOINT)
        assert (str(subscription.pk), subscription.patient_id) == (created.json()["id"], alice_patient.pk)
        assert (subscription.p256dh, subscription.auth) == (alices_keys.p256dh, alices_keys.auth)
        refusal = AccessLog.objects.get(allowed=False)
        assert (refusal.actor_id, refusal.action, refusal.patient_id, refusal.object_id) == (
            dave.pk,
            "push_subscription.register",
            alice_patient.pk,
            created.json()["id"],
        )
    daves_list = authed_client(dave, clinic_a).get("/api/v1/me/push-subscriptions/").json()
    assert daves_list["subscriptions"] == []


def test_the_same_patient_registering_again_refreshes_the_keys(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    assert subscribe(alice_client, BrowserKeys.new()).status_code == 201
    renewed = BrowserKeys.new()
    again = subscribe(alice_client, renewed)
    assert again.status_code == 200
    with tenant_context(clinic_a):
        subscription = PushSubscription.objects.get(endpoint=ENDPOINT)
        assert (subscription.patient_id, subscription.p256dh, subscription.auth) == (
            alice_patient.pk,
            renewed.p256dh,
            renewed.auth,
        )


def test_an_endpoint_released_by_sign_out_can_be_registered_by_the_next_user(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic
) -> None:
    subscription_id = subscribe(alice_client, BrowserKeys.new()).json()["id"]
    assert alice_client.delete(f"/api/v1/me/push-subscriptions/{subscription_id}/").status_code == 204
    assert subscribe(authed_client(dave, clinic_a), BrowserKeys.new()).status_code == 201
