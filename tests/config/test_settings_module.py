"""The suite runs on the test settings, whatever imported `config` first (the pytest plugin
config.pytest_embedded does, before pytest-django reads DJANGO_SETTINGS_MODULE from its ini)."""

from __future__ import annotations

from django.conf import settings


def test_the_suite_runs_on_the_test_settings() -> None:
    assert settings.SETTINGS_MODULE == "config.settings.test"
    assert settings.CELERY_TASK_ALWAYS_EAGER is True
