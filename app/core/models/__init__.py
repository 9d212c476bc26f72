"""The user's model library: the catalogue of official checkpoints, installed models, downloads."""

from app.core.models.catalogue import CatalogueEntry, catalogue, find_entry
from app.core.models.library import InstalledModel, ModelLibrary

__all__ = ["CatalogueEntry", "InstalledModel", "ModelLibrary", "catalogue", "find_entry"]
