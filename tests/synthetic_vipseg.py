"""Tiny synthetic VIPSeg data for tests: moving things over stuff, as plain track maps and as written datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.progress import run_job
from app.core.vipseg import VideoToWrite, write_videos
from dvis_models.categories import vipseg_categories

SKY, GROUND, PERSON, CAR = 28, 14, 60, 48  # VIPSeg json ids (sky/ground stuff, person/car things)


def track_maps(num_frames: int = 4, height: int = 24, width: int = 32) -> tuple[list[np.ndarray], dict[int, int]]:
    """Per-frame int32 track maps and track -> category: sky (1) over ground (2), two persons (3, 4)
    walking right, a car (5) that appears from frame 1, and a void strip on the left edge."""
    maps = []
    for t in range(num_frames):
        m = np.full((height, width), 1, dtype=np.int32)
        m[height // 2 :, :] = 2
        m[4:12, 2 + 2 * t : 8 + 2 * t] = 3
        m[14:22, 18 + t : 23 + t] = 4
        if t >= 1:
            m[15:20, 3:9] = 5
        m[:, :1] = 0
        maps.append(m)
    return maps, {1: SKY, 2: GROUND, 3: PERSON, 4: PERSON, 5: CAR}


def frame_images(num_frames: int, height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(num_frames)]


def video(video_id: str = "vid_a", num_frames: int = 4, height: int = 24, width: int = 32) -> VideoToWrite:
    maps, categories = track_maps(num_frames, height, width)
    images = frame_images(num_frames, height, width)
    return VideoToWrite(video_id, num_frames, categories, lambda i: maps[i], image=lambda i: images[i])


def write_dataset(root: Path, videos: list[VideoToWrite] | None = None, split: str = "train", **options) -> Path:
    """Write ``videos`` (default: two synthetic videos) as a VIPSeg dataset; returns the split JSON."""
    videos = videos if videos is not None else [video("vid_a", 4), video("vid_b", 3, 20, 28)]
    return run_job(write_videos(videos, root, vipseg_categories(), split=split, **options)).json_path
