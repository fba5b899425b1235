from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_token_family_rotation"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="membership_generation",
            field=models.BigIntegerField(default=0, editable=False),
        ),
    ]
