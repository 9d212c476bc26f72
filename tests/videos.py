"""Real test media: PyAV-encoded videos and image folders whose frames say their own index.

Every frame shows moving coloured shapes plus a 2 x 8 grid of black/white blocks in its top rows
encoding the frame index (16 bits, up to 65535 frames); ``read_index`` recovers the index from the
decoded pixels despite compression. That lets tests check exact random access, display order,
rotation and skipped frames from the pixels alone. Other helpers' tests import this module, so keep
its signatures stable.

Codecs this PyAV build can write: libx264, libx265 (HEVC), mpeg4, mpeg2video, mjpeg, libvpx-vp9, libsvtav1 (AV1),
ffv1, png. Containers: mp4, mkv, avi, mov, webm (VP9/AV1 only), MPEG-TS (.ts, .m2ts), MPEG-PS (.mpg, MPEG-1/2 only).
Rotation: written as display-matrix side data with ``VideoStream.set_display_rotation`` (PyAV >= 15).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

GRID_ROWS, GRID_COLS = 2, 8
BITS = GRID_ROWS * GRID_COLS
SHAPE_COLORS = ((230, 40, 40), (40, 200, 60), (50, 90, 240), (240, 220, 40))

# Encoder pixel formats (x264/x265/vp9/av1/mpeg4 want 4:2:0; mjpeg wants full-range yuvj420p).
_PIX_FMT = {"mjpeg": "yuvj420p", "ffv1": "yuv420p", "png": "rgb24"}


def grid_height(height: int) -> int:
    """Height in pixels of the index grid at the top of a frame of this height."""
    return GRID_ROWS * max(8, height // 8)


def draw_frame(index: int, size: tuple[int, int]) -> np.ndarray:
    """The display picture of frame ``index``: (H, W, 3) uint8 RGB, size = (width, height).

    Grey background, four coloured shapes moving with the index, the index grid on top.
    """
    width, height = size
    if index >= 2**BITS:
        raise ValueError(f"frame index {index} does not fit the {BITS}-bit grid")
    img = np.full((height, width, 3), 96, np.uint8)
    top = grid_height(height)
    for k, color in enumerate(SHAPE_COLORS):
        r = max(3, min(width, height) // 8)
        cx = int((width * (0.2 + 0.2 * k) + 3 * index * (k + 1)) % width)
        cy = int(top + r + (height - top - 2 * r) * (0.5 + 0.4 * np.sin(0.3 * index + k)))
        if k % 2:
            cv2.circle(img, (cx, cy), r, color, -1)
        else:
            cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), color, -1)
    block_h = top // GRID_ROWS
    block_w = width // GRID_COLS
    for bit in range(BITS):
        row, col = divmod(bit, GRID_COLS)
        value = 255 if (index >> bit) & 1 else 0
        img[row * block_h:(row + 1) * block_h, col * block_w:(col + 1) * block_w] = value
    return img


def read_index(frame: np.ndarray) -> int:
    """Recover the frame index drawn by ``draw_frame`` from a decoded (H, W, 3) RGB frame."""
    height, width = frame.shape[:2]
    block_h = grid_height(height) // GRID_ROWS
    block_w = width // GRID_COLS
    index = 0
    for bit in range(BITS):
        row, col = divmod(bit, GRID_COLS)
        # centre of the block only: edges bleed with chroma subsampling and DCT ringing
        y0, x0 = row * block_h + block_h // 4, col * block_w + block_w // 4
        if frame[y0:y0 + block_h // 2, x0:x0 + block_w // 2].mean() > 128:
            index |= 1 << bit
    return index


def make_video(
    path: str | Path,
    num_frames: int = 12,
    size: tuple[int, int] = (96, 64),
    codec: str = "libx264",
    fps: float | Fraction = 25,
    bframes: bool = True,
    vfr: bool = False,
    rotation: int | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    gop: int = 6,
    crf: int = 18,
    open_gop: bool = False,
) -> Path:
    """Encode ``num_frames`` frames of ``draw_frame`` into a real video file and return its path.

    * ``size`` = (width, height) of the DISPLAYED picture (after rotation).
    * ``bframes``: 2 B-frames for codecs that have them (x264, x265, mpeg4, mpeg2video), so decode order !=
      display order.
    * ``vfr``: irregular frame durations (pts gaps alternate 1x, 2.5x, 0.5x... of 1/fps).
    * ``pts`` / ``time_base``: explicit presentation timestamps (overrides ``fps`` spacing and ``vfr``).
    * ``rotation``: degrees CLOCKWISE a player must turn the stored picture (the old ``rotate`` tag; 90, 180,
      270). The stored picture is the display picture turned back, and a display matrix is written.
    * ``gop``: keyframe interval, small so that seeking is exercised on short clips.
    * ``open_gop``: x264 open GOPs (B-frames shown before a keyframe reference the interval before it);
      mpeg2video writes open GOPs anyway.
    The container comes from the file suffix (.mp4 .mkv .avi .mov .webm .ts .m2ts .mpg).
    """
    path = Path(path)
    fps = Fraction(fps).limit_denominator(1001)
    if pts is None:
        time_base = Fraction(1, 1000) / fps if vfr else 1 / fps
        steps = (2, 5, 1, 3, 2) if vfr else (1,)  # in units of half a frame (vfr) or whole frames
        pts, t = [], 0
        for i in range(num_frames):
            pts.append(t)
            t += steps[i % len(steps)] * (500 if vfr else 1)
    elif time_base is None:
        raise ValueError("pass time_base together with pts")
    if len(pts) != num_frames:
        raise ValueError("pts must have num_frames entries")

    quarter_turns = (rotation or 0) // 90 % 4
    stored_w, stored_h = (size[1], size[0]) if quarter_turns % 2 else size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = stored_w, stored_h
        stream.pix_fmt = _PIX_FMT.get(codec, "yuv420p")
        stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = gop
        stream.codec_context.options = _encoder_options(codec, bframes, crf, gop, open_gop)
        if codec in ("libx264", "libx265", "mpeg4", "mpeg2video"):
            stream.codec_context.max_b_frames = 2 if bframes else 0
        if quarter_turns:
            stream.set_display_rotation(-90 * quarter_turns)  # display matrix angle is counter-clockwise
        for index, t in enumerate(pts):
            picture = np.ascontiguousarray(np.rot90(draw_frame(index, size), k=quarter_turns))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = int(t), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _encoder_options(codec: str, bframes: bool, crf: int, gop: int, open_gop: bool) -> dict[str, str]:
    if codec == "libx264":
        options = {"crf": str(crf), "preset": "veryfast", "bf": "2" if bframes else "0", "threads": "1"}
        return {**options, "x264-params": "open-gop=1"} if open_gop else options
    if codec == "libx265":
        params = f"bframes={2 if bframes else 0}:keyint={gop}:min-keyint={gop}:log-level=error:pools=1"
        return {"crf": str(crf), "preset": "ultrafast", "x265-params": params}
    if codec == "libvpx-vp9":
        return {"crf": str(crf + 10), "b": "0", "deadline": "realtime", "cpu-used": "8", "threads": "1"}
    if codec == "libsvtav1":
        return {"crf": str(crf + 10), "preset": "12"}
    if codec in ("mpeg4", "mpeg2video", "mjpeg"):
        return {"qscale": "2"}
    return {}


def make_image_folder(
    folder: str | Path,
    num_frames: int = 8,
    size: tuple[int, int] = (96, 64),
    ext: str = ".png",
    stems: Sequence[str] | None = None,
) -> list[Path]:
    """Write frames of ``draw_frame`` as images (VIPSeg ``images/<video>/`` style) and return their paths.

    Default stems are 8-digit frame numbers ("00000000"...); pass ``stems`` to test other naming.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stems = list(stems) if stems is not None else [f"{i:08d}" for i in range(num_frames)]
    paths = []
    for index, stem in enumerate(stems):
        path = folder / f"{stem}{ext}"
        bgr = cv2.cvtColor(draw_frame(index, size), cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext.lower() in (".jpg", ".jpeg") else []
        if not cv2.imwrite(str(path), bgr, params):
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths


def make_damaged_mjpeg(path: Path, num_frames: int, bad: int, size: tuple[int, int] = (96, 64)) -> Path:
    """A real MJPEG AVI whose frame ``bad`` cannot be decoded (most of its packet's data wiped)."""
    make_video(path, num_frames=num_frames, size=size, codec="mjpeg")
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    pos, length = packets[bad]
    data = bytearray(path.read_bytes())
    data[pos + length // 4 : pos + length] = bytes(length - length // 4)
    path.write_bytes(bytes(data))
    return path
