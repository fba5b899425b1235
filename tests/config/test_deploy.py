"""The compose deployment (issue 14 findings 5 and 18): only Caddy is published, web is reached
from Caddy's fixed address alone and trusts exactly that address, PostgreSQL and Redis need
generated passwords, and Caddy asks the app before obtaining a certificate."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from tenants.middleware import TlsAskMiddleware

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REQUIRED = re.compile(r"\$\{(?P<name>[A-Z_]+):\?[^}]+\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_only_the_proxy_publishes_ports(compose: dict[str, Any]) -> None:
    published = {
        name: service["ports"] for name, service in compose["services"].items() if "ports" in service
    }
    assert published == {"proxy": ["80:80", "443:443", "443:443/udp"]}


def test_web_is_on_the_proxys_network_and_trusts_only_the_proxys_address(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy_ip = services["proxy"]["networks"]["edge"]["ipv4_address"]
    web_env = services["web"]["environment"]
    assert (web_env["TRUSTED_PROXY_IPS"], web_env["TRUSTED_PROXY_COUNT"]) == (proxy_ip, "1")
    assert "edge" in services["web"]["networks"]
    members = {name for name, service in services.items() if "edge" in service.get("networks", [])}
    assert members == {"proxy", "web"}
    # Caddy's fixed address is inside the subnet and outside the range web's address comes from.
    (edge,) = compose["networks"]["edge"]["ipam"]["config"]
    address = ipaddress.ip_address(proxy_ip)
    assert address in ipaddress.ip_network(edge["subnet"])
    assert address not in ipaddress.ip_network(edge["ip_range"])


def test_database_and_redis_need_generated_passwords(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert "change-me" not in text
    services = compose["services"]
    assert REQUIRED.fullmatch(services["db"]["environment"]["POSTGRES_PASSWORD"]).group("name") == (
        "POSTGRES_PASSWORD"
    )
    assert (
        REQUIRED.fullmatch(services["redis"]["environment"]["REDIS_PASSWORD"]).group("name")
        == "REDIS_PASSWORD"
    )
    assert '--requirepass "$$REDIS_PASSWORD"' in services["redis"]["command"][-1]
    app_env = services["worker"]["environment"]
    assert "${POSTGRES_PASSWORD:?" in app_env["DATABASE_URL"]
    assert "${REDIS_PASSWORD:?" in app_env["REDIS_URL"]
    for name in ("db", "redis"):
        assert services[name]["networks"] == ["backend"]


def test_env_example_ships_no_secret_values() -> None:
    values = dict(
        line.split("=", 1)
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for secret in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert values[secret] == "", secret
    assert "DATABASE_URL" not in values and "REDIS_URL" not in values  # compose builds them


def test_caddy_sends_a_request_id_and_asks_before_a_certificate() -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddyfile
    assert "header_up X-Request-ID {http.request.uuid}" in caddyfile
    assert f"ask http://web:8000{TlsAskMiddleware.PATH}" in caddyfile


# --- The certificate question --------------------------------------------------------------------

CADDY = "172.30.80.2"


@pytest.fixture
def behind_caddy(settings) -> None:  # noqa: ANN001
    settings.TRUSTED_PROXY_IPS = [CADDY]
    settings.TRUSTED_PROXY_COUNT = 1


def ask(domain: str, peer: str = CADDY) -> int:
    # Caddy asks on the internal address: the Host is not one of ours.
    client = APIClient(HTTP_HOST="web:8000")
    return client.get(TlsAskMiddleware.PATH, {"domain": domain}, REMOTE_ADDR=peer).status_code


@pytest.mark.django_db
def test_caddy_gets_certificates_only_for_our_hosts(behind_caddy: None, clinic_a: object) -> None:
    assert ask("localhost") == 200
    assert ask("alpha.localhost") == 200
    assert ask("ALPHA.localhost.") == 200
    assert ask("nonexistent.localhost") == 404
    assert ask("evil.example") == 404
    assert ask("") == 404


@pytest.mark.django_db
def test_only_the_proxy_may_ask(behind_caddy: None, clinic_a: object) -> None:
    assert ask("alpha.localhost", peer="203.0.113.66") == 404
