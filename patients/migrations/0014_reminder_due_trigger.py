from django.db import migrations

# The clinic's next_due_at in the public schema (tenants.models.ClinicDue) is a lower bound on
# its reminders' next_fire_at. Every write that makes a reminder due sooner (a new reminder, an
# earlier time, a re-enabled one, a time zone move, a bulk or raw update) lowers it with LEAST
# in the writer's own transaction; the row lock it takes there is what the dispatcher's
# recompute waits for (patients.due). Writes that only push a reminder later (the dispatcher
# advancing it, a disable or delete) leave it alone: an early bound costs one empty scan.
# The clinic is found from the schema the trigger fires in (the template schema has none).
# plpgsql binds the public tables when it runs, so this needs no cross-app dependency.
FORWARD = """
CREATE OR REPLACE FUNCTION reminder_due_lower() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.tenants_clinicdue AS d (clinic_id, next_due_at)
    SELECT c.id, NEW.next_fire_at FROM public.tenants_clinic c WHERE c.schema_name = TG_TABLE_SCHEMA
    ON CONFLICT (clinic_id) DO UPDATE SET next_due_at = LEAST(d.next_due_at, EXCLUDED.next_due_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER reminder_due_insert
    AFTER INSERT ON patients_reminder FOR EACH ROW
    WHEN (NEW.next_fire_at IS NOT NULL)
    EXECUTE FUNCTION reminder_due_lower();
CREATE TRIGGER reminder_due_update
    AFTER UPDATE OF next_fire_at ON patients_reminder FOR EACH ROW
    WHEN (NEW.next_fire_at IS NOT NULL AND (OLD.next_fire_at IS NULL OR NEW.next_fire_at < OLD.next_fire_at))
    EXECUTE FUNCTION reminder_due_lower();
"""
REVERSE = """
DROP TRIGGER IF EXISTS reminder_due_update ON patients_reminder;
DROP TRIGGER IF EXISTS reminder_due_insert ON patients_reminder;
DROP FUNCTION IF EXISTS reminder_due_lower();
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0013_summary")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
