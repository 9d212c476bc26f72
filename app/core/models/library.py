"""The user's installed models: a folder of checkpoints in the data folder plus ``library.json`` describing them.

Adding checks that the file loads (the variant is inferred from its keys), places it in the folder
under a temporary name (hard link when on the same file system, else a copy), renames it, then writes
the index atomically; any failure removes what was placed, so the library is never half-changed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from app.core.errors import ModelLibraryError
from app.core.models import download as downloader
from app.core.models.catalogue import CatalogueEntry, catalogue_entries, find_entry
from app.core.paths import data_dir
from dvis_models import atomic

INDEX_FILE = "library.json"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


@dataclass(frozen=True)
class InstalledModel:
    name: str
    file: str  # file name inside the library folder
    preset: str  # the architecture it loads as (e.g. swinl_vipseg_offline)
    backbone: str
    mode: str  # online / offline
    family: str
    source: str  # the file it was added from, or the URL it was downloaded from
    sha256: str
    size: int
    added: str  # ISO date and time, UTC
    catalogue: str | None = None  # the catalogue entry it is, when known


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(downloader.CHUNK):
            hasher.update(block)
    return hasher.hexdigest()


def _place(source: Path, destination: Path, move: bool) -> None:
    """Put ``source`` at ``destination`` atomically: rename, hard link or copy to a temp name then rename."""
    temp = destination.with_name(f".{destination.name}{atomic.TEMP_SUFFIX}")
    try:
        if move:
            os.replace(source, temp)
        else:
            try:
                os.link(source, temp)
            except OSError:  # another file system (or links unsupported): copy
                shutil.copyfile(source, temp)
                with open(temp, "rb+") as handle:
                    os.fsync(handle.fileno())
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    atomic.fsync_dir(destination.parent)


class ModelLibrary:
    """Installed models in ``folder`` (default: ``<data folder>/models``)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else data_dir() / "models"

    # ------------------------------------------------------------------ reading
    def _read(self) -> dict[str, InstalledModel]:
        index = self.folder / INDEX_FILE
        if not index.exists():
            return {}
        try:
            items = json.loads(index.read_text(encoding="utf-8"))["models"]
            return {item["name"]: InstalledModel(**item) for item in items}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelLibraryError(f"The model library index {index} is damaged ({error}); move it away and add "
                                    "the models again (their files stay in that folder).") from None

    def _write(self, models: dict[str, InstalledModel]) -> None:
        atomic.write_json(self.folder / INDEX_FILE,
                          {"version": 1, "models": [asdict(m) for m in sorted(models.values(), key=lambda m: m.name)]})

    def list(self) -> list[InstalledModel]:
        return sorted(self._read().values(), key=lambda model: model.name)

    def get(self, name: str) -> InstalledModel:
        models = self._read()
        if name not in models:
            installed = ", ".join(models) or "none"
            raise ModelLibraryError(f"No installed model is named {name!r} (installed: {installed}). "
                                    "See 'dvis models list'; add one with 'dvis models add FILE'.")
        return models[name]

    def path(self, name: str) -> Path:
        return self.folder / self.get(name).file

    # ------------------------------------------------------------------ changing
    def add(self, path: str | os.PathLike, name: str | None = None, source: str | None = None,
            entry: CatalogueEntry | None = None, move: bool = False) -> InstalledModel:
        """Check ``path`` loads, place it in the library as ``name`` and record it; returns the record."""
        from dvis_models import CheckpointError, load_checkpoint

        path = Path(path)
        name = name or (entry.name if entry else path.stem)
        if not NAME_PATTERN.fullmatch(name):
            raise ModelLibraryError(f"{name!r} is not a usable model name: use letters, digits and . _ + - "
                                    "(up to 100), starting with a letter or digit; choose one with --name.")
        models = self._read()
        if name in models:
            raise ModelLibraryError(f"A model named {name!r} is already installed ({models[name].source}). "
                                    f"Choose another name with --name, or remove it first: dvis models remove {name}")
        if entry is None:
            entry = find_entry(name)
        if entry is not None and not entry.supported:
            raise ModelLibraryError(entry.unsupported_message())
        try:
            config = load_checkpoint(path).config
        except CheckpointError as error:
            raise ModelLibraryError(f"{path} cannot be added: {error}") from None
        if entry is not None and entry.preset and config.name != entry.preset:
            raise ModelLibraryError(f"{path} holds a {config.name} model, but {name} is the catalogue's {entry.title}; "
                                    "check you downloaded the right file, or choose another name (--name).")
        self.folder.mkdir(parents=True, exist_ok=True)
        file = f"{name}.pth"
        destination = self.folder / file
        try:
            digest, size = _sha256(path), path.stat().st_size
            _place(path, destination, move)
            record = InstalledModel(
                name=name, file=file, preset=config.name, backbone=config.backbone, mode=config.mode,
                family=entry.family if entry else "DVIS", source=source or str(path.resolve()), sha256=digest,
                size=size, added=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                catalogue=entry.name if entry else None)
            try:
                self._write({**models, name: record})
            except BaseException:
                destination.unlink(missing_ok=True)
                raise
        except OSError as error:
            raise ModelLibraryError(f"Cannot put {path} into the model library {self.folder}: "
                                    f"{error.strerror or error}. Free some disk space (or fix the folder's "
                                    "permissions); the library is unchanged.") from None
        return record

    def remove(self, name: str) -> InstalledModel:
        """Forget ``name`` and delete its file (the index first: a crash leaves a stray file, never a dangling
        entry)."""
        record = self.get(name)
        models = self._read()
        del models[name]
        try:
            self._write(models)
            (self.folder / record.file).unlink(missing_ok=True)
        except OSError as error:
            raise ModelLibraryError(f"Cannot remove {name} from {self.folder}: {error.strerror or error}.") from None
        return record

    def download(self, name: str, progress: downloader.ProgressCallback | None = None,
                 cancel: Callable[[], bool] | None = None) -> InstalledModel:
        """Download catalogue entry ``name`` (resuming a partial one) and add it to the library."""
        entry = find_entry(name)
        if entry is None:
            known = ", ".join(e.name for e in catalogue_entries())
            raise ModelLibraryError(f"{name!r} is not in the model catalogue (known: {known}).")
        return self.download_entry(entry, progress, cancel)

    def download_entry(self, entry: CatalogueEntry, progress: downloader.ProgressCallback | None = None,
                       cancel: Callable[[], bool] | None = None) -> InstalledModel:
        if not entry.supported:
            raise ModelLibraryError(entry.unsupported_message())
        if not entry.direct_url:
            raise ModelLibraryError(entry.where_to_get())
        if entry.name in self._read():
            raise ModelLibraryError(f"{entry.name} is already installed; 'dvis models info {entry.name}' shows it.")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f".{entry.name}.download"
        page = entry.pages[0] if entry.pages else None
        downloader.download(entry.direct_url, target, entry.sha256, progress, cancel, page)
        try:
            return self.add(target, entry.name, source=entry.direct_url, entry=entry, move=True)
        finally:
            target.unlink(missing_ok=True)  # refused by add: do not keep a file nothing refers to
