"""A problem's `type` URI leads somewhere: a page on the platform host that explains its code,
generated from core.problems (issue 22)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import override_settings

from core.codes import ErrorCode
from core.errors import problem
from core.problems import (
    FRAMEWORK_CODES,
    PROBLEM_CODES,
    codes_without_meaning,
    problem_html,
    problem_type_uri,
)


def test_every_code_a_problem_can_carry_has_a_meaning() -> None:
    assert codes_without_meaning() == [], "add these codes' meanings to core.problems._MEANINGS"


def test_the_table_explains_only_codes_that_exist() -> None:
    known = {str(code) for code in ErrorCode} | set(FRAMEWORK_CODES)
    assert sorted(set(PROBLEM_CODES) - known) == []


@override_settings(PUBLIC_URL_SCHEME="https", PLATFORM_DOMAIN="csu-tracker.example", PUBLIC_PORT=None)
def test_the_type_uri_is_the_code_page_on_the_platform_host() -> None:
    body = problem(
        status_code=400, code=ErrorCode.UNKNOWN_MEDICATION, detail="Not in the medication catalogue."
    )
    assert body["type"] == "https://csu-tracker.example/problems/unknown_medication"


@override_settings(PUBLIC_URL_SCHEME="http", PLATFORM_DOMAIN="localhost", PUBLIC_PORT=8000)
def test_the_type_uri_carries_the_port_people_reach_the_site_on() -> None:
    assert problem_type_uri("locked_out") == "http://localhost:8000/problems/locked_out"


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
def test_a_problem_type_uri_resolves_to_a_page_explaining_its_code(
    public_client, clinic_a, host: str
) -> None:  # noqa: ANN001
    refused = public_client.get("/api/v1/auth/me/", HTTP_HOST="alpha.localhost")
    assert refused.status_code == 401
    type_uri = refused.json()["type"]
    assert urlsplit(type_uri).hostname == "localhost"
    page = public_client.get(urlsplit(type_uri).path, HTTP_HOST=host)
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    code = refused.json()["code"]
    assert f"<code>{code}</code>" in html
    assert problem_html(PROBLEM_CODES[code].meaning) in html


@pytest.mark.django_db
def test_the_index_lists_every_code_with_its_meaning(public_client) -> None:  # noqa: ANN001
    page = public_client.get("/problems/", HTTP_HOST="localhost")
    assert page.status_code == 200
    html = page.content.decode()
    for code, entry in PROBLEM_CODES.items():
        assert f'id="{code}"' in html
        assert problem_html(entry.meaning) in html and problem_html(entry.remedy) in html


@pytest.mark.django_db
def test_an_unknown_code_has_no_page(public_client) -> None:  # noqa: ANN001
    response = public_client.get("/problems/no_such_code", HTTP_HOST="localhost")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_pages_run_under_the_strict_content_security_policy(public_client) -> None:  # noqa: ANN001
    page = public_client.get("/problems/locked_out", HTTP_HOST="localhost")
    assert "default-src 'none'" in page["Content-Security-Policy"]
    assert "<script" not in page.content.decode()


def test_the_page_text_is_escaped_and_shows_code_spans() -> None:
    assert problem_html("Wait for `retry_after` <b>") == "Wait for <code>retry_after</code> &lt;b&gt;"


@pytest.mark.django_db
def test_a_remedy_names_fields_as_code(public_client) -> None:  # noqa: ANN001
    html = public_client.get("/problems/locked_out", HTTP_HOST="localhost").content.decode()
    assert "<code>retry_after</code>" in html and "`" not in html
