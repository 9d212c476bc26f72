import subprocess
import sys

from app import __version__
from app.cli import build_parser


def test_version_from_installed_command():
    result = subprocess.run([sys.executable, "-m", "app.cli", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"dvis-studio {__version__}"


def test_help_lists_subcommands(capsys):
    help_text = build_parser().format_help()
    for command in ("infer", "eval", "export", "train"):
        assert command in help_text
