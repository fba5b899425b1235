"""Production refuses a short JWT_SIGNING_KEY and a half-configured trusted proxy
(issue 14 findings 5 and 18)."""

from __future__ import annotations

import pytest

from tests.config.test_settings import LOAD, run_production


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"JWT_SIGNING_KEY": "short-jwt-key"}, "refuse a JWT_SIGNING_KEY shorter than 32 bytes"),
        ({"JWT_SIGNING_KEY": "x" * 31}, "refuse a JWT_SIGNING_KEY shorter than 32 bytes"),
        ({"TRUSTED_PROXY_COUNT": "1"}, "refuse TRUSTED_PROXY_COUNT without TRUSTED_PROXY_IPS"),
        ({"TRUSTED_PROXY_IPS": "172.30.80.2"}, "refuse TRUSTED_PROXY_COUNT without TRUSTED_PROXY_IPS"),
        (
            {"TRUSTED_PROXY_IPS": "172.30.80.2/24", "TRUSTED_PROXY_COUNT": "1"},
            "refuse TRUSTED_PROXY_IPS",
        ),
    ],
)
def test_production_refuses_a_short_jwt_key_or_a_half_configured_proxy(
    overrides: dict[str, str], message: str
) -> None:
    result = run_production(LOAD, **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert "loaded" not in result.stdout


@pytest.mark.parametrize(
    "overrides",
    [
        {"JWT_SIGNING_KEY": "<unset>"},  # derived from the (checked) SECRET_KEY
        {"JWT_SIGNING_KEY": "k" * 32},
        {"TRUSTED_PROXY_IPS": "172.30.80.2,10.0.0.0/8", "TRUSTED_PROXY_COUNT": "1"},
    ],
)
def test_production_loads_with_a_long_jwt_key_and_a_configured_proxy(overrides: dict[str, str]) -> None:
    result = run_production(LOAD, **overrides)
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout
