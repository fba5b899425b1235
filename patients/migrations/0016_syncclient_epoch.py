"""SyncClient.epoch: a device belongs to the sync epoch it registered in (issue 21: after a
restore the server must answer reset_required, never mutation_gap). Existing clients belong to
their clinic's current epoch."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0015_reminder_due_hint"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncclient",
            name="epoch",
            field=models.UUIDField(null=True),
        ),
        migrations.RunSQL(
            "UPDATE patients_syncclient SET epoch = (SELECT epoch FROM patients_syncstate)",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="syncclient",
            name="epoch",
            field=models.UUIDField(),
        ),
    ]
