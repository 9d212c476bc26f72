"""The one place that finds the files shipped with DVIS Studio (category table, bundled model).

They live in the repository's top-level ``resources/`` folder, which a wheel installs as the package
``dvis_resources`` (setuptools ``package-dir``); ``importlib.resources`` finds it in an installed copy, and
a source checkout run without installing (``PYTHONPATH=.``) uses the folder next to this package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _root() -> Path:
    try:
        return Path(str(resources.files("dvis_resources")))
    except ModuleNotFoundError:  # a source checkout that is not installed
        return Path(__file__).resolve().parent.parent / "resources"


RESOURCES_DIR = _root()
VIPSEG_CATEGORIES_FILE = RESOURCES_DIR / "vipseg_categories.json"
BUNDLED_CHECKPOINT = RESOURCES_DIR / "models" / "dvis_bundled_small.pth"  # written by the training helper
