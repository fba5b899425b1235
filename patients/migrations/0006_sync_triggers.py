from django.db import migrations

# Change tracking for offline sync (DESIGN.md §6; reference/sync-protocol.md §2.2 option A).
# Every INSERT/UPDATE of a synced table takes the clinic's next version by UPDATE ... RETURNING
# on its sync_state row, once per transaction, holding the row lock until commit: versions are
# gap-free and in commit order, whatever wrote the row (ORM, admin, tasks, raw SQL). The state
# table is addressed through the trigger's own schema, so any search_path works.
FORWARD = """
INSERT INTO patients_syncstate (singleton, version, epoch, min_cursor)
VALUES (true, 0, gen_random_uuid(), 0) ON CONFLICT DO NOTHING;

CREATE FUNCTION sync_txn_version(schema_name text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    k text := 'csu.sync_v_' || md5(schema_name);
    v text := current_setting(k, true);
BEGIN
    IF v IS NULL OR v = '' THEN
        EXECUTE format('UPDATE %I.patients_syncstate SET version = version + 1 RETURNING version::text', schema_name)
            INTO v;
        PERFORM set_config(k, v, true);
    END IF;
    RETURN v::bigint;
END;
$$;

CREATE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER patient_sync_stamp BEFORE INSERT OR UPDATE ON patients_patient
    FOR EACH ROW EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER diaryentry_sync_stamp BEFORE INSERT OR UPDATE ON patients_diaryentry
    FOR EACH ROW EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER questionnaire_sync_stamp BEFORE INSERT OR UPDATE ON patients_questionnaireresponse
    FOR EACH ROW EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER doselog_sync_stamp BEFORE INSERT OR UPDATE ON patients_doselog
    FOR EACH ROW EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER prescription_sync_stamp BEFORE INSERT OR UPDATE ON patients_prescription
    FOR EACH ROW EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER syncconflict_sync_stamp BEFORE INSERT OR UPDATE ON patients_syncconflict
    FOR EACH ROW EXECUTE FUNCTION sync_stamp();
"""

REVERSE = """
DROP TRIGGER IF EXISTS syncconflict_sync_stamp ON patients_syncconflict;
DROP TRIGGER IF EXISTS prescription_sync_stamp ON patients_prescription;
DROP TRIGGER IF EXISTS doselog_sync_stamp ON patients_doselog;
DROP TRIGGER IF EXISTS questionnaire_sync_stamp ON patients_questionnaireresponse;
DROP TRIGGER IF EXISTS diaryentry_sync_stamp ON patients_diaryentry;
DROP TRIGGER IF EXISTS patient_sync_stamp ON patients_patient;
DROP FUNCTION IF EXISTS sync_stamp();
DROP FUNCTION IF EXISTS sync_txn_version(text);
DELETE FROM patients_syncstate;
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0005_sync")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
