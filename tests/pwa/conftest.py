"""Browser tests of the patient PWA: Debian's Chromium driven by Playwright against a live server
on loopback (gunicorn with the test settings on the test database) and a real Celery worker
consuming the clinic's queue, one fresh clinic per module. The server sends its tasks to the
worker (not in-process, as the test settings otherwise do); the test process's own setup calls
(`orm(...)`) still run theirs in-process.

`patient_page(context)` gives a page of a freshly enrolled patient, signed in and synced, in a
fraction of the time of going through the join screen (`SignedIn.page`, `SignedIn.email`).

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
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django.utils.timezone import now as django_now
from django_tenants.utils import tenant_context

from accounts.models import Membership, Role, User
from tenants.models import Clinic
from tests.conftest import make_member
from tests.workers import ROOT, database_url, free_port, wait_until_serving, worker_command

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("PWA_SCREENSHOTS", Path(tempfile.gettempdir()) / "csu-pwa-screenshots"))
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
PASSWORD = "pwa correct horse battery staple"
T = TypeVar("T")
# gunicorn's workers send the app's tasks to the broker (the worker below runs them).
GUNICORN_HOOKS = """
def post_worker_init(worker):
    from config.celery import app

    app.conf.task_always_eager = False
"""
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
    worker_log: Path | None = None

    def worker_log_tail(self, chars: int = 3000) -> str:
        """What the Celery worker logged (task received/succeeded lines at INFO)."""
        return self.worker_log.read_text()[-chars:] if self.worker_log else ""

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
        hooks = tempfile.NamedTemporaryFile("w", prefix="csu-pwa-gunicorn-", suffix=".py", delete=False)  # noqa: SIM115
        hooks.write(GUNICORN_HOOKS)
        hooks.close()
        # The worker reads the clinic list as it starts, so it consumes this clinic's queue.
        worker, worker_log = _start_worker(env)
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-c",
                hooks.name,
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
        live = LiveClinic(clinic=clinic, base=f"http://{slug}.localhost:{port}", worker_log=worker_log)
        try:
            wait_until_serving(port, server, Path(log.name))
            _wait_for_worker(live, worker)
            yield live
        finally:
            server.terminate()
            worker.terminate()
            server.wait(timeout=30)
            worker.wait(timeout=30)
            Path(hooks.name).unlink(missing_ok=True)
            orm(_remove, clinic.pk, live.emails, clinic_delete)


def _start_worker(env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    """A Celery worker on the test database and Redis: `platform` and every clinic's queue."""
    log = tempfile.NamedTemporaryFile("w+", prefix="csu-pwa-worker-", suffix=".log", delete=False)  # noqa: SIM115
    worker = subprocess.Popen(  # noqa: S603
        worker_command(log_level="INFO"),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return worker, Path(log.name)


def _wait_for_worker(live: LiveClinic, worker: subprocess.Popen[str]) -> None:
    """A probe task sent through the clinic's queue runs in the worker, in the clinic's schema."""
    from config.celery import app as celery_app
    from tests.celery_probe import record_schema

    key = f"pwa-probe-{uuid.uuid4().hex}"

    def send() -> None:
        celery_app.conf.task_always_eager = False
        try:
            with tenant_context(live.clinic):
                record_schema.delay(key)
        finally:
            celery_app.conf.task_always_eager = True
            connection.set_schema_to_public()

    def ran() -> Any:
        with tenant_context(live.clinic):
            found = cache.get(key)
        connection.set_schema_to_public()
        return found

    orm(send)
    deadline = time.monotonic() + 60
    while (found := orm(ran)) is None:
        if time.monotonic() > deadline or worker.poll() is not None:
            pytest.fail("The Celery worker did not run the clinic's probe task:\n" + live.worker_log_tail())
        time.sleep(0.3)
    assert found["schema"] == live.clinic.schema_name, found


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


@dataclass
class SignedIn:
    page: Any
    email: str


# Join through the API from the app's own origin (CSP allows `connect-src 'self'`), then keep
# the tokens where session.ts keeps them: the refresh token and the user in IndexedDB `meta`.
# The app's next start refreshes the access token, pulls, and finds the settings and diary.
_ENROLL_AND_KEEP = """async ({code, email, password}) => {
  const response = await fetch('/api/v1/auth/enroll/', {
    method: 'POST', credentials: 'omit',
    headers: {'Content-Type': 'application/json', Accept: 'application/json', 'X-Schema-Version': '1'},
    // Version 1: the clinic's default privacy notice, accepted as the enrollment screen does.
    body: JSON.stringify({code, email, password, privacy_notice_version: 1}),
  });
  const body = await response.json();
  if (!response.ok) return {error: `${response.status} ${JSON.stringify(body)}`};
  const claims = JSON.parse(atob(body.access.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  await new Promise((ok, fail) => {
    const open = indexedDB.open('csu-tracker');
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('meta', 'readwrite');
      tx.objectStore('meta').put({key: 'refresh_token', value: body.refresh});
      tx.objectStore('meta').put({key: 'user_id', value: claims.user_id});
      tx.oncomplete = () => { db.close(); ok(); };
      tx.onerror = () => fail(tx.error);
    };
  });
  return {};
}"""

# The device has pulled at least once (the sync engine keeps the pull cursor in `meta`).
SYNCED = """async () => new Promise((ok) => {
  const open = indexedDB.open('csu-tracker');
  open.onerror = () => ok(false);
  open.onsuccess = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains('meta')) { db.close(); ok(false); return; }
    const get = db.transaction('meta').objectStore('meta').get('cursor');
    get.onsuccess = () => { db.close(); ok(Boolean(get.result && get.result.value)); };
    get.onerror = () => { db.close(); ok(false); };
  };
})"""


@pytest.fixture
def patient_page(live_clinic: LiveClinic) -> Callable[..., SignedIn]:
    """`patient_page(context, path="/app/", verified=True, demo=None)`: a new patient of the
    clinic, signed in on a new page of `context` (whose locale and viewport the caller chose),
    first sync done. `verified` confirms the email address (as the emailed link would), so the
    same patient can also sign in on another context. `demo` ("improving", "flare", "steady")
    seeds the last 8 weeks as `make run`'s demo patients have them (diary, prescriptions, doses,
    UCTs) before the first sync."""

    def open_page(
        context: Any, *, path: str = "/app/", verified: bool = True, demo: str | None = None
    ) -> SignedIn:
        page = context.new_page()
        email = live_clinic.new_email()
        page.goto(f"{live_clinic.base}/app/signin")
        page.locator("#main h1").wait_for()  # the app is up: its IndexedDB is open
        done = page.evaluate(
            _ENROLL_AND_KEEP,
            {"code": live_clinic.enrollment_code(), "email": email, "password": PASSWORD},
        )
        assert done == {}, f"enrollment through the API failed: {done}"
        if verified:
            orm(lambda: User.objects.filter(email=email).update(email_verified_at=django_now()))
        if demo:
            orm(_seed_demo, live_clinic.clinic, email, demo)
        page.goto(f"{live_clinic.base}{path}")
        page.locator("nav").first.wait_for()  # the signed-in layout
        deadline = time.monotonic() + 20
        while not page.evaluate(SYNCED):
            if time.monotonic() > deadline:
                pytest.fail("The app did not finish its first sync after signing in.")
            page.wait_for_timeout(100)
        return SignedIn(page=page, email=email)

    return open_page


def _seed_demo(clinic: Clinic, email: str, profile: str) -> None:
    from patients.demo import demo_records_seed
    from patients.models import Patient

    user = User.objects.get(email=email)
    with tenant_context(clinic):
        patient = Patient.objects.get(user_id=user.pk)
        demo_records_seed(patient=patient, profile=profile, today=patient.local_today(), prescriber_id=None)
    connection.set_schema_to_public()


# --- Shared by the browser tests --------------------------------------------------------------

AXE = ROOT / "pwa" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS_AXE = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .filter((v) => v.impact === 'serious' || v.impact === 'critical')
  .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)"""


def _uncaught(error: Any) -> str:
    """An uncaught error as a line that says what it was (a minified bundle's non-Error rejection
    reads only as its constructor's one-letter name, e.g. a Dexie error as `r`)."""
    stack = (getattr(error, "stack", "") or "").splitlines()[:4]
    return f"uncaught: {getattr(error, 'name', '')}: {error} | {' / '.join(stack)}"


def watch(page: Any, problems: list[str]) -> None:
    """Accept confirmations; collect uncaught errors and CSP violations into `problems`."""
    page.on("dialog", lambda dialog: dialog.accept())
    page.on("pageerror", lambda error: problems.append(_uncaught(error)))
    page.on(
        "console",
        lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None,
    )


def watch_context(context: Any, problems: list[str]) -> None:
    """The same for every page of a context (service-worker errors included)."""
    context.on("weberror", lambda error: problems.append(_uncaught(error.error)))
    context.on(
        "console",
        lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None,
    )


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A phone-sized page (en-GB, Berlin) that fails its test if the app throws or breaks its CSP."""
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin")
    page = context.new_page()
    problems: list[str] = []
    watch(page, problems)
    yield page
    context.close()
    assert problems == [], "the app broke its CSP or threw"


def axe_violations(page: Any) -> list[str]:
    """axe-core (from the app's node_modules) on the page: serious and critical findings. Injected
    through DevTools, which the page's CSP does not cover, so the app is scanned under its own."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    return list(page.evaluate(SERIOUS_AXE))


def api_as(page: Any, email: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request as the patient from another device (a token of its own), sent from the app's
    origin: its status and JSON answer (None for an empty one)."""
    return tuple(
        page.evaluate(
            """async ({email, password, method, path, body}) => {
              const headers = {'Content-Type': 'application/json', Accept: 'application/json', 'X-Schema-Version': '1'};
              const token = await (await fetch('/api/v1/auth/token/', {method: 'POST', credentials: 'omit', headers,
                body: JSON.stringify({email, password})})).json();
              const response = await fetch(path, {method, credentials: 'omit',
                body: body === null ? undefined : JSON.stringify(body),
                headers: {...headers, Authorization: `Bearer ${token.access}`}});
              const text = await response.text();
              return [response.status, text ? JSON.parse(text) : null];
            }""",
            {"email": email, "password": PASSWORD, "method": method, "path": path, "body": body},
        )
    )  # type: ignore[return-value]


def berlin_today() -> date:
    """Today in the test clinics' time zone (Europe/Berlin)."""
    return datetime.now(ZoneInfo("Europe/Berlin")).date()


def enroll_from_link(page: Any, live: LiveClinic) -> str:
    """Join from the clinic's link, as a patient does; the new account's email."""
    email = live.new_email()
    page.goto(f"{live.base}/enroll#code={live.enrollment_code()}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    agree_to_privacy_notice(page)
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Today").wait_for()
    return email


def agree_to_privacy_notice(page: Any, agree: str = "I have read the privacy notice") -> None:
    """Tick the enrollment screen's agreement once the clinic's notice is shown (the button
    stays disabled until both)."""
    page.locator("section.privacy-notice h2").wait_for()
    page.get_by_label(agree, exact=False).check()
