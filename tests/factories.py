"""factory_boy factories for the clinical rows tests build most.

The rows live in a clinic's schema: call the factories inside `tenant_context(clinic)`.
A prescription takes its dose, frequency and guideline step from the medication catalogue row
it names, so `PrescriptionFactory(patient=alice_patient, medication_id="omalizumab-300-q4w")` is
an every-28-days step-3 prescription; pass a field to depart from the catalogue.
"""

from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from patients.consent import privacy_notice_current
from patients.models import (
    Consent,
    ConsentKind,
    DiaryEntry,
    DoseLog,
    Medication,
    Patient,
    Prescription,
    QuestionnaireResponse,
)


class PatientFactory(DjangoModelFactory):
    """A patient with an account (`user_id`) has accepted the clinic's current privacy notice,
    as enrollment requires (patients.consent); `consented=False` leaves that out."""

    class Meta:
        model = Patient
        skip_postgeneration_save = True  # the consent is its own row: the patient is not saved again

    display_name = factory.Sequence(lambda n: f"Patient {n}")
    timezone = "Europe/Berlin"

    @factory.post_generation
    def consented(self, create: bool, extracted: bool | None, **kwargs: Any) -> None:
        if create and self.user_id is not None and extracted is not False:
            Consent.objects.create(
                patient=self,
                kind=ConsentKind.PRIVACY_NOTICE,
                version=str(privacy_notice_current().version),
                granted_at=self.enrolled_at,
            )


class PrescriptionFactory(DjangoModelFactory):
    """Starts on the patient's local today unless `start` is given; open-ended."""

    class Meta:
        model = Prescription
        exclude = ("catalogue",)

    patient = factory.SubFactory(PatientFactory)
    medication_id = "cetirizine-10"
    catalogue = factory.LazyAttribute(lambda rx: Medication.objects.get(code=rx.medication_id))
    dose = factory.LazyAttribute(lambda rx: rx.catalogue.strength)
    frequency_kind = factory.LazyAttribute(lambda rx: rx.catalogue.frequency_kind)
    frequency_value = factory.LazyAttribute(lambda rx: rx.catalogue.frequency_value)
    # Newer drugs carry no guideline step in the catalogue; a prescription needs one (1-4).
    guideline_step = factory.LazyAttribute(lambda rx: rx.catalogue.guideline_step or 1)
    start = factory.LazyAttribute(lambda rx: rx.patient.local_today())
    end = None


class DiaryEntryFactory(DjangoModelFactory):
    """One day-slot entry on the patient's local today, wheals 1 and itch 1 unless given."""

    class Meta:
        model = DiaryEntry

    patient = factory.SubFactory(PatientFactory)
    day = factory.LazyAttribute(lambda entry: entry.patient.local_today())
    wheals = 1
    itch = 1


class DoseLogFactory(DjangoModelFactory):
    """A dose taken of `prescription` (its patient's), scheduled on the prescription's start."""

    class Meta:
        model = DoseLog

    prescription = factory.SubFactory(PrescriptionFactory)
    patient = factory.LazyAttribute(lambda dose: dose.prescription.patient)
    scheduled_date = factory.LazyAttribute(lambda dose: dose.prescription.start)
    status = "taken"


def _uct_score(answers: dict[str, Any]) -> int:
    return sum(answers["items"])


class QuestionnaireResponseFactory(DjangoModelFactory):
    """A UCT (score = the sum of its four items) for the period ending on the patient's today."""

    class Meta:
        model = QuestionnaireResponse

    patient = factory.SubFactory(PatientFactory)
    instrument = "uct"
    answers = factory.LazyFunction(lambda: {"items": [2, 2, 2, 2]})
    score = factory.LazyAttribute(lambda response: _uct_score(response.answers))
    period_end = factory.LazyAttribute(lambda response: response.patient.local_today())
