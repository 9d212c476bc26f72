"""Which frames of a track a person vouched for (keyframes), and which a propagation filled in.

A keyframe is a frame where the track's mask was drawn, accepted from a prompt or corrected by hand:
propagation starts from one and interpolates between two. Propagated frames are marked too, so the
timeline can show where masks were filled in rather than drawn. Marks are per track and frame, change
only through edits (so undo restores them) and are saved with the track table: ``MarkFrames`` sets them, and
the track edits (merge, split, swap, delete, relabel) carry them along with the pixels they move.
"""

from __future__ import annotations

from collections.abc import Collection

KEY, PROPAGATED = "key", "propagated"
KINDS = (KEY, PROPAGATED)
MarkChanges = dict[tuple[int, int], str | None]  # (track id, frame) -> new kind, None: unmarked


class FrameMarks:
    """track id -> {frame: KEY or PROPAGATED}; unmarked frames are absent."""

    def __init__(self, marks: dict[int, dict[int, str]] | None = None):
        self._marks = {t: dict(frames) for t, frames in (marks or {}).items() if frames}

    def of(self, track_id: int) -> dict[int, str]:
        return dict(self._marks.get(track_id, {}))

    def frames(self, track_id: int, kind: str) -> list[int]:
        """The track's frames marked ``kind``, in order."""
        return sorted(f for f, k in self._marks.get(track_id, {}).items() if k == kind)

    def spans(self, track_id: int, kind: str) -> list[tuple[int, int]]:
        """Runs of consecutive frames marked ``kind``: (first, last) inclusive."""
        spans: list[tuple[int, int]] = []
        for frame in self.frames(track_id, kind):
            if spans and spans[-1][1] == frame - 1:
                spans[-1] = (spans[-1][0], frame)
            else:
                spans.append((frame, frame))
        return spans

    def set(self, changes: MarkChanges) -> MarkChanges:
        """Mark (or with None unmark) ``(track id, frame)`` pairs; returns the marks they had before, to undo."""
        before = {place: self._marks.get(place[0], {}).get(place[1]) for place in changes}
        for (track_id, frame), kind in changes.items():
            current = self._marks.setdefault(track_id, {})
            if kind is None:
                current.pop(frame, None)
            else:
                current[frame] = kind
            if not current:
                del self._marks[track_id]
        return before

    # Track edits move pixels between track ids; these give the mark changes that make the marks follow.

    def moved(self, source: int, target: int, start: int = 0, stop: int | None = None) -> MarkChanges:
        """``source``'s marks on frames [start, stop) moved onto ``target`` (merge, split, relabel from a frame).

        Where both tracks mark a frame, a keyframe wins over a propagated mark: the merged mask there
        still holds what a person drew.
        """
        changes: MarkChanges = {}
        targets = self._marks.get(target, {})
        for frame, kind in self._in(source, start, stop).items():
            changes[(source, frame)] = None
            changes[(target, frame)] = KEY if KEY in (kind, targets.get(frame)) else kind
        return changes

    def swapped(self, first: int, second: int, start: int = 0, stop: int | None = None) -> MarkChanges:
        """The two tracks' marks on frames [start, stop) exchanged (swap)."""
        ours, theirs = self._in(first, start, stop), self._in(second, start, stop)
        changes: MarkChanges = {}
        for frame in ours.keys() | theirs.keys():
            changes[(first, frame)] = theirs.get(frame)
            changes[(second, frame)] = ours.get(frame)
        return changes

    def cleared(self, track_id: int, start: int = 0, stop: int | None = None) -> MarkChanges:
        """The track's marks on frames [start, stop) removed (delete)."""
        return {(track_id, frame): None for frame in self._in(track_id, start, stop)}

    def drop_orphans(self, tracks: Collection[int], num_frames: int) -> list[tuple[int, int]]:
        """Remove the marks of tracks not in ``tracks`` and of frames outside the video (left by older versions or
        a hand-edited project: no edit can make them); returns the (track id, frame) pairs removed."""
        dropped = [(t, f) for t, frames in self._marks.items() for f in frames
                   if t not in tracks or not 0 <= f < num_frames]
        self.set(dict.fromkeys(dropped))
        return dropped

    def _in(self, track_id: int, start: int, stop: int | None) -> dict[int, str]:
        return {f: k for f, k in self._marks.get(track_id, {}).items() if start <= f and (stop is None or f < stop)}

    def to_json(self) -> dict[str, list[list]]:
        return {str(t): [[f, k] for f, k in sorted(frames.items())] for t, frames in sorted(self._marks.items())}

    @classmethod
    def from_json(cls, data: dict) -> FrameMarks:
        """Read :meth:`to_json` output; raises ValueError on an unknown kind."""
        marks: dict[int, dict[int, str]] = {}
        for track, entries in data.items():
            for frame, kind in entries:
                if kind not in KINDS:
                    raise ValueError(f"unknown frame mark {kind!r} of track {track}")
                marks.setdefault(int(track), {})[int(frame)] = kind
        return cls(marks)
