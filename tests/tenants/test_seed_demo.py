from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import Membership
from tenants.management.commands.seed_demo import DEMO_PEOPLE
from tenants.models import Clinic
from tests.conftest import host_client

pytestmark = pytest.mark.django_db


def test_demo_seed_is_idempotent_and_its_logins_work(capsys: pytest.CaptureFixture[str]) -> None:
    with override_settings(ALLOW_DEMO_SEED=True):
        call_command("seed_demo")
        call_command("seed_demo")
    roles = sorted(Membership.objects.filter(clinic__slug="demo").values_list("role", flat=True))
    assert roles == ["clinic_admin", "clinician", "clinician", "patient", "patient", "patient"]
    output = capsys.readouterr().out
    for email, _, _role, password in DEMO_PEOPLE:
        assert email in output and password in output
        response = host_client("demo.localhost").post(
            "/api/v1/auth/token/", {"email": email, "password": password}, format="json"
        )
        assert response.status_code == 200, (email, response.json())
        if _role == "patient":
            summary = host_client("demo.localhost").get(
                "/api/v1/me/summary/", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}"
            )
            assert summary.status_code == 200
            body = summary.json()
            # Eight weeks of data: a weekly score with a band, and a 28-day PDC per regimen.
            assert body["uas7"]["method"] in ("complete", "prorated", "missing")
            assert len(body["adherence_28d"]) >= 1
            assert all(0 <= a["pdc"] <= 1 for a in body["adherence_28d"] if a["pdc"] is not None)
            uas7 = (
                host_client("demo.localhost")
                .get(
                    "/api/v1/me/scores/uas7/?weeks=8",
                    HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}",
                )
                .json()
            )
            assert sum(1 for week in uas7 if week["uas7"] is not None) >= 6
    from billing.models import Invoice, Subscription

    demo = Clinic.objects.get(slug="demo")
    assert Subscription.objects.get(clinic=demo).plan_id == "clinic"
    invoices = list(Invoice.objects.filter(clinic=demo).order_by("period"))
    assert len(invoices) == 2  # the seed ran twice: still two
    assert all(i.status == "open" and i.total_minor == i.subtotal_minor + i.tax_minor for i in invoices)
    assert invoices[1].lines.get(description="Active patients").quantity == 3


def test_demo_seed_refuses_to_run_without_debug() -> None:
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")
