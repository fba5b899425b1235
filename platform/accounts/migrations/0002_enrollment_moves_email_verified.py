"""Enrollment codes move to each clinic's schema (patients.Enrollment); email verification; token families and credential revocation.

The public table is not dropped blindly: its rows are kept as `accounts_enrollment_legacy`
(with the clinic's schema name) so that patients migration 0010, which runs per clinic after
this one, copies each clinic's open codes into its own schema. A later release drops the
legacy table.

Accounts that exist before email verification was introduced are treated as verified: they
were created by invitations, enrollments and signups whose owners have been signing in.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

KEEP_LEGACY_ROWS = """
CREATE TABLE accounts_enrollment_legacy AS
SELECT e.id, e.patient_id, e.code_hash, e.code_encrypted, e.created_at, e.expires_at,
       e.redeemed_at, e.revoked_at, e.created_by_id, e.redeemed_by_id, c.schema_name
FROM accounts_enrollment e JOIN tenants_clinic c ON c.id = e.clinic_id;
DROP TABLE accounts_enrollment;
"""


def mark_existing_verified(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.filter(email_verified_at__isnull=True).update(email_verified_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Enrollment")],
            database_operations=[migrations.RunSQL(KEEP_LEGACY_ROWS, reverse_sql=migrations.RunSQL.noop)],
        ),
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(mark_existing_verified, migrations.RunPython.noop),
        migrations.AddField(
            model_name="user",
            name="credentials_revoked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="TokenFamily",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="token_families",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
