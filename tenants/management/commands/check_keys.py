"""Which field encryption key opens every encrypted value and every offboarding archive.

    python manage.py check_keys             # every value (an operator command: reads them all)
    python manage.py check_keys --sample 50 # 50 values per column and clinic

Prints, per schema and encrypted column, how many values each key of FIELD_ENCRYPTION_KEYS
opens (key 0 is the newest) and how many none opens; then each archive's key. Exits 1 when any
value or archive opens with no configured key (each such note answers 500, each such archive
cannot be restored), 0 otherwise. Nothing but names and counts is printed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.keys import KeyReport, key_report


def _key_counts(by_key: dict[int, int], unreadable: int) -> str:
    parts = [f"{count} under key {index}" for index, count in sorted(by_key.items())]
    if unreadable:
        parts.append(f"{unreadable} NO KEY OPENS")
    return ", ".join(parts) or "empty"


def report_lines(report: KeyReport) -> list[str]:
    lines = [f"FIELD_ENCRYPTION_KEYS: {report.key_count} configured (key 0 is the newest)"]
    for schema, census in report.columns:
        lines.append(f"  {schema}: {census.column.label}: {_key_counts(census.by_key, census.unreadable)}")
    if report.archives_error:
        lines.append(f"  archives: storage unreadable ({report.archives_error})")
    for name, index in report.archives:
        lines.append(f"  archive {name}: {'NO KEY OPENS' if index is None else f'key {index}'}")
    lines.append(
        f"{report.values} values: {report.under_older_keys} under older keys, {report.unreadable} no key opens; "
        f"{len(report.archives)} archives: {len(report.archives_unreadable)} no key opens"
    )
    return lines


class Command(BaseCommand):
    help = "Report which field encryption key opens each encrypted value and archive; exit 1 if none does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sample", type=int, default=None, help="values per column and schema")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sample"] is not None and options["sample"] < 1:
            raise CommandError("--sample must be at least 1.")
        report = key_report(sample=options["sample"])
        for line in report_lines(report):
            self.stdout.write(line)
        if report.unreadable or report.archives_unreadable:
            raise CommandError(
                "Some encrypted data opens with no configured key: add the retired key back to "
                "FIELD_ENCRYPTION_KEYS (at the end) before anything else."
            )
