"""Shared test set-up: Qt runs offscreen, torch uses few threads (CI has 2 cores)."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    """Crash-recovery copies go into the test's folder, never the user's data folder."""
    monkeypatch.setenv("DVIS_STUDIO_DATA_DIR", str(tmp_path / "data"))
