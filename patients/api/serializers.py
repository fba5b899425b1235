"""Output serializers that more than one API module uses: the patient's own endpoints and the
clinician portal (which shows the same summary and UAS7 weeks)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from patients import scores
from patients.models import FrequencyKind, Instrument, QuestionnaireResponse
from patients.summary import adherence_json, uct_json


class Uas7Serializer(serializers.Serializer[Any]):
    start = serializers.DateField()
    end = serializers.DateField()
    uas7 = serializers.FloatField(allow_null=True)
    method = serializers.ChoiceField(choices=["complete", "prorated", "missing"])
    days_observed = serializers.IntegerField()
    itch7 = serializers.FloatField(allow_null=True)
    hives7 = serializers.FloatField(allow_null=True)
    band = serializers.CharField(allow_null=True)


class QuestionnaireSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    instrument = serializers.ChoiceField(choices=Instrument.choices)
    answers = serializers.JSONField()
    score = serializers.IntegerField()
    category = serializers.SerializerMethodField()
    period_end = serializers.DateField()
    recorded_at = serializers.DateTimeField()

    def get_category(self, response: QuestionnaireResponse) -> str | None:
        return scores.uct_category(response.score) if response.instrument in ("uct", "uct7") else None


class SummaryAdherenceSerializer(serializers.Serializer[Any]):
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


class SummaryUctSerializer(serializers.Serializer[Any]):
    score = serializers.IntegerField()
    instrument = serializers.ChoiceField(choices=["uct", "uct7"])
    category = serializers.CharField()
    period_end = serializers.DateField()
    current = serializers.BooleanField(help_text="Within its recall period (UCT 28 days, UCT7 7 days)")


class SummarySerializer(serializers.Serializer[Any]):
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
    body = uct_json(result)
    return None if body is None else {**body, "current": result == current}


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
