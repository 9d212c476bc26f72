"""Where DVIS Studio keeps the user's data (files shipped with the project: ``dvis_models.resources``)."""

import os
import sys
from pathlib import Path

DATA_DIR_ENV = "DVIS_STUDIO_DATA_DIR"  # overrides the platform's data folder (tests, portable installs)


def data_dir() -> Path:
    """The user's data folder for DVIS Studio (crash-recovery copies): the platform's usual place."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "DVIS Studio"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "DVIS Studio"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "dvis-studio"
