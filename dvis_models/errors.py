"""Errors a user can cause, for both packages: one base, ``UserError``, that the GUI shows as a dialog and
the CLI prints before exiting 1.

``dvis_models`` never imports ``app``, so the base lives here (plain Python, no torch) and ``app.core.errors``
derives ``StudioError`` from it; errors of formats both packages read (VIPSeg datasets, category tables) are
defined here once. Every message says what went wrong and what to do.
"""


class UserError(Exception):
    """Base of every error a user can cause (bad file, wrong checkpoint, unwritable folder...); shown as-is."""


class DVISError(UserError):
    """Base of the user-facing errors raised by ``dvis_models``."""


class CheckpointError(DVISError):
    """A checkpoint file cannot be read or does not fit the model it claims to be."""


class PresetError(DVISError):
    """An unknown preset name or an inconsistent model configuration."""


class DatasetError(DVISError):
    """A VIPSeg dataset (or prediction folder) is malformed, unreadable, or cannot be written; the message names the
    file."""


class CategoryTableError(DVISError):
    """A category table file is missing or malformed."""


class Cancelled(Exception):
    """The user stopped a job. Not an error: the work done so far is kept and nothing needs reporting.

    Every cancellable job in ``dvis_models`` and ``app`` raises this one class (``app.core.errors`` re-exports it).
    """
