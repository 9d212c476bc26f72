"""One exception type per area of user-caused errors.

The GUI shows ``str(error)`` in a dialog and the CLI prints it and exits non-zero, so every message
must say what went wrong *and* what the user can do about it.
"""


from dvis_models.errors import Cancelled as Cancelled  # the one "the user stopped it" outcome, shared with dvis_models
from dvis_models.errors import DVISError as DVISError  # the model package's user errors (torch-free to import)
from dvis_models.errors import InferenceCancelled as InferenceCancelled  # the pipeline stopped on its cancel callable


class StudioError(Exception):
    """Base of all errors a user can cause (bad file, wrong checkpoint, unwritable folder...)."""


class CategoryTableError(StudioError):
    """A category table file is missing or malformed."""


class ModelLibraryError(StudioError):
    """A model cannot be added, downloaded, found or removed (bad file, name clash, network, disk)."""


class DownloadCancelled(ModelLibraryError):
    """The user cancelled a download; the partial file is kept so the next download resumes."""


class PromptError(StudioError):
    """Clicks or a box for a prompted mask that cannot be used (outside the frame, empty box, none given)."""


class PropagationError(StudioError):
    """A propagation request that cannot run (no mask on the keyframe, locked track, range outside the video)."""
