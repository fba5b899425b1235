"""Fixtures shared by the clinic lifecycle tests (offboarding, purge, import, key commands)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def archives(settings, tmp_path: Path) -> Path:  # noqa: ANN001
    """The archives storage, as configured, on a fresh directory."""
    root = tmp_path / "archives"
    configured = settings.STORAGES["archives"]
    settings.STORAGES = {
        **settings.STORAGES,
        "archives": {**configured, "OPTIONS": {**configured["OPTIONS"], "location": root}},
    }
    return root
