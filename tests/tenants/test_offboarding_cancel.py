"""Offboarding and coming back during the grace period (issue 21, part 3): the request makes the
clinic read-only at once, a cancel (operator API or command) brings it back and deletes the
export, an export still in flight after a cancel records nothing, and reactivate or a second
offboard do what they say."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from core.errors import ApplicationError
from tenants import lifecycle
from tenants.models import Clinic, ClinicStatus
from tests.conftest import authed_client, host_client

pytestmark = pytest.mark.django_db


def exported(clinic: Clinic) -> Clinic:
    """What the enqueued export task does."""
    done = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert done is not None
    return done


def test_offboarding_makes_the_clinic_read_only_before_its_export_runs(
    ops_client: APIClient, carol: User, clinic_a: Clinic, archives: Path
) -> None:
    response = ops_client.post("/api/v1/platform/clinics/alpha/offboard/")
    assert (response.status_code, response.json()["status"], response.json()["has_archive"]) == (
        202,
        "offboarding",
        False,
    )
    clinic_a.refresh_from_db()
    assert clinic_a.status == ClinicStatus.OFFBOARDING and clinic_a.offboarding_started_at is not None
    refused = authed_client(carol, clinic_a).patch("/api/v1/admin/clinic/", {"name": "Late"}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "clinic_offboarding")


def test_the_operator_cancels_offboarding_and_the_clinic_writes_again_without_its_archive(
    ops_client: APIClient,
    carol: User,
    clinic_a: Clinic,
    archives: Path,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    archive = exported(clinic_a).offboarding_archive
    assert (archives / archive).exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = ops_client.post("/api/v1/platform/clinics/alpha/offboard/cancel/", {}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["offboarding_started_at"], body["has_archive"]) == ("active", None, False)
    assert not (archives / archive).exists()
    clinic_a.refresh_from_db()
    assert (clinic_a.status, clinic_a.offboarding_archive, clinic_a.offboarding_archive_sha256) == (
        "active",
        "",
        "",
    )
    admin = authed_client(carol, clinic_a)
    assert admin.patch("/api/v1/admin/clinic/", {"name": "Alpha Stays"}, format="json").status_code == 200
    # Nothing is left for the purge.
    assert lifecycle.clinics_purge_offboarded(now=timezone.now() + timedelta(days=365)) == []


def test_a_cancel_can_return_to_suspended(ops_client: APIClient, carol: User, clinic_a: Clinic) -> None:
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    response = ops_client.post(
        "/api/v1/platform/clinics/alpha/offboard/cancel/", {"to": "suspended"}, format="json"
    )
    assert (response.status_code, response.json()["status"]) == (200, "suspended")
    refused = authed_client(carol, clinic_a).patch("/api/v1/admin/clinic/", {"name": "X"}, format="json")
    assert refused.json()["code"] == "clinic_suspended"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"to": "offboarding"}, "to"), ({"to": "deleted"}, "to"), ({"status": "active"}, "status")],
)
def test_a_cancel_refuses_bad_input_naming_the_field(
    ops_client: APIClient, clinic_a: Clinic, body: dict, field: str
) -> None:
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    response = ops_client.post("/api/v1/platform/clinics/alpha/offboard/cancel/", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == [field]
    clinic_a.refresh_from_db()
    assert clinic_a.status == ClinicStatus.OFFBOARDING


def test_only_an_offboarding_clinic_can_cancel_and_an_offboarding_one_cannot_reactivate(
    ops_client: APIClient, clinic_a: Clinic
) -> None:
    cancel = ops_client.post("/api/v1/platform/clinics/alpha/offboard/cancel/", {}, format="json")
    assert (cancel.status_code, cancel.json()["code"]) == (409, "invalid_status")
    assert (
        ops_client.post("/api/v1/platform/clinics/nope/offboard/cancel/", {}, format="json").status_code
        == 404
    )

    lifecycle.clinic_offboard_request(clinic=clinic_a)
    reactivate = ops_client.post("/api/v1/platform/clinics/alpha/reactivate/")
    assert (reactivate.status_code, reactivate.json()["code"]) == (409, "invalid_status")


def test_a_second_offboard_exports_again_and_keeps_the_grace_period_start(
    ops_client: APIClient, clinic_a: Clinic, archives: Path
) -> None:
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    first = exported(clinic_a)
    response = ops_client.post("/api/v1/platform/clinics/alpha/offboard/")
    assert (response.status_code, response.json()["status"]) == (202, "offboarding")
    second = exported(clinic_a)
    assert second.offboarding_started_at == first.offboarding_started_at
    assert second.offboarding_archive != first.offboarding_archive
    assert lifecycle.clinic_archive_problem(clinic=second) is None


def test_an_export_arriving_after_a_cancel_records_nothing_and_leaves_no_archive(
    clinic_a: Clinic,
    archives: Path,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    lifecycle.clinic_offboard_request(clinic=clinic_a)  # its export message is still queued...
    lifecycle.clinic_offboard_cancel(clinic=clinic_a)  # ...when the operator cancels
    with django_capture_on_commit_callbacks(execute=True):
        late = lifecycle.clinic_offboard(clinic_id=str(clinic_a.pk))
    assert late is not None and late.status == ClinicStatus.ACTIVE
    clinic_a.refresh_from_db()
    assert (clinic_a.status, clinic_a.offboarding_archive) == ("active", "")
    assert not archives.exists() or not any(p.is_file() for p in archives.rglob("*"))


def test_an_export_racing_a_cancel_deletes_its_own_archive(
    clinic_a: Clinic,
    archives: Path,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    real_export = lifecycle.clinic_export

    def export_while_the_operator_cancels(*, clinic: Clinic) -> lifecycle.StoredArchive:
        archive = real_export(clinic=clinic)
        lifecycle.clinic_offboard_cancel(clinic=clinic)
        return archive

    with (
        mock.patch("tenants.lifecycle.clinic_export", export_while_the_operator_cancels),
        django_capture_on_commit_callbacks(execute=True),
    ):
        lifecycle.clinic_offboard(clinic_id=str(clinic_a.pk))
    clinic_a.refresh_from_db()
    assert (clinic_a.status, clinic_a.offboarding_archive) == ("active", "")
    assert not any(p.is_file() for p in archives.rglob("*"))


def test_the_command_cancels_and_explains_refusals(
    clinic_a: Clinic, archives: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CommandError, match="Only an offboarding clinic"):
        call_command("clinic_offboard_cancel", "alpha")
    with pytest.raises(CommandError, match="clinic_import"):
        call_command("clinic_offboard_cancel", "gone")
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    call_command("clinic_offboard_cancel", "alpha", "--suspended")
    assert capsys.readouterr().out.strip() == (
        "clinic alpha is suspended again; its offboarding export was deleted"
    )
    clinic_a.refresh_from_db()
    assert (clinic_a.status, clinic_a.offboarding_started_at) == (ClinicStatus.SUSPENDED, None)


@pytest.mark.parametrize(("host", "expected"), [("localhost", 401), ("alpha.localhost", 404)])
def test_cancel_is_for_operators_on_the_platform_host_only(
    carol: User, clinic_a: Clinic, host: str, expected: int
) -> None:
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    anonymous = host_client(host).post("/api/v1/platform/clinics/alpha/offboard/cancel/", {}, format="json")
    assert anonymous.status_code in (401, 404) and anonymous.status_code == expected
    admin = authed_client(carol, clinic_a)
    admin.defaults["HTTP_HOST"] = host
    response = admin.post("/api/v1/platform/clinics/alpha/offboard/cancel/", {}, format="json")
    assert response.status_code == expected
    clinic_a.refresh_from_db()
    assert clinic_a.status == ClinicStatus.OFFBOARDING


def test_a_cancel_racing_the_purge_answers_404_not_500(
    ops_client: APIClient, clinic_a: Clinic, archives: Path
) -> None:
    stale = Clinic.objects.get(pk=clinic_a.pk)
    lifecycle.clinic_offboard_request(clinic=clinic_a)
    Clinic.objects.filter(pk=clinic_a.pk).delete()  # the purge committed meanwhile
    with pytest.raises(ApplicationError) as gone:
        lifecycle.clinic_offboard_cancel(clinic=stale)
    assert (gone.value.status_code, gone.value.code) == (404, "not_found")
    with pytest.raises(ApplicationError) as gone_too:
        lifecycle.clinic_offboard_request(clinic=stale)
    assert gone_too.value.status_code == 404
