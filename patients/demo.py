"""Demo records for `make run` (seed_demo): 8 weeks of plausible diaries, regimens and doses."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

from patients.consent import privacy_notice_current
from patients.models import (
    Consent,
    ConsentKind,
    DiaryEntry,
    DoseLog,
    Patient,
    Prescription,
    QuestionnaireResponse,
)
from patients.scores import uct_total
from patients.services import patient_changed

WEEKS = 8
DOSE_TIME = time(8, 0)  # the demo's doses are taken (and logged) at 08:00 local


def _diary_value(rng: random.Random, base: float, flare: bool) -> tuple[int, int]:
    level = base + (2.2 if flare else 0) + rng.uniform(-0.8, 0.8)
    wheals = max(0, min(3, round(level / 2 + rng.uniform(-0.5, 0.5))))
    itch = max(0, min(3, round(level / 2 + rng.uniform(-0.5, 0.5))))
    return wheals, itch


@transaction.atomic
def demo_records_seed(
    *,
    patient: Patient,
    profile: str,
    today: date,
    prescriber_id: uuid.UUID | None,
    now: datetime | None = None,
) -> bool:
    """Seed one demo patient's last 8 weeks (idempotent: skipped when a diary exists).

    Profiles: `improving` (steps up from standard to up-dosed antihistamine and settles),
    `flare` (on omalizumab, flares in week 5 and a gap in week 6), `steady` (well controlled,
    misses a few days). Deterministic per patient.

    Nothing is dated after `now` (default: the present): a dose is logged at 08:00 local, so
    today's doses are logged only once 08:00 has passed (seeded before that, they are still due,
    as a real patient's would be), and today's diary entry is recorded at 20:30 or now, whichever
    is earlier.
    """
    now = now or timezone.now()
    start = today - timedelta(days=7 * WEEKS - 1)
    # Enrolled when the seeded history starts: reports and windows never start before enrolment.
    enrolled = datetime.combine(start, time(9, 0), tzinfo=patient.tz)
    if patient.user_id is not None and not Consent.objects.filter(patient=patient).exists():
        # A demo patient joined as a real one does: accepting the clinic's privacy notice
        # (patients.consent), without which the app stores nothing of theirs. Also for a demo
        # seeded before consent existed (this runs on every `make run`).
        Consent.objects.create(
            patient=patient,
            kind=ConsentKind.PRIVACY_NOTICE,
            version=str(privacy_notice_current().version),
            granted_at=min(enrolled, patient.enrolled_at),
        )
    if DiaryEntry.objects.filter(patient=patient).exists():
        return False
    rng = random.Random(f"{profile}:{patient.pk}")
    if patient.enrolled_at > enrolled:
        Patient.objects.filter(pk=patient.pk).update(enrolled_at=enrolled)
        patient.enrolled_at = enrolled
    prescriptions: list[Prescription] = []

    def prescribe(
        code: str, dose: str, kind: str, value: int | None, step: int, begin: date, end: date | None
    ) -> None:
        prescriptions.append(
            Prescription.objects.create(
                patient=patient,
                medication_id=code,
                dose=dose,
                frequency_kind=kind,
                frequency_value=value,
                guideline_step=step,
                start=begin,
                end=end,
                prescriber_id=prescriber_id,
            )
        )

    switch = start + timedelta(days=27)
    if profile == "improving":
        prescribe(
            "cetirizine-10",
            "10 mg",
            "n_per_day",
            1,
            1,
            start - timedelta(days=30),
            switch - timedelta(days=1),
        )
        prescribe("cetirizine-10-x4", "4 × 10 mg", "n_per_day", 4, 2, switch, None)
    elif profile == "flare":
        prescribe("cetirizine-10-x2", "2 × 10 mg", "n_per_day", 2, 2, start - timedelta(days=60), None)
        prescribe("omalizumab-300-q4w", "300 mg", "every_n_days", 28, 3, start - timedelta(days=14), None)
    else:
        prescribe("bilastine-20", "20 mg", "n_per_day", 1, 1, start - timedelta(days=90), None)

    entries, doses = [], []
    for offset in range(7 * WEEKS):
        day = start + timedelta(days=offset)
        week = offset // 7
        skip = rng.random() < (0.12 if profile == "steady" else 0.07) or (
            profile == "flare" and week == 5 and offset % 7 < 4
        )
        if not skip:
            base = {"improving": 5.0 - 0.5 * week, "flare": 2.0, "steady": 1.0}[profile]
            wheals, itch = _diary_value(rng, max(base, 0.5), flare=profile == "flare" and week == 4)
            angioedema = profile == "flare" and week == 4 and offset % 3 == 0
            entries.append(
                DiaryEntry(
                    patient=patient,
                    day=day,
                    wheals=wheals,
                    itch=itch,
                    angioedema=angioedema,
                    aas_items=[rng.randint(1, 3) for _ in range(5)] if angioedema else None,
                    recorded_at=min(datetime.combine(day, time(20, 30), tzinfo=patient.tz), now),
                )
            )
        for rx in prescriptions:
            if not rx.active_on(day) or datetime.combine(day, DOSE_TIME, tzinfo=patient.tz) > now:
                continue
            if rx.frequency_kind == "n_per_day":
                for _ in range(rx.frequency_value or 0):
                    if rng.random() < 0.88:
                        doses.append(
                            DoseLog(patient=patient, prescription=rx, scheduled_date=day, status="taken")
                        )
            elif (day - rx.start).days % (rx.frequency_value or 28) == 0:
                doses.append(DoseLog(patient=patient, prescription=rx, scheduled_date=day, status="taken"))
    DiaryEntry.objects.bulk_create(entries)
    DoseLog.objects.bulk_create(doses)
    # Logged on the day, in the morning, as a real patient would have (usage and audits read it).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE patients_doselog SET created_at = (scheduled_date + %s::time) AT TIME ZONE %s,"
            " taken_at = (scheduled_date + %s::time) AT TIME ZONE %s WHERE patient_id = %s",
            [DOSE_TIME.isoformat(), patient.timezone, DOSE_TIME.isoformat(), patient.timezone, patient.pk],
        )
    for week in (0, 4, 7):
        items = [
            max(0, min(4, rng.randint(1, 4) + (1 if profile != "flare" and week == 7 else 0)))
            for _ in range(4)
        ]
        QuestionnaireResponse.objects.create(
            patient=patient,
            instrument="uct",
            answers={"items": items},
            score=uct_total(items),
            period_end=start + timedelta(days=7 * week + 6),
        )
    patient_changed(patient)
    return True
