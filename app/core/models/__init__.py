"""The user's model library: the catalogue of official checkpoints, installed models, downloads."""

from app.core.models.catalogue import CatalogueEntry, catalogue_entries, find_entry
from app.core.models.library import InstalledModel, ModelLibrary

__all__ = ["CatalogueEntry", "InstalledModel", "ModelLibrary", "catalogue_entries", "find_entry"]
