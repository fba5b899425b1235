"""A revocation racing a refresh, with real connections and real commits: the refresh that had
read the user just before `credentials_revoke` must not mint an access token that outlives it
(found when a browser test's password-style revocation met the app's start-up refresh)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connection, connections

from accounts.models import Membership, Role, User
from accounts.services import credentials_revoke
from accounts.services import tokens as token_services
from tenants.models import Clinic
from tests.conftest import host_client, make_member, tokens_for
from tests.waiting import wait_for_lock_wait


def test_a_refresh_issuing_while_credentials_are_revoked_is_revoked_too(
    committed_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic = Clinic.objects.get(slug="alpha")
    user = make_member(f"race-{uuid.uuid4().hex[:6]}@example.com", clinic, Role.PATIENT)
    refresh = tokens_for(user, clinic)["refresh"]
    locked, go = threading.Event(), threading.Event()
    issue = token_services.tokens_issue

    def paused_issue(**kwargs: Any) -> dict[str, str]:
        locked.set()  # the refresh holds its family's row and has read the user
        assert go.wait(20)
        return issue(**kwargs)

    monkeypatch.setattr(token_services, "tokens_issue", paused_issue)
    issued: dict[str, Any] = {}
    revoker: dict[str, int] = {}

    def refresh_in_thread() -> None:
        try:
            issued["pair"] = token_services.token_refresh(raw=refresh, clinic=clinic)
        except Exception as exc:  # noqa: BLE001 - reported below
            issued["error"] = exc
        finally:
            connections.close_all()

    def revoke_in_thread() -> None:
        try:
            connection.ensure_connection()
            revoker["pid"] = connection.connection.info.backend_pid
            credentials_revoke(user=User.objects.get(pk=user.pk))
        finally:
            connections.close_all()

    refreshing = threading.Thread(target=refresh_in_thread)
    refreshing.start()
    try:
        assert locked.wait(20)
        revoking = threading.Thread(target=revoke_in_thread)
        revoking.start()
        while "pid" not in revoker:
            threading.Event().wait(0.01)
        assert wait_for_lock_wait(revoker["pid"])  # the revocation waits for the refresh's row
    finally:
        go.set()
        refreshing.join(20)
    revoking.join(20)
    try:
        assert "error" not in issued, issued.get("error")
        client = host_client("alpha.localhost")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued['pair']['access']}")
        assert client.get("/api/v1/auth/me/").status_code == 401
        again = host_client("alpha.localhost").post(
            "/api/v1/auth/token/refresh/", {"refresh": issued["pair"]["refresh"]}, format="json"
        )
        assert again.status_code == 401
    finally:
        connection.set_schema_to_public()
        Membership.objects.filter(user_id=user.pk).delete()
        User.objects.filter(pk=user.pk).delete()
