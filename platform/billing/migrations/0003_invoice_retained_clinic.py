"""Invoices outlive their clinic: `clinic` becomes nullable (SET_NULL instead of PROTECT, which
jammed the offboarding purge) and each invoice keeps a retained record of the clinic it billed,
backfilled here from the clinics that exist."""

import django.db.models.deletion
from django.db import migrations, models


def backfill(apps, schema_editor):  # noqa: ANN001, ANN201
    Invoice = apps.get_model("billing", "Invoice")  # noqa: N806
    for invoice in Invoice.objects.filter(billed_clinic_id__isnull=True, clinic__isnull=False).select_related(
        "clinic"
    ):
        invoice.billed_clinic_id = invoice.clinic.pk
        invoice.billed_clinic_slug = invoice.clinic.slug
        invoice.billed_clinic_name = invoice.clinic.name
        invoice.billed_clinic_country = invoice.clinic.country
        invoice.save(
            update_fields=["billed_clinic_id", "billed_clinic_slug", "billed_clinic_name", "billed_clinic_country"]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_plans"),
        ("tenants", "0003_alert_thresholds"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="billed_clinic_country",
            field=models.CharField(blank=True, max_length=2),
        ),
        migrations.AddField(
            model_name="invoice",
            name="billed_clinic_id",
            field=models.UUIDField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="invoice",
            name="billed_clinic_name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="invoice",
            name="billed_clinic_slug",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="clinic",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="invoices",
                to="tenants.clinic",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
