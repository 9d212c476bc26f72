"""Where the files shipped with the project live."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES_DIR = REPO_ROOT / "resources"
