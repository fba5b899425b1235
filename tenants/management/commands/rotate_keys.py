"""The key-rotation plan for this deployment's configuration, each step checked.

    python manage.py rotate_keys --plan            # every encrypted value checked
    python manage.py rotate_keys --plan --sample 50

For each secret (field encryption keys, SECRET_KEY, the keyed-hash keys, the JWT signing key,
VAPID and the billing webhook secret) it prints what a rotation does to users, the steps in
order, and a check of the current state: `[ok]` done or safe, `[todo]` a step to take before the
next one, `[FAIL]` something users hit now (exit 1). Changes nothing. The runbook
(deploy/README.md, "Secrets rotation") points here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core import crypto
from tenants.keys import KeyReport, key_report


class Plan:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed = False

    def section(self, title: str) -> None:
        self.lines += ["", title]

    def say(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def check(self, state: str, text: str) -> None:
        self.failed = self.failed or state == "FAIL"
        self.lines.append(f"  [{state}] {text}")

    def steps(self, *steps: str) -> None:
        self.lines += [f"    {number}. {step}" for number, step in enumerate(steps, 1)]


def _days(seconds: float) -> str:
    return f"{timedelta(seconds=seconds).total_seconds() / 86400:g} days"


def field_keys(plan: Plan, report: KeyReport) -> None:
    plan.section(f"Field encryption (FIELD_ENCRYPTION_KEYS: {report.key_count} keys, key 0 encrypts)")
    plan.say("Notes, diary notes, enrollment codes, TOTP secrets and offboarding archives.")
    plan.steps(
        "Add the new key at the END of FIELD_ENCRYPTION_KEYS; deploy to every process (all can read it).",
        "Move it to the FRONT; deploy (new values are written under it).",
        "Run `manage.py rotate_encryption_keys` (no sync versions change: devices see nothing).",
        "Run `manage.py check_keys`: nothing under older keys.",
        "Drop an old key only after every backup, WAL archive and offboarding archive made under it "
        "has expired: a restore under a dropped key gives 500s, and /readyz names `keys`.",
    )
    if not settings.FIELD_ENCRYPTION_KEYS:
        plan.check("todo", "FIELD_ENCRYPTION_KEYS is unset: the development key is in use (production refuses this).")
    if report.unreadable:
        plan.check("FAIL", f"{report.unreadable} values open with no configured key: put the retired key back (at the end).")
    else:
        plan.check("ok", f"all {report.values} encrypted values open with a configured key")
    if report.under_older_keys:
        plan.check("todo", f"{report.under_older_keys} values under older keys: run `manage.py rotate_encryption_keys`.")
    elif report.key_count > 1:
        plan.check("ok", "no value is under an older key")
    if report.archives_error:
        plan.check("FAIL", f"the archives storage cannot be read ({report.archives_error}).")
    if report.archives_unreadable:
        plan.check("FAIL", f"{len(report.archives_unreadable)} archives open with no configured key.")
    older_archives = [name for name, index in report.archives if index]
    if older_archives:
        plan.check("todo", f"{len(older_archives)} archives under older keys: keep those keys while the archives are kept.")
    needed = report.oldest_key_needed()
    if report.key_count > 1 and needed < report.key_count - 1:
        plan.check(
            "ok",
            f"keys {needed + 1}..{report.key_count - 1} open nothing stored here; drop them once backups made "
            "under them have expired.",
        )


def secret_key(plan: Plan) -> None:
    plan.section(f"SECRET_KEY (SECRET_KEY_FALLBACKS: {len(settings.SECRET_KEY_FALLBACKS)} keys)")
    plan.say(
        "Signs sessions, password-reset links, email-verification links and sync/page cursors; "
        "with the old key in SECRET_KEY_FALLBACKS all of them keep working."
    )
    longest = max(
        settings.PASSWORD_RESET_TIMEOUT,
        settings.EMAIL_VERIFICATION_SECONDS,
        settings.SESSION_COOKIE_AGE,
        settings.SYNC_TOMBSTONE_RETENTION_DAYS * 86400,
    )
    plan.steps(
        "Set SECRET_KEY to the new key and SECRET_KEY_FALLBACKS to the old one; deploy.",
        f"After {_days(longest)} (the longest-lived signed value: sync cursors, tombstone retention) remove "
        "the old key from SECRET_KEY_FALLBACKS; a device with an older cursor then resets and re-downloads.",
    )
    if settings.HASH_KEYS:
        plan.check("ok", "HASH_KEYS is set: enrollment codes, invitations and MFA recovery codes do not depend on SECRET_KEY")
    else:
        plan.check(
            "todo",
            "HASH_KEYS is unset: keyed hashes use SECRET_KEY. First set HASH_KEYS to the CURRENT SECRET_KEY and "
            "deploy (every hash stays valid); otherwise removing the old SECRET_KEY from the fallbacks kills "
            "outstanding enrollment codes and invitations and, for good, every MFA recovery code.",
        )
    if settings.SIMPLE_JWT["SIGNING_KEY"] == f"jwt:{settings.SECRET_KEY}":
        plan.check(
            "todo",
            "JWT_SIGNING_KEY is unset (derived from SECRET_KEY): rotating SECRET_KEY also signs everyone out of "
            "the apps. Set JWT_SIGNING_KEY first if that is not wanted (that change itself signs everyone out once).",
        )
    else:
        plan.check("ok", "JWT_SIGNING_KEY is set: a SECRET_KEY rotation does not sign anyone out of the apps")
    if settings.SECRET_KEY in settings.SECRET_KEY_FALLBACKS:
        plan.check("todo", "SECRET_KEY is also listed in SECRET_KEY_FALLBACKS; remove it there.")


def hash_keys(plan: Plan) -> None:
    configured = [key for key in settings.HASH_KEYS if key]
    plan.section(f"Keyed hashes (HASH_KEYS: {len(configured)} keys, key 0 hashes)")
    plan.say("Enrollment codes, staff invitations and MFA recovery codes are looked up by a keyed hash.")
    plan.steps(
        "Prepend the new key to HASH_KEYS; deploy (new codes use it, every key still matches).",
        f"Drop an old key after {settings.ENROLLMENT_VALID_DAYS} days (enrollment codes; invitations: "
        f"{settings.INVITATION_VALID_DAYS}) AND once every MFA user has made new recovery codes: a recovery code "
        "hashed under a dropped key no longer works.",
    )
    legacy = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    matched = crypto.hash_keys()
    plan.check("ok", f"{len(matched)} keys match codes now ({len(configured)} from HASH_KEYS, {len(legacy)} from SECRET_KEY and fallbacks)")


def other_secrets(plan: Plan) -> None:
    plan.section("JWT_SIGNING_KEY")
    plan.say(
        "No fallback: changing it signs everyone out of the apps (access tokens expire within minutes, "
        "refresh tokens are refused); patients' PWAs ask them to sign in again and keep their unsent entries."
    )
    plan.section("VAPID keys (Web Push)")
    plan.say("Subscriptions are bound to the public key: every PWA must subscribe again; until then reminders go by email.")
    plan.section("BILLING_WEBHOOK_SECRET")
    plan.say("Set the new secret here and at the provider together; events signed with the old one get 400 and are retried.")


class Command(BaseCommand):
    help = "Print the key-rotation plan for this configuration and check each step (changes nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--plan", action="store_true", help="print and check the plan (required)")
        parser.add_argument("--sample", type=int, default=None, help="values per column and schema")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["plan"]:
            raise CommandError("Nothing is rotated by a command: run `rotate_keys --plan` and follow its steps.")
        if options["sample"] is not None and options["sample"] < 1:
            raise CommandError("--sample must be at least 1.")
        plan = Plan()
        field_keys(plan, key_report(sample=options["sample"]))
        secret_key(plan)
        hash_keys(plan)
        other_secrets(plan)
        for line in plan.lines[1:]:
            self.stdout.write(line)
        if plan.failed:
            raise CommandError("A check failed ([FAIL] above): fix it before rotating anything.")
