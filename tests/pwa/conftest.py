"""Browser tests of the patient PWA: Debian's Chromium driven by Playwright against a live server
on loopback (gunicorn with the test settings on the test database), one fresh clinic per module.

The browser comes from CHROMIUM_PATH (default /usr/bin/chromium; `.ci/run` installs Debian's
`chromium`). A missing browser or an unbuilt app fails with what to do; it never skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django_tenants.utils import tenant_context

from accounts.models import Membership, Role, User
from tenants.models import Clinic
from tests.conftest import make_member
from tests.workers import ROOT, database_url, free_port

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("PWA_SCREENSHOTS", Path(tempfile.gettempdir()) / "csu-pwa-screenshots"))
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
PASSWORD = "pwa correct horse battery staple"
T = TypeVar("T")
# Chromium as the machine's probe runs it: no sandbox as root, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveClinic:
    clinic: Clinic
    base: str  # http://<slug>.localhost:<port>
    emails: list[str] = field(default_factory=list)

    def enrollment_code(self) -> str:
        """A fresh code, as a clinician issues it (the QR link carries it in the fragment)."""
        return orm(self._enrollment_code)

    def _enrollment_code(self) -> str:
        from patients.enrollment import enrollment_code_display, enrollment_issue

        email = f"dr-{uuid.uuid4().hex[:8]}@example.com"
        doctor = make_member(email, self.clinic, Role.CLINICIAN, "Dr PWA")
        self.emails.append(email)
        with tenant_context(self.clinic):
            _, code = enrollment_issue(
                clinic=self.clinic, patient=None, created_by=doctor, created_by_role="clinician"
            )
        connection.set_schema_to_public()
        return enrollment_code_display(code)

    def new_email(self) -> str:
        email = f"patient-{uuid.uuid4().hex[:8]}@example.com"
        self.emails.append(email)
        return email


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"No Chromium at {CHROMIUM}: the browser tests need one. Install Debian's "
            "(`apt-get install -y chromium`, as .ci/run does), or point CHROMIUM_PATH at a Chromium "
            "(`.venv/bin/playwright install chromium` fetches one where the internet is reachable).",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def built_app() -> Path:
    dist = Path(settings.PWA_DIST_DIR)
    if not (dist / "index.html").is_file():
        pytest.fail(
            f"The patient app is not built ({dist} has no index.html): run `make pwa`.", pytrace=False
        )
    return dist


@pytest.fixture(scope="module")
def live_clinic(django_db_setup: None, django_db_blocker: Any, built_app: Path) -> Iterator[LiveClinic]:  # noqa: ARG001
    """A clinic of its own and gunicorn serving it; everything is removed afterwards."""
    from tenants.services import clinic_create, clinic_delete

    port = free_port()
    slug = f"pwa-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        cache.clear()
        clinic = orm(clinic_create, slug=slug, name="Sonnenberg Skin Clinic", timezone="Europe/Berlin")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PWA_DIST_DIR": str(built_app),
        }
        log = tempfile.NamedTemporaryFile("w+", prefix="csu-pwa-server-", suffix=".log", delete=False)  # noqa: SIM115
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "2",
                "--threads",
                "4",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        live = LiveClinic(clinic=clinic, base=f"http://{slug}.localhost:{port}")
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("The live server did not start:\n" + Path(log.name).read_text()[-3000:])
                time.sleep(0.3)
            yield live
        finally:
            server.terminate()
            server.wait(timeout=30)
            orm(_remove, clinic.pk, live.emails, clinic_delete)


def _remove(clinic_id: Any, emails: list[str], clinic_delete: Callable[..., None]) -> None:
    Membership.objects.filter(user__email__in=emails).delete()
    User.objects.filter(email__in=emails).delete()
    clinic_delete(clinic=Clinic.objects.get(pk=clinic_id))


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session", autouse=True)
def _screenshot_folder(request: pytest.FixtureRequest) -> Iterator[None]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and any(SCREENSHOTS.iterdir()):
        reporter.write_line(f"PWA screenshots (360 px and desktop): {SCREENSHOTS}")


def orm(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run database work in a thread of its own, its connection closed after: Playwright's sync
    API keeps an event loop running in the test's thread, where Django refuses the ORM."""

    def work() -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def screenshot(page: Any, name: str) -> None:
    """The page at phone and desktop width, as a patient sees it."""
    size = page.viewport_size
    for label, viewport in (("360", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)
