"""Production settings refuse unsafe configuration; `check --deploy` is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k3Jf9-QpL2x_7vN4mZ8rT1yW6bH0cS5dA9eG3uI7oP2lK4jH8fD6sX1zC5vB9nM0"  # test-only


def run_production(code: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": GOOD_SECRET,
        "ALLOWED_HOSTS": "csu.example.com,.csu.example.com",
        "PLATFORM_DOMAIN": "csu.example.com",
        "DEBUG": "false",
        "FIELD_ENCRYPTION_KEYS": "bm90LWEtcmVhbC1rZXktanVzdC1mb3ItdGVzdHMtMzI=",
    }
    env.update(overrides)
    env = {key: value for key, value in env.items() if value != "<unset>"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


LOAD = "import django; django.setup(); print('loaded')"


def test_production_settings_load_with_a_safe_configuration() -> None:
    result = run_production(LOAD)
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "true"}, "refuse to start with DEBUG on"),
        ({"SECRET_KEY": "<unset>"}, "without a real SECRET_KEY"),
        ({"SECRET_KEY": settings.DEV_SECRET_KEY}, "without a real SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "without a real SECRET_KEY"),
        ({"ALLOWED_HOSTS": "<unset>"}, "without ALLOWED_HOSTS"),
        ({"FIELD_ENCRYPTION_KEYS": "<unset>"}, "without FIELD_ENCRYPTION_KEYS"),
        ({"ALLOWED_HOSTS": ""}, "without ALLOWED_HOSTS"),
    ],
)
def test_production_settings_refuse_unsafe_configuration(overrides: dict[str, str], message: str) -> None:
    result = run_production(LOAD, **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert "loaded" not in result.stdout


def test_check_deploy_prints_no_warnings() -> None:
    code = (
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
    )
    result = run_production(code)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert "WARNING" not in result.stderr


def test_platform_is_a_source_root_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import platform, uuid; print(platform.system(), platform.python_implementation())",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Linux", "CPython"]
