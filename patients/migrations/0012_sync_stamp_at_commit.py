from django.db import migrations

# Issue 15, item 9: the clinic's version lock is held only while a transaction commits.
#
# Before (0006): the first write of a transaction took the clinic's next version, holding the
# `sync_state` row lock to commit, so every push serialized the whole clinic for its whole batch.
#
# Now: a write marks its row *pending* with the transaction's own negative marker
# (-txid_current(), never a valid version) and records the changed fields with that marker.
# Just before commit one call, `sync_stamp_pending(schema)`, takes the next version
# (`UPDATE sync_state ... RETURNING`, the row lock held until the commit a moment later) and
# rewrites the marker into that version in every row the transaction wrote, table by table
# through a partial index on pending rows. Versions stay gap-free and in commit order (DESIGN.md
# §6): a version is taken under the lock and released only by the commit, and a pull's snapshot
# never shows a pending row (other transactions' rows are invisible until they commit, stamped).
#
# Who calls it: `patients.sync.sync_stamp_now()` (a push, to answer its versions), and, for every
# other writer (ORM, admin, tasks, raw SQL), a DEFERRABLE INITIALLY DEFERRED constraint trigger
# that runs at COMMIT on each table. Every object is addressed through the trigger's schema, so
# any search_path works (issue 15, item 10).
FORWARD = """
CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
    new_row jsonb;
    old_row jsonb;
    versions jsonb;
    field text;
BEGIN
    IF current_setting('csu.sync_stamping', true) = 'on' THEN
        RETURN NEW;  -- sync_stamp_pending() rewriting the markers
    END IF;
    v := -txid_current();
    NEW.server_version := v;
    PERFORM set_config('csu.sync_p_' || md5(TG_TABLE_SCHEMA), 'on', true);
    IF TG_NARGS > 0 AND TG_ARGV[0] = 'field_versions' THEN
        new_row := to_jsonb(NEW);
        old_row := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;
        versions := COALESCE(NEW.field_versions, '{}'::jsonb);
        FOR field IN SELECT jsonb_object_keys(new_row) LOOP
            IF field NOT IN ('id', 'patient_id', 'server_version', 'field_versions', 'created_at', 'updated_at',
                             'recorded_at', 'next_fire_at', 'next_local_date')
               AND (TG_OP = 'INSERT' OR new_row -> field IS DISTINCT FROM old_row -> field) THEN
                versions := versions || jsonb_build_object(field, v);
            END IF;
        END LOOP;
        NEW.field_versions := versions;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION sync_stamp_pending(schema_name text, fresh boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pending_key text := 'csu.sync_p_' || md5(schema_name);
    version_key text := 'csu.sync_v_' || md5(schema_name);
    marker bigint;
    cached text;
    v bigint;
    tbl text;
BEGIN
    IF COALESCE(current_setting(pending_key, true), '') <> 'on' THEN
        RETURN NULL;  -- nothing written: no version taken, no lock
    END IF;
    marker := -txid_current();
    cached := current_setting(version_key, true);
    IF fresh OR cached IS NULL OR cached = '' THEN
        EXECUTE format('UPDATE %I.patients_syncstate SET version = version + 1 RETURNING version', schema_name)
            INTO v;
        PERFORM set_config(version_key, v::text, true);
    ELSE
        v := cached::bigint;
    END IF;
    PERFORM set_config('csu.sync_stamping', 'on', true);
    FOREACH tbl IN ARRAY ARRAY['patients_patient', 'patients_diaryentry', 'patients_reminder'] LOOP
        EXECUTE format(
            'UPDATE %I.%I SET server_version = $1, field_versions = ('
            '  SELECT COALESCE(jsonb_object_agg(key, CASE WHEN value = to_jsonb($2) THEN to_jsonb($1) ELSE value END),'
            '                  ''{}''::jsonb) FROM jsonb_each(field_versions))'
            ' WHERE server_version < 0 AND server_version = $2', schema_name, tbl)
            USING v, marker;
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['patients_questionnaireresponse', 'patients_doselog', 'patients_prescription',
                               'patients_syncconflict'] LOOP
        EXECUTE format(
            'UPDATE %I.%I SET server_version = $1 WHERE server_version < 0 AND server_version = $2',
            schema_name, tbl)
            USING v, marker;
    END LOOP;
    PERFORM set_config('csu.sync_stamping', '', true);
    PERFORM set_config(pending_key, '', true);
    RETURN v;
END;
$$;

CREATE OR REPLACE FUNCTION sync_stamp_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('csu.sync_p_' || md5(TG_TABLE_SCHEMA), true) = 'on'
       AND COALESCE(current_setting('csu.sync_defer', true), '') <> 'skip' THEN
        EXECUTE format('SELECT %I.sync_stamp_pending(%L)', TG_TABLE_SCHEMA, TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS reminder_sync_stamp ON patients_reminder;
CREATE TRIGGER reminder_sync_stamp
    BEFORE INSERT OR UPDATE OF kind, local_time, days_of_week, prescription_id, enabled, deleted_at
    ON patients_reminder FOR EACH ROW EXECUTE FUNCTION sync_stamp('field_versions');
"""

TABLES = [
    ("patient", "patients_patient"),
    ("diaryentry", "patients_diaryentry"),
    ("questionnaire", "patients_questionnaireresponse"),
    ("doselog", "patients_doselog"),
    ("prescription", "patients_prescription"),
    ("syncconflict", "patients_syncconflict"),
    ("reminder", "patients_reminder"),
]
for short, table in TABLES:
    FORWARD += f"""
CREATE INDEX {short}_sync_pending ON {table} (server_version) WHERE server_version < 0;
CREATE CONSTRAINT TRIGGER {short}_sync_commit AFTER INSERT OR UPDATE ON {table}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.server_version < 0)
    EXECUTE FUNCTION sync_stamp_at_commit();
"""

REVERSE = "".join(
    f"DROP TRIGGER IF EXISTS {short}_sync_commit ON {table}; DROP INDEX IF EXISTS {short}_sync_pending;\n"
    for short, table in TABLES
) + """
DROP FUNCTION IF EXISTS sync_stamp_at_commit();
DROP FUNCTION IF EXISTS sync_stamp_pending(text, boolean);
DROP TRIGGER IF EXISTS reminder_sync_stamp ON patients_reminder;
CREATE TRIGGER reminder_sync_stamp
    BEFORE INSERT OR UPDATE OF kind, local_time, days_of_week, prescription_id, enabled, deleted_at
    ON patients_reminder FOR EACH ROW EXECUTE FUNCTION sync_stamp();
CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint := sync_txn_version(TG_TABLE_SCHEMA);
    new_row jsonb;
    old_row jsonb;
    versions jsonb;
    field text;
BEGIN
    NEW.server_version := v;
    IF TG_NARGS > 0 AND TG_ARGV[0] = 'field_versions' THEN
        new_row := to_jsonb(NEW);
        old_row := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;
        versions := COALESCE(NEW.field_versions, '{}'::jsonb);
        FOR field IN SELECT jsonb_object_keys(new_row) LOOP
            IF field NOT IN ('id', 'patient_id', 'server_version', 'field_versions', 'created_at', 'updated_at')
               AND (TG_OP = 'INSERT' OR new_row -> field IS DISTINCT FROM old_row -> field) THEN
                versions := versions || jsonb_build_object(field, v);
            END IF;
        END LOOP;
        NEW.field_versions := versions;
    END IF;
    RETURN NEW;
END;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0011_sync_aliases_deletions")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
