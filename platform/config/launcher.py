"""`make run`: services, migrations, demo data, then web + worker + beat in the foreground.

With DATABASE_URL and REDIS_URL set (environment or .env) it uses those servers. Otherwise this
process starts the embedded PostgreSQL/Redis (config.embedded; data in `.data/`, or CSU_DATA_DIR)
and hands their URLs to its children through the environment: settings never start servers.
Ctrl-C (SIGINT) or SIGTERM stops the children, then the embedded servers.

Environment: PORT (8000; also PUBLIC_PORT, the port of emailed links, unless that is set),
RUN_BIND (the address runserver listens on, 0.0.0.0), CSU_DATA_DIR.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from config import embedded

ROOT = embedded.ROOT
DATA_DIR = embedded.DEFAULT_DATA_DIR
VAPID_NAMES = ("WEB_PUSH_VAPID_PRIVATE_KEY", "WEB_PUSH_VAPID_PUBLIC_KEY")


def _env_file_values(path: Path) -> dict[str, str]:
    """NAME=value lines of a dotenv file (what the settings read with django-environ)."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            name, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip().strip("'\"")
    return values


def vapid_env(env: dict[str, str], data_dir: Path = DATA_DIR, dotenv: Path = ROOT / ".env") -> str:
    """Web Push works in local runs: without a configured VAPID key pair (environment or .env),
    one is generated once into `.data/vapid.env` (git-ignored, owner-only, removed with the
    dev data by `make clean-data`) and handed to web and worker. Returns where the keys came from."""
    configured = env.get(VAPID_NAMES[0]) or _env_file_values(dotenv).get(VAPID_NAMES[0])
    if configured:
        return "configured"
    path = data_dir / "vapid.env"
    kept = _env_file_values(path)
    if not all(kept.get(name) for name in VAPID_NAMES):
        from patients.vapid import vapid_keypair

        private, public = vapid_keypair()
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                "# VAPID key pair for Web Push in local runs (made by `make run`; never commit it).\n"
                f"{VAPID_NAMES[0]}={private}\n{VAPID_NAMES[1]}={public}\n"
            )
        kept = _env_file_values(path)
    for name in VAPID_NAMES:
        env[name] = kept[name]
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The settings read .env themselves; URLs configured there are not replaced by embedded ones.
    dotenv = _env_file_values(ROOT / ".env")
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not env.get(name) and dotenv.get(name):
            env[name] = dotenv[name]
    embedded.services_ensure(env, data_dir, announce=lambda message: print(message, flush=True))
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)  # noqa: S603


def main() -> int:
    try:
        return _run()
    finally:
        embedded.stop()


def _run() -> int:
    data_dir = embedded.data_dir()
    # Beat's schedule and the local VAPID keys live here, also with configured servers.
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _env(data_dir)
    vapid = vapid_env(env, data_dir=data_dir)
    port = env.get("PORT", "8000")
    # Links in emails (invitation, reset, verification) and QR codes carry the port served here.
    env.setdefault("PUBLIC_PORT", port)
    bind = env.get("RUN_BIND", "0.0.0.0")  # noqa: S104 (a developer's machine; RUN_BIND=127.0.0.1 keeps it local)
    _manage(env, "migrate", "--noinput", "-v", "0")
    seed = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), "seed_demo"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )

    celery = [sys.executable, "-m", "celery", "-A", "config"]
    processes = {
        "web": subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "manage.py"), "runserver", f"{bind}:{port}"], env=env, cwd=ROOT
        ),
        "worker": subprocess.Popen([*celery, "worker", "-l", "INFO", "-c", "2"], env=env, cwd=ROOT),  # noqa: S603
        "beat": subprocess.Popen(  # noqa: S603
            [*celery, "beat", "-l", "INFO", "--schedule", str(data_dir / "celerybeat-schedule")],
            env=env,
            cwd=ROOT,
        ),
    }
    print(
        f"""
CSU Tracker is running (Ctrl-C to stop):
  API docs (platform)     http://localhost:{port}/api/docs/
  Platform readiness      http://localhost:{port}/readyz
  Demo clinic             http://demo.localhost:{port}/readyz
  Demo clinic API docs    http://demo.localhost:{port}/api/docs/
  Patient app (PWA)       http://demo.localhost:{port}/app/   (demo patients below)
  Staff sign-in (pages)   http://demo.localhost:{port}/account/   (demo staff below)
  Web Push (reminders)    VAPID keys: {vapid}
""",
        flush=True,
    )
    print(seed.stdout.replace("<port>", port), flush=True)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping.", flush=True)
                exit_code = process.returncode or 1
                stopping = True
        time.sleep(0.5)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
