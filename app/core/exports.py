"""Exports for video editors: per-object masks, RGBA cut-outs, an alpha matte video, an overlay video.

Every export takes the masks from any object with ``track_map(index) -> int32 (H, W)`` (the
``Annotation``) and, where pixels are needed, a ``VideoSource``. Each export works on chosen tracks and
chosen frames and is a job (``app.core.progress``): a generator that yields ``Progress`` after each frame and
returns an ``ExportResult``; ``Cancelled`` thrown in at a yield stops it, files already written stay complete.

Files appear atomically: PNGs through ``dvis_models.atomic``, videos are encoded into a temporary file in
the destination folder and renamed over the target when complete, so an editor watching the folder
never picks up half a file and a cancelled or failed export leaves no partial video behind.

Videos are H.264 (yuv420p, BT.709, limited range: what every editor expects) at the source frame rate.
4:2:0 needs even sizes, so an odd width or height is padded by one replicated pixel on the right or bottom.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from app.core.annotation import Annotation
from app.core.colors import OverlayMode, overlay, visible_mask
from app.core.errors import StudioError
from app.core.progress import Job, Progress
from app.core.video import VideoSource
from dvis_models import atomic

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
_VFR_TIME_BASE = Fraction(1, 90000)
_PNG_WRITERS = min(4, os.cpu_count() or 1)
_MAX_DECODE_GAP = 8  # frames


class ExportError(StudioError):
    """An export cannot be written (bad choice of tracks/frames, unwritable folder, full disk...)."""


class TrackMaps(Protocol):
    """What exports need from an annotation."""

    def track_map(self, index: int) -> np.ndarray: ...


@dataclass
class ExportResult:
    """What an export wrote: the files and the number of frames."""

    paths: list[Path] = field(default_factory=list)
    frames: int = 0


# ---------------------------------------------------------------------------------------------
# PNG sequences
# ---------------------------------------------------------------------------------------------
def export_track_masks(
    annotation: TrackMaps,
    track_ids: Collection[int],
    frames: Iterable[int],
    out_dir: str | Path,
    *,
    stems: Sequence[str] | None = None,
    combine: bool = False,
    class_names: Mapping[int, str] | None = None,
    all_frames: bool = False,
) -> Job[ExportResult]:
    """Binary masks (8-bit grey PNG, 0 outside / 255 inside) at the annotation's resolution.

    Writes ``out_dir/track_<id>_<class>/<stem>.png`` per track (see ``track_folder``; ``class_names`` maps
    id -> class name, e.g. ``class_names(annotation)``), or with ``combine`` one ``out_dir/<stem>.png``
    holding the union of the chosen tracks. ``stems`` name frame i (default: 8-digit index, like VIPSeg).
    Only frames where the track (or, combined, any chosen track) is present get a file, unless ``all_frames``
    asks for an empty mask in the others too.
    """
    track_ids = _check_tracks(track_ids)
    frames = _check_frames(frames, annotation, len(stems) if stems is not None else None)

    def render(pixels: None, mask: np.ndarray) -> np.ndarray:
        return mask

    return (yield from _png_sequence(annotation, None, track_ids, frames, Path(out_dir), stems, combine, render,
                                     class_names, all_frames))


def export_cutouts(
    annotation: TrackMaps,
    source: VideoSource,
    track_ids: Collection[int],
    frames: Iterable[int],
    out_dir: str | Path,
    *,
    combine: bool = False,
    class_names: Mapping[int, str] | None = None,
    all_frames: bool = False,
) -> Job[ExportResult]:
    """RGBA PNGs at the video's resolution: the object's pixels, fully transparent elsewhere.

    Writes ``out_dir/track_<id>_<class>/<stem>.png`` per track (stems of the source), or with ``combine`` one
    ``out_dir/<stem>.png`` with all chosen tracks; folders and frames as in ``export_track_masks``.
    Transparent pixels keep their colour (premultiplying would darken edges when an editor scales the cut-out).
    """
    track_ids = _check_tracks(track_ids)
    frames = _check_frames(frames, annotation, source.num_frames)

    def render(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.dstack([pixels, mask])

    return (yield from _png_sequence(annotation, source, track_ids, frames, Path(out_dir), source.stems, combine,
                                     render, class_names, all_frames))


def class_names(annotation: Annotation) -> dict[int, str]:
    """Track id -> class name, for ``track_folder``."""
    return {t: annotation.categories.name(track.category_id) for t, track in annotation.tracks.items()}


def track_folder(track_id: int, class_name: str | None = None) -> str:
    """``track_0012_person``: the id (zero-padded, so folders sort by id) and the class, made safe for any file
    system."""
    safe = re.sub(r"[^0-9A-Za-z]+", "_", class_name or "").strip("_")
    return f"track_{track_id:04d}" + (f"_{safe}" if safe else "")


def _png_sequence(annotation, source, track_ids, frames, out_dir, stems, combine, render, class_names,
                  all_frames) -> Job[ExportResult]:
    """Render one image per (frame, track folder) and write them on a few threads.

    PNG encoding and fsync release the GIL, so writer threads overlap them with rendering the next
    frames; at most a few frames are in flight, which bounds memory. Frames complete in order. Progress
    counts the frames rendered; when the job stops early, writes not yet started are dropped.
    """
    names = class_names or {}
    folders: dict[tuple[int, ...], Path] = (
        {tuple(track_ids): out_dir} if combine
        else {(t,): out_dir / track_folder(t, names.get(t)) for t in track_ids})
    for folder in folders.values():
        _make_folder(folder)
    result = ExportResult()
    in_flight: deque[list[Future]] = deque()

    def finish_oldest() -> None:
        result.paths.extend(future.result() for future in in_flight.popleft())
        result.frames += 1

    with ThreadPoolExecutor(max_workers=_PNG_WRITERS) as pool, closing(_with_pixels(source, frames)) as inputs:
        try:
            for done, (index, pixels) in enumerate(inputs, 1):
                track_map = _track_map(annotation, index, source)
                if index not in getattr(annotation, "damaged_frames", ()):  # found damaged only now, when read
                    stem = stems[index] if stems is not None else f"{index:08d}"
                    masks = {ids: _mask(track_map, list(ids)) for ids in folders}
                    in_flight.append([pool.submit(_write_png, folders[ids] / f"{stem}.png", render(pixels, mask))
                                      for ids, mask in masks.items() if all_frames or mask.any()])
                    while len(in_flight) > 2 * _PNG_WRITERS:
                        finish_oldest()
                yield Progress(done, len(frames))
            while in_flight:
                finish_oldest()
        finally:
            for futures in in_flight:  # after an error or Cancelled: let queued writes go, wait for running ones
                for future in futures:
                    future.cancel()
    return result


# ---------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------
def export_alpha_video(
    annotation: TrackMaps,
    source: VideoSource,
    track_ids: Collection[int],
    frames: Iterable[int],
    out_path: str | Path,
    *,
    crf: int = 12,
) -> Job[ExportResult]:
    """A black/white matte video (white = chosen tracks) to use as a track matte in an editor."""
    track_ids = _check_tracks(track_ids)

    def render(pixels: None, track_map: np.ndarray) -> np.ndarray:
        return np.repeat(_mask(track_map, track_ids)[..., None], 3, axis=2)

    return (yield from _encode_video(annotation, source, frames, Path(out_path), render, False, crf))


def export_overlay_video(
    annotation: TrackMaps,
    source: VideoSource,
    track_ids: Collection[int] | None,
    frames: Iterable[int],
    out_path: str | Path,
    *,
    mode: OverlayMode = "fill_contour",
    alpha: float = 0.5,
    crf: int = 18,
) -> Job[ExportResult]:
    """The video with the chosen tracks (None: all) drawn in their track colours (see ``colors.overlay``)."""
    visible = None if track_ids is None else _check_tracks(track_ids)

    def render(pixels: np.ndarray, track_map: np.ndarray) -> np.ndarray:
        return overlay(pixels, track_map, alpha=alpha, mode=mode, visible=visible)

    return (yield from _encode_video(annotation, source, frames, Path(out_path), render, True, crf))


def _encode_video(annotation, source, frames, out_path, render, needs_pixels, crf) -> Job[ExportResult]:
    """Encode into a temporary file renamed over ``out_path`` once complete (removed if the job stops early)."""
    frames = _check_frames(frames, annotation, source.num_frames)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ExportError(f"Cannot write {out_path}: use a {', '.join(VIDEO_SUFFIXES)} file name for an H.264 video.")
    _make_folder(out_path.parent)
    time_base, pts = _frame_timing(source, frames)
    width, height = source.width + source.width % 2, source.height + source.height % 2
    result = ExportResult()
    temp = _temp_path(out_path)
    try:
        with (av.open(str(temp), mode="w", format=_MUXERS[out_path.suffix.lower()]) as container,
              closing(_with_pixels(source if needs_pixels else None, frames)) as inputs):
            stream = container.add_stream("libx264", rate=source.frame_rate.limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.time_base = time_base
            stream.codec_context.options = {"crf": str(crf), "preset": "fast"}
            stream.codec_context.colorspace = stream.codec_context.color_primaries = 1  # BT.709
            stream.codec_context.color_trc = stream.codec_context.color_range = 1  # BT.709, limited range
            for done, ((index, pixels), timestamp) in enumerate(zip(inputs, pts)):
                rgb = _pad_even(render(pixels, _track_map(annotation, index, source)))
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                    format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
                frame.pts, frame.time_base = timestamp, time_base
                container.mux(stream.encode(frame))
                result.frames += 1
                yield Progress(done + 1, len(frames))
            container.mux(stream.encode(None))
        _fsync(temp)
        os.replace(temp, out_path)
        atomic.fsync_dir(out_path.parent)
    except OSError as error:
        raise _os_error(error, out_path) from error
    except av.error.FFmpegError as error:  # encoder/muxer failures that are not plain OS errors
        raise ExportError(f"Could not encode {out_path}: {error}.") from error
    finally:
        if temp.exists():
            temp.unlink()
    result.paths.append(out_path)
    return result


_MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _with_pixels(source: VideoSource | None, frames: list[int]) -> Iterator[tuple[int, np.ndarray | None]]:
    """``(index, RGB frame)`` for the chosen frames in order (pixels None without a source).

    Reads with the source's sequential reader (its own decoder: no fight with the GUI's random access),
    one pass per run of frames; gaps up to ``_MAX_DECODE_GAP`` are decoded through rather than re-seeked.
    """
    if source is None:
        yield from ((index, None) for index in frames)
        return
    run_start = 0
    for end in range(1, len(frames) + 1):
        if end == len(frames) or frames[end] - frames[end - 1] > _MAX_DECODE_GAP:
            wanted = set(frames[run_start:end])
            for index, pixels in source.iter_frames(frames[run_start], frames[end - 1] + 1):
                if index in wanted:
                    yield index, pixels
            run_start = end


def _frame_timing(source: VideoSource, frames: list[int]) -> tuple[Fraction, list[int]]:
    """Time base and pts that keep the source timing (also for frame subsets with gaps).

    Constant-rate sources keep their exact rate (pts = frames since the first exported one); variable-rate
    sources keep each frame's own timestamp at 1/90000 s precision.
    """
    rate = source.frame_rate.limit_denominator(1001)
    t0 = source.timestamps[frames[0]]
    offsets = [source.timestamps[i] - t0 for i in frames]
    steps = [o * rate for o in offsets]
    if all(abs(s - round(s)) < 0.25 for s in steps):
        pts = [round(s) for s in steps]
        time_base = 1 / rate
    else:
        pts = [round(o / _VFR_TIME_BASE) for o in offsets]
        time_base = _VFR_TIME_BASE
    for i in range(1, len(pts)):  # strictly increasing, whatever rounding did
        pts[i] = max(pts[i], pts[i - 1] + 1)
    return time_base, pts


def _pad_even(rgb: np.ndarray) -> np.ndarray:
    pad_h, pad_w = rgb.shape[0] % 2, rgb.shape[1] % 2
    if pad_h or pad_w:
        rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
    return rgb


# ---------------------------------------------------------------------------------------------
# Shared checks and file handling
# ---------------------------------------------------------------------------------------------
def _check_tracks(track_ids: Collection[int]) -> list[int]:
    ids = sorted({int(t) for t in track_ids})
    if not ids:
        raise ExportError("No tracks chosen: select at least one object to export.")
    if ids[0] < 1:
        raise ExportError(f"Track id {ids[0]} is not a track (ids start at 1; 0 is void).")
    return ids


def _check_frames(frames: Iterable[int], annotation: TrackMaps, num_frames: int | None) -> list[int]:
    """The frames as a list, checked against the video's and the annotation's length (when it has one).

    Frames known to be damaged (their masks are lost) are left out.
    """
    damaged = getattr(annotation, "damaged_frames", ())
    chosen = [int(i) for i in frames]
    frames = [i for i in chosen if i not in damaged]
    if chosen and not frames:
        raise ExportError("Every chosen frame is damaged (its mask is lost); repair the project or choose other "
                          "frames.")
    if not frames:
        raise ExportError("No frames chosen: select a frame range to export.")
    if sorted(set(frames)) != frames:
        raise ExportError("Frames to export must be increasing and without repeats.")
    lengths = [n for n in (num_frames, getattr(annotation, "num_frames", None)) if n is not None]
    if frames[0] < 0 or (lengths and frames[-1] >= min(lengths)):
        limit = f"0..{min(lengths) - 1}" if lengths else "0.."
        raise ExportError(f"Frames {frames[0]}..{frames[-1]} are outside the video's frames {limit}.")
    return frames


def _mask(track_map: np.ndarray, track_ids: list[int]) -> np.ndarray:
    """uint8 mask, 255 on the given tracks, 0 elsewhere."""
    inside = track_map == track_ids[0] if len(track_ids) == 1 else visible_mask(track_map, track_ids)
    return inside.view(np.uint8) * np.uint8(255)


def _track_map(annotation: TrackMaps, index: int, source: VideoSource | None) -> np.ndarray:
    """The frame's track map, scaled (nearest) to the video size when the masks were made at another size."""
    track_map = np.asarray(annotation.track_map(index))
    if source is not None and track_map.shape != (source.height, source.width):
        track_map = cv2.resize(track_map.astype(np.int32), (source.width, source.height),
                               interpolation=cv2.INTER_NEAREST)
    return track_map


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _os_error(error, folder) from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot write to {folder}: permission denied. Choose a folder you can write to.")


def _write_png(path: Path, image: np.ndarray) -> Path:
    try:
        atomic.write_png(path, image)
    except OSError as error:
        raise _os_error(error, path) from error
    return path


def _temp_path(out_path: Path) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=f"{out_path.suffix}{atomic.TEMP_SUFFIX}",
                                    dir=out_path.parent)
    except OSError as error:
        raise _os_error(error, out_path) from error
    os.close(fd)
    return Path(name)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(error: OSError, path: Path) -> ExportError:
    """A message that says what to do for the OS errors an export meets in practice."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return ExportError(f"The disk is full while writing {path}. Free some space or export to another drive.")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ExportError(f"Cannot write {path}: permission denied or read-only. Choose a folder you can write to.")
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return ExportError(f"Cannot create {path}: part of the path is a file, not a folder. Choose another folder.")
    return ExportError(f"Cannot write {path}: {error.strerror or error}. Check the destination and try again.")
