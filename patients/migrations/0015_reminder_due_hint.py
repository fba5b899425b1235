from django.db import migrations

# Issue 20: writers no longer share a row. 0014's trigger upserted the clinic's single public
# `tenants_clinicdue` row with LEAST, and held that row lock to the end of the writer's
# transaction: two patients of one clinic saving reminders at once waited for each other, a
# 500-mutation sync push held it for its whole batch, and the dispatcher's recompute waited
# behind long pushes (the clinic-wide serialization DESIGN.md §6 removed for versions, 0012).
#
# Now the same triggers (same WHEN: a new reminder, or an update that makes one due sooner)
# only INSERT a hint row `tenants_clinicduehint (clinic_id, at)` (tenants.models.ClinicDueHint):
# no conflict target, no update, no foreign key check, so no lock any other transaction takes.
# The dispatcher treats a clinic with a hint at or before now as due, and its recompute folds
# the hints it read into `next_due_at` and deletes exactly those (patients.due).
#
# One hint per transaction is enough while it is the earliest: the id of the transaction's own
# latest hint is kept in a transaction-local setting (per schema), and a later reminder in the
# same transaction adds none while that hint is still visible and no later than it (a hint the
# same transaction inserted commits or rolls back with it, and no other transaction can see it
# to delete it before then). A savepoint rollback undoes both the hint and the setting; a hint
# the transaction deleted itself is no longer found, so a new one is inserted.
# The clinic is found from the schema the trigger fires in (the template schema has none).
# plpgsql binds the public tables when it runs, so this needs no cross-app dependency
# (the public schema, with tenants 0007, is migrated before the clinic schemas).
FORWARD = """
CREATE OR REPLACE FUNCTION reminder_due_lower() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    setting text := 'csu.due_hint_' || md5(TG_TABLE_SCHEMA);
    mine text := current_setting(setting, true);
    hint bigint;
BEGIN
    IF COALESCE(mine, '') <> '' AND EXISTS (
        SELECT 1 FROM public.tenants_clinicduehint h WHERE h.id = mine::bigint AND h.at <= NEW.next_fire_at
    ) THEN
        RETURN NULL;  -- this transaction's own hint, no later, commits with this row
    END IF;
    INSERT INTO public.tenants_clinicduehint (clinic_id, at)
    SELECT c.id, NEW.next_fire_at FROM public.tenants_clinic c WHERE c.schema_name = TG_TABLE_SCHEMA
    RETURNING id INTO hint;
    IF hint IS NOT NULL THEN
        PERFORM set_config(setting, hint::text, true);
    END IF;
    RETURN NULL;
END
$$;
"""
# Back to 0014's function (the triggers themselves are unchanged).
REVERSE = """
CREATE OR REPLACE FUNCTION reminder_due_lower() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.tenants_clinicdue AS d (clinic_id, next_due_at)
    SELECT c.id, NEW.next_fire_at FROM public.tenants_clinic c WHERE c.schema_name = TG_TABLE_SCHEMA
    ON CONFLICT (clinic_id) DO UPDATE SET next_due_at = LEAST(d.next_due_at, EXCLUDED.next_due_at);
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0014_reminder_due_trigger")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
