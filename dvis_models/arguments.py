"""Command-line value types shared by ``dvis`` (``app/cli.py``) and the ``python -m dvis_models...`` commands.

Plain Python (no numpy, no torch), so ``dvis --help`` stays instant.
"""

from __future__ import annotations

import argparse


def frame_size(text: str) -> tuple[int, int]:
    """``HEIGHTxWIDTH`` (e.g. ``608x608``) as ``(height, width)``; an argparse type."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 608x608, got {text!r}") from None
    return height, width
