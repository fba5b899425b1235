from django.db import migrations

# The access log is evidence: the database itself refuses to change or remove rows
# (DESIGN.md §9). Created in the clinic schema being migrated (first on search_path).
FORWARD = """
CREATE FUNCTION accesslog_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'patients_accesslog is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER accesslog_append_only
    BEFORE UPDATE OR DELETE ON patients_accesslog
    FOR EACH ROW EXECUTE FUNCTION accesslog_refuse_change();
CREATE TRIGGER accesslog_no_truncate
    BEFORE TRUNCATE ON patients_accesslog
    FOR EACH STATEMENT EXECUTE FUNCTION accesslog_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS accesslog_no_truncate ON patients_accesslog;
DROP TRIGGER IF EXISTS accesslog_append_only ON patients_accesslog;
DROP FUNCTION IF EXISTS accesslog_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
