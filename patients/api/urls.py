from __future__ import annotations

from django.urls import path, re_path

from patients.api import enrollment, views
from patients.api.views import consent

DAY = r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})"

me_patterns = [
    path("auth/enroll/", enrollment.EnrollApi.as_view(), name="auth-enroll"),
    path("auth/privacy-notice/", consent.PrivacyNoticeApi.as_view(), name="auth-privacy-notice"),
    path("me/profile/", views.ProfileApi.as_view(), name="me-profile"),
    path("me/consent/", consent.MyConsentApi.as_view(), name="me-consent"),
    path("me/consent/withdraw/", consent.MyConsentWithdrawApi.as_view(), name="me-consent-withdraw"),
    path("me/diary/", views.DiaryListApi.as_view(), name="me-diary"),
    re_path(rf"^me/diary/{DAY}/$", views.DiaryEntryApi.as_view(), name="me-diary-day"),
    re_path(rf"^me/diary/{DAY}/(?P<slot>am|pm)/$", views.DiarySlotEntryApi.as_view(), name="me-diary-slot"),
    path("me/scores/uas7/", views.Uas7ScoresApi.as_view(), name="me-scores-uas7"),
    path("me/scores/uct/", views.UctScoresApi.as_view(), name="me-scores-uct"),
    path("me/scores/aas/", views.AasScoresApi.as_view(), name="me-scores-aas"),
    path("me/questionnaires/", views.QuestionnaireListApi.as_view(), name="me-questionnaires"),
    path(
        "me/questionnaires/<str:instrument>/", views.QuestionnaireCreateApi.as_view(), name="me-questionnaire"
    ),
    path("me/medications/", views.MedicationsApi.as_view(), name="me-medications"),
    path("me/doses/", views.DoseCreateApi.as_view(), name="me-doses"),
    path("me/summary/", views.SummaryApi.as_view(), name="me-summary"),
    path("me/export/", views.ExportApi.as_view(), name="me-export"),
    path("me/deletion-request/", views.DeletionRequestApi.as_view(), name="me-deletion-request"),
    path("me/reminders/", views.ReminderListCreateApi.as_view(), name="me-reminders"),
    path("me/reminders/<uuid:reminder_id>/", views.ReminderDetailApi.as_view(), name="me-reminder"),
    path("me/reminder-deliveries/", views.ReminderDeliveryListApi.as_view(), name="me-reminder-deliveries"),
    path(
        "me/push-subscriptions/", views.PushSubscriptionListCreateApi.as_view(), name="me-push-subscriptions"
    ),
    path(
        "me/push-subscriptions/<uuid:subscription_id>/",
        views.PushSubscriptionDeleteApi.as_view(),
        name="me-push-subscription",
    ),
    path("sync/push/", views.SyncPushApi.as_view(), name="sync-push"),
    path("sync/pull/", views.SyncPullApi.as_view(), name="sync-pull"),
]
