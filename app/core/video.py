"""Frames of a video file or an image folder, by exact frame index.

A frame index is the 0-based position in DISPLAY order. For video files the index is built once at
open by demuxing (no decoding): every packet's presentation timestamp (pts), sorted, gives the index;
duplicated or missing pts still get distinct indices (ties keep file order; a missing pts falls back
to the dts). Decoded frames are mapped back to indices by their pts, never by counting frames, so
B-frames, variable frame rate and seeking cannot shift an index. (Raw .h264/.hevc streams carry no
timestamps at all: those are always decoded from their first packet, where output order is display order.)

Random access (``frame``) seeks to the last keyframe at or before the target and decodes forward to
the exact pts. Where a seek lands is checked, never assumed (demuxers such as MPEG-TS and MPEG-PS land a
keyframe late or past the end): a late landing seeks further back, and the first keyframe interval is
always decoded from the start of the file, so random access gives the pixels a sequential decode gives.
Forward steps within a keyframe interval continue decoding without seeking, the
decoded frames passed on the way are kept (as YUV) so stepping back is cheap, and an LRU keeps
recent RGB frames.
Sequential reading (``iter_frames``) uses its own decoder, so inference in a worker thread and
scrubbing in the GUI do not disturb each other.

A frame that cannot be decoded (damaged packet, unreadable image) is not fatal: it is listed in
``damaged_frames`` and reads as the last good frame before it (black when there is none), so index
sequences stay contiguous and results stay aligned with frame indices.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from app.core.errors import StudioError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
DEFAULT_FOLDER_FPS = 24.0
_NOT_VIDEO_FORMATS = {"tty"}
_RECENT_RAW_BYTES = 96 * 1024 * 1024  # decoded (YUV) frames kept from the last decode pass, for stepping back
_PROGRESS_EVERY = 1000  # packets indexed between progress reports
_SEEK_TRIES = 3  # keyframes tried, each a step further back, before decoding from the start instead


class VideoError(StudioError):
    """A video file or image folder cannot be opened or read."""


class _FrameCache:
    """LRU of decoded frames bounded by bytes (a 4K frame is 25 MB, a 480p one 1 MB).

    It has its own lock, so looking a frame up never waits for a decode in another thread.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, index: int) -> np.ndarray | None:
        with self._lock:
            frame = self._frames.get(index)
            if frame is not None:
                self._frames.move_to_end(index)
            return frame

    def put(self, index: int, frame: np.ndarray) -> None:
        frame.flags.writeable = False
        with self._lock:
            if index in self._frames or frame.nbytes > self.max_bytes:
                return
            self._frames[index] = frame
            self._bytes += frame.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._frames.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0


class VideoSource:
    """Frames of one video file or image folder. Open with ``VideoSource.open(path)``.

    Frames are (H, W, 3) uint8 RGB, after rotation metadata is applied. Arrays returned by ``frame``
    are shared with the cache and read-only: copy before drawing on them.
    """

    path: Path
    num_frames: int
    width: int
    height: int
    frame_rate: Fraction  # exact average rate; ``fps`` is its float
    stems: list[str]
    timestamps: list[float]  # seconds from the first frame, per index
    rotation: int = 0  # degrees clockwise the stored picture was turned for display (metadata), already applied

    def __init__(self, cache_bytes: int) -> None:
        self._cache = _FrameCache(cache_bytes)
        self._lock = threading.RLock()
        self._damaged: set[int] = set()

    @staticmethod
    def open(path: str | Path, cache_bytes: int = DEFAULT_CACHE_BYTES, fps: float | None = None,
             progress: Callable[[float], None] | None = None) -> VideoSource:
        """Open a video file, or a folder of images (frames in natural name order; ``fps`` sets their rate).

        Opening a video file reads all its packets (about 10 s for an hour of 1080p): ``progress(fraction)``
        reports how far, from whichever thread opens it.
        """
        path = Path(path)
        if path.is_dir():
            return ImageFolderSource(path, cache_bytes, fps or DEFAULT_FOLDER_FPS)
        if not path.is_file():
            raise VideoError(f"{path} does not exist. Choose an existing video file or image folder.")
        return VideoFileSource(path, cache_bytes, progress)

    # -- public API --------------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return float(self.frame_rate)

    @property
    def damaged_frames(self) -> list[int]:
        """Indices whose picture could not be decoded so far (they read as the previous good frame)."""
        with self._lock:
            return sorted(self._damaged)

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, index: int) -> np.ndarray:
        """The exact frame at display index ``index`` as a read-only (H, W, 3) uint8 RGB array."""
        index = self._check_index(index)
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                return cached
            frame = self._read(index)
            self._cache.put(index, frame)
            return frame

    def cached(self, index: int) -> np.ndarray | None:
        """Frame ``index`` if it is decoded already, else None: never waits for a decoder (for the UI thread)."""
        return self._cache.get(self._check_index(index))

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for every index in ``[start, stop)`` in order, decoding sequentially.

        Every index is yielded exactly once (damaged ones repeat the previous good frame and are
        recorded in ``damaged_frames``), so results can be stored by index without gaps.
        """
        stop = self.num_frames if stop is None else min(int(stop), self.num_frames)
        start = max(0, int(start))
        if start >= stop:
            return
        yield from self._iter(start, stop)

    def close(self) -> None:
        with self._lock:
            self._cache.clear()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.num_frames} frames, "
                f"{self.width}x{self.height}, {self.fps:.3f} fps)")

    # -- for subclasses ----------------------------------------------------------------------
    def _read(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def _iter(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    def note_damaged(self, indices: Iterable[int]) -> None:
        """Frames another reader of the same file found undecodable (a job decodes with its own source)."""
        for index in indices:
            self._mark_damaged(index)

    def _mark_damaged(self, index: int) -> None:
        with self._lock:
            if index not in self._damaged:
                log.warning("%s: frame %d could not be decoded; showing the previous good frame", self.path, index)
            self._damaged.add(index)

    def _black(self) -> np.ndarray:
        return np.zeros((self.height, self.width, 3), np.uint8)

    def _check_index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} is outside 0..{self.num_frames - 1} of {self.path}")
        return index


# ---------------------------------------------------------------------------------------------
# Image folders
# ---------------------------------------------------------------------------------------------
def _natural_key(name: str) -> list[object]:
    """Sort key putting "frame2" before "frame10" (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class ImageFolderSource(VideoSource):
    """Frames stored as images in one folder (VIPSeg ``images/<video>/<stem>.jpg``)."""

    def __init__(self, folder: Path, cache_bytes: int, fps: float) -> None:
        super().__init__(cache_bytes)
        self.path = folder
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                 and not p.name.startswith(".")]
        if not files:
            raise VideoError(f"{folder} contains no images ({', '.join(IMAGE_EXTENSIONS)}). "
                             "Choose a folder of frames or a video file.")
        self._files = sorted(files, key=lambda p: _natural_key(p.name))
        self.stems = [p.stem for p in self._files]
        if len(set(self.stems)) != len(self.stems):
            raise VideoError(f"{folder} holds several images with the same name stem (e.g. a.jpg and a.png). "
                             "Keep one image per frame.")
        first = next((img for img in map(self._load, self._files[:10]) if img is not None), None)
        if first is None:
            raise VideoError(f"The images in {folder} cannot be read (first: {self._files[0].name}). "
                             "Check they are valid image files.")
        self.height, self.width = first.shape[:2]
        self.num_frames = len(self._files)
        self.frame_rate = Fraction(fps).limit_denominator(1001)
        self.timestamps = [i / float(self.frame_rate) for i in range(self.num_frames)]

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _load_checked(self, index: int) -> np.ndarray | None:
        image = self._load(self._files[index])
        if image is not None and image.shape[:2] != (self.height, self.width):
            log.warning("%s is %dx%d, not %dx%d like the first frame", self._files[index],
                        image.shape[1], image.shape[0], self.width, self.height)
            image = None
        if image is None:
            self._mark_damaged(index)
        return image

    def _read(self, index: int) -> np.ndarray:
        for i in range(index, -1, -1):
            image = self._load_checked(i)
            if image is not None:
                return image
        return self._black()

    def _iter(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        previous = None
        for index in range(start, stop):
            image = self._load_checked(index)
            if image is None:
                image = previous if previous is not None else self._read(index)
            previous = image
            yield index, image


# ---------------------------------------------------------------------------------------------
# Video files
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _PtsIndex:
    """What demuxing a video stream once tells us: the timestamp of each display index and its keyframes."""

    keys: list[int]  # pts (dts when missing) per display index, ascending
    key_to_indices: dict[int, list[int]]  # several indices when pts are duplicated
    keyframes: list[int]  # display indices of keyframes, ascending
    keyframe_dts: list[int]  # decode timestamp of each keyframe (its pts when missing): some demuxers seek by it
    seekable: bool  # False when packets lack timestamps (raw .h264 / .hevc streams): always decode from the start

    @staticmethod
    def build(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
              progress: Callable[[float], None] | None = None) -> _PtsIndex:
        packets: list[tuple[int, int, bool]] = []  # (key, dts, keyframe) in file order
        seekable = True
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue  # flush packets; pre-roll an edit list cuts (decoded for reference, never shown)
                if progress is not None and len(packets) % _PROGRESS_EVERY == 0 and container.size > 0:
                    progress(min(1.0, max(0, packet.pos) / container.size))
                key = packet.pts if packet.pts is not None else packet.dts
                if key is None:
                    seekable = False
                    key = packets[-1][0] + 1 if packets else 0
                packets.append((key, key if packet.dts is None else packet.dts, packet.is_keyframe))
        except av.error.FFmpegError as error:  # truncated or damaged tail: keep what was readable
            log.warning("demuxing stopped early (%s); the rest of the file is unreadable", error)
        order = sorted(range(len(packets)), key=lambda i: (packets[i][0], i))
        keys = [packets[i][0] for i in order]
        key_to_indices: dict[int, list[int]] = {}
        for index, key in enumerate(keys):
            key_to_indices.setdefault(key, []).append(index)
        keyframes = [(index, packets[i][1]) for index, i in enumerate(order) if packets[i][2]]
        return _PtsIndex(keys, key_to_indices, [index for index, _ in keyframes], [dts for _, dts in keyframes],
                         seekable)

    def keyframe_at_or_before(self, index: int) -> int:
        """Position in ``keyframes`` of the last keyframe with index <= ``index`` (-1: none)."""
        return bisect.bisect_right(self.keyframes, index) - 1

    def index_of(self, packet: av.Packet) -> int | None:
        """Display index of a demuxed packet (the first one when its pts is duplicated), None if unknown."""
        key = packet.pts if packet.pts is not None else packet.dts
        indices = self.key_to_indices.get(key) if key is not None else None
        return indices[0] if indices else None


def _open_container(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)  # FFmpeg's words, without its errno
        raise VideoError(f"{path} is not a video FFmpeg can read, or the file is damaged or incomplete (an "
                         f"interrupted copy or recording); try another file. FFmpeg said: {reason}.") from error
    if container.format.name in _NOT_VIDEO_FORMATS:  # FFmpeg renders text files as "ANSI art" video
        container.close()
        raise VideoError(f"{path} is not a video (FFmpeg reads it as {container.format.name!r}). "
                         "Choose a video file (mp4, mkv, avi, mov, webm) or an image folder.")
    streams = [s for s in container.streams.video
               if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        container.close()
        raise VideoError(f"{path} has no video frames (no video stream: empty, audio only or cover art only). "
                         "Choose a video file with picture content.")
    stream = streams[0]
    if stream.codec_context is None:
        container.close()
        raise VideoError(f"{path}: no decoder for its video codec in this build. Convert it to H.264 "
                         "(e.g. ffmpeg -i in -c:v libx264 out.mp4) and open that.")
    stream.thread_type = "AUTO"
    return container, stream


class _Decoder:
    """One open container decoding frames from a chosen display index onwards, mapped by pts.

    Seeks are verified, never trusted: demuxers disagree on whether a seek timestamp is a pts or a dts, and
    some (MPEG-TS, MPEG-PS) land a keyframe late or past the last keyframe. After a seek the first keyframe
    packet demuxed must be at or before the wanted keyframe; otherwise the other timestamp is tried, then
    earlier keyframes, and finally the file is decoded from its start. The first keyframe interval is always
    decoded from the start of the file, exactly as a plain sequential decode does.
    """

    def __init__(self, path: Path, index: _PtsIndex) -> None:
        self.path = path
        self.container, self.stream = _open_container(path)
        self.index = index
        self._at_start = True  # nothing read since the container was opened
        self._seek_by_dts = False  # learned: this demuxer lands late when given a keyframe's pts

    def close(self) -> None:
        self.container.close()

    def frames_from(self, target: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Yield ``(index, frame)`` from a keyframe at or before ``target`` onwards.

        Frames shown before the keyframe decoding starts from (an open GOP's leading pictures, which
        reference the previous interval) are not yielded: decoded without their references they are wrong.
        A keyframe that does not decode (damaged) also sends decoding further back, so that the caller
        gets the last good frame before it as a substitute.
        """
        position = self.index.keyframe_at_or_before(target) if self.index.seekable else -1
        for candidate in range(position, max(0, position - _SEEK_TRIES), -1):
            landed = self._seek(candidate)
            if landed is None:
                continue
            frames = self._decode(*landed)
            first = next(frames, None)
            if first is not None and first[0] <= self.index.keyframes[candidate]:
                yield first
                yield from frames
                return
            frames.close()
        self._rewind()
        yield from self._decode(self.container.demux(self.stream), 0)

    def _seek(self, position: int) -> tuple[Iterator[av.Packet], int] | None:
        """Seek to keyframe ``position``: (packets from the first keyframe landed on, its index), or None if
        the seek failed or landed after that keyframe."""
        wanted = self.index.keyframes[position]
        pts, dts = self.index.keys[wanted], self.index.keyframe_dts[position]
        for timestamp in dict.fromkeys((dts, pts) if self._seek_by_dts else (pts, dts)):
            self._at_start = False
            try:
                self.container.seek(int(timestamp), stream=self.stream, backward=True)
                landed = self._first_keyframe(self.container.demux(self.stream))
            except av.error.FFmpegError as error:
                log.debug("seeking to %s failed: %s", timestamp, error)
                return None
            if landed is not None and landed[1] <= wanted:
                self._seek_by_dts = timestamp != pts
                return landed
        return None

    def _first_keyframe(self, packets: Iterator[av.Packet]) -> tuple[Iterator[av.Packet], int] | None:
        """Skip to the first keyframe packet with a known index (packets before it cannot be decoded)."""
        for packet in packets:
            if packet.size and packet.is_keyframe:
                index = self.index.index_of(packet)
                if index is not None:
                    return itertools.chain((packet,), packets), index
        return None  # landed past the last keyframe

    def _rewind(self) -> None:
        """Go back to the start of the file by opening it again (seeking there is not reliable)."""
        if not self._at_start:
            self.container.close()
            self.container, self.stream = _open_container(self.path)
            self._at_start = True

    def _decode(self, packets: Iterator[av.Packet], first: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode ``packets``, yielding frames from display index ``first`` on; undecodable packets are skipped."""
        self._at_start = False
        seen: dict[int, int] = {}
        keys = self.index.key_to_indices
        shown = 0

        def mapped(frames: list[av.VideoFrame]) -> Iterator[tuple[int, av.VideoFrame]]:
            nonlocal shown
            for frame in frames:
                if not self.index.seekable:
                    # No timestamps to map by. Decoding always starts at the first packet here, and a
                    # decoder outputs in display order, so the output position IS the display index.
                    yield shown, frame
                    shown += 1
                    continue
                key = frame.pts if frame.pts is not None else frame.dts
                indices = keys.get(key) if key is not None else None
                if not indices:
                    continue  # a timestamp the container never announced: cannot be placed safely
                count = seen.get(key, 0)
                seen[key] = count + 1
                index = indices[min(count, len(indices) - 1)]
                if index >= first:
                    yield index, frame

        try:
            for packet in packets:
                try:
                    decoded = self.stream.decode(packet)
                except av.error.FFmpegError as error:  # its frame goes missing: reported as damaged by the reader
                    log.debug("skipping undecodable packet at pts %s: %s", packet.pts, error)
                    continue
                yield from mapped(decoded)
        except av.error.FFmpegError as error:  # damaged container data: flush what the decoder holds
            log.debug("demuxing stopped: %s", error)
            try:
                yield from mapped(self.stream.decode(None))
            except av.error.FFmpegError:
                pass


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise (like np.rot90) that display the frame as its rotation metadata says."""
    return round((frame.rotation or 0) / 90) % 4


def _display_rgb(frame: av.VideoFrame, size: tuple[int, int], quarter_turns: int) -> np.ndarray:
    """(H, W, 3) RGB of a decoded frame at the stored ``size`` (mid-stream size changes are scaled), turned."""
    rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def first_frame(path: str | Path) -> np.ndarray | None:
    """The first decodable frame of a video file, read without indexing it (shown while the index builds);
    None when the start of the file does not decode (opening it says why)."""
    container, stream = _open_container(Path(path))
    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError:
        frame = None
    finally:
        container.close()
    return None if frame is None else _display_rgb(frame, (frame.width, frame.height), _quarter_turns(frame))


class VideoFileSource(VideoSource):
    """Frames of a video file decoded with PyAV (FFmpeg): any container/codec FFmpeg reads."""

    def __init__(self, path: Path, cache_bytes: int, progress: Callable[[float], None] | None = None) -> None:
        super().__init__(cache_bytes)
        self.path = path
        container, stream = _open_container(path)
        try:
            self._index = _PtsIndex.build(container, stream, progress)
            self.codec = stream.codec_context.name
            time_base = stream.time_base or Fraction(1, 1)
            average_rate = stream.average_rate or stream.guessed_rate
        finally:
            container.close()
        self.num_frames = len(self._index.keys)
        if self.num_frames == 0:
            raise VideoError(f"{path} contains no video frames. Choose another file.")
        self.stems = [f"{i:08d}" for i in range(self.num_frames)]
        first_key = self._index.keys[0]
        span = (self._index.keys[-1] - first_key) * time_base
        if self._index.seekable and self.num_frames > 1 and span > 0:
            self.timestamps = [float((key - first_key) * time_base) for key in self._index.keys]
            self.frame_rate = Fraction(self.num_frames - 1) / span
        else:  # one frame, or no timestamps in the file: the nominal rate is all there is
            self.frame_rate = Fraction(average_rate).limit_denominator(1001) if average_rate else Fraction(25)
            self.timestamps = [float(i / self.frame_rate) for i in range(self.num_frames)]

        self._decoder = _Decoder(path, self._index)
        self._frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._position = -1  # index of the last frame the random-access decoder produced
        # Decoded frames passed on the way to a target (YUV, converted only if asked for): stepping back
        # one frame at a time in the GUI then costs a colour conversion instead of a keyframe decode.
        self._recent: OrderedDict[int, av.VideoFrame] = OrderedDict()
        self._probe()
        self._recent_max = max(4, _RECENT_RAW_BYTES // (self.width * self.height * 3 // 2))

    def _probe(self) -> None:
        """Decode the first frame: proves the codec works and gives size and rotation."""
        try:
            first = next(self._decoder.frames_from(0), None)
        except av.error.FFmpegError as error:
            first = None
            log.debug("probe failed: %s", error)
        if first is None:
            self._decoder.close()
            raise VideoError(f"No frame of {self.path} can be decoded (codec {self.codec}). The file is damaged "
                             "or uses a codec this build cannot decode; convert it to H.264 and try again.")
        frame = first[1]
        self._quarter_turns = _quarter_turns(frame)
        self._stored_size = (frame.width, frame.height)
        turned = self._quarter_turns % 2
        self.width, self.height = (frame.height, frame.width) if turned else (frame.width, frame.height)
        self.rotation = (-90 * self._quarter_turns) % 360
        self._cache.put(first[0], self._to_rgb(frame))  # the first frame is shown at once after opening

    def close(self) -> None:
        with self._lock:
            super().close()
            self._frames = None
            self._recent.clear()
            self._decoder.close()

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return _display_rgb(frame, self._stored_size, self._quarter_turns)

    def _keep(self, position: int, frame: av.VideoFrame) -> None:
        self._recent[position] = frame
        self._recent.move_to_end(position)
        while len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)

    def _read(self, index: int) -> np.ndarray:
        recent = self._recent.get(index)
        if recent is not None:
            return self._to_rgb(recent)
        can_continue = self._frames is not None and self._position < index
        if can_continue and self._index.seekable:  # else "seeking" means decoding from the start: never better
            # decode on unless a keyframe lies between: seeking there skips decoding everything before it
            keyframes = self._index.keyframes
            next_key = bisect.bisect_right(keyframes, self._position)
            can_continue = next_key >= len(keyframes) or keyframes[next_key] > index
        if not can_continue:
            self._frames = self._decoder.frames_from(index)
            self._position = -1
        previous = None
        for position, frame in self._frames:
            if position < self._position:
                continue
            self._position = position
            self._keep(position, frame)
            if position == index:
                return self._to_rgb(frame)
            if position > index:
                break
            previous = frame
        else:
            self._frames = None  # the decoder reached the end of the file
        self._mark_damaged(index)
        return self._to_rgb(previous) if previous is not None else self._black()

    def _iter(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        decoder = _Decoder(self.path, self._index)
        expected = start
        last_rgb: np.ndarray | None = None
        last_raw: av.VideoFrame | None = None  # last good frame before ``start``, converted only if needed

        def substitutes(until: int) -> Iterator[tuple[int, np.ndarray]]:
            nonlocal expected, last_rgb
            while expected < until:
                self._mark_damaged(expected)
                if last_rgb is None:
                    last_rgb = self._to_rgb(last_raw) if last_raw is not None else self._black()
                yield expected, last_rgb
                expected += 1

        try:
            for position, frame in decoder.frames_from(start):
                if position < expected:
                    if position < start:
                        last_raw = frame  # decoding up from the keyframe
                    continue
                yield from substitutes(min(position, stop))
                if position >= stop:
                    return
                last_rgb = self._to_rgb(frame)
                yield position, last_rgb
                expected = position + 1
            yield from substitutes(stop)
        finally:
            decoder.close()
