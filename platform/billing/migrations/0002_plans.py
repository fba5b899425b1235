from django.db import migrations

# Prices in euro cents. A plan change is a new row or an edit here plus a data migration.
PLANS = [
    {
        "code": "starter", "name": "Starter", "currency": "EUR", "base_fee_minor": 4900,
        "per_active_patient_minor": 200, "included_clinicians": 2, "per_extra_clinician_minor": 1500,
        "max_clinicians": 3, "max_patients": 100, "trial_days": 30, "rank": 1,
    },
    {
        "code": "clinic", "name": "Clinic", "currency": "EUR", "base_fee_minor": 14900,
        "per_active_patient_minor": 150, "included_clinicians": 10, "per_extra_clinician_minor": 1200,
        "max_clinicians": 25, "max_patients": 1000, "trial_days": 30, "rank": 2,
    },
    {
        "code": "enterprise", "name": "Enterprise", "currency": "EUR", "base_fee_minor": 49900,
        "per_active_patient_minor": 100, "included_clinicians": 50, "per_extra_clinician_minor": 900,
        "max_clinicians": None, "max_patients": None, "trial_days": 30, "rank": 3,
    },
]


def seed(apps, schema_editor):  # noqa: ANN001, ANN201
    Plan = apps.get_model("billing", "Plan")  # noqa: N806
    for plan in PLANS:
        Plan.objects.update_or_create(code=plan["code"], defaults=plan)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_billing")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
