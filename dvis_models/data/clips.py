"""Which frames of a video make one training clip.

DVIS samples a contiguous run of frames (5 for the tracker, 21 for the refiner, 1 for the segmenter
stage) and, for the refiner, reverses it with p = 0.5. Two deliberate differences from the official
``select_frames``: the start is drawn from every valid position (the official ``randrange(L - n)``
never picks the last one), and a video shorter than the clip is padded with randomly repeated frames
kept in temporal order (the official code means to sort them but discards the result of ``sorted``).
"""

from __future__ import annotations

import numpy as np

STAGE_CLIP_LENGTHS = {"segmenter": 1, "tracker": 5, "refiner": 21}
STAGE_REVERSE_PROBS = {"segmenter": 0.0, "tracker": 0.0, "refiner": 0.5}


def sample_clip_indices(video_length: int, num_frames: int, rng: np.random.Generator,
                        reverse_prob: float = 0.0) -> list[int]:
    """``num_frames`` frame indices of a video of ``video_length`` frames (see the module docstring)."""
    if video_length < 1 or num_frames < 1:
        raise ValueError(f"cannot sample {num_frames} frames from a video of {video_length} frames")
    if video_length >= num_frames:
        start = int(rng.integers(video_length - num_frames + 1))
        indices = list(range(start, start + num_frames))
    else:
        extra = rng.integers(video_length, size=num_frames - video_length)
        indices = sorted(list(range(video_length)) + [int(i) for i in extra])
    if reverse_prob > 0 and rng.random() < reverse_prob:
        indices.reverse()
    return indices
