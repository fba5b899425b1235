# Issue 17: one row per patient with the summary that the portal, the alerts and the reports read
# (patients.summary). Every patient has a row: a trigger inserts it with the patient, stale from
# the start (`stale_after` in 1970), so the roll task or the first write computes it; the
# patients that exist already get theirs here.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0012_sync_stamp_at_commit'),
    ]

    operations = [
        migrations.CreateModel(
            name='PatientSummary',
            fields=[
                ('patient', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='summary', serialize=False, to='patients.patient')),
                ('valid_for', models.DateField(null=True)),
                ('stale_after', models.DateTimeField(db_index=True)),
                ('computed_at', models.DateTimeField(null=True)),
                ('week_end', models.DateField(null=True)),
                ('uas7', models.DecimalField(decimal_places=1, max_digits=4, null=True)),
                ('uas7_method', models.CharField(default='missing', max_length=10)),
                ('uas7_days', models.PositiveSmallIntegerField(default=0)),
                ('band', models.CharField(max_length=20, null=True)),
                ('previous_uas7', models.DecimalField(decimal_places=1, max_digits=4, null=True)),
                ('previous_method', models.CharField(default='missing', max_length=10)),
                ('previous_days', models.PositiveSmallIntegerField(default=0)),
                ('uas7_change', models.DecimalField(decimal_places=1, max_digits=4, null=True)),
                ('exceeds_mid', models.BooleanField(default=False)),
                ('uct', models.PositiveSmallIntegerField(help_text='Current UCT (within its recall period)', null=True)),
                ('uct_instrument', models.CharField(blank=True, default='', max_length=8)),
                ('uct_date', models.DateField(null=True)),
                ('last_uct', models.PositiveSmallIntegerField(help_text='Latest UCT of any age', null=True)),
                ('last_uct_instrument', models.CharField(blank=True, default='', max_length=8)),
                ('last_uct_date', models.DateField(null=True)),
                ('days_recorded', models.PositiveSmallIntegerField(default=0)),
                ('days_eligible', models.PositiveSmallIntegerField(default=0)),
                ('diary_completion', models.DecimalField(decimal_places=4, max_digits=5, null=True)),
                ('adherence', models.JSONField(default=list)),
                ('lowest_pdc', models.DecimalField(decimal_places=4, max_digits=5, null=True)),
                ('last_entry', models.DateField(null=True)),
                ('diary_gap', models.PositiveIntegerField(default=0)),
                ('open_alerts', models.PositiveIntegerField(default=0, help_text='Alerts not yet acknowledged')),
            ],
            options={
                'indexes': [models.Index(models.OrderBy(models.F('uas7'), nulls_last=True), models.F('patient'), name='summary_uas7_asc'), models.Index(models.OrderBy(models.F('uas7_change'), nulls_last=True), models.F('patient'), name='summary_uas7_change_asc'), models.Index(models.OrderBy(models.F('uct'), nulls_last=True), models.F('patient'), name='summary_uct_asc'), models.Index(models.OrderBy(models.F('diary_completion'), nulls_last=True), models.F('patient'), name='summary_diary_completion_asc'), models.Index(models.OrderBy(models.F('lowest_pdc'), nulls_last=True), models.F('patient'), name='summary_lowest_pdc_asc'), models.Index(models.OrderBy(models.F('last_entry'), nulls_last=True), models.F('patient'), name='summary_last_entry_asc'), models.Index(models.OrderBy(models.F('open_alerts'), nulls_last=True), models.F('patient'), name='summary_open_alerts_asc'), models.Index(models.OrderBy(models.F('uas7'), descending=True, nulls_last=True), models.F('patient'), name='summary_uas7_desc'), models.Index(models.OrderBy(models.F('uas7_change'), descending=True, nulls_last=True), models.F('patient'), name='summary_uas7_change_desc'), models.Index(models.OrderBy(models.F('uct'), descending=True, nulls_last=True), models.F('patient'), name='summary_uct_desc'), models.Index(models.OrderBy(models.F('diary_completion'), descending=True, nulls_last=True), models.F('patient'), name='summary_diary_completion_desc'), models.Index(models.OrderBy(models.F('lowest_pdc'), descending=True, nulls_last=True), models.F('patient'), name='summary_lowest_pdc_desc'), models.Index(models.OrderBy(models.F('last_entry'), descending=True, nulls_last=True), models.F('patient'), name='summary_last_entry_desc'), models.Index(models.OrderBy(models.F('open_alerts'), descending=True, nulls_last=True), models.F('patient'), name='summary_open_alerts_desc')],
            },
        ),
        migrations.RunSQL(
            sql="""
CREATE OR REPLACE FUNCTION patient_summary_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO %I.patients_patientsummary (patient_id, stale_after, uas7_method, uas7_days,'
        ' previous_method, previous_days, exceeds_mid, uct_instrument, last_uct_instrument,'
        ' days_recorded, days_eligible, adherence, diary_gap, open_alerts)'
        ' VALUES ($1, ''1970-01-01 00:00+00'', ''missing'', 0, ''missing'', 0, false, $2, $2, 0, 0, ''[]'', 0, 0)'
        ' ON CONFLICT DO NOTHING', TG_TABLE_SCHEMA) USING NEW.id, ''::text;
    RETURN NULL;
END $$;
CREATE TRIGGER patient_summary_insert AFTER INSERT ON patients_patient
    FOR EACH ROW EXECUTE FUNCTION patient_summary_insert();
INSERT INTO patients_patientsummary (patient_id, stale_after, uas7_method, uas7_days, previous_method,
    previous_days, exceeds_mid, uct_instrument, last_uct_instrument, days_recorded, days_eligible,
    adherence, diary_gap, open_alerts)
SELECT p.id, '1970-01-01 00:00+00', 'missing', 0, 'missing', 0, false, '', '', 0, 0, '[]', 0, 0
FROM patients_patient p ON CONFLICT DO NOTHING;
""",
            reverse_sql="DROP TRIGGER IF EXISTS patient_summary_insert ON patients_patient; "
            "DROP FUNCTION IF EXISTS patient_summary_insert();",
        ),
    ]
