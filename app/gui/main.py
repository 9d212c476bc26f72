"""`dvis-studio [VIDEO|PROJECT|FOLDER]` entry point."""

from __future__ import annotations

import argparse
import os
import sys

from PySide6.QtWidgets import QApplication

from app import __version__
from app.gui.display_check import display_problem
from app.gui.errors import install_excepthook


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dvis-studio", description="DVIS Studio: track, correct and export video masks.")
    parser.add_argument("path", nargs="?", help="video file, image folder, VIPSeg dataset root or project folder "
                        "(default: the bundled demo clip)")
    parser.add_argument("--version", action="version", version=f"DVIS Studio {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    problem = display_problem(os.environ)  # Qt would abort the process instead, with a misleading hint
    if problem:
        print(problem, file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("DVIS Studio")
    app.setOrganizationName("DVIS Studio")
    install_excepthook()
    from app.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    if not window.offer_recovery():
        window.open_initial(args.path)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
