from django.db import migrations

# Reminders sync like the other patient records (0006), but only their patient-owned columns
# stamp a version: the dispatcher advancing next_fire_at every day must not create a sync
# change, nor take the clinic's sync version lock.
FORWARD = """
CREATE TRIGGER reminder_sync_stamp
    BEFORE INSERT OR UPDATE OF kind, local_time, days_of_week, prescription_id, enabled, deleted_at
    ON patients_reminder FOR EACH ROW EXECUTE FUNCTION sync_stamp();
"""
REVERSE = "DROP TRIGGER IF EXISTS reminder_sync_stamp ON patients_reminder;"


class Migration(migrations.Migration):
    dependencies = [("patients", "0007_reminders")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
