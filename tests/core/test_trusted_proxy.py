"""Client addresses come from the trusted proxy only (DESIGN.md §9, issue 14 finding 5):
X-Forwarded-For counts only from TRUSTED_PROXY_IPS, forwarding headers from anyone else are
dropped, throttles and lockout count the same key, and an IPv6 client is its /64."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from core.api.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle
from core.net import address_key, client_ip, client_key, peer_is_trusted_proxy
from core.request_context import RequestContextMiddleware

ROOT = Path(__file__).resolve().parents[2]
CADDY = "172.30.80.2"  # the proxy's fixed address in deploy/compose.yaml
MALLORY_DIRECT = "203.0.113.66"  # reaches gunicorn without going through Caddy


@pytest.fixture
def behind_caddy(settings) -> None:  # noqa: ANN001
    """The documented deployment: one proxy hop, trusted at Caddy's address only."""
    settings.TRUSTED_PROXY_IPS = [CADDY]
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def request_from(peer: str, forwarded_for: str | None = None, **headers: str) -> HttpRequest:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=peer, **extra, **headers)


# --- core.net -----------------------------------------------------------------------------------


def test_forwarded_for_is_ignored_when_the_peer_is_not_the_proxy(behind_caddy: None) -> None:
    request = request_from(MALLORY_DIRECT, forwarded_for="198.51.100.7")
    assert not peer_is_trusted_proxy(request)
    assert client_ip(request) == MALLORY_DIRECT


def test_from_the_proxy_the_entry_it_appended_is_the_client(behind_caddy: None) -> None:
    assert peer_is_trusted_proxy(request_from(CADDY))
    # A proxy that appends (rather than replaces) leaves the client's own claim on the left.
    assert client_ip(request_from(CADDY, forwarded_for="10.9.9.9, 198.51.100.7")) == "198.51.100.7"
    assert client_ip(request_from(CADDY, forwarded_for="198.51.100.7")) == "198.51.100.7"
    # Nothing forwarded, or not an address: the proxy itself, never a made-up value.
    assert client_ip(request_from(CADDY)) == CADDY
    assert client_ip(request_from(CADDY, forwarded_for="unknown")) == CADDY


def test_two_proxy_hops_take_the_entry_two_from_the_right(settings) -> None:  # noqa: ANN001
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 2
    request = request_from("10.0.0.5", forwarded_for="192.0.2.1, 198.51.100.7, 10.1.1.1")
    assert client_ip(request) == "198.51.100.7"
    # Fewer entries than hops: the chain is not ours, so the peer counts.
    assert client_ip(request_from("10.0.0.5", forwarded_for="198.51.100.7")) == "10.0.0.5"


def test_without_trusted_proxies_the_peer_is_the_client(settings) -> None:  # noqa: ANN001
    settings.TRUSTED_PROXY_IPS = []
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request_from(CADDY, forwarded_for="198.51.100.7")) == CADDY


def test_an_invalid_trusted_proxy_entry_is_a_configuration_error(settings) -> None:  # noqa: ANN001
    settings.TRUSTED_PROXY_IPS = ["172.30.80.2/24"]  # host bits set: refused, as gunicorn does
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXY_IPS"):
        peer_is_trusted_proxy(request_from(CADDY))


def test_ipv6_addresses_in_one_64_share_a_key() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::"
    assert address_key("2001:DB8:1:2:bbbb:cccc:dddd:eeee") == "2001:db8:1:2::"
    assert address_key("2001:db8:1:3::1") == "2001:db8:1:3::"
    assert address_key("198.51.100.7") == "198.51.100.7"
    # An IPv4 client seen through a dual-stack socket is that IPv4 address.
    assert address_key("::ffff:198.51.100.7") == "198.51.100.7"


def test_client_key_is_the_trusted_address_keyed_per_64(behind_caddy: None) -> None:
    request = request_from(CADDY, forwarded_for="2001:db8:1:2:aaaa::1")
    assert client_ip(request) == "2001:db8:1:2:aaaa::1"
    assert client_key(request) == "2001:db8:1:2::"


def test_throttles_and_lockout_count_the_same_key(behind_caddy: None) -> None:
    assert django_settings.AXES_CLIENT_IP_CALLABLE == "core.net.client_key"
    assert django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "core.api.throttling.AnonRateThrottle",
        "core.api.throttling.UserRateThrottle",
    ]
    first = Request(request_from(CADDY, forwarded_for="2001:db8:1:2::1"))
    second = Request(request_from(CADDY, forwarded_for="2001:db8:1:2:ffff::9"))
    for throttle in (AnonRateThrottle(), UserRateThrottle(), ScopedRateThrottle()):
        assert throttle.get_ident(first) == throttle.get_ident(second) == "2001:db8:1:2::"
    forged = Request(request_from(MALLORY_DIRECT, forwarded_for="198.51.100.7"))
    assert ScopedRateThrottle().get_ident(forged) == MALLORY_DIRECT


# --- Forwarding headers on entry ----------------------------------------------------------------


def seen_by_the_app(request: HttpRequest) -> dict[str, str | bool]:
    seen: dict[str, str | bool] = {}

    def view(inner: HttpRequest) -> HttpResponse:
        seen["forwarded_for"] = inner.META.get("HTTP_X_FORWARDED_FOR", "")
        seen["secure"] = inner.is_secure()
        return HttpResponse()

    RequestContextMiddleware(view)(request)
    return seen


def test_a_direct_client_cannot_set_forwarding_headers(behind_caddy: None, settings) -> None:  # noqa: ANN001
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    seen = seen_by_the_app(
        request_from(MALLORY_DIRECT, forwarded_for="198.51.100.7", HTTP_X_FORWARDED_PROTO="https")
    )
    assert seen == {"forwarded_for": "", "secure": False}


def test_the_proxys_forwarding_headers_reach_the_app(behind_caddy: None, settings) -> None:  # noqa: ANN001
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    seen = seen_by_the_app(request_from(CADDY, forwarded_for="198.51.100.7", HTTP_X_FORWARDED_PROTO="https"))
    assert seen == {"forwarded_for": "198.51.100.7", "secure": True}


# --- End to end: the enrollment throttle ----------------------------------------------------------


def test_a_client_reaching_the_app_directly_cannot_forge_its_way_past_the_enroll_throttle(
    behind_caddy: None, client_a: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DRF reads the rates into a class attribute at import time; production's enroll rate.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "enroll": "10/min"}
    )
    cache.clear()
    statuses = [
        client_a.post(
            "/api/v1/auth/enroll/",
            {
                "code": "AAAA-AAAA",
                "email": "guess@example.com",
                "password": "a long enough guess",
                "privacy_notice_version": 1,
            },
            format="json",
            REMOTE_ADDR=MALLORY_DIRECT,
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(15)
    ]
    assert statuses[10:] == [429] * 5
    assert 429 not in statuses[:10]


def test_behind_the_proxy_the_enroll_throttle_counts_each_client(
    behind_caddy: None, client_a: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "enroll": "2/min"}
    )
    cache.clear()

    def enroll(client_address: str) -> int:
        return client_a.post(
            "/api/v1/auth/enroll/",
            {
                "code": "AAAA-AAAA",
                "email": "guess@example.com",
                "password": "a long enough guess",
                "privacy_notice_version": 1,
            },
            format="json",
            REMOTE_ADDR=CADDY,
            HTTP_X_FORWARDED_FOR=client_address,
        ).status_code

    assert [enroll("198.51.100.1") for _ in range(3)][-1] == 429
    assert enroll("198.51.100.2") != 429


# --- gunicorn trusts the same peers -------------------------------------------------------------


def test_gunicorn_trusts_forwarding_headers_from_the_same_addresses_as_django(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRUSTED_PROXY_IPS", "172.30.80.2,10.0.0.0/8")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # gunicorn's own variable is not what counts
    config = runpy.run_path(str(ROOT / "deploy/gunicorn.conf.py"))
    assert config["forwarded_allow_ips"] == "172.30.80.2,10.0.0.0/8"
    monkeypatch.delenv("TRUSTED_PROXY_IPS")
    assert runpy.run_path(str(ROOT / "deploy/gunicorn.conf.py"))["forwarded_allow_ips"] == ""
