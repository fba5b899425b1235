"""The clinic's versioned privacy notice (issue 22, part 6): health data is stored only with the
patient's explicit consent to it. Every clinic gets version 1, the default below: existing
clinics through this migration, new ones through the template snapshot (its rows travel with
the DDL, as the medication catalogue's do). A clinic admin publishes its own next version."""

import uuid

from django.db import migrations, models

DEFAULT_TEXTS = {
    "en": (
        "Privacy notice\n\n"
        "Your clinic uses CSU Tracker to follow your chronic urticaria. When you join, the clinic "
        "stores your account (email address) and, once you agree to this notice, the health data "
        "you record: your daily hives and itch scores, swelling, notes, questionnaires and the doses "
        "you log, together with the medications your clinicians prescribe.\n\n"
        "Why: so that your care team can see how your urticaria and your treatment are going, and "
        "act on it. Your data is used for your care only; it is not sold or used for advertising.\n\n"
        "Who sees it: the clinicians of your care team and the clinic's administrators. Every time "
        "a member of staff opens your data, this is recorded.\n\n"
        "Your rights: you can download all your data at any time (My data), ask the clinic to "
        "delete it, and withdraw your consent. After you withdraw, nothing new about your health "
        "is stored; what was recorded before is kept as your clinic's medical records require.\n\n"
        "Questions: ask your clinic."
    ),
    "de": (
        "Datenschutzerklärung\n\n"
        "Ihre Klinik nutzt CSU Tracker, um Ihre chronische Urtikaria zu begleiten. Wenn Sie "
        "beitreten, speichert die Klinik Ihr Konto (E-Mail-Adresse) und, sobald Sie dieser Erklärung "
        "zustimmen, die Gesundheitsdaten, die Sie eintragen: Ihre täglichen Werte für Quaddeln und "
        "Juckreiz, Schwellungen, Notizen, Fragebögen und die Einnahmen Ihrer Medikamente, zusammen "
        "mit den Verordnungen Ihrer Ärztinnen und Ärzte.\n\n"
        "Wozu: damit Ihr Behandlungsteam sieht, wie es Ihrer Urtikaria und Ihrer Behandlung geht, "
        "und handeln kann. Ihre Daten dienen nur Ihrer Behandlung; sie werden weder verkauft noch "
        "für Werbung genutzt.\n\n"
        "Wer sie sieht: die Ärztinnen und Ärzte Ihres Behandlungsteams und die Verwaltung der "
        "Klinik. Jeder Zugriff des Personals auf Ihre Daten wird protokolliert.\n\n"
        "Ihre Rechte: Sie können jederzeit alle Ihre Daten herunterladen (Meine Daten), die Klinik "
        "um Löschung bitten und Ihre Einwilligung widerrufen. Nach einem Widerruf wird nichts Neues "
        "über Ihre Gesundheit gespeichert; was vorher eingetragen wurde, bleibt erhalten, wie es die "
        "ärztliche Dokumentationspflicht verlangt.\n\n"
        "Fragen: wenden Sie sich an Ihre Klinik."
    ),
}


def seed_default_notice(apps, schema_editor):
    PrivacyNotice = apps.get_model("patients", "PrivacyNotice")
    PrivacyNotice.objects.get_or_create(version=1, defaults={"texts": DEFAULT_TEXTS})


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0016_syncclient_epoch"),
    ]

    operations = [
        migrations.CreateModel(
            name="PrivacyNotice",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("version", models.PositiveIntegerField(unique=True)),
                ("texts", models.JSONField()),
                ("requires_reacceptance", models.BooleanField(default=False)),
                ("published_by_id", models.UUIDField(blank=True, null=True)),
            ],
            options={"abstract": False},
        ),
        migrations.RunPython(seed_default_notice, migrations.RunPython.noop),
    ]
