from django.db import migrations

# Clinical notes are immutable (DESIGN.md §5, issue #7): corrections are new notes. The only
# change allowed is re-encrypting the body under a newer key (rotate_encryption_keys).
FORWARD = """
CREATE FUNCTION clinicalnote_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.id = OLD.id AND NEW.patient_id = OLD.patient_id AND NEW.author_id = OLD.author_id
       AND NEW.corrects_id IS NOT DISTINCT FROM OLD.corrects_id AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'clinicians_clinicalnote is immutable (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER clinicalnote_immutable
    BEFORE UPDATE OR DELETE ON clinicians_clinicalnote
    FOR EACH ROW EXECUTE FUNCTION clinicalnote_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS clinicalnote_immutable ON clinicians_clinicalnote;
DROP FUNCTION IF EXISTS clinicalnote_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("clinicians", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
