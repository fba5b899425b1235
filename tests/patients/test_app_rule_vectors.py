"""Rules the patient app applies itself for display, pinned to the server's by shared cases.

The daily UAS vectors the patient app's display rule is tested with (pwa/test/fixtures/
daily-uas.json, used by pwa/test/scores.test.ts) hold for patients/scores.py `daily_uas` too:
the two implementations of the one rule cannot drift apart."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from patients.schedule import in_quiet_hours
from patients.scores import HalfDay, daily_uas

FIXTURES = Path(__file__).resolve().parents[2] / "pwa" / "test" / "fixtures"
VECTORS = json.loads((FIXTURES / "daily-uas.json").read_text())
QUIET = json.loads((FIXTURES / "quiet-hours.json").read_text())


@pytest.mark.parametrize("vector", VECTORS, ids=[v["why"] for v in VECTORS])
def test_the_apps_daily_uas_vectors_hold_for_the_server(vector: dict[str, Any]) -> None:
    records = [HalfDay(slot=slot, wheals=wheals, itch=itch) for slot, wheals, itch in vector["records"]]
    score = daily_uas(records)
    assert (None if score is None else score.uas) == vector["uas"]


def test_there_are_vectors_of_each_kind() -> None:
    kinds = {tuple(sorted({slot for slot, _, _ in v["records"]})) for v in VECTORS}
    assert {("day",), ("am", "pm"), ("am",), ("pm",), ()} <= kinds


@pytest.mark.parametrize(("at", "start", "end", "quiet"), QUIET)
def test_the_apps_quiet_hours_cases_hold_for_the_server(
    at: str, start: str | None, end: str | None, quiet: bool
) -> None:
    """pwa/test/reminders.test.ts checks `inQuietHours` (the Reminders hint) with these cases."""

    def clock(value: str | None) -> time | None:
        return None if value is None else time.fromisoformat(value)

    assert in_quiet_hours(clock(at), clock(start), clock(end)) is quiet
