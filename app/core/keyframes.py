"""Which frames of a track a person vouched for (keyframes), and which a propagation filled in.

A keyframe is a frame where the track's mask was drawn, accepted from a prompt or corrected by hand:
propagation starts from one and interpolates between two. Propagated frames are marked too, so the
timeline can show where masks were filled in rather than drawn. Marks are per track and frame, change
only through the ``MarkFrames`` edit (so undo restores them) and are saved with the track table.
"""

from __future__ import annotations

KEY, PROPAGATED = "key", "propagated"
KINDS = (KEY, PROPAGATED)


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

    def set(self, track_id: int, marks: dict[int, str | None]) -> dict[int, str | None]:
        """Mark (or with None unmark) frames of a track; returns the marks they had before, to undo."""
        current = self._marks.setdefault(track_id, {})
        before = {frame: current.get(frame) for frame in marks}
        for frame, kind in marks.items():
            if kind is None:
                current.pop(frame, None)
            else:
                current[frame] = kind
        if not current:
            del self._marks[track_id]
        return before

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
