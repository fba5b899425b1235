"""URL patterns served on every host: readiness and the API documentation."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularSwaggerSplitView

from config.openapi import HostSchemaView
from core.health import readyz
from core.problems import ProblemPageView, ProblemsPageView

common_patterns = [
    path("readyz", readyz, name="readyz"),
    # The pages problem `type` URIs point at (core.problems), on every host.
    path("problems/", ProblemsPageView.as_view(), name="problems"),
    path("problems/<slug:code>", ProblemPageView.as_view(), name="problem"),
    path(
        "api/schema/",
        HostSchemaView.as_view(permission_classes=[], authentication_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", permission_classes=[], authentication_classes=[]
        ),
        name="swagger-ui",
    ),
]
