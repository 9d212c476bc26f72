"""The document the window shows: video + annotation + project, current frame, selection, undo stack.

Plain logic with Qt signals so views stay thin and tests can drive every user action without
clicking pixels. Edits go through `edit()`, which applies a core operation and pushes its undo
command; nothing here re-implements core logic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from app.core import edits
from app.core.categories import CategoryTable, vipseg_categories
from app.core.errors import StudioError
from app.core.image_fill import image_fill
from app.gui.commands import EditCommand


Confirm = Callable[[], bool]


class UserActionError(StudioError):
    """A GUI action was asked for in a state where it cannot run (e.g. nothing selected)."""


@dataclass
class DisplaySettings:
    """How masks are drawn over the frame."""

    mode: str = "fill"
    opacity: float = 0.5
    labels: bool = True
    hidden: set[int] = field(default_factory=set)


class StudioController(QObject):
    """Holds the open document and turns user intents into core calls."""

    loaded = Signal()  # a new video / annotation replaced the old one
    frame_changed = Signal(int)
    annotation_changed = Signal(object, object)  # frames changed (set or None = all), tracks changed (set or None)
    selection_changed = Signal()
    display_changed = Signal()
    exact_frame_ready = Signal(int)  # a frame shown from the proxy (or an older one) is now decoded exactly

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.video = None  # app.core.video.VideoSource
        self.annotation = None  # app.core.annotation.Annotation
        self.project = None  # app.core.project.Project
        self.frame_index = 0
        self.selection: list[int] = []
        self.display = DisplaySettings()
        self.undo_stack = QUndoStack(self)
        self.diagnostics: list = []
        self.busy: str | None = None  # why edits are refused right now (a worker is using the annotation)
        self._dirty = False
        self.proxy_store = None  # app.core.proxy.ProxyStore: where scrubbing proxies live (None: no proxies)
        self.scrubber = None  # app.core.scrub.Scrubber of the open video
        self._picture: np.ndarray | None = None  # what the view shows for the current frame

    # ----------------------------------------------------------------- opening
    @property
    def categories(self) -> CategoryTable:
        return self.annotation.categories if self.annotation is not None else vipseg_categories()

    def open_video(self, path: str | Path, confirm: Confirm | None = None) -> bool:
        """Open a video file or an image folder with an empty annotation.

        `confirm()` is asked once the file has opened, before the open document is replaced (unsaved edits);
        an unreadable file raises before anyone is asked. Returns whether the new document was shown.
        """
        from app.core.video import VideoSource

        return self.set_video(VideoSource.open(Path(path)), confirm)

    def set_video(self, video, confirm: Confirm | None = None) -> bool:
        """Show an opened ``VideoSource`` (e.g. one opened in a background thread) with an empty annotation
        (`confirm` as for `open_video`)."""
        from app.core.annotation import Annotation

        annotation = Annotation(video.num_frames, video.height, video.width, vipseg_categories())
        return self._replace_document(video, annotation, None, confirm)

    def open_project(self, folder: str | Path, locate_video: Callable[[Path], Path | None] | None = None,
                     confirm: Confirm | None = None) -> bool:
        """Open a project; if its video moved, `locate_video(old path)` may point to it (the project is relinked).
        `confirm` as for `open_video`."""
        from app.core.project import Project

        if self.project is not None and self.project.folder == Path(folder).absolute():
            if confirm is not None and not confirm():  # reopening the open project: ask before releasing our lock
                return False
            confirm = None
            self.project.close()
            self.project = None
        project = Project.open(Path(folder))
        try:
            if not project.video_path.exists() and locate_video is not None:
                moved = locate_video(project.video_path)
                if moved is not None:
                    project.relink_video(moved)
            video = project.video
        except StudioError:
            project.close()
            raise
        return self._replace_document(video, project.annotation, project, confirm)

    def save_project(self, folder: str | Path | None = None) -> Path:
        """Save into the open project, or create one in `folder` (first save / "save as")."""
        from app.core.project import Project

        if folder is not None:
            project = Project.create(Path(folder), self.video.path, annotation=self.annotation)  # writes everything
            if self.project is not None:
                self.project.close()
            self.project = project
        elif self.project is None:
            raise UserActionError("This video has no project yet; use File → Save Project As… to choose a folder.")
        else:
            self.project.save()
        self.undo_stack.setClean()
        self._dirty = False
        return self.project.folder

    def mark_saved(self) -> None:
        """The project was saved in the background (an autosave) with no edit since: nothing is unsaved."""
        self._dirty = False

    def open_recovered(self, video_path: Path, annotation) -> None:
        """Show work recovered after a crash: the video with the autosaved annotation, unsaved until saved as a project."""
        from app.core.video import VideoSource

        self._set_document(VideoSource.open(Path(video_path)), annotation, project=None)
        self._dirty = True

    def open_imported(self, video, annotation, confirm: Confirm | None = None) -> bool:
        """Show a video imported from a VIPSeg dataset (`app.core.jobs.import_vipseg_video`) with its masks, for
        correction (`confirm` as for `open_video`)."""
        return self._replace_document(video, annotation, None, confirm)

    def _replace_document(self, video, annotation, project, confirm: Confirm | None) -> bool:
        """Show a loaded document if `confirm` allows; otherwise release it and keep the open one."""
        if confirm is not None and not confirm():
            (project or video).close()  # a project closes its video
            return False
        self._set_document(video, annotation, project)
        return True

    def _set_document(self, video, annotation, project) -> None:
        from app.core.scrub import Scrubber

        if self.annotation is not None and self._on_annotation_change in self.annotation.listeners:
            self.annotation.listeners.remove(self._on_annotation_change)
        if self.project is not None and self.project is not project:
            self.project.close()  # releases its lock
        self.stop_background()
        if self.video is not None and self.video is not video:
            self.video.close()
        self.video, self.annotation, self.project = video, annotation, project
        self.scrubber = Scrubber(video, self.proxy_store, on_exact=self.exact_frame_ready.emit)
        self._picture = video.frame(0)  # decoded when the video opened: shown at once
        self.annotation.listeners.append(self._on_annotation_change)
        self.diagnostics = []
        self._dirty = False
        self.undo_stack.clear()
        self.selection = []
        self.display.hidden.clear()
        self.frame_index = 0
        self.loaded.emit()
        self.frame_changed.emit(0)

    def _on_annotation_change(self, frames, tracks) -> None:
        self._dirty = True
        self.annotation_changed.emit(frames, tracks)

    @property
    def modified(self) -> bool:
        """Edits or model results not yet saved to a project."""
        return self.video is not None and self._dirty

    def work_note(self) -> str:
        """Where the user's work stands, for error dialogs: what is safe and what to do to keep it."""
        if self.video is None:
            return ""
        if not self.modified:
            return "The project has no unsaved changes." if self.project is not None else ""
        if self.project is not None:
            return "Your edits are still open in this window; save the project (Ctrl+S) to keep them."
        return "Your edits are still open in this window and not saved anywhere yet; use File → Save Project As… to keep them."

    # ------------------------------------------------------------- navigation
    @property
    def num_frames(self) -> int:
        return self.video.num_frames if self.video is not None else 0

    def seek(self, index: int) -> None:
        if self.video is None:
            return
        index = int(np.clip(index, 0, self.num_frames - 1))
        if index != self.frame_index:
            self.frame_index = index
            self.frame_changed.emit(index)

    def step(self, delta: int) -> None:
        self.seek(self.frame_index + delta)

    def frame(self) -> np.ndarray:
        """The exact current frame (may decode for a while: for pixels that matter, not for display)."""
        return self.video.frame(self.frame_index)

    def display_frame(self) -> np.ndarray:
        """The picture to show for the current frame now, never waiting for a decoder: the exact frame if
        decoded, else the proxy's (or its nearest ready) frame, else the last one shown; when the exact
        frame is decoded, ``exact_frame_ready`` says so. After ``stop_background``: the last one shown."""
        shown = self.scrubber.show(self.frame_index) if self.scrubber is not None else None
        if shown is not None:
            self._picture = shown.frame
        return self._picture

    def stop_background(self) -> None:
        """Stop the open video's background decoding (before closing it or the window)."""
        if self.scrubber is not None:
            self.scrubber.close()
            self.scrubber = None

    def track_map(self, index: int | None = None) -> np.ndarray:
        return self.annotation.track_map(self.frame_index if index is None else index)

    # -------------------------------------------------------------- selection
    @property
    def selected(self) -> int | None:
        return self.selection[0] if self.selection else None

    def select(self, track_ids: list[int] | int | None, add: bool = False) -> None:
        ids = [] if track_ids is None else [track_ids] if isinstance(track_ids, int) else list(track_ids)
        if add:
            ids = self.selection + [t for t in ids if t not in self.selection]
        ids = [t for t in ids if self.annotation is not None and t in self.annotation.tracks]
        if ids != self.selection:
            self.selection = ids
            self.selection_changed.emit()

    def select_at(self, x: int, y: int, add: bool = False) -> int | None:
        """Select the track under pixel (x, y) of the current frame (click on a mask)."""
        track_id = self.annotation.track_at(self.frame_index, x, y)
        if track_id is None and not add:
            self.select(None)
        elif track_id is not None:
            self.select(track_id, add=add)
        return track_id

    # ---------------------------------------------------------------- display
    def set_display(self, **changes) -> None:
        for name, value in changes.items():
            setattr(self.display, name, value)
        self.display_changed.emit()

    def set_hidden(self, track_id: int, hidden: bool) -> None:
        (self.display.hidden.add if hidden else self.display.hidden.discard)(track_id)
        self.display_changed.emit()

    # ------------------------------------------------------------------ edits
    def _check_idle(self) -> None:
        if self.busy is not None:
            raise UserActionError(f"{self.busy}; edits are possible again when it has finished (or cancel it).")

    def undo(self) -> None:
        self._check_idle()
        self.undo_stack.undo()
        self.select([t for t in self.selection if t in self.annotation.tracks])

    def redo(self) -> None:
        self._check_idle()
        self.undo_stack.redo()
        self.select([t for t in self.selection if t in self.annotation.tracks])

    def edit(self, op: edits.Edit, text: str) -> None:
        """Apply a core edit op and make it undoable (one undo step); the project logs it in its history."""
        self._check_idle()
        inverse = self.annotation.apply(op)
        self._record(op, inverse, text)
        self.undo_stack.push(EditCommand(self.annotation, op, inverse, text, self._record))
        self.select([t for t in self.selection if t in self.annotation.tracks])

    def push_done(self, inverse: edits.Edit, text: str) -> None:
        """Make a change already written into the annotation (a model run) one undo step; `inverse` undoes it.

        Not logged in the project history, as model output never was: the saved masks hold it.
        """
        self.undo_stack.push(EditCommand(self.annotation, None, inverse, text))

    def _record(self, op: edits.Edit, inverse: edits.Edit, text: str) -> None:
        if self.project is not None:
            self.project.record(op, inverse, text)

    def edit_group(self, ops: list[edits.Edit], text: str) -> None:
        """Several ops as one undo step; if one fails, none is applied (EditGroup rolls back)."""
        self.edit(ops[0] if len(ops) == 1 else edits.EditGroup([op.to_json() for op in ops], text), text)

    def _need(self, count: int, what: str) -> list[int]:
        if self.annotation is None or len(self.selection) < count:
            raise UserActionError(f"{what}: select {count} track{'s' if count > 1 else ''} first "
                                  "(click masks with Ctrl held, or Ctrl-click rows in the object list).")
        return self.selection

    def merge_selected(self) -> None:
        """Merge every other selected track into the first selected one."""
        target, *sources = self._need(2, "Merge")
        self.edit_group([edits.MergeTracks(source, target) for source in sources],
                        f"Merge {', '.join(map(str, sources))} into {target}")

    def split_selected(self) -> None:
        track_id = self._need(1, "Split")[0]
        op = edits.SplitTrack(track_id, self.frame_index)
        self.edit(op, f"Split {track_id} at frame {self.frame_index}")
        self.select([track_id, op.new_track_id])

    def swap_selected(self) -> None:
        first, second = self._need(2, "Swap")[:2]
        self.edit(edits.SwapTracks(first, second, self.frame_index), f"Swap {first} and {second} from frame {self.frame_index}")

    def delete_selected(self, start: int = 0, stop: int | None = None) -> None:
        """Delete the selected tracks in frames [start, stop) (default: everywhere)."""
        ids = self._need(1, "Delete")
        where = "" if start == 0 and stop is None else f" in frames {start}-{(stop or self.num_frames) - 1}"
        self.edit_group([edits.DeleteTrack(t, start, stop) for t in ids], f"Delete {', '.join(map(str, ids))}{where}")

    def relabel_selected(self, category_id: int, from_current_frame: bool = False) -> None:
        """Relabel the selected track, or only its part from the current frame on (a new track)."""
        track_id = self._need(1, "Relabel")[0]
        name = self.categories[category_id].name
        start = self.frame_index if from_current_frame else 0
        where = f" from frame {start}" if from_current_frame else ""
        self.edit(edits.RelabelTrack(track_id, category_id, start), f"Relabel {track_id} as {name}{where}")

    def toggle_locked(self) -> None:
        ids = self._need(1, "Lock")
        lock = not all(self.annotation.tracks[t].locked for t in ids)
        self.edit_group([edits.SetTrackLocked(t, lock) for t in ids], f"{'Lock' if lock else 'Unlock'} {', '.join(map(str, ids))}")

    def set_locked(self, track_id: int, locked: bool) -> None:
        if self.annotation.tracks[track_id].locked != locked:
            self.edit(edits.SetTrackLocked(track_id, locked), f"{'Lock' if locked else 'Unlock'} {track_id}")

    def new_track(self, category_id: int) -> int:
        """Add an empty track (to paint) and select it."""
        op = edits.AddTrack(category_id)
        self.edit(op, f"New {self.categories[category_id].name} track")
        self.select(op.track_id)
        return op.track_id

    def paint(self, tool: str, points: list[tuple[int, int]], radius: int) -> None:
        """Brush / fill / polygon into the selected track, or erase, on the current frame."""
        track_id = 0 if tool == "eraser" else self._need(1, tool.capitalize())[0]
        op = edits.Paint(self.frame_index, track_id, tool, [[int(x), int(y)] for x, y in points], int(radius))
        self.edit(op, f"{tool.capitalize()} {track_id or ''} on frame {self.frame_index}".replace("  ", " "))

    def colour_fill(self, x: int, y: int, tolerance: int) -> None:
        """Paint the region of the current frame's colours around (x, y) (within `tolerance`) into the selected track."""
        track_id = self._need(1, "Colour fill")[0]
        op = image_fill(self.video.frame(self.frame_index), self.frame_index, track_id, x, y, tolerance)
        self.edit(op, op.label)

    def describe_pixel(self, x: int, y: int) -> str:
        """Status-bar text for the pixel under the mouse: position and the track there."""
        if self.annotation is None:
            return ""
        track_id = self.annotation.track_at(self.frame_index, x, y)
        if track_id is None:
            return f"({x}, {y})"
        track = self.annotation.tracks[track_id]
        category = self.categories.name(track.category_id)
        return f"({x}, {y})  track {track_id}: {category}{' (locked)' if track.locked else ''}"

    def toggle_hidden_selected(self) -> None:
        ids = self._need(1, "Hide")
        hide = not all(t in self.display.hidden for t in ids)
        for track_id in ids:
            (self.display.hidden.add if hide else self.display.hidden.discard)(track_id)
        self.display_changed.emit()

    def jump_edge(self, direction: int) -> None:
        """Alt+arrows: jump to the next / previous start or end of the selected track's spans."""
        if self.selected is None:
            return
        edges = sorted({f for span in self.annotation.track_spans(self.selected) for f in span})
        ahead = [f for f in edges if (f - self.frame_index) * direction > 0]
        if ahead:
            self.seek(ahead[0] if direction > 0 else ahead[-1])
