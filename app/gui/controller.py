"""The Qt side of the open document: current frame, selection, display settings and Qt signals for the views.

The document itself (video, annotation, project, edit history, model run, busy state) is the Qt-free
`app.core.session.Session`; this adapter turns its notifications into Qt signals and the user's intents
(merge the selection, paint on this frame...) into core edits through it. Nothing here re-implements
core logic, so tests can drive every user action without clicking pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.core import edits
from app.core.image_fill import image_fill
from app.core.session import Session, UserActionError

if TYPE_CHECKING:  # the type only; the GUI reaches dvis_models through app.core at run time
    from dvis_models.categories import CategoryTable


@dataclass
class DisplaySettings:
    """How masks are drawn over the frame."""

    mode: str = "fill"
    opacity: float = 0.5
    labels: bool = True
    hidden: set[int] = field(default_factory=set)


class StudioController(QObject):
    """The views' model of the session: what is shown and selected, as Qt signals."""

    loaded = Signal()  # a new video / annotation replaced the old one
    frame_changed = Signal(int)
    annotation_changed = Signal(object, object)  # frames changed (set or None = all), tracks changed (set or None)
    selection_changed = Signal()
    display_changed = Signal()
    exact_frame_ready = Signal(int)  # a frame shown from the proxy (or an older one) is now decoded exactly
    proxy_progress = Signal(object)  # app.core.scrub.ProxyProgress of the open video's scrubbing proxy
    history_changed = Signal()  # undo / redo possible, their texts or "modified" may have changed
    busy_changed = Signal()  # read `session.busy`

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.frame_index = 0
        self.selection: list[int] = []
        self.display = DisplaySettings()
        self.proxy_store = None  # app.core.proxy.ProxyStore: where scrubbing proxies live (None: no proxies)
        self.scrubber = None  # app.core.scrub.Scrubber of the open video
        self._picture: np.ndarray | None = None  # what the view shows for the current frame
        self.session.closing.connect(self.stop_background)
        self.session.loaded.connect(self._on_loaded)
        self.session.annotation_changed.connect(self.annotation_changed.emit)
        self.session.history.changed.connect(self.history_changed.emit)
        self.session.busy_changed.connect(lambda busy: self.busy_changed.emit())

    # ---------------------------------------------------------------- document
    # Read-only views of the session's document, for the views (which know only the controller).
    @property
    def video(self):
        return self.session.video

    @property
    def annotation(self):
        return self.session.annotation

    @property
    def project(self):
        return self.session.project

    @property
    def diagnostics(self) -> list:
        return self.session.diagnostics

    @property
    def categories(self) -> CategoryTable:
        return self.session.categories

    def _on_loaded(self) -> None:
        from app.core.scrub import Scrubber

        video = self.session.video
        self.scrubber = Scrubber(video, self.proxy_store, on_exact=self.exact_frame_ready.emit,
                                 on_progress=self.proxy_progress.emit)
        self._picture = video.frame(0)  # decoded when the video opened: shown at once
        self.selection = []
        self.display.hidden.clear()
        self.frame_index = 0
        self.loaded.emit()
        self.frame_changed.emit(0)

    # ------------------------------------------------------------- navigation
    @property
    def num_frames(self) -> int:
        return self.session.num_frames

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
    def undo(self) -> None:
        self.session.undo()
        self._keep_existing_selection()

    def redo(self) -> None:
        self.session.redo()
        self._keep_existing_selection()

    def edit(self, op: edits.Edit, text: str) -> None:
        """Apply a core edit op as one undo step (the project logs it in its history)."""
        self.session.edit(op, text)
        self._keep_existing_selection()

    def _keep_existing_selection(self) -> None:
        self.select([t for t in self.selection if t in self.annotation.tracks])

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
        self.edit(edits.SwapTracks(first, second, self.frame_index),
                  f"Swap {first} and {second} from frame {self.frame_index}")

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
        self.edit_group([edits.SetTrackLocked(t, lock) for t in ids],
                        f"{'Lock' if lock else 'Unlock'} {', '.join(map(str, ids))}")

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
        label = f"{tool.capitalize()} {track_id or ''} on frame {self.frame_index}".replace("  ", " ")
        self.edit(edits.with_keyframe(op, track_id, self.frame_index, label), label)

    def colour_fill(self, x: int, y: int, tolerance: int) -> None:
        """Paint the region of the current frame's colours around (x, y) (within `tolerance`) into the selected
        track."""
        track_id = self._need(1, "Colour fill")[0]
        op = image_fill(self.video.frame(self.frame_index), self.frame_index, track_id, x, y, tolerance)
        self.edit(edits.with_keyframe(op, track_id, self.frame_index, op.label), op.label)

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
