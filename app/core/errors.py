"""One exception type per area of user-caused errors.

The GUI shows ``str(error)`` in a dialog and the CLI prints it and exits non-zero, so every message
must say what went wrong *and* what the user can do about it.
"""


from dvis_models.errors import Cancelled as Cancelled  # the one "the user stopped it" outcome, shared with dvis_models
from dvis_models.errors import CategoryTableError as CategoryTableError  # formats both packages read are defined there
from dvis_models.errors import DatasetError as DatasetError
from dvis_models.errors import UserError as UserError  # the base of StudioError and DVISError: what is shown as-is


class StudioError(UserError):
    """Base of the errors a user can cause in the app (bad file, unwritable folder...)."""


class AnnotationError(StudioError):
    """An edit, an ingested frame or a stored mask would break the annotation (or a VIPSeg rule)."""


class ModelLibraryError(StudioError):
    """A model cannot be added, downloaded, found or removed (bad file, name clash, network, disk)."""


class PromptError(StudioError):
    """Clicks or a box for a prompted mask that cannot be used (outside the frame, empty box, none given)."""


class PropagationError(StudioError):
    """A propagation request that cannot run (no mask on the keyframe, locked track, range outside the video)."""
