"""`dvis-studio` entry point."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMainWindow

from app import __version__


def main(argv: list[str] | None = None) -> int:
    app = QApplication(sys.argv if argv is None else argv)
    window = QMainWindow()
    window.setWindowTitle(f"DVIS Studio {__version__}")
    window.resize(1280, 800)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
