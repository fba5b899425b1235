from django.db import migrations

# Issue 21, part 2: re-encrypting notes under a new key changed `note_encrypted` on every diary
# entry with a note, so the sync trigger stamped a new version (and a new `note` field version)
# on each: every device downloaded them all again, and a device's offline edit of a note came
# back as a spurious conflict. The plaintext did not change, so devices must not see anything.
#
# `sync_stamp()` now leaves a row's `server_version` and `field_versions` as they are while the
# transaction has `SET LOCAL csu.sync_skip_version = 'on'` (and the commit-time stamping then has
# no pending marker to rewrite). Only `rotate_encryption_keys` sets it, for its own transactions,
# which write nothing but ciphertext. Otherwise identical to 0012's function.
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
    IF current_setting('csu.sync_skip_version', true) = 'on' THEN
        RETURN NEW;  -- a change devices must not see (re-encryption under a new key): no version
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
"""

REVERSE = """
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
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0017_privacy_notice")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
