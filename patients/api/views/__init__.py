"""The patient's own API (`/api/v1/me/…`, `/api/v1/sync/…`, JWT, patient role): the PWA's
contract. One module per part of the record; the view classes are importable from here (the
URLconf, and `patients.sync`, which validates pushed rows with their input serializers)."""

from patients.api.views.diary import DiaryEntryApi, DiaryListApi, DiarySlotEntryApi
from patients.api.views.medications import DoseCreateApi, MedicationsApi
from patients.api.views.profile import ProfileApi
from patients.api.views.questionnaires import QuestionnaireCreateApi, QuestionnaireListApi
from patients.api.views.records import DeletionRequestApi, ExportApi
from patients.api.views.reminders import (
    PushSubscriptionDeleteApi,
    PushSubscriptionListCreateApi,
    ReminderDeliveryListApi,
    ReminderDetailApi,
    ReminderListCreateApi,
)
from patients.api.views.scores import AasScoresApi, Uas7ScoresApi, UctScoresApi
from patients.api.views.summary import SummaryApi
from patients.api.views.sync import SyncPullApi, SyncPushApi

__all__ = [
    "AasScoresApi",
    "DeletionRequestApi",
    "DiaryEntryApi",
    "DiaryListApi",
    "DiarySlotEntryApi",
    "DoseCreateApi",
    "ExportApi",
    "MedicationsApi",
    "ProfileApi",
    "PushSubscriptionDeleteApi",
    "PushSubscriptionListCreateApi",
    "QuestionnaireCreateApi",
    "QuestionnaireListApi",
    "ReminderDeliveryListApi",
    "ReminderDetailApi",
    "ReminderListCreateApi",
    "SummaryApi",
    "SyncPullApi",
    "SyncPushApi",
    "Uas7ScoresApi",
    "UctScoresApi",
]
