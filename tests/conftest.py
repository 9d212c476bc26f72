"""Shared test set-up: Qt runs offscreen, torch uses few threads (CI has 2 cores)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
