"""The `dvis` command: the same core as the GUI, headless (infer, eval, export, train)."""

from __future__ import annotations

import argparse
import sys

from app import __version__
from app.core.errors import StudioError


def _not_ready(args: argparse.Namespace) -> int:
    print(f"dvis {args.command}: not available in this build yet.", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dvis", description="DVIS Studio command line: video panoptic segmentation with DVIS.")
    parser.add_argument("--version", action="version", version=f"dvis-studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in [
        ("infer", "segment and track videos, write VIPSeg folders"),
        ("eval", "compute VPQ / STQ of predictions against ground truth"),
        ("export", "export a project to VIPSeg or editor formats"),
        ("train", "train or fine-tune DVIS stages"),
    ]:
        commands.add_parser(name, help=help_text).set_defaults(handler=_not_ready)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
