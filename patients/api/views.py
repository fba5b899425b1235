"""The patient's own API (`/api/v1/me/…`, JWT, patient role). The PWA's contract."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import PatientApi
from core.api.base import StrictSerializer
from core.api.fields import (
    EARLIEST_DATE,
    TOO_EARLY,
    BoundedDateField,
    BoundedDateTimeField,
    LocalTimeField,
    no_control_characters,
    no_control_characters_in_text,
)
from core.api.throttling import ScopedRateThrottle, UserRateThrottle
from core.errors import ApplicationError
from patients import reminders, scores, selectors, services, sync
from patients.models import (
    DoseLog,
    DoseStatus,
    FrequencyKind,
    Instrument,
    Patient,
    Prescription,
    QuestionnaireResponse,
    ReminderKind,
    Slot,
)
from patients.summary import adherence_json, summary_get
from tenants.models import DiaryMode


def parse_day(value: str, field: str = "day") -> date:
    """A local date from the URL (YYYY-MM-DD, from 2000-01-01 on)."""
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ApplicationError(code="invalid_date", field=field, detail="Use a date as YYYY-MM-DD.") from exc
    if day < EARLIEST_DATE:
        raise ApplicationError(
            code="validation_error", field=field, detail=TOO_EARLY.format(EARLIEST_DATE.isoformat())
        )
    return day


class MeApi(PatientApi):
    """Patients keep recording when their clinic is suspended (patient safety)."""

    allowed_when_suspended = True

    def patient(self, request: Request) -> Patient:
        patient = selectors.patient_for_user(user_id=request.user.pk)
        if patient is None:
            raise ApplicationError(
                code="no_patient_record", status_code=404, detail="No patient record for this account."
            )
        return patient

    def late_days(self, request: Request) -> int:
        return self.clinic(request).diary_late_entry_days

    @staticmethod
    def no_store(response: Response) -> Response:
        response["Cache-Control"] = "no-store"
        return response


# --- Profile -----------------------------------------------------------------------------------


class ProfileSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    date_of_birth = serializers.DateField(read_only=True, allow_null=True)
    timezone = serializers.CharField(max_length=64, validators=[no_control_characters])
    locale = serializers.RegexField(r"^[a-z]{2}(-[A-Z]{2})?$", max_length=10)
    diary_mode = serializers.ChoiceField(choices=DiaryMode.choices)
    quiet_hours_start = LocalTimeField(allow_null=True, required=False, help_text="Local time, HH:MM")
    quiet_hours_end = LocalTimeField(allow_null=True, required=False, help_text="Local time, HH:MM")
    status = serializers.CharField(read_only=True)
    enrolled_at = serializers.DateTimeField(read_only=True)
    today = serializers.SerializerMethodField()
    late_entry_days = serializers.SerializerMethodField(
        help_text="How many days back the clinic accepts diary entries (the late-entry window)."
    )

    def get_today(self, patient: Patient) -> date:
        return patient.local_today()

    def get_late_entry_days(self, patient: Patient) -> int:
        return int(self.context["late_entry_days"])


class ProfileApi(MeApi):
    class InputSerializer(StrictSerializer, ProfileSerializer):
        """Also validates `patient_settings` pushed through sync (patients.sync)."""

    @extend_schema(responses={200: ProfileSerializer})
    def get(self, request: Request) -> Response:
        context = {"late_entry_days": self.late_days(request)}
        return self.no_store(Response(ProfileSerializer(self.patient(request), context=context).data))

    @extend_schema(request=InputSerializer, responses={200: ProfileSerializer})
    def patch(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data, partial=True)
        patient = services.patient_profile_update(patient=self.patient(request), **data)
        context = {"late_entry_days": self.late_days(request)}
        return self.no_store(Response(ProfileSerializer(patient, context=context).data))


# --- Diary -------------------------------------------------------------------------------------


class DiaryEntrySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    day = serializers.DateField()
    slot = serializers.ChoiceField(choices=Slot.choices)
    wheals = serializers.IntegerField()
    itch = serializers.IntegerField()
    uas = serializers.IntegerField()
    angioedema = serializers.BooleanField()
    aas_items = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    note = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DiaryEntryApi(MeApi):
    class InputSerializer(StrictSerializer):
        id = serializers.UUIDField(required=False, help_text="Client-generated id (offline-first).")
        wheals = serializers.IntegerField(min_value=0, max_value=3)
        itch = serializers.IntegerField(min_value=0, max_value=3)
        angioedema = serializers.BooleanField(default=False)
        aas_items = serializers.ListField(
            child=serializers.IntegerField(min_value=0, max_value=3),
            min_length=5,
            max_length=5,
            required=False,
            allow_null=True,
        )
        note = serializers.CharField(
            max_length=2000, allow_blank=True, default="", validators=[no_control_characters_in_text]
        )
        recorded_at = BoundedDateTimeField(required=False)

    @extend_schema(request=InputSerializer, responses={200: DiaryEntrySerializer, 201: DiaryEntrySerializer})
    def put(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        entry, created = services.diary_entry_record(
            patient=self.patient(request),
            day=parse_day(day),
            slot=slot,
            wheals=data["wheals"],
            itch=data["itch"],
            angioedema=data["angioedema"],
            aas_items=data.get("aas_items"),
            note=data["note"],
            entry_id=data.get("id"),
            recorded_at=data.get("recorded_at"),
            late_days=self.late_days(request),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return self.no_store(Response(DiaryEntrySerializer(entry).data, status=code))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        services.diary_entry_delete(
            patient=self.patient(request), day=parse_day(day), slot=slot, late_days=self.late_days(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class DiarySlotEntryApi(DiaryEntryApi):
    """The twice-daily diary: the same record per half-day (`am` / `pm`)."""

    @extend_schema(
        operation_id="v1_me_diary_slot_update",
        request=DiaryEntryApi.InputSerializer,
        responses={200: DiaryEntrySerializer, 201: DiaryEntrySerializer},
    )
    def put(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        return super().put(request, day, slot)

    @extend_schema(operation_id="v1_me_diary_slot_destroy", responses={204: None})
    def delete(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        return super().delete(request, day, slot)


class DiaryListApi(MeApi):
    class FilterSerializer(StrictSerializer):
        start = BoundedDateField(required=False)  # exposed as `from` (a Python keyword)
        to = BoundedDateField(required=False)

        def get_fields(self) -> dict[str, Any]:
            fields = super().get_fields()
            fields["from"] = fields.pop("start")
            return fields

    @extend_schema(
        parameters=[OpenApiParameter("from", date), OpenApiParameter("to", date)],
        responses={200: DiaryEntrySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Live entries between two local dates (default: the last 28 days; at most 366)."""
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient(request)
        end = filters.get("to") or patient.local_today()
        start = filters.get("from") or end - timedelta(days=27)
        if start > end:
            raise ApplicationError(code="invalid_range", field="from", detail="'from' is after 'to'.")
        if (end - start).days + 1 > selectors.MAX_DIARY_RANGE_DAYS:
            raise ApplicationError(
                code="range_too_long", field="from", detail="Ask for at most 366 days at a time."
            )
        entries = selectors.diary_entries(patient=patient, start=start, end=end)
        return self.no_store(Response(DiaryEntrySerializer(entries, many=True).data))


# --- Scores ------------------------------------------------------------------------------------


class Uas7Serializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    uas7 = serializers.FloatField(allow_null=True)
    method = serializers.ChoiceField(choices=["complete", "prorated", "missing"])
    days_observed = serializers.IntegerField()
    itch7 = serializers.FloatField(allow_null=True)
    hives7 = serializers.FloatField(allow_null=True)
    band = serializers.CharField(allow_null=True)


class Uas7ScoresApi(MeApi):
    class FilterSerializer(StrictSerializer):
        end = BoundedDateField(required=False)
        weeks = serializers.IntegerField(min_value=1, max_value=52, default=12)

    @extend_schema(
        parameters=[OpenApiParameter("end", date), OpenApiParameter("weeks", int)],
        responses={200: Uas7Serializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Weekly UAS7 for `weeks` weeks ending on `end` (default today), oldest first."""
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient(request)
        weeks = selectors.uas7_history(
            patient=patient, end=filters.get("end") or patient.local_today(), weeks=filters["weeks"]
        )
        return self.no_store(Response(Uas7Serializer(weeks, many=True).data))


class QuestionnaireSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    instrument = serializers.ChoiceField(choices=Instrument.choices)
    answers = serializers.JSONField()
    score = serializers.IntegerField()
    category = serializers.SerializerMethodField()
    period_end = serializers.DateField()
    recorded_at = serializers.DateTimeField()

    def get_category(self, response: QuestionnaireResponse) -> str | None:
        return scores.uct_category(response.score) if response.instrument in ("uct", "uct7") else None


class UctScoresApi(MeApi):
    @extend_schema(responses={200: QuestionnaireSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """UCT and UCT7 results, newest first, with their control category."""
        responses = QuestionnaireResponse.objects.filter(
            patient=self.patient(request), instrument__in=["uct", "uct7"], deleted_at__isnull=True
        ).order_by("-period_end", "-recorded_at")[:100]
        return self.no_store(Response(QuestionnaireSerializer(responses, many=True).data))


class AasScoresApi(MeApi):
    class FilterSerializer(StrictSerializer):
        end = BoundedDateField(required=False)

    class OutputSerializer(serializers.Serializer):
        class WeeklySerializer(serializers.Serializer):
            start = serializers.DateField()
            end = serializers.DateField()
            value = serializers.FloatField(allow_null=True)
            method = serializers.CharField()
            days_observed = serializers.IntegerField()

        aas7 = WeeklySerializer()
        aas28 = WeeklySerializer()
        days = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(parameters=[OpenApiParameter("end", date)], responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        """AAS7 and AAS28 ending on `end` (default today) from the diary's angioedema items."""
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient(request)
        end = filters.get("end") or patient.local_today()
        entries = list(selectors.diary_entries(patient=patient, start=end - timedelta(days=27), end=end))
        per_day = selectors.aas_per_day_from(entries)
        body = {
            "aas7": scores.aas7(per_day, end),
            "aas28": scores.aas28(per_day, end),
            "days": {day.isoformat(): value for day, value in sorted(per_day.items())},
        }
        return self.no_store(Response(self.OutputSerializer(body).data))


# --- Questionnaires ----------------------------------------------------------------------------


class QuestionnaireCreateApi(MeApi):
    class InputSerializer(StrictSerializer):
        id = serializers.UUIDField(required=False)
        answers = serializers.JSONField(
            help_text='UCT/UCT7: {"items": [0-4 ×4]}; AAS: {"angioedema", "items": [0-3 ×5]}'
        )
        period_end = BoundedDateField(required=False)

    @extend_schema(
        request=InputSerializer, responses={201: QuestionnaireSerializer, 200: QuestionnaireSerializer}
    )
    def post(self, request: Request, instrument: str) -> Response:
        if instrument not in Instrument.values:
            raise ApplicationError(code="unknown_instrument", status_code=404, detail="Unknown instrument.")
        data = self.validated(self.InputSerializer, request.data)
        response, created = services.questionnaire_record(
            patient=self.patient(request),
            instrument=instrument,
            answers=data["answers"],
            period_end=data.get("period_end"),
            response_id=data.get("id"),
            late_days=self.late_days(request),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return self.no_store(Response(QuestionnaireSerializer(response).data, status=code))


class QuestionnaireListApi(MeApi):
    @extend_schema(responses={200: QuestionnaireSerializer(many=True)})
    def get(self, request: Request) -> Response:
        responses = QuestionnaireResponse.objects.filter(
            patient=self.patient(request), deleted_at__isnull=True
        ).order_by("-period_end", "-recorded_at")[:200]
        return self.no_store(Response(QuestionnaireSerializer(responses, many=True).data))


# --- Medications and doses ---------------------------------------------------------------------


class DoseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    prescription = serializers.UUIDField(source="prescription_id")
    date = serializers.DateField(source="scheduled_date")
    status = serializers.ChoiceField(choices=DoseStatus.choices)
    taken_at = serializers.DateTimeField(allow_null=True)


class MedicationTodaySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    medication = serializers.CharField(source="medication_id")
    name = serializers.CharField(source="medication.name")
    dose = serializers.CharField()
    frequency_kind = serializers.CharField()
    frequency_value = serializers.IntegerField(allow_null=True)
    guideline_step = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField(allow_null=True)
    due_today = serializers.IntegerField()
    logged_today = DoseSerializer(many=True)


class MedicationsApi(MeApi):
    @extend_schema(responses={200: MedicationTodaySerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Current prescriptions with today's schedule and what is already logged for today."""
        patient = self.patient(request)
        today = patient.local_today()
        current = selectors.prescriptions_overlapping(patient=patient, start=today, end=today)
        logged: dict[uuid.UUID, list[DoseLog]] = {}
        for dose in DoseLog.objects.filter(patient=patient, scheduled_date=today).order_by("created_at"):
            logged.setdefault(dose.prescription_id, []).append(dose)
        last_injection = dict(
            DoseLog.objects.filter(patient=patient, status=DoseStatus.TAKEN, prescription__in=current)
            .order_by("prescription_id", "-scheduled_date")
            .distinct("prescription_id")
            .values_list("prescription_id", "scheduled_date")
        )
        body = [
            {
                **{
                    f: getattr(rx, f)
                    for f in (
                        "id",
                        "medication_id",
                        "medication",
                        "dose",
                        "frequency_kind",
                        "frequency_value",
                        "guideline_step",
                        "start",
                        "end",
                    )
                },
                "due_today": _due_today(rx, today, last_injection.get(rx.pk)),
                "logged_today": logged.get(rx.pk, []),
            }
            for rx in current
        ]
        return self.no_store(Response(MedicationTodaySerializer(body, many=True).data))


def _due_today(rx: Prescription, today: date, last_taken: date | None) -> int:
    if rx.frequency_kind == "n_per_day":
        return rx.frequency_value or 0
    if rx.frequency_kind == "every_n_days":
        if last_taken is None:
            return 1
        return 1 if (today - last_taken).days >= (rx.frequency_value or 1) else 0
    return 0


class DoseCreateApi(MeApi):
    class InputSerializer(StrictSerializer):
        id = serializers.UUIDField()
        prescription = serializers.UUIDField()
        date = BoundedDateField()
        status = serializers.ChoiceField(choices=DoseStatus.choices)
        taken_at = BoundedDateTimeField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses={201: DoseSerializer, 200: DoseSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        dose, created = services.dose_log_record(
            patient=self.patient(request),
            dose_id=data["id"],
            prescription_id=data["prescription"],
            day=data["date"],
            status=data["status"],
            taken_at=data.get("taken_at"),
            late_days=self.late_days(request),
        )
        return self.no_store(Response(DoseSerializer(dose).data, status=201 if created else 200))


# --- Summary, export, deletion ---------------------------------------------------------------


class SummaryAdherenceSerializer(serializers.Serializer):
    medication = serializers.CharField()
    frequency_kind = serializers.ChoiceField(choices=FrequencyKind.choices)
    status = serializers.ChoiceField(
        choices=["scored", "new", "as_needed"],
        help_text="`new`: fewer than 7 eligible days, not scored yet (PDC null, never 0).",
    )
    eligible_days = serializers.IntegerField()
    covered_days = serializers.IntegerField()
    pdc = serializers.FloatField(allow_null=True, help_text="Proportion of days covered, over 28 days")
    adherent = serializers.BooleanField(allow_null=True, help_text="PDC ≥ 80 %")
    dose_ratio = serializers.FloatField(allow_null=True, help_text="Daily drugs: doses taken ÷ prescribed")
    doses_due = serializers.IntegerField()
    doses_on_time = serializers.IntegerField()
    on_time_rate = serializers.FloatField(
        allow_null=True, help_text="Injections: doses given within 7 days of their scheduled date"
    )


class SummaryUctSerializer(serializers.Serializer):
    score = serializers.IntegerField()
    instrument = serializers.ChoiceField(choices=["uct", "uct7"])
    category = serializers.CharField()
    period_end = serializers.DateField()
    current = serializers.BooleanField(help_text="Within its recall period (UCT 28 days, UCT7 7 days)")


class SummarySerializer(serializers.Serializer):
    today = serializers.DateField()
    uas7 = Uas7Serializer(help_text="The current week: ends today when today is recorded, else yesterday")
    previous_uas7 = Uas7Serializer()
    change = serializers.FloatField(allow_null=True)
    change_exceeds_mid = serializers.BooleanField(help_text="|change| ≥ the clinic's MID")
    uct = SummaryUctSerializer(allow_null=True, help_text="The current UCT; drives the alert")
    last_uct = SummaryUctSerializer(allow_null=True, help_text="The latest UCT of any age")
    diary_completion_28d = serializers.FloatField(allow_null=True)
    days_recorded_28d = serializers.IntegerField()
    days_eligible_28d = serializers.IntegerField(help_text="From enrollment at the earliest")
    adherence_28d = SummaryAdherenceSerializer(many=True, help_text="Per medication")
    lowest_pdc = serializers.FloatField(allow_null=True)
    last_entry = serializers.DateField(allow_null=True)
    diary_gap_days = serializers.IntegerField(help_text="Whole local days missed before today")
    diary_streak = serializers.IntegerField()
    days_missing_last_7 = serializers.IntegerField(help_text="Days of the current week not recorded")
    open_alerts = serializers.IntegerField()


def _uct_body(result: scores.UctResult | None, current: scores.UctResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "score": result.score,
        "instrument": result.instrument,
        "category": scores.uct_category(result.score),
        "period_end": result.period_end,
        "current": result == current,
    }


def summary_body(summary: scores.PatientSummary, open_alerts: int) -> dict[str, Any]:
    """The summary as the patient's page and the portal's patient page show it: the values of
    `scores.patient_summary`, as the portal list's row holds them."""
    return {
        "today": summary.valid_for,
        "uas7": summary.current,
        "previous_uas7": summary.previous,
        "change": summary.change.delta,
        "change_exceeds_mid": summary.change.exceeds_mid,
        "uct": _uct_body(summary.uct, summary.uct),
        "last_uct": _uct_body(summary.last_uct, summary.uct),
        "diary_completion_28d": summary.diary_completion,
        "days_recorded_28d": summary.days_recorded,
        "days_eligible_28d": summary.days_eligible,
        "adherence_28d": [adherence_json(a) for a in summary.adherence],
        "lowest_pdc": summary.lowest_pdc,
        "last_entry": summary.last_entry,
        "diary_gap_days": summary.diary_gap,
        "diary_streak": summary.streak,
        "days_missing_last_7": 7 - summary.current.days_observed,
        "open_alerts": open_alerts,
    }


class SummaryApi(MeApi):
    @extend_schema(responses={200: SummarySerializer})
    def get(self, request: Request) -> Response:
        summary, row = summary_get(self.patient(request))
        return self.no_store(Response(SummarySerializer(summary_body(summary, row.open_alerts)).data))


class ExportApi(MeApi):
    throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "export"

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        """All the patient's data as one JSON document (right of access). Audited."""
        document = services.patient_export(
            patient=self.patient(request),
            actor_id=request.user.pk,
            actor_role="patient",
        )
        response = self.no_store(Response(document))
        response["Content-Disposition"] = 'attachment; filename="csu-tracker-export.json"'
        return response


class DeletionRequestApi(MeApi):
    allowed_when_offboarding = True  # a data-subject right, whatever the clinic's state

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=2000, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        deletion = services.deletion_request_create(patient=self.patient(request), reason=data["reason"])
        return Response(self.OutputSerializer(deletion).data, status=status.HTTP_202_ACCEPTED)


# --- Sync ----------------------------------------------------------------------------------------


class SyncApi(MeApi):
    throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "sync"

    def schema_version(self, request: Request, body: dict[str, Any] | None = None) -> None:
        version = request.headers.get("X-Schema-Version") or (body or {}).get("schema_version")
        version = version if version is not None else request.query_params.get("schema_version")
        sync.schema_version_check(version)


class SyncPushApi(SyncApi):
    class InputSerializer(StrictSerializer):
        class MutationSerializer(StrictSerializer):
            mutation_id = serializers.IntegerField(min_value=1)
            table = serializers.ChoiceField(choices=sync.TABLES)
            id = serializers.UUIDField()
            op = serializers.ChoiceField(choices=["upsert", "delete"])
            base_version = serializers.IntegerField(
                min_value=0, required=False, allow_null=True, default=None
            )
            fields = serializers.DictField(required=False, default=dict)

        client_id = serializers.UUIDField()
        schema_version = serializers.IntegerField(required=False)
        mutations = MutationSerializer(many=True, allow_empty=True)

        def validate_mutations(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
            ids = [m["mutation_id"] for m in value]
            if ids != sorted(ids) or len(set(ids)) != len(ids):
                raise serializers.ValidationError("Mutation ids must be strictly ascending.")
            return value

    class OutputSerializer(serializers.Serializer):
        last_mutation_id = serializers.IntegerField()
        results = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        parameters=[OpenApiParameter("X-Schema-Version", int, location=OpenApiParameter.HEADER)],
    )
    def post(self, request: Request) -> Response:
        """Apply a device's queued mutations: per-mutation status applied | merged | conflict |
        rejected | duplicate; 409 `mutation_gap` (nothing applied) if ids skip; 413 above 500."""
        raw = request.data if isinstance(request.data, dict) else {}
        if isinstance(raw.get("mutations"), list) and len(raw["mutations"]) > sync.MAX_BATCH:
            raise ApplicationError(
                code="batch_too_large",
                status_code=413,
                detail=f"At most {sync.MAX_BATCH} mutations per push.",
            )
        self.schema_version(request, raw)
        data = self.validated(self.InputSerializer, request.data)
        result = sync.sync_push(
            patient=self.patient(request),
            user_id=request.user.pk,
            client_id=data["client_id"],
            mutations=data["mutations"],
            late_days=self.late_days(request),
        )
        return self.no_store(
            Response({"last_mutation_id": result.last_mutation_id, "results": result.results})
        )


class SyncPullApi(SyncApi):
    atomic_requests = False  # its own REPEATABLE READ transaction

    class FilterSerializer(StrictSerializer):
        cursor = serializers.CharField(required=False, max_length=2000)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=sync.MAX_PULL, default=500)
        client_id = serializers.UUIDField(required=False)
        schema_version = serializers.IntegerField(required=False)

    class OutputSerializer(serializers.Serializer):
        changes = serializers.DictField()
        cursor = serializers.CharField()
        has_more = serializers.BooleanField()
        last_mutation_id = serializers.IntegerField()

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("client_id", str),
            OpenApiParameter("schema_version", int),
            OpenApiParameter("X-Schema-Version", int, location=OpenApiParameter.HEADER),
        ],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request) -> Response:
        """Changes since the cursor (omit it for a full download), `{table: {upserted, deleted}}`."""
        filters = self.query(self.FilterSerializer, request)
        self.schema_version(request, filters)
        result = sync.sync_pull(
            patient=self.patient(request),
            client_id=filters.get("client_id"),
            cursor=filters.get("cursor"),
            limit=filters["limit"],
        )
        body = {
            "changes": result.changes,
            "cursor": result.cursor,
            "has_more": result.has_more,
            "last_mutation_id": result.last_mutation_id,
        }
        return self.no_store(Response(body))


# --- Reminders and push subscriptions --------------------------------------------------------


class ReminderSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    local_time = LocalTimeField()
    days_of_week = serializers.ListField(child=serializers.IntegerField())
    prescription = serializers.UUIDField(source="prescription_id", allow_null=True)
    enabled = serializers.BooleanField()
    next_fire_at = serializers.DateTimeField(allow_null=True, help_text="Next occurrence (UTC)")
    server_version = serializers.IntegerField()


class ReminderInputSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=ReminderKind.choices)
    local_time = LocalTimeField(help_text="Local wall-clock time, HH:MM")
    days_of_week = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7), min_length=1, max_length=7, required=False
    )
    prescription = serializers.UUIDField(required=False, allow_null=True)
    enabled = serializers.BooleanField(required=False, default=True)


class ReminderListCreateApi(MeApi):
    class InputSerializer(ReminderInputSerializer):
        id = serializers.UUIDField(required=False, help_text="Generated by the device (offline)")

    @extend_schema(responses={200: ReminderSerializer(many=True)})
    def get(self, request: Request) -> Response:
        items = selectors.reminders_of(patient=self.patient(request))
        return self.no_store(Response(ReminderSerializer(items, many=True).data))

    @extend_schema(request=InputSerializer, responses={201: ReminderSerializer, 200: ReminderSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        reminder, created = reminders.reminder_save(
            patient=self.patient(request),
            reminder_id=data.get("id"),
            kind=data["kind"],
            local_time=data["local_time"],
            days_of_week=data.get("days_of_week"),
            prescription_id=data.get("prescription"),
            enabled=data["enabled"],
        )
        sync.sync_stamp_now()  # the version it answers: taken now, just before the commit
        reminder.refresh_from_db(fields=["server_version"])
        return self.no_store(Response(ReminderSerializer(reminder).data, status=201 if created else 200))


class ReminderDetailApi(MeApi):
    class InputSerializer(ReminderInputSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={200: ReminderSerializer})
    def patch(self, request: Request, reminder_id: uuid.UUID) -> Response:
        data = self.validated(self.InputSerializer, request.data, partial=True)
        reminder = reminders.reminder_update(patient=self.patient(request), reminder_id=reminder_id, **data)
        sync.sync_stamp_now()  # the version it answers: taken now, just before the commit
        reminder.refresh_from_db(fields=["server_version"])
        return self.no_store(Response(ReminderSerializer(reminder).data))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, reminder_id: uuid.UUID) -> Response:
        reminders.reminder_delete(patient=self.patient(request), reminder_id=reminder_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReminderDeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    reminder = serializers.UUIDField(source="reminder_id")
    local_date = serializers.DateField()
    scheduled_for = serializers.DateTimeField()
    status = serializers.CharField()
    reason = serializers.CharField()
    channel = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)


class ReminderDeliveryListApi(MeApi):
    """What was sent or skipped lately (the PWA opens a push by its delivery id)."""

    @extend_schema(responses={200: ReminderDeliverySerializer(many=True)})
    def get(self, request: Request) -> Response:
        items = selectors.recent_reminder_deliveries(patient=self.patient(request))
        return self.no_store(Response(ReminderDeliverySerializer(items, many=True).data))


class PushSubscriptionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    endpoint = serializers.URLField()
    created_at = serializers.DateTimeField()
    last_success_at = serializers.DateTimeField(allow_null=True)


class PushSubscriptionListCreateApi(MeApi):
    class InputSerializer(StrictSerializer):
        class KeysSerializer(StrictSerializer):
            p256dh = serializers.RegexField(
                r"^[A-Za-z0-9_-]{80,100}={0,2}$", help_text="base64url P-256 point"
            )
            auth = serializers.RegexField(r"^[A-Za-z0-9_-]{16,30}={0,2}$", help_text="base64url auth secret")

        endpoint = serializers.URLField(max_length=1000)
        keys = KeysSerializer()
        expirationTime = serializers.IntegerField(required=False, allow_null=True)  # noqa: N815 (PushSubscription.toJSON())

    class OutputSerializer(serializers.Serializer):
        vapid_public_key = serializers.CharField(help_text="applicationServerKey for PushManager.subscribe()")
        subscriptions = PushSubscriptionSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        subscriptions = selectors.push_subscriptions_of(patient=self.patient(request))
        body = {"vapid_public_key": settings.WEB_PUSH_VAPID_PUBLIC_KEY, "subscriptions": subscriptions}
        return self.no_store(Response(self.OutputSerializer(body).data))

    @extend_schema(
        request=InputSerializer, responses={201: PushSubscriptionSerializer, 200: PushSubscriptionSerializer}
    )
    def post(self, request: Request) -> Response:
        """Register this browser's subscription (201), or refresh its keys (200); 409
        `push_endpoint_taken` if the endpoint is registered to another account."""
        data = self.validated(self.InputSerializer, request.data)
        subscription, created = reminders.push_subscription_register(
            patient=self.patient(request),
            endpoint=data["endpoint"],
            p256dh=data["keys"]["p256dh"],
            auth=data["keys"]["auth"],
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return self.no_store(
            Response(PushSubscriptionSerializer(subscription).data, status=201 if created else 200)
        )


class PushSubscriptionDeleteApi(MeApi):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, subscription_id: uuid.UUID) -> Response:
        reminders.push_subscription_delete(patient=self.patient(request), subscription_id=subscription_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
