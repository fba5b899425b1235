from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from onboarding.management.commands.seed_demo import DEMO_PEOPLE

from accounts.models import Membership
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
            # Any method is right: the demo skips diary days at random (seeded by the patient's
            # new id), so this week may be complete, prorated or, rarely, too sparse to score.
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


def test_each_demo_clinician_sees_their_care_team_patients_in_the_portal() -> None:
    """A newcomer signing in as dr.weber (or dr.okafor) finds patients in the portal, not an
    empty list; seeding again adds no second assignment."""
    from django.core.cache import cache
    from onboarding.management.commands.seed_demo import DEMO_CARE_TEAMS

    cache.clear()  # host and membership entries of a demo clinic an earlier test rolled back
    with override_settings(ALLOW_DEMO_SEED=True):
        call_command("seed_demo", stdout=StringIO())
        call_command("seed_demo", stdout=StringIO())
    client = host_client("demo.localhost")
    names = {email: name for email, name, _, _ in DEMO_PEOPLE}
    for clinician in ("dr.weber@demo.example", "dr.okafor@demo.example"):
        password = next(p for email, _, _, p in DEMO_PEOPLE if email == clinician)
        token = client.post(
            "/api/v1/auth/token/", {"email": clinician, "password": password}, format="json"
        ).json()["access"]
        response = client.get("/api/v1/portal/patients/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.json()
        listed = sorted(row["display_name"] for row in response.json()["results"])
        expected = sorted(names[patient] for c, patient, _ in DEMO_CARE_TEAMS if c == clinician)
        assert listed, f"{clinician} sees an empty portal"
        assert listed == expected
        # Seeded weeks show up in the list (the rows come from the patients' summaries).
        assert all(row["last_entry"] is not None for row in response.json()["results"])
