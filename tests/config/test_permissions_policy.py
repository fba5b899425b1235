"""A Permissions-Policy on every response: no page of ours may use camera, microphone,
geolocation, payment and the like (issue 14 finding 18)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import host_client

pytestmark = pytest.mark.django_db

DENIED = ["camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()", "browsing-topics=()"]


def features(header: str) -> list[str]:
    return [part.strip() for part in header.split(",")]


def test_api_responses_deny_powerful_browser_features(alice_client: APIClient) -> None:
    response = alice_client.get("/api/v1/me/profile/")
    assert response.status_code == 200
    policy = features(response["Permissions-Policy"])
    assert set(DENIED) <= set(policy)
    assert all(feature.endswith("=()") for feature in policy)


@pytest.mark.parametrize("path", ["/healthz", "/api/docs/", "/api/v1/nowhere/"])
def test_every_kind_of_response_carries_the_policy(public_client: APIClient, path: str) -> None:
    assert set(DENIED) <= set(features(public_client.get(path)["Permissions-Policy"]))


def test_an_unknown_host_gets_the_policy_too() -> None:
    response = host_client("nowhere.localhost").get("/")
    assert response.status_code == 404
    assert "camera=()" in features(response["Permissions-Policy"])
