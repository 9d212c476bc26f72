"""The recent-files list (File → Open Recent), kept in the app's QSettings across sessions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

RECENT_KEY = "recent_files"
MAX_RECENT = 10


class RecentFiles:
    """The paths opened last, newest first, at most `MAX_RECENT`, without repeats."""

    def __init__(self, settings: QSettings):
        self._settings = settings

    def paths(self) -> list[str]:
        value = self._settings.value(RECENT_KEY, [])
        return [value] if isinstance(value, str) else list(value or [])  # QSettings gives one entry as a string

    def add(self, path: Path) -> None:
        entry = str(path.resolve())
        self._settings.setValue(RECENT_KEY, ([entry] + [p for p in self.paths() if p != entry])[:MAX_RECENT])

    def last_dir(self) -> str:
        """Where file dialogs start: the folder of the latest entry, else the home folder."""
        recent = self.paths()
        return str(Path(recent[0]).parent) if recent else str(Path.home())
