from django.db import migrations

# The regimen catalogue is data, not code (EAACI/GA²LEN 2022 guideline steps; newer drugs such as
# remibrutinib and dupilumab post-date it and carry no default step). Clinics can extend it.
CATALOGUE = [
    # code, name, drug, strength, route, frequency_kind, frequency_value, guideline_step, is_rescue
    ("cetirizine-10", "Cetirizine 10 mg once daily (standard dose)", "cetirizine", "10 mg", "oral", "n_per_day", 1, 1, False),
    ("cetirizine-10-x2", "Cetirizine 10 mg twice daily (up-dosed ×2)", "cetirizine", "10 mg", "oral", "n_per_day", 2, 2, False),
    ("cetirizine-10-x4", "Cetirizine 10 mg four times daily (up-dosed ×4)", "cetirizine", "10 mg", "oral", "n_per_day", 4, 2, False),
    ("levocetirizine-5", "Levocetirizine 5 mg once daily (standard dose)", "levocetirizine", "5 mg", "oral", "n_per_day", 1, 1, False),
    ("desloratadine-5", "Desloratadine 5 mg once daily (standard dose)", "desloratadine", "5 mg", "oral", "n_per_day", 1, 1, False),
    ("fexofenadine-180", "Fexofenadine 180 mg once daily (standard dose)", "fexofenadine", "180 mg", "oral", "n_per_day", 1, 1, False),
    ("bilastine-20", "Bilastine 20 mg once daily (standard dose)", "bilastine", "20 mg", "oral", "n_per_day", 1, 1, False),
    ("bilastine-20-x4", "Bilastine 20 mg four times daily (up-dosed ×4)", "bilastine", "20 mg", "oral", "n_per_day", 4, 2, False),
    ("omalizumab-300-q4w", "Omalizumab 300 mg SC every 4 weeks", "omalizumab", "300 mg", "subcutaneous", "every_n_days", 28, 3, False),
    ("ciclosporin", "Ciclosporin up to 5 mg/kg/day in two doses", "ciclosporin", "per kg", "oral", "n_per_day", 2, 4, False),
    ("remibrutinib-25-bid", "Remibrutinib 25 mg twice daily", "remibrutinib", "25 mg", "oral", "n_per_day", 2, None, False),
    ("dupilumab-300-q2w", "Dupilumab 300 mg SC every 2 weeks", "dupilumab", "300 mg", "subcutaneous", "every_n_days", 14, None, False),
    ("prednisolone-rescue", "Prednisolone short course (≤10 days) for exacerbations", "prednisolone", "20–50 mg", "oral", "n_per_day", 1, None, True),
]


def seed(apps, schema_editor):
    Medication = apps.get_model("patients", "Medication")
    for code, name, drug, strength, route, kind, value, step, rescue in CATALOGUE:
        Medication.objects.update_or_create(
            code=code,
            defaults=dict(
                name=name, drug=drug, strength=strength, route=route, frequency_kind=kind,
                frequency_value=value, guideline_step=step, is_rescue=rescue,
            ),
        )


def unseed(apps, schema_editor):
    apps.get_model("patients", "Medication").objects.filter(code__in=[row[0] for row in CATALOGUE]).delete()


class Migration(migrations.Migration):
    dependencies = [("patients", "0003_records")]

    operations = [migrations.RunPython(seed, unseed)]
