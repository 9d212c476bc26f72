"""What to show for a frame right now, without ever waiting for a decoder (scrubbing the timeline).

A ``Scrubber`` runs two background threads over one ``VideoSource``:

* the proxy pass decodes the video once, start to end, into a ``FrameProxy`` (display-size JPEGs on disk,
  kept across sessions), after which any frame shows in milliseconds whatever the keyframe interval;
* the exact loader decodes the frame last asked for at full resolution (into the source's frame cache)
  and calls ``on_exact(index)``; requests made while it decodes collapse into the newest one.

``show(index)`` returns the exact frame if it is decoded, else the proxy's frame at ``index``, else the
nearest frame the proxy pass has reached, scaled to the video's size; the exact one follows through
``on_exact``. The proxy is for showing only: painting, exports and inference read the source itself.

A model run decodes every frame of its range anyway: it reads them through ``iter_frames``, which stores
each frame the proxy lacks (a display-size JPEG encode, milliseconds beside the model) and keeps the proxy
pass out of the frames the run will reach within the next ``HORIZON_S`` seconds at its measured pace. Two
decodes of one frame would compete with the model for the CPU; but a run on the CPU (under a frame a second)
would leave scrubbing slow for hours if it claimed its whole range, so the pass decodes everything beyond the
horizon as usual and the run skips the frames already stored. A fast (GPU) run claims far ahead, so its range
is still decoded once; a run that ends early (cancelled) leaves the rest to the pass.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from app.core.errors import StudioError
from app.core.proxy import FrameProxy, ProxyStore

if TYPE_CHECKING:
    from app.core.video import VideoSource

log = logging.getLogger(__name__)

_ROOM_CHECK_EVERY = 256  # frames stored between checks of the store's size limit
_REPORT_EVERY_S = 0.2  # progress reports at most this often: a status line, not a flood of signals
# Stored frames the pass decodes through rather than seeking past: a seek decodes from a keyframe anyway.
_DECODE_THROUGH = 32
# A sharing job claims the frames it will reach within this many seconds at its pace: a user waits about that
# long for instant scrubbing, yet a fast job keeps the pass off its frames.
HORIZON_S = 60.0
# The job's pace is measured over its last this many frames. A model pulls a few frames, then works on them:
# its first pulls look fast and claim far ahead until it has worked on them, so the pass does not race ahead of
# a job whose pace is not known yet (for one batch's time).
_PACE_OVER = 16
_AHEAD_UNPACED = 32  # frames claimed before there is a pace (the job's first frame)
_AHEAD_MIN = 4  # frames claimed however slow the job


@dataclass(frozen=True)
class Shown:
    """A picture to show for a requested frame."""

    index: int  # the frame it is (the nearest ready one while the requested one is not)
    frame: np.ndarray  # (H, W, 3) uint8 RGB at the video's full size
    exact: bool  # the source's own decoded frame, not the proxy's JPEG


@dataclass(frozen=True)
class ProxyProgress:
    """How far the proxy is: ``done`` of ``total`` frames stored; ``running`` False once nothing fills it any
    more (complete, the store full, or the scrubber closed); ``with_job``: the frames left are the ones a
    sharing job (a model run) decodes next, so they come at its pace."""

    done: int
    total: int
    running: bool
    with_job: bool = False


class _Claim:
    """Frames ``[next, end)``: what a job sharing its decode (``Scrubber.iter_frames``) decodes soon, the frames
    it reaches within ``HORIZON_S`` seconds at the pace it pulls frames, up to the end of its range ``stop``."""

    def __init__(self, start: int, stop: int) -> None:
        self.next, self.stop = start, stop
        self.end = min(stop, start + _AHEAD_UNPACED)
        self._pulled: deque[float] = deque(maxlen=_PACE_OVER)  # clock times its recent frames were pulled

    def advance(self, index: int, now: float) -> None:
        """The job has frame ``index`` (pulled at ``now``): the horizon moves with it."""
        self.next = index + 1
        self._pulled.append(now)
        self.end = min(self.stop, self.next + self._ahead())

    def _ahead(self) -> int:
        if len(self._pulled) < 2:
            return _AHEAD_UNPACED
        elapsed = self._pulled[-1] - self._pulled[0]
        if elapsed <= 0:  # faster than the clock ticks
            return self.stop - self.next
        pace = (len(self._pulled) - 1) / elapsed  # frames per second
        return max(_AHEAD_MIN, math.ceil(pace * HORIZON_S))

    def covers(self, index: int) -> bool:
        return self.next <= index < self.end


class Scrubber:
    """Instant frames for display; see the module docstring. ``store`` None: no proxy, exact frames only.
    ``clock`` (seconds) paces progress reports and measures a sharing job's pace."""

    def __init__(self, source: VideoSource, store: ProxyStore | None,
                 on_exact: Callable[[int], None] = lambda index: None,
                 on_progress: Callable[[ProxyProgress], None] = lambda progress: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.clock = clock
        self.store = store
        self.on_exact = on_exact
        self.on_progress = on_progress
        self.proxy: FrameProxy | None = None
        if store is not None:
            try:
                self.proxy = store.open(source)
            except OSError as error:  # an unwritable cache folder costs speed, nothing else
                log.warning("no proxy for %s (%s); scrubbing decodes exact frames only", source.path, error)
        self._wanted: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._loader = threading.Thread(target=self._load_exact, name="exact-frames", daemon=True)
        self._loader.start()
        self._claims: list[_Claim] = []  # guarded by _claims_changed, which the pass waits on
        self._claims_changed = threading.Condition()
        self._stored = 0  # frames stored this session (by the pass or a job), guarded by _claims_changed
        self._full = False  # the store has no room left (or the disk): nothing more is stored
        self._reported = -math.inf  # clock() at the last progress report
        self._waiting = False  # the pass waits for sharing jobs to decode the frames left
        self._pass: threading.Thread | None = None
        self._start_pass()

    # ------------------------------------------------------------------ showing
    def show(self, index: int) -> Shown | None:
        """The best picture for ``index`` available now; None while nothing at all is decoded."""
        exact = self.source.cached(index)
        if exact is not None:
            return Shown(index, exact, True)
        self.request(index)
        if self.proxy is None:
            return None
        while (nearest := self.proxy.nearest_ready(index)) is not None:
            picture = self.proxy.get(nearest)
            if picture is not None:
                break
            self._start_pass()  # that frame was damaged and is forgotten: have it stored again
        else:
            return None
        if picture.shape[:2] != (self.source.height, self.source.width):
            picture = cv2.resize(picture, (self.source.width, self.source.height), interpolation=cv2.INTER_LINEAR)
        return Shown(nearest, picture, False)

    def request(self, index: int) -> None:
        """Have the exact frame ``index`` decoded in the background (replaces an earlier pending request)."""
        with self._wake:
            self._wanted = index
            self._wake.notify()

    @property
    def proxy_done(self) -> bool:
        return self.proxy is not None and self.proxy.complete

    def wait_for_proxy(self, timeout: float | None = None) -> bool:
        """Block until the proxy pass has ended (for scripts and tests); True if the proxy is complete."""
        if self._pass is not None:
            self._pass.join(timeout)
        return self.proxy_done

    def close(self) -> None:
        """Stop both threads (a decode in progress finishes first) and save the proxy's index. A job still
        reading through ``iter_frames`` goes on without storing."""
        self._stop.set()
        with self._wake:
            self._wake.notify()
        with self._claims_changed:
            self._claims_changed.notify_all()
        self._loader.join()
        if self._pass is not None:
            self._pass.join()
        if self.proxy is not None:
            self.proxy.close()

    # ------------------------------------------------------------ sharing a decode
    def iter_frames(self, video: VideoSource, start: int = 0, stop: int | None = None
                    ) -> Iterator[tuple[int, np.ndarray]]:
        """``video.iter_frames(start, stop)`` for a job that decodes this scrubber's video anyway (another
        ``VideoSource`` of the same file, as decoders are not shared across threads): the frames the proxy
        lacks are stored on the way, and the proxy pass leaves the frames this iterator reaches soon to it
        until it is exhausted or closed. Close it when the job ends early, so that the pass takes over at once.
        The frames the job finds undecodable are marked damaged in this scrubber's source too."""
        if not self._same_video(video):
            yield from video.iter_frames(start, stop)  # nothing to share
            return
        frames = video.iter_frames(start, stop) if self.proxy is None else self._filling_proxy(video, start, stop)
        with contextlib.closing(frames):
            for index, frame in frames:
                self.source.note_damaged(video.damaged_frames)  # the timeline marks what the job found undecodable
                yield index, frame

    def _filling_proxy(self, video: VideoSource, start: int, stop: int | None) -> Iterator[tuple[int, np.ndarray]]:
        """``video``'s frames, stored in the proxy where it lacks them, under a claim the proxy pass respects."""
        claim = _Claim(max(0, start), self.source.num_frames if stop is None else min(stop, self.source.num_frames))
        with self._claims_changed:
            self._claims.append(claim)
        try:
            for index, frame in video.iter_frames(start, stop):
                if not self.proxy.ready(index):
                    try:
                        self._store(index, frame)
                    except OSError as error:  # a full disk: the run goes on, scrubbing falls back to exact
                        log.warning("proxy of %s: frame %d not stored: %s", self.source.path, index, error)
                        self._full = True
                with self._claims_changed:
                    claim.advance(index, self.clock())
                    self._claims_changed.notify_all()  # its horizon moved
                yield index, frame
        finally:
            with self._claims_changed:
                self._claims.remove(claim)
                self._claims_changed.notify_all()

    def _same_video(self, video: VideoSource) -> bool:
        return (video.path.resolve(), video.num_frames, video.width, video.height) == (
            self.source.path.resolve(), self.source.num_frames, self.source.width, self.source.height)

    def _claimed(self, index: int) -> bool:
        with self._claims_changed:
            return any(claim.covers(index) for claim in self._claims)

    def _next_to_decode(self) -> int | None:
        """The first frame the proxy lacks that no sharing job is still to decode; None if there is none."""
        missing = self.proxy.missing()
        with self._claims_changed:
            for claim in self._claims:
                missing = missing[(missing < claim.next) | (missing >= claim.end)]
        return int(missing[0]) if len(missing) else None

    def _store(self, index: int, frame: np.ndarray) -> bool:
        """Put a decoded frame into the proxy (from the pass or a sharing job); False once nothing more is
        stored (the store is full, or the scrubber closed)."""
        if self._full or self._stop.is_set():
            return False
        self.proxy.put(index, frame)
        with self._claims_changed:
            self._stored += 1
            check_room = self._stored % _ROOM_CHECK_EVERY == 1
        if check_room and not self.store.has_room(self.proxy):
            log.warning("proxy cache %s is full; frames from %d on are decoded on demand", self.store.root, index)
            self._full = True
            return False
        self._report(running=True)
        return True

    def _report(self, running: bool, force: bool = False) -> None:
        now = self.clock()
        if running and (self._stop.is_set() or not force and now - self._reported < _REPORT_EVERY_S):
            return  # closed (only the pass's last word goes out then), or reported a moment ago
        self._reported = now
        self.on_progress(ProxyProgress(self.proxy.num_ready, self.source.num_frames, running,
                                       with_job=running and self._waiting))

    # ---------------------------------------------------------------- threads
    def _start_pass(self) -> None:
        """Start the proxy pass if the proxy lacks frames and no pass runs (at opening, or after a damaged
        frame was forgotten)."""
        if self.proxy is None or self.proxy.complete or self._full or self._stop.is_set():
            return
        if self._pass is None or not self._pass.is_alive():
            self._pass = threading.Thread(target=self._build_proxy, name="proxy-pass", daemon=True)
            self._pass.start()

    def _load_exact(self) -> None:
        while True:
            with self._wake:
                while self._wanted is None and not self._stop.is_set():
                    self._wake.wait()
                if self._stop.is_set():
                    return
                index, self._wanted = self._wanted, None
            try:
                self.source.frame(index)
            except (StudioError, OSError) as error:
                log.warning("frame %d of %s cannot be read: %s", index, self.source.path, error)
                continue
            self.on_exact(index)

    def _build_proxy(self) -> None:
        """Decode the frames the proxy lacks, skipping those a sharing job decodes soon; while only such
        frames are left, wait for the job (it may end early and leave them to the pass)."""
        self._report(running=True, force=True)
        try:
            while not self._stop.is_set() and not self._full:
                with self._claims_changed:
                    start = self._next_to_decode()
                    if start is None:
                        if self.proxy.complete:
                            break
                        self._waiting = True
                        self._report(running=True, force=True)
                        self._claims_changed.wait()
                        self._waiting = False
                        continue
                self._decode_from(start)
            self.proxy.flush()
        except (StudioError, OSError) as error:  # a full disk or a damaged file: scrubbing falls back to exact
            log.warning("proxy pass over %s stopped: %s", self.source.path, error)
        self._report(running=False)

    def _decode_from(self, start: int) -> None:
        """Store frames from ``start`` on; stop before a frame a sharing job is to decode, before a long stored
        stretch (the caller seeks past it instead), or once the store is full."""
        for index, frame in self.source.iter_frames(start):
            if self._stop.is_set():
                return
            if not self.proxy.ready(index) and not self._claimed(index) and not self._store(index, frame):
                return
            if not self._decode_on_to(index + 1):
                return

    def _decode_on_to(self, index: int) -> bool:
        """Whether decoding on to frame ``index`` is the way to the next frame the pass has to store: never
        into a sharing job's frames, and through stored ones only for a short stretch."""
        if index >= self.source.num_frames or self._claimed(index):
            return False
        if not self.proxy.ready(index):
            return True
        following = self._next_to_decode()
        if following is None or not index < following <= index + _DECODE_THROUGH:
            return False
        with self._claims_changed:
            return not any(claim.next < following and index < claim.end for claim in self._claims)
