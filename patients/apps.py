from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    label = "patients"

    def ready(self) -> None:
        """Hand the lower layers the functions they need from the patient records."""
        from billing.usage import usage_sources_register
        from patients import usage
        from tenants.hooks import on_clinic_schema_created

        usage_sources_register(patient_seats=usage.patient_seats, active_patients=usage.active_patients_between)
        on_clinic_schema_created(usage.sync_epoch_reset)
        from patients.sync.restore import restore_participant
        from tenants.restore import restore_participant_register

        restore_participant_register(restore_participant())
