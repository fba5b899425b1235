"""Patient PWA benchmark (issue 18's performance budget), in one run against a production-like
server on loopback (deploy/run-local-prod.sh: gunicorn, a Celery worker and beat with the
production settings) in a throwaway database, driven by Debian's Chromium through Playwright:

- the app shell's JS + CSS, gzipped, against the 150 kB budget (from the built app);
- a cold load to interactive: first visit, empty browser, no service worker, until the
  sign-in form is drawn and usable;
- a warm offline load: service worker installed, the network gone, reload until Today's form
  is usable;
- save to visible: Save pressed on Today until the new daily score is on the screen;
- the first sync of one year of history (730 entries, twice daily, on the server) after
  signing in, until all 730 are in IndexedDB;

each beside the floor measured in the same run: a plain HTTP GET of `/app/` (the shell's HTML,
median of N). Times in the page come from `performance.now()` (no round trip to the driver).
Exits non-zero on an error or when the shell is over budget; never on a time.

Usage: `make bench-pwa` or `python bench/pwa.py [--runs 5] [--saves 10] [--sync-runs 3]`.
The app is read from PWA_DIST_DIR (default pwa/dist; `make bench-pwa` builds it).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import signal
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

# The server runs with production settings, which want real keys; this process writes the
# seeded rows with the same field encryption key, so the server reads them.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())

import _setup  # noqa: E402, F401  (Django bootstrap)
import requests  # noqa: E402
from _server import free_port, start_server, stop_server  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from accounts.models import Membership, User  # noqa: E402
from patients.models import Consent, DiaryEntry, Patient  # noqa: E402
from tenants.services import clinic_create  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_BYTES = 150_000  # 150 kB gzipped (kB = 1000 bytes, as Vite reports sizes)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "bench pwa correct horse battery staple"  # noqa: S105
SLUG = "bench-pwa"
HISTORY_DAYS = 365

# Records, in every document the page loads, the moment (performance.now(), from the start of
# the navigation) when the selector in `window.__benchSelector` (set per context) first matches
# an element that is drawn and enabled.
READY_PROBE = """(() => {
  const selector = %s;
  const usable = () => {
    for (const el of document.querySelectorAll(selector)) {
      const box = el.getBoundingClientRect();
      if (box.width > 0 && box.height > 0 && !el.disabled) return true;
    }
    return false;
  };
  const mark = () => {
    if (window.__ready === undefined && usable()) {
      window.__ready = performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(mark);
  observer.observe(document, {childList: true, subtree: true, attributes: true});
})();"""
SIGN_IN_FORM = "main form input[type=email], main form input[name=email]"
TODAY_FORM = "main form input[name=wheals]"

SAVE_TO_VISIBLE = """async ({wheals, itch, expect}) => {
  const frame = () => new Promise((ok) => requestAnimationFrame(() => ok()));
  const form = document.querySelector('main form input[name=wheals]').form;
  // One choice per frame, as a hand makes them (Today's handlers read the last rendered form).
  form.querySelector(`input[name=wheals][value="${wheals}"]`).click();
  await frame();
  form.querySelector(`input[name=itch][value="${itch}"]`).click();
  await frame();
  await frame();
  const status = form.querySelector('[role=status]') || form;
  const shown = () => (status.textContent || '').includes(expect);
  if (shown()) throw new Error(`already showing ${expect}`);
  const began = performance.now();
  form.querySelector('button[type=submit]').click();
  await new Promise((ok, fail) => {
    if (shown()) { ok(); return; }
    const observer = new MutationObserver(() => { if (shown()) { observer.disconnect(); ok(); } });
    observer.observe(status, {childList: true, subtree: true, characterData: true});
    setTimeout(() => fail(new Error(`not shown after 10 s: ${expect}; status: ${status.textContent}`)), 10000);
  });
  await frame();  // the frame that shows it
  return performance.now() - began;
}"""


# Sign in through the form, then poll IndexedDB: when the tokens are kept (signed in) and when
# all `expect` diary entries are stored.
SIGN_IN_AND_SYNC = """async ({email, password, expect}) => {
  const read = (store, op) => new Promise((ok) => {
    const open = indexedDB.open('csu-tracker');
    open.onerror = () => ok(undefined);
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains(store)) { db.close(); ok(undefined); return; }
      const request = op(db.transaction(store).objectStore(store));
      request.onsuccess = () => { db.close(); ok(request.result); };
      request.onerror = () => { db.close(); ok(undefined); };
    };
  });
  const set = (el, value) => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(el, value);
    el.dispatchEvent(new Event('input', {bubbles: true}));
  };
  const form = document.querySelector('main form input[type=email]').form;
  set(form.querySelector('input[type=email]'), email);
  set(form.querySelector('input[type=password]'), password);
  await new Promise((ok) => setTimeout(ok, 50));
  const began = performance.now();
  form.querySelector('button[type=submit]').click();
  let signedIn;
  for (;;) {
    if (signedIn === undefined && (await read('meta', (s) => s.get('refresh_token')))) signedIn = performance.now();
    const count = (await read('diary', (s) => s.count())) || 0;
    if (count >= expect) return {signedIn: (signedIn ?? performance.now()) - began, all: performance.now() - began, count};
    if (performance.now() - began > 120000) throw new Error(`only ${count} of ${expect} entries after 120 s`);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}"""


def shell_size(dist: Path) -> tuple[list[tuple[str, int, int]], int, int]:
    """The JS and CSS that index.html loads (entry, modulepreloads, stylesheets): (name, raw,
    gzip) each, then the totals; gzip level 9 as a server or CDN would send them."""
    index = (dist / "index.html").read_text()
    names = sorted(set(re.findall(r'(?:src|href)="/app/([^"]+\.(?:js|css))"', index)))
    if not names:
        raise SystemExit(f"no JS or CSS referenced by {dist / 'index.html'}")
    rows = []
    for name in names:
        data = (dist / name).read_bytes()
        rows.append((name, len(data), len(gzip.compress(data, compresslevel=9, mtime=0))))
    return rows, sum(r[1] for r in rows), sum(r[2] for r in rows)


def other_assets(dist: Path, shell: list[str]) -> list[tuple[str, int]]:
    """JS/CSS built but not in the shell (lazy chunks): reported, not budgeted."""
    out = []
    for path in sorted((dist / "assets").glob("*")):
        name = f"assets/{path.name}"
        if path.suffix in {".js", ".css"} and name not in shell:
            out.append((name, len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))))
    return out


def make_patient(clinic: Any, email: str, *, mode: str = "once") -> Patient:
    user = User.objects.create_user(email, PASSWORD)  # address confirmed
    Membership.objects.create(user=user, clinic=clinic, role="patient")
    with tenant_context(clinic):
        patient = Patient.objects.create(
            user_id=user.pk, display_name="Bench patient", timezone="Europe/Berlin", diary_mode=mode
        )
        # Enrolled patients have accepted the privacy notice (no write is stored without).
        Consent.objects.create(patient=patient, kind="privacy_notice", version="1")
    connection.set_schema_to_public()
    return patient


def seed_year(clinic: Any, patient: Patient) -> int:
    """One year of twice-daily entries (am and pm), as a year of use leaves them."""
    with tenant_context(clinic):
        today = patient.local_today()
        start = today - timedelta(days=HISTORY_DAYS)
        Patient.objects.filter(pk=patient.pk).update(
            enrolled_at=datetime.combine(start, dtime(9), tzinfo=patient.tz) - timedelta(days=1)
        )
        rows = []
        for offset in range(HISTORY_DAYS):
            day = start + timedelta(days=offset)
            for slot, hour in (("am", 8), ("pm", 20)):
                rows.append(
                    DiaryEntry(
                        patient=patient,
                        day=day,
                        slot=slot,
                        wheals=(offset + hour) % 4,
                        itch=offset % 4,
                        recorded_at=datetime.combine(day, dtime(hour), tzinfo=patient.tz),
                    )
                )
        DiaryEntry.objects.bulk_create(rows, batch_size=1000)
        count = DiaryEntry.objects.filter(patient=patient).count()
    connection.set_schema_to_public()
    return count


def floor_ms(base_ip: str, host: str, n: int) -> list[float]:
    """Plain GETs of /app/ (the shell's HTML), a new connection each, as a first visit makes."""
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        response = requests.get(f"{base_ip}/app/", headers={"Host": host}, timeout=30)
        _ = response.content
        samples.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET /app/ answered {response.status_code}: {response.text[:300]}")
    return samples


def new_context(browser: Any, selector: str) -> Any:
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="en-GB", timezone_id="Europe/Berlin"
    )
    context.add_init_script(READY_PROBE % repr(selector))
    return context


def poll(page: Any, expression: str, what: str, timeout: float = 30) -> Any:
    """Evaluate until truthy. (Not `wait_for_function`: it compiles its predicate in the page,
    which the app's CSP refuses as eval; `evaluate` goes through the DevTools protocol.)"""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression)):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.02)
    return value


def ready_ms(page: Any, what: str) -> float:
    return float(poll(page, "window.__ready", f"{what}: usable"))


def sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/app/signin")
    page.locator(SIGN_IN_FORM).first.wait_for()
    page.locator("main form input[type=email]").fill(email)
    page.locator("main form input[type=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.locator(TODAY_FORM).first.wait_for(timeout=30000)


def stats(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def main() -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="cold and warm loads")
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--sync-runs", type=int, default=3, help="first syncs of the year")
    parser.add_argument("--floor", type=int, default=20, help="plain GETs of /app/")
    args = parser.parse_args()
    # Stopped from outside (timeout, Ctrl-C): still stop the server and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    dist = Path(settings.PWA_DIST_DIR)
    if not (dist / "index.html").is_file():
        print(f"The patient app is not built ({dist} has no index.html): run `make pwa`.", file=sys.stderr)
        return 2
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        print(
            f"No Chromium at {CHROMIUM}: `apt-get install -y chromium`, or set CHROMIUM_PATH.",
            file=sys.stderr,
        )
        return 2

    rows, raw_total, gz_total = shell_size(dist)
    lazy = other_assets(dist, [r[0] for r in rows])

    import redis
    from playwright.sync_api import sync_playwright

    # Earlier runs' sign-ins share the throttle history in Redis with this one.
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match="*throttle*"):
        client.delete(key)

    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    process = None
    try:
        clinic = clinic_create(slug=SLUG, name="Bench PWA Clinic", timezone="Europe/Berlin")
        host = clinic.domains.get().domain
        warm_email = f"warm-{uuid.uuid4().hex[:6]}@bench.example"
        year_email = f"year-{uuid.uuid4().hex[:6]}@bench.example"
        make_patient(clinic, warm_email)
        year_patient = make_patient(clinic, year_email, mode="twice")
        entries = seed_year(clinic, year_patient)
        connection.close()  # the server's processes take over the database

        port = free_port()
        process, log = start_server(
            port,
            name="bench-pwa",
            SECRET_KEY="bench-pwa-" + uuid.uuid4().hex * 2,
            FIELD_ENCRYPTION_KEYS=os.environ["FIELD_ENCRYPTION_KEYS"],
            PWA_DIST_DIR=str(dist),
        )
        base = f"http://{host}:{port}"
        ip_base = f"http://127.0.0.1:{port}"
        floor_ms(ip_base, host, 10)  # warm the server's processes (each worker imports lazily)
        floor = floor_ms(ip_base, host, args.floor)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            version = browser.version

            # Cold: a new browser context each time (empty HTTP cache, no worker, no storage).
            cold = []
            for _ in range(args.runs):
                context = new_context(browser, SIGN_IN_FORM)
                page = context.new_page()
                page.goto(f"{base}/app/")
                cold.append(ready_ms(page, "cold load"))
                context.close()

            # Signed in on a device of its own (once a day) for the saves and the warm loads.
            context = new_context(browser, TODAY_FORM)
            page = context.new_page()
            sign_in(page, base, warm_email)

            # Save to visible: each save a new score, so the change is what appears.
            saves = []
            for i in range(args.saves):
                score = i % 7  # 0, 1, … 6, 0, …: never the score already shown
                wheals, itch = min(score, 3), score - min(score, 3)
                expect = f"Daily score (UAS): {score} of 6"
                try:
                    page.locator(TODAY_FORM).first.wait_for(timeout=10000)
                    saves.append(
                        page.evaluate(SAVE_TO_VISIBLE, {"wheals": wheals, "itch": itch, "expect": expect})
                    )
                except Exception as error:
                    text = page.evaluate("document.body.innerText.slice(0, 800)")
                    raise SystemExit(f"save {i + 1}: {error}\nthe page at {page.url}:\n{text}") from error

            # Warm offline: the worker installed and in control, then no network, reloads.
            poll(page, "navigator.serviceWorker.controller !== null", "service worker in control")
            context.set_offline(True)
            warm = []
            for _ in range(args.runs):
                page.reload()
                warm.append(ready_ms(page, "warm offline load"))
            context.set_offline(False)
            context.close()

            # First sync of the year: sign in on a new device until all entries are stored.
            signed, synced = [], []
            for _ in range(args.sync_runs):
                context = new_context(browser, SIGN_IN_FORM)
                page = context.new_page()
                page.goto(f"{base}/app/signin")
                ready_ms(page, "sign-in form")
                out = page.evaluate(
                    SIGN_IN_AND_SYNC, {"email": year_email, "password": PASSWORD, "expect": entries}
                )
                signed.append(out["signedIn"])
                synced.append(out["all"] - out["signedIn"])
                context.close()
            browser.close()
    finally:
        if process is not None:
            stop_server(process)
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)

    floor_median = statistics.median(floor)
    print(
        f"PWA benchmark: Chromium {version} headless, 360×740, production settings (gunicorn, 2 sync workers) on loopback"
    )
    print(f"app: {dist}")
    print()
    print("app shell (what index.html loads)          raw        gzip")
    for name, raw, gz in rows:
        print(f"  {name:<40} {raw / 1000:7.1f} kB {gz / 1000:7.1f} kB")
    verdict = "within" if gz_total <= BUDGET_BYTES else "OVER"
    print(
        f"  {'total JS + CSS':<40} {raw_total / 1000:7.1f} kB {gz_total / 1000:7.1f} kB"
        f"  budget {BUDGET_BYTES / 1000:.0f} kB gzip: {verdict} ({gz_total / BUDGET_BYTES:.0%})"
    )
    for name, gz in lazy:
        print(f"  (not in the shell) {name:<21} {'':>10} {gz / 1000:7.1f} kB")
    print()
    print(
        f"floor: GET /app/ (the shell's HTML, new connection), median of {len(floor)}: {floor_median:.1f} ms"
        f" (min {min(floor):.1f}, max {max(floor):.1f})"
    )
    print()
    table = [
        (f"cold load to interactive (sign-in form), n={len(cold)}", cold),
        (f"warm offline load (service worker, Today form), n={len(warm)}", warm),
        (f"save to visible (Save → new score shown), n={len(saves)}", saves),
        (f"sign-in (Argon2) until tokens kept, n={len(signed)}", signed),
        (f"first sync of {entries} entries after sign-in, n={len(synced)}", synced),
        (
            f"sign-in + first sync of {entries} entries, n={len(synced)}",
            [a + b for a, b in zip(signed, synced, strict=True)],
        ),
    ]
    print(f"{'figure':<62} {'median':>9} {'min':>9} {'max':>9} {'× floor':>9}")
    for label, samples in table:
        s = stats(samples)
        print(
            f"{label:<62} {s['median']:7.1f} ms {s['min']:7.1f} ms {s['max']:7.1f} ms "
            f"{s['median'] / floor_median:8.1f}×"
        )
    print(
        f"{'floor: GET /app/':<62} {floor_median:7.1f} ms {min(floor):7.1f} ms {max(floor):7.1f} ms {1:8.1f}×"
    )
    print(f"\n(server log: {log})")
    if gz_total > BUDGET_BYTES:
        print(
            f"FAIL: the app shell is {gz_total / 1000:.1f} kB gzipped, over the {BUDGET_BYTES / 1000:.0f} kB budget"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
