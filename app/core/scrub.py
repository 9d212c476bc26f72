"""What to show for a frame right now, without ever waiting for a decoder (scrubbing the timeline).

A ``Scrubber`` runs two background threads over one ``VideoSource``:

* the proxy pass decodes the video once, start to end, into a ``FrameProxy`` (display-size JPEGs on disk,
  kept across sessions), after which any frame shows in milliseconds whatever the keyframe interval;
* the exact loader decodes the frame last asked for at full resolution (into the source's frame cache)
  and calls ``on_exact(index)``; requests made while it decodes collapse into the newest one.

``show(index)`` returns the exact frame if it is decoded, else the proxy's frame at ``index``, else the
nearest frame the proxy pass has reached, scaled to the video's size; the exact one follows through
``on_exact``. The proxy is for showing only: painting, exports and inference read the source itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
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


@dataclass(frozen=True)
class Shown:
    """A picture to show for a requested frame."""

    index: int  # the frame it is (the nearest ready one while the requested one is not)
    frame: np.ndarray  # (H, W, 3) uint8 RGB at the video's full size
    exact: bool  # the source's own decoded frame, not the proxy's JPEG


class Scrubber:
    """Instant frames for display; see the module docstring. ``store`` None: no proxy, exact frames only."""

    def __init__(self, source: VideoSource, store: ProxyStore | None,
                 on_exact: Callable[[int], None] = lambda index: None,
                 on_progress: Callable[[int, int], None] = lambda done, total: None) -> None:
        self.source = source
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
        self._pass: threading.Thread | None = None
        if self.proxy is not None and not self.proxy.complete:
            self._pass = threading.Thread(target=self._build_proxy, name="proxy-pass", daemon=True)
            self._pass.start()

    # ------------------------------------------------------------------ showing
    def show(self, index: int) -> Shown | None:
        """The best picture for ``index`` available now; None while nothing at all is decoded."""
        exact = self.source.cached(index)
        if exact is not None:
            return Shown(index, exact, True)
        self.request(index)
        nearest = self.proxy.nearest_ready(index) if self.proxy is not None else None
        picture = self.proxy.get(nearest) if nearest is not None else None
        if picture is None:
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
        """Stop both threads (a decode in progress finishes first) and save the proxy's index."""
        self._stop.set()
        with self._wake:
            self._wake.notify()
        self._loader.join()
        if self._pass is not None:
            self._pass.join()
        if self.proxy is not None:
            self.proxy.close()

    # ---------------------------------------------------------------- threads
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
        proxy, total = self.proxy, self.source.num_frames
        stored = 0
        try:
            for index, frame in self.source.iter_frames(proxy.first_missing() or 0):
                if self._stop.is_set():
                    break
                if proxy.ready(index):
                    continue
                proxy.put(index, frame)
                stored += 1
                if stored % _ROOM_CHECK_EVERY == 1:
                    self.on_progress(proxy.num_ready, total)
                    if not self.store.has_room(proxy):
                        log.warning("proxy cache %s is full; frames from %d on are decoded on demand",
                                    self.store.root, index)
                        break
            proxy.flush()
        except (StudioError, OSError) as error:  # a full disk or a damaged file: scrubbing falls back to exact
            log.warning("proxy pass over %s stopped: %s", self.source.path, error)
        self.on_progress(proxy.num_ready, total)
