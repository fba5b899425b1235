from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0003_alert_thresholds'),
    ]

    operations = [
        migrations.AddField(
            model_name='clinic',
            name='offboarding_archive_sha256',
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
