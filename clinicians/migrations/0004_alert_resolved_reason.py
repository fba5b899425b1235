# Issue 17: an alert resolves by a clinician or by itself when its condition clears; the
# summary rows (patients 0013) start with the open (unacknowledged) alert counts.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clinicians', '0003_report'),
        ('patients', '0013_summary'),
    ]

    operations = [
        migrations.AddField(
            model_name='alert',
            name='resolved_reason',
            field=models.CharField(blank=True, choices=[('clinician', 'Resolved by a clinician'), ('condition_cleared', 'The condition no longer holds')], default='', max_length=20),
        ),
        migrations.RunSQL(
            "UPDATE clinicians_alert SET resolved_reason = 'clinician' WHERE resolved_at IS NOT NULL; "
            "UPDATE patients_patientsummary s SET open_alerts = (SELECT COUNT(*) FROM clinicians_alert a "
            "WHERE a.patient_id = s.patient_id AND a.resolved_at IS NULL AND a.acknowledged_at IS NULL)",
            migrations.RunSQL.noop,
        ),
    ]
