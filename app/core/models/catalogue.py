"""The catalogue of official VIPSeg checkpoints shipped in ``resources/model_catalogue.json``.

Facts come from the official model zoos (DVIS, DVIS++, DVIS-DAQ); a field the zoo does not state (a
direct file link, a size, a checksum) is ``None``, never guessed. ``supported`` says whether this
version of DVIS Studio can run the architecture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

from app.core.errors import ModelLibraryError
from dvis_models.resources import RESOURCES_DIR

CATALOGUE_FILE = RESOURCES_DIR / "model_catalogue.json"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    family: str  # DVIS / DVIS++ / DVIS-DAQ
    dataset: str
    mode: str  # online / offline
    backbone: str
    queries: int | None
    resolution: str
    vpq: float | None  # published VPQ on the dataset's val split
    vpq_thing: float | None
    vpq_stuff: float | None
    pages: tuple[str, ...]  # where a person gets the file (first: preferred)
    model_zoo: str  # the model-zoo document the facts come from
    file_name: str | None
    direct_url: str | None  # a link a program can download; None: browser only
    size: int | None
    sha256: str | None
    supported: bool  # whether this version can run it
    preset: str | None = None  # the architecture the file loads as here (None: not supported)
    note: str | None = None

    @property
    def title(self) -> str:
        return f"{self.family} {self.backbone} {self.mode} ({self.dataset}, VPQ {self.vpq})"

    def unsupported_message(self) -> str:
        return (f"{self.name} is a {self.family} checkpoint; this version of DVIS Studio runs only DVIS "
                "architectures, so it cannot load it yet. Choose a DVIS model (see 'dvis models list').")

    def where_to_get(self, then: str | None = None) -> str:
        """Instructions for a file without a direct link: the pages to open, then ``then`` (default: the CLI's add)."""
        pages = "\n".join(f"  {page}" for page in self.pages)
        note = f"\n{self.note}" if self.note else ""
        then = then or f"then add it: dvis models add FILE --name {self.name}"
        return f"{self.name} has no direct download link; download it in a browser from:\n{pages}{note}\n{then}"


def catalogue_entries() -> tuple[CatalogueEntry, ...]:
    """Every entry of the shipped catalogue, in the file's order."""
    return read_catalogue(CATALOGUE_FILE)


@lru_cache(maxsize=4)
def read_catalogue(path: Path) -> tuple[CatalogueEntry, ...]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {field.name for field in fields(CatalogueEntry)}
        return tuple(
            CatalogueEntry(**{**{k: v for k, v in item.items() if k in known}, "pages": tuple(item["pages"])})
            for item in data["models"]
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLibraryError(f"The model catalogue {path} is unreadable ({error}); reinstall DVIS Studio.") from None


def find_entry(name: str) -> CatalogueEntry | None:
    return next((entry for entry in catalogue_entries() if entry.name == name), None)
