"""Errors a user can cause while using the model package.

``dvis_models`` never imports ``app``, so these do not derive from ``app.core.errors.StudioError``;
the app catches ``DVISError`` and shows its message. Every message says what went wrong and what to do.
"""


class DVISError(Exception):
    """Base of the user-facing errors raised by ``dvis_models``."""


class CheckpointError(DVISError):
    """A checkpoint file cannot be read or does not fit the model it claims to be."""


class PresetError(DVISError):
    """An unknown preset name or an inconsistent model configuration."""


class Cancelled(Exception):
    """The user stopped a job. Not an error: the work done so far is kept and nothing needs reporting.

    Every cancellable job in ``dvis_models`` and ``app`` raises this one class (``app.core.errors`` re-exports it).
    """
